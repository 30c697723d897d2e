"""``kailash-nb check``: notebooks as regression tests, run in parallel, with a diff a person reads at once.

Each notebook runs on a fresh kernel (``engine.py``); its new outputs are compared with the stored ones by
nbval's rules plus images (``results.py``). The terminal shows each failing cell by its one name
(``notebooks/02_workflows.ipynb::cell 9: node processor``) with a ``stored``/``new`` diff; the same
results become a self-contained HTML report, and JUnit XML when asked::

    result = asyncio.run(check_notebooks(CheckConfig(paths=["notebooks"], workers=2)))
    result.ok
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, TypeVar

from .cells import cell_options
from .engine import NotebookRun, execute_notebooks
from .execute import DEFAULT_CELL_TIMEOUT
from .files import refuse_unsafe_output
from .images import DEFAULT_TOLERANCE
from .plan import DURATIONS_FILE, Shard, find_notebooks, key, longest_first, read_durations, shard, write_durations
from .results import FAILING, CheckOptions, NotebookResult, judge
from .terminal import Printer

if TYPE_CHECKING:
    from nbformat import NotebookNode

DEFAULT_REPORT_DIR = Path("out") / "check-report"
T = TypeVar("T")

#: Exit statuses of ``check``, ``update``, ``run`` and ``tour``. A CI job pages people on ``FAILED`` and
#: may retry on ``COULD_NOT_RUN``; when a run has both, ``FAILED`` wins (a retry would not fix it).
EXIT_PASSED = 0
EXIT_FAILED = 1  # an output changed, or a cell raised, timed out or killed its kernel
EXIT_USAGE = 2  # bad arguments: no such notebook, an unknown option
EXIT_COULD_NOT_RUN = 3  # a notebook never ran: its kernel did not start, or it could not be read


def exit_status(results: Sequence[NotebookResult]) -> int:
    """:data:`EXIT_FAILED` if any cell failed, else :data:`EXIT_COULD_NOT_RUN` if a notebook never ran."""
    if any(result.failed_cells for result in results):
        return EXIT_FAILED
    if any(result.could_not_run for result in results):
        return EXIT_COULD_NOT_RUN
    return EXIT_PASSED


@dataclass(slots=True, frozen=True)
class CheckConfig:
    """What to check and how; the defaults are those of ``kailash-nb check``."""

    paths: Sequence[str] = ("notebooks",)
    workers: int = 1
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    sanitize_file: str | None = None  # None: the sanitize file shipped with kailash_nb
    lax: bool = False
    compare_all_images: bool = False
    image_tolerance: float = DEFAULT_TOLERANCE
    shard: Shard | None = None
    durations_file: Path = Path(DURATIONS_FILE)
    store_durations: bool = False

    def options(self) -> CheckOptions:
        from .compare import load_sanitize_patterns

        sanitize = self.sanitize_file if self.sanitize_file is not None else default_sanitize_file()
        return CheckOptions(load_sanitize_patterns(sanitize), self.lax, self.compare_all_images,
                            self.image_tolerance)


@dataclass(slots=True, frozen=True)
class CheckResult:
    """Every notebook's result (in the order the notebooks were named) and how long the check took."""

    notebooks: tuple[NotebookResult, ...]
    seconds: float
    workers: int
    shard: Shard | None = None

    @property
    def ok(self) -> bool:
        return not any(result.failed for result in self.notebooks)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.notebooks:
            for cell in result.cells:
                counts[cell.status] = counts.get(cell.status, 0) + 1
        return counts

    def summary(self) -> str:
        """``2 failed (1 changed, 1 raised), 108 passed, 3 skipped: 113 cells of 10 notebooks in 14.2 s``."""
        counts = self.counts
        failing = {s: n for s, n in counts.items() if s in FAILING}
        parts = []
        if failing:
            detail = ", ".join(f"{n} {s}" for s, n in sorted(failing.items()))
            parts.append(f"{sum(failing.values())} failed ({detail})")
        parts += [f"{counts[s]} {s}" for s in ("passed", "skipped", "not run") if counts.get(s)]
        broken = sum(result.could_not_run for result in self.notebooks)
        if broken:
            parts.append(f"{broken} notebook(s) could not run (not a regression)")
        cells = sum(counts.values())
        where = f", shard {self.shard}" if self.shard else ""
        return (f"{', '.join(parts) or 'nothing ran'}: {cells} cells of {len(self.notebooks)} notebook(s) in "
                f"{self.seconds:.1f} s on {self.workers} worker(s){where}")


def default_sanitize_file() -> str:
    from kailash_nb.notebook import sanitize_file_path

    return sanitize_file_path()


def plan(config: CheckConfig) -> list[Path]:
    """The notebooks of this check (of this shard), longest first."""
    notebooks = find_notebooks(config.paths)
    durations = read_durations(config.durations_file)
    if config.shard is not None:
        return shard(notebooks, config.shard, durations)
    return longest_first(notebooks, durations)


async def check_notebooks(config: CheckConfig,
                          on_result: Callable[[NotebookResult], None] | None = None) -> CheckResult:
    """Run and judge the notebooks of ``config``; ``on_result`` sees each notebook's result as it finishes."""
    started = perf_counter()
    notebooks = plan(config)
    options = config.options()
    names = {path: str(path) for path in notebooks}
    results: dict[Path, NotebookResult] = {}

    def done(run: NotebookRun) -> None:
        results[run.path] = judge(run, names[run.path], options)
        if on_result is not None:
            on_result(results[run.path])

    runs = await execute_notebooks(notebooks, workers=config.workers, cell_timeout=config.cell_timeout,
                                   skip=_skipped_cells, on_done=done)
    if config.store_durations:
        write_durations(config.durations_file, {key(run.path): run.seconds for run in runs if run.error is None})
    ordered = tuple(results[path] for path in sorted(results, key=lambda p: names[p]))
    workers = max(1, min(config.workers, len(notebooks)))  # never more than there were notebooks to run
    return CheckResult(ordered, perf_counter() - started, workers, config.shard)


def _skipped_cells(nb: NotebookNode) -> frozenset[int]:
    return frozenset(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell_options(cell).skip)


def check(config: CheckConfig, *, report_dir: Path | None = DEFAULT_REPORT_DIR, junit: Path | None = None,
          printer: Printer | None = None, command: str = "kailash-nb check") -> int:
    """``kailash-nb check``: run, print, write the report (and JUnit XML); the exit status
    (:func:`exit_status`: 0 passed, 1 a cell failed, 3 a notebook could not run)."""
    printer = printer or Printer()
    refuse_unsafe_outputs(config, report_dir, junit)
    result = run_until_done(lambda: check_notebooks(config, printer.notebook))
    if not result.ok:
        printer.failures(result.notebooks)
    printer.line()
    printer.line(result.summary())
    if report_dir is not None:
        from .report import write_report

        page = write_report(result.notebooks, report_dir, seconds=result.seconds, command=command)
        printer.line(f"report: {page}")
    if junit is not None:
        from .junit import write_junit

        printer.line(f"junit: {write_junit(junit, result.notebooks, result.seconds)}")
    return exit_status(result.notebooks)


def refuse_unsafe_outputs(config: CheckConfig, report_dir: Path | None, junit: Path | None) -> None:
    """Before anything runs: no output may overwrite a notebook, and each must be a file or a folder as meant."""
    notebooks = find_notebooks(config.paths)
    if report_dir is not None:
        refuse_unsafe_output("--report", report_dir, notebooks, folder=True)
    if junit is not None:
        refuse_unsafe_output("--junitxml", junit, notebooks)
    if config.store_durations:
        refuse_unsafe_output("--durations-file", config.durations_file, notebooks)


def run_until_done(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())``, where SIGTERM cancels the run like Ctrl-C does, so that kernels are shut
    down and nothing is left behind; both end with KeyboardInterrupt."""

    async def runner() -> T:
        with _terminate_cancels(asyncio.current_task()) as terminated:
            try:
                return await main()
            except asyncio.CancelledError:
                if terminated:
                    raise KeyboardInterrupt("terminated") from None
                raise

    return asyncio.run(runner())


@contextlib.contextmanager
def _terminate_cancels(task: asyncio.Task[object] | None) -> Iterator[list[bool]]:
    terminated: list[bool] = []
    loop = asyncio.get_running_loop()

    def on_terminate() -> None:
        terminated.append(True)
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_terminate)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals (Windows)
        yield terminated
        return
    try:
        yield terminated
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
