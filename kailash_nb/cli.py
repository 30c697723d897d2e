"""The ``kailash-nb`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

TOUR_NOTEBOOK = "notebooks/01_tour.ipynb"
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
    from .runner.execute import NotebookRunError, run_notebook

    print(f"running {notebook} headlessly (cell timeout {cell_timeout:g} s) ...", flush=True)
    try:
        run = run_notebook(notebook, html, cell_timeout=cell_timeout, keep_going=keep_going)
    except NotebookRunError as exc:
        print(f"kailash-nb: {exc}", file=sys.stderr)
        return 2
    print(run.summary())
    return 0 if run.ok else 1


def _check(args: argparse.Namespace) -> int:
    from .runner.check import check_notebooks
    from .runner.execute import NotebookRunError

    try:
        result = check_notebooks(
            args.paths or ["notebooks"],
            sanitize_file=_sanitize_file(),
            workers=args.workers,
            report_dir=args.report,
            cell_timeout=args.cell_timeout,
        )
    except NotebookRunError as exc:
        print(f"kailash-nb: {exc}", file=sys.stderr)
        return 2
    if result.exit_code != 0 and result.report_dir is not None:
        names = ", ".join(str(path) for path in result.failed_notebooks) or "none identified"
        print(f"check failed (pytest exit {result.exit_code}); failing notebooks: {names}")
        print(f"report: {result.report_dir}/ (pytest output and the failing notebooks executed, as HTML)")
    return result.exit_code


def _parser() -> argparse.ArgumentParser:
    from .runner.check import DEFAULT_REPORT_DIR
    from .runner.execute import DEFAULT_CELL_TIMEOUT

    parser = argparse.ArgumentParser(prog="kailash-nb", description="Notebook testing kit for async workflows.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="run a short example workflow and print its result")

    timeout = {"type": float, "default": DEFAULT_CELL_TIMEOUT, "metavar": "SECONDS",
               "help": "limit for each cell (default %(default)g)"}
    keep_going = {"action": "store_true", "help": "run every cell even after one fails (still exits 1)"}

    run = commands.add_parser("run", help="execute a notebook headlessly and write it as HTML")
    run.add_argument("notebook", help="the .ipynb file to execute (it runs in its own folder)")
    run.add_argument("--html", required=True, metavar="OUT", help="where to write the executed notebook as HTML")
    run.add_argument("--cell-timeout", **timeout)
    run.add_argument("--keep-going", **keep_going)

    tour = commands.add_parser("tour", help=f"run the tour ({TOUR_NOTEBOOK}) headlessly into {TOUR_HTML}")
    tour.add_argument("--notebook", default=None, metavar="PATH", help=f"notebook to run (default {TOUR_NOTEBOOK})")
    tour.add_argument("--html", default=TOUR_HTML, metavar="OUT", help="where to write the HTML (default %(default)s)")
    tour.add_argument("--cell-timeout", **timeout)
    tour.add_argument("--keep-going", **keep_going)

    check = commands.add_parser(
        "check", help="run notebooks as regression tests (nbval, strict, with the kit's sanitize file)"
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="notebooks or folders (default notebooks/)")
    check.add_argument("-n", dest="workers", type=int, default=None, metavar="N",
                       help="run on N pytest-xdist workers, one notebook per worker at a time (--dist loadscope)")
    check.add_argument("--report", default=str(DEFAULT_REPORT_DIR), metavar="DIR",
                       help="where a failing check writes its report (default %(default)s)")
    check.add_argument("--cell-timeout", type=float, default=None, metavar="SECONDS",
                       help="nbval's limit for each cell (--nbval-cell-timeout)")

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
    if args.command == "check":
        return _check(args)
    if args.command == "sanitize-file":
        print(_sanitize_file())
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
