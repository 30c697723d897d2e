"""AsyncAssertions: performance, convergence, eventually, concurrency safety; messages checked."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from kailash_nb.testing import AsyncAssertions, ConvergenceError, PerformanceResult


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
    assert info.value.result.samples == (0, 1, 2, 3, 4) and not info.value.result.converged


def test_converges_times_out_on_a_hung_getter():
    async def hung():
        await asyncio.sleep(30)

    with pytest.raises(ConvergenceError, match=r"timeout of 0\.05 s reached.*series of 0 samples: \[\]"):
        run(AsyncAssertions.assert_converges(hung, tolerance=1, timeout=0.05, samples=5))


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
