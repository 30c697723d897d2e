"""``AsyncTestUtils``: run awaitables together or in turn, wait for a condition, retry, bound time.

Every helper cleans up after itself: on failure or cancellation the awaitables it started are cancelled
and awaited, and coroutines it never started are closed (no "coroutine was never awaited" warnings).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from kailash_nb.workflow import Deadline
from kailash_nb.workflow.errors import add_note

__all__ = ["AsyncTestUtils", "maybe_await", "wait_until"]

T = TypeVar("T")
Condition = Callable[[], Any]


async def maybe_await(value: Awaitable[T] | T) -> T:
    """``value``, awaited first if it is awaitable: what a sync-or-async callable's call gives (a condition
    returning a coroutine must be awaited, since the coroutine itself is always truthy)."""
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


def _as_awaitable(item: Any, position: int) -> Awaitable[Any]:
    if inspect.isawaitable(item):
        return item
    if callable(item):
        value = item()
        if inspect.isawaitable(value):
            return value
        return maybe_await(value)
    raise TypeError(f"argument {position} is a {type(item).__name__}, not an awaitable or a callable "
                    "returning one (did you pass the result of an awaited call?)")


def _close_unstarted(awaitables: Iterable[Any]) -> None:
    for item in awaitables:
        if inspect.iscoroutine(item) and inspect.getcoroutinestate(item) == inspect.CORO_CREATED:
            item.close()


def _label(condition: Any) -> str:
    return getattr(condition, "__qualname__", None) or repr(condition)


async def wait_until(condition: Condition, timeout: float | None, interval: float, *, what: str) -> Any:
    """``AsyncTestUtils.wait_for_condition``, with an invalid ``timeout`` named as ``what`` (the option the
    caller was given it as)."""
    last: list[Any] = [None]
    checks = [0]

    def expired(deadline: Deadline) -> BaseException:
        return TimeoutError(f"condition {_label(condition)} was not met within {deadline.seconds:g} s "
                            f"({checks[0]} checks, last value {last[0]!r})")

    # a condition met late (a sync one that blocked) is still met: only a wait cut short fails
    async with Deadline(timeout, error=expired, fail_when_blocked=False, what=what):
        while True:
            checks[0] += 1
            last[0] = await maybe_await(condition())
            if last[0]:
                return last[0]
            await asyncio.sleep(interval)


class AsyncTestUtils:
    """Helpers for running async code in tests. All are static: ``await AsyncTestUtils.run_concurrent(...)``."""

    @staticmethod
    async def run_concurrent(*awaitables: Awaitable[T] | Callable[[], Awaitable[T]], limit: int | None = None,
                             return_exceptions: bool = False) -> list[T | BaseException]:
        """Run awaitables (or zero-argument callables returning one) concurrently; results in argument order.

        ``limit`` bounds how many run at once. With ``return_exceptions=False`` the first exception
        cancels the others and is raised; with ``True`` exceptions take their place in the results.
        """
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive int or None, got {limit!r}")
        items = [_as_awaitable(item, i) for i, item in enumerate(awaitables)]
        if not items:
            return []
        gate = asyncio.Semaphore(limit) if limit is not None else None

        async def run(item: Awaitable[T]) -> T:
            if gate is None:
                return await item
            async with gate:
                return await item

        tasks = [asyncio.ensure_future(run(item)) for item in items]
        try:
            if return_exceptions:
                return list(await asyncio.gather(*tasks, return_exceptions=True))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:  # the first failure in argument order
                if task in done and not task.cancelled() and (error := task.exception()) is not None:
                    raise error
            return [t.result() for t in tasks]
        finally:
            await _cancel_all(tasks)
            _close_unstarted(items)

    @staticmethod
    async def run_sequential(*awaitables: Awaitable[T] | Callable[[], Awaitable[T]]) -> list[T]:
        """Await each item in turn (callables are called only when their turn comes); results in order."""
        results: list[T] = []
        pending: list[Any] = list(awaitables)  # each slot is emptied when its turn comes
        try:
            for position in range(len(pending)):
                item = pending[position]
                pending[position] = None
                results.append(await _as_awaitable(item, position))
        finally:
            _close_unstarted(pending)
        return results

    @staticmethod
    async def wait_for_condition(condition: Condition, timeout: float = 5.0, interval: float = 0.05) -> Any:
        """Check ``condition()`` (sync or async) every ``interval`` seconds until it is truthy; return its value.

        Raises ``TimeoutError`` naming the condition and the last value when ``timeout`` passes first;
        an async condition that hangs is cancelled at the timeout.
        """
        return await wait_until(condition, timeout, interval, what="wait_for_condition(timeout=...)")

    @staticmethod
    async def retry(operation: Callable[[], Awaitable[T] | T], *, attempts: int = 3, delay: float = 0.0,
                    backoff: float = 2.0,
                    exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception) -> T:
        """Call ``operation()`` until it succeeds, at most ``attempts`` times, sleeping ``delay * backoff**n``
        between attempts. The last exception is raised, with a note listing every attempt's error."""
        if not callable(operation):
            raise TypeError("retry needs a callable that starts a new attempt each time (a coroutine "
                            "object can only be awaited once); pass lambda: ... or the function itself")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts!r}")
        errors: list[BaseException] = []
        for attempt in range(attempts):
            try:
                return await maybe_await(operation())
            except exceptions as error:
                errors.append(error)
                if attempt + 1 < attempts and delay > 0:
                    await asyncio.sleep(delay * backoff**attempt)
        last = errors[-1]
        tried = "; ".join(f"#{i + 1} {type(e).__name__}: {e}" for i, e in enumerate(errors))
        add_note(last, f"{_label(operation)} failed {attempts} attempts: {tried}")
        raise last

    @staticmethod
    def timeout(seconds: float | None) -> Deadline:
        """``async with AsyncTestUtils.timeout(2.0): ...``: cancel the body at the limit and raise
        ``TimeoutError`` naming the limit; also when the body blocked the event loop past the limit (it
        could not be cancelled, but did not finish in time). An outside cancellation propagates and a
        body that raised keeps its own exception. ``None``: no limit. Built on
        :class:`kailash_nb.workflow.Deadline`, which the ``async with`` gives (``elapsed``, ``expired``...).
        """
        return Deadline(seconds, error=_timed_out, what="AsyncTestUtils.timeout(seconds=...)")


def _timed_out(deadline: Deadline) -> TimeoutError:
    if deadline.blocked:
        return TimeoutError(f"did not finish within the timeout of {deadline.seconds:g} s: it took "
                            f"{deadline.elapsed:.3f} s without yielding to the event loop, so it could not be "
                            "cancelled at the limit")
    return TimeoutError(f"did not finish within the timeout of {deadline.seconds:g} s; cancelled after "
                        f"{deadline.elapsed:.3f} s")


async def _cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel unfinished tasks and wait for them, so that none outlives the helper that started it."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:  # mark exceptions as retrieved: they were raised or returned already
        if task.done() and not task.cancelled():
            task.exception()
