"""Which node is running, and what its ``await`` accepts besides awaitables.

Both are bound by the runtime around each node's code and written or read by call trackers.

Node code's ``await`` is Python's, with one addition: it also accepts a plain value that a sync call made by
the node returned and declared with :func:`allow_await` (a ``Mock()`` resource's method, which the guide
awaits: ``rows = await db.fetch()``), and gives that value. The kit compiles every ``await X`` of node code as
``await __kailash_await__(X)`` (:data:`AWAIT_NAME`, bound to :func:`node_await`), so the value itself can
be returned by the call and used as it is everywhere else (``json.dumps``, ``is None``, ``match``).
"""

from __future__ import annotations

from collections.abc import Generator
from contextvars import ContextVar, Token
from typing import Any

from .errors import add_note

#: The name node code's ``await X`` is compiled to call: ``await __kailash_await__(X)``.
AWAIT_NAME = "__kailash_await__"

_ABSENT = object()
_current_node: ContextVar[str | None] = ContextVar("kailash_nb_current_node", default=None)
# The plain results node code may await, by id (each held, so that its id stays its own), for the running node.
_plain_results: ContextVar[dict[int, object] | None] = ContextVar("kailash_nb_plain_results", default=None)
# What to write instead, for the latest plain result: noted on a TypeError about awaiting.
_plain_advice: ContextVar[str | None] = ContextVar("kailash_nb_plain_advice", default=None)


def current_node_id() -> str | None:
    """The id of the workflow node whose code is running in this task, or None outside a node."""
    return _current_node.get()


class running_node:
    """``with running_node("fetch"): ...``: ``current_node_id()`` is ``"fetch"`` inside the block (in this
    task and the tasks it starts), and what it was before once the block is left. A ``TypeError`` about
    awaiting that leaves the block gets the advice of the latest :func:`allow_await` made in it.

    A small class rather than a generator: the runtime enters one around every node it runs.
    """

    __slots__ = ("_advice", "_node_id", "_plain", "_token")

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    def __enter__(self) -> None:
        self._token = _current_node.set(self._node_id)
        self._plain = _plain_results.set(None)
        self._advice: Token[str | None] = _plain_advice.set(None)

    def __exit__(self, exc_type: object, error: BaseException | None, tb: object) -> None:
        if error is not None:
            explain_await_error(error)
        _plain_advice.reset(self._advice)
        _plain_results.reset(self._plain)
        _current_node.reset(self._token)


def allow_await(value: object, advice: str) -> None:
    """Let the running node's code ``await value`` though it is not awaitable, getting ``value``: the plain
    result of a sync call that node code may write with ``await`` (a ``Mock()``'s method). Outside a node
    only ``advice`` is kept: what to write instead, noted on a ``TypeError`` about awaiting (an
    ``asyncio.gather`` of such values) raised before the node or the test ends."""
    _plain_advice.set(advice)
    if _current_node.get() is None:
        return
    plain = _plain_results.get()
    if plain is None:
        plain = {}
        _plain_results.set(plain)
    plain[id(value)] = value


class _Ready:
    """An awaitable that gives its value at once."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self._value
        yield  # a generator: awaiting finishes at once with the value


def node_await(value: Any) -> Any:
    """What node code's ``await value`` awaits: a value :func:`allow_await` allowed gives itself; anything
    else is returned unchanged, for Python's ``await`` to await it or to refuse it with its own error."""
    plain = _plain_results.get()
    if plain is not None and plain.get(id(value), _ABSENT) is value:
        return _Ready(value)
    return value


def explain_await_error(error: BaseException) -> None:
    """Note on ``error`` what to write instead, when a plain result was allowed and ``error`` is a
    ``TypeError`` about awaiting (``can't be used in 'await' expression``, ``a coroutine was expected``) or
    raised by asyncio itself (``gather()`` of a dict says ``unhashable type: 'dict'``)."""
    advice = _plain_advice.get()
    if advice is None or not isinstance(error, TypeError):
        return
    text = str(error)
    if "await" in text or "coroutine" in text or "async" in text or _raised_in_asyncio(error):
        add_note(error, advice)


def _raised_in_asyncio(error: BaseException) -> bool:
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__")
    return isinstance(module, str) and module.partition(".")[0] == "asyncio"
