"""The table of timings that the server benchmarks print: median, min and max of each measurement, and its target."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

COLUMNS = ("measurement", "n", "median ms", "min ms", "max ms", "target", "result")


class TimingTable:
    """Rows of ``measurement | n | median | min | max | target | result``, in milliseconds with ``digits``
    decimals; the first column ``width`` characters wide."""

    def __init__(self, width: int, digits: int = 1) -> None:
        self.widths = (width, 5, 9, 9, 9, 11, 6)
        self.digits = digits

    def line(self, cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) if i in (0, 6) else cell.rjust(w)
                                 for i, (cell, w) in enumerate(zip(cells, self.widths, strict=True))) + " |"

    def header(self) -> str:
        return self.line(COLUMNS) + "\n|" + "|".join("-" * (w + 2) for w in self.widths) + "|"

    def row(self, name: str, times: Sequence[float], target: float | None) -> str:
        """One measurement (``times`` in seconds) against ``target`` seconds (``None``: shown for comparison)."""
        median = statistics.median(times)
        verdict = "" if target is None else ("ok" if median <= target else "MISSED")
        ms = [f"{value * 1000:.{self.digits}f}" for value in (median, min(times), max(times))]
        return self.line((name, str(len(times)), *ms, "" if target is None else f"<= {target * 1000:g} ms", verdict))
