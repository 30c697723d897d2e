"""Which node is running: set by the runtime around each node's code, read by call trackers."""

from __future__ import annotations

from contextvars import ContextVar

_current_node: ContextVar[str | None] = ContextVar("kailash_nb_current_node", default=None)


def current_node_id() -> str | None:
    """The id of the workflow node whose code is running in this task, or None outside a node."""
    return _current_node.get()
