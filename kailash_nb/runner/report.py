"""The HTML report of a check: one self-contained page (placeholder, replaced by the full report)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from .results import NotebookResult


def write_report(results: Sequence[NotebookResult], folder: Path, *, seconds: float, command: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f"<li>{html.escape(str(cell.id))}: {html.escape(cell.summary)}</li>"
        for result in results for cell in result.failed_cells
    )
    page = folder / "index.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><title>kailash-nb check</title><ul>{rows}</ul>",
                    encoding="utf-8")
    return page
