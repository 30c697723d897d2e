"""Virtual time: the clock jumps over idle waits, real I/O keeps working, and the loop is put back on exit."""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import threading
import time

import pytest

from kailash_nb.errors import KailashNbError
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Deadline, now
from kailash_nb.workflow.clock import (
    InvalidAdvanceError,
    VirtualClock,
    VirtualTimeError,
    running_clock,
    virtual_time,
)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_sleep_jumps_the_clock_by_exactly_the_delay() -> None:
    async def main() -> tuple[float, int]:
        async with virtual_time() as clock:
            start = clock.now
            await asyncio.sleep(60)
            await asyncio.sleep(0.5)
            return clock.now - start, clock.jumps

    elapsed, jumps = run(main())
    assert elapsed == pytest.approx(60.5)
    assert jumps == 2


def test_timers_fire_in_order_of_their_virtual_time() -> None:
    async def main() -> list[tuple[str, float]]:
        fired: list[tuple[str, float]] = []
        async with virtual_time() as clock:
            loop = asyncio.get_running_loop()
            start = clock.now
            done = loop.create_future()
            loop.call_later(30, lambda: fired.append(("later 30", clock.now - start)))
            loop.call_at(start + 10, lambda: fired.append(("at 10", clock.now - start)))
            loop.call_later(45, done.set_result, None)
            await done
        return fired

    assert run(main()) == [("at 10", pytest.approx(10)), ("later 30", pytest.approx(30))]


def test_wait_for_and_asyncio_timeout_expire_on_virtual_time() -> None:
    async def main() -> tuple[float, float]:
        async with virtual_time() as clock:
            start = clock.now
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.sleep(3600), 30)
            after_wait_for = clock.now - start
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.sleep(3600)
            return after_wait_for, clock.now - start

    assert run(main()) == (pytest.approx(30), pytest.approx(35))


def test_deadline_measures_virtual_seconds() -> None:
    async def main() -> Deadline:
        async with virtual_time():
            deadline = Deadline(100)
            async with deadline:
                await asyncio.sleep(42)
            return deadline

    deadline = run(main())
    assert deadline.elapsed == pytest.approx(42)
    assert not deadline.expired and not deadline.blocked


def test_now_reads_the_running_loops_clock_and_monotonic_without_one() -> None:
    async def main() -> tuple[float, float]:
        async with virtual_time() as clock:
            await asyncio.sleep(7)
            return now(), clock.now

    inside, clock_now = run(main())
    assert inside == clock_now
    before = time.monotonic()
    assert before <= now() <= time.monotonic()


def test_advance_moves_the_clock_and_due_timers_run_at_the_next_await() -> None:
    async def main() -> tuple[bool, bool, float]:
        async with virtual_time() as clock:
            start = clock.now
            fired = asyncio.Event()
            asyncio.get_running_loop().call_later(5, fired.set)
            clock.advance(5)
            before = fired.is_set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return before, fired.is_set(), clock.now - start

    assert run(main()) == (False, True, pytest.approx(5))


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, math.inf, -math.inf])
def test_advance_refuses_negative_nan_and_infinite_seconds(seconds: float) -> None:
    async def main() -> float:
        async with virtual_time() as clock:
            start = clock.now
            with pytest.raises(InvalidAdvanceError, match="finite number of seconds >= 0") as caught:
                clock.advance(seconds)
            assert isinstance(caught.value, KailashNbError) and isinstance(caught.value, ValueError)
            return clock.now - start

    assert run(main()) == 0


def test_the_loop_is_exactly_as_before_after_exit() -> None:
    async def main() -> tuple[set[str], set[str], float]:
        loop = asyncio.get_running_loop()
        selector = loop._selector  # type: ignore[attr-defined]
        loop_attrs, selector_attrs = set(vars(loop)), set(vars(selector))
        async with virtual_time() as clock:
            await asyncio.sleep(1000)
            handle = loop.call_later(100, lambda: None)
            assert running_clock() is clock
        left = handle.when() - loop.time()
        handle.cancel()
        assert running_clock() is None
        assert loop.time() == pytest.approx(time.monotonic(), abs=0.5)
        return set(vars(loop)) - loop_attrs, set(vars(selector)) - selector_attrs, left

    new_loop_attrs, new_selector_attrs, left = run(main())
    assert new_loop_attrs == set() and new_selector_attrs == set()
    assert left == pytest.approx(100, abs=0.5)  # a timer set inside keeps the time it had left


def test_the_loop_is_put_back_on_an_error_and_on_a_cancel() -> None:
    async def failing() -> None:
        async with virtual_time():
            await asyncio.sleep(10)
            raise LookupError("boom")

    async def cancelled() -> None:
        async with virtual_time():
            await asyncio.sleep(3600)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(LookupError):
            await failing()
        assert "time" not in vars(loop) and running_clock() is None
        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "time" not in vars(loop) and "select" not in vars(loop._selector)  # type: ignore[attr-defined]
        assert running_clock() is None

    run(main())


def test_nesting_shares_the_outer_clock_and_keeps_it_running() -> None:
    async def main() -> None:
        async with virtual_time() as outer:
            async with virtual_time() as inner:
                assert inner is outer
                await asyncio.sleep(5)
            assert running_clock() is outer
            start = outer.now
            await asyncio.sleep(20)
            assert outer.now - start == pytest.approx(20)
        assert running_clock() is None

    run(main())


def test_no_running_loop_is_a_clear_error() -> None:
    entering = virtual_time().__aenter__()
    with pytest.raises(VirtualTimeError, match="needs a running asyncio event loop"):
        entering.send(None)


def test_a_loop_it_cannot_drive_is_refused_and_nothing_is_patched() -> None:
    class ForeignLoop(asyncio.AbstractEventLoop):  # what uvloop's Loop is to asyncio: no selector to drive
        def time(self) -> float:
            return 0.0

    loop = ForeignLoop()
    with pytest.raises(VirtualTimeError, match="ForeignLoop, which it cannot drive"):
        VirtualClock().install(loop)
    assert "time" not in vars(loop) and running_clock(loop) is None


def test_an_executor_job_finishes_with_no_spurious_timeout() -> None:
    async def main() -> tuple[int, float]:
        async with virtual_time() as clock:
            start = clock.now
            value = await asyncio.wait_for(asyncio.to_thread(lambda: (time.sleep(0.05), 7)[1]), 5)
            return value, clock.now - start

    value, elapsed = run(main())
    assert value == 7
    assert 0 < elapsed < 5  # time ran as real time does while the job worked, no jump to the 5 s timeout


def test_a_subprocess_finishes_with_no_spurious_timeout() -> None:
    async def main() -> tuple[int, bytes]:
        async with virtual_time():
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import time; time.sleep(0.1); print('done')", stdout=subprocess.PIPE)
            out, _ = await asyncio.wait_for(process.communicate(), 10)
            code = await asyncio.wait_for(process.wait(), 10)
            return code, out

    assert run(main()) == (0, b"done\n")


def test_a_local_http_server_answers_while_other_tasks_sleep_on_virtual_time() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def main() -> list[bytes]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        bodies = []
        async with server, virtual_time():
            sleeper = asyncio.create_task(asyncio.sleep(3600))
            for _ in range(5):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                response = await asyncio.wait_for(reader.read(), 5)
                bodies.append(response.rsplit(b"\r\n\r\n", 1)[1])
                writer.close()
                await writer.wait_closed()
            sleeper.cancel()
        return bodies

    assert run(main()) == [b"ok"] * 5


@pytest.mark.parametrize(("threshold", "jumped"), [(5.0, False), (0.0, True)])
def test_the_clock_jumps_only_after_the_idle_threshold_when_io_could_wake_the_loop(threshold: float,
                                                                                   jumped: bool) -> None:
    """A socket is registered and its data arrives after 50 ms of real time: with a 5 s threshold it comes
    before any jump; with no threshold the clock has jumped to the 10 s timer first."""
    async def main() -> float:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        arrived = loop.create_future()
        loop.add_reader(ours.fileno(), lambda: arrived.done() or arrived.set_result(ours.recv(10)))
        sender = threading.Timer(0.05, theirs.send, (b"x",))
        try:
            async with virtual_time(idle_threshold=threshold) as clock:
                start = clock.now
                sleeper = asyncio.create_task(asyncio.sleep(10))
                sender.start()
                await arrived
                seen_at = clock.now - start
                loop.remove_reader(ours.fileno())  # now only a timer can wake the loop: it jumps at once
                await sleeper
            return seen_at
        finally:
            sender.cancel()
            loop.remove_reader(ours.fileno())
            ours.close()
            theirs.close()

    seen_at = run(main())
    assert (seen_at == pytest.approx(10)) is jumped
    assert (seen_at == 0) is not jumped


def test_idle_threshold_is_validated() -> None:
    with pytest.raises(InvalidAdvanceError, match="idle_threshold"):
        virtual_time(idle_threshold=-1)


def test_decorating_an_async_function_runs_it_on_virtual_time() -> None:
    @virtual_time()
    async def slow() -> float:
        clock = running_clock()
        assert clock is not None
        start = clock.now
        await asyncio.sleep(600)
        return clock.now - start

    assert run(slow()) == pytest.approx(600)
    with pytest.raises(TypeError, match="async def"):
        virtual_time()(lambda: None)


SLOW_WORKFLOW = (
    AsyncWorkflowBuilder("slow")
    .add_async_code("fetch", """
        delays = []
        for attempt in range(5):          # backoff 1 + 2 + 4 + 8 + 16 s
            delays.append(2 ** attempt)
            await asyncio.sleep(2 ** attempt)
        result = {'attempts': len(delays), 'waited': sum(delays)}
    """)
    .add_async_code("slow_call", """
        try:
            await asyncio.wait_for(asyncio.sleep(3600), 30)
            outcome = 'answered'
        except TimeoutError:
            outcome = 'timed out'
        result = {'outcome': outcome}
    """)
    .add_async_code("report", "await asyncio.sleep(1); result = {'summary': f'{attempts} attempts, {outcome}'}")
    .add_connection("fetch", "attempts", "report", "attempts")
    .add_connection("slow_call", "outcome", "report", "outcome")
    .build()
)


def test_the_runtime_runs_on_virtual_time_with_stable_timings() -> None:
    async def main() -> list[tuple[object, ...]]:
        runs = []
        for _ in range(2):
            result = await AsyncLocalRuntime(virtual_time=True).execute_workflow_async(SLOW_WORKFLOW)
            runs.append((result.status, result.outputs, dict(result.node_timings), result.execution_time,
                         result.virtual_time))
        return runs

    first, second = run(main())
    assert first == second
    status, outputs, timings, execution_time, virtual = first
    assert status == "success" and virtual is True
    assert outputs["report"] == {"summary": "5 attempts, timed out"}
    assert timings["fetch"].duration == pytest.approx(31)  # type: ignore[index]
    assert timings["slow_call"].duration == pytest.approx(30)  # type: ignore[index]
    assert execution_time == pytest.approx(32)


def test_a_single_run_can_ask_for_virtual_time_and_real_runs_say_they_were_real() -> None:
    workflow = AsyncWorkflowBuilder("nap").add_async_code("nap", "await asyncio.sleep(120); result = {}").build()

    async def main() -> tuple[bool, float]:
        result = await AsyncLocalRuntime().execute_workflow_async(workflow, virtual_time=True)
        return result.virtual_time, result.execution_time

    assert run(main()) == (True, pytest.approx(120))
    quick = AsyncWorkflowBuilder("quick").add_async_code("q", "result = {}").build()
    assert AsyncLocalRuntime().execute(quick).virtual_time is False


def test_a_clock_that_is_not_running_says_how_to_use_it() -> None:
    clock = virtual_time()
    with pytest.raises(VirtualTimeError, match=r"async with virtual_time\(\) as clock"):
        clock.now  # noqa: B018 - the read is the test
    with pytest.raises(VirtualTimeError, match="the clock is not running"):
        clock.advance(1)
