"""Cassettes: record a workflow's resource calls once against the real services, then replay them.

::

    async with Cassette("tests/cassettes/orders.json") as cassette:       # mode="once"
        resources = await cassette.resources(db=lambda: asyncpg.create_pool(dsn), llm=make_client)
        result = await AsyncLocalRuntime().execute_workflow(workflow, inputs, resources=resources)

The first run calls the factories and records every call made on the real objects (and on the objects
those calls return: a connection, a transaction, a streamed response); later runs never call the
factories and answer every call from the file. Modes, as in vcrpy:

- ``once``: record when the file is missing, else replay;
- ``none``: replay only; a missing file is an error;
- ``new``: replay the calls the file holds; a call on a resource itself that the file lacks is made on the
  real resource (the factories are called) and added to the file. A call the file lacks on an object that a
  *replayed* call returned cannot be made (there is no real object behind it): record again with ``all``;
- ``all``: record everything again.

``pytest --kailash-record=MODE`` (or the ``KAILASH_NB_RECORD`` environment variable) overrides the mode of
every cassette. A call with no recording raises :class:`UnmatchedCallError` at once. The file format is
in :mod:`.tape`, the values it can hold in :mod:`.encoder`.

Limits: secrets are found by name, so a secret passed positionally (or inside a URL) is written as it is.
On an object a call returned (not data), ``await``, ``async with``, ``async for``, plain ``for`` (so
``dict(headers)``), ``[key]``, ``str()``, ``bool()``, ``len()`` and ``in`` are recorded; ``==``, ``hash()`` and
arithmetic are not, so on replay they see the stand-in behind the proxy: take plain data from such objects in
node code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from kailash_nb.atomic import write_atomically
from kailash_nb.errors import KailashNbError
from kailash_nb.workflow import ResourceNotFoundError, ResourceRegistry

from ..mocks import CallRecord, CallTracker, TrackedResource
from .encoder import SECRET, Encoder, RecordedError, ReplayedRecord, UnencodableValueError
from .handlers import Player, Recorder, RecordingHandler, UnmatchedCallError, replayed_resource
from .tape import FORMAT_VERSION, CassetteFileError, CassetteVersionError, Tape, dump, load

__all__ = [
    "FORMAT_VERSION",
    "MODES",
    "RECORD_MODE_VARIABLE",
    "SECRET",
    "Cassette",
    "CassetteChangedError",
    "CassetteFileError",
    "CassetteModeError",
    "CassetteNotFoundError",
    "CassetteUsageError",
    "CassetteVersionError",
    "Encoder",
    "RecordedError",
    "ReplayedRecord",
    "UnencodableValueError",
    "UnmatchedCallError",
]

MODES = ("once", "none", "new", "all")
#: The environment variable that overrides every cassette's mode (``pytest --kailash-record`` sets it).
RECORD_MODE_VARIABLE = "KAILASH_NB_RECORD"


class CassetteModeError(KailashNbError, ValueError):
    """A record mode that is not one of once, none, new, all."""


class CassetteUsageError(KailashNbError, ValueError):
    """A use the cassette's state does not allow: a resource made twice, or ``factories()`` while recording."""


class CassetteChangedError(KailashNbError, RuntimeError):
    """The cassette file changed on disk after the cassette read it (another process, a hand edit): the
    recording is not written over the change."""


class CassetteNotFoundError(KailashNbError, FileNotFoundError):
    """``mode='none'`` (replay only) and the cassette file does not exist."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Unchanged:
    """The check ``write_atomically`` makes just before its rename: the file is as the cassette found it."""

    __slots__ = ("digest", "path")

    def __init__(self, path: Path, digest: str | None) -> None:
        self.path, self.digest = path, digest

    def verify(self) -> None:
        now = _digest(self.path.read_bytes()) if self.path.is_file() else None
        if now != self.digest:
            raise CassetteChangedError(f"cassette {self.path} changed on disk while it was being recorded: not "
                                       "written, so that the change is kept; run again to record over it")


_REPLAY_ONLY: ContextVar[str | None] = ContextVar("kailash_nb_cassettes_replay_only", default=None)


@contextlib.contextmanager
def replay_only(why: str) -> Iterator[None]:
    """Open every cassette made in this context in mode ``none``, whatever it asks: re-runs of a test (under
    seeded schedules) replay what its usual run recorded, and never call a real service or rewrite the file.
    ``why`` is named in the error when there is nothing to replay."""
    token = _REPLAY_ONLY.set(why)
    try:
        yield
    finally:
        _REPLAY_ONLY.reset(token)


def _mode(mode: str) -> str:
    override = os.environ.get(RECORD_MODE_VARIABLE)
    if override:
        if override not in MODES:
            raise CassetteModeError(f"{RECORD_MODE_VARIABLE}={override!r} is not a record mode; use one of "
                                    f"{', '.join(MODES)}")
        return override
    if mode not in MODES:
        raise CassetteModeError(f"Cassette(mode={mode!r}): use one of {', '.join(MODES)} (once: record when the "
                                "file is missing, else replay; none: replay only; new: replay and record new "
                                "calls; all: record again)")
    return mode


class Cassette:
    """A file of recorded resource calls, and the resources that record into it or replay from it.

    ``secrets`` adds name patterns to the defaults (:data:`.encoder.DEFAULT_SECRETS`): values of arguments
    and fields so named are written as ``"<secret>"``. ``encoder`` writes the values (register your own
    types on it). ``tracker`` receives every call (a test case's, so its call tables and assertions see
    them); by default the cassette has its own, ``cassette.calls``.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "once", *, secrets: Iterable[str] = (),
                 encoder: Encoder | None = None, tracker: CallTracker | None = None) -> None:
        self.path = Path(path)
        self.requested_mode = mode
        self.mode = _mode(mode)
        self._replay_only = _REPLAY_ONLY.get()
        if self._replay_only is not None:
            self.mode = "none"
        self.encoder = (encoder or Encoder()).with_secrets(secrets) if secrets else (encoder or Encoder())
        self.calls = tracker if tracker is not None else CallTracker()
        self._tape: Tape | None = None
        self._had_file = False
        self._registry = ResourceRegistry()
        self._recorders: dict[str, Recorder] = {}
        self._players: dict[str, Player] = {}
        self._fresh: list[Player] = []  # the players of factories()
        self._resources: dict[str, TrackedResource] = {}
        self._read_digest: str | None = None  # the file as it was when the cassette started
        self._saved_count: int | None = None  # recorded_count when the file was last read or written

    # -- what the cassette is doing ------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """True when calls are made on real resources and written to the file (some of them, in mode new)."""
        self._load()
        return self.mode == "all" or not self._had_file or self.mode == "new"

    @property
    def replaying(self) -> bool:
        """True when recorded calls are answered from the file."""
        self._load()
        return self._had_file and self.mode != "all"

    @property
    def names(self) -> tuple[str, ...]:
        """The resources made so far, in the order given."""
        return tuple(self._resources)

    @property
    def recorded_count(self) -> int:
        """Calls recorded in this session (written by :meth:`save`)."""
        return sum(recorder.recorded for recorder in self._recorders.values())

    @property
    def replayed_count(self) -> int:
        """Calls answered from the file."""
        return sum(player.replayed for player in (*self._players.values(), *self._fresh))

    def replayed_calls(self) -> tuple[CallRecord, ...]:
        """The calls answered from the file, oldest first."""
        return tuple(call for call in self.calls if call.replayed)

    def unplayed(self) -> tuple[str, ...]:
        """The recorded calls that no call has replayed yet (after a run: what the workflow no longer makes),
        as ``"db.fetch(...) [node 'load', call 3]"``."""
        return tuple(line for player in self._players.values() for line in player.unplayed())

    def __repr__(self) -> str:
        if self._tape is None:
            state = "not loaded"
        elif not self.replaying:
            state = "recording"
        else:
            state = "replaying, recording new calls" if self.mode == "new" else "replaying"
        return (f"<Cassette {self.path} mode={self.mode!r} ({state}): "
                f"{self.recorded_count} recorded, {self.replayed_count} replayed>")

    # -- resources -------------------------------------------------------------------------------------------
    def _load(self) -> Tape:
        if self._tape is None:
            exists = self.path.is_file()
            if not exists and self._replay_only is not None:
                raise CassetteNotFoundError(
                    f"cassette {self.path} does not exist, and {self._replay_only} only replays cassettes: the "
                    "test's usual run records it (mode 'once' or 'all'), then the re-runs replay it")
            if not exists and self.mode == "none":
                raise CassetteNotFoundError(
                    f"cassette {self.path} does not exist and mode is 'none' (replay only): record it first with "
                    "mode='once' or 'all' (or pytest --kailash-record=once)")
            self._had_file = exists and self.mode != "all"
            raw = self.path.read_bytes() if exists else None  # read once: for the digest and the tape
            self._read_digest = _digest(raw) if raw is not None else None
            self._tape = load(self.path, raw) if self._had_file else {}
            self._saved_count = 0 if self._had_file else None
        return self._tape

    async def resources(self, **factories: Callable[[], Any]) -> dict[str, Any]:
        """The resources named by the keywords, for ``resources=`` of a run or a test case: recording, each
        factory (sync or async) is called once and its object wrapped; replaying, no factory is called.
        Every call on them is tracked in :attr:`calls`."""
        tape = self._load()
        made: dict[str, Any] = {}
        for name, factory in factories.items():
            if name in self._resources:
                raise CassetteUsageError(f"cassette {self.path}: resource {name!r} was made already; names: "
                                 f"{', '.join(map(repr, self._resources))}")
            if not callable(factory):
                raise TypeError(f"cassette {self.path}: resource {name!r} needs a factory (such as lambda: obj), "
                                f"got {type(factory).__name__}")
            part = tape.setdefault(name, {})
            if self.replaying and self.mode != "new":
                proxy = replayed_resource(self._player(name, part))
            else:
                self._registry.register_factory(name, factory)
                real = await self._registry.get(name)
                recorder = self._recorders[name] = Recorder(str(self.path), name, part, self.calls, self.encoder)
                handler = RecordingHandler(recorder, real)
                proxy = TrackedResource(name, real, self.calls, handler)
                if self.replaying:  # mode new: the file answers what it holds, the real resource the rest
                    proxy = replayed_resource(self._player(name, part, (proxy, handler)))
            self._resources[name] = made[name] = proxy
        return made

    def _player(self, name: str, part: dict[str, Any], live: Any = None) -> Player:
        player = self._players[name] = Player(str(self.path), self.mode, name, part, self.calls, self.encoder, live)
        return player

    def resource(self, name: str) -> Any:
        """The resource ``name`` made by :meth:`resources`."""
        try:
            return self._resources[name]
        except KeyError:
            raise ResourceNotFoundError(f"cassette {self.path} has made no resource {name!r}; made: "
                                        f"{', '.join(map(repr, self._resources)) or 'none'}") from None

    def factories(self, *names: str) -> dict[str, Callable[[], Any]]:
        """Replaying: a factory per resource that gives a fresh replay each time it is called, from the first
        recorded call, for ``explore_schedules(..., resources=cassette.factories())``, which calls
        factories once per schedule."""
        tape = self._load()
        if not self.replaying or self.mode == "new":
            raise CassetteUsageError(f"cassette {self.path}: factories() replays, but the cassette is recording "
                                    f"(mode {self.mode!r}); record it first")
        chosen = names or tuple(tape)

        def fresh(name: str) -> Callable[[], Any]:
            def make() -> Any:
                player = Player(str(self.path), self.mode, name, tape.get(name, {}), self.calls, self.encoder)
                self._fresh.append(player)
                return replayed_resource(player)
            make.__name__ = make.__qualname__ = f"replay_{name}"
            return make

        return {name: fresh(name) for name in chosen}

    # -- the end ---------------------------------------------------------------------------------------------
    def save(self) -> bool:
        """Write the recorded calls (atomically) when anything was recorded since the file was read or last
        written (a new file is written even with no calls); True when the file was written.
        Raises :class:`UnencodableValueError` again, leaving the file as it was, when a value could not be
        written."""
        for recorder in self._recorders.values():
            if recorder.failure is not None:
                raise UnencodableValueError(f"{recorder.failure}; the file is left as it was")
        if self._tape is None or not self._recorders:
            return False
        recorded = self.recorded_count
        if recorded == self._saved_count:
            return False  # nothing new (mode new, or a second save: aclose after save): leave the file alone
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = dump(self._tape).encode("utf-8")
        write_atomically(self.path, data, unchanged=_Unchanged(self.path, self._read_digest))
        self._read_digest, self._saved_count = _digest(data), recorded
        return True

    async def aclose(self) -> None:
        """Save, then clean up the real resources the factories made (``aclose``/``close``), newest first."""
        try:
            self.save()
        finally:
            await self._registry.aclose()

    async def __aenter__(self) -> Cassette:
        self._load()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

