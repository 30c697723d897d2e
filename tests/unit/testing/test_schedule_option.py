"""``pytest --kailash-schedules N``: a passing AsyncWorkflowTestCase test re-run whole under seeded schedules,
failing with a token that ``--kailash-schedule-replay`` replays; in child pytest sessions run in-process."""

from __future__ import annotations

import importlib.metadata
import re

import pytest

# pytester: here rather than in a conftest, for the reason given in test_pytest_plugin.py
pytest_plugins = ["pytester"]

CASES = '''
import unittest

from kailash_nb.testing import AsyncWorkflowTestCase
from kailash_nb.workflow import AsyncWorkflowBuilder


class Store:
    """A fake remote store: each call is an await."""

    def __init__(self):
        self.data = {"count": 0}

    async def get(self, key):
        return self.data[key]

    async def put(self, key, value):
        self.data[key] = value


INCREMENT = """
store = await get_resource("store")
current = await store.get("count")
await store.put("count", current + 1)
result = {"seen": current}
"""
ADD_ONE = """
store = await get_resource("store")
await store.put("count", await store.get("count") + 1)
result = {}
"""


def pair(code, second=None):
    return AsyncWorkflowBuilder("pair").add_async_code("a", code).add_async_code("b", second or code).build()


def chain(code):
    return AsyncWorkflowBuilder("chain").add_async_code("a", code).add_async_code("b", code).add_connection(
        "a", "seen", "b", "after").build()


class CounterTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        self.store = Store()  # a fresh store for every run: setUp runs again
        await self.create_test_resource("store", lambda: self.store, mock=True)

    async def test_racy(self):
        await self.execute_workflow(pair(INCREMENT))
        assert self.store.data["count"] == 2, f"count is {self.store.data['count']}, expected 2"

    async def test_in_sequence(self):
        await self.execute_workflow(chain(INCREMENT))
        assert self.store.data["count"] == 2, f"count is {self.store.data['count']}, expected 2"

    async def test_second_workflow_races(self):
        await self.execute_workflow(chain(INCREMENT))
        await self.execute_workflow(pair(ADD_ONE))
        assert self.store.data["count"] == 4, f"count is {self.store.data['count']}, expected 4"


class MockTest(AsyncWorkflowTestCase):
    async def test_side_effects_are_fresh_in_every_run(self):
        svc = await self.create_test_resource("svc", None, mock=True)
        svc.fetch.side_effect = [1, 2]  # a run that shared this list with another would exhaust it
        workflow = AsyncWorkflowBuilder("w").add_async_code(
            "a", "svc = await get_resource('svc')\\nresult = {'v': await svc.fetch()}").add_async_code(
            "b", "svc = await get_resource('svc')\\nresult = {'v': await svc.fetch()}").build()
        result = await self.execute_workflow(workflow)
        assert sorted([result.outputs["a"]["v"], result.outputs["b"]["v"]]) == [1, 2]
        self.assert_resource_called("svc", "fetch", times=2)
'''

OTHERS = '''
import asyncio
import unittest

from kailash_nb.testing import AsyncWorkflowTestCase, use_virtual_time
from kailash_nb.workflow.clock import running_clock

RUNS = []


class OtherTest(AsyncWorkflowTestCase):
    @use_virtual_time(False)
    async def test_on_real_time(self):
        RUNS.append("real time")
        assert self.clock is None and running_clock() is None, "the test asked for real time"

    def test_sync_with_a_loop_of_its_own(self):
        RUNS.append("sync")
        asyncio.run(asyncio.sleep(0))  # as the case calls a plain def: off its loop

    async def test_fails_as_usual(self):
        RUNS.append("fails")
        raise AssertionError("its own failure")

    async def test_skipped(self):
        RUNS.append("skipped")
        self.skipTest("not today")

    @unittest.expectedFailure
    async def test_expected_to_fail(self):
        RUNS.append("xfail")
        raise AssertionError("known")


def test_plain_function():
    RUNS.append("plain")


async def test_function_style(workflow_case):
    RUNS.append("function")


def test_each_ran_once():
    assert sorted(RUNS) == ["fails", "function", "plain", "real time", "skipped", "sync", "xfail"], RUNS
'''

ONCE = '''
from kailash_nb.testing import AsyncWorkflowTestCase

RUNS = []


class PlainTest(AsyncWorkflowTestCase):
    async def test_without_a_schedule_point(self):
        RUNS.append("plain")

    async def test_sharing_state_between_runs(self):
        RUNS.append("shared")
        assert RUNS.count("shared") == 1, "this test ran before"


def test_runs():
    # as usual, then once more: with nothing to decide, every schedule is the default one
    assert RUNS.count("plain") == 2, RUNS
'''

SHARED = '''
from kailash_nb.testing import AsyncWorkflowTestCase
from test_counter import INCREMENT, Store, chain


class SetUpClassTest(AsyncWorkflowTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store = Store()  # one store for every run of the class's tests

    async def test_counting_from_zero(self):
        await self.create_test_resource("store", lambda: self.store, mock=True)
        await self.execute_workflow(chain(INCREMENT))
        assert self.store.data["count"] == 2, f"count is {self.store.data['count']}, expected 2"
'''

DEADLOCK = '''
import asyncio

from kailash_nb.testing import AsyncWorkflowTestCase
from kailash_nb.workflow import AsyncWorkflowBuilder


class Locks:
    def __init__(self):
        self.x, self.y = asyncio.Lock(), asyncio.Lock()

    async def touch(self):
        pass


def taking(first, second):
    return f"""
locks = await get_resource("locks")
async with locks.{first}:
    await locks.touch()
    async with locks.{second}:
        pass
result = {{}}
"""


class DeadlockTest(AsyncWorkflowTestCase):
    async def test_two_locks_in_opposite_orders(self):
        await self.create_test_resource("locks", Locks, mock=True)
        workflow = AsyncWorkflowBuilder("w").add_async_code("a", taking("x", "y")).add_async_code(
            "b", taking("y", "x")).build()
        await self.execute_workflow(workflow)
'''

PYTEST_OUTCOMES = '''
import pytest

from kailash_nb.testing import AsyncWorkflowTestCase
from test_counter import INCREMENT, Store, pair

RERUNS = []


class PytestOutcomesTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        self.store = Store()
        await self.create_test_resource("store", lambda: self.store, mock=True)

    async def test_racy_failing_with_pytest_fail(self):
        await self.execute_workflow(pair(INCREMENT))
        if self.store.data["count"] != 2:
            pytest.fail(f"count is {self.store.data['count']}, expected 2")

    async def test_skipping_when_run_again(self):
        RERUNS.append(1)
        await self.execute_workflow(pair(INCREMENT))
        if len(RERUNS) > 1:
            pytest.skip("a re-run skips")
'''

# pytest-randomly, where installed, would reorder the child's tests: some check what ran before them
STRICT = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:randomly", "--strict-markers",
          "-W", "error::RuntimeWarning")


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    if not any(ep.value == "kailash_nb.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11")):
        pytester.plugins.append("kailash_nb.pytest_plugin")
    pytester.makepyfile(test_counter=CASES)
    return pytester


def run(child: pytest.Pytester, *args: str) -> pytest.RunResult:
    return child.runpytest_inprocess(*STRICT, *args)


def token_of(result: pytest.RunResult, test: str) -> str:
    match = re.search(rf"--kailash-schedule-replay '(s1:[0-9=.]*)' 'test_counter.py::{test}'", result.stdout.str())
    assert match, result.stdout.str()
    return match.group(1)


def test_a_real_race_passes_as_usual_and_fails_under_the_option_with_a_token(child: pytest.Pytester) -> None:
    run(child, "test_counter.py::CounterTest::test_racy").assert_outcomes(passed=1)
    result = run(child, "test_counter.py::CounterTest::test_racy", "--kailash-schedules", "20")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*kailash_nb: each passing AsyncWorkflowTestCase test re-run under 20 seeded schedule(s) (seed 0)*",
        "*the test passed, but its outcome depends on the schedule*",
        "*replay the first failure with:  pytest --kailash-schedule-replay 's1:2=1' "
        "'test_counter.py::CounterTest::test_racy'",
        "20 schedules of test 'test_counter.py::CounterTest::test_racy' (seed 0)*",
        "*FAIL * x AssertionError: count is 1, expected 2  [[]replay: s1:2=1[]]",
        "what raced (the failing schedule ran the second call first):",
        "  store.put by node 'a' against store.get by node 'b'",
    ])
    assert "store.get by node 'a' against store.get by node 'b'" not in result.stdout.str()


def test_race_free_tests_pass_under_the_option_each_run_with_fresh_resources(child: pytest.Pytester) -> None:
    result = run(child, "test_counter.py::CounterTest::test_in_sequence", "test_counter.py::MockTest",
                 "--kailash-schedules", "30")
    result.assert_outcomes(passed=2)


def test_replaying_the_token_reproduces_the_failure(child: pytest.Pytester) -> None:
    found = run(child, "test_counter.py::CounterTest::test_racy", "--kailash-schedules", "20")
    token = token_of(found, "CounterTest::test_racy")
    for _ in range(3):
        replayed = run(child, "test_counter.py::CounterTest::test_racy", "--kailash-schedule-replay", token)
        replayed.assert_outcomes(failed=1)
        replayed.stdout.fnmatch_lines([
            "*kailash_nb: AsyncWorkflowTestCase tests run under schedule s1:2=1, on virtual time*",
            "E       AssertionError: count is 1, expected 2",
            "E       (the test ran under schedule s1:2=1, on virtual time: --kailash-schedule-replay)",
        ])
    run(child, "test_counter.py::CounterTest::test_racy", "--kailash-schedule-replay", "s1:").assert_outcomes(
        passed=1)


def test_the_token_of_a_test_running_several_workflows_numbers_all_their_decisions(child: pytest.Pytester) -> None:
    test = "test_counter.py::CounterTest::test_second_workflow_races"
    run(child, test).assert_outcomes(passed=1)
    found = run(child, test, "--kailash-schedules", "30")
    found.assert_outcomes(failed=1)
    token = token_of(found, "CounterTest::test_second_workflow_races")
    # the first workflow runs its nodes one after the other and makes four calls: decisions 0 to 3 are its own
    assert min(int(part.split("=")[0]) for part in token.removeprefix("s1:").split(".")) >= 4, token
    found.stdout.fnmatch_lines(["*count is 3, expected 4*", "  store.put by node 'a' against store.get by node 'b'"])
    assert "store.get by node 'a' against store.get by node 'b'" not in found.stdout.str()
    run(child, test, "--kailash-schedule-replay", token).assert_outcomes(failed=1)


def test_the_seed_option_changes_the_schedules_and_the_report_says_it(child: pytest.Pytester) -> None:
    result = run(child, "test_counter.py::CounterTest::test_racy", "--kailash-schedules", "20",
                 "--kailash-schedule-seed", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["20 schedules of test 'test_counter.py::CounterTest::test_racy' (seed 5)*"])


def test_tests_that_did_not_pass_and_other_tests_are_run_once_as_usual(child: pytest.Pytester) -> None:
    child.makepyfile(test_others=OTHERS)
    result = run(child, "test_others.py", "--kailash-schedules", "10")
    result.assert_outcomes(passed=5, failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*AssertionError: its own failure*"])


def test_a_test_on_real_time_is_run_as_usual_when_replaying_too(child: pytest.Pytester) -> None:
    child.makepyfile(test_others=OTHERS)
    run(child, "test_others.py::OtherTest::test_on_real_time", "--kailash-schedule-replay", "s1:").assert_outcomes(
        passed=1)


def test_a_test_with_nothing_to_decide_runs_once_more_and_shared_state_is_named(child: pytest.Pytester) -> None:
    child.makepyfile(test_once=ONCE)
    result = run(child, "test_once.py", "--kailash-schedules", "25")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*the test passed, but failed when run again whole on virtual time in the default order (schedule s1:), "
        "so not because of the schedule: it depends on real time or on state its runs share*",
        "1 schedules of test 'test_once.py::PlainTest::test_sharing_state_between_runs' (seed 0)*",
    ])


@pytest.mark.parametrize(("args", "message"), [
    (["--kailash-schedules", "0"], "*argument --kailash-schedules: expected a positive number of schedules per "
                                   "test, such as 20; got '0'*"),
    (["--kailash-schedules", "many"], "*argument --kailash-schedules: expected a positive number*got 'many'*"),
    (["--kailash-schedule-replay", "2=1"], "*argument --kailash-schedule-replay: '2=1' is not a schedule token*"),
    (["--kailash-schedules", "5", "--kailash-schedule-replay", "s1:"],
     "*--kailash-schedules explores schedules and --kailash-schedule-replay replays one: give one of them*"),
])
def test_bad_option_values_are_usage_errors(child: pytest.Pytester, args: list[str], message: str) -> None:
    result = run(child, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_pytest_fail_in_a_run_is_a_failing_schedule_and_pytest_skip_ends_the_runs(child: pytest.Pytester) -> None:
    # pytest.fail (and a pytest.raises that saw nothing raise) and pytest.skip raise BaseExceptions, not Exceptions
    child.makepyfile(test_outcomes=PYTEST_OUTCOMES)
    result = run(child, "test_outcomes.py", "--kailash-schedules", "20")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*the test passed, but its outcome depends on the schedule*",
        "*--kailash-schedule-replay 's1:2=1' 'test_outcomes.py::PytestOutcomesTest::test_racy_failing_with_pytest*",
        "*FAIL * x Failed: count is 1, expected 2  [[]replay: s1:2=1[]]",
        "  store.put by node 'a' against store.get by node 'b'",
    ])


def test_a_test_failing_in_the_default_order_is_run_once_more_and_told_what_to_do(child: pytest.Pytester) -> None:
    child.makepyfile(test_shared=SHARED)
    result = run(child, "test_shared.py", "--kailash-schedules", "20")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the test passed, but failed when run again whole on virtual time in the default order (schedule s1:), "
        "so not because of the schedule*no other schedule was tried.",
        "- on real time (*): mark it @use_virtual_time(False), and --kailash-schedules runs it once, as usual;",
        "- on shared state (class attributes, setUpClass, *): make it in setUp, which every run repeats, or *",
        "see it fail with:  pytest --kailash-schedule-replay 's1:' 'test_shared.py::SetUpClassTest::*'",
        "1 schedules of test 'test_shared.py::SetUpClassTest::test_counting_from_zero' (seed 0): "
        "1 distinct outcome(s), "
        "1 failing run(s)",
        "  FAIL     1 x AssertionError: count is 4, expected 2  [[]replay: s1:[]]",
    ])


@pytest.mark.slow
def test_a_run_that_deadlocks_is_cancelled_and_fails_with_its_token(child: pytest.Pytester) -> None:
    # in the default order node a takes both locks before b starts; a schedule that lets b in between them
    # leaves every task waiting on another, with nothing to wake one: the option must not wait for ever
    child.makepyfile(test_deadlock=DEADLOCK)
    test = "test_deadlock.py::DeadlockTest::test_two_locks_in_opposite_orders"
    run(child, test).assert_outcomes(passed=1)
    found = child.runpytest_subprocess(*STRICT, test, "--kailash-schedules", "10", timeout=120)
    found.assert_outcomes(failed=1)
    found.stdout.fnmatch_lines([
        "*the test passed, but its outcome depends on the schedule*",
        "*FAIL * x ScheduleDeadlockError: the run stopped: every task waited on another and nothing could wake "
        "one*[[]replay: s1:1=1[]]",
    ])
    replayed = child.runpytest_subprocess(*STRICT, test, "--kailash-schedule-replay", "s1:1=1", timeout=120)
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["E   *ScheduleDeadlockError: the run stopped*"])


RECORDING = '''
import pathlib

from kailash_nb.testing import AsyncWorkflowTestCase
from kailash_nb.workflow import AsyncWorkflowBuilder

HERE = pathlib.Path(__file__).parent


class Inventory:
    async def count(self, item):
        return {"apple": 3}[item]


def inventory():
    with open(HERE / "factory_calls.txt", "a") as calls:
        calls.write("made\\n")
    return Inventory()


class RecordingTest(AsyncWorkflowTestCase):
    async def test_records_again_every_time_it_is_asked(self):
        await self.use_cassette(HERE / "inventory.json", mode="all", store=inventory)
        workflow = AsyncWorkflowBuilder("w").add_async_code("a", """
store = await get_resource("store")
result = {"apples": await store.count("apple")}
""").add_async_code("b", """
store = await get_resource("store")
result = {"more": await store.count("apple")}
""").build()
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "a", 3, key="apples")
'''


def test_re_runs_replay_what_the_usual_run_recorded_and_never_record_again(child: pytest.Pytester) -> None:
    child.makepyfile(test_recording=RECORDING)
    result = run(child, "test_recording.py", "--kailash-schedules", "10")
    result.assert_outcomes(passed=1)
    assert (child.path / "factory_calls.txt").read_text() == "made\n"  # the usual run only
    recorded = (child.path / "inventory.json").read_bytes()
    run(child, "test_recording.py", "--kailash-schedule-replay", "s1:1=1").assert_outcomes(passed=1)
    assert (child.path / "factory_calls.txt").read_text() == "made\n" and \
        (child.path / "inventory.json").read_bytes() == recorded
