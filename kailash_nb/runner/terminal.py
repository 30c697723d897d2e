"""What ``kailash-nb check`` prints: a line per notebook as it finishes, then each failing cell with a diff
labelled ``stored`` and ``new`` (text, never HTML markup), then a summary. Colour only on a terminal."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .results import CellResult, NotebookResult

MAX_DIFF_LINES = 40
#: The end of a failing notebook's kernel output that the terminal shows (the report has all of it).
MAX_KERNEL_OUTPUT_LINES = 40
_RED, _GREEN, _CYAN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m"


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org); never in a pipe or a file."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


class Printer:
    """Writes check output to ``stream`` (stdout by default), coloured only on a terminal."""

    def __init__(self, stream: TextIO | None = None, colour: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.colour = use_colour(self.stream) if colour is None else colour

    def paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour else text

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def notebook(self, result: NotebookResult) -> None:
        """``PASS  notebooks/01_tour.ipynb  16 cells  3.1 s`` as a notebook finishes."""
        cells = len(result.cells)
        if result.error is not None:
            self.line(f"{self.paint('ERROR', _RED)} {result.path}  could not run: {result.error}")
        elif result.failed_cells:
            failed = len(result.failed_cells)
            self.line(f"{self.paint('FAIL ', _RED)} {result.path}  {failed} of {cells} cells failed  "
                      f"{result.seconds:.1f} s")
        else:
            self.line(f"{self.paint('PASS ', _GREEN)} {result.path}  {cells} cells  {result.seconds:.1f} s")

    def ran(self, result: NotebookResult) -> None:
        """``ran notebooks/01_tour.ipynb: 16 cells, 1 changed`` as ``update`` runs each notebook."""
        if result.error is not None:
            self.line(f"{self.paint('ERROR', _RED)} {result.path}  could not run: {result.error}")
            return
        counts: dict[str, int] = {}
        for cell in result.cells:
            status = "new" if cell.status == "passed" and cell.stored_execution_count is None else cell.status
            if status not in ("passed", "skipped"):
                counts[status] = counts.get(status, 0) + 1
        found = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no change"
        self.line(f"ran {result.path}: {len(result.cells)} cells, {found}  {result.seconds:.1f} s")

    def failures(self, results: Sequence[NotebookResult]) -> None:
        """Each failing cell with its diff or traceback, each notebook that could not run, and what the
        kernels of those notebooks printed themselves."""
        for result in results:
            if result.error is not None:
                self.line()
                self.line(self.paint(f"COULD NOT RUN {result.path}", _BOLD))
                self.line(f"  {result.error}")
            for cell in result.failed_cells:
                self.line()
                self.line(self.paint(f"FAILED {cell.id}", _BOLD))
                for text in describe_failure(cell):
                    self.line(self._coloured_diff_line(text))
            for text in describe_kernel_output(result):
                self.line(text)

    def _coloured_diff_line(self, text: str) -> str:
        if not self.colour:
            return text
        stripped = text.lstrip()
        if stripped.startswith(("--- stored", "+++ new")):
            return self.paint(text, _BOLD)
        if stripped.startswith("@@"):
            return self.paint(text, _CYAN)
        if text.startswith("    -"):
            return self.paint(text, _RED)
        if text.startswith("    +"):
            return self.paint(text, _GREEN)
        return text


def describe_failure(cell: CellResult) -> list[str]:
    """The lines that explain one failing cell: what changed, as unified diffs, or the error and traceback."""
    lines: list[str] = []
    if cell.status == "changed":
        if not cell.differences and not cell.image_differences:
            lines.append(f"  {cell.reason}")
        plain_changed = any(d.key != "text/html" for d in cell.differences)
        for difference in cell.differences:
            if difference.key == "text/html":
                same = " (its text/plain is unchanged)" if not plain_changed else ""
                lines.append(f"  text/html changed{same}: the report shows both renderings")
                continue
            lines.append(f"  {difference.what}:")
            lines += ["    " + line for line in text_diff(difference.text("stored"), difference.text("new"))]
        for image in cell.image_differences:
            lines.append(f"  {image.what}: the report shows both images and their difference")
    elif cell.status == "raised":
        lines.append(f"  {cell.summary}")
        lines += ["    " + line for line in cell.traceback.splitlines()]
    else:
        lines.append(f"  {cell.summary}")
    return lines


def describe_kernel_output(result: NotebookResult, limit: int = MAX_KERNEL_OUTPUT_LINES) -> list[str]:
    """The end of what a failed notebook's kernel printed itself (its stderr), or nothing."""
    lines = result.shown_kernel_output.splitlines()
    if not lines:
        return []
    cut = [f"    ... {len(lines) - limit} earlier lines (the report has them all)"] if len(lines) > limit else []
    return [f"  kernel output of {result.path}:", *cut, *("    | " + line for line in lines[-limit:])]


def text_diff(stored: str, new: str, limit: int = MAX_DIFF_LINES) -> list[str]:
    """A unified diff labelled ``stored`` and ``new``, cut after ``limit`` lines."""
    diff = list(difflib.unified_diff(stored.splitlines(), new.splitlines(), "stored", "new", lineterm="", n=2))
    if len(diff) > limit:
        diff = [*diff[:limit], f"... {len(diff) - limit} more diff lines (the report has them all)"]
    return diff
