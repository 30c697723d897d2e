"""Seeded schedules: a read-modify-write race is found, shrunk, named and replayed exactly; a lock fixes it."""

from __future__ import annotations

import asyncio
import threading
import unittest

import pytest

from kailash_nb.errors import KailashNbError
from kailash_nb.testing import (
    AsyncWorkflowTestCase,
    MockHttpClient,
    ScheduleTokenError,
    explore_schedules,
    replay_schedule,
)
from kailash_nb.testing.schedules import MAX_SHRINKS, Call, Race, ScheduleDeadlockError, _races, explore_runs
from kailash_nb.workflow import AsyncWorkflowBuilder, WorkflowResult


class Store:
    """A remote key-value store: each call is an await, so two nodes' calls can interleave."""

    def __init__(self) -> None:
        self.data = {"count": 0}
        self.lock = asyncio.Lock()

    async def get(self, key: str) -> int:
        return self.data[key]

    async def put(self, key: str, value: int) -> None:
        self.data[key] = value


INCREMENT = """
store = await get_resource("store")
current = await store.get("count")
await store.put("count", current + 1)
result = {"seen": current}
"""
LOCKED_INCREMENT = """
store = await get_resource("store")
async with store.lock:
    current = await store.get("count")
    await store.put("count", current + 1)
result = {"seen": current}
"""


def counter(code: str):  # type: ignore[no-untyped-def]
    return (
        AsyncWorkflowBuilder("counter")
        .add_async_code("a", code)
        .add_async_code("b", code)
        .add_async_code("total", "store = await get_resource('store')\nresult = {'count': await store.get('count')}")
        .add_connection("a", "seen", "total", "a")
        .add_connection("b", "seen", "total", "b")
        .build()
    )


def both_counted(result: WorkflowResult) -> None:
    count = result.get_output("total", "count")
    assert count == 2, f"count is {count}, expected 2"


def test_a_read_modify_write_race_is_found_shrunk_and_named() -> None:
    report = asyncio.run(explore_schedules(counter(INCREMENT), resources={"store": Store}, runs=100,
                                           check=both_counted))
    assert report.runs == 100 and not report.ok
    assert sum(o.count for o in report.outcomes) == 100
    [failing] = report.failing
    assert "count is 1, expected 2" in failing.summary
    assert failing.token == "s1:2=1"  # one deviation: a task lets the other run once at one call
    # b read before a wrote: the race; the two reads, and the two writes (both write 1), are not named
    assert [str(race) for race in report.races] == ["store.put by node 'a' against store.get by node 'b'"]
    text = str(report)
    assert "[replay: s1:2=1]" in text and "what raced" in text and "store.get by node" in text
    assert "<table>" in report._repr_html_()


def test_the_report_keeps_the_shrunk_failing_run() -> None:
    report = asyncio.run(explore_schedules(counter(INCREMENT), resources={"store": Store}, runs=100,
                                           check=both_counted))
    assert report.first_failure == "s1:2=1"
    assert report.failing_result is not None and report.failing_result.get_output("total", "count") == 1
    assert [str(call) for call in report.failing_calls] == [
        "store.get by node 'a'", "store.get by node 'b'", "store.put by node 'b'", "store.put by node 'a'",
        "store.get by node 'total'"]
    passing = asyncio.run(explore_schedules(counter(LOCKED_INCREMENT), resources={"store": Store}, runs=20,
                                            check=both_counted))
    assert passing.failing_result is None and passing.first_failure is None


def test_a_race_is_a_pair_that_the_runs_failing_alike_all_make_out_of_order() -> None:
    def call(node: str, method: str) -> Call:
        return Call(node, "store", method)

    a_get, a_put, b_get, b_put = call("a", "get"), call("a", "put"), call("b", "get"), call("b", "put")
    passing = [a_get, a_put, b_get, b_put]
    shrunk = [b_get, a_get, a_put, b_put]  # b read first: the two reads and a's write against b's read reversed
    other = [a_get, b_get, b_put, a_put]  # fails alike, with the reads in the passing order
    # with no other evidence, b's read before a's first call implies it came before a's write too
    assert [str(r) for r in _races(passing, shrunk, [shrunk])] == [
        "store.get by node 'a' against store.get by node 'b'"]
    # a failing run with the reads in order: only the read against the write is what every failure has
    assert [str(r) for r in _races(passing, shrunk, [shrunk, other, shrunk])] == [
        "store.put by node 'a' against store.get by node 'b'"]
    # two ways to fail alike: the pairs of the shrunk run that most failing runs share
    assert _races(passing, shrunk, [shrunk, passing, shrunk]) == (Race(a_get, b_get),)
    # a later call of a node is implied: b read before a's write, so before a's second read as well
    verify = [a_get, a_put, a_get, b_get, b_put]
    assert _races(verify, [a_get, b_get, a_put, a_get, b_put], [[a_get, b_get, a_put, a_get, b_put],
                                                                [a_get, b_get, b_put, a_put, a_get]]) == (
        Race(a_put, b_get),)
    assert _races(passing, passing, [shrunk]) == ()


def test_the_same_token_gives_the_same_call_order_and_result_10_times_out_of_10() -> None:
    async def main() -> list[tuple[object, ...]]:
        report = await explore_schedules(counter(INCREMENT), resources={"store": Store}, runs=50,
                                         check=both_counted)
        token = report.first_failure
        assert token is not None
        runs = []
        for _ in range(10):
            result = await replay_schedule(counter(INCREMENT), token, resources={"store": Store})
            runs.append((result.outputs["total"], result.outputs["a"], result.outputs["b"]))
        return runs

    runs = asyncio.run(main())
    assert runs == [runs[0]] * 10
    assert runs[0][0] == {"count": 1}


def test_the_seed_decides_the_schedules() -> None:
    def summary(seed: int) -> list[tuple[str, int, str]]:
        report = asyncio.run(explore_schedules(counter(INCREMENT), resources={"store": Store}, runs=40, seed=seed,
                                               check=both_counted))
        return [(o.summary, o.count, o.token) for o in report.outcomes]

    assert summary(7) == summary(7)
    assert summary(7) != summary(8)


def test_with_a_lock_1000_schedules_all_pass() -> None:
    report = asyncio.run(explore_schedules(counter(LOCKED_INCREMENT), resources={"store": Store}, runs=1000,
                                           check=both_counted))
    assert report.ok and report.first_failure is None and report.races == ()
    assert sum(o.count for o in report.outcomes) == 1000


def test_by_default_a_run_fails_when_the_workflow_fails() -> None:
    workflow = (
        AsyncWorkflowBuilder("order")
        .add_async_code("writer", "store = await get_resource('store')\nawait store.put('ready', 1)\nresult = {}")
        .add_async_code("reader", """
            store = await get_resource('store')
            await store.get('count')
            if 'ready' not in store.data:
                raise LookupError('read before the write')
            result = {}
        """)
        .build()
    )
    report = asyncio.run(explore_schedules(workflow, resources={"store": Store}, runs=60))
    assert not report.ok
    assert any("LookupError: read before the write" in o.summary for o in report.failing)


def test_mock_http_client_calls_are_schedule_points() -> None:
    def client() -> MockHttpClient:
        http = MockHttpClient()
        http.add_response("GET", "/a", json={"v": 1})
        return http

    workflow = (
        AsyncWorkflowBuilder("fetch")
        .add_async_code("one", "http = await get_resource('http')\nr = await http.get('/a')\nresult = await r.json()")
        .add_async_code("two", "http = await get_resource('http')\nr = await http.get('/a')\nresult = await r.json()")
        .build()
    )
    report = asyncio.run(explore_schedules(workflow, resources={"http": client}, runs=5))
    assert report.ok
    assert [str(call) for call in report.passing_calls] == ["http.GET /a by node 'one'", "http.GET /a by node 'two'"]


def test_bad_tokens_and_runs_are_refused() -> None:
    with pytest.raises(ScheduleTokenError, match="not a schedule token") as caught:
        asyncio.run(replay_schedule(counter(INCREMENT), "x1:2", resources={"store": Store}))
    assert isinstance(caught.value, KailashNbError) and isinstance(caught.value, ValueError)
    with pytest.raises(ValueError, match=r"runs=\.\.\."):
        asyncio.run(explore_schedules(counter(INCREMENT), runs=0))
    with pytest.raises(TypeError, match="needs a built Workflow, got AsyncWorkflowBuilder"):
        asyncio.run(explore_schedules(AsyncWorkflowBuilder("unbuilt").add_async_code("n", "result = {}")))  # type: ignore[arg-type]


class RaceTest(AsyncWorkflowTestCase):
    __test__ = False

    async def test_counter(self) -> None:
        await self.assert_schedule_independent(counter(INCREMENT), resources={"store": Store}, runs=50,
                                               check=both_counted)


def test_assert_schedule_independent_fails_with_the_token_and_the_race() -> None:
    result = unittest.TestResult()
    RaceTest("test_counter").run(result)
    [(_, text)] = result.failures
    assert "depends on the schedule" in text
    assert "replay_schedule(workflow, 's1:2=1', ...)" in text
    assert "what raced" in text and "store.get by node" in text


def test_shrinking_a_schedule_of_many_decisions_costs_a_bounded_number_of_runs() -> None:
    # 1,000 decisions, failing while at least 100 deviate: every deviation dropped is a run that still fails,
    # so shrinking one at a time would take hundreds of runs for the 10 that were asked for
    runs: list[str] = []

    def run(policy: object) -> BaseException | None:
        chosen = [policy.choose(4) for _ in range(1000)]  # type: ignore[attr-defined]
        runs.append("run")
        return AssertionError("too many deviations") if sum(map(bool, chosen)) >= 100 else None

    report = explore_runs(run, runs=10, seed=0, name="many decisions", what="runs")
    assert not report.ok
    assert len(runs) <= 10 + MAX_SHRINKS + 10, len(runs)  # explored, shrinking, probing around the failure
    token = report.first_failure
    assert token is not None and len(token.removeprefix("s1:").split(".")) >= 100


class Locks:
    def __init__(self) -> None:
        self.x, self.y = asyncio.Lock(), asyncio.Lock()

    async def touch(self) -> None:
        pass


def taking(first: str, second: str) -> str:
    return f"""
locks = await get_resource("locks")
async with locks.{first}:
    await locks.touch()
    async with locks.{second}:
        pass
result = {{}}
"""


@pytest.mark.slow
def test_a_schedule_that_deadlocks_is_a_failing_outcome_not_a_hang() -> None:
    workflow = (AsyncWorkflowBuilder("locks").add_async_code("a", taking("x", "y"))
                .add_async_code("b", taking("y", "x")).build())

    async def main() -> None:
        report = await explore_schedules(workflow, resources={"locks": Locks}, runs=10)
        assert report.first_failure == "s1:1=1", str(report)
        (failing,) = report.failing
        assert failing.summary.startswith("ScheduleDeadlockError: the run stopped: every task waited on another")
        assert report.failing_result is None
        with pytest.raises(ScheduleDeadlockError, match="a deadlock under this schedule"):
            await replay_schedule(workflow, "s1:1=1", resources={"locks": Locks})
        assert (await replay_schedule(workflow, "s1:", resources={"locks": Locks})).ok

    # a timeout on the loop would be virtual too, and end the wait at once: the bound is a thread's join
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)
    assert outcome, "the exploration did not end: it waited for ever on the deadlocked run"
    if outcome[0] is not None:
        raise outcome[0]
