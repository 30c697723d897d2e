"""AsyncTestUtils: concurrency with limits and clean cancellation, conditions, retry, timeout."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

import pytest

from kailash_nb.testing import AsyncTestUtils
from kailash_nb.testing.utils import maybe_await


def run(coro):
    return asyncio.run(coro)


def test_run_concurrent_keeps_argument_order_and_accepts_callables():
    async def value(v, delay):
        await asyncio.sleep(delay)
        return v

    results = run(AsyncTestUtils.run_concurrent(value(1, 0.02), lambda: value(2, 0.0), value(3, 0.01)))
    assert results == [1, 2, 3]


def test_run_concurrent_limit_bounds_how_many_run_at_once():
    running = {"now": 0, "max": 0}

    async def work():
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1

    run(AsyncTestUtils.run_concurrent(*[work() for _ in range(8)], limit=3))
    assert running["max"] == 3


def test_run_concurrent_first_error_cancels_the_rest_and_leaves_nothing_behind():
    finished = []

    async def fail():
        raise ValueError("boom")

    async def slow(i):
        await asyncio.sleep(1)
        finished.append(i)

    async def main():
        with pytest.raises(ValueError, match="boom"):
            await AsyncTestUtils.run_concurrent(slow(1), fail(), *[slow(i) for i in range(5)], limit=2)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail here
        leftover = run(main())
        gc.collect()
    assert leftover == [] and finished == []


def test_run_concurrent_return_exceptions_puts_them_in_place():
    async def fail():
        raise KeyError("k")

    async def ok():
        return 1

    results = run(AsyncTestUtils.run_concurrent(ok(), fail(), return_exceptions=True))
    assert results[0] == 1 and isinstance(results[1], KeyError)


def test_run_concurrent_rejects_a_non_awaitable_with_a_hint():
    with pytest.raises(TypeError, match="argument 0 is a int, not an awaitable"):
        run(AsyncTestUtils.run_concurrent(5))


def test_run_sequential_runs_in_turn():
    order = []

    async def step(i):
        order.append(f"start {i}")
        await asyncio.sleep(0)
        order.append(f"end {i}")
        return i

    assert run(AsyncTestUtils.run_sequential(step(1), lambda: step(2))) == [1, 2]
    assert order == ["start 1", "end 1", "start 2", "end 2"]


def test_wait_for_condition_awaits_async_conditions():
    state = {"n": 0}

    async def condition():
        state["n"] += 1
        return state["n"] >= 3

    assert run(AsyncTestUtils.wait_for_condition(condition, timeout=1, interval=0.001)) is True
    assert state["n"] == 3  # a coroutine object was never taken as "truthy"


def test_wait_for_condition_times_out_naming_condition_and_last_value():
    async def never():
        return []

    with pytest.raises(TimeoutError, match=r"condition .*never was not met within 0\.05 s \(\d+ checks, "
                                           r"last value \[\]\)"):
        run(AsyncTestUtils.wait_for_condition(never, timeout=0.05, interval=0.01))


def test_retry_succeeds_after_failures_and_reports_every_attempt_when_it_gives_up():
    attempts = {"n": 0}

    async def flaky():
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError(f"fail {attempts['n']}")
        return "ok"

    assert run(AsyncTestUtils.retry(flaky, attempts=3, delay=0.001)) == "ok"

    async def always():
        raise ConnectionError("down")

    with pytest.raises(ConnectionError) as info:
        run(AsyncTestUtils.retry(always, attempts=2))
    assert info.value.__notes__[-1].endswith("failed 2 attempts: #1 ConnectionError: down; #2 ConnectionError: down")


def test_retry_of_one_exception_instance_again_does_not_repeat_its_note():
    down = ConnectionError("down")

    def always():
        raise down

    for _ in range(2):
        with pytest.raises(ConnectionError):
            run(AsyncTestUtils.retry(always, attempts=2))
    assert down.__notes__ == [f"{always.__qualname__} failed 2 attempts: #1 ConnectionError: down; "
                              "#2 ConnectionError: down"]


def test_retry_needs_a_callable():
    async def op():
        return 1

    coro = op()
    with pytest.raises(TypeError, match="a coroutine object can only be awaited once"):
        run(AsyncTestUtils.retry(coro))
    coro.close()


def test_timeout_cancels_the_body_at_the_limit():
    async def main():
        async with AsyncTestUtils.timeout(0.05):
            await asyncio.sleep(10)

    with pytest.raises(TimeoutError, match=r"did not finish within the timeout of 0\.05 s"):
        run(main())


def test_timeout_lets_an_outside_cancellation_through():
    async def main():
        task = asyncio.current_task()
        asyncio.get_running_loop().call_later(0.01, task.cancel)
        async with AsyncTestUtils.timeout(5):
            await asyncio.sleep(10)

    with pytest.raises(asyncio.CancelledError):
        run(main())


def test_timeout_keeps_the_bodys_own_exception():
    async def main():
        async with AsyncTestUtils.timeout(5):
            raise KeyError("own")

    with pytest.raises(KeyError, match="own"):
        run(main())


def test_timeout_reports_a_body_that_blocked_past_the_limit():
    async def main():
        async with AsyncTestUtils.timeout(0.01):
            time.sleep(0.03)  # noqa: ASYNC251 - blocking on purpose

    with pytest.raises(TimeoutError, match=r"did not finish within the timeout of 0\.01 s: it took 0\.0\d+ s "
                                           r"without yielding to the event loop"):
        run(main())


def test_timeout_none_is_no_limit_and_a_bad_value_names_the_option():
    async def main():
        async with AsyncTestUtils.timeout(None) as deadline:
            await asyncio.sleep(0)
        return deadline

    assert run(main()).seconds is None
    with pytest.raises(ValueError, match=r"^AsyncTestUtils\.timeout\(seconds=\.\.\.\) must be a positive"):
        AsyncTestUtils.timeout(0)


def test_wait_for_condition_refuses_a_bad_timeout_naming_itself():
    with pytest.raises(ValueError, match=r"^wait_for_condition\(timeout=\.\.\.\) must be a positive"):
        run(AsyncTestUtils.wait_for_condition(lambda: True, timeout=0))


def test_wait_for_condition_met_by_a_blocking_check_after_the_limit_is_still_met():
    def slow_but_true():
        time.sleep(0.03)
        return "ready"

    assert run(AsyncTestUtils.wait_for_condition(slow_but_true, timeout=0.01)) == "ready"
    with pytest.raises(ValueError, match=r"^wait_for_condition\(timeout=\.\.\.\) must be"):
        run(AsyncTestUtils.wait_for_condition(slow_but_true, timeout=-1))


def test_maybe_await_awaits_only_awaitables():
    async def value():
        return 1

    assert run(maybe_await(value())) == 1
    assert run(maybe_await(2)) == 2
