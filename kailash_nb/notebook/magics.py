"""The ``%kailash`` line magic and ``%%kailash`` cell magic.

Subcommands that await (``run``, ``test``, ``bench``, ``schedules``, ``replay``, ``reset``) and
``%%kailash`` cells reach the coroutines here through the input transformer (``transform.py``), which
makes them a top-level ``await`` run by ipykernel on its own loop. The synchronous magic handles the
rest, and refuses the awaiting ones with an explanation instead of starting another event loop.

A failing magic shows the line the user wrote and the node's own lines (``tracebacks.py``); a kernel
interrupt while it awaits shows as ``KeyboardInterrupt``, as in a plain cell.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import contextlib
import keyword
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from kailash_nb.workflow import RESERVED_NAMES, validate_inputs

from . import arguments, tracebacks
from .display import NodeOutput
from .errors import InputsError, KailashMagicError, MagicUsageError, NotAwaitedError
from .interrupt import interruptible
from .session import NodeSpec, NotebookSession
from .transform import AWAITING_SUBCOMMANDS as _AWAITING
from .transform import show_as_written

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from kailash_nb.workflow import WorkflowResult


#: What Python code awaits instead of an awaiting subcommand, for ``NotAwaitedError``.
_SESSION_CALLS = {"run": "run(NAME, inputs)", "reset": "reset()"}


@magics_class
class KailashMagics(Magics):
    """Holds the kernel's ``NotebookSession`` and implements every subcommand."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.session = NotebookSession(shell.user_ns)
        self._events = shell.events
        #: Set by ``%load_ext`` run inside a cell: IPython transformed that cell before the input
        #: transformer existed, so its awaiting magics were not rewritten. Cleared when the next
        #: code runs (``pre_execute``).
        self.loaded_in_running_cell = False
        #: The id of the notebook cell running now, as the frontend sent it (JupyterLab, Notebook 7 and
        #: VS Code send ``cellId`` in the execute request's metadata; ipykernel hands it to IPython, whose
        #: ``pre_run_cell`` event carries it); ``None`` when none was sent (nbclient, terminal IPython).
        self.cell_id: str | None = None
        self._events.register("pre_execute", self._code_starts)
        self._events.register("pre_run_cell", self._cell_starts)

    def _code_starts(self) -> None:
        self.cell_id = None  # silent code (a frontend's own requests) has no pre_run_cell: no cell

    def _cell_starts(self, info: Any) -> None:
        cell_id = getattr(info, "cell_id", None)
        self.cell_id = cell_id if isinstance(cell_id, str) and cell_id else None

    def detach(self) -> None:
        """Stop following the shell's executions (the extension is being unloaded)."""
        for event, callback in (("pre_execute", self._code_starts), ("pre_run_cell", self._cell_starts)):
            with contextlib.suppress(ValueError):  # not registered
                self._events.unregister(event, callback)

    def loaded_mid_cell(self) -> None:
        """Note that the extension was just loaded, until the next cell (or other code) starts."""
        events = self._events
        self.loaded_in_running_cell = True

        def next_execution() -> None:
            self.loaded_in_running_cell = False
            events.unregister("pre_execute", next_execution)

        events.register("pre_execute", next_execution)

    @no_var_expand
    @line_cell_magic
    def kailash(self, line: str, cell: str | None = None) -> Any:
        if cell is not None:
            args, connections = arguments.parse_cell_line(line)
            self._define(args, connections, cell)
            if args.no_run:
                return None
            if self.loaded_in_running_cell:
                raise NotAwaitedError(self._loaded_too_late(f"%%kailash {args.node}"))
            raise NotAwaitedError(
                f"%%kailash {args.node}: running a node awaits on the kernel's event loop, which only works "
                "when the cell starts with %%kailash and the kailash_nb extension is loaded "
                "(%load_ext kailash_nb); the node was defined, run it with `%kailash run` or add --no-run"
            )
        name, args = arguments.parse_line(line)
        if name in _AWAITING and self.loaded_in_running_cell:
            raise NotAwaitedError(self._loaded_too_late(f"%kailash {name}"))
        if name in _AWAITING:
            call = _SESSION_CALLS.get(name)
            instead = (f"from such code use `await kailash_nb.notebook.current_session().{call}`" if call
                       else "call it from a cell's top level instead")
            raise NotAwaitedError(
                f"%kailash {name} awaits on the kernel's event loop, so it works only where the kailash_nb "
                f"input transformer makes it a top-level await: at the top level of a cell's own code (also "
                f"inside a top-level if/for/with/try), written as `%kailash {name}`, `r = %kailash {name}` or "
                f"`get_ipython().run_line_magic('kailash', '{name}')`. It does not work inside a def, lambda or "
                f"class body, in code that is not the cell's own text (a module, exec()), or through a shell "
                f"held in a variable (`ip.run_line_magic(...)`); {instead}"
            )
        return getattr(self, f"_cmd_{name}")(args)

    kailash.__doc__ = arguments.help_text()

    @staticmethod
    def _loaded_too_late(magic: str) -> str:
        return (
            f"{magic} was not awaited because the kailash_nb extension was loaded in this same cell: IPython "
            f"rewrites a cell before running it, and %load_ext ran after that, so the extension's input "
            f"transformer did not see {magic}. Load the extension in an earlier cell; in terminal IPython or "
            f"for a .ipy script, start IPython with it: `ipython --ext kailash_nb` (`ipython --ext kailash_nb "
            f"script.ipy`)"
        )

    def as_shown(self, error: BaseException, magic: str) -> BaseException | None:
        """What a cell running ``magic`` raises for ``error`` (``None``: ``error`` as it is).

        A kernel interrupt (the cell's task cancelled from outside) becomes ``KeyboardInterrupt``;
        other errors get the traceback of ``tracebacks.for_cell``.
        """
        if isinstance(error, asyncio.CancelledError):
            return tracebacks.interrupted(error, magic, self.node_files()) if _cancelled_by_interrupt() else None
        return tracebacks.for_cell(error, self.node_files())

    def node_files(self) -> dict[str, str]:
        """File name of the code of every node of the session's workflows, to its node id."""
        return {
            node.filename: node.id
            for workflow in self.session.workflows.values()
            for node in workflow.build().nodes.values()
        }

    # -- coroutines reached through the input transformer -----------------------------------------
    async def line_async(self, line: str) -> Any:
        name, args = arguments.parse_line(line)
        handler = getattr(self, f"_cmd_{name}")
        if name in _AWAITING:
            async with interruptible():
                return await handler(args)
        return handler(args)

    async def cell_async(self, line: str, cell: str) -> NodeOutput | None:
        args, connections = arguments.parse_cell_line(line)
        self._define(args, connections, cell)
        if args.no_run:
            return None
        async with interruptible():
            result = await self.session.run_node(args.workflow, args.node, virtual_time=args.virtual_time)
        return _node_output(result, args.workflow, args.node)

    # -- subcommands -------------------------------------------------------------------------------
    def _define(self, args: argparse.Namespace, connections: tuple[arguments.InputConnection, ...],
                cell: str) -> None:
        spec = NodeSpec(args.node, cell, connections, args.timeout, args.description, cell_id=self.cell_id)
        self.session.define_node(args.workflow, spec)

    async def _cmd_run(self, args: argparse.Namespace) -> WorkflowResult:
        self.session.workflow(args.workflow)
        inputs = self._inputs(args.inputs)
        return await self.session.run(args.workflow, inputs, virtual_time=args.virtual_time)

    def _cmd_workflow(self, args: argparse.Namespace) -> Any:
        return self.session.workflow(args.workflow).build()

    def _cmd_show(self, args: argparse.Namespace) -> Any:
        from .charts import workflow_graph

        return workflow_graph(self.session.workflow(args.workflow).build())

    def _cmd_mock(self, args: argparse.Namespace) -> None:
        name = args.name
        problem = _mock_name_problem(name)
        if problem is not None:
            raise MagicUsageError(f"%kailash mock {name}: {problem}; choose another name")
        namespace = self.session.namespace
        if name in namespace and not args.force and not self._is_session_mock(namespace[name]):
            raise MagicUsageError(
                f"%kailash mock {name}: the notebook variable {name!r} already holds a "
                f"{type(namespace[name]).__name__}, which the mock would replace; use another name, or "
                f"`%kailash mock {name} --force` to replace it"
            )
        namespace[name] = self.session.add_mock(name, cell_id=self.cell_id, force=args.force)

    def _cmd_drop(self, args: argparse.Namespace) -> None:
        self.session.drop_node(args.workflow, args.node)

    def _is_session_mock(self, value: object) -> bool:
        return any(value is mock for mock in self.session.mocks.values())

    def _cmd_calls(self, args: argparse.Namespace) -> Any:
        from .tables import CallTable

        return CallTable(self.session.calls(args.resource), args.resource)

    async def _cmd_test(self, args: argparse.Namespace) -> Any:
        from .testrun import run_notebook_tests

        return await run_notebook_tests(self.session.namespace, args.pattern)

    async def _cmd_bench(self, args: argparse.Namespace) -> Any:
        from IPython.display import display

        from .bench import bench

        self.session.workflow(args.workflow)
        report = await bench(self.session, args.workflow, args.runs, args.concurrency, self._inputs(args.inputs))
        display(report.chart())
        return report

    async def _cmd_schedules(self, args: argparse.Namespace) -> Any:
        from kailash_nb.testing import explore_schedules

        workflow = self.session.workflow(args.workflow).build()
        inputs = self._inputs(args.inputs) or self.session.last_inputs.get(args.workflow)
        return await explore_schedules(workflow, inputs, resources=await self._schedule_resources(),
                                       runs=args.runs, seed=args.seed)

    async def _cmd_replay(self, args: argparse.Namespace) -> Any:
        from kailash_nb.testing import replay_schedule

        workflow = self.session.workflow(args.workflow).build()
        inputs = self._inputs(args.inputs) or self.session.last_inputs.get(args.workflow)
        return await replay_schedule(workflow, args.token, inputs, resources=await self._schedule_resources())

    async def _schedule_resources(self) -> dict[str, Any]:
        """The session's resources for schedules, each as a factory: a registered factory makes a fresh
        instance for each run; an instance (a function too) is shared, handed out by a factory of its own."""
        registry = self.session.resources
        made: dict[str, Any] = {}
        for name in registry.names:
            factory = registry.factory(name)
            if factory is None:
                instance = await registry.get(name)
                factory = lambda instance=instance: instance  # noqa: E731 - a factory, not a resource
            made[name] = factory
        return made

    def _cmd_cassette(self, args: argparse.Namespace) -> Any:
        return self.session.use_cassette(args.path, args.mode)

    def _cmd_explore(self, args: argparse.Namespace) -> Any:
        from .widgets import explore

        self.session.workflow(args.workflow)
        inputs = self._inputs(args.inputs)
        return explore(self.session, args.workflow, inputs)

    async def _cmd_reset(self, args: argparse.Namespace) -> None:
        await self.session.reset()

    def _inputs(self, expr: str | None) -> dict[str, Any] | None:
        if expr is None:
            return None
        try:
            value = eval(expr, self.session.namespace)
        except Exception as exc:
            raise InputsError(f"--inputs {expr!r} failed to evaluate: {type(exc).__name__}: {exc}") from exc
        return validate_inputs(value, source=f"--inputs {expr!r}")


def _node_output(result: WorkflowResult, workflow: str, node: str) -> NodeOutput:
    """Write the node's prints to the cell, then return its output, or raise the error that stopped it."""
    logs = result.logs.get(node)
    if logs:
        sys.stdout.write(logs)
        sys.stdout.flush()
    status = result.node_status.get(node)
    if status == "success":
        timing = result.node_timings.get(node)
        return NodeOutput(workflow, node, result.outputs[node], timing.duration if timing else None)
    if node in result.errors:
        raise result.errors[node]
    for upstream in result.failed_nodes:
        raise result.errors[upstream]
    raise KailashMagicError(f"node {node!r} of workflow {workflow!r} did not run: it was {status}")


def _mock_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the variable of a mock, or None."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"{name!r} cannot be a notebook variable; use a Python identifier"
    if name.startswith("__") and name.endswith("__"):
        return f"{name!r} is a dunder name, which Python and IPython keep for themselves"
    if name in RESERVED_NAMES:
        return (f"{name!r} is reserved by kailash_nb (node code's {name!r}; reserved: "
                f"{', '.join(sorted(RESERVED_NAMES))})")
    if hasattr(builtins, name):
        return f"{name!r} would shadow the builtin {name!r} in the notebook for the rest of the session"
    return None


def _cancelled_by_interrupt() -> bool:
    """Whether the running task was cancelled from outside (ipykernel's interrupt); if so, the
    cancellation is consumed here, since the caller turns it into ``KeyboardInterrupt``."""
    task = asyncio.current_task()
    if task is None or not task.cancelling():
        return False
    task.uncancel()
    return True


def _magics(shell: InteractiveShell) -> KailashMagics:
    magics = shell.magics_manager.registry.get(KailashMagics.__name__)
    if not isinstance(magics, KailashMagics):
        raise KailashMagicError("the kailash_nb extension is not loaded: run %load_ext kailash_nb first")
    return magics


# The entry points below are the only frames of the kit a failing cell shows between its own line and
# the node's (IPython skips a frame whose locals hold ``__tracebackhide__``). The first thing each does,
# while the awaiting cell's frame is its caller, is to show that cell's magics as written.

async def line_magic_async(shell: InteractiveShell, line: str) -> Any:
    """Entry point of the input transformer for ``%kailash`` lines that await."""
    __tracebackhide__ = True
    show_as_written(sys._getframe(1).f_code.co_filename)
    magics = _magics(shell)
    try:
        return await magics.line_async(line)
    except BaseException as error:
        shown = magics.as_shown(error, f"%kailash {line.split()[0]}")
        if shown is None:
            raise
        raise shown  # noqa: B904 - the error as the cell shows it; its context is the error's own


async def cell_magic_async(shell: InteractiveShell, line: str, cell: str) -> NodeOutput | None:
    """Entry point of the input transformer for ``%%kailash`` cells."""
    __tracebackhide__ = True
    show_as_written(sys._getframe(1).f_code.co_filename)
    magics = _magics(shell)
    try:
        return await magics.cell_async(line, cell)
    except BaseException as error:
        shown = magics.as_shown(error, " ".join(["%%kailash", *line.split()[:1]]))
        if shown is None:
            raise
        raise shown  # noqa: B904 - the error as the cell shows it; its context is the error's own


async def unload_async(shell: InteractiveShell, module: str) -> None:
    """``%unload_ext kailash_nb``: clean up the session's resources on this loop, then unload."""
    magics = shell.magics_manager.registry.get(KailashMagics.__name__)
    if isinstance(magics, KailashMagics):
        await magics.session.reset()
    shell.run_line_magic("unload_ext", module)
