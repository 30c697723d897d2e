"""The HTML report of a check: one self-contained page for the person reading a failed CI run.

The summary at the top names every failing cell as everywhere else
(``notebooks/02_workflows.ipynb::cell 9: node processor``) with what happened, each a link to the cell.
Every notebook follows, its cells in order under their markdown headings: a failing cell is highlighted
and expanded, with stored and new side by side (a line diff for each text difference, HTML outputs rendered
in sandboxed frames, images with their difference, the traceback of an error); a passing cell is one line.

The page loads nothing and runs nothing: the CSS is inline, images are ``data:`` URIs, there is no script,
and its Content-Security-Policy says so to the browser. Frames inherit that policy and are sandboxed, so an
output cannot run script, load anything or touch the page. Everything from a notebook is escaped (jinja2,
autoescape on); only this module's own markup is markup.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from .compare import OutputDifference, normalize_outputs, strip_ansi
from .files import write_atomically
from .images import ImageDifference
from .results import CellResult, NotebookResult
from .textdiff import TextDiff, side_by_side

REPORT_FILE = "index.html"
#: Nothing from the network, no script (default-src 'none'); images only as data: URIs, styles only inline,
#: frames only from srcdoc (about:srcdoc), which inherit this policy.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-src about:; "
    "base-uri 'none'; form-action 'none'"
)
#: The policy again inside each frame, in case a browser does not pass the page's policy on to srcdoc.
FRAME_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: How statuses are ordered in the counts: failures first.
STATUS_ORDER: tuple[str, ...] = ("changed", "raised", "timed out", "kernel died", "not run", "skipped", "passed")
FRAME_MIN_HEIGHT, FRAME_MAX_HEIGHT = 60, 520

_FRAME_STYLE = (
    "html{color-scheme:light}body{margin:8px;font:13px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
    "color:#1f2328;background:#fff}table{border-collapse:collapse;font-size:12px;margin:4px 0}"
    "th,td{padding:3px 10px;border-bottom:1px solid #d8dee4;text-align:right;vertical-align:top}"
    "th{font-weight:600;border-bottom-color:#8c959f}tbody tr:nth-child(odd){background:#f6f8fa}"
    "p{margin:4px 0}pre{white-space:pre-wrap;font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
)
# Elements that usually take a line of their own in an output: how tall a frame should be, without script.
_FRAME_LINES = re.compile(r"<(?:tr|p|h[1-6]|li|br|caption|dt|dd)\b", re.IGNORECASE)
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")

Side = Literal["stored", "new"]


@dataclass(slots=True, frozen=True)
class Piece:
    """One output as the report shows it: ``text`` (a pre), ``html`` (a frame's document), ``image`` (a data
    URI) or ``error`` (a traceback); ``label`` says which (``stdout``, ``text/html``, ``KeyError: 'x'``)."""

    kind: Literal["text", "html", "image", "error"]
    label: str
    content: str
    height: int = 0


@dataclass(slots=True, frozen=True)
class DifferenceView:
    """A difference of one output key: its line diff, and both renderings when the values are markup."""

    what: str
    key: str
    diff: TextDiff
    stored: tuple[Piece, ...] = ()
    new: tuple[Piece, ...] = ()

    @property
    def rendered(self) -> bool:
        return bool(self.stored or self.new)


@dataclass(slots=True, frozen=True)
class ImageView:
    what: str
    stored: str | None
    new: str | None
    diff: str | None


@dataclass(slots=True, frozen=True)
class CellView:
    """A code cell in the report; the differences and outputs are filled only for a failing cell."""

    result: CellResult
    anchor: str
    differences: tuple[DifferenceView, ...] = ()
    images: tuple[ImageView, ...] = ()
    stored_outputs: tuple[Piece, ...] = ()
    new_outputs: tuple[Piece, ...] = ()
    next_failure: str | None = None

    @property
    def failed(self) -> bool:
        return self.result.failed

    @property
    def status_class(self) -> str:
        return _status_class(self.result.status)

    @property
    def source_lines(self) -> int:
        return len(self.result.source.splitlines())

    @property
    def note(self) -> str:
        """Why the cell ended as it did, without the status its badge shows: ``cell 5 timed out``."""
        reason, status = self.result.reason, self.result.status
        if reason == status:
            return ""
        return reason.removeprefix(f"{status}: ")

    @property
    def notice(self) -> str:
        """A sentence on how a failing cell ended, when the differences alone do not say it."""
        status = self.result.status
        if status in ("timed out", "kernel died"):
            default = "The cell timed out" if status == "timed out" else "The kernel died while the cell ran"
            note = self.note or default
            return f"{note[:1].upper()}{note[1:]}. The cells after it were not run."
        if status == "changed" and self.note:
            return f"{self.note[:1].upper()}{self.note[1:]}."
        return ""


@dataclass(slots=True, frozen=True)
class Entry:
    """What a notebook section lists, in order: a markdown heading, or a code cell."""

    heading: str | None = None
    cell: CellView | None = None

    @property
    def heading_parts(self) -> tuple[tuple[str, bool], ...]:
        """The heading's text in runs of (text, is code): markdown's `code` spans."""
        parts = (self.heading or "").split("`")
        if len(parts) % 2 == 0:  # an unpaired backtick: plain text
            return ((self.heading or "", False),)
        return tuple((part, index % 2 == 1) for index, part in enumerate(parts) if part)


@dataclass(slots=True, frozen=True)
class NotebookView:
    result: NotebookResult
    anchor: str
    entries: tuple[Entry, ...]

    @property
    def failed(self) -> bool:
        return self.result.failed

    @property
    def verdict(self) -> str:
        """``could not run``, ``2 of 15 cells failed`` or ``15 cells passed``."""
        cells = self.result.cells
        if self.result.error is not None:
            return "could not run"
        if self.result.failed_cells:
            return f"{len(self.result.failed_cells)} of {_count(len(cells), 'cell')} failed"
        passed = sum(cell.status == "passed" for cell in cells)
        return f"{_count(passed, 'cell')} passed" + _aside(cells)


@dataclass(slots=True, frozen=True)
class Failure:
    """A line of the summary: a failing cell (or a notebook that could not run) and a link to it."""

    name: str
    what: str
    status: str
    anchor: str

    @property
    def status_class(self) -> str:
        return _status_class(self.status)


@dataclass(slots=True, frozen=True)
class Report:
    notebooks: tuple[NotebookView, ...]
    failures: tuple[Failure, ...]
    counts: tuple[tuple[str, int], ...]
    seconds: float
    command: str
    policy: str = CONTENT_SECURITY_POLICY

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def headline(self) -> str:
        """``2 cells failed in 1 of 3 notebooks`` or ``15 cells of 1 notebook passed``."""
        results = [view.result for view in self.notebooks]
        cells = [cell for result in results for cell in result.cells]
        if not results:
            return "No notebooks were checked"
        if self.failed:
            parts = []
            failed_cells = sum(cell.failed for cell in cells)
            failed_notebooks = sum(result.failed for result in results)
            if failed_cells:
                parts.append(f"{_count(failed_cells, 'cell')} failed")
            broken = sum(result.error is not None for result in results)
            if broken:
                parts.append(f"{_count(broken, 'notebook')} could not run")
            return f"{' and '.join(parts)} in {failed_notebooks} of {_count(len(results), 'notebook')}"
        passed = sum(cell.status == "passed" for cell in cells)
        return f"{_count(passed, 'cell')} of {_count(len(results), 'notebook')} passed" + _aside(cells)


def write_report(notebooks: Sequence[NotebookResult], folder: Path | str, *, seconds: float, command: str) -> Path:
    """Write ``folder/index.html``, replacing the one an earlier check left there (and nothing else)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / REPORT_FILE
    page.unlink(missing_ok=True)  # a report that failed to render must not leave the last run's behind
    write_atomically(page, render_report(build_report(notebooks, seconds=seconds, command=command)))
    return page


def build_report(notebooks: Sequence[NotebookResult], *, seconds: float, command: str) -> Report:
    """What the page shows, computed once: anchors, failures in order, diffs and renderings."""
    anchors = _Anchors()
    notebook_anchors = [anchors.new(result.path) for result in notebooks]
    cell_anchors = {
        (index, cell.id.position): anchors.new(f"{notebook_anchors[index]}-cell-{cell.id.position}")
        for index, result in enumerate(notebooks)
        for cell in result.cells
    }
    failures: list[Failure] = []
    for index, result in enumerate(notebooks):
        if result.error is not None:
            failures.append(Failure(result.path, f"could not run: {result.error}", "error", notebook_anchors[index]))
        failures += [
            Failure(str(cell.id), cell.summary, cell.status, cell_anchors[index, cell.id.position])
            for cell in result.failed_cells
        ]
    following = {failure.anchor: after.anchor for failure, after in pairwise(failures)}
    views = []
    for index, result in enumerate(notebooks):
        cells = {}
        for cell in result.cells:
            anchor = cell_anchors[index, cell.id.position]
            cells[cell.id.position] = _cell_view(cell, anchor, following.get(anchor))
        views.append(NotebookView(result, notebook_anchors[index], _entries(result, cells)))
    counts: dict[str, int] = {}
    for result in notebooks:
        for cell in result.cells:
            counts[cell.status] = counts.get(cell.status, 0) + 1
    ordered = tuple((status, counts[status]) for status in STATUS_ORDER if counts.get(status))
    return Report(tuple(views), tuple(failures), ordered, seconds, command)


def render_report(report: Report) -> str:
    """The page's HTML, from ``templates/report.html.j2``."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("kailash_nb.runner", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["duration"] = duration
    return environment.get_template("report.html.j2").render(report=report)


def duration(seconds: float) -> str:
    """``850 ms``, ``6.9 s``, ``2 min 5 s``: how long something took, to a useful precision."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _entries(result: NotebookResult, cells: Mapping[int, CellView]) -> tuple[Entry, ...]:
    """The notebook's code cells in order, each after the markdown headings between it and the cell before."""
    entries: list[Entry] = []
    headings = sorted(result.headings.items())
    previous = 0
    for cell in result.cells:
        position = cell.id.position
        entries += [Entry(heading=text) for at, text in headings if previous < at < position]
        entries.append(Entry(cell=cells[position]))
        previous = position
    return tuple(entries)


def _cell_view(cell: CellResult, anchor: str, next_failure: str | None) -> CellView:
    if not cell.failed:
        return CellView(cell, anchor)
    return CellView(
        cell,
        anchor,
        differences=tuple(_difference_view(difference) for difference in cell.differences),
        images=tuple(_image_view(image) for image in cell.image_differences),
        stored_outputs=_pieces(cell.stored_outputs),
        new_outputs=_pieces(cell.new_outputs),
        next_failure=next_failure,
    )


def _difference_view(difference: OutputDifference) -> DifferenceView:
    diff = side_by_side(difference.text("stored"), difference.text("new"))
    key = difference.key
    if key == "text/html":
        return DifferenceView(difference.what, key, diff, tuple(_html_piece(_joined(v)) for v in difference.stored),
                              tuple(_html_piece(_joined(v)) for v in difference.new))
    if key == "image/svg+xml":
        return DifferenceView(difference.what, key, diff,
                              tuple(Piece("image", key, _data_uri(key, _joined(v))) for v in difference.stored),
                              tuple(Piece("image", key, _data_uri(key, _joined(v))) for v in difference.new))
    return DifferenceView(difference.what, key, diff)


def _image_view(image: ImageDifference) -> ImageView:
    def uri(data: str | None) -> str | None:
        return _data_uri("image/png", data) if data else None

    return ImageView(image.what, uri(image.stored), uri(image.new), uri(image.diff))


def _pieces(outputs: Iterable[Mapping[str, Any]]) -> tuple[Piece, ...]:
    """A cell's outputs as they would look in a notebook (streams merged), one piece each."""
    pieces = []
    for output in normalize_outputs(outputs):
        kind = output.get("output_type")
        if kind == "stream":
            pieces.append(Piece("text", output.get("name", "stdout"), _joined(output.get("text", ""))))
        elif kind == "error":
            traceback = "\n".join(output.get("traceback") or ())
            label = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".rstrip(": ")
            pieces.append(Piece("error", label, strip_ansi(traceback) or label))
        else:
            pieces.append(_best_rendering(output.get("data") or {}))
    return tuple(pieces)


def _best_rendering(data: Mapping[str, Any]) -> Piece:
    """What a notebook front end would show of a MIME bundle: markup rendered, pictures drawn, else text."""
    if "text/html" in data:
        return _html_piece(_joined(data["text/html"]))
    for mime in ("image/png", "image/jpeg", "image/svg+xml"):
        if mime in data:
            return Piece("image", mime, _data_uri(mime, _joined(data[mime])))
    for mime in ("text/markdown", "text/plain"):
        if mime in data:
            return Piece("text", mime, _joined(data[mime]))
    if not data:
        return Piece("text", "(empty output)", "")
    mime, value = next(iter(data.items()))
    text = value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False,
                                                              default=str)
    return Piece("text", mime, text)


def _html_piece(markup: str) -> Piece:
    document = (
        f'<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{FRAME_POLICY}">'
        f"<style>{_FRAME_STYLE}</style></head><body>{markup}</body></html>"
    )
    lines = len(_FRAME_LINES.findall(markup))
    height = max(FRAME_MIN_HEIGHT, min(FRAME_MAX_HEIGHT, 20 + 24 * lines))
    return Piece("html", "text/html", document, height)


def _data_uri(mime: str, data: str) -> str:
    if mime == "image/svg+xml":
        data = base64.b64encode(data.encode("utf-8")).decode("ascii")
    return f"data:{mime};base64,{''.join(data.split())}"


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else str(value)


def _status_class(status: str) -> str:
    return "status-" + status.replace(" ", "-")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _aside(cells: Sequence[CellResult]) -> str:
    """`` (2 skipped, 1 not run)``: the cells that neither passed nor failed, if any."""
    others = [(status, sum(cell.status == status for cell in cells)) for status in ("skipped", "not run")]
    said = [f"{number} {status}" for status, number in others if number]
    return f" ({', '.join(said)})" if said else ""


class _Anchors:
    """Element ids that read like the names they stand for (``notebooks-02_x.ipynb-cell-9``), each unique."""

    RESERVED = frozenset({"summary", "failures", "notebooks", "top"})

    def __init__(self) -> None:
        self.taken: set[str] = set(self.RESERVED)

    def new(self, text: str) -> str:
        base = _SLUG.sub("-", text).strip("-") or "notebook"
        anchor, number = base, 1
        while anchor in self.taken:
            number += 1
            anchor = f"{base}-{number}"
        self.taken.add(anchor)
        return anchor

