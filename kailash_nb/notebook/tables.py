"""``%kailash calls``: the tracked calls of the session as a stable table (durations in metadata)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .display import Bundle, render, short, table

CALL_COLUMNS = ("resource", "method", "arguments", "outcome", "node")
#: With any replayed call among them, the table gains a column saying where each call was answered.
REPLAY_COLUMNS = (*CALL_COLUMNS, "answered by")


def arguments_text(args: Sequence[Any], kwargs: Any) -> str:
    parts = [short(a) for a in args] + [f"{k}={short(v)}" for k, v in sorted(dict(kwargs).items())]
    return short(", ".join(parts))


def outcome_text(call: Any) -> str:
    if not call.awaited:
        return "never awaited: add await"
    if call.exception is not None:
        return f"raised {type(call.exception).__name__}: {short(str(call.exception))}"
    return short(call.result)


def call_rows(calls: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per call, sorted by resource, node, then call order within that node.

    Calls of one node happen in a fixed order; calls of concurrent nodes interleave differently from
    run to run, so the rows are grouped by node rather than kept in global order.
    """
    seq: dict[tuple[str, str], int] = {}
    keyed = []
    for call in calls:
        node = call.node or ""
        key = (call.resource, node)
        seq[key] = seq.get(key, 0) + 1
        keyed.append(((call.resource, node, seq[key]), call))
    keyed.sort(key=lambda item: item[0])
    return [
        {
            "resource": call.resource,
            "method": call.method,
            "arguments": arguments_text(call.args, call.kwargs),
            "outcome": outcome_text(call),
            "node": call.node or "(outside a node)",
            "answered by": "cassette" if getattr(call, "replayed", False) else "live",
            "duration": call.duration,
        }
        for _, call in keyed
    ]


class CallTable:
    """The calls of a session (or one resource): resource, method, arguments, result or exception, node."""

    def __init__(self, calls: Sequence[Any], resource: str | None = None) -> None:
        self.calls = tuple(calls)
        self.resource = resource

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        rows = call_rows(self.calls)
        title = f"calls of {self.resource!r}" if self.resource else "calls of the session"
        metadata = {"durations": [row["duration"] for row in rows]}
        replayed = sum(1 for row in rows if row["answered by"] == "cassette")
        columns = REPLAY_COLUMNS if replayed else CALL_COLUMNS
        title = f"{title}: {len(rows)}" + (f", {replayed} replayed from a cassette" if replayed else "")
        return render(title, table(rows, columns), metadata=metadata, empty="(no calls)")

    def __repr__(self) -> str:
        return self._repr_mimebundle_()[0]["text/plain"]
