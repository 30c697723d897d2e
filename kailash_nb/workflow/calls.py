"""The seam every resource call passes through, and where a policy may act on it.

Tracked mocks, the mock HTTP client and any resource the testing kit wraps call :func:`before_call` just
before an awaited call does its work. With no policy set (the normal case) that costs one context
variable read. A policy set with :func:`call_policy` (for the duration of a run: the context is copied
into every node's task) sees each call with its resource, method and node, and may delay it, as seeded
schedules do to reorder racing calls; the runtime also asks it which ready node starts first.

A tracked resource may also carry a :class:`CallHandler`, which stands behind that one proxy instead of
plain forwarding: a cassette recording every call made on the real object (and wrapping the objects the
calls return, so that calls on them are seen too), or answering the calls from its file without any real
object. The proxy still records each call for the test and still passes awaited calls through
:func:`before_call`, so call tables, ``assert_resource_called`` and seeded schedules work unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final, Protocol

__all__ = ["CALL_SEAM_ATTRIBUTE", "METHOD", "CallHandler", "CallPolicy", "Settle", "before_call", "call_policy",
           "current_call_policy"]

#: A class attribute, true on a resource that calls :func:`before_call` itself (the mock HTTP client): the
#: testing kit then does not wrap it to see its calls.
CALL_SEAM_ATTRIBUTE = "__kailash_call_seam__"


class CallPolicy(Protocol):
    """What a policy on resource calls implements."""

    async def before_call(self, resource: str, method: str, node: str | None) -> None:
        """Called just before an awaited call on ``resource`` does its work; may await to delay it."""

    def choose(self, count: int) -> int:
        """Which of ``count`` ready nodes (in plan order) starts first: an index, 0 being plan order."""


class _Method:
    __slots__ = ()

    def __repr__(self) -> str:
        return "METHOD"


#: What :meth:`CallHandler.attribute` returns for a name that is a method: the proxy then hands out a
#: tracked method whose calls go to :meth:`CallHandler.call`.
METHOD: Final = _Method()


#: What sees an awaited call's outcome for a :class:`CallHandler`: ``(result, None)`` or ``(None, error)``.
Settle = Callable[[Any, "BaseException | None"], Any]


class CallHandler(Protocol):
    """Stands behind one tracked resource proxy: makes (or answers) the calls made through it."""

    #: Whether a call that raised before returning anything was answered from a recording.
    replays: bool

    def attribute(self, proxy: Any, name: str) -> Any:
        """The value read as ``proxy.name``, or :data:`METHOD` when it is a method to call."""

    def call(self, proxy: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             node: str | None) -> tuple[Any, bool, Settle | None]:
        """Make the call ``method(*args, **kwargs)`` on the object behind ``proxy``, or answer it without
        one. Returns what the caller gets (a coroutine for an awaited call), whether it was replayed, and
        for a coroutine, optionally, what sees its outcome: ``settle(result, None)`` returns what the
        awaiting caller gets instead of ``result``; ``settle(None, error)`` sees an exception (re-raised)."""


_POLICY: ContextVar[CallPolicy | None] = ContextVar("kailash_nb_call_policy", default=None)


def current_call_policy() -> CallPolicy | None:
    return _POLICY.get()


@contextlib.contextmanager
def call_policy(policy: CallPolicy) -> Iterator[CallPolicy]:
    """Let ``policy`` see (and delay) every resource call made in this context, nodes' tasks included."""
    token = _POLICY.set(policy)
    try:
        yield policy
    finally:
        _POLICY.reset(token)


async def before_call(resource: str, method: str, node: str | None) -> None:
    """Let the policy in force see the call (callers check :func:`current_call_policy` first, so that a
    call with no policy costs no coroutine)."""
    policy = _POLICY.get()
    if policy is not None:
        await policy.before_call(resource, method, node)
