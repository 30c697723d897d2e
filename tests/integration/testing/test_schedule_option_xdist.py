"""``pytest -n 2 --kailash-schedules N`` in its own process: the option reaches the xdist workers, and each
test's schedules are the same whichever worker runs it (a token found there replays in a plain run)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

pytest_plugins = ["pytester"]

CASES = '''
from kailash_nb.testing import AsyncWorkflowTestCase
from kailash_nb.workflow import AsyncWorkflowBuilder


class Store:
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


class CounterTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        self.store = await self.create_test_resource("store", Store, mock=True)

    async def test_racy(self):
        workflow = AsyncWorkflowBuilder("pair").add_async_code("a", INCREMENT).add_async_code("b", INCREMENT).build()
        await self.execute_workflow(workflow)
        assert await self.store.get("count") == 2

    async def test_in_sequence(self):
        workflow = (AsyncWorkflowBuilder("chain").add_async_code("a", INCREMENT).add_async_code("b", INCREMENT)
                    .add_connection("a", "seen", "b", "after").build())
        await self.execute_workflow(workflow)
        assert await self.store.get("count") == 2
'''


def test_the_option_runs_on_xdist_workers_and_its_token_replays_in_a_plain_run(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(test_counter=CASES)
    found = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--kailash-schedules", "20",
                                          "--color=no", timeout=300)
    found.assert_outcomes(passed=1, failed=1)
    match = re.search(r"--kailash-schedule-replay '(s1:[0-9=.]*)' 'test_counter.py::CounterTest::test_racy'",
                      found.stdout.str())
    assert match, found.stdout.str()
    # the test's own awaited store.get in the assertion is a schedule point too, after the workflow's
    assert match.group(1) == "s1:2=1"
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kailash-schedule-replay", match.group(1),
                                             "test_counter.py::CounterTest::test_racy", "--color=no", timeout=300)
    replayed.assert_outcomes(failed=1)
