"""What a check found, cell by cell: the verdict on each code cell and the record the reports read.

:func:`judge` turns a :class:`~kailash_nb.runner.engine.NotebookRun` into a :class:`NotebookResult` by nbval's
rules (``compare.py``) plus the image comparison (``images.py``). The terminal summary, the JUnit XML, the
HTML report and ``update`` all read these records; none of them compares anything again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .cells import CellId, CellOptions, cell_options, identify
from .compare import OutputDifference, compare_outputs, error_of, strip_ansi
from .engine import NotebookRun
from .images import DEFAULT_TOLERANCE, ImageDifference, compare_images

Status = Literal["passed", "changed", "raised", "timed out", "kernel died", "not run", "skipped"]
#: The statuses that fail a check.
FAILING: frozenset[str] = frozenset({"changed", "raised", "timed out", "kernel died"})


@dataclass(slots=True, frozen=True)
class CheckOptions:
    """How outputs are compared: the sanitize patterns, nbval's lax mode, the image rules."""

    patterns: Sequence[tuple[str, str]] = ()
    lax: bool = False
    compare_all_images: bool = False
    image_tolerance: float = DEFAULT_TOLERANCE


@dataclass(slots=True, frozen=True)
class CellResult:
    """The verdict on one code cell, with both sides of every difference."""

    id: CellId
    status: Status
    source: str
    options: CellOptions
    stored_outputs: tuple[Any, ...] = ()
    new_outputs: tuple[Any, ...] = ()
    stored_execution_count: int | None = None
    differences: tuple[OutputDifference, ...] = ()
    image_differences: tuple[ImageDifference, ...] = ()
    reason: str = ""  # for cells that did not run, timed out or were never stored
    seconds: float = 0.0
    compared: bool = True  # False: outputs not compared (ignored, skipped, or never stored)

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def error(self) -> Mapping[str, Any] | None:
        """The error output of the new run, if the cell raised."""
        return error_of(self.new_outputs)

    @property
    def traceback(self) -> str:
        """The new run's traceback as plain text (no colour codes), or ``""``."""
        error = self.error
        if error is None:
            return ""
        return strip_ansi("\n".join(error.get("traceback") or [f"{error.get('ename')}: {error.get('evalue')}"]))

    @property
    def summary(self) -> str:
        """A few words on what happened: ``text/plain changed``, ``raised KeyError: 'x'``, ``timed out``."""
        if self.status == "raised":
            error = self.error or {}
            return f"raised {error.get('ename', 'an error')}: {error.get('evalue', '')}".rstrip(": ")
        if self.status == "changed":
            return "; ".join([d.what for d in self.differences] + [d.what for d in self.image_differences])
        if self.status in ("timed out", "kernel died"):
            return f"{self.status}: {self.reason}" if self.reason else self.status
        return self.reason or self.status


@dataclass(slots=True, frozen=True)
class NotebookResult:
    """Every code cell of one notebook, in order, and the headings that place them."""

    path: str
    cells: tuple[CellResult, ...]
    seconds: float = 0.0
    error: str | None = None  # the notebook could not be run at all
    headings: Mapping[int, str] = field(default_factory=dict)  # position -> markdown heading before it
    kernel_output: str = ""  # what the kernel process printed itself (its stderr): shown only on failure

    @property
    def failed_cells(self) -> tuple[CellResult, ...]:
        return tuple(cell for cell in self.cells if cell.failed)

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.failed_cells)

    @property
    def could_not_run(self) -> bool:
        """The notebook never ran (unreadable, or its kernel did not start): not a regression."""
        return self.error is not None

    @property
    def shown_kernel_output(self) -> str:
        """The kernel's own output when the notebook failed (where it may explain why), else ``""``."""
        return self.kernel_output.strip("\n") if self.failed else ""


def judge(run: NotebookRun, path: str, options: CheckOptions) -> NotebookResult:
    """The verdict on every code cell of ``run`` (``path`` is how the notebook is named in reports)."""
    if run.stored is None:
        return NotebookResult(path, (), run.seconds, run.error, kernel_output=run.kernel_output)
    cells = run.stored.cells
    ids = identify(path, cells)
    results = []
    for index, cell_id in ids.items():
        cell = cells[index]
        cell_run = run.cells.get(index)
        results.append(_judge_cell(cell_id, cell, cell_run, options, run.error))
    return NotebookResult(path, tuple(results), run.seconds, run.error, _headings(cells), run.kernel_output)


def _judge_cell(cell_id: CellId, cell: Any, cell_run: Any, options: CheckOptions, error: str | None) -> CellResult:
    source = cell.get("source", "")
    marks = cell_options(cell, lax=options.lax)
    stored = tuple(cell.get("outputs", ()))
    count = cell.get("execution_count")
    base: dict[str, Any] = {"id": cell_id, "source": source, "options": marks, "stored_outputs": stored,
                            "stored_execution_count": count}
    if cell_run is None:
        return CellResult(status="not run", reason=f"not run: {error}" if error else "not run", compared=False,
                          **base)
    new = tuple(cell_run.outputs)
    base.update(new_outputs=new, seconds=cell_run.seconds)
    if cell_run.ending in ("not run", "skipped", "timed out", "kernel died"):
        return CellResult(status=cell_run.ending, reason=cell_run.reason, compared=False, **base)
    if cell_run.ending == "raised" and not marks.raises:
        return CellResult(status="raised", compared=False, **base)
    if count is None:  # never run when it was stored: nbval compares nothing, but stored outputs are an error
        if stored:
            return CellResult(status="changed", reason="the stored cell was never run but has outputs",
                              compared=False, **base)
        return CellResult(status="passed", reason="no stored outputs to compare (never run)", compared=False,
                          **base)
    if not marks.check:
        return CellResult(status="passed", reason="outputs not compared (NBVAL_IGNORE_OUTPUT)", compared=False,
                          **base)
    differences = tuple(compare_outputs(stored, new, options.patterns))
    images = tuple(compare_images(stored, new, requested=marks.compare_images or options.compare_all_images,
                                  tolerance=options.image_tolerance))
    status: Status = "changed" if differences or images else "passed"
    return CellResult(status=status, differences=differences, image_differences=images, **base)


def _headings(cells: Sequence[Any]) -> dict[int, str]:
    """Markdown headings (``# Title``), by the position of the cell that holds them: context for a report."""
    found = {}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for line in _lines(cell.get("source", "")):
            if line.startswith("#"):
                found[index + 1] = line.lstrip("#").strip()
                break
    return found


def _lines(source: str | Iterable[str]) -> list[str]:
    text = source if isinstance(source, str) else "".join(source)
    return text.splitlines()
