"""Options of ``%%kailash`` and of each ``%kailash`` subcommand, declared with IPython's ``magic_arguments``.

Each subcommand is a stub function whose decorators build its parser and its help text; the help of
all of them, joined, is the docstring that ``%kailash?`` shows.
"""

from __future__ import annotations

import argparse
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from kailash_nb.workflow import validate_timeout

from .errors import MagicUsageError

DEFAULT_WORKFLOW = "notebook"


@dataclass(slots=True, frozen=True)
class InputConnection:
    """``items=producer.items``: the node's variable ``items`` gets path ``items`` of ``producer``'s result."""

    input: str
    source: str
    path: str


@magic_arguments("%kailash")
@argument("node", help="id of the node that the cell body defines (or replaces when run again)")
@argument(
    "connections",
    nargs="*",
    metavar="INPUT=SOURCE.PATH",
    help="connect the node's variable INPUT to PATH in node SOURCE's result, e.g. items=producer.items",
)
@argument("-w", "--workflow", default=DEFAULT_WORKFLOW, metavar="NAME", help="workflow to define the node in")
@argument("--no-run", action="store_true", help="only define the node; do not run it")
@argument("--timeout", type=float, default=None, metavar="S", help="the node's own timeout in seconds")
@argument("--description", default=None, metavar="TEXT", help="a description shown with the workflow")
@argument("--virtual-time", action="store_true",
          help="run on virtual time: sleeps, timeouts and backoff take no real time; timings are virtual")
def cell(line: str) -> None:
    """Define node NODE from the cell body (code as for ``add_async_code``: assign a dict to ``result``,
    top-level ``await`` allowed) and run it at once with the latest outputs of its upstream nodes,
    running those first when they have none. Shows the node's output; its prints go to the cell's
    output. Names that are neither inputs nor connected values resolve in the notebook's namespace.
    Re-run under a new NODE (or ``-w`` workflow), the cell replaces the node it defined before, so no
    ghost of the old name keeps running (refused while other nodes take input from it). The cell is
    known by the cell id that JupyterLab, Notebook 7 and VS Code send; without one (nbclient, nbval,
    terminal IPython) the old node stays: remove it with ``%kailash drop``.
    """


@magic_arguments("kailash run")
@argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, metavar="NAME")
@argument(
    "--inputs",
    default=None,
    metavar="EXPR",
    help="a Python expression (evaluated in the notebook) giving the workflow's inputs; "
    "takes the rest of the line",
)
@argument("--virtual-time", action="store_true",
          help="run on virtual time: sleeps, timeouts and backoff take no real time; timings are virtual")
def run(line: str) -> None:
    """Run workflow NAME afresh and show its WorkflowResult (``r = %kailash run`` keeps it)."""


@magic_arguments("kailash workflow")
@argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, metavar="NAME")
def workflow(line: str) -> None:
    """Return the built ``Workflow`` NAME, for the Python API."""


@magic_arguments("kailash show")
@argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, metavar="NAME")
def show(line: str) -> None:
    """Draw the graph of workflow NAME (a PNG chart)."""


@magic_arguments("kailash mock")
@argument("name", metavar="NAME", help="resource name; also the notebook variable bound to the mock")
@argument("--force", action="store_true",
          help="replace a notebook variable NAME that is not one of the session's mocks, or re-create a "
               "mock NAME that another cell made")
def mock(line: str) -> None:
    """Register a tracked mock as resource NAME and bind it to the variable NAME, to configure.
    NAME may not be a builtin (``print``, ``len``...) or a name kailash_nb reserves (``result``,
    ``get_resource``); replacing another notebook variable of that name needs ``--force``.
    Re-running the cell re-creates the mock (a fresh one, configured as the cell now says, its calls
    forgotten); a mock NAME made by another cell, or where the frontend sends no cell id, needs
    ``--force``; a real resource NAME is refused.
    """


@magic_arguments("kailash drop")
@argument("node", metavar="NODE", help="id of the node to remove")
@argument("-w", "--workflow", default=DEFAULT_WORKFLOW, metavar="NAME", help="the node's workflow")
def drop(line: str) -> None:
    """Remove node NODE from workflow NAME (the workflow goes with its last node). A node that other
    nodes take input from is refused: drop those first.
    """


@magic_arguments("kailash calls")
@argument("resource", nargs="?", default=None, metavar="NAME", help="only the calls of this resource")
def calls(line: str) -> None:
    """Show the tracked calls of the session: resource, method, arguments, result, calling node."""


@magic_arguments("kailash test")
@argument("pattern", nargs="?", default=None, metavar="PATTERN", help="fnmatch pattern on Class.test_name")
def test(line: str) -> None:
    """Run the AsyncWorkflowTestCase classes defined in the notebook on the kernel's loop, show a report
    and raise AssertionError when any test failed (so nbval fails too).
    """


@magic_arguments("kailash bench")
@argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, metavar="NAME")
@argument("-n", "--runs", type=int, required=True, metavar="N", help="number of runs")
@argument("--concurrency", type=int, default=1, metavar="C", help="runs in flight at once")
@argument("--inputs", default=None, metavar="EXPR", help="as for run; takes the rest of the line")
def bench(line: str) -> None:
    """Run workflow NAME N times (a progress bar while it runs), then show latency and throughput."""


@magic_arguments("kailash schedules")
@argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, metavar="NAME")
@argument("--runs", type=int, default=100, metavar="N", help="number of seeded schedules (default 100)")
@argument("--seed", type=int, default=0, metavar="S", help="seed of the schedules (default 0)")
@argument("--inputs", default=None, metavar="EXPR", help="as for run; takes the rest of the line")
def schedules(line: str) -> None:
    """Run workflow NAME under N seeded schedules on virtual time (``explore_schedules``) and show the
    outcomes with their counts, the replay token of each failing one, the calls that raced and the
    timeline of the first failing schedule (its calls step by step). A resource registered with a factory
    gets a fresh instance for each schedule; instances and mocks are shared.
    """


@magic_arguments("kailash replay")
@argument("token", metavar="TOKEN", help="a schedule token that %%kailash schedules printed, e.g. s1:2=1")
@argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, metavar="NAME")
@argument("--inputs", default=None, metavar="EXPR", help="as for run; takes the rest of the line")
def replay(line: str) -> None:
    """Run workflow NAME again under schedule TOKEN and show its WorkflowResult."""


@magic_arguments("kailash cassette")
@argument("path", metavar="PATH", help="the cassette file (JSON), relative to the notebook's folder")
@argument("--mode", default="once", choices=("once", "none", "new", "all"),
          help="once (default): record when PATH is missing, else replay; none: replay only; new: replay and "
               "record new calls; all: record again. KAILASH_NB_RECORD overrides it")
def cassette(line: str) -> None:
    """Make the resources registered from now on (``register_resource(NAME, factory=...)``) come from
    cassette PATH (``kailash_nb.testing.Cassette``): recorded from the factories' real objects, or replayed
    from the file without calling the factories (no database, no network). Their calls are tracked:
    ``%kailash calls`` marks the replayed ones. A recording is saved after each run and by ``%kailash
    reset``. Returns the cassette (``cassette = %kailash cassette PATH``; ``cassette.recording``).
    Running the line again with the same PATH and mode keeps the cassette in use.
    """


@magic_arguments("kailash explore")
@argument("workflow", metavar="NAME")
@argument("--inputs", default=None, metavar="EXPR", help="initial inputs; takes the rest of the line")
def explore(line: str) -> None:
    """A form that edits the workflow's inputs and re-runs it (static text without a widget frontend)."""


@magic_arguments("kailash reset")
def reset(line: str) -> None:
    """Clear the session's workflows, mocks and resources, running the resources' cleanup."""


SUBCOMMANDS: dict[str, Callable[..., None]] = {
    "run": run,
    "workflow": workflow,
    "show": show,
    "mock": mock,
    "drop": drop,
    "calls": calls,
    "test": test,
    "bench": bench,
    "schedules": schedules,
    "replay": replay,
    "cassette": cassette,
    "explore": explore,
    "reset": reset,
}

_INPUTS = re.compile(r"--inputs(?:=|\s+|\Z)")


def parse_line(line: str) -> tuple[str, argparse.Namespace]:
    """Parse a ``%kailash`` line into its subcommand and options; raise MagicUsageError when wrong."""
    words = line.strip().split(None, 1)
    if not words:
        raise MagicUsageError(f"%kailash needs a subcommand, one of: {', '.join(SUBCOMMANDS)}. See %kailash?")
    name, rest = words[0], (words[1] if len(words) > 1 else "")
    if name not in SUBCOMMANDS:
        raise MagicUsageError(
            f"unknown %kailash subcommand {name!r}; expected one of: {', '.join(SUBCOMMANDS)}. See %kailash?"
        )
    return name, _parse(SUBCOMMANDS[name], rest)


def parse_cell_line(line: str) -> tuple[argparse.Namespace, tuple[InputConnection, ...]]:
    """Parse the first line of a ``%%kailash`` cell into options and input connections."""
    args = _parse(cell, line)
    return args, tuple(_connection(text) for text in args.connections)


def _parse(func: Any, argstring: str) -> argparse.Namespace:
    takes_inputs = "inputs" in {a.dest for a in func.parser._actions}
    argstring, inputs = split_line(argstring, takes_inputs=takes_inputs)
    if inputs is not None and not inputs:
        raise MagicUsageError(f"%{func.parser.prog}: --inputs needs an expression, e.g. --inputs {{'n': 3}}")
    try:
        args = func.parser.parse_argstring(argstring)
    except UsageError as exc:
        raise MagicUsageError(f"%{func.parser.prog}: {exc}; {_usage(func)}") from None
    except ValueError as exc:  # unbalanced quotes in arg_split
        raise MagicUsageError(f"%{func.parser.prog}: cannot split {argstring!r}: {exc}") from None
    if inputs is not None:
        args.inputs = inputs
    for option in ("runs", "concurrency"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise MagicUsageError(f"%{func.parser.prog}: --{option} must be at least 1, got {value}")
    if getattr(args, "timeout", None) is not None:
        args.timeout = validate_timeout(args.timeout, what=f"%%kailash {args.node}: --timeout")
    return args


def split_line(argstring: str, *, takes_inputs: bool) -> tuple[str, str | None]:
    """Split a magic's arguments into the options and the ``--inputs`` expression, without comments.

    Options are words as the shell splits them: a ``#`` that starts a word outside quotes begins a
    comment (``%kailash run  # again``), one inside a word or quotes does not (``-w "issue #3"``).
    With ``takes_inputs``, ``--inputs`` takes the rest of the line as a Python expression, whose
    comment is found by Python's own tokenizer, so ``--inputs {'tag': '#1'}  # note`` keeps the
    ``'#1'``. Returns the options and the expression (``None`` without ``--inputs``, ``""`` when empty).
    """
    i, end = 0, len(argstring)
    while i < end:
        if argstring[i].isspace():
            i += 1
            continue
        if argstring[i] == "#":
            return argstring[:i], None
        match = _INPUTS.match(argstring, i) if takes_inputs else None
        if match:
            return argstring[:i], _without_python_comment(argstring[match.end() :]).strip()
        quote = None
        while i < end and (quote or not argstring[i].isspace()):
            if quote and argstring[i] == quote:
                quote = None
            elif not quote and argstring[i] in "'\"":
                quote = argstring[i]
            i += 1
    return argstring, None


def _without_python_comment(expr: str) -> str:
    """``expr`` up to its ``#`` comment, as Python tokenizes it (a ``#`` in a string literal stays)."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(expr).readline):
            if token.type == tokenize.COMMENT:
                return expr[: token.start[1]]
    except (tokenize.TokenError, SyntaxError):  # left to eval(), which reports it with the expression
        pass
    return expr


def _usage(func: Any) -> str:
    lines = [line.strip() for line in func.parser.format_usage().splitlines()]
    return "usage: " + " ".join(line for line in lines if line and line != "::")


def _connection(text: str) -> InputConnection:
    name, sep, source_path = text.partition("=")
    source, dot, path = source_path.partition(".")
    if not sep or not dot or not name or not source or not path:
        raise MagicUsageError(
            f"%%kailash: connection {text!r} must be INPUT=SOURCE.PATH, e.g. items=producer.items"
        )
    if not name.isidentifier():
        raise MagicUsageError(f"%%kailash: input {name!r} in {text!r} must be a Python variable name")
    return InputConnection(name, source, path)


def help_text() -> str:
    """The help of ``%%kailash`` and of every ``%kailash`` subcommand, for ``%kailash?``."""
    sections = [
        "Define, run and test async workflows from notebook cells.",
        "Load with %load_ext kailash_nb; unload with %unload_ext kailash_nb.",
        "Widgets: set KAILASH_NB_WIDGETS=1 (always), 0 (never, static output) or leave unset (auto:"
        " widgets only in a Jupyter server session).",
        "A `# comment` at the end of a %kailash or %%kailash line is ignored (a '#' inside quotes or in"
        " the --inputs expression's string literals is kept).",
        "",
        cell.__doc__ or "",
    ]
    sections += [func.__doc__ or "" for func in SUBCOMMANDS.values()]
    return "\n".join(sections)
