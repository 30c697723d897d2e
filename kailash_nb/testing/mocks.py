"""Call tracking for mock resources: ``unittest.mock`` underneath, plus a thin recorder.

A mock resource is an ordinary object (a bare ``AsyncMock``, a mock HTTP client, a test cache, your own
fake) seen through a :class:`TrackedResource` proxy. The proxy forwards every attribute to that object and
records each method call as a :class:`CallRecord` in a :class:`CallTracker`: which resource and method,
the arguments, the result or exception, when it started, how long it took and which workflow node made it.
Configuration (``proxy.fetch.return_value = ...``) goes straight to the mock underneath.
"""

from __future__ import annotations

import dis
import itertools
import operator
import sys
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import CodeType, CoroutineType
from typing import Any
from unittest.mock import AsyncMock, MagicMock, NonCallableMock

from kailash_nb.errors import WorkflowAssertionError
from kailash_nb.workflow.context import current_node_id

__all__ = ["CallRecord", "CallTracker", "MockExhaustedError", "TrackedResource", "create_mock"]

# Attributes of unittest.mock objects that configure or inspect the mock: never tracked as calls.
_MOCK_API = frozenset(
    name
    for mock in (AsyncMock(), MagicMock())
    for name in dir(mock)
    if not name.startswith("__")
) | {"seal"}

# A fake can list methods that configure it rather than serve a node (``add_response``...).
UNTRACKED_ATTRIBUTE = "__kailash_untracked__"


@dataclass(slots=True, frozen=True)
class CallRecord:
    """One call to a tracked resource.

    ``start`` is a ``time.perf_counter()`` reading taken when the call was made; ``duration`` runs until
    the call returned or, for an awaitable result, until it was awaited to completion. ``node`` is the
    workflow node whose code made the call, or ``None`` for a call made by the test itself.
    """

    resource: str
    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    result: Any = None
    exception: BaseException | None = None
    start: float = 0.0
    duration: float = 0.0
    node: str | None = None

    @property
    def failed(self) -> bool:
        return self.exception is not None

    def describe(self) -> str:
        """``fetch('SELECT 1', timeout=2) -> [1] [node 'extract']``: a line for failure messages."""
        params = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        outcome = f"raised {self.exception!r}" if self.exception is not None else f"-> {_short(self.result)}"
        where = f" [node {self.node!r}]" if self.node else " [test]"
        return f"{self.method}({', '.join(params)}) {outcome}{where}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_by_start = operator.attrgetter("start")


@dataclass(slots=True)
class CallTracker:
    """Every call to the tracked resources of one test, in the order the calls were made.

    A call is recorded when it completes, so concurrent calls arrive out of order; reads sort them by
    ``start`` (a stable sort: calls with equal starts keep their recording order).
    """

    _calls: list[CallRecord] = field(default_factory=list)

    def record(self, call: CallRecord) -> None:
        self._calls.append(call)

    def get_calls(
        self, resource: str | None = None, method: str | None = None, *, node: str | None = None
    ) -> tuple[CallRecord, ...]:
        """Calls matching every filter given, oldest first; no filter lists all calls of the test."""
        return tuple(
            c
            for c in self.calls
            if (resource is None or c.resource == resource)
            and (method is None or c.method == method)
            and (node is None or c.node == node)
        )

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        """Every recorded call, oldest first (by when it was made, not when it completed)."""
        return tuple(sorted(self._calls, key=_by_start))

    def reset(self, resource: str | None = None) -> None:
        """Forget the calls of ``resource``, or of every resource."""
        if resource is None:
            self._calls.clear()
        else:
            self._calls[:] = [c for c in self._calls if c.resource != resource]

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[CallRecord]:
        return iter(self.calls)


class MockExhaustedError(WorkflowAssertionError):
    """A mock was called more times than its ``side_effect`` list has values."""


def create_mock(name: str) -> AsyncMock:
    """A bare mock resource: an ``AsyncMock`` whose methods are ``AsyncMock`` children.

    Configure it like any mock: ``mock.fetch.return_value = rows``, ``mock.post.side_effect = [
    {"id": 1}, ConnectionError("down")]`` (values and exceptions, one per call).
    """
    return AsyncMock(name=name)


class TrackedResource:
    """A transparent proxy that records every method call made through it.

    Attributes are read from and written to the wrapped object, so ``proxy.fetch.return_value = rows``
    configures the mock underneath and ``isinstance(proxy, type(obj))`` holds. Calls are recorded when
    they complete: at once for a plain result, when awaited for an awaitable one. A mock whose
    ``side_effect`` list has run out raises :class:`MockExhaustedError` naming the resource and method.
    """

    __slots__ = ("__weakref__", "_kn_name", "_kn_sync_mock", "_kn_target", "_kn_tracker", "_kn_untracked")

    def __init__(self, name: str, target: Any, tracker: CallTracker) -> None:
        object.__setattr__(self, "_kn_name", name)
        object.__setattr__(self, "_kn_target", target)
        object.__setattr__(self, "_kn_tracker", tracker)
        is_mock = isinstance(target, NonCallableMock)
        untracked = _MOCK_API if is_mock else frozenset(getattr(type(target), UNTRACKED_ATTRIBUTE, ()))
        object.__setattr__(self, "_kn_untracked", untracked)
        object.__setattr__(self, "_kn_sync_mock", is_mock)

    # -- the proxy's own API -------------------------------------------------------------------------
    def get_calls(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped object's own ``get_calls`` if it has one (a mock HTTP client), else this
        resource's :class:`CallRecord` list, optionally only those of ``method``."""
        own = _own_attribute(self._kn_target, "get_calls")
        if own is not None:
            return own(*args, **kwargs)
        return self.tracked_calls(*args, **kwargs)

    def tracked_calls(self, method: str | None = None) -> tuple[CallRecord, ...]:
        """The calls made through this proxy (and any proxy of the same resource), oldest first."""
        return self._kn_tracker.get_calls(self._kn_name, method)

    def reset_calls(self) -> None:
        """Forget this resource's recorded calls (the mock's own ``call_count`` etc. are kept)."""
        self._kn_tracker.reset(self._kn_name)

    @property
    def wrapped(self) -> Any:
        """The object behind the proxy."""
        return self._kn_target

    # -- forwarding ------------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        target = self._kn_target
        value = getattr(target, name)
        if name.startswith("_") or name in self._kn_untracked or not callable(value):
            return value
        return TrackedMethod(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._kn_target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._kn_target, name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, MockHttpClient) holds, as with Mock(spec=...)
        return type(self._kn_target)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return TrackedMethod(self, "__call__", self._kn_target)(*args, **kwargs)

    async def __aenter__(self) -> Any:
        await self._kn_target.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._kn_target.__aexit__(*exc_info)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._kn_target)) | {"get_calls", "tracked_calls", "reset_calls", "wrapped"})

    def __repr__(self) -> str:
        return f"<tracked resource {self._kn_name!r}: {type(self._kn_target).__name__}>"

    def _record(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        exception: BaseException | None,
        start: float,
        node: str | None,
    ) -> None:
        self._kn_tracker._calls.append(
            CallRecord(self._kn_name, method, args, kwargs, result, exception, start,
                       time.perf_counter() - start, node)
        )


def _own_attribute(target: Any, name: str) -> Any:
    """``target.name`` when the object really defines it, ``None`` for a mock's auto-created child."""
    if isinstance(target, NonCallableMock):
        return None
    return getattr(target, name, None)


class TrackedMethod:
    """A method of a tracked resource: calling it records a :class:`CallRecord`.

    Attribute reads and writes go to the method underneath (``proxy.fetch.return_value = ...``), and
    attribute chains stay tracked: ``proxy.pool.acquire()`` is recorded as method ``pool.acquire``.
    """

    __slots__ = ("_kn_method", "_kn_owner", "_kn_target")

    def __init__(self, owner: TrackedResource, method: str, target: Any) -> None:
        object.__setattr__(self, "_kn_owner", owner)
        object.__setattr__(self, "_kn_method", method)
        object.__setattr__(self, "_kn_target", target)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._kn_owner
        method = self._kn_method
        node = current_node_id()
        start = time.perf_counter()
        try:
            value = self._kn_target(*args, **kwargs)
        except BaseException as exc:
            exhausted = _exhausted(owner, method, self._kn_target, exc)
            owner._record(method, args, kwargs, None, exhausted or exc, start, node)
            if exhausted is not None:
                raise exhausted from None
            raise
        if type(value) is CoroutineType:
            return _complete(owner, method, args, kwargs, value, start, node, self._kn_target)
        if hasattr(type(value), "__await__"):
            return _TrackedAwaitable(owner, method, args, kwargs, value, start, node)
        owner._record(method, args, kwargs, value, None, start, node)
        if owner._kn_sync_mock and _is_awaited_by_caller(sys._getframe(1)):
            return _Ready(value)
        return value

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._kn_target, name)
        owner = self._kn_owner
        if name.startswith("_") or name in owner._kn_untracked or not callable(value):
            return value
        return TrackedMethod(owner, f"{self._kn_method}.{name}", value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._kn_target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._kn_target, name)

    def __repr__(self) -> str:
        return f"<tracked method {self._kn_owner._kn_name}.{self._kn_method}: {self._kn_target!r}>"


async def _complete(
    owner: TrackedResource,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    awaitable: Any,
    start: float,
    node: str | None,
    target: Any = None,
) -> Any:
    try:
        result = await awaitable
    except BaseException as exc:
        exhausted = _exhausted(owner, method, target, exc)
        owner._record(method, args, kwargs, None, exhausted or exc, start, node)
        if exhausted is not None:
            raise exhausted from None
        raise
    owner._record(method, args, kwargs, result, None, start, node)
    return result


def _exhausted(owner: TrackedResource, method: str, target: Any, error: BaseException) -> MockExhaustedError | None:
    """The error to raise instead of ``error`` when it only says that ``target``'s side_effect list ran out:
    a bare ``StopIteration`` (``Mock``) or the ``StopAsyncIteration`` that ``AsyncMock`` raises while
    handling one. A ``StopIteration`` the list itself holds as its last value looks the same and is
    reported as exhausted too; a ``StopAsyncIteration`` value is not."""
    if type(error) is StopAsyncIteration:
        if not isinstance(error.__context__, StopIteration) or error.args:
            return None
        count = getattr(target, "await_count", None)
    elif type(error) is StopIteration and not error.args:
        count = getattr(target, "call_count", None)
    else:
        return None
    effect = getattr(target, "side_effect", None) if isinstance(target, NonCallableMock) else None
    if (not isinstance(count, int) or effect is None or callable(effect) or not isinstance(effect, Iterator)
            or operator.length_hint(effect, 0) != 0):
        return None
    return MockExhaustedError(
        f"mock {owner._kn_name!r}.{method}() was called {count} times but its side_effect list has "
        f"{count - 1} value(s); add more values or use return_value")


class _TrackedAwaitable:
    """Wraps an awaitable that is not a coroutine (an HTTP request context, a future), recording the
    call when it is awaited or entered with ``async with``; other attributes reach the object itself."""

    __slots__ = ("_args", "_inner", "_kwargs", "_method", "_node", "_owner", "_start")

    def __init__(self, owner: TrackedResource, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 inner: Any, start: float, node: str | None) -> None:
        self._owner, self._method, self._args, self._kwargs = owner, method, args, kwargs
        self._inner, self._start, self._node = inner, start, node

    def __await__(self) -> Any:
        return _complete(self._owner, self._method, self._args, self._kwargs, self._inner, self._start,
                         self._node).__await__()

    async def __aenter__(self) -> Any:
        enter = getattr(self._inner, "__aenter__", None)
        if enter is None:
            raise TypeError(f"{self._method}() returned {type(self._inner).__name__}, which is awaitable "
                            "but not an async context manager: use `await`, not `async with`")
        return await _complete(self._owner, self._method, self._args, self._kwargs, enter(), self._start,
                               self._node)

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._inner.__aexit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Ready:
    """An awaitable that gives ``value`` at once: what ``await sync_mock.method()`` receives."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # pragma: no cover - makes this a generator function


# A sync Mock's result must be awaitable where node code writes ``await mock.method()`` (a common mix-up
# of Mock and AsyncMock), yet stay the very value everywhere else. The call site tells: CPython compiles
# ``await f()`` to the call followed by GET_AWAITABLE. Unknown bytecode falls back to the plain value.
_AWAITED_SITES: weakref.WeakKeyDictionary[CodeType, frozenset[int]] = weakref.WeakKeyDictionary()


def _is_awaited_by_caller(frame: Any) -> bool:
    code = frame.f_code
    sites = _AWAITED_SITES.get(code)
    if sites is None:
        sites = _awaited_call_offsets(code)
        _AWAITED_SITES[code] = sites
    return frame.f_lasti in sites


def _awaited_call_offsets(code: CodeType) -> frozenset[int]:
    """Byte offsets (including inline caches) of the call instructions whose result is awaited next."""
    offsets: set[int] = set()
    try:
        instructions = list(dis.get_instructions(code))
    except Exception:  # unknown bytecode: never claim a call is awaited
        return frozenset()
    for this, following in itertools.pairwise(instructions):
        if following.opname == "GET_AWAITABLE":
            offsets.update(range(this.offset, following.offset, 2))
    return frozenset(offsets)
