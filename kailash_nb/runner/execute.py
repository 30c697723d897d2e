"""Run notebooks headlessly and export them as HTML; the engine of ``kailash-nb run`` and ``tour``.

Notebooks run on a kernel of *this* interpreter (``sys.executable -m ipykernel_launcher``), whatever
kernelspecs are installed, so a fresh clone's ``.venv`` needs no ``ipykernel install`` step. nbclient and
nbconvert are imported only inside the functions that use them.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kailash_nb.errors import KailashNbError

from .files import refuse_unsafe_output, write_atomically

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

#: nbconvert's lab template, offline and without script (``templates/offline.html.j2``).
HTML_TEMPLATE = "offline.html.j2"
# The page's own markup has neither; in a notebook's HTML (escaped in code, raw in outputs) they are elements.
_SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|$)", re.IGNORECASE | re.DOTALL)
_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
#: A cell that runs longer than this has hung (run, tour, check and update alike).
DEFAULT_CELL_TIMEOUT = 300.0
KERNEL_ARGUMENTS = [
    "--IPKernelApp.log_level=ERROR",  # ipykernel warns on stderr about unencrypted local TCP
    "--HistoryManager.enabled=False",  # a headless run is not the user's IPython history
]

# Variables a frontend or a shell may set that would change how the kernel renders: a headless run
# never has a live widget frontend (JPY_SESSION_NAME makes the extension think it has one), and a
# non-inline MPLBACKEND would keep charts out of the output.
_DROPPED_KERNEL_ENV = ("JPY_SESSION_NAME", "MPLBACKEND")
_HEADLESS_KERNEL_ENV = {
    "KAILASH_NB_WIDGETS": "0",  # kailash_nb.notebook.WIDGETS_ENV: static output instead of widgets
    # ipykernel's debugger warns about frozen modules on stderr on 3.11+; the warning is noise here.
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


class NotebookRunError(KailashNbError, RuntimeError):
    """The notebook could not be run at all (missing file, unreadable JSON)."""


class NotebookCouldNotRunError(NotebookRunError):
    """The notebook exists but never ran: it could not be read, or its kernel did not start. Not a
    regression (``kailash-nb run`` exits 3); ``output`` is what the kernel printed, if it got that far."""

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


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
    kernel_output: str = ""  # what the kernel process printed itself (its stderr), shown only on failure

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
        output = self.kernel_output.strip("\n").splitlines() if not self.ok else []
        if output:
            lines += ["kernel output:", *("    | " + line for line in output[-40:])]
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
    The HTML is written in both cases, so a failure can be read in context. The kernel starts as
    ``kernel.py`` says (retried on fresh ports when it loses a port race); when it cannot start, or the
    file is not a notebook, :class:`NotebookCouldNotRunError` says so.
    """
    import asyncio

    path = Path(notebook)
    if not path.is_file():
        raise NotebookRunError(f"notebook not found: {path} (pass the path of an .ipynb file)")
    if html is not None:
        refuse_unsafe_output("--html", html, [path])
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise NotebookCouldNotRunError(f"cannot read {path} as a notebook: {exc}") from exc
    return asyncio.run(_run_notebook(path, nb, None if html is None else Path(html), cell_timeout=cell_timeout,
                                     keep_going=keep_going, startup_timeout=startup_timeout))


async def _run_notebook(path: Path, nb: Any, out: Path | None, *, cell_timeout: float, keep_going: bool,
                        startup_timeout: float) -> NotebookRun:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from .kernel import KernelStartError, start_kernel, stop_kernel

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

    begin = time.perf_counter()
    try:
        kernel = await start_kernel(path.parent.resolve(), startup_timeout, name=str(path))
    except KernelStartError as exc:
        raise NotebookCouldNotRunError(f"{path}: {exc}", output=exc.output) from exc
    client = NotebookClient(
        nb,
        km=kernel.manager,
        timeout=cell_timeout,
        allow_errors=keep_going,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_start=on_cell_start,
        on_cell_error=on_cell_error,
    )
    client.kc = kernel.client  # the kernel is up: nbclient runs the cells, kernel.py stops it
    client.kc.allow_stdin = False
    stopped_early = hard_stop = False
    try:
        await client.async_execute(cleanup_kc=False)
    except CellExecutionError:
        stopped_early = True
    except (CellTimeoutError, DeadKernelError) as exc:
        stopped_early = hard_stop = True
        index = started[-1] if started else 0
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, CellTimeoutError):
            reason = f"no result after {cell_timeout:g} s (cell timeout)"
        cell = nb.cells[index]
        failures[index] = CellFailure(index, cell.get("execution_count"), type(exc).__name__, reason, cell.source)
    finally:
        output = kernel.output
        await stop_kernel(kernel, now=hard_stop)
    seconds = time.perf_counter() - begin

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
        kernel_output=output,
    )


def write_html(nb: Any, out: Path) -> Path:
    """Write a notebook node as a self-contained HTML page that loads nothing and runs no script.

    nbconvert's lab page without its CDN scripts (require.js, MathJax, mermaid, the widget manager), without
    JavaScript outputs and with the ``<script>``/``<link>`` elements of HTML outputs and markdown removed,
    under the check report's Content-Security-Policy, which blocks whatever else a notebook's HTML asks
    for (event handlers, remote images, frames). Images are inline ``data:`` URIs; math shows as its TeX.
    """
    from nbconvert import HTMLExporter

    from .report import CONTENT_SECURITY_POLICY

    exporter = HTMLExporter(embed_images=True, template_file=HTML_TEMPLATE,
                            extra_template_paths=[str(Path(__file__).parent / "templates")])
    body, _ = exporter.from_notebook_node(nb, resources={"content_security_policy": CONTENT_SECURITY_POLICY})
    body = _LINK.sub("", _SCRIPT.sub("", body))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, body)
    return out
