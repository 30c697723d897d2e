"""The one clock of the kit, and virtual time on it.

Every duration kailash_nb records (node timings, ``execution_time``, mock and HTTP call durations, bench
and convergence figures, deadlines) reads :func:`now`: the running event loop's ``loop.time()``. So when a
loop runs on virtual time, everything the kit measures on it is virtual too, and the same from run to run.

``async with virtual_time() as clock:`` puts the running loop on a virtual clock. Inside, time stands
still while code runs, and whenever the loop has nothing to do but wait for a timer, the clock jumps to
that timer: ``asyncio.sleep(60)``, ``call_later``, ``asyncio.timeout``/``wait_for``, every ``Deadline``,
retries with backoff and cache TTLs take no real time. Real I/O keeps working:

- while an executor job (``run_in_executor``, ``asyncio.to_thread``) or a child process started on the loop
  is running, virtual time runs at the speed of real time, so a timeout around real work fires when it
  would have;
- otherwise, when a socket or pipe could still wake the loop, the clock jumps only after the loop has
  waited ``idle_threshold`` real seconds with no I/O event (as trio's ``autojump_threshold``);
- when nothing but a timer can wake the loop (no file descriptor but the loop's own), it jumps at once.

The loop is changed only through attributes of that one loop object (its ``time``, its selector's
``select``, ``run_in_executor`` and the subprocess transport factory), never through asyncio globals, and
is put back exactly as before on exit, even on an error or a cancellation: timers still pending keep the
time they had left. Nesting is supported: an inner ``virtual_time()`` on a loop that is on virtual time
already gives the same clock and leaves it running when it exits.

Limits: a thread's own ``time.sleep``, timers inside C extensions and other processes' clocks are not
virtual; a thread of your own that reports back with ``call_soon_threadsafe`` (not through
``run_in_executor``/``asyncio.to_thread``) may see the clock jump while it works.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .errors import WorkflowError

__all__ = ["DEFAULT_IDLE_THRESHOLD", "InvalidAdvanceError", "VirtualClock", "VirtualTimeError", "now",
           "virtual_time"]

#: Real seconds the loop must wait with no I/O event before the clock jumps to the next timer.
DEFAULT_IDLE_THRESHOLD = 0.05
#: Real seconds the loop must have been stuck (see ``VirtualClock.on_stuck``) before it is called: time
#: for a thread of the test's own to call back with ``call_soon_threadsafe``.
STUCK_GRACE = 1.0

_MISSING = object()


class VirtualTimeError(WorkflowError, RuntimeError):
    """Virtual time cannot be used here: no running event loop, or a loop it cannot drive (uvloop)."""


class InvalidAdvanceError(WorkflowError, ValueError):
    """``clock.advance(seconds)`` with a negative, NaN or infinite number of seconds (or such an
    ``idle_threshold``): time on a virtual clock only moves forward, by a finite amount."""


def now() -> float:
    """The running loop's clock (``loop.time()``), or ``time.monotonic()`` where no loop runs.

    Virtual under :func:`virtual_time`; the same clock as every ``asyncio`` timer and ``Deadline``.
    """
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def virtual_time(*, idle_threshold: float = DEFAULT_IDLE_THRESHOLD) -> VirtualClock:
    """``async with virtual_time() as clock:`` runs the body on a clock that jumps over idle waits.

    ``clock.now`` reads it, ``clock.advance(seconds)`` moves it by hand, ``clock.jumps`` counts the jumps
    it made. ``idle_threshold`` is how long (real seconds) the loop must wait with no I/O event before the
    clock jumps when I/O could still wake it (a socket, a pipe): raise it if a slow service answers late.
    """
    return VirtualClock(idle_threshold=idle_threshold)


class VirtualClock:
    """A virtual clock for one event loop; see :func:`virtual_time`. Also usable as a decorator of an
    ``async def`` function, which then runs on virtual time."""

    __slots__ = ("_depth", "_in_flight", "_joined", "_left", "_loop", "_make_subprocess", "_now", "_run_in_executor",
                 "_saved", "_select", "_stuck_since", "_subprocesses", "idle_threshold", "jumps", "on_stuck")

    def __init__(self, *, idle_threshold: float = DEFAULT_IDLE_THRESHOLD) -> None:
        if (isinstance(idle_threshold, bool) or not isinstance(idle_threshold, (int, float))
                or not math.isfinite(idle_threshold) or idle_threshold < 0):
            raise InvalidAdvanceError(
                f"virtual_time(idle_threshold=...) must be a finite number of seconds >= 0, got {idle_threshold!r}")
        self.idle_threshold = float(idle_threshold)
        self.jumps = 0
        #: Called once when nothing can wake the loop any more (no timer, no ready callback, no file
        #: descriptor but the loop's own, no executor job or child process) for ``STUCK_GRACE`` real
        #: seconds: every task waits on another, a deadlock. ``None`` (the default): wait on, as asyncio does.
        self.on_stuck: Callable[[], None] | None = None
        self._stuck_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._depth = 0
        self._now = 0.0
        self._in_flight = 0
        self._saved: list[tuple[object, str, object]] = []
        self._left: list[asyncio.Future[None]] = []  # waiters for the loop to leave virtual time
        self._joined: list[VirtualClock] = []  # clocks of loops this one found on virtual time already
        self._subprocesses: weakref.WeakSet[Any] | None = None  # child processes started on the loop
        self._select: Callable[[float | None], list[Any]]
        self._run_in_executor: Callable[..., asyncio.Future[Any]]
        self._make_subprocess: Callable[..., Any]

    # -- what a test reads and does ---------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The virtual time: the loop's ``time()`` while the clock is installed."""
        if self._loop is None:
            raise VirtualTimeError("this virtual clock is not running: use it as `async with virtual_time() as clock:`")
        return self._now

    @property
    def active(self) -> bool:
        return self._loop is not None

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``; timers now due run at the caller's next ``await``."""
        if (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds)
                or math.isinf(seconds) or seconds < 0):
            raise InvalidAdvanceError(
                f"clock.advance(seconds) needs a finite number of seconds >= 0, got {seconds!r}: time cannot "
                "go backwards, and an infinite jump would fire every timer at once")
        if self._loop is None:
            raise VirtualTimeError("clock.advance() outside `async with virtual_time()`: the clock is not running")
        self._now += float(seconds)

    async def left(self) -> None:
        """Wait until the loop leaves this virtual clock (at once when it is not on it): for a task that
        must keep real time, such as a ticker that wakes the loop, and that would only chop the jumps."""
        if self._loop is None:
            return
        waiter = self._loop.create_future()
        self._left.append(waiter)
        await waiter

    # -- async with / decorator -------------------------------------------------------------------------
    async def __aenter__(self) -> VirtualClock:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise VirtualTimeError("virtual_time() needs a running asyncio event loop: use it inside "
                                   "`async def` code run by asyncio") from None
        return self.install(loop)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.uninstall()

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        import functools
        import inspect

        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"virtual_time() decorates an `async def` function, not {function!r}")
        threshold = self.idle_threshold

        @functools.wraps(function)
        async def on_virtual_time(*args: Any, **kwargs: Any) -> Any:
            async with VirtualClock(idle_threshold=threshold):
                return await function(*args, **kwargs)

        return on_virtual_time

    # -- installing on a loop (also used where no coroutine spans the whole time: a test's Runner) -------
    def install(self, loop: asyncio.AbstractEventLoop) -> VirtualClock:
        """Put ``loop`` on this clock (or join the clock it is on already); returns the clock in use."""
        active = running_clock(loop)
        if active is not None:
            active._depth += 1
            if active is not self:
                self._joined.append(active)
            return active
        if self._loop is not None:
            raise VirtualTimeError("this virtual clock is running on another loop already")
        selector = getattr(loop, "_selector", None)
        if not isinstance(loop, asyncio.BaseEventLoop) or selector is None or not hasattr(selector, "select"):
            raise VirtualTimeError(
                f"virtual_time() drives asyncio's own selector event loops; this loop is a "
                f"{type(loop).__module__}.{type(loop).__qualname__}, which it cannot drive (uvloop and the "
                "Windows proactor loop keep their clock in C): run the test on asyncio's default loop")
        self._loop = loop
        self._now = loop.time()
        self._depth = 1
        self.jumps = 0
        self._in_flight = 0
        self._select = selector.select
        self._run_in_executor = loop.run_in_executor
        self._patch(selector, "select", self._virtual_select)
        self._patch(loop, "run_in_executor", self._counted_run_in_executor)
        make = getattr(loop, "_make_subprocess_transport", None)
        if make is not None:
            self._make_subprocess = make
            self._patch(loop, "_make_subprocess_transport", self._watched_subprocess)
        self._patch(loop, "time", self._time)  # last: running_clock() tells an installed clock by it
        return self

    def uninstall(self) -> None:
        """Leave virtual time (the outermost exit puts the loop back exactly as it was)."""
        if self._joined:
            self._joined.pop().uninstall()
            return
        loop = self._loop
        if loop is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        virtual = self._now
        for owner, name, value in reversed(self._saved):
            if value is _MISSING:
                owner.__dict__.pop(name, None)
            else:
                setattr(owner, name, value)
        self._saved.clear()
        self._loop = None
        left, self._left = self._left, []
        for waiter in left:
            if not waiter.done():
                waiter.set_result(None)
        # timers set on the virtual clock keep the time they had left, now counted on the real one
        scheduled = getattr(loop, "_scheduled", None)
        if scheduled:
            shift = loop.time() - virtual
            for handle in scheduled:
                handle._when += shift

    def _patch(self, owner: Any, name: str, value: object) -> None:
        self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    # -- the loop's side ----------------------------------------------------------------------------------
    def _time(self) -> float:
        return self._now

    def _virtual_select(self, timeout: float | None = None) -> list[Any]:
        select = self._select
        if timeout is not None:  # a callback is ready or a timer set: the loop is not stuck
            self._stuck_since = None
        if timeout is not None and timeout <= 0:  # busy: a real poll
            return select(timeout)
        if timeout is None:  # nothing but I/O can wake the loop; still wake it now and then (a cancellation
            events = select(self.idle_threshold or None)  # scheduled from a signal handler is then seen)
            self._check_stuck(events)
            return events
        if self._real_work_pending():  # an executor job or a child process: time runs as real time does
            started = time.monotonic()
            events = select(timeout)
            self._now += time.monotonic() - started
            return events
        events = select(min(timeout, 0.0 if self._only_timers_can_wake() else self.idle_threshold))
        if not events:
            self._jump()
        return events

    def _check_stuck(self, events: list[Any]) -> None:
        if self.on_stuck is None or events or not self._only_timers_can_wake() or self._real_work_pending():
            self._stuck_since = None
            return
        if self._stuck_since is None:
            self._stuck_since = time.monotonic()
        elif time.monotonic() - self._stuck_since >= STUCK_GRACE:
            callback, self.on_stuck, self._stuck_since = self.on_stuck, None, None
            callback()

    def _jump(self) -> None:
        scheduled = getattr(self._loop, "_scheduled", None)
        if scheduled:
            self._now = max(self._now, scheduled[0]._when)
            self.jumps += 1

    def _real_work_pending(self) -> bool:
        if self._in_flight:
            return True
        return self._subprocesses is not None and any(t.get_returncode() is None for t in self._subprocesses)

    def _only_timers_can_wake(self) -> bool:
        loop: Any = self._loop
        own = getattr(loop, "_ssock", None)
        own_fd = own.fileno() if own is not None else -1
        return all(key.fd == own_fd for key in loop._selector.get_map().values())

    def _counted_run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = self._run_in_executor(executor, func, *args)
        self._in_flight += 1
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, future: asyncio.Future[Any]) -> None:
        self._in_flight = max(0, self._in_flight - 1)

    async def _watched_subprocess(self, *args: Any, **kwargs: Any) -> Any:
        transport = await self._make_subprocess(*args, **kwargs)
        if self._subprocesses is None:
            self._subprocesses = weakref.WeakSet()
        self._subprocesses.add(transport)
        return transport

    def __repr__(self) -> str:
        state = f"now={self._now:.6f} jumps={self.jumps}" if self._loop is not None else "not running"
        return f"<VirtualClock {state}>"


def running_clock(loop: asyncio.AbstractEventLoop | None = None) -> VirtualClock | None:
    """The virtual clock the loop (default: the running one) is on, or ``None`` on real time."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
    clock = getattr(getattr(loop, "__dict__", {}).get("time"), "__self__", None)
    return clock if isinstance(clock, VirtualClock) else None
