"""Call tracking for mock resources: ``unittest.mock`` underneath, plus a thin recorder.

A mock resource is an ordinary object (a bare ``AsyncMock``, a mock HTTP client, a test cache, your own
fake) seen through a :class:`TrackedResource` proxy. The proxy forwards every attribute to that object and
records each method call as a :class:`CallRecord` in a :class:`CallTracker`: which resource and method,
the arguments, the result or exception, when it started, how long it took, which workflow node made it
and whether its awaitable result was awaited at all. Configuration (``proxy.fetch.return_value = ...``)
goes straight to the mock underneath.

What a tracked call returns:

- an async method's coroutine comes back as a coroutine (``await``, ``asyncio.gather``, ``wait_for`` and
  ``create_task`` all work); the call is recorded when it completes. Dropped without being awaited, it is
  recorded with ``awaited=False`` and Python's "never awaited" warning names the resource and method;
- another awaitable (a mock HTTP request) is recorded when awaited or entered with ``async with``, and
  as not awaited (with a ``RuntimeWarning``) when dropped unused;
- a plain value is the value itself, in every use (``json.dumps``, ``is None``, ``type(x) is str``,
  ``match``). For a *mock*'s method (a ``Mock()`` where an ``AsyncMock`` was meant, as the guide's
  ``lambda: Mock()`` resource), node code may still write ``await db.fetch()``: the kit compiles node code's
  ``await`` to accept such a value (:func:`kailash_nb.workflow.allow_await`). The one exception: whatever
  else wants an awaitable (``asyncio.gather``, ``wait_for``, ``create_task``, an ``await`` in the test's own
  code) gets the plain value and raises ``TypeError``, noted with what to write instead: make the method
  async (``mock.fetch = AsyncMock(return_value=...)``).
"""

from __future__ import annotations

import operator
import warnings
import weakref
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any, cast
from unittest.mock import AsyncMock, MagicMock, NonCallableMock

import wrapt

from kailash_nb.errors import WorkflowAssertionError
from kailash_nb.workflow import allow_await, current_node_id, now
from kailash_nb.workflow.calls import METHOD, CallHandler, Settle, before_call, current_call_policy

__all__ = ["CallRecord", "CallTracker", "MockExhaustedError", "TrackedResource", "create_mock", "handled_resource"]

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

    ``start`` is a reading of the event loop's clock (``kailash_nb.workflow.now()``, virtual under virtual time)
    taken when the call was made; ``duration`` runs until the call returned or, for an awaitable result, until
    it was awaited to completion. ``node`` is the workflow node whose code made the call, or ``None`` for a call
    made by the test itself.
    ``awaited`` is False when the call returned a coroutine or other awaitable that was dropped without
    being awaited (a missing ``await``): the call was made, but its work never ran (``result`` is None).
    ``replayed`` is True when a cassette answered the call from its file instead of a real resource.
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
    awaited: bool = True
    replayed: bool = False

    @property
    def failed(self) -> bool:
        return self.exception is not None

    def describe(self) -> str:
        """``fetch('SELECT 1', timeout=2) -> [1] [node 'extract']``: a line for failure messages."""
        params = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if not self.awaited:
            outcome = "never awaited: add await"
        elif self.exception is not None:
            outcome = f"raised {self.exception!r}"
        else:
            outcome = f"-> {_short(self.result)}"
        where = f" [node {self.node!r}]" if self.node else " [test]"
        return f"{self.method}({', '.join(params)}) {outcome}{where}{' (replayed)' if self.replayed else ''}"


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
        """Add a completed (or never awaited) call."""
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


class TrackedResource(wrapt.ObjectProxy[Any]):
    """A transparent proxy (``wrapt.ObjectProxy``) that records every method call made through it.

    Attributes are read from and written to the wrapped object, so ``proxy.fetch.return_value = rows``
    configures the mock underneath and ``isinstance(proxy, type(obj))`` holds. Calls are recorded when
    they complete: at once for a plain result, when awaited for an awaitable one. A mock whose
    ``side_effect`` list has run out raises :class:`MockExhaustedError` naming the resource and method.

    With a ``handler`` (:class:`kailash_nb.workflow.calls.CallHandler`, see :func:`handled_resource`),
    attribute reads and calls go to the handler, which makes or answers them (a cassette).
    """

    def __init__(self, name: str, target: Any, tracker: CallTracker, handler: CallHandler | None = None) -> None:
        super().__init__(target)
        is_mock = isinstance(target, NonCallableMock)
        self._self_name = name
        self._self_tracker = tracker
        self._self_handler = handler
        self._self_untracked = _MOCK_API if is_mock else frozenset(getattr(type(target), UNTRACKED_ATTRIBUTE, ()))
        self._self_mock = is_mock

    # -- the proxy's own API -------------------------------------------------------------------------
    @property
    def resource_name(self) -> str:
        """The name the resource was registered under."""
        name: str = self._self_name
        return name

    @property
    def wrapped(self) -> Any:
        """The object behind the proxy (also ``__wrapped__``)."""
        return self.__wrapped__

    @property
    def call_handler(self) -> CallHandler | None:
        """The handler that makes or answers this proxy's calls (a cassette's), or ``None``."""
        handler: CallHandler | None = self._self_handler
        return handler

    def get_calls(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped object's own ``get_calls`` if it has one (a mock HTTP client), else this
        resource's :class:`CallRecord` list, optionally only those of ``method``."""
        own = _own_attribute(self.__wrapped__, "get_calls")
        if own is not None:
            return own(*args, **kwargs)
        return self.tracked_calls(*args, **kwargs)

    def tracked_calls(self, method: str | None = None) -> tuple[CallRecord, ...]:
        """The calls made through this proxy (and any proxy of the same resource), oldest first."""
        tracker: CallTracker = self._self_tracker
        return tracker.get_calls(self._self_name, method)

    def reset_calls(self) -> None:
        """Forget this resource's recorded calls (the mock's own ``call_count`` etc. are kept)."""
        self._self_tracker.reset(self._self_name)

    # -- forwarding ------------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        handler = self._self_handler
        if handler is not None and not name.startswith("_"):
            value = handler.attribute(self, name)
            return TrackedMethod(self, name, None) if value is METHOD else value
        value = getattr(self.__wrapped__, name)
        if name.startswith("_") or name in self._self_untracked or not callable(value):
            return value
        return TrackedMethod(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        target = None if self._self_handler is not None else self.__wrapped__
        return TrackedMethod(self, "__call__", target)(*args, **kwargs)

    async def __aenter__(self) -> Any:
        if self._self_handler is not None:
            return await TrackedMethod(self, "__aenter__", None)()
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        if self._self_handler is not None:
            return await TrackedMethod(self, "__aexit__", None)(*exc_info)
        return await self.__wrapped__.__aexit__(*exc_info)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__wrapped__)) | {"get_calls", "tracked_calls", "reset_calls", "wrapped",
                                                     "resource_name", "call_handler"})

    def __repr__(self) -> str:
        kind = _own_attribute(self.__wrapped__, "replayed_type") or type(self.__wrapped__).__name__
        return f"<tracked resource {self._self_name!r}: {kind}>"

    def _self_record(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], result: Any,
                     exception: BaseException | None, start: float, node: str | None, awaited: bool = True,
                     replayed: bool = False) -> None:
        duration = now() - start if awaited else 0.0
        self._self_tracker.record(CallRecord(self._self_name, method, args, kwargs, result, exception, start,
                                             duration, node, awaited, replayed))

    def _self_failed(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], target: Any,
                     error: BaseException, start: float, node: str | None, replayed: bool = False
                     ) -> MockExhaustedError | None:
        """Record a call that raised ``error``. Returns the :class:`MockExhaustedError` to raise instead when
        ``error`` only says that the mock's ``side_effect`` list ran out; else ``None``, and the caller
        re-raises ``error`` with a bare ``raise``, which leaves its traceback as it was."""
        exhausted = _exhausted(self, method, target, error)
        self._self_record(method, args, kwargs, None, exhausted or error, start, node, replayed=replayed)
        return exhausted


class _HandledResource(TrackedResource):
    """A tracked resource with a handler: the async protocols (``await``, ``async for``) are calls too."""

    def __await__(self) -> Any:
        return TrackedMethod(self, "__await__", None)().__await__()

    def __aiter__(self) -> Any:
        return TrackedMethod(self, "__aiter__", None)()

    def __anext__(self) -> Any:
        return TrackedMethod(self, "__anext__", None)()

    def __getitem__(self, key: Any) -> Any:
        return TrackedMethod(self, "__getitem__", None)(key)

    def __iter__(self) -> Any:  # plain ``for``, ``dict(headers)``: the iterator and each item are calls
        return TrackedMethod(self, "__iter__", None)()

    def __next__(self) -> Any:
        return TrackedMethod(self, "__next__", None)()

    # What Python asks of an object without calling a method: calls too, so that a replay answers them as
    # recorded rather than from the stand-in behind the proxy.
    def __str__(self) -> str:
        text: str = TrackedMethod(self, "__str__", None)()
        return text

    def __bool__(self) -> bool:
        truth: bool = TrackedMethod(self, "__bool__", None)()
        return truth

    def __len__(self) -> int:
        length: int = TrackedMethod(self, "__len__", None)()
        return length

    def __contains__(self, item: Any) -> bool:
        found: bool = TrackedMethod(self, "__contains__", None)(item)
        return found


def handled_resource(name: str, target: Any, tracker: CallTracker, handler: CallHandler) -> TrackedResource:
    """A :class:`TrackedResource` whose attribute reads and calls ``handler`` makes or answers; ``await``,
    ``async with``, ``async for``, ``for``, ``[key]``, ``str()``, ``bool()``, ``len()`` and ``in`` on it are
    calls (``__await__``, ``__aenter__``, ``__anext__``, ``__iter__``, ``__next__``, ``__getitem__``...)."""
    return _HandledResource(name, target, tracker, handler)


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
        target = self._kn_target
        node = current_node_id()
        start = now()
        handler = owner._self_handler
        if handler is not None:
            return _handled_call(owner, handler, method, args, kwargs, start, node)
        try:
            value = target(*args, **kwargs)
        except BaseException as exc:
            exhausted = owner._self_failed(method, args, kwargs, target, exc, start, node)
            if exhausted is not None:
                raise exhausted from None
            raise
        if type(value) is CoroutineType:
            return _PendingCall(owner, method, args, kwargs, start, node, target, value).coroutine()
        if hasattr(type(value), "__await__"):
            return _TrackedAwaitable(_PendingCall(owner, method, args, kwargs, start, node, target, value))
        owner._self_record(method, args, kwargs, value, None, start, node)
        if owner._self_mock:
            allow_await(value, _sync_mock_advice(owner._self_name, method))
        return value

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._kn_target, name)
        owner = self._kn_owner
        if name.startswith("_") or name in owner._self_untracked or not callable(value):
            return value
        return TrackedMethod(owner, f"{self._kn_method}.{name}", value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._kn_target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._kn_target, name)

    def __repr__(self) -> str:
        return f"<tracked method {self._kn_owner._self_name}.{self._kn_method}: {self._kn_target!r}>"


def _handled_call(owner: TrackedResource, handler: CallHandler, method: str, args: tuple[Any, ...],
                  kwargs: Mapping[str, Any], start: float, node: str | None) -> Any:
    """A call that ``handler`` makes or answers; recorded like any other."""
    try:
        value, replayed, settle = handler.call(owner, method, args, kwargs, node)
    except BaseException as exc:
        owner._self_record(method, args, kwargs, None, exc, start, node, replayed=handler.replays)
        raise
    if type(value) is CoroutineType:
        return _PendingCall(owner, method, args, kwargs, start, node, None, value, replayed, settle).coroutine()
    owner._self_record(method, args, kwargs, value, None, start, node, replayed=replayed)
    return value


# The weak references that watch pending calls' coroutines. Held here, outside any cycle the coroutine is in,
# so that their callbacks fire even when it dies inside a garbage cycle (a failed node's traceback holding its
# namespace); the garbage collector skips the callbacks of weak references that are garbage themselves.
_WATCHED: set[weakref.ref[Any]] = set()


class _PendingCall:
    """A call whose result is awaitable: recorded when awaited to the end, or as never awaited."""

    __slots__ = ("args", "inner", "kwargs", "method", "node", "owner", "replayed", "settle", "start", "target",
                 "watch")

    def __init__(self, owner: TrackedResource, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                 start: float, node: str | None, target: Any, inner: Any, replayed: bool = False,
                 settle: Settle | None = None) -> None:
        self.owner, self.method, self.args, self.kwargs = owner, method, args, kwargs
        self.start, self.node, self.target, self.inner = start, node, target, inner
        self.replayed, self.settle = replayed, settle
        self.watch: weakref.ref[Any] | None = None

    def coroutine(self) -> Coroutine[Any, Any, Any]:
        """The coroutine handed to the caller, named after the call so that Python's "coroutine ... was
        never awaited" warning names the resource and method; dropping it unstarted is recorded."""
        coroutine = cast("CoroutineType[Any, Any, Any]", self.run(self.inner))
        coroutine.__qualname__ = f"{self.owner._self_name}.{self.method}"
        self.watch = weakref.ref(coroutine, self._dropped)
        _WATCHED.add(self.watch)
        return coroutine

    def _dropped(self, watch: weakref.ref[Any]) -> None:
        _WATCHED.discard(watch)
        self.never_awaited()

    async def run(self, awaitable: Any) -> Any:
        if self.watch is not None:  # started: it is being awaited
            _WATCHED.discard(self.watch)
            self.watch = None
        try:
            if current_call_policy() is not None:  # the call seam: a schedule may delay the call here
                await before_call(self.owner._self_name, self.method, self.node)
            result = await awaitable
        except BaseException as exc:
            if self.settle is not None:
                self.settle(None, exc)
            exhausted = self.owner._self_failed(self.method, self.args, self.kwargs, self.target, exc, self.start,
                                                self.node, self.replayed)
            if exhausted is not None:
                raise exhausted from None
            raise
        if self.settle is not None:  # a handler's view of the result (a cassette keeps it, wraps an object)
            try:
                result = self.settle(result, None)
            except BaseException as exc:
                self.owner._self_record(self.method, self.args, self.kwargs, None, exc, self.start, self.node,
                                        replayed=self.replayed)
                raise
        self.owner._self_record(self.method, self.args, self.kwargs, result, None, self.start, self.node,
                                replayed=self.replayed)
        return result

    def never_awaited(self) -> None:
        """Record the call as not awaited; close the coroutine underneath, which will never run (so that
        only one "never awaited" warning is given, the one naming the tracked call)."""
        if type(self.inner) is CoroutineType:
            self.inner.close()
        self.owner._self_record(self.method, self.args, self.kwargs, None, None, self.start, self.node,
                                awaited=False, replayed=self.replayed)


def _sync_mock_advice(resource: str, method: str) -> str:
    return (f"resource {resource!r}: {method}() is a sync Mock method, so its result is a plain value, which "
            "only `await` in node code accepts; for asyncio.gather(), wait_for(), create_task() or an `await` "
            f"outside node code, make it async: `<mock>.{method} = AsyncMock(return_value=...)`, or create the "
            "resource with mock=True and no factory (an AsyncMock)")


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
        f"mock {owner._self_name!r}.{method}() was called {count} times but its side_effect list has "
        f"{count - 1} value(s); add more values or use return_value")


class _TrackedAwaitable:
    """Wraps an awaitable that is not a coroutine (an HTTP request context, a future), recording the
    call when it is awaited or entered with ``async with``, or as never awaited when dropped unused;
    other attributes reach the object itself."""

    __slots__ = ("_call", "_used")

    def __init__(self, call: _PendingCall) -> None:
        self._call = call
        self._used = False

    def __await__(self) -> Any:
        self._used = True
        return self._call.run(self._call.inner).__await__()

    async def __aenter__(self) -> Any:
        self._used = True
        call = self._call
        enter = getattr(call.inner, "__aenter__", None)
        if enter is None:
            raise TypeError(f"{call.method}() returned {type(call.inner).__name__}, which is awaitable "
                            "but not an async context manager: use `await`, not `async with`")
        return await call.run(enter())

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._call.inner.__aexit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call.inner, name)

    def __del__(self) -> None:
        if not self._used:
            call = self._call
            call.never_awaited()
            warnings.warn(f"'{call.owner._self_name}.{call.method}' was never awaited: the call is recorded as "
                          "not awaited and did not run; add await (or async with)", RuntimeWarning,
                          stacklevel=2)
