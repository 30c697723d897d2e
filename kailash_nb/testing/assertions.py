"""Assertions for async workflow tests: on results, on recorded calls, and on behaviour over time.

Every failure message says what was expected and what happened (the failed nodes and their errors, the
calls that were made, the series of samples), so that a failing test explains itself.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from kailash_nb.errors import WorkflowAssertionError
from kailash_nb.workflow import Deadline, InvalidTimeoutError, now

from .mocks import CallRecord
from .utils import AsyncTestUtils, maybe_await, wait_until

if TYPE_CHECKING:
    from kailash_nb.workflow import WorkflowResult

T = TypeVar("T")

__all__ = [
    "AsyncAssertions",
    "ConvergenceError",
    "ConvergenceResult",
    "PerformanceResult",
    "assert_calls",
    "assert_no_calls",
    "assert_node_output",
    "assert_workflow_failed",
    "assert_workflow_success",
    "time_limit",
]

# -- workflow results ----------------------------------------------------------------------------------

def _describe_failures(result: WorkflowResult) -> str:
    lines = []
    for node, status in result.node_status.items():
        if status == "success":
            continue
        error = result.errors.get(node)
        detail = f": {type(error).__name__}: {error}" if error is not None else ""
        lines.append(f"  - {node} {status}{detail}")
    return "\n".join(lines)


def assert_workflow_success(result: WorkflowResult) -> None:
    """Fail unless every node succeeded; the message lists each node that did not, with its error."""
    if result.status == "success":
        return
    failed = len(result.failed_nodes)
    raise WorkflowAssertionError(
        f"workflow {result.workflow.name!r} failed ({failed} node(s) raised):\n{_describe_failures(result)}"
    )


def assert_workflow_failed(result: WorkflowResult, node: str | None = None,
                           error: type[BaseException] | None = None) -> None:
    """Fail unless the run failed; optionally that ``node`` failed, with an ``error`` instance."""
    if result.status != "failed":
        raise WorkflowAssertionError(f"expected workflow {result.workflow.name!r} to fail, but every node succeeded")
    if node is None:
        return
    status = result.node_status.get(node)
    if status != "failed":
        raise WorkflowAssertionError(f"expected node {node!r} to fail, but its status is {status!r}; "
                             f"failed: {', '.join(result.failed_nodes) or 'none'}")
    if error is not None and not isinstance(result.errors[node], error):
        raised = result.errors[node]
        raise WorkflowAssertionError(f"expected node {node!r} to raise {error.__name__}, "
                             f"it raised {type(raised).__name__}: {raised}")


def assert_node_output(result: WorkflowResult, node: str, expected: Any, key: str | None = None) -> None:
    """Fail unless ``node``'s output (or the value at dotted ``key`` in it) equals ``expected``."""
    where = f"node {node!r} output" + (f" {key!r}" if key is not None else "")
    try:
        actual = result.get_output(node, key)
    except LookupError as exc:
        raise WorkflowAssertionError(f"{where}: expected {expected!r}, but {exc}") from None
    if actual != expected:
        raise WorkflowAssertionError(f"{where}: expected {expected!r}, got {actual!r}")


# -- recorded calls ------------------------------------------------------------------------------------

def _matches(call: CallRecord, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> bool:
    if args is not None and tuple(call.args) != tuple(args):
        return False
    if kwargs is not None:
        return all(k in call.kwargs and call.kwargs[k] == v for k, v in kwargs.items())
    return True


def _calls_made(resource: str, calls: Iterable[CallRecord]) -> str:
    made = [f"  {c.describe()}" for c in calls]
    return f"calls to {resource!r}:\n" + "\n".join(made) if made else f"no calls were made to {resource!r}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _how_often(awaited: int, never_awaited: int) -> str:
    """``it was called 2 time(s)``, adding the calls whose awaitable was dropped without ``await``."""
    if not never_awaited:
        return f"it was called {awaited} time(s)"
    if not awaited:
        return f"it was called {_times(never_awaited)} but never awaited: add await"
    return f"it was called {awaited} time(s), and {_times(never_awaited)} more but never awaited: add await"


def assert_calls(resource: str, method: str, calls: Sequence[CallRecord], times: int | None = None,
                 with_args: Sequence[Any] | None = None, with_kwargs: Mapping[str, Any] | None = None) -> None:
    """Check ``calls`` (all calls to ``resource``) for calls of ``method``.

    Only calls whose positional args equal ``with_args`` and whose kwargs include ``with_kwargs`` count;
    ``times`` is the exact count expected, or at least one call when omitted. A matching call whose
    awaitable result was never awaited (a missing ``await``: its work never ran) is not counted, and fails
    the check whatever ``times`` says, with a message that says so.
    """
    matching = [c for c in calls if c.method == method and _matches(c, with_args, with_kwargs)]
    awaited = sum(1 for c in matching if c.awaited)
    never_awaited = len(matching) - awaited
    if not never_awaited and (awaited == times if times is not None else awaited > 0):
        return
    wanted = "at least once" if times is None else f"{times} time(s)"
    filters = []
    if with_args is not None:
        filters.append(f"args {tuple(with_args)!r}")
    if with_kwargs is not None:
        filters.append(f"kwargs including {dict(with_kwargs)!r}")
    with_text = f" with {' and '.join(filters)}" if filters else ""
    raise WorkflowAssertionError(
        f"expected {resource}.{method}() to be called {wanted}{with_text}, "
        f"{_how_often(awaited, never_awaited)}; {_calls_made(resource, calls)}"
    )


def assert_no_calls(resource: str, calls: Sequence[CallRecord], method: str | None = None) -> None:
    """Fail if ``calls`` holds a call (of ``method``, when given), awaited or not; the message lists them."""
    offending = [c for c in calls if method is None or c.method == method]
    if offending:
        awaited = sum(1 for c in offending if c.awaited)
        what = f"{resource}.{method}()" if method else f"resource {resource!r}"
        raise WorkflowAssertionError(f"expected {what} not to be called, "
                                     f"{_how_often(awaited, len(offending) - awaited)}; "
                                     f"{_calls_made(resource, calls)}")


# -- time ----------------------------------------------------------------------------------------------

def time_limit(seconds: float) -> Deadline:
    """``async with time_limit(2.0): ...``: the body is cancelled at the limit and the assertion fails,
    naming the limit; it fails too when the body blocked the event loop past the limit (it could not be
    cancelled, only reported). A body that raised keeps its own exception; an outside cancellation
    propagates. Built on :class:`kailash_nb.workflow.Deadline`, which the ``async with`` gives.

    ``seconds`` is required: ``None`` (no limit, for a ``Deadline``) is refused, as it would check nothing."""
    if seconds is None:
        raise InvalidTimeoutError("assert_time_limit(seconds=...) needs a number of seconds, got None: a time "
                                  "limit of None would check nothing")
    return Deadline(seconds, error=_time_limit_exceeded, what="assert_time_limit(seconds=...)")


def _time_limit_exceeded(deadline: Deadline) -> WorkflowAssertionError:
    if deadline.blocked:
        return WorkflowAssertionError(
            f"time limit of {deadline.seconds:g} s exceeded: the block took {deadline.elapsed:.3f} s without "
            "yielding to the event loop, so it could not be cancelled at the limit")
    return WorkflowAssertionError(f"time limit of {deadline.seconds:g} s exceeded: the block was still running "
                                  f"and was cancelled after {deadline.elapsed:.3f} s")


@dataclass(slots=True, frozen=True)
class PerformanceResult:
    """What ``measure_performance`` measured: total ``time`` (s), ``throughput`` (operations/s) and one
    duration per timed run in ``samples``.

    ``runs`` says how the ``operations`` were timed: ``runs == operations`` when a callable was called
    once per operation; ``runs == 1`` when one awaitable did all ``operations`` as a single batch (its
    one sample is the whole batch, not one operation's latency).
    """

    time: float
    throughput: float
    operations: int
    samples: tuple[float, ...]
    max_time: float | None = None
    min_throughput: float | None = None
    runs: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", len(self.samples))  # one sample per run, by construction


@dataclass(slots=True, frozen=True)
class ConvergenceResult:
    """The series ``assert_converges`` collected: ``samples`` in order, with ``times`` (s since start)."""

    samples: tuple[float, ...]
    times: tuple[float, ...]
    converged: bool
    tolerance: float
    window: int
    elapsed: float

    @property
    def value(self) -> float | None:
        """The last sample: the value the series settled at, when it converged."""
        return self.samples[-1] if self.samples else None


class ConvergenceError(WorkflowAssertionError):
    """The series did not settle; ``result`` keeps the samples (for a chart)."""

    def __init__(self, message: str, result: ConvergenceResult) -> None:
        super().__init__(message)
        self.result = result


def _format_series(samples: Sequence[float]) -> str:
    return "[" + ", ".join(f"{s:.6g}" if isinstance(s, float) else repr(s) for s in samples) + "]"


async def _measure(work: Awaitable[Any] | Callable[[], Any], max_time: float | None,
                   min_throughput: float | None, operations: int, caller: str) -> tuple[Any, PerformanceResult]:
    """Run ``work`` as ``measure_performance`` describes; return its (last) value and the figures, or fail."""
    if isinstance(operations, bool) or not isinstance(operations, int) or operations < 1:
        raise ValueError(f"operations must be a positive int, got {operations!r}")
    start: Callable[[], Any]
    if inspect.isawaitable(work):
        runs, start = 1, lambda: work
    elif callable(work):
        runs, start = operations, work
    else:
        raise TypeError(f"{caller} needs an awaitable or a zero-argument callable, "
                        f"got {type(work).__name__}")
    samples: list[float] = []

    async def run_once() -> Any:
        begun = now()
        value = await maybe_await(start())
        samples.append(now() - begun)
        return value

    started = now()
    value = await run_once()
    for _ in range(runs - 1):
        value = await run_once()
    elapsed = now() - started
    throughput = operations / elapsed if elapsed > 0 else math.inf
    result = PerformanceResult(elapsed, throughput, operations, tuple(samples), max_time, min_throughput)
    problems = []
    if max_time is not None and elapsed > max_time:
        problems.append(f"took {elapsed:.4f} s, more than max_time={max_time:g} s")
    if min_throughput is not None and throughput < min_throughput:
        problems.append(f"throughput {throughput:.1f} ops/s is below min_throughput={min_throughput:g} "
                        f"ops/s ({operations} operations in {elapsed:.4f} s)")
    if problems:
        raise WorkflowAssertionError("performance: " + "; ".join(problems))
    return value, result


class AsyncAssertions:
    """Assertions about async behaviour over time. All are static coroutines except ``assert_time_limit``."""

    assert_time_limit = staticmethod(time_limit)

    @staticmethod
    async def assert_performance(
        awaitable_or_factory: Awaitable[T] | Callable[[], Awaitable[T] | T],
        max_time: float | None = None,
        min_throughput: float | None = None,
        operations: int = 1,
    ) -> T:
        """Check how fast work runs and return what it returned: the awaited value, or for a callable
        run ``operations`` times, the last call's value::

            result = await AsyncAssertions.assert_performance(self.execute_workflow(wf), max_time=1.0)
            assert result.status == "success"

        Fails with :class:`WorkflowAssertionError` when the total time exceeds ``max_time`` seconds or
        the throughput falls below ``min_throughput`` operations per second. For the figures (a chart,
        a report), use :meth:`measure_performance`, which takes the same arguments.
        """
        value, _ = await _measure(awaitable_or_factory, max_time, min_throughput, operations, "assert_performance")
        return cast(T, value)

    @staticmethod
    async def measure_performance(
        awaitable_or_factory: Awaitable[Any] | Callable[[], Any],
        max_time: float | None = None,
        min_throughput: float | None = None,
        operations: int = 1,
    ) -> PerformanceResult:
        """Measure how fast work runs and return the figures as a :class:`PerformanceResult`; with
        ``max_time`` or ``min_throughput`` it checks them too, as :meth:`assert_performance` does.

        - A zero-argument callable is called ``operations`` times in turn (each result awaited when
          awaitable): ``runs == operations``, one sample per call, each a latency.
        - A single awaitable (a coroutine can only be awaited once) is awaited once, and ``operations``
          says how many operations that one batch performs (say ``gather`` of 50 requests:
          ``operations=50``): ``runs == 1``, one sample for the whole batch, throughput =
          operations / time. Nothing checks that the batch really did ``operations`` operations.

        ``min_throughput`` is in operations per second and ``max_time`` bounds the total time, either way.
        """
        _, result = await _measure(awaitable_or_factory, max_time, min_throughput, operations,
                                   "measure_performance")
        return result

    @staticmethod
    async def assert_converges(getter: Callable[[], Any], tolerance: float, timeout: float = 10.0,
                               samples: int = 20, *, window: int = 3, interval: float = 0.0
                               ) -> ConvergenceResult:
        """Sample ``getter()`` (sync or async) until the last ``window`` samples lie within ``tolerance``
        of each other (max - min), at most ``samples`` times and ``timeout`` seconds.

        Passes as soon as the series settles; fails with the whole series in the message. The result,
        and the ``ConvergenceError.result`` of a failure, keep the samples for a chart.
        """
        if samples < 1 or window < 1:
            raise ValueError(f"samples and window must be at least 1, got samples={samples}, window={window}")
        window = min(window, samples)
        values: list[float] = []
        times: list[float] = []
        started = now()

        def outcome(converged: bool) -> ConvergenceResult:
            return ConvergenceResult(tuple(values), tuple(times), converged, tolerance, window,
                                     now() - started)

        def settled() -> bool:
            last = values[-window:]
            return len(last) == window and max(last) - min(last) <= tolerance

        def failure(why: str) -> ConvergenceError:
            last = values[-window:]
            spread = f"; the last {len(last)} spread {max(last) - min(last):.6g}" if last else ""
            result = outcome(False)
            return ConvergenceError(
                f"did not converge within tolerance {tolerance:g} ({why}{spread}); "
                f"series of {len(values)} samples: {_format_series(values)}", result)

        def expired(deadline: Deadline) -> BaseException:
            return failure(f"timeout of {deadline.seconds:g} s reached")

        # samples taken late (a getter that blocked) still count: only sampling cut short fails
        async with Deadline(timeout, error=expired, fail_when_blocked=False, what="assert_converges(timeout=...)"):
            while len(values) < samples:
                values.append(await maybe_await(getter()))
                times.append(now() - started)
                if settled():
                    return outcome(True)
                await asyncio.sleep(interval)
        raise failure(f"{samples} samples taken")

    @staticmethod
    async def assert_eventually(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05,
                                message: str | None = None) -> Any:
        """Pass as soon as ``condition()`` (sync or async) is truthy; return its value.

        An ``AssertionError`` raised by the condition counts as "not yet"; the last one is shown when
        the timeout passes. Other exceptions propagate at once.
        """
        last: list[Any] = [None]

        async def check() -> Any:
            try:
                last[0] = await maybe_await(condition())
            except AssertionError as error:
                last[0] = error
                return False
            return last[0]

        try:
            return await wait_until(check, timeout, interval, what="assert_eventually(timeout=...)")
        except TimeoutError:
            what = message or f"condition {getattr(condition, '__qualname__', condition)!r}"
            raise WorkflowAssertionError(f"{what} did not become true within {timeout:g} s; "
                                 f"last value: {last[0]!r}") from None

    @staticmethod
    async def assert_concurrent_safe(operation: Callable[[], Any], concurrency: int = 10, *,
                                     check: Callable[[list[Any]], Any] | None = None) -> list[Any]:
        """Run ``operation()`` ``concurrency`` times at once; fail if any call raised or ``check(results)``
        (sync or async) returns false or raises ``AssertionError``. Returns the results in order."""
        if not callable(operation):
            raise TypeError("assert_concurrent_safe needs a callable that starts one operation per call")
        results = await AsyncTestUtils.run_concurrent(*(operation for _ in range(concurrency)),
                                                      return_exceptions=True)
        errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
        if errors:
            listed = "; ".join(f"#{i} {type(e).__name__}: {e}" for i, e in errors)
            raise WorkflowAssertionError(f"{len(errors)} of {concurrency} concurrent calls raised: {listed}")
        if check is not None and not await maybe_await(check(results)):
            raise WorkflowAssertionError(f"check {getattr(check, '__qualname__', check)!r} failed for the "
                                 f"{concurrency} concurrent results: {results!r:.300}")
        return results

