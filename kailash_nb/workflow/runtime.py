"""``AsyncLocalRuntime``: runs a workflow on the caller's event loop, each node as soon as it can start."""

from __future__ import annotations

import asyncio
import builtins
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from time import perf_counter
from typing import Any, TypeVar

from kailash_nb.errors import KailashNbError

from .context import _current_node
from .errors import EventLoopRunningError, NodeResultError, NodeTimeoutError, UnknownNodeError
from .graph import Node, Workflow
from .resources import MappingResources, ResourceRegistry
from .result import NodeTiming, WorkflowResult
from .validation import validate_inputs, validate_timeout

T = TypeVar("T")
_MISSING = object()
_print = builtins.print


class _Expired(KailashNbError):
    """Internal: a timeout owned by the runtime expired (as opposed to a TimeoutError raised by user code)."""


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            value = await awaitable
    except TimeoutError:
        if deadline.expired():
            raise _Expired from None
        raise
    if deadline.expired():  # the code swallowed the cancellation and finished late
        raise _Expired
    return value


class AsyncLocalRuntime:
    """Run workflows on the running event loop.

    ``max_concurrency`` bounds how many nodes of one run execute at once (``None``: no bound);
    ``timeout`` is the default limit in seconds for a whole run.
    """

    def __init__(self, max_concurrency: int | None = 10, timeout: float | None = None) -> None:
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be a positive int or None, got {max_concurrency!r}")
        timeout = validate_timeout(timeout, what="AsyncLocalRuntime(timeout=...)")
        self.max_concurrency = max_concurrency
        self.timeout = timeout

    async def execute_workflow_async(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any] | None = None,
        *,
        resources: ResourceRegistry | Mapping[str, Any] | None = None,
        namespace: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        targets: Iterable[str] | None = None,
        reuse: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` with ``inputs`` (variables in every node) and return its ``WorkflowResult``.

        ``resources`` is what ``get_resource(name)`` resolves: a ``ResourceRegistry`` or a mapping of
        ready objects. ``namespace`` gives node code further names (a notebook's namespace), below
        inputs and connected values. A failing node fails the run but not its independent branches;
        cancelling the caller cancels every running node before the cancellation propagates.

        A partial run (a notebook re-running one cell): ``targets`` runs only these nodes and what they
        need; ``reuse`` gives earlier outputs of nodes that then do not run but feed their dependants.
        The result holds the nodes that ran (or were skipped), not the reused ones.
        """
        if not isinstance(workflow, Workflow):
            hint = " (call .build() on the builder first)" if hasattr(workflow, "build") else ""
            raise TypeError(f"expected a Workflow{hint}, got {type(workflow).__name__}")
        timeout = validate_timeout(timeout, what="execute_workflow_async(timeout=...)")
        run = _Run(self, workflow, validate_inputs(inputs), _as_resources(resources), namespace)
        if targets is not None or reuse:
            run.plan_partial(targets, reuse or {})
        limit = self.timeout if timeout is None else timeout
        started = perf_counter()
        run.started = run.result.started = started
        try:
            if limit is None:
                await run.schedule()
            else:
                await _within(run.schedule(), limit)
        except _Expired:
            run.expired(limit)  # type: ignore[arg-type]
        return run.finish(perf_counter() - started)

    def execute(self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, **options: Any) -> WorkflowResult:
        """Run synchronously where no event loop is running (a script); in a notebook, ``await`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            loop_running = False
        else:
            loop_running = True
        if not loop_running:
            return asyncio.run(self.execute_workflow_async(workflow, inputs, **options))
        raise EventLoopRunningError(
            "AsyncLocalRuntime.execute() cannot run inside a running event loop (a notebook or async code "
            "runs one); use `result = await runtime.execute_workflow_async(workflow, inputs)` instead"
        )


class _Run:
    """The state of one run; the result it fills is the only record of what happened."""

    __slots__ = ("_base", "inputs", "limit", "nodes", "resources", "result", "reused", "started", "workflow")

    def __init__(self, runtime: AsyncLocalRuntime, workflow: Workflow, inputs: dict[str, Any],
                 resources: ResourceRegistry | MappingResources, namespace: Mapping[str, Any] | None) -> None:
        self.workflow = workflow
        self.inputs = inputs
        self.resources = resources
        self.limit = runtime.max_concurrency
        self.result = WorkflowResult(workflow, inputs)
        self.started = 0.0
        self.nodes: tuple[str, ...] = workflow.order  # the nodes this run covers, in plan order
        self.reused: Mapping[str, Mapping[str, Any]] = {}
        base: dict[str, Any] = dict(namespace) if namespace is not None else {}
        base.pop("result", None)
        base["__builtins__"] = builtins
        base.setdefault("__name__", "__kailash_node__")
        base.setdefault("asyncio", asyncio)
        base.update(inputs)
        base["get_resource"] = self.get_resource
        self._base = base

    async def get_resource(self, name: str) -> Any:
        return await self.resources.get(name)

    def plan_partial(self, targets: Iterable[str] | None, reuse: Mapping[str, Mapping[str, Any]]) -> None:
        """Cover ``targets`` (default: every node) and the ancestors they need that ``reuse`` lacks."""
        workflow = self.workflow
        wanted = list(workflow.order if targets is None else targets)
        for node_id in (*wanted, *reuse):
            if node_id not in workflow.nodes:
                known = ", ".join(repr(n) for n in workflow.order)
                raise UnknownNodeError(f"workflow {workflow.name!r} has no node {node_id!r}; nodes: {known}")
        needed: set[str] = set()
        stack = [n for n in wanted if n not in reuse]
        while stack:
            node_id = stack.pop()
            if node_id not in needed:
                needed.add(node_id)
                stack.extend(p for p in workflow.predecessors[node_id] if p not in reuse)
        self.nodes = tuple(n for n in workflow.order if n in needed)
        self.reused = reuse

    async def schedule(self) -> None:
        workflow = self.workflow
        status = self.result.node_status
        covered = self.nodes
        reused = self.reused
        if reused or len(covered) != len(workflow.order):
            members = set(covered)
            waiting = {n: sum(p in members for p in workflow.predecessors[n]) for n in covered}
            ready = deque(n for n in covered if not waiting[n])
        else:
            members = workflow.nodes  # type: ignore[assignment]
            waiting = dict(workflow.indegree)
            ready = deque(workflow.roots)
        running: dict[asyncio.Task[None], str] = {}
        loop = asyncio.get_running_loop()
        limit = self.limit or len(workflow.nodes)

        def finished(node_id: str) -> None:
            for successor in workflow.successors[node_id]:
                if successor not in members:
                    continue
                waiting[successor] -= 1
                if waiting[successor]:
                    continue
                if all(status.get(p) == "success" or p in reused for p in workflow.predecessors[successor]):
                    ready.append(successor)
                else:
                    status[successor] = "skipped"
                    finished(successor)

        try:
            while ready or running:
                if not running and len(ready) == 1:
                    node_id = ready.popleft()  # the only runnable node: no task needed
                    await self.run_node(workflow.nodes[node_id])
                    finished(node_id)
                    continue
                while ready and len(running) < limit:
                    node_id = ready.popleft()
                    running[loop.create_task(self.run_node(workflow.nodes[node_id]))] = node_id
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    finished(running.pop(task))
        except BaseException:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
            raise

    async def run_node(self, node: Node) -> None:
        node_id = node.id
        result = self.result
        started = perf_counter()
        token = _current_node.set(node_id)
        printed: list[str] = []
        try:
            namespace = dict(self._base)
            for conn in self.workflow.inbound[node_id]:
                source = result.outputs.get(conn.source)
                namespace[conn.target_input] = conn.resolve(self.reused[conn.source] if source is None else source)
            namespace["print"] = _capture_print(printed)
            outcome = eval(node.compiled.code, namespace)
            if outcome is not None:
                if node.timeout is None:
                    await outcome
                else:
                    try:
                        await _within(outcome, node.timeout)
                    except _Expired:
                        raise NodeTimeoutError(
                            f"node {node_id!r} ran past its timeout of {node.timeout} s"
                        ) from None
            output = namespace.get("result", _MISSING)
            if type(output) is not dict and not isinstance(output, dict):
                raise _result_error(node_id, output)
        except asyncio.CancelledError:
            result.node_status[node_id] = "cancelled"
            raise
        except Exception as exc:
            result.node_status[node_id] = "failed"
            result.errors[node_id] = exc
        else:
            result.node_status[node_id] = "success"
            result.outputs[node_id] = output
        finally:
            _current_node.reset(token)
            result.node_timings[node_id] = NodeTiming(started - self.started, perf_counter() - self.started)
            if printed:
                result.logs[node_id] = "".join(printed)

    def expired(self, limit: float) -> None:
        """The run's timeout passed: nodes still running then fail with a timeout error, including any
        that caught the cancellation and finished late (their output is dropped)."""
        result = self.result
        for node_id, status in result.node_status.items():
            timing = result.node_timings.get(node_id)
            if status == "cancelled":
                why = "was cancelled"
            elif status == "success" and timing is not None and timing.end > limit:
                why = "ignored its cancellation and finished late"
                result.outputs.pop(node_id, None)
            else:
                continue
            result.node_status[node_id] = "cancelled"
            result.errors[node_id] = NodeTimeoutError(
                f"node {node_id!r} {why}: workflow {self.workflow.name!r} ran past its timeout of {limit} s"
            )

    def finish(self, elapsed: float) -> WorkflowResult:
        result = self.result
        status = result.node_status
        for node_id in self.nodes:
            status.setdefault(node_id, "skipped")
        result.node_status = {node_id: status[node_id] for node_id in self.nodes}
        result.status = "success" if all(s == "success" for s in status.values()) else "failed"
        result.execution_time = elapsed
        return result


def _capture_print(buffer: list[str]) -> Callable[..., None]:
    def print(*values: object, sep: str | None = " ", end: str | None = "\n", file: Any = None,
              flush: bool = False) -> None:
        """print() for node code: text goes to the node's log in the run's result (``file=`` still works)."""
        if file is not None:
            _print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        buffer.append((" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end))

    return print


def _result_error(node_id: str, output: object) -> NodeResultError:
    if output is _MISSING:
        return NodeResultError(
            f"node {node_id!r} finished without assigning `result`; end its code with result = {{...}}"
        )
    return NodeResultError(
        f"node {node_id!r} assigned `result` a {type(output).__name__} ({output!r:.80}); it must be a dict, "
        f"for example result = {{'value': ...}}"
    )


_NO_RESOURCES = MappingResources({})


def _as_resources(resources: ResourceRegistry | Mapping[str, Any] | None) -> ResourceRegistry | MappingResources:
    if resources is None:
        return _NO_RESOURCES
    if isinstance(resources, ResourceRegistry):
        return resources
    if isinstance(resources, Mapping):
        return MappingResources(dict(resources))
    if hasattr(resources, "get") and hasattr(resources, "names"):
        return resources  # a registry-like object (the testing framework's)
    raise TypeError(f"resources must be a ResourceRegistry or a mapping of names to objects, "
                    f"got {type(resources).__name__}")
