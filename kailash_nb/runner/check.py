"""``kailash-nb check``: nbval under pytest, then the failing notebooks executed into an HTML report.

The module is also a small pytest plugin (``-p kailash_nb.runner.check``): when ``kailash-nb check``
sets :data:`FAILURES_ENV`, it records the notebooks whose cells failed so that they can be re-run into
the HTML report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .execute import DEFAULT_CELL_TIMEOUT, NotebookRunError, run_notebook

#: Where the pytest plugin half of this module writes the failing notebooks (one path a line).
FAILURES_ENV = "KAILASH_NB_CHECK_FAILURES"
DEFAULT_REPORT_DIR = Path("out") / "check-report"
PYTEST_LOG = "pytest-output.txt"



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
