"""The per-kernel notebook session: the workflows defined by ``%%kailash`` cells, their latest outputs,
and the resources and mocks their nodes use. One source of truth for notebook state; displays read it.

Re-running a cell is the most common action in a notebook, so the session knows which cell made what,
by the cell id the frontend sends with each execution (JupyterLab, Notebook 7 and VS Code send one):
a ``%%kailash`` cell re-run under a new node name replaces the node it defined before, and a
``%kailash mock`` cell re-run re-creates its mock. Without a cell id (terminal IPython, nbclient and
nbval, which run each cell once) every execution counts as a new cell.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kailash_nb.workflow import validate_inputs
from kailash_nb.workflow.errors import add_note

from .arguments import InputConnection
from .errors import (
    DuplicateResourceError,
    NodeInUseError,
    UnknownNotebookNodeError,
    UnknownResourceError,
    UnknownWorkflowError,
)

if TYPE_CHECKING:
    from kailash_nb.testing import Cassette
    from kailash_nb.testing.mocks import CallTracker
    from kailash_nb.workflow import ResourceRegistry, Workflow, WorkflowResult


@dataclass(slots=True, frozen=True)
class NodeSpec:
    """What a ``%%kailash`` cell said about one node: its code, inputs and options."""

    id: str
    source: str
    connections: tuple[InputConnection, ...] = ()
    timeout: float | None = None
    description: str | None = None
    #: The id of the notebook cell that defined the node, when the frontend sent one.
    cell_id: str | None = field(default=None, compare=False)


@dataclass(slots=True)
class NotebookWorkflow:
    """A workflow assembled cell by cell; keeps each node's latest output from any run."""

    name: str
    specs: dict[str, NodeSpec] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _built: Workflow | None = None

    def define(self, spec: NodeSpec, *, replacing: str | None = None) -> None:
        """Add ``spec`` or replace the node of that id, and remove node ``replacing`` (the node that the
        same cell defined before, under another name); the workflow must still build (else nothing changes).

        A changed node loses its latest output, and so do the nodes downstream of it (they were
        computed from the old code), so the next run of any of them re-runs what is stale.
        """
        specs = dict(self.specs)
        if replacing is not None and replacing != spec.id:
            self.check_unused(replacing, f"%%kailash {spec.id}: this cell defined node {replacing!r} before, and "
                                          f"renaming it")
            del specs[replacing]
        specs[spec.id] = spec
        built = _build(self.name, specs)
        changed = self.specs.get(spec.id) != spec
        self.specs = specs
        self._built = built
        if replacing is not None and replacing != spec.id:
            self.outputs.pop(replacing, None)
        if changed:
            self.forget_outputs({spec.id})

    def remove(self, node_id: str, why: str) -> None:
        """Remove node ``node_id`` (which no other node may take input from); not the last one."""
        self.node(node_id)
        self.check_unused(node_id, why)
        specs = {nid: spec for nid, spec in self.specs.items() if nid != node_id}
        built = _build(self.name, specs)
        self.specs = specs
        self._built = built
        self.outputs.pop(node_id, None)

    def check_unused(self, node_id: str, doing: str) -> None:
        """Refuse (``NodeInUseError``, the message starting with ``doing``) when other nodes take input
        from ``node_id``: removing it would leave them connected to nothing."""
        users = sorted(spec.id for spec in self.specs.values() if any(c.source == node_id for c in spec.connections))
        if users:
            names = ", ".join(repr(n) for n in users)
            raise NodeInUseError(
                f"{doing} would leave node(s) {names} of workflow {self.name!r} taking input from a node that no "
                f"longer exists; drop them first (`%kailash drop NODE`) or re-run their cells connected to "
                f"another node, then run this again"
            )

    def forget_outputs(self, nodes: set[str], *, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Drop the latest outputs of ``nodes`` and of everything downstream of them, except ``keep``."""
        successors = self.build().successors
        stack = list(nodes)
        seen: set[str] = set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node not in keep:
                self.outputs.pop(node, None)
            stack.extend(successors.get(node, ()))

    def build(self) -> Workflow:
        """The built workflow, rebuilt only when a cell has changed a node."""
        if self._built is None:
            self._built = _build(self.name, self.specs)
        return self._built

    def node(self, node_id: str) -> NodeSpec:
        try:
            return self.specs[node_id]
        except KeyError:
            known = ", ".join(repr(n) for n in self.specs) or "none"
            raise UnknownNotebookNodeError(
                f"workflow {self.name!r} has no node {node_id!r}; its nodes: {known}"
            ) from None

    def reusable_outputs(self, node_id: str) -> dict[str, dict[str, Any]]:
        """The latest outputs a run of ``node_id`` may reuse: every node's but its own."""
        self.node(node_id)
        return {nid: output for nid, output in self.outputs.items() if nid != node_id}


def _build(name: str, specs: Mapping[str, NodeSpec]) -> Workflow:
    from kailash_nb.workflow import AsyncWorkflowBuilder

    builder = AsyncWorkflowBuilder(name)
    for spec in specs.values():
        builder.add_async_code(spec.id, spec.source, timeout=spec.timeout, description=spec.description)
    for spec in specs.values():
        for conn in spec.connections:
            builder.add_connection(conn.source, conn.path, spec.id, conn.input)
    return builder.build()


class NotebookSession:
    """Notebook state of one kernel: workflows by name, the resource registry, mocks and last inputs."""

    def __init__(self, namespace: dict[str, Any], *, max_concurrency: int = 10) -> None:
        from kailash_nb.workflow import ResourceRegistry

        self.namespace = namespace
        self.max_concurrency = max_concurrency
        self.workflows: dict[str, NotebookWorkflow] = {}
        self.resources: ResourceRegistry = ResourceRegistry()
        self.mocks: dict[str, Any] = {}
        #: The cell that created each mock (``None``: unknown), so that re-running it re-creates the mock.
        self.mock_cells: dict[str, str | None] = {}
        self.last_inputs: dict[str, dict[str, Any]] = {}
        #: Work started outside a cell (a form's run), still running; ``reset`` cancels it.
        self.tasks: set[asyncio.Task[Any]] = set()
        self._tracker: CallTracker | None = None
        #: The cassette that resources registered from now on come from (``%kailash cassette``), if any.
        self.cassette: Cassette | None = None
        #: The resources made through a cassette, by name.
        self.cassette_resources: set[str] = set()

    # -- workflows -------------------------------------------------------------------------------
    def workflow(self, name: str) -> NotebookWorkflow:
        """The workflow ``name``; an unknown name lists the defined ones."""
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(repr(n) for n in sorted(self.workflows)) or "none yet"
            raise UnknownWorkflowError(
                f"no workflow {name!r} in this notebook session; defined: {known}. "
                f"Define a node with a `%%kailash NODE -w {name}` cell first"
            ) from None

    def define_node(self, workflow: str, spec: NodeSpec) -> NotebookWorkflow:
        """Define or replace a node; creates the workflow on first use.

        The node that the same cell (``spec.cell_id``) defined before under another name, or in another
        workflow, is replaced: it is removed, so that no ghost of a renamed node keeps running. A node
        that others take input from is not removed (``NodeInUseError``, and nothing changes).
        """
        before = self.defined_by(spec.cell_id)
        target = self.workflows.get(workflow) or NotebookWorkflow(workflow)
        if before is not None and before[0] != workflow:  # the cell moved its node to another workflow
            old_workflow, old_node = before
            self.workflows[old_workflow].check_unused(
                old_node, f"%%kailash {spec.id} -w {workflow}: this cell defined node {old_node!r} of workflow "
                          f"{old_workflow!r} before, and moving it")
            target.define(spec)
            self._remove_node(old_workflow, old_node, "")
        else:
            target.define(spec, replacing=None if before is None else before[1])
        self.workflows[workflow] = target
        return target

    def defined_by(self, cell_id: str | None) -> tuple[str, str] | None:
        """(workflow, node) of the node that cell ``cell_id`` defined last, if it still stands."""
        if cell_id is None:
            return None
        for name, workflow in self.workflows.items():
            for spec in workflow.specs.values():
                if spec.cell_id == cell_id:
                    return name, spec.id
        return None

    def drop_node(self, workflow: str, node_id: str) -> None:
        """Remove node ``node_id`` from ``workflow`` (and the workflow with its last node); a node that
        others take input from is refused (``NodeInUseError``), an unknown one lists the nodes."""
        self.workflow(workflow).node(node_id)
        self._remove_node(workflow, node_id, f"%kailash drop {node_id}")

    def _remove_node(self, workflow: str, node_id: str, why: str) -> None:
        target = self.workflows[workflow]
        if len(target.specs) == 1:
            target.check_unused(node_id, why)
            del self.workflows[workflow]
            self.last_inputs.pop(workflow, None)
        else:
            target.remove(node_id, why)

    async def run_node(self, workflow: str, node_id: str, *, virtual_time: bool = False) -> WorkflowResult:
        """Run one node with the latest outputs of its upstream nodes (running those that have none);
        ``virtual_time``: on virtual time (``%%kailash NODE --virtual-time``)."""
        target = self.workflow(workflow)
        result = await self.runtime().execute_workflow_async(
            target.build(),
            self.last_inputs.get(workflow),
            resources=self.resources,
            namespace=self.namespace,
            targets=[node_id],
            reuse=target.reusable_outputs(node_id),
            virtual_time=virtual_time,
        )
        self._save_cassette()
        add_input_hints(result)
        ran = set(result.node_status)
        target.forget_outputs(ran, keep=set(result.outputs))
        for nid in ran & set(result.outputs):
            target.outputs[nid] = result.outputs[nid]
        return result

    async def run(
        self, workflow: str, inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None,
        virtual_time: bool = False,
    ) -> WorkflowResult:
        """Run the whole workflow afresh; its outputs become the latest outputs (a failed node has none).

        New ``inputs`` are checked first (``InvalidInputsError`` names the bad key) and become the latest
        inputs, which later runs and ``%%kailash`` cells reuse, only once a run has accepted them:
        a rejected or interrupted run leaves the previous ones in place. ``virtual_time``: the run is on
        virtual time (``%kailash run --virtual-time``).
        """
        target = self.workflow(workflow)
        given = None if inputs is None else validate_inputs(inputs, source=f"inputs of workflow {workflow!r}")
        result = await self.runtime().execute_workflow_async(
            target.build(),
            self.last_inputs.get(workflow) if given is None else given,
            resources=self.resources,
            namespace=self.namespace,
            timeout=timeout,
            virtual_time=virtual_time,
        )
        self._save_cassette()
        if given is not None:
            self.last_inputs[workflow] = given
        add_input_hints(result)
        target.outputs = dict(result.outputs)
        return result

    def runtime(self) -> Any:
        """A runtime for one run of the session (bounded by ``max_concurrency`` nodes at once)."""
        from kailash_nb.workflow import AsyncLocalRuntime

        return AsyncLocalRuntime(max_concurrency=self.max_concurrency)

    def start(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` as a task on the running loop, owned by the session: ``reset`` (and unloading
        the extension) cancels it if it is still running, before the resources it may use are closed."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- resources -------------------------------------------------------------------------------
    def register_resource(self, name: str, factory: Callable[[], Any] | None = None, *, instance: Any = None) -> None:
        """Make a resource available to node code as ``await get_resource(name)``.

        ``factory`` (sync or async) runs on first use and its result is cleaned up by ``%kailash reset``
        or unloading the extension; an ``instance`` stays owned by the notebook.
        """
        if (factory is None) == (instance is None):
            raise TypeError(f"resource {name!r}: pass exactly one of factory=... or instance=...")
        self._check_free(name)
        cassette = self.cassette
        if cassette is not None:
            if factory is None:
                raise TypeError(
                    f"resource {name!r}: cassette {cassette.path} is in use (%kailash cassette), and a cassette "
                    f"replays without the real object, so it needs the factory that makes it: "
                    f"register_resource({name!r}, factory=lambda: ...)")
            self.resources.register_factory(name, _from_cassette(cassette, name, factory))
            self.cassette_resources.add(name)
            return
        if factory is not None:
            self.resources.register_factory(name, factory)
        else:
            self.resources.register_instance(name, instance)

    def use_cassette(self, path: str, mode: str) -> Cassette:
        """Make the resources registered from now on come from the cassette at ``path`` (recorded, or
        replayed without calling their factories). The same path and mode again keep the cassette in use;
        another one is refused while resources made through the first exist (``%kailash reset`` first)."""
        from pathlib import Path

        from kailash_nb.testing import Cassette

        current = self.cassette
        if current is not None and current.path == Path(path) and current.requested_mode == mode:
            return current
        if current is not None and self.cassette_resources:
            names = ", ".join(repr(n) for n in sorted(self.cassette_resources))
            raise DuplicateResourceError(
                f"%kailash cassette {path}: resource(s) {names} come from cassette {current.path} (mode "
                f"{current.requested_mode!r}); run %kailash reset first (it saves that cassette) to use another one")
        cassette = Cassette(path, mode, tracker=self._call_tracker())
        cassette.recording  # noqa: B018 - reads the file now: a missing or broken one fails this line, not a run
        self.cassette = cassette
        return cassette

    def _call_tracker(self) -> CallTracker:
        """The tracker that the session's mocks and cassette share, made with the first of them."""
        if self._tracker is None:
            from kailash_nb.testing.mocks import CallTracker

            self._tracker = CallTracker()
        return self._tracker

    def _save_cassette(self) -> None:
        if self.cassette is not None and self.cassette_resources:
            self.cassette.save()

    def _check_free(self, name: str) -> None:
        if name in self.resources:
            what = "a mock" if name in self.mocks else "a real resource"
            raise DuplicateResourceError(
                f"resource {name!r} is already registered in this session ({what}); use the one that exists, "
                f"use another name, or run %kailash reset to start the session's resources afresh"
            )

    def add_mock(self, name: str, *, cell_id: str | None = None, force: bool = False) -> Any:
        """A tracked mock registered as resource ``name`` (and returned, to configure).

        A mock of that name that the same cell (``cell_id``) created is re-created: a fresh mock, without
        the old one's configuration and calls, so that re-running the cell gives what it now says. One that
        another cell created is re-created only with ``force``; a real resource of that name is refused.
        """
        from kailash_nb.testing.mocks import TrackedResource, create_mock

        again = name in self.mocks and (force or (cell_id is not None and self.mock_cells.get(name) == cell_id))
        if name in self.mocks and not again:
            if cell_id is None:
                why = ("and this frontend sends no cell id, so a re-run of its cell cannot be told from another "
                       "cell")
            else:
                why = "made by another cell; re-running that cell re-creates it"
            raise DuplicateResourceError(
                f"%kailash mock {name}: a mock {name!r} already exists in this session, {why}; "
                f"`%kailash mock {name} --force` re-creates it here, or use another name"
            )
        if not again:
            self._check_free(name)
        tracker = self._call_tracker()
        mock = TrackedResource(name, create_mock(name), tracker)
        if again:
            self.resources.replace_instance(name, mock)
            tracker.reset(name)
        else:
            self.resources.register_instance(name, mock)
        self.mocks[name] = mock
        self.mock_cells[name] = cell_id
        return mock

    def calls(self, resource: str | None = None) -> list[Any]:
        """The tracked calls of the session's mocks (of one resource when named)."""
        tracked = {*self.mocks, *self.cassette_resources}
        if resource is not None and resource not in tracked:
            known = ", ".join(repr(n) for n in sorted(tracked)) or "none"
            raise UnknownResourceError(
                f"no mock named {resource!r} in this session, nor a resource from a cassette; tracked: {known}. "
                f"Create one with %kailash mock NAME"
            )
        return [] if self._tracker is None else list(self._tracker.get_calls(resource))

    async def reset(self) -> None:
        """Cancel the session's tasks, then forget workflows, mocks and resources, cleaning up the
        resources that factories created."""
        from kailash_nb.workflow import ResourceRegistry

        loop = asyncio.get_running_loop()
        running = [task for task in self.tasks if not task.done() and task.get_loop() is loop]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        registry = self.resources
        self.workflows.clear()
        self.last_inputs.clear()
        for name in self.mocks:
            if self.namespace.get(name) is self.mocks[name]:
                del self.namespace[name]
        self.mocks.clear()
        self.mock_cells.clear()
        self._tracker = None
        self.resources = ResourceRegistry()
        cassette, self.cassette = self.cassette, None
        self.cassette_resources.clear()
        try:
            await registry.aclose()
        finally:
            if cassette is not None:
                await cassette.aclose()  # saves what it recorded, then cleans up the real resources

    def close_soon(self) -> asyncio.Task[None] | None:
        """Reset from synchronous code: on the running loop as a task, or at once without a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.reset())
            return None
        task = loop.create_task(self.reset())
        task.add_done_callback(_report_cleanup_failure)
        return task


def _from_cassette(cassette: Cassette, name: str, factory: Callable[[], Any]) -> Callable[[], Any]:
    """A factory for the session's registry: the resource as the cassette gives it (made by ``factory`` and
    recorded, or replayed). The cassette owns what the factory made; the proxy itself needs no cleanup."""
    async def make() -> Any:
        return (await cassette.resources(**{name: factory}))[name]

    make.__name__ = make.__qualname__ = f"cassette_{name}"
    return make


def _report_cleanup_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        print(f"kailash_nb: resource cleanup failed: {task.exception()}", file=sys.stderr)


def add_input_hints(result: WorkflowResult) -> None:
    """Note on each ``NameError`` raised by a node's own code where workflow inputs come from.

    A node that reads an input before any ``--inputs`` were given fails with a bare ``NameError``;
    the note (Python 3.11+ shows it under the traceback, the result's display shows it too) says how
    to give one. The exception itself is left as it is: cells, nbval and users rely on its type.
    """
    workflow = result.workflow
    for node_id, error in result.errors.items():
        node = workflow.nodes.get(node_id)
        if not isinstance(error, NameError) or node is None or not _raised_in(error, node.filename):
            continue
        name = getattr(error, "name", None) or "NAME"
        run = "%kailash run" if workflow.name == "notebook" else f"%kailash run {workflow.name}"
        note = (
            f"kailash_nb: {name!r} is not a workflow input, a connected value or a notebook variable. "
            f"Workflow inputs come from `{run} --inputs {{{name!r}: ...}}` (%%kailash cells reuse the latest "
            f"inputs); connect another node's output with INPUT=SOURCE.PATH on the %%kailash line; "
            f"other names resolve in the notebook namespace"
        )
        add_note(error, note)


def _raised_in(error: BaseException, filename: str) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename == filename
