"""``AsyncLocalRuntime``: runs a workflow on the caller's event loop, each node as soon as it can start."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from heapq import heapify, heappop, heappush
from typing import Any

from kailash_nb.errors import KailashNbError

from .calls import current_call_policy
from .clock import VirtualClock, running_clock
from .code import warn_unawaited
from .context import AWAIT_NAME, current_node_id, node_await, running_node
from .deadline import Deadline
from .errors import EventLoopRunningError, NodeResultError, NodeTimeoutError, UnknownNodeError
from .graph import Node, Workflow
from .resources import MappingResources, ResourceRegistry
from .result import NodeTiming, WorkflowResult
from .validation import validate_inputs, validate_timeout

_MISSING = object()
_print = builtins.print


class _Expired(KailashNbError):
    """Internal: the run's own deadline passed (as opposed to a TimeoutError raised by node code)."""


def _run_expired(deadline: Deadline) -> _Expired:
    return _Expired()


class AsyncLocalRuntime:
    """Run workflows on the running event loop.

    ``max_concurrency`` bounds how many nodes of one run execute at once (``None``: no bound);
    ``timeout`` is the default limit in seconds for a whole run; ``virtual_time=True`` runs every
    workflow on virtual time (:func:`kailash_nb.testing.virtual_time`): sleeps, timeouts and backoff take
    no real time, and the timings recorded are virtual, the same from run to run.
    """

    def __init__(self, max_concurrency: int | None = 10, timeout: float | None = None, *,
                 virtual_time: bool = False) -> None:
        if max_concurrency is not None and (isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int)
                                            or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be a positive int or None, got {max_concurrency!r}")
        timeout = validate_timeout(timeout, what="AsyncLocalRuntime(timeout=...)")
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.virtual_time = virtual_time

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
        virtual_time: bool | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` with ``inputs`` (variables in every node) and return its ``WorkflowResult``.

        ``resources`` is what ``get_resource(name)`` resolves: a ``ResourceRegistry`` or a mapping of
        ready objects. ``namespace`` gives node code further names (a notebook's namespace), below
        inputs and connected values. A failing node fails the run but not its independent branches;
        cancelling the caller cancels every running node and waits for them before the cancellation
        propagates, even when node code swallows it.

        ``timeout`` (default: the runtime's) bounds the whole run: nodes still running at the limit are
        cancelled, and every node that finished past it (it swallowed the cancellation, or blocked the event
        loop) counts as timed out too; all of them end ``cancelled`` with a ``NodeTimeoutError``, nodes not
        started by then ``skipped``.

        A partial run (a notebook re-running one cell): ``targets`` runs only these nodes and what they
        need; ``reuse`` gives earlier outputs of nodes that then do not run but feed their dependants.
        The result holds the nodes that ran (or were skipped), not the reused ones.

        ``virtual_time`` (default: the runtime's) runs this one run on virtual time; a run on a loop that
        is on virtual time already (a test using ``virtual_time()``) is virtual either way.
        """
        if not isinstance(workflow, Workflow):
            hint = " (call .build() on the builder first)" if hasattr(workflow, "build") else ""
            raise TypeError(f"expected a Workflow{hint}, got {type(workflow).__name__}")
        limit = self.timeout if timeout is None else timeout
        deadline = None if limit is None else Deadline(limit, error=_run_expired,
                                                       what="execute_workflow_async(timeout=...)")
        run = _Run(self, workflow, validate_inputs(inputs), _as_resources(resources), namespace)
        if targets is not None or reuse:
            run.plan_partial(targets, reuse or {})
        if self.virtual_time if virtual_time is None else virtual_time:
            async with VirtualClock():
                return await self._execute(run, deadline)
        return await self._execute(run, deadline)

    async def _execute(self, run: _Run, deadline: Deadline | None) -> WorkflowResult:
        loop = asyncio.get_running_loop()
        run.clock = loop.time
        run.started = run.result.started = loop.time()  # node timings count from here, on the loop's clock
        run.result.virtual_time = running_clock(loop) is not None
        if deadline is None:
            await run.schedule()
        else:
            run.deadline = deadline
            try:
                async with deadline:
                    await run.schedule()
            except _Expired:
                run.expired(deadline.seconds)
        return run.finish()

    def execute(self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, **options: Any) -> WorkflowResult:
        """Run synchronously where no event loop is running (a script); in a notebook, ``await`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop: run one (outside this handler, so that a failing run is not chained to it)
        else:
            raise EventLoopRunningError(
                "AsyncLocalRuntime.execute() cannot run inside a running event loop (a notebook or async code "
                "runs one); use `result = await runtime.execute_workflow_async(workflow, inputs)` instead"
            )
        return asyncio.run(self.execute_workflow_async(workflow, inputs, **options))


class _Run:
    """The state of one run; the result it fills is the only record of what happened."""

    __slots__ = ("_base", "clock", "deadline", "exiting", "interrupted", "late", "limit", "nodes", "resources",
                 "result", "reused", "started", "workflow")
    started: float  # the loop's time when scheduling began: node timings count from it
    clock: Callable[[], float]  # the loop's time(): virtual under virtual time

    def __init__(self, runtime: AsyncLocalRuntime, workflow: Workflow, inputs: dict[str, Any],
                 resources: ResourceRegistry | MappingResources, namespace: Mapping[str, Any] | None) -> None:
        self.workflow = workflow
        self.resources = resources
        self.limit = runtime.max_concurrency
        self.result = WorkflowResult(workflow, inputs)
        self.nodes: tuple[str, ...] = workflow.order  # the nodes this run covers, in plan order
        self.reused: Mapping[str, Mapping[str, Any]] = {}
        self.deadline: Deadline | None = None  # the run's timeout, when it has one
        self.interrupted: set[str] = set()  # nodes a cancellation reached (they may have swallowed it)
        self.late: set[str] = set()  # nodes that finished once the run's limit had passed
        self.exiting: BaseException | None = None  # a node's SystemExit/KeyboardInterrupt: ends the run
        base: dict[str, Any] = dict(namespace) if namespace is not None else {}
        base.pop("result", None)
        base["__builtins__"] = builtins
        base.setdefault("__name__", "__kailash_node__")
        base.setdefault("asyncio", asyncio)
        base.update(inputs)
        base["get_resource"] = self.get_resource
        base[AWAIT_NAME] = node_await
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
        """Start each node once its predecessors succeeded (ready nodes in plan order, at most ``limit`` at a
        time) until none is left; skip the dependants of a node that did not succeed."""
        me = asyncio.current_task()
        if me is None:
            raise RuntimeError("a workflow must run inside an asyncio task (await it from async code)")
        level = me.cancelling()  # cancel requests beyond this one are the caller's (or the deadline's)
        workflow = self.workflow
        order = workflow.order
        rank = workflow.rank
        status = self.result.node_status
        covered = self.nodes
        reused = self.reused
        members: Collection[str]
        if reused or len(covered) != len(order):
            members = set(covered)
            waiting = {n: sum(p in members for p in workflow.predecessors[n]) for n in covered}
            ready = [rank[n] for n in covered if not waiting[n]]
        else:
            members = workflow.nodes
            waiting = dict(workflow.indegree)
            ready = [rank[n] for n in workflow.roots]
        # ``ready`` is a heap of plan positions (ascending so far, hence a heap already): whatever the order
        # in which nodes finish, the ready ones start in plan order
        running: dict[asyncio.Task[None], str] = {}
        loop = asyncio.get_running_loop()
        limit = self.limit or len(workflow.nodes)
        deadline = self.deadline

        def finished(node_id: str) -> None:
            done = [node_id]
            while done:
                for successor in workflow.successors[done.pop()]:
                    if successor not in members:
                        continue
                    waiting[successor] -= 1
                    if waiting[successor]:
                        continue
                    if all(status.get(p) == "success" or p in reused for p in workflow.predecessors[successor]):
                        heappush(ready, rank[successor])
                    else:
                        status[successor] = "skipped"
                        done.append(successor)

        try:
            while True:
                if deadline is not None and deadline.remaining <= 0:  # the limit passed, whether or not it could
                    ready.clear()  # cancel anything yet: start nothing more (what runs is cancelled at its next await)
                if not running:
                    if not ready:
                        return
                    if len(ready) == 1:  # the only runnable node: no task needed
                        node_id = order[heappop(ready)]
                        await self.run_node(workflow.nodes[node_id], level)
                        self.raise_exiting()
                        if me.cancelling() > level:  # the node swallowed a cancellation of this task: it stands
                            self.interrupted.add(node_id)
                            raise asyncio.CancelledError
                        finished(node_id)
                        continue
                while ready and len(running) < limit:
                    policy = current_call_policy() if len(ready) > 1 else None
                    if policy is None:
                        node_id = order[heappop(ready)]
                    else:  # a seeded schedule picks which ready node starts first
                        chosen = sorted(ready)[policy.choose(len(ready))]
                        ready.remove(chosen)
                        heapify(ready)
                        node_id = order[chosen]
                    running[loop.create_task(self.run_node(workflow.nodes[node_id]))] = node_id
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    finished(running.pop(task))
                self.raise_exiting()
        except BaseException:
            await self.stop(running)
            raise

    async def stop(self, running: Mapping[asyncio.Task[None], str]) -> None:
        """Cancel the running nodes and wait until each has finished, so that no task outlives the run, even
        when the caller cancels again meanwhile (node code may take its time to clean up)."""
        for task, node_id in running.items():
            if task.cancel():
                self.interrupted.add(node_id)
        pending = set(running)
        while pending:
            try:
                _, pending = await asyncio.wait(pending)
            except asyncio.CancelledError:
                for task in pending:
                    task.cancel()

    def raise_exiting(self) -> None:
        """Raise a node's ``SystemExit``/``KeyboardInterrupt`` in the scheduler's task (whose caller stops
        the other nodes), not in the node's task, from which asyncio would raise it out of the event loop."""
        if self.exiting is not None:
            raise self.exiting

    async def run_node(self, node: Node, cancelling: int = 0) -> None:
        """Run one node to its end: it never raises, except for a cancellation from outside the node (a
        cancel request of its task beyond the ``cancelling`` it had when the node started).

        What node code raises fails the node with that exception: any exception, and any other
        ``BaseException`` too (``GeneratorExit``, a ``CancelledError`` it raised itself, a test framework's
        outcome). ``SystemExit`` and ``KeyboardInterrupt`` also fail it, and then end the run: the
        scheduler raises them to the caller once the other running nodes are cancelled, as Python stops a
        program for them.
        """
        node_id = node.id
        result = self.result
        started = self.clock()
        printed: list[str] = []
        namespace = dict(self._base)
        try:
            with running_node(node_id):
                for conn in self.workflow.inbound[node_id]:
                    source = result.outputs.get(conn.source)
                    namespace[conn.target_input] = conn.resolve(
                        self.reused[conn.source] if source is None else source)
                namespace["print"] = _capture_print(printed)
                if node.timeout is None:
                    outcome = eval(node.compiled.code, namespace)
                    if outcome is not None:
                        await outcome
                else:
                    async with Deadline(node.timeout, error=_node_timed_out):
                        outcome = eval(node.compiled.code, namespace)  # inside: code without await can block too
                        if outcome is not None:
                            await outcome
            warn_unawaited(node.compiled, namespace, self._base)
            output = namespace.get("result", _MISSING)
            if not isinstance(output, dict):
                raise _result_error(node_id, output)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling() > cancelling:  # the run stops this node
                result.node_status[node_id] = "cancelled"
                raise
            self.failed(node_id, exc, node, namespace)  # raised by node code (or what it awaited) itself
        except (SystemExit, KeyboardInterrupt) as exc:
            self.failed(node_id, exc, node, namespace)
            self.exiting = exc
        except BaseException as exc:
            self.failed(node_id, exc, node, namespace)
        else:
            result.node_status[node_id] = "success"
            result.outputs[node_id] = output
        finally:
            result.node_timings[node_id] = NodeTiming(started - self.started, self.clock() - self.started)
            deadline = self.deadline
            if deadline is not None and deadline.remaining <= 0:  # on the deadline's clock, like schedule()
                self.late.add(node_id)
            if printed:
                result.logs[node_id] = "".join(printed)

    def failed(self, node_id: str, error: BaseException, node: Node, namespace: dict[str, Any]) -> None:
        self.result.node_status[node_id] = "failed"
        self.result.errors[node_id] = error
        with suppress(Warning):  # warnings made errors: the node's own error is the one to report
            warn_unawaited(node.compiled, namespace, self._base)

    def expired(self, limit: float | None) -> None:
        """The run's timeout passed: every node still running then, or finishing after it, timed out. Nodes
        that were cancelled, or that swallowed the cancellation or blocked the event loop and finished late
        (their output is dropped), end ``cancelled`` with a ``NodeTimeoutError``; failed nodes keep their
        own exception."""
        result = self.result
        for node_id, status in result.node_status.items():
            if status == "cancelled":
                why = "was cancelled"
            elif status != "success":
                continue
            elif node_id in self.interrupted:
                why = "ignored its cancellation and finished late"
            elif node_id in self.late:
                why = ("finished after the limit without yielding to the event loop (blocking code cannot be "
                       "stopped before it yields, only reported late)")
            else:
                continue
            result.outputs.pop(node_id, None)
            result.node_status[node_id] = "cancelled"
            result.errors[node_id] = NodeTimeoutError(
                f"node {node_id!r} {why}: workflow {self.workflow.name!r} ran past its timeout of {limit} s"
            )

    def finish(self) -> WorkflowResult:
        result = self.result
        status = result.node_status
        for node_id in self.nodes:
            status.setdefault(node_id, "skipped")
        result.node_status = {node_id: status[node_id] for node_id in self.nodes}
        result.status = "success" if all(s == "success" for s in status.values()) else "failed"
        result.execution_time = self.clock() - self.started
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


def _node_timed_out(deadline: Deadline) -> NodeTimeoutError:
    # called as the node's Deadline block ends, still inside running_node(): the node is the running one
    message = f"node {current_node_id()!r} ran past its timeout of {deadline.seconds} s"
    if deadline.blocked:
        message += (": it finished after the limit without yielding to the event loop (blocking code cannot "
                    "be stopped before it yields, only reported late); its output is dropped")
    return NodeTimeoutError(message)


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
    raise TypeError(f"resources must be a ResourceRegistry or a mapping of names to objects, "
                    f"got {type(resources).__name__}")
