"""Virtual time in the testing kit: the test case's switch, the pytest fixture, and every figure the kit
records (call durations, TTLs, waits, convergence, time limits) on the loop's one clock."""

from __future__ import annotations

import asyncio
import textwrap
import unittest
from typing import ClassVar
from unittest.mock import Mock

import pytest

from kailash_nb.testing import (
    AsyncAssertions,
    AsyncTestUtils,
    AsyncWorkflowFixtures,
    AsyncWorkflowTestCase,
    MemoryCache,
    MockHttpClient,
    VirtualClock,
    use_virtual_time,
    virtual_time,
)
from kailash_nb.workflow import AsyncWorkflowBuilder, running_clock

pytest_plugins = ["pytester"]

RETRYING = (
    AsyncWorkflowBuilder("retrying")
    .add_async_code("fetch", """
        api = await get_resource("api")
        for attempt in range(4):
            answer = await api.get()
            if answer is not None:
                break
            await asyncio.sleep(10 * 2 ** attempt)   # backoff: 10, 20, 40 s
        result = {'answer': answer, 'attempts': attempt + 1}
    """)
    .build()
)


def run_case(case_class: type[unittest.TestCase], *names: str) -> unittest.TestResult:
    result = unittest.TestResult()
    unittest.TestSuite(case_class(n) for n in names).run(result)
    return result


class VirtualCase(AsyncWorkflowTestCase):
    virtual_time = True
    seen: ClassVar[dict[str, object]] = {}

    async def setUp(self) -> None:
        await super().setUp()
        assert running_clock() is self.clock  # None for the test that opts out
        self.api = await self.create_test_resource("api", mock=True)
        self.api.get.side_effect = [None, None, None, "ok"]

    async def test_backoff_takes_virtual_seconds(self) -> None:
        assert self.clock is not None
        start = self.clock.now
        result = await self.execute_workflow(RETRYING)
        self.assert_workflow_success(result)
        VirtualCase.seen["waited"] = self.clock.now - start
        VirtualCase.seen["duration"] = result.node_timings["fetch"].duration
        VirtualCase.seen["virtual"] = result.virtual_time

    @use_virtual_time(False)
    async def test_opted_out(self) -> None:
        VirtualCase.seen["opted out clock"] = self.clock
        VirtualCase.seen["opted out running"] = running_clock()

    async def tearDown(self) -> None:
        VirtualCase.seen.setdefault("teardown clocks", []).append(running_clock() is self.clock)  # type: ignore[union-attr]
        await super().tearDown()


def test_a_case_with_virtual_time_runs_setup_test_and_teardown_on_it() -> None:
    VirtualCase.seen.clear()
    result = run_case(VirtualCase, "test_backoff_takes_virtual_seconds", "test_opted_out")
    assert result.wasSuccessful(), result.failures + result.errors
    assert VirtualCase.seen["waited"] == pytest.approx(70)
    assert VirtualCase.seen["duration"] == pytest.approx(70)
    assert VirtualCase.seen["virtual"] is True
    assert VirtualCase.seen["opted out clock"] is None and VirtualCase.seen["opted out running"] is None
    assert VirtualCase.seen["teardown clocks"] == [True, True]


def test_a_case_on_a_running_loop_uses_virtual_time_and_puts_the_loop_back() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        async with VirtualCase("test_backoff_takes_virtual_seconds") as case:
            await case.test_backoff_takes_virtual_seconds()
        return VirtualCase.seen["waited"], "time" in vars(loop)  # type: ignore[return-value]

    VirtualCase.seen.clear()
    assert asyncio.run(main()) == (pytest.approx(70), False)


def test_use_virtual_time_refuses_a_non_bool() -> None:
    with pytest.raises(TypeError, match=r"@use_virtual_time\(\)"):
        use_virtual_time(lambda: None)  # type: ignore[arg-type]


def test_tracked_mock_and_http_call_durations_are_virtual_and_exact() -> None:
    async def main() -> tuple[float, float]:
        async with virtual_time(), AsyncWorkflowTestCase() as case:
            async def slow_fetch() -> str:
                await asyncio.sleep(2.5)
                return "row"

            db = await case.create_test_resource("db", lambda: Mock(fetch=slow_fetch), mock=True)
            http = MockHttpClient()
            http.add_response("GET", "/slow", json={"ok": True}, delay=1.25)
            await db.fetch()
            await http.get("/slow")
            return case.get_calls("db", "fetch")[0].duration, http.get_calls()[0].duration

    assert asyncio.run(main()) == (2.5, 1.25)


def test_cache_ttls_expire_on_virtual_time() -> None:
    async def main() -> tuple[object, object, object]:
        cache = await AsyncWorkflowFixtures.create_test_cache()
        async with virtual_time():
            await cache.set("session", "abc", ttl=600)
            await asyncio.sleep(599)
            before = await cache.get("session")
            left = await cache.ttl("session")
            await asyncio.sleep(1)
            return before, left, await cache.get("session")

    assert asyncio.run(main()) == ("abc", pytest.approx(1), None)


def test_waits_and_assertions_over_time_run_on_virtual_time() -> None:
    async def main() -> dict[str, object]:
        seen: ClassVar[dict[str, object]] = {}
        async with virtual_time() as clock:
            start = clock.now
            ready_at = start + 42
            seen["condition"] = await AsyncTestUtils.wait_for_condition(lambda: clock.now >= ready_at,
                                                                        timeout=60, interval=1)
            seen["after condition"] = clock.now - start
            with pytest.raises(AssertionError, match="did not become true within 300 s"):
                await AsyncAssertions.assert_eventually(lambda: False, timeout=300, interval=10)
            seen["after eventually"] = clock.now - start
            values = iter([10.0, 5.0, 2.0, 1.0, 1.0, 1.0])
            converged = await AsyncAssertions.assert_converges(lambda: next(values), tolerance=0.1, samples=6,
                                                               interval=30, timeout=600)
            seen["convergence"] = (converged.times, converged.elapsed)
            with pytest.raises(AssertionError, match=r"time limit of 5 s exceeded.*after 5.000 s"):
                async with AsyncAssertions.assert_time_limit(5):
                    await asyncio.sleep(3600)
            performance = await AsyncAssertions.measure_performance(lambda: asyncio.sleep(0.5), operations=4)
            seen["performance"] = (performance.samples, performance.time, performance.throughput)
        return seen

    seen = asyncio.run(main())
    assert seen["condition"] is True and seen["after condition"] == pytest.approx(42)
    assert seen["after eventually"] == pytest.approx(342)
    assert seen["convergence"] == ((0.0, 30.0, 60.0, 90.0, 120.0, 150.0), 150.0)
    assert seen["performance"] == ((0.5, 0.5, 0.5, 0.5), 2.0, 2.0)


def test_the_virtual_clock_fixture_runs_async_tests_on_virtual_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_with_virtual_clock=textwrap.dedent("""
        import asyncio

        from kailash_nb.workflow import running_clock

        async def test_sleeps_an_hour(virtual_clock):
            start = virtual_clock.now
            assert running_clock() is virtual_clock
            await asyncio.sleep(3600)
            assert abs(virtual_clock.now - start - 3600) < 1e-6

        async def test_with_a_case(virtual_clock, workflow_case):
            api = await workflow_case.create_test_resource("api", mock=True)
            api.get.return_value = 1
            virtual_clock.advance(30)
            await asyncio.sleep(0)
            assert await api.get() == 1
            assert running_clock() is virtual_clock

        def test_sync_test_is_told(virtual_clock):
            pass
    """))
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:asyncio")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the virtual_clock fixture needs an `async def` test*"])


def test_virtual_clock_is_exported_from_the_testing_kit() -> None:
    assert isinstance(virtual_time(), VirtualClock)
    assert isinstance(MemoryCache(), MemoryCache)
