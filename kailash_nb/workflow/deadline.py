"""``Deadline``: bound the time of an ``async with`` block, on ``asyncio.timeout``, and say how it ended.

The one implementation of a time limit in kailash_nb: for the runtime's node and run timeouts, and for the
testing kit's time limits.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from types import TracebackType

from .validation import validate_timeout

__all__ = ["Deadline"]


class Deadline:
    """``async with Deadline(2.0): ...`` cancels the body at the limit and raises ``error(deadline)`` instead.

    ``asyncio.timeout`` does the cancelling; ``Deadline`` adds what a test or a workflow needs to know:

    - ``expired``: the limit passed while the body was waiting, so it was cancelled. A body that catches
      that cancellation and finishes anyway has still run past its limit: ``error`` is raised all the same.
    - ``blocked``: the body finished at or after the limit without ever being cancelled, because it did not
      yield to the event loop in time (blocking code cannot be stopped before it yields, only reported
      late). ``error`` is raised as well, unless ``fail_when_blocked=False``: then it is only reported.
    - ``elapsed``: seconds from entering the block to leaving it, on the event loop's clock.

    An outside cancellation (of the task, not by this deadline) propagates untouched, even when it came
    together with the expiry; a body that raised its own exception keeps it. ``error`` receives the
    deadline (``seconds``, ``elapsed``, ``expired``, ``blocked``) and returns the exception to raise;
    the default is a ``TimeoutError`` naming the limit. On expiry the exception is raised from the
    ``CancelledError``, whose traceback shows where the body was waiting.

    ``seconds`` is a positive, finite number, or ``None`` for no limit (the block then always runs to
    the end); anything else is an ``InvalidTimeoutError`` naming ``what`` (the option the caller was given
    it as, say ``"wait_for_condition(timeout=...)"``). A deadline may be reused for one block after
    another, each timed from its own start.

    >>> async def fetch_or_fail(fetch):
    ...     async with Deadline(2.0, error=lambda d: LookupError(f"no answer within {d.seconds:g} s")):
    ...         return await fetch()
    """

    __slots__ = ("_cancelling", "_loop", "_started", "_task", "_timeout", "blocked", "elapsed", "error",
                 "expired", "fail_when_blocked", "seconds")

    def __init__(self, seconds: float | None, *, error: Callable[[Deadline], BaseException] | None = None,
                 fail_when_blocked: bool = True, what: str = "Deadline(seconds=...)") -> None:
        self.seconds = validate_timeout(seconds, what=what)
        self.error: Callable[[Deadline], BaseException] = _timeout_error if error is None else error
        self.fail_when_blocked = fail_when_blocked
        self.expired = False
        self.blocked = False
        self.elapsed = 0.0

    @property
    def remaining(self) -> float:
        """Seconds left before the limit: zero or less once it has passed, all of ``seconds`` before the block
        starts, ``math.inf`` without a limit. Lets the body avoid starting work that could only finish late."""
        if self.seconds is None:
            return math.inf
        if not hasattr(self, "_started"):
            return self.seconds
        return self._started + self.seconds - self._loop.time()

    async def __aenter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a Deadline must be entered inside an asyncio task")
        self._loop = loop
        self._task = task
        self._cancelling = task.cancelling()  # cancel requests already pending are not ours to judge
        self._started = loop.time()
        self._timeout = asyncio.timeout_at(None if self.seconds is None else self._started + self.seconds)
        await self._timeout.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        timeout = self._timeout
        # asyncio.timeout is told nothing of the exception, so it only disarms and withdraws its own cancel
        # request; what to raise is decided here, the same way on every 3.11 release (early ones do not
        # tell requests pending on entry from new ones)
        await timeout.__aexit__(None, None, None)
        self.elapsed = self._loop.time() - self._started
        self.expired = timeout.expired()
        self.blocked = not self.expired and self.seconds is not None and self.elapsed >= self.seconds
        if self.expired:
            outside = self._task.cancelling() > self._cancelling  # requests left beyond ours came from outside
            if exc is None:
                if outside:  # the body swallowed both cancellations: the outside one still stands
                    raise asyncio.CancelledError
                raise self.error(self)  # the body caught its cancellation and finished past the limit
            if isinstance(exc, asyncio.CancelledError) and not outside:
                raise self.error(self) from exc
            return False  # the body's own exception, or an outside cancellation
        if exc is None and self.blocked and self.fail_when_blocked:
            raise self.error(self)
        return False


def _timeout_error(deadline: Deadline) -> TimeoutError:
    if deadline.blocked:
        return TimeoutError(f"the block finished after its time limit of {deadline.seconds:g} s without yielding "
                            "to the event loop, so it could not be cancelled at the limit")
    return TimeoutError(f"the block did not finish within its time limit of {deadline.seconds:g} s and was cancelled")
