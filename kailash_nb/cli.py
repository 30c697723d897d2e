"""The ``kailash-nb`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from types import ModuleType

    from .runner.check import CheckConfig

TOUR_NOTEBOOK = "notebooks/01_tour.ipynb"
COULD_NOT_RUN = ("3 a notebook could not run (its kernel did not start, or it is unreadable) and nothing else "
                 "failed: CI may retry on 3")
CHECK_EXIT = ("exit status: 0 passed; 1 a cell changed, raised, timed out or killed its kernel (a regression); "
              f"2 a usage error; {COULD_NOT_RUN}")
UPDATE_EXIT = ("exit status: 0 every notebook up to date; 1 a cell raised, timed out or killed its kernel (its "
               f"notebook is left as it was); 2 a usage error; {COULD_NOT_RUN}")
TOUR_HTML = "out/tour.html"

DEMO_WORKFLOW = (
    ("producer", """
        await asyncio.sleep(0)  # node code is async: top-level await works
        result = {"items": [1, 2, 3], "meta": {"count": 3}}
    """),
    ("processor", """
        print(f"doubling {meta['count']} items")
        result = {"doubled": [x * 2 for x in items], "total": sum(items) * 2}
    """),
)


async def _demo() -> int:
    from .workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

    builder = AsyncWorkflowBuilder("demo")
    for node_id, code in DEMO_WORKFLOW:
        builder.add_async_code(node_id, code)
    workflow = (
        builder.add_connection("producer", "items", "processor", "items")
        .add_connection("producer", "meta", "processor", "meta")
        .build()
    )
    result = await AsyncLocalRuntime().execute_workflow_async(workflow)
    print(result.summary())
    for node_id, output in result.outputs.items():
        print(f"{node_id} -> {json.dumps(output)}")
    for node_id, text in result.logs.items():
        print(f"{node_id} printed: {text.rstrip()}")
    print(f"ran in {result.execution_time * 1e3:.2f} ms")
    return 0 if result.ok else 1


def _sanitize_file() -> str:
    from .notebook import sanitize_file_path

    return sanitize_file_path()


def _tour_notebook(given: str | None) -> Path:
    """``notebooks/01_tour.ipynb`` from the current folder, else from the checkout kailash_nb runs from."""
    if given is not None:
        return Path(given)
    here = Path(TOUR_NOTEBOOK)
    if here.is_file():
        return here
    checkout = Path(__file__).resolve().parent.parent / TOUR_NOTEBOOK
    return checkout if checkout.is_file() else here


def _run(notebook: Path, html: Path, cell_timeout: float, keep_going: bool) -> int:
    from .runner.check import EXIT_COULD_NOT_RUN
    from .runner.execute import NotebookCouldNotRunError, NotebookRunError, run_notebook
    from .runner.files import OutputPathError, refuse_unsafe_output

    try:
        refuse_unsafe_output("--html", html, [notebook])
    except OutputPathError as exc:
        print(f"kailash-nb: {exc}", file=sys.stderr)
        return 2
    print(f"running {notebook} headlessly (cell timeout {cell_timeout:g} s) ...", flush=True)
    try:
        run = run_notebook(notebook, html, cell_timeout=cell_timeout, keep_going=keep_going)
    except NotebookCouldNotRunError as exc:
        print(f"kailash-nb: could not run: {exc}", file=sys.stderr)
        if exc.output.strip():
            print("kernel output:", *("    | " + line for line in exc.output.strip("\n").splitlines()[-40:]),
                  sep="\n", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    except NotebookRunError as exc:
        print(f"kailash-nb: {exc}", file=sys.stderr)
        return 2
    print(run.summary())
    return 0 if run.ok else 1


def _check_config(args: argparse.Namespace) -> CheckConfig:
    from .runner.check import CheckConfig
    from .runner.plan import Shard

    return CheckConfig(
        paths=tuple(args.paths or ["notebooks"]),
        workers=args.workers,
        cell_timeout=args.cell_timeout,
        sanitize_file=args.sanitize_with,
        lax=args.lax,
        compare_all_images=args.compare_images,
        image_tolerance=args.image_tolerance,
        shard=Shard.parse(args.shard) if getattr(args, "shard", None) else None,
        durations_file=Path(args.durations_file),
        store_durations=getattr(args, "store_durations", False),
    )


def _check(args: argparse.Namespace) -> int:
    from .runner.check import check

    report = None if args.no_report else Path(args.report)
    junit = Path(args.junitxml) if args.junitxml else None
    return check(_check_config(args), report_dir=report, junit=junit, command=" ".join(["kailash-nb", *sys.argv[1:]]))


def _update(args: argparse.Namespace) -> int:
    from .runner.update import Selection, update

    return update(_check_config(args), Selection(frozenset(args.cell or ()), frozenset(args.node or ())))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more; got {text!r}")
    return value


def _seconds(text: str) -> float:
    from .workflow import InvalidTimeoutError, validate_timeout

    try:
        seconds = validate_timeout(float(text), what="the value")
    except (ValueError, InvalidTimeoutError):
        seconds = None
    if seconds is None:
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, such as 60; got {text!r}")
    return seconds


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected an RMS difference: a finite number, 0 or more; got {text!r}")
    return value


def _quiet_jsonschema_formats() -> None:
    """Skip jsonschema's optional IRI format checker in this process (never in a user's own process).

    With jupyter_server installed, importing nbformat imports jsonschema, which builds rfc3987_syntax's
    grammar at import: about 2 s of CPU before the first notebook runs. Notebook schemas use no IRI
    format, so the checker is never needed here; jsonschema skips it when the module cannot be imported.
    """
    sys.modules.setdefault("rfc3987_syntax", cast("ModuleType", None))


def _parser() -> argparse.ArgumentParser:
    from .runner import check as checking
    from .runner.execute import DEFAULT_CELL_TIMEOUT
    from .runner.images import DEFAULT_TOLERANCE
    from .runner.plan import DURATIONS_FILE

    parser = argparse.ArgumentParser(prog="kailash-nb", description="Notebook testing kit for async workflows.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="run a short example workflow and print its result")

    def run_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--cell-timeout", type=_seconds, default=DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                             help="limit for each cell (default %(default)g)")
        command.add_argument("--keep-going", action="store_true",
                             help="run every cell even after one fails (still exits 1)")

    run = commands.add_parser("run", help="execute a notebook headlessly and write it as HTML")
    run.add_argument("notebook", help="the .ipynb file to execute (it runs in its own folder)")
    run.add_argument("--html", required=True, metavar="OUT", help="where to write the executed notebook as HTML")
    run_options(run)

    tour = commands.add_parser("tour", help=f"run the tour ({TOUR_NOTEBOOK}) headlessly into {TOUR_HTML}")
    tour.add_argument("--notebook", default=None, metavar="PATH", help=f"notebook to run (default {TOUR_NOTEBOOK})")
    tour.add_argument("--html", default=TOUR_HTML, metavar="OUT", help="where to write the HTML (default %(default)s)")
    run_options(tour)

    def notebooks_and_comparison(command: argparse.ArgumentParser) -> None:
        command.add_argument("paths", nargs="*", metavar="PATH", help="notebooks or folders (default notebooks/)")
        command.add_argument("-n", dest="workers", type=_positive_int, default=1, metavar="N",
                             help="run N notebooks at once, each on its own kernel (default 1)")
        command.add_argument("--cell-timeout", type=_seconds, default=DEFAULT_CELL_TIMEOUT,
                             metavar="SECONDS",
                             help="a cell running longer has hung: it fails as timed out (default %(default)g)")
        command.add_argument("--sanitize-with", default=None, metavar="FILE",
                             help="nbval sanitize file (default: the one shipped with kailash_nb)")
        command.add_argument("--lax", action="store_true",
                             help="compare only cells marked NBVAL_CHECK_OUTPUT, as nbval's --nbval-lax")
        command.add_argument("--compare-images", action="store_true",
                             help="compare every PNG output, not only charts that say they are stable")
        command.add_argument("--image-tolerance", type=_tolerance, default=DEFAULT_TOLERANCE, metavar="RMS",
                             help="RMS difference below which two images count as the same (default %(default)g)")
        command.add_argument("--durations-file", default=DURATIONS_FILE, metavar="FILE",
                             help="stored notebook durations: longest run first, shards balanced "
                                  "(default %(default)s)")

    check = commands.add_parser(
        "check", help="run notebooks as regression tests: stored outputs against new ones, with diffs and a report",
        epilog=CHECK_EXIT,
    )
    notebooks_and_comparison(check)
    check.add_argument("--report", default=str(checking.DEFAULT_REPORT_DIR), metavar="DIR",
                       help="where to write the HTML report, DIR/index.html (default %(default)s)")
    check.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    check.add_argument("--junitxml", default=None, metavar="FILE", help="also write JUnit XML to FILE")
    check.add_argument("--shard", default=None, metavar="K/N",
                       help="run only shard K of N (from 1), split by stored durations: one per CI machine")
    check.add_argument("--store-durations", action="store_true",
                       help="write the measured notebook durations to the durations file")

    update = commands.add_parser(
        "update", help="accept changes: write the new outputs into the cells whose outputs changed",
        epilog=UPDATE_EXIT,
    )
    notebooks_and_comparison(update)
    update.add_argument("--cell", type=_positive_int, action="append", metavar="N",
                        help="accept only cell N (its position among all cells, from 1); repeatable")
    update.add_argument("--node", action="append", metavar="NAME",
                        help="accept only the %%%%kailash cell of node NAME; repeatable")

    commands.add_parser("sanitize-file", help="print the path of the nbval sanitize file shipped with kailash_nb")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return asyncio.run(_demo())
    if args.command == "run":
        return _run(Path(args.notebook), Path(args.html), args.cell_timeout, args.keep_going)
    if args.command == "tour":
        return _run(_tour_notebook(args.notebook), Path(args.html), args.cell_timeout, args.keep_going)
    if args.command in ("check", "update"):
        from .runner.files import FileLockedError, OutputPathError
        from .runner.plan import PlanError

        _quiet_jsonschema_formats()
        try:
            return _check(args) if args.command == "check" else _update(args)
        except (PlanError, OutputPathError, FileLockedError) as exc:
            print(f"kailash-nb {args.command}: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"kailash-nb {args.command}: interrupted; kernels shut down", file=sys.stderr)
            return 130
    if args.command == "sanitize-file":
        print(_sanitize_file())
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
