"""The two policies a cassette puts on the resource-call seam (:class:`kailash_nb.workflow.calls.CallHandler`):
recording the calls made on real objects, and answering them from the tape.

Both stand behind :func:`kailash_nb.testing.mocks.handled_resource` proxies, so every call is also recorded
for the test (``CallRecord.replayed`` tells the two apart) and awaited calls pass the call seam, where seeded
schedules act on them.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import json
from collections.abc import Callable, Mapping
from types import CoroutineType
from typing import Any, TypeVar

from kailash_nb.errors import KailashNbError
from kailash_nb.workflow import current_node_id
from kailash_nb.workflow.calls import METHOD, Settle

from ..mocks import CallTracker, TrackedResource, handled_resource
from .encoder import SECRET, Encoder, UnencodableValueError
from .tape import NO_NODE, CassetteFileError, Entry, call_key

__all__ = ["Player", "Recorder", "RecordingHandler", "ReplayHandler", "UnmatchedCallError"]

_T = TypeVar("_T")

# Dunder calls whose result the caller awaits (``async with``, ``async for``, ``await``): always recorded as
# awaited calls, whatever kind of awaitable the object returns.
_AWAITED = frozenset({"__aenter__", "__aexit__", "__anext__", "__await__"})


_BUILT_INS: dict[str, Callable[..., Any]] = {
    "__str__": str, "__bool__": bool, "__len__": len, "__contains__": lambda obj, item: item in obj,
    "__iter__": iter, "__next__": next}


class UnmatchedCallError(KailashNbError, LookupError):
    """A call during replay that the cassette has no recording of: the message shows the call, the closest
    recorded calls, and how to record it."""


class Replayed:
    """What a replayed proxy wraps: no real object, only a name for reprs and the recorded object's class
    name (``replayed_type``), so that a call table reads the same when recording and replaying."""

    __slots__ = ("name", "replayed_type")

    def __init__(self, name: str, replayed_type: str = "") -> None:
        self.name = name
        self.replayed_type = replayed_type or "Replayed"

    def __repr__(self) -> str:
        return f"<replayed {self.name}>"


def _node() -> str:
    return current_node_id() or NO_NODE


def _arguments(encoder: Encoder, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
               where: str) -> tuple[list[Any], dict[str, Any]]:
    if method == "__aexit__":  # (type, exception, traceback): only the exception type is part of the call
        kind = args[0] if args else None
        return [None if kind is None else getattr(kind, "__qualname__", repr(kind))], {}
    # ``where`` is empty on the first try: the place is named only when a value cannot be written
    positional = [_handle_reference(arg) or encoder.encode_argument(arg, where and f"{where} argument {i}")
                  for i, arg in enumerate(args)]
    named = {key: _handle_reference(value) or (SECRET if encoder.is_secret(key) else
                                               encoder.encode_argument(value, where and f"{where} argument {key}"))
             for key, value in kwargs.items()} if kwargs else {}
    return positional, named


def _handle_reference(value: Any) -> dict[str, Any] | None:
    """An object a recorded call returned, passed back as an argument (``pool.release(conn)``): written as
    the call that returned it."""
    if isinstance(value, TrackedResource):
        handler = value.call_handler
        if isinstance(handler, (RecordingHandler, ReplayHandler)):
            return {"$type": "handle", "value": handler.handle or value.resource_name}
    return None


def _passes_handles(entry: Entry) -> bool:
    """Whether the call passes objects that recorded calls returned (seen in its encoded arguments)."""
    return any(type(value) is dict and value.get("$type") == "handle"
               for value in itertools.chain(entry.args, entry.kwargs.values()))


def _real(value: Any) -> Any:
    """What to pass to the real object for an argument: the real object behind a recorded handle."""
    if isinstance(value, TrackedResource) and isinstance(value.call_handler, RecordingHandler):
        return value.call_handler.real
    return value


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


# -- recording ----------------------------------------------------------------------------------------------
class Recorder:
    """Records the calls on one resource (and the objects its calls return) into its part of the tape."""

    __slots__ = ("calls", "encoder", "failure", "path", "recorded", "resource", "tape", "tracker")

    def __init__(self, path: str, resource: str, tape: dict[str, list[Entry]], tracker: CallTracker,
                 encoder: Encoder) -> None:
        self.path, self.resource, self.tape, self.tracker, self.encoder = path, resource, tape, tracker, encoder
        self.failure: UnencodableValueError | None = None
        self.recorded = 0

    def _where(self, method: str) -> str:
        return f"cassette {self.path}: {self.resource}.{method}()"

    def _encoded(self, encode: Callable[[str], _T], method: str, suffix: str = "") -> _T:
        """``encode(where)``, first with no place named; when a value cannot be written, again naming the
        place (built only then), and the failure is kept so that :meth:`Cassette.save` refuses to write."""
        try:
            try:
                return encode("")
            except UnencodableValueError:
                return encode(self._where(method) + suffix)
        except UnencodableValueError as error:
            self.failure = error
            raise UnencodableValueError(f"{error}; the file is left as it was") from None

    def reserve(self, on: str | None, method: str, kind: str, args: tuple[Any, ...],
                kwargs: Mapping[str, Any], node: str | None) -> Entry:
        """The call's place on the tape, in the order the node made it. (Its matching key is computed when a
        cassette is read: a recording never matches.)"""
        encoded, named = self._encoded(lambda where: _arguments(self.encoder, method, args, kwargs, where), method)
        node = node or NO_NODE
        entries = self.tape.setdefault(node, [])
        entry = Entry(on, method, kind, encoded, named, "", handle=f"{node}#{len(entries)}")
        entries.append(entry)
        self.recorded += 1
        return entry

    def raised(self, entry: Entry, error: BaseException) -> None:
        if isinstance(error, (Exception, StopAsyncIteration)):
            entry.outcome, entry.result = "raised", self.encoder.encode(error, self._where(entry.method))
        # a cancelled call keeps the outcome "nothing": it never completed

    def settle(self, entry: Entry, value: Any, proxy: TrackedResource, real: Any) -> Any:
        """Keep ``value`` on the tape and return what the caller gets: the value, or a proxy for an object."""
        if value is real and entry.kind != "get":
            entry.outcome = "self"
            return proxy
        if self.encoder.knows(value):
            entry.result = self._encoded(lambda where: self.encoder.encode(value, where), entry.method, " result")
            entry.outcome = "result"
            return value
        entry.outcome = "handle"
        entry.type = type(value).__qualname__
        return handled_resource(self.resource, value, self.tracker, RecordingHandler(self, value, entry.handle))

    def settling(self, entry: Entry, proxy: TrackedResource, real: Any) -> Settle:
        """What sees an awaited call's outcome: keeps it on the tape (the seam's ``Settle``)."""
        def settle(value: Any, error: BaseException | None) -> Any:
            if error is not None:
                self.raised(entry, error)
                return None
            return self.settle(entry, value, proxy, real)

        return settle


class RecordingHandler:
    """Makes each call on the real object and records it (the seam's handler while recording)."""

    __slots__ = ("handle", "methods", "real", "recorder")
    replays = False

    def __init__(self, recorder: Recorder, real: Any, handle: str | None = None) -> None:
        self.recorder, self.real, self.handle = recorder, real, handle
        self.methods: set[str] = set()  # names seen to be methods (a method stays one), read only once

    def attribute(self, proxy: Any, name: str) -> Any:
        if name in self.methods:
            return METHOD
        try:
            value = getattr(self.real, name)
        except AttributeError as error:
            entry = self.recorder.reserve(self.handle, name, "get", (), {}, current_node_id())
            self.recorder.raised(entry, error)
            raise
        if callable(value):
            if inspect.ismethod(value):
                self.methods.add(name)
            return METHOD
        entry = self.recorder.reserve(self.handle, name, "get", (), {}, current_node_id())
        return self.recorder.settle(entry, value, proxy, self.real)

    def call(self, proxy: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             node: str | None) -> tuple[Any, bool, Settle | None]:
        real, recorder = self.real, self.recorder
        entry = recorder.reserve(self.handle, method, "call", args, kwargs, node)
        if _passes_handles(entry):
            args = tuple(_real(arg) for arg in args)
            kwargs = {key: _real(value) for key, value in kwargs.items()}
        try:
            if method == "__await__":
                value = _awaited(real)
            elif method in _BUILT_INS:  # str(), bool(), len(), in: with Python's own fallbacks
                value = _BUILT_INS[method](real, *args)
            elif method.startswith("__"):  # protocols are looked up on the type, as Python does
                value = getattr(type(real), method)(real, *args, **kwargs)
            else:
                value = getattr(real, method)(*args, **kwargs)
        except BaseException as error:
            recorder.raised(entry, error)
            raise
        if method in _AWAITED and type(value) is not CoroutineType:
            value = _awaited(value)
        if type(value) is CoroutineType:
            entry.kind = "await"
            return value, False, recorder.settling(entry, proxy, real)
        return recorder.settle(entry, value, proxy, real), False, None


# -- replaying ----------------------------------------------------------------------------------------------
class Player:
    """Answers the calls on one resource from its part of the tape; each recorded call answers once, matched
    by node, object, method and arguments, the earliest first."""

    __slots__ = (
        "_cursor",
        "_used",
        "cassette",
        "encoder",
        "live",
        "mode",
        "replayed",
        "resource",
        "tape",
        "tracker",
    )

    def __init__(self, cassette: str, mode: str, resource: str, tape: dict[str, list[Entry]], tracker: CallTracker,
                 encoder: Encoder, live: tuple[TrackedResource, RecordingHandler] | None = None) -> None:
        self.cassette, self.mode, self.resource, self.tape = cassette, mode, resource, tape
        self.tracker, self.encoder, self.live = tracker, encoder, live
        self._used: dict[str, list[bool]] = {node: [False] * len(entries) for node, entries in tape.items()}
        self._cursor: dict[str, int] = {}
        self.replayed = 0

    def _is_used(self, node: str, index: int) -> bool:
        used = self._used.get(node)
        return used is None or index >= len(used) or used[index]  # calls recorded since are live ones

    def find(self, node: str, on: str | None, method: str, key: str | None) -> Entry | None:
        """The first unanswered call of ``node`` on ``on`` named ``method`` (with ``key``, when given)."""
        entries = self.tape.get(node)
        if not entries:
            return None
        start = self._cursor.get(node, 0)
        while start < len(entries) and self._is_used(node, start):
            start += 1
        self._cursor[node] = start
        for index in range(start, len(entries)):
            entry = entries[index]
            if (entry.key == key if key is not None else (entry.on == on and entry.method == method)) \
                    and not self._is_used(node, index):
                return entry
        return None

    def use(self, node: str, entry: Entry) -> None:
        self._used[node][int(entry.handle.rpartition("#")[2])] = True
        if entry.kind != "get":
            self.replayed += 1

    def last_read(self, node: str, on: str | None, name: str) -> Entry | None:
        """The latest attribute read of ``name`` already replayed: an attribute read again gives it again."""
        entries = self.tape.get(node, [])
        for index in range(len(entries) - 1, -1, -1):
            entry = entries[index]
            if entry.kind == "get" and entry.on == on and entry.method == name and self._is_used(node, index):
                return entry
        return None

    def unplayed(self) -> list[str]:
        return [f"{self.resource}.{_describe(entry.method, entry.args, entry.kwargs)} [node {node!r}, call {index}]"
                for node, entries in sorted(self.tape.items()) for index, entry in enumerate(entries)
                if entry.kind != "get" and not self._is_used(node, index)]

    def knows(self, on: str | None, name: str) -> bool:
        return any(entry.on == on and entry.method == name for entries in self.tape.values() for entry in entries)

    def answer(self, entry: Entry, proxy: TrackedResource) -> Any:
        """The recorded outcome: the value (a fresh copy), a proxy for a returned object, or the exception."""
        if entry.outcome == "result":
            return self._decoded(entry)
        if entry.outcome == "self":
            return proxy
        if entry.outcome == "handle":
            stand_in = Replayed(f"{self.resource} {entry.handle}", entry.type)
            return handled_resource(self.resource, stand_in, self.tracker, ReplayHandler(self, entry.handle))
        if entry.outcome == "nothing":
            raise UnmatchedCallError(
                f"cassette {self.cassette}: {self.resource}.{_describe(entry.method, entry.args, entry.kwargs)} "
                f"never completed when it was recorded (it was cancelled, or its coroutine was never awaited), so "
                "there is no outcome to replay; record again with mode='all'")
        raise self._decoded(entry)

    def _decoded(self, entry: Entry) -> Any:
        """The recorded value (or exception) of ``entry``; a value hand-edited out of shape is a
        :class:`CassetteFileError` naming the record, not a bare error from deep in the encoder."""
        try:
            if entry.outcome == "raised":
                return self.encoder.decode_exception(entry.result)
            return self.encoder.decode(entry.result)
        except Exception as error:
            node, _, index = entry.handle.rpartition("#")
            raise CassetteFileError(
                f"cassette {self.cassette}: resources.{self.resource}.{node}[{index}] ({entry.method}) has a "
                f"{entry.outcome!r} that cannot be read back: {type(error).__name__}: {error}; fix it, or record "
                "again with mode='all'") from error

    def unmatched(self, node: str, on: str | None, method: str, args: list[Any], kwargs: dict[str, Any],
                  key: str, *, read: bool = False) -> UnmatchedCallError:
        made = f"{self.resource}.{method} (read as an attribute or method)" if read else \
            f"{self.resource}.{_describe(method, args, kwargs)}"
        if on is not None:
            made += f" (on the object returned by call {on})"
        who = f"node {node!r}" if node != NO_NODE else "the test (outside any node)"
        scored = []
        for other_node, entries in self.tape.items():
            for index, entry in enumerate(entries):
                if entry.kind == "get":
                    continue
                score = difflib.SequenceMatcher(None, key, entry.key).ratio() + (entry.method == method) + \
                    (other_node == node) * 0.5
                scored.append((-score, other_node, index, entry))
        scored.sort(key=lambda item: item[:3])
        lines = [f"  {self.resource}.{_describe(e.method, e.args, e.kwargs)} [node {n!r}, call {i}"
                 f"{', already replayed' if self._is_used(n, i) else ''}]" for _, n, i, e in scored[:3]]
        closest = ("closest recorded calls:\n" + "\n".join(lines)) if lines else \
            f"the cassette has no recorded calls on {self.resource!r}"
        if on is not None:  # mode new replays the call that returned the object: nothing real to call
            how = ("It is a call on an object that a replayed call returned, with no real object behind it, so "
                   "mode='new' cannot make it: record everything again with mode='all' (pytest "
                   "--kailash-record=all; in a notebook, %kailash cassette PATH --mode all)")
        else:
            how = ("To record it: Cassette(..., mode='new') adds new calls, mode='all' records everything again "
                   "(pytest --kailash-record=new or all; in a notebook, %kailash cassette PATH --mode new or all)")
        return UnmatchedCallError(
            f"cassette {self.cassette} (mode {self.mode!r}) has no recording of {made} by {who}; {closest}\n{how}")


def _describe(method: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    shown = [json.dumps(arg, sort_keys=True, ensure_ascii=False) for arg in args]
    shown += [f"{k}={json.dumps(v, sort_keys=True, ensure_ascii=False)}" for k, v in sorted(kwargs.items())]
    text = ", ".join(shown)
    return f"{method}({text if len(text) <= 200 else text[:197] + '...'})"


async def _not_suppressed() -> bool:
    return False


async def _replay_result(player: Player, entry: Entry, proxy: TrackedResource) -> Any:
    return player.answer(entry, proxy)


class ReplayHandler:
    """Answers each call from the tape (the seam's handler while replaying); with ``mode='new'``, a call on
    the resource itself that the tape does not hold is made on the real resource and recorded."""

    __slots__ = ("handle", "player")
    replays = True

    def __init__(self, player: Player, handle: str | None = None) -> None:
        self.player, self.handle = player, handle

    def attribute(self, proxy: Any, name: str) -> Any:
        player, node = self.player, _node()
        entry = player.find(node, self.handle, name, None)
        if entry is not None and entry.kind == "get":
            player.use(node, entry)
            return player.answer(entry, proxy)
        if entry is None:
            earlier = player.last_read(node, self.handle, name)
            if earlier is not None:
                return player.answer(earlier, proxy)
            if player.live is not None and self.handle is None and not player.knows(None, name):
                live_proxy, live = player.live
                return live.attribute(live_proxy, name)
            if not player.knows(self.handle, name):
                raise player.unmatched(node, self.handle, name, [], {}, call_key(self.handle, name, [], {}),
                                       read=True)
        return METHOD

    def call(self, proxy: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
             node: str | None) -> tuple[Any, bool, Settle | None]:
        player = self.player
        node_name = node or NO_NODE
        try:
            encoded, named = _arguments(player.encoder, method, args, kwargs, "")
        except UnencodableValueError:  # again, naming the place (built only when needed)
            encoded, named = _arguments(player.encoder, method, args, kwargs, f"cassette {player.cassette}: "
                                        f"{player.resource}.{method}()")
        key = call_key(self.handle, method, encoded, named)
        entry = player.find(node_name, self.handle, method, key)
        if entry is None and method == "__aexit__" and args and args[0] is not None:
            # The block raised where the recording did not (node code changed since): leaving the context
            # suppresses nothing, so the node's own exception is what the test sees, not an unmatched exit.
            recorded_exit = player.find(node_name, self.handle, method, None)
            if recorded_exit is not None:
                player.use(node_name, recorded_exit)
            return _not_suppressed(), True, None
        if entry is None:
            if player.live is not None and self.handle is None:
                live_proxy, live = player.live
                return live.call(live_proxy, method, args, kwargs, node)
            raise player.unmatched(node_name, self.handle, method, encoded, named, key)
        player.use(node_name, entry)
        if entry.kind == "await":
            return _replay_result(player, entry, proxy), True, None
        return player.answer(entry, proxy), True, None


def replayed_resource(player: Player) -> TrackedResource:
    """The proxy node code gets for a replayed resource: no real object behind it. A plain tracked resource
    with a handler, not awaitable: whatever awaits an awaitable resource (a registry) leaves it alone."""
    return TrackedResource(player.resource, Replayed(player.resource), player.tracker, ReplayHandler(player))
