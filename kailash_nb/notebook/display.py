"""Rich displays: every object the kit shows has ``text/plain`` and ``text/html`` that are identical from
run to run (sorted rows, no addresses, ids, timestamps or durations). Durations go into display metadata.

Tables are pandas DataFrames rendered with escaping, so data cannot inject markup into the notebook.
pandas is imported only when something is displayed.
"""

from __future__ import annotations

import html
import pprint
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from kailash_nb.workflow import Workflow, WorkflowResult

Bundle = tuple[dict[str, Any], dict[str, Any]]
METADATA_KEY = "kailash_nb"
_MAX_VALUE = 200
# Run-dependent parts of reprs: memory addresses and unittest.mock ids.
_UNSTABLE = re.compile(r" at 0x[0-9a-fA-F]+| id='\d+'")


class _SafePrinter(pprint.PrettyPrinter):
    """``pprint`` where an object whose ``repr`` raises shows as ``<unrepresentable Type: repr raised Error>``
    (inside a list or dict too, the rest shown as usual): a node's output is shown, not a display error."""

    def format(self, object: Any, context: dict[int, int], maxlevels: int, level: int) -> tuple[str, bool, bool]:
        try:
            return super().format(object, context, maxlevels, level)
        except Exception as exc:
            return unrepresentable(object, exc), False, False


_PRINTER = _SafePrinter(width=10**6, compact=True, sort_dicts=True)


def unrepresentable(value: object, error: BaseException) -> str:
    """What shows for ``value`` when its ``repr`` (or ``str``) raised ``error``: stable text, no address."""
    return f"<unrepresentable {type(value).__qualname__}: repr raised {type(error).__name__}>"


def short(value: Any) -> str:
    """A one-line, bounded repr for a table cell (dicts sorted, so the text is stable); an object whose
    ``repr`` raises shows as ``<unrepresentable Type: repr raised Error>``."""
    text = value if isinstance(value, str) else _PRINTER.pformat(value)
    text = _UNSTABLE.sub("", text).strip().replace("\r\n", "\n").replace("\n", " ↵ ")
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame of ``rows`` (already in display order) with the given columns, values as strings."""
    import pandas as pd

    return pd.DataFrame([[str(row.get(c, "")) for c in columns] for row in rows], columns=list(columns))


def render(title: str, frame: pd.DataFrame | None, notes: Iterable[str] = (), metadata: Mapping[str, Any] | None = None,
           empty: str = "(none)") -> Bundle:
    """A bundle of a title line, a table and notes, as escaped HTML and as plain text."""
    import pandas as pd

    notes = list(notes)
    text = [title]
    parts = [f"<p><strong>{html.escape(title)}</strong></p>"]
    if frame is None or frame.empty:
        text.append(empty)
        parts.append(f"<p>{html.escape(empty)}</p>")
    else:
        with pd.option_context("display.max_colwidth", None, "display.width", 10**6):
            text.append(frame.to_string(index=False))
            parts.append(frame.to_html(index=False, escape=True, border=0))
    for note in notes:
        text.append(note)
        parts.append(f"<pre>{html.escape(note)}</pre>")
    data = {"text/plain": "\n".join(text), "text/html": "<div class=\"kailash-nb\">" + "\n".join(parts) + "</div>"}
    return data, ({METADATA_KEY: dict(metadata)} if metadata else {})


def error_lines(error: BaseException, filename: str | None = None) -> str:
    """``Type: message``, the lines of node code (``filename``) the traceback went through, and the
    exception's notes (as a traceback shows them)."""
    lines = [_UNSTABLE.sub("", f"{type(error).__name__}: {error}")]
    for frame in traceback.extract_tb(error.__traceback__):
        if filename is not None and frame.filename != filename:
            continue
        lines.append(f"  line {frame.lineno}: {(frame.line or '').strip()}")
    lines += [_UNSTABLE.sub("", str(note)) for note in getattr(error, "__notes__", None) or ()]
    return "\n".join(lines)


# -- engine objects (registered with the shell's mimebundle formatter) -------------------------------

def workflow_result_bundle(result: WorkflowResult) -> Bundle:
    """Status, a row per node (status, output, prints) in plan order, and errors with code lines.

    Plan order (a topological order fixed when the workflow is built) reads as the data flows and is the
    same from run to run.
    """
    wf = result.workflow
    rows = []
    for node_id in wf.order:
        status = result.node_status.get(node_id, "not run")
        output = result.outputs.get(node_id)
        rows.append({
            "node": node_id,
            "status": status,
            "output": short(output) if output is not None else "",
            "prints": short(result.logs.get(node_id, "")),
        })
    counts: dict[str, int] = {}
    for status in result.node_status.values():
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    notes = []
    for node_id in sorted(result.errors, key=wf.order.index):
        node = wf.nodes.get(node_id)
        notes.append(f"error in node {node_id!r}:\n"
                     + error_lines(result.errors[node_id], node.filename if node else None))
    metadata = {
        "execution_time": result.execution_time,
        "node_timings": {n: [t.start, t.end] for n, t in sorted(result.node_timings.items())},
    }
    title = f"WorkflowResult {wf.name!r}: {result.status} ({summary})"
    return render(title, table(rows, ["node", "status", "output", "prints"]), notes, metadata)


def workflow_bundle(wf: Workflow) -> Bundle:
    """Nodes in plan order with their inputs, timeout and description."""
    rows = []
    for node_id in wf.order:
        node = wf.nodes[node_id]
        inputs = ", ".join(
            f"{c.target_input}={c.source}.{c.source_output}"
            for c in sorted(wf.inbound[node_id], key=lambda c: c.target_input)
        )
        rows.append({
            "node": node_id,
            "inputs": inputs,
            "timeout": "" if node.timeout is None else f"{node.timeout:g} s",
            "description": node.description or "",
        })
    title = f"Workflow {wf.name!r}: {len(wf.nodes)} node(s), {len(wf.connections)} connection(s)"
    return render(title, table(rows, ["node", "inputs", "timeout", "description"]))


# -- objects of the notebook layer -------------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class NodeOutput:
    """What a ``%%kailash`` cell shows: the node's output dict, one row per key (sorted)."""

    workflow: str
    node: str
    output: Mapping[str, Any]
    duration: float | None = field(default=None, compare=False)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        rows = sorted(({"key": _key(k), "value": short(v)} for k, v in self.output.items()), key=lambda row: row["key"])
        metadata = {"duration": self.duration} if self.duration is not None else None
        title = f"node {self.node!r} of workflow {self.workflow!r}: output"
        return render(title, table(rows, ["key", "value"]), metadata=metadata, empty="(empty dict)")

    def __repr__(self) -> str:
        return self._repr_mimebundle_()[0]["text/plain"]


def _key(key: object) -> str:
    try:
        return str(key)
    except Exception as exc:
        return unrepresentable(key, exc)
