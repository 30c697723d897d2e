"""Which node is running: bound by the runtime around each node's code, read by call trackers."""

from __future__ import annotations

from contextvars import ContextVar

_current_node: ContextVar[str | None] = ContextVar("kailash_nb_current_node", default=None)


def current_node_id() -> str | None:
    """The id of the workflow node whose code is running in this task, or None outside a node."""
    return _current_node.get()


class running_node:
    """``with running_node("fetch"): ...``: ``current_node_id()`` is ``"fetch"`` inside the block (in this
    task and the tasks it starts), and what it was before once the block is left.

    A small class rather than a generator: the runtime enters one around every node it runs.
    """

    __slots__ = ("_node_id", "_token")

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    def __enter__(self) -> None:
        self._token = _current_node.set(self._node_id)

    def __exit__(self, *exc_info: object) -> None:
        _current_node.reset(self._token)
