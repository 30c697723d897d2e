"""Node and run timeouts: a node that finishes after its limit has timed out, whatever made it late."""

import asyncio
import time

import pytest

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, NodeTimeoutError

BLOCKS_AFTER_YIELDING = """
    await asyncio.sleep(0)
    block(0.15)
    result = {'late': True}
"""

SWALLOWS_CANCELLATION = """
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        pass
    result = {'done': True}
"""


def block(seconds: float) -> None:
    """What blocking node code does: hold the event loop, so that no timer fires meanwhile."""
    time.sleep(seconds)


def run(workflow, inputs=None, *, timeout=None, **runtime_options):
    async def main():
        runtime = AsyncLocalRuntime(**runtime_options)
        result = await runtime.execute_workflow_async(workflow, inputs, namespace={"block": block}, timeout=timeout)
        return result, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    result, leftovers = asyncio.run(main())
    assert leftovers == []
    return result


def test_a_node_that_blocks_the_loop_past_its_timeout_has_timed_out():
    wf = AsyncWorkflowBuilder("wf").add_async_code("blocker", BLOCKS_AFTER_YIELDING, timeout=0.05).build()
    result = run(wf)
    assert result.status == "failed"
    assert result.node_status == {"blocker": "failed"}
    assert "blocker" not in result.outputs
    error = result.errors["blocker"]
    assert isinstance(error, NodeTimeoutError)
    assert str(error) == (
        "node 'blocker' ran past its timeout of 0.05 s: it finished after the limit without yielding to the event "
        "loop (blocking code cannot be stopped before it yields, only reported late); its output is dropped")


def test_node_code_without_any_await_that_blocks_past_its_timeout_has_timed_out():
    wf = AsyncWorkflowBuilder("wf").add_async_code("sync", "block(0.1)\nresult = {'v': 1}", timeout=0.05).build()
    result = run(wf)
    assert result.node_status == {"sync": "failed"}
    assert result.outputs == {}
    assert str(result.errors["sync"]).startswith(
        "node 'sync' ran past its timeout of 0.05 s: it finished after the limit without yielding")


def test_a_node_timed_out_by_blocking_skips_its_dependants():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("blocker", BLOCKS_AFTER_YIELDING, timeout=0.05)
          .add_async_code("after", "result = {'v': late}")
          .add_connection("blocker", "late", "after", "late")
          .build())
    assert run(wf).node_status == {"blocker": "failed", "after": "skipped"}


def test_a_node_within_its_timeout_succeeds():
    wf = AsyncWorkflowBuilder("wf").add_async_code("quick", "await asyncio.sleep(0)\nresult = {'v': 1}",
                                                   timeout=5).build()
    result = run(wf)
    assert result.node_status == {"quick": "success"}
    assert result.outputs == {"quick": {"v": 1}}


def test_a_node_timeout_cancels_the_node_where_it_waits():
    wf = AsyncWorkflowBuilder("wf").add_async_code("sleepy", """
        try:
            await asyncio.sleep(10)
        finally:
            seen.append('cleaned up')
        result = {}
    """, timeout=0.02).build()
    seen: list[str] = []
    result = run(wf, {"seen": seen})
    assert seen == ["cleaned up"]
    assert str(result.errors["sleepy"]) == "node 'sleepy' ran past its timeout of 0.02 s"
    assert isinstance(result.errors["sleepy"].__cause__, asyncio.CancelledError)


def test_an_exception_raised_after_the_node_timeout_is_kept():
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", """
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ConnectionError('gave up')
    """, timeout=0.02).build()
    error = run(wf).errors["n"]
    assert type(error) is ConnectionError and str(error) == "gave up"


def test_a_node_that_blocks_past_its_timeout_and_raises_keeps_its_exception():
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", "block(0.1)\nraise KeyError('own')", timeout=0.05).build()
    error = run(wf).errors["n"]
    assert type(error) is KeyError


def test_a_node_without_result_that_blocks_past_its_timeout_reports_the_timeout():
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", "block(0.1)", timeout=0.05).build()
    assert isinstance(run(wf).errors["n"], NodeTimeoutError)


# -- the run's timeout ------------------------------------------------------------------------------

def test_a_single_node_that_blocks_past_the_run_timeout_has_timed_out():
    wf = AsyncWorkflowBuilder("wf").add_async_code("blocker", BLOCKS_AFTER_YIELDING).build()
    result = run(wf, timeout=0.05)
    assert result.status == "failed"
    assert result.node_status == {"blocker": "cancelled"}
    assert result.outputs == {}
    assert str(result.errors["blocker"]) == (
        "node 'blocker' finished after the limit without yielding to the event loop (blocking code cannot be "
        "stopped before it yields, only reported late): workflow 'wf' ran past its timeout of 0.05 s")


def test_no_node_starts_once_the_run_timeout_has_passed():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("blocker", "block(0.1)\nresult = {'v': 1}")
          .add_async_code("next", "ran.append('next')\nresult = {}")
          .add_connection("blocker", "v", "next", "v")
          .build())
    ran: list[str] = []
    result = run(wf, {"ran": ran}, timeout=0.05)
    assert ran == []
    assert result.node_status == {"blocker": "cancelled", "next": "skipped"}
    assert isinstance(result.errors["blocker"], NodeTimeoutError)


def test_a_node_that_blocks_past_the_run_timeout_beside_others_has_timed_out():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("quick", "result = {'v': 1}")
          .add_async_code("blocker", BLOCKS_AFTER_YIELDING)
          .add_async_code("waiting", "await asyncio.sleep(10)\nresult = {}")
          .build())
    result = run(wf, timeout=0.05)
    assert result.node_status == {"quick": "success", "blocker": "cancelled", "waiting": "cancelled"}
    assert result.outputs == {"quick": {"v": 1}}
    assert "without yielding" in str(result.errors["blocker"])
    assert str(result.errors["waiting"]) == (
        "node 'waiting' was cancelled: workflow 'wf' ran past its timeout of 0.05 s")


def test_a_single_node_that_swallows_the_run_timeout_is_reported_and_stops_the_run():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("stubborn", SWALLOWS_CANCELLATION)
          .add_async_code("next", "ran.append('next')\nresult = {}")
          .add_connection("stubborn", "done", "next", "done")
          .build())
    ran: list[str] = []
    result = run(wf, {"ran": ran}, timeout=0.02)
    assert ran == []
    assert result.node_status == {"stubborn": "cancelled", "next": "skipped"}
    assert result.outputs == {}
    assert str(result.errors["stubborn"]) == (
        "node 'stubborn' ignored its cancellation and finished late: workflow 'wf' ran past its timeout of 0.02 s")


def test_a_node_that_fails_after_the_run_timeout_keeps_its_own_exception():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("n", """
              try:
                  await asyncio.sleep(10)
              except asyncio.CancelledError:
                  raise ConnectionError('gave up')
          """)
          .add_async_code("other", "await asyncio.sleep(10)\nresult = {}")
          .build())
    result = run(wf, timeout=0.02)
    assert result.node_status == {"n": "failed", "other": "cancelled"}
    assert type(result.errors["n"]) is ConnectionError


def test_nodes_done_before_the_run_timeout_keep_their_output():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("first", "result = {'v': 1}")
          .add_async_code("second", "await asyncio.sleep(10)\nresult = {'w': v}")
          .add_connection("first", "v", "second", "v")
          .build())
    result = run(wf, timeout=0.05)
    assert result.node_status == {"first": "success", "second": "cancelled"}
    assert result.outputs == {"first": {"v": 1}}
    assert result.get_output("first", "v") == 1


def test_the_runtime_default_timeout_applies_and_a_run_timeout_overrides_it():
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", "await asyncio.sleep(0.1)\nresult = {}").build()
    assert run_with_default(wf, default=0.02).node_status == {"n": "cancelled"}
    assert run_with_default(wf, default=0.02, timeout=5).node_status == {"n": "success"}
    assert run_with_default(wf, default=5, timeout=0.02).node_status == {"n": "cancelled"}


def run_with_default(workflow, *, default, timeout=None):
    async def main():
        return await AsyncLocalRuntime(timeout=default).execute_workflow_async(workflow, timeout=timeout)

    return asyncio.run(main())


def test_a_run_within_its_timeout_succeeds():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "await asyncio.sleep(0)\nresult = {'v': 1}")
          .add_async_code("b", "await asyncio.sleep(0)\nresult = {'v': v}")
          .add_connection("a", "v", "b", "v")
          .build())
    result = run(wf, timeout=5)
    assert result.status == "success"
    assert result.outputs == {"a": {"v": 1}, "b": {"v": 1}}
    assert result.errors == {}


@pytest.mark.parametrize("concurrency", [1, None])
def test_the_node_and_run_timeouts_combine(concurrency):
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("short", "await asyncio.sleep(10)\nresult = {}", timeout=0.02)
          .add_async_code("long", "await asyncio.sleep(10)\nresult = {}")
          .build())
    result = run(wf, timeout=0.1, max_concurrency=concurrency)
    assert result.node_status == {"short": "failed", "long": "cancelled"}
    assert str(result.errors["short"]) == "node 'short' ran past its timeout of 0.02 s"
    assert str(result.errors["long"]) == "node 'long' was cancelled: workflow 'wf' ran past its timeout of 0.1 s"


@pytest.mark.parametrize(("seconds", "status"), [
    (1.0, {"first": "cancelled", "second": "skipped"}),  # exactly at the limit: late
    (0.5, {"first": "success", "second": "success"}),
])
def test_a_node_that_finishes_at_the_run_limit_has_timed_out_and_nothing_starts_after_it(manual_clock, seconds,
                                                                                           status):
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("first", "advance(seconds)\nresult = {'v': 1}")
          .add_async_code("second", "ran.append('second')\nresult = {}")
          .add_connection("first", "v", "second", "v")
          .build())
    ran: list[str] = []

    async def main():
        loop = asyncio.get_running_loop()

        def advance(by: float) -> None:  # node code that takes this long without yielding
            loop.now += by

        return await AsyncLocalRuntime(timeout=1).execute_workflow_async(
            wf, {"ran": ran, "seconds": seconds}, namespace={"advance": advance})

    result = manual_clock.run(main())
    assert result.node_status == status
    assert ran == (["second"] if status["second"] == "success" else [])
    if status["first"] == "cancelled":
        assert str(result.errors["first"]).startswith("node 'first' finished after the limit without yielding")
