"""AsyncAssertions: performance, convergence, eventually, concurrency safety; messages checked."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import math
import time

import pytest

from kailash_nb.testing import AsyncAssertions, ConvergenceError, PerformanceResult, assertions
from kailash_nb.workflow import InvalidTimeoutError


def run(coro):
    return asyncio.run(coro)


def test_performance_with_a_factory_calls_it_operations_times():
    calls = []

    async def op():
        calls.append(1)
        return len(calls)

    result = run(AsyncAssertions.measure_performance(op, max_time=5, min_throughput=1, operations=4))
    assert len(calls) == 4 and len(result.samples) == 4 and result.operations == result.runs == 4
    assert result.throughput == pytest.approx(4 / result.time)
    assert (result.max_time, result.min_throughput) == (5, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.time = 0


def test_performance_with_a_coroutine_awaits_it_once_as_a_batch():
    async def batch():
        await asyncio.sleep(0.02)

    result = run(AsyncAssertions.measure_performance(batch(), operations=50))
    assert isinstance(result, PerformanceResult) and len(result.samples) == 1 and result.time >= 0.015
    assert result.throughput == pytest.approx(50 / result.time)
    assert (result.runs, result.operations) == (1, 50)  # one timed run of 50 operations, not 50 runs
    assert "runs=1" in repr(result) and dataclasses.asdict(result)["runs"] == 1


def test_assert_performance_returns_the_awaited_value():
    async def work():
        return {"status": "success"}

    assert run(AsyncAssertions.assert_performance(work(), max_time=5, operations=10)) == {"status": "success"}


def test_assert_performance_returns_the_last_value_of_a_callable_run_n_times():
    count = {"n": 0}

    def sync_op():
        count["n"] += 1
        return count["n"]

    async def async_op():
        return sync_op()

    assert run(AsyncAssertions.assert_performance(sync_op, operations=3)) == 3
    assert run(AsyncAssertions.assert_performance(async_op, min_throughput=1, operations=2)) == 5


def test_performance_docstring_says_what_operations_means_for_each_kind_of_argument():
    doc = " ".join(AsyncAssertions.measure_performance.__doc__.split())
    assert "is called ``operations`` times" in doc and "``runs == operations``" in doc
    assert "``operations`` says how many operations that one batch performs" in doc and "``runs == 1``" in doc
    assert ":meth:`measure_performance`" in " ".join(AsyncAssertions.assert_performance.__doc__.split())


@pytest.mark.parametrize("check", [AsyncAssertions.assert_performance, AsyncAssertions.measure_performance])
def test_performance_failure_names_the_measured_and_the_limit(check):
    async def slow():
        await asyncio.sleep(0.03)

    with pytest.raises(AssertionError, match=r"performance: took 0\.0\d+ s, more than max_time=0\.01 s; "
                                             r"throughput \d+\.\d ops/s is below min_throughput=1e\+06 ops/s "
                                             r"\(2 operations in 0\.0\d+ s\)"):
        run(check(slow, max_time=0.01, min_throughput=1e6, operations=2))


def test_performance_rejects_other_arguments():
    with pytest.raises(TypeError, match="assert_performance needs an awaitable or a zero-argument callable, got int"):
        run(AsyncAssertions.assert_performance(3))
    with pytest.raises(TypeError, match="measure_performance needs an awaitable"):
        run(AsyncAssertions.measure_performance(3))
    for operations in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"operations must be a positive int, got {operations!r}"):
            run(AsyncAssertions.assert_performance(lambda: None, operations=operations))


def test_converges_passes_as_soon_as_the_last_samples_settle():
    values = iter([10.0, 5.0, 2.0, 1.5, 1.4, 1.45, 99.0])

    result = run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.2, timeout=5, samples=20))
    assert result.converged and result.samples == (10.0, 5.0, 2.0, 1.5, 1.4, 1.45)
    assert result.value == 1.45 and len(result.times) == 6


def test_converges_accepts_a_spread_exactly_equal_to_the_tolerance():
    values = iter([10.0, 0.0, 0.5, 0.25, 99.0])  # the last three spread exactly 0.5 (exact in binary)

    result = run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.5, timeout=5, samples=5))
    assert result.converged and result.samples == (10.0, 0.0, 0.5, 0.25)


def test_converges_needs_a_full_window_of_settled_samples():
    values = iter([1.0, 1.0, 1.0, 1.0])

    result = run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.0, window=3, samples=4))
    assert result.samples == (1.0, 1.0, 1.0) and result.window == 3 and result.tolerance == 0.0


def test_converges_accepts_an_async_getter():
    state = {"n": 0}

    async def getter():
        state["n"] += 1
        return 100 - 64 / 2 ** state["n"]

    result = run(AsyncAssertions.assert_converges(getter, tolerance=1.0, timeout=5, samples=20))
    assert result.converged and result.samples[-1] > 99


def test_converges_failure_shows_the_series_and_keeps_the_samples():
    values = iter(range(100))
    with pytest.raises(ConvergenceError) as info:
        run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.5, timeout=5, samples=5))
    assert str(info.value) == ("did not converge within tolerance 0.5 (5 samples taken; the last 3 spread 2); "
                               "series of 5 samples: [0, 1, 2, 3, 4]")
    assert info.value.result.samples == (0, 1, 2, 3, 4) and info.value.result.converged is False


def test_converges_times_out_on_a_hung_getter():
    async def hung():
        await asyncio.sleep(30)

    with pytest.raises(ConvergenceError) as info:
        run(AsyncAssertions.assert_converges(hung, tolerance=1, timeout=0.05, samples=5))
    assert str(info.value) == ("did not converge within tolerance 1 (timeout of 0.05 s reached); "
                               "series of 0 samples: []")
    assert info.value.result.samples == () and info.value.result.value is None


def test_eventually_awaits_async_conditions_and_returns_the_value():
    state = {"n": 0}

    async def ready():
        state["n"] += 1
        return state["n"] >= 3 and "ready"

    assert run(AsyncAssertions.assert_eventually(ready, timeout=2, interval=0.001)) == "ready"


def test_eventually_failure_shows_the_last_value():
    async def never():
        return 0

    with pytest.raises(AssertionError, match=r"condition '.*never' did not become true within 0\.05 s; "
                                             r"last value: 0"):
        run(AsyncAssertions.assert_eventually(never, timeout=0.05, interval=0.01))


def test_eventually_retries_assertion_errors():
    state = {"n": 0}

    def check():
        state["n"] += 1
        assert state["n"] > 2, "not yet"
        return True

    assert run(AsyncAssertions.assert_eventually(check, timeout=2, interval=0.001)) is True


def test_concurrent_safe_passes_and_returns_results():
    counter = {"n": 0}
    lock = asyncio.Lock

    async def main():
        guard = lock()

        async def increment():
            async with guard:
                value = counter["n"]
                await asyncio.sleep(0)
                counter["n"] = value + 1
                return value

        return await AsyncAssertions.assert_concurrent_safe(
            increment, concurrency=10, check=lambda results: sorted(results) == list(range(10)))

    assert sorted(run(main())) == list(range(10))


def test_concurrent_safe_detects_a_race_through_check():
    counter = {"n": 0}

    async def racy():
        value = counter["n"]
        await asyncio.sleep(0)
        counter["n"] = value + 1

    with pytest.raises(AssertionError, match=r"check .* failed for the 5 concurrent results"):
        run(AsyncAssertions.assert_concurrent_safe(racy, 5, check=lambda _: counter["n"] == 5))


def test_concurrent_safe_lists_the_calls_that_raised():
    state = {"n": 0}

    async def sometimes():
        state["n"] += 1
        if state["n"] % 2 == 0:
            raise ValueError(f"call {state['n']}")

    with pytest.raises(AssertionError, match=r"2 of 4 concurrent calls raised: #1 ValueError: call 2; "
                                             r"#3 ValueError: call 4"):
        run(AsyncAssertions.assert_concurrent_safe(sometimes, 4))


# -- measuring: a clock that ticks one second per reading makes every figure exact ----------------------------

@pytest.fixture
def ticking_clock(monkeypatch):
    """The clock the assertions read (``now``): 0, 1, 2... one tick per reading."""
    ticks = iter(range(1000))
    monkeypatch.setattr(assertions, "now", lambda: float(next(ticks)))


def test_measure_times_each_run_and_the_whole(ticking_clock):
    async def op():
        return "done"

    result = run(AsyncAssertions.measure_performance(op, operations=2))
    # readings: started 0; run 1 from 1 to 2; run 2 from 3 to 4; total at 5
    assert (result.samples, result.time, result.throughput) == ((1.0, 1.0), 5.0, 0.4)


def test_measure_times_an_awaitable_as_one_run(ticking_clock):
    async def batch():
        return "done"

    result = run(AsyncAssertions.measure_performance(batch(), operations=6))
    assert (result.samples, result.time, result.throughput, result.runs) == ((1.0,), 3.0, 2.0, 1)


def test_limits_equal_to_the_measured_figures_pass(ticking_clock):
    async def op():
        return "done"

    # 2 operations: total time 5 s, throughput 0.4 ops/s
    assert run(AsyncAssertions.assert_performance(op, max_time=5, min_throughput=0.4, operations=2)) == "done"


@pytest.mark.parametrize(("limits", "problem"), [
    ({"max_time": 4.99}, "took 5.0000 s, more than max_time=4.99 s"),
    ({"min_throughput": 0.41}, "throughput 0.4 ops/s is below min_throughput=0.41 ops/s (2 operations in 5.0000 s)"),
])
def test_limits_just_past_the_measured_figures_fail(ticking_clock, limits, problem):
    async def op():
        return "done"

    with pytest.raises(AssertionError) as info:
        run(AsyncAssertions.assert_performance(op, operations=2, **limits))
    assert str(info.value) == f"performance: {problem}"


def test_work_that_takes_no_measurable_time_has_infinite_throughput(monkeypatch):
    monkeypatch.setattr(assertions, "now", lambda: 7.0)  # a coarse clock that did not move

    result = run(AsyncAssertions.measure_performance(lambda: None, min_throughput=1e9, operations=3))
    assert result.time == 0.0 and result.throughput == math.inf


def test_one_operation_is_the_default():
    calls = []
    result = run(AsyncAssertions.measure_performance(lambda: calls.append(1)))
    assert calls == [1] and (result.operations, result.runs) == (1, 1)
    assert run(AsyncAssertions.assert_performance(lambda: calls.append(2))) is None and calls == [1, 2]


def test_samples_are_the_durations_of_the_runs():
    async def op():
        await asyncio.sleep(0)

    result = run(AsyncAssertions.measure_performance(op, operations=3))
    assert len(result.samples) == 3 and all(0 <= s <= result.time for s in result.samples)
    assert sum(result.samples) <= result.time


# -- converging: arguments, timing, and getters that block ------------------------------------------------------

@pytest.mark.parametrize(("samples", "window"), [(0, 3), (5, 0), (-1, -1)])
def test_converges_refuses_fewer_than_one_sample_or_window(samples, window):
    with pytest.raises(ValueError) as info:
        run(AsyncAssertions.assert_converges(lambda: 1.0, tolerance=0, samples=samples, window=window))
    assert str(info.value) == f"samples and window must be at least 1, got samples={samples}, window={window}"


def test_converges_with_one_sample_and_a_window_of_one_settles_at_once():
    result = run(AsyncAssertions.assert_converges(lambda: 3.0, tolerance=0, samples=1, window=1))
    assert result.converged and result.samples == (3.0,) and result.window == 1


def test_converges_shrinks_the_window_to_the_number_of_samples():
    values = iter([1.0, 1.0])
    result = run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0, samples=2, window=5))
    assert result.converged and result.window == 2 and result.samples == (1.0, 1.0)


def test_converges_takes_twenty_samples_by_default():
    values = iter(range(100))
    with pytest.raises(ConvergenceError) as info:
        run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.5))
    assert info.value.result.samples == tuple(range(20))


def test_converges_times_each_sample_and_the_whole_series_from_its_start(monkeypatch):
    ticks = iter(range(10, 1000))  # started at 10: the sample is read at 11, the result made at 12
    monkeypatch.setattr(assertions, "now", lambda: float(next(ticks)))

    result = run(AsyncAssertions.assert_converges(lambda: 1.0, tolerance=0, window=1))
    assert (result.times, result.elapsed) == ((1.0,), 2.0)


def test_converges_records_when_each_sample_was_taken():
    async def getter():
        await asyncio.sleep(0.001)
        return 1.0

    result = run(AsyncAssertions.assert_converges(getter, tolerance=0, samples=5))
    assert len(result.times) == 3 and all(later > earlier for earlier, later in itertools.pairwise(result.times))
    assert result.times[0] > 0 and result.times[-1] <= result.elapsed


def test_converges_keeps_a_series_that_settled_with_a_getter_that_blocked_past_the_timeout():
    def blocking_getter():
        time.sleep(0.03)  # blocks the loop: the timeout cannot cut it short
        return 1.0

    result = run(AsyncAssertions.assert_converges(blocking_getter, tolerance=0, timeout=0.01, window=1))
    assert result.converged and result.samples == (1.0,)


def test_converges_refuses_a_bad_timeout_naming_the_option():
    with pytest.raises(ValueError, match=r"^assert_converges\(timeout=\.\.\.\) must be a positive"):
        run(AsyncAssertions.assert_converges(lambda: 1.0, tolerance=0, timeout=0))


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5"])
def test_eventually_refuses_a_bad_timeout_naming_itself(timeout):
    with pytest.raises(InvalidTimeoutError, match=r"^assert_eventually\(timeout=\.\.\.\) must be a"):
        run(AsyncAssertions.assert_eventually(lambda: True, timeout=timeout))


def test_time_limit_refuses_none_which_would_check_nothing():
    with pytest.raises(InvalidTimeoutError) as info:
        AsyncAssertions.assert_time_limit(None)
    assert str(info.value) == ("assert_time_limit(seconds=...) needs a number of seconds, got None: a time limit "
                               "of None would check nothing")


def test_converges_failure_formats_floats_to_six_digits_and_other_values_as_they_are():
    values = iter([0.1234567, 1234567, 2.0])
    with pytest.raises(ConvergenceError) as info:
        run(AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.1, samples=3))
    assert str(info.value).endswith("series of 3 samples: [0.123457, 1234567, 2]")


# -- eventually, concurrently: messages and defaults ------------------------------------------------------------

def test_eventually_shows_the_last_assertion_error_and_never_passes_on_one():
    def check():
        raise AssertionError("not yet")

    with pytest.raises(AssertionError) as info:
        run(AsyncAssertions.assert_eventually(check, timeout=0.05, interval=0.01))
    assert str(info.value).endswith("did not become true within 0.05 s; last value: AssertionError('not yet')")


def test_eventually_names_a_condition_without_a_qualname_by_its_repr_or_uses_the_message():
    class Never:
        def __call__(self):
            return False

        def __repr__(self):
            return "<never>"

    with pytest.raises(AssertionError, match=r"^condition <never> did not become true within 0\.02 s; last value: "
                                             r"False$"):
        run(AsyncAssertions.assert_eventually(Never(), timeout=0.02, interval=0.01))
    with pytest.raises(AssertionError, match=r"^the queue drained did not become true"):
        run(AsyncAssertions.assert_eventually(Never(), timeout=0.02, interval=0.01, message="the queue drained"))


def test_eventually_checks_often_by_default():
    checks = []

    def second_check_passes():
        checks.append(1)
        return len(checks) >= 2

    assert run(AsyncAssertions.assert_eventually(second_check_passes, timeout=0.5)) is True


def test_eventually_waits_the_interval_between_checks():
    checks = []

    def second_check_passes():
        checks.append(1)
        return len(checks) >= 2

    with pytest.raises(AssertionError):  # the second check would come only after the timeout
        run(AsyncAssertions.assert_eventually(second_check_passes, timeout=0.2, interval=30))
    assert checks == [1]


def test_documented_defaults():
    def defaults(function):
        return {name: p.default for name, p in inspect.signature(function).parameters.items()
                if p.default is not inspect.Parameter.empty}

    assert defaults(AsyncAssertions.assert_converges) == {"timeout": 10.0, "samples": 20, "window": 3,
                                                          "interval": 0.0}
    assert defaults(AsyncAssertions.assert_eventually) == {"timeout": 5.0, "interval": 0.05, "message": None}
    assert defaults(AsyncAssertions.assert_concurrent_safe) == {"concurrency": 10, "check": None}


def test_concurrent_safe_runs_ten_at_once_by_default():
    running = {"now": 0, "most": 0}

    async def op():
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1
        return 1

    assert run(AsyncAssertions.assert_concurrent_safe(op)) == [1] * 10 and running["most"] == 10


def test_concurrent_safe_needs_a_callable():
    async def op():
        return 1

    coroutine = op()
    with pytest.raises(TypeError) as info:
        run(AsyncAssertions.assert_concurrent_safe(coroutine))
    coroutine.close()
    assert str(info.value) == "assert_concurrent_safe needs a callable that starts one operation per call"


def test_concurrent_safe_names_the_check_that_failed():
    async def op():
        return 1

    def all_twos(results):
        return all(r == 2 for r in results)

    class Never:
        def __call__(self, results):
            return False

        def __repr__(self):
            return "<never>"

    with pytest.raises(AssertionError, match=r"^check '.*all_twos' failed for the 2 concurrent results: \[1, 1\]$"):
        run(AsyncAssertions.assert_concurrent_safe(op, 2, check=all_twos))
    with pytest.raises(AssertionError, match=r"^check <never> failed for the 2 concurrent results"):
        run(AsyncAssertions.assert_concurrent_safe(op, 2, check=Never()))
