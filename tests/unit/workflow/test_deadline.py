"""``Deadline``: the one time limit of the kit, on asyncio.timeout."""

import asyncio
import contextlib
import math
import time

import pytest

import kailash_nb.workflow
from kailash_nb.workflow import Deadline, InvalidTimeoutError


def block_the_loop(seconds: float) -> None:
    """What blocking node code does: hold the event loop, so that no timer can fire meanwhile."""
    time.sleep(seconds)


def test_deadline_is_exported_by_the_engine():
    assert kailash_nb.workflow.Deadline is Deadline
    assert "Deadline" in kailash_nb.workflow.__all__


def test_a_body_within_the_limit_keeps_its_value_and_is_neither_expired_nor_blocked():
    async def main():
        async with Deadline(5) as deadline:
            await asyncio.sleep(0)
            value = "done"
        return deadline, value

    deadline, value = asyncio.run(main())
    assert value == "done"
    assert (deadline.expired, deadline.blocked, deadline.seconds) == (False, False, 5.0)
    assert deadline.elapsed >= 0


def test_a_body_still_waiting_at_the_limit_is_cancelled_and_times_out():
    reached: list[str] = []

    async def main():
        deadline = Deadline(0.01)
        with pytest.raises(TimeoutError) as info:
            async with deadline:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    reached.append("cancelled")
                    raise
        return deadline, info.value

    deadline, error = asyncio.run(main())
    assert reached == ["cancelled"]
    assert (deadline.expired, deadline.blocked) == (True, False)
    assert deadline.elapsed >= 0.01
    assert type(error) is TimeoutError
    assert str(error) == "the block did not finish within its time limit of 0.01 s and was cancelled"
    assert isinstance(error.__cause__, asyncio.CancelledError)  # its traceback shows where the body waited


def test_the_error_factory_receives_the_deadline_and_its_exception_is_raised():
    seen: list[tuple[float | None, bool, bool]] = []

    class Expired(Exception):
        pass

    def error(deadline: Deadline) -> BaseException:
        seen.append((deadline.seconds, deadline.expired, deadline.blocked))
        return Expired(f"over {deadline.seconds:g} s")

    async def main():
        async with Deadline(0.01, error=error):
            await asyncio.sleep(10)

    with pytest.raises(Expired, match=r"^over 0.01 s$"):
        asyncio.run(main())
    assert seen == [(0.01, True, False)]


def test_a_body_that_swallows_its_cancellation_and_finishes_still_times_out():
    async def main():
        deadline = Deadline(0.01)
        finished = []
        with pytest.raises(TimeoutError, match=r"did not finish within its time limit of 0\.01 s"):
            async with deadline:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(10)
                finished.append(True)
        return deadline, finished, asyncio.current_task().cancelling()

    deadline, finished, cancelling = asyncio.run(main())
    assert finished == [True]
    assert deadline.expired is True
    assert cancelling == 0  # the deadline withdrew its own cancel request


def test_a_body_that_blocks_past_the_limit_times_out_as_blocked():
    async def main():
        deadline = Deadline(0.01)
        with pytest.raises(TimeoutError) as info:
            async with deadline:
                await asyncio.sleep(0)
                block_the_loop(0.03)  # the limit cannot cancel it
        return deadline, info.value

    deadline, error = asyncio.run(main())
    assert (deadline.expired, deadline.blocked) == (False, True)
    assert deadline.elapsed >= 0.03
    assert str(error) == ("the block finished after its time limit of 0.01 s without yielding to the event loop, "
                          "so it could not be cancelled at the limit")
    assert error.__cause__ is None


def test_a_blocked_body_is_only_reported_when_asked_not_to_fail():
    async def main():
        async with Deadline(0.01, fail_when_blocked=False) as deadline:
            block_the_loop(0.03)
            value = 1
        return deadline, value

    deadline, value = asyncio.run(main())
    assert value == 1
    assert (deadline.expired, deadline.blocked) == (False, True)


def test_a_blocked_body_that_raised_keeps_its_own_exception():
    async def main():
        deadline = Deadline(0.01)
        with pytest.raises(KeyError, match="mine"):
            async with deadline:
                block_the_loop(0.03)
                raise KeyError("mine")
        return deadline

    assert asyncio.run(main()).blocked is True


def test_the_body_s_own_exception_is_kept_before_the_limit():
    async def main():
        deadline = Deadline(5)
        with pytest.raises(TimeoutError, match="upstream") as info:
            async with deadline:
                raise TimeoutError("upstream")
        return deadline, info.value

    deadline, error = asyncio.run(main())
    assert (deadline.expired, deadline.blocked) == (False, False)
    assert error.__cause__ is None


def test_an_exception_raised_while_handling_the_expiry_is_kept():
    async def main():
        deadline = Deadline(0.01)
        with pytest.raises(ValueError, match="cleanup failed"):
            async with deadline:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    raise ValueError("cleanup failed") from None
        return deadline

    assert asyncio.run(main()).expired is True


def test_an_outside_cancellation_propagates_untouched():
    async def main():
        started = asyncio.Event()
        deadline = Deadline(10)

        async def body():
            async with deadline:
                started.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(body())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return deadline

    assert asyncio.run(main()).expired is False


def cancel_from_outside_as_the_limit_passes() -> None:
    """Ask the loop to cancel the current task from a callback, then block past the limit: when the body next
    awaits, the outside request and the deadline's expiry reach it together, as one CancelledError."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().call_soon(task.cancel)
    block_the_loop(0.02)


def test_an_outside_cancellation_that_comes_with_the_expiry_wins():
    async def main():
        deadline = Deadline(0.01)
        with pytest.raises(asyncio.CancelledError):
            async with deadline:
                cancel_from_outside_as_the_limit_passes()
                await asyncio.sleep(10)
        return deadline, asyncio.current_task().uncancel()

    deadline, left = asyncio.run(main())
    assert deadline.expired is True
    assert left == 0  # exactly the outside request was pending: the deadline withdrew its own


def test_an_outside_cancellation_swallowed_with_the_expiry_still_propagates():
    async def main():
        deadline = Deadline(0.01)
        with pytest.raises(asyncio.CancelledError):
            async with deadline:
                cancel_from_outside_as_the_limit_passes()
                with contextlib.suppress(asyncio.CancelledError):  # swallows both
                    await asyncio.sleep(10)
        return deadline, asyncio.current_task().uncancel()

    deadline, left = asyncio.run(main())
    assert deadline.expired is True
    assert left == 0


def test_cancel_requests_pending_on_entry_are_not_taken_for_outside_ones():
    async def main():
        me = asyncio.current_task()
        me.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # handled, not withdrawn: cancelling() stays 1
            await asyncio.sleep(1)
        assert me.cancelling() == 1
        with pytest.raises(TimeoutError, match=r"time limit of 0\.01 s"):
            async with Deadline(0.01):
                await asyncio.sleep(10)
        return me.cancelling()

    assert asyncio.run(main()) == 1


def test_without_a_limit_the_block_runs_to_the_end():
    async def main():
        deadline = Deadline(None)
        before = deadline.remaining
        async with deadline:
            block_the_loop(0.01)
            await asyncio.sleep(0.01)
            inside = deadline.remaining
        return deadline, before, inside

    deadline, before, inside = asyncio.run(main())
    assert (before, inside) == (math.inf, math.inf)
    assert (deadline.expired, deadline.blocked, deadline.seconds) == (False, False, None)


def test_remaining_counts_down_to_the_limit():
    async def main():
        deadline = Deadline(5, fail_when_blocked=False)
        before = deadline.remaining
        async with deadline:
            first = deadline.remaining
            block_the_loop(0.01)
            second = deadline.remaining
        return before, first, second

    before, first, second = asyncio.run(main())
    assert before == 5
    assert 0 < second < first <= 5


def test_remaining_is_not_positive_once_the_limit_has_passed():
    async def main():
        async with Deadline(0.01, fail_when_blocked=False) as deadline:
            block_the_loop(0.02)
            return deadline.remaining

    assert asyncio.run(main()) <= 0


def test_a_deadline_times_each_block_from_its_own_start():
    async def main():
        deadline = Deadline(0.05)
        with pytest.raises(TimeoutError):
            async with deadline:
                await asyncio.sleep(10)
        async with deadline:
            await asyncio.sleep(0)
        return deadline

    deadline = asyncio.run(main())
    assert (deadline.expired, deadline.blocked) == (False, False)
    assert deadline.elapsed < 0.05  # a fresh block, not the first one's time


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "1", True])
def test_a_limit_must_be_positive_finite_seconds(seconds):
    with pytest.raises(InvalidTimeoutError, match=r"^Deadline\(seconds=\.\.\.\) must be a"):
        Deadline(seconds)


def test_a_bad_limit_is_named_after_what_it_was_given_for():
    with pytest.raises(InvalidTimeoutError, match=r"^poll\(timeout=\.\.\.\) must be a positive, finite number"):
        Deadline(0, what="poll(timeout=...)")
    assert Deadline(None, what="poll(timeout=...)").seconds is None


def test_a_deadline_needs_a_task():
    async def main():
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[BaseException] = loop.create_future()

        def outside_any_task() -> None:
            entering = Deadline(1).__aenter__()
            try:
                entering.send(None)
            except BaseException as exc:
                outcome.set_result(exc)

        loop.call_soon(outside_any_task)
        return await outcome

    error = asyncio.run(main())
    assert isinstance(error, RuntimeError)
    assert str(error) == "a Deadline must be entered inside an asyncio task"


def test_a_deadline_not_yet_entered_has_nothing_to_report():
    deadline = Deadline(1)
    assert (deadline.expired, deadline.blocked, deadline.elapsed) == (False, False, 0.0)
    assert deadline.fail_when_blocked is True


def test_a_deadline_reused_after_blocking_reports_the_new_block_only():
    async def main():
        deadline = Deadline(0.01, fail_when_blocked=False)
        async with deadline:
            block_the_loop(0.02)
        first = deadline.blocked
        with pytest.raises(TimeoutError):
            async with deadline:
                await asyncio.sleep(10)
        return first, deadline

    first, deadline = asyncio.run(main())
    assert first is True
    assert (deadline.expired, deadline.blocked) == (True, False)


def test_a_body_that_finishes_exactly_at_the_limit_without_yielding_is_late(manual_clock):
    async def main():
        loop = asyncio.get_running_loop()
        deadline = Deadline(1, fail_when_blocked=False)
        async with deadline:
            loop.now = 1.0  # exactly the limit: the timer was due, but the body never let it run
        at_the_limit = (deadline.blocked, deadline.elapsed)
        async with deadline:  # from 1.0, limit at 2.0
            loop.now = 1.5
        return at_the_limit, (deadline.blocked, deadline.elapsed)

    assert manual_clock.run(main()) == ((True, 1.0), (False, 0.5))
