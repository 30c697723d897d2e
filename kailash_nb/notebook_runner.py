"""Run notebooks headlessly and export them as HTML; the engine of ``kailash-nb run``, ``tour`` and ``check``.

Notebooks run on a kernel of *this* interpreter (``sys.executable -m ipykernel_launcher``), whatever
kernelspecs are installed, so a fresh clone's ``.venv`` needs no ``ipykernel install`` step. nbclient and
nbconvert are imported only inside the functions that use them.

The module is also a small pytest plugin (``-p kailash_nb.notebook_runner``): when ``kailash-nb check``
sets :data:`FAILURES_ENV`, it records the notebooks whose cells failed so that they can be re-run into
the HTML report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

#: Where the pytest plugin half of this module writes the failing notebooks (one path a line).
FAILURES_ENV = "KAILASH_NB_CHECK_FAILURES"
DEFAULT_CELL_TIMEOUT = 600.0
DEFAULT_REPORT_DIR = Path("out") / "check-report"
PYTEST_LOG = "pytest-output.txt"

# Variables a frontend or a shell may set that would change how the kernel renders: a headless run
# never has a live widget frontend (JPY_SESSION_NAME makes the extension think it has one), and a
# non-inline MPLBACKEND would keep charts out of the output.
_DROPPED_KERNEL_ENV = ("JPY_SESSION_NAME", "MPLBACKEND")
_HEADLESS_KERNEL_ENV = {
    "KAILASH_NB_WIDGETS": "0",  # kailash_nb.notebook.WIDGETS_ENV: static output instead of widgets
    # ipykernel's debugger warns about frozen modules on stderr on 3.11+; the warning is noise here.
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


class NotebookRunError(Exception):
    """The notebook could not be run at all (missing file, unreadable JSON, missing dependency)."""


@dataclass(slots=True, frozen=True)
class CellFailure:
    """A code cell that raised (or timed out, or killed the kernel) during a run."""

    index: int  # position among all the notebook's cells, 0-based
    execution_count: int | None
    ename: str
    evalue: str
    source: str

    def describe(self) -> str:
        first_line = next((line for line in self.source.splitlines() if line.strip()), "")
        count = f", In [{self.execution_count}]" if self.execution_count else ""
        where = f"cell {self.index + 1}{count}"
        head = f"{where}: {self.ename}: {self.evalue}".rstrip(": ")
        return f"{head}\n    {first_line}" if first_line else head


@dataclass(slots=True, frozen=True)
class NotebookRun:
    """What happened when a notebook ran: cells executed, failures, time taken, where the HTML went."""

    notebook: Path
    html: Path | None
    cells_run: int
    code_cells: int
    failures: tuple[CellFailure, ...]
    seconds: float
    stopped_early: bool

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        errors = len(self.failures)
        lines = [
            f"ran {self.notebook}: {self.cells_run} of {self.code_cells} code cells, "
            f"{errors} error{'s' if errors != 1 else ''} in {self.seconds:.1f} s"
            + (" (stopped at the failing cell)" if self.stopped_early else "")
        ]
        lines += [f"FAILED {failure.describe()}" for failure in self.failures]
        if self.html is not None:
            lines.append(f"HTML: {self.html}")
        return "\n".join(lines)


def kernel_manager(extra_env: dict[str, str] | None = None) -> AsyncKernelManager:
    """A kernel manager whose kernel is ``sys.executable -m ipykernel_launcher``, ignoring kernelspecs.

    nbval's ``--nbval-current-env`` makes the same choice; a kernelspec named in the notebook or
    installed in the user's Jupyter dirs could point at another Python without kailash_nb.
    """
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = KernelSpec(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name=f"Python {sys.version_info.major}.{sys.version_info.minor} ({sys.executable})",
        language="python",
        env=dict(extra_env or {}),
    )

    class ThisPythonKernelSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return spec

    return AsyncKernelManager(kernel_name="kailash-nb-this-python", kernel_spec_manager=ThisPythonKernelSpecs())


def headless_kernel_env() -> dict[str, str]:
    """The environment of a headless kernel: this process's, minus frontend hints, plus the headless flags."""
    env = {key: value for key, value in os.environ.items() if key not in _DROPPED_KERNEL_ENV}
    env.update(_HEADLESS_KERNEL_ENV)
    return env


def run_notebook(
    notebook: str | os.PathLike[str],
    html: str | os.PathLike[str] | None = None,
    *,
    cell_timeout: float = DEFAULT_CELL_TIMEOUT,
    keep_going: bool = False,
    startup_timeout: float = 120.0,
) -> NotebookRun:
    """Execute ``notebook`` in its own folder on a headless kernel and write it as HTML to ``html``.

    Stops at the first failing cell unless ``keep_going`` (cells tagged ``raises-exception`` may fail).
    The HTML is written in both cases, so a failure can be read in context.
    """
    path = Path(notebook)
    if not path.is_file():
        raise NotebookRunError(f"notebook not found: {path} (pass the path of an .ipynb file)")
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError as exc:  # pragma: no cover - both are dependencies of kailash_nb
        raise NotebookRunError(f"{exc}: install nbclient and nbformat (pip install kailash_nb)") from exc
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise NotebookRunError(f"cannot read {path} as a notebook: {exc}") from exc

    failures: dict[int, CellFailure] = {}
    started: list[int] = []

    def on_cell_start(cell: Any, cell_index: int) -> None:
        if cell.cell_type == "code":
            started.append(cell_index)

    def on_cell_error(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        if "raises-exception" in cell.metadata.get("tags", []):
            return
        content = execute_reply["content"]
        failures[cell_index] = CellFailure(
            cell_index, cell.get("execution_count"), content.get("ename", "Error"),
            content.get("evalue", ""), cell.source,
        )

    client = NotebookClient(
        nb,
        km=kernel_manager(),
        # ipykernel 7 warns on stderr that local TCP is unencrypted: noise for a local headless run.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        timeout=cell_timeout,
        startup_timeout=startup_timeout,
        allow_errors=keep_going,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_start=on_cell_start,
        on_cell_error=on_cell_error,
    )
    begin = time.perf_counter()
    stopped_early = False
    try:
        client.execute(env=headless_kernel_env())
    except CellExecutionError:
        stopped_early = True
    except (CellTimeoutError, DeadKernelError) as exc:
        stopped_early = True
        index = started[-1] if started else 0
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, CellTimeoutError):
            reason = f"no result after {cell_timeout:g} s (cell timeout)"
        cell = nb.cells[index]
        failures[index] = CellFailure(index, cell.get("execution_count"), type(exc).__name__, reason, cell.source)
    seconds = time.perf_counter() - begin

    out = Path(html) if html is not None else None
    if out is not None:
        write_html(nb, out)
    return NotebookRun(
        notebook=path,
        html=out,
        cells_run=len(started),
        code_cells=sum(cell.cell_type == "code" for cell in nb.cells),
        failures=tuple(failures[index] for index in sorted(failures)),
        seconds=seconds,
        stopped_early=stopped_early,
    )


def write_html(nb: Any, out: Path) -> Path:
    """Write a notebook node as a standalone HTML page (outputs' images are inline ``data:`` URIs)."""
    try:
        from nbconvert import HTMLExporter
    except ImportError as exc:
        raise NotebookRunError(f"{exc}: HTML export needs nbconvert (pip install nbconvert)") from exc
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


# ----------------------------------------------------------------------------------------------------
# kailash-nb check: nbval under pytest, then the failing notebooks executed into an HTML report


@dataclass(slots=True, frozen=True)
class CheckResult:
    exit_code: int
    failed_notebooks: tuple[Path, ...]
    report_dir: Path | None


def check_command(
    paths: Sequence[str], *, sanitize_file: str, workers: int | None = None, cell_timeout: float | None = None
) -> list[str]:
    """The pytest command line of ``kailash-nb check`` (strict nbval, the kit's sanitize file)."""
    command = [
        sys.executable, "-m", "pytest", "--nbval", *paths,
        f"--nbval-sanitize-with={sanitize_file}",
        "--nbval-current-env",
        "-p", "no:cacheprovider",
        "-p", __name__,
    ]
    if cell_timeout is not None:
        command += ["--nbval-cell-timeout", f"{cell_timeout:g}"]
    if workers is not None:
        command += ["-n", str(workers), "--dist", "loadscope"]
    return command


def check_notebooks(
    paths: Sequence[str],
    *,
    sanitize_file: str,
    workers: int | None = None,
    report_dir: str | os.PathLike[str] = DEFAULT_REPORT_DIR,
    cell_timeout: float | None = None,
) -> CheckResult:
    """Run ``paths`` as nbval regression tests; on failure write the pytest output and each failing
    notebook, executed afresh, as HTML into ``report_dir``."""
    if workers is not None:
        import importlib.util

        if importlib.util.find_spec("xdist") is None:
            raise NotebookRunError("-n needs pytest-xdist: pip install pytest-xdist")
    report = Path(report_dir)
    fd, failures_file = tempfile.mkstemp(prefix="kailash-nb-check-", suffix=".txt")
    os.close(fd)
    try:
        env = {key: value for key, value in os.environ.items() if key != "JPY_SESSION_NAME"}
        env.update({FAILURES_ENV: failures_file, "KAILASH_NB_WIDGETS": "0"})
        command = check_command(paths, sanitize_file=sanitize_file, workers=workers, cell_timeout=cell_timeout)
        exit_code, output = _stream(command, env)
        failed = _read_failures(Path(failures_file))
    finally:
        os.unlink(failures_file)
    if exit_code == 0:
        return CheckResult(0, (), None)

    _clear_report(report)
    report.mkdir(parents=True, exist_ok=True)
    (report / PYTEST_LOG).write_text(output, encoding="utf-8")
    for notebook in failed:
        target = report / _report_name(notebook)
        print(f"executing {notebook} for the report ...", flush=True)
        try:
            run = run_notebook(notebook, target, keep_going=True, cell_timeout=cell_timeout or DEFAULT_CELL_TIMEOUT)
            print(run.summary(), flush=True)
        except NotebookRunError as exc:
            print(f"could not execute {notebook}: {exc}", flush=True)
    return CheckResult(exit_code, tuple(failed), report)


def _stream(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``command``, echoing its output as it comes and returning it."""
    lines: list[str] = []
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        sys.stdout.flush()
        return process.wait(), "".join(lines)


def _read_failures(path: Path) -> list[Path]:
    seen: dict[Path, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            seen.setdefault(Path(line.strip()), None)
    return list(seen)


def _report_name(notebook: Path) -> str:
    try:
        relative = notebook.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        relative = Path(notebook.name)
    return "__".join(relative.with_suffix(".html").parts)


def _clear_report(report: Path) -> None:
    """Remove what an earlier failing check wrote (only our own kinds of file) so no stale page misleads."""
    if not report.is_dir():
        return
    for entry in report.iterdir():
        if entry.is_file() and (entry.suffix == ".html" or entry.name == PYTEST_LOG):
            entry.unlink()
        elif entry.is_dir() and entry.name.endswith("_files"):
            shutil.rmtree(entry, ignore_errors=True)


class _FailureRecorder:
    """Appends the path of every notebook with a failing item (or failing collection) to a file."""

    def __init__(self, target: str, rootpath: Path) -> None:
        self.target = target
        self.rootpath = rootpath

    def _record(self, report: Any) -> None:
        if not report.failed or not report.nodeid:
            return
        path = (self.rootpath / report.nodeid.split("::", 1)[0]).resolve()
        if path.suffix == ".ipynb":
            with open(self.target, "a", encoding="utf-8") as sink:
                sink.write(f"{path}\n")

    def pytest_runtest_logreport(self, report: Any) -> None:
        self._record(report)

    def pytest_collectreport(self, report: Any) -> None:
        self._record(report)


def pytest_configure(config: Any) -> None:
    """Record failing notebooks in the controlling process only (xdist forwards workers' reports)."""
    target = os.environ.get(FAILURES_ENV)
    if target and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_FailureRecorder(target, Path(config.rootpath)), "kailash-nb-failures")
