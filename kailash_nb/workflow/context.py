"""Which node is running: bound by the runtime around each node's code, read by call trackers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current_node: ContextVar[str | None] = ContextVar("kailash_nb_current_node", default=None)


def current_node_id() -> str | None:
    """The id of the workflow node whose code is running in this task, or None outside a node."""
    return _current_node.get()


@contextmanager
def running_node(node_id: str) -> Iterator[None]:
    """``with running_node("fetch"): ...``: ``current_node_id()`` is ``"fetch"`` inside the block (in this
    task and the tasks it starts), and what it was before once the block is left."""
    token = _current_node.set(node_id)
    try:
        yield
    finally:
        _current_node.reset(token)
