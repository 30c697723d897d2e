"""Scheduling: a node starts once all its inputs succeeded; ready nodes start in plan order."""

import asyncio

import pytest

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder


def run(workflow, inputs=None, **options):
    runtime_options = {k: options.pop(k) for k in ("max_concurrency",) if k in options}
    return asyncio.run(AsyncLocalRuntime(**runtime_options).execute_workflow_async(workflow, inputs, **options))


def join(left_code: str, right_code: str):
    return (AsyncWorkflowBuilder("wf")
            .add_async_code("left", left_code)
            .add_async_code("right", right_code)
            .add_async_code("join", "ran.append('join')\nresult = {'sum': a + b}")
            .add_connection("left", "v", "join", "a")
            .add_connection("right", "v", "join", "b")
            .build())


@pytest.mark.parametrize(("left", "right"), [
    ("raise ValueError('left failed')", "await asyncio.sleep(0.01)\nresult = {'v': 2}"),  # the failure comes first
    ("await asyncio.sleep(0.01)\nraise ValueError('left failed')", "result = {'v': 2}"),  # the failure comes last
], ids=["failure-first", "failure-last"])
def test_a_join_node_is_skipped_when_one_of_its_predecessors_failed(left, right):
    ran: list[str] = []
    result = run(join(left, right), {"ran": ran})
    assert ran == []
    assert result.node_status == {"left": "failed", "right": "success", "join": "skipped"}
    assert set(result.errors) == {"left"}


def test_a_join_node_runs_once_both_predecessors_succeeded():
    ran: list[str] = []
    result = run(join("result = {'v': 1}", "await asyncio.sleep(0.01)\nresult = {'v': 2}"), {"ran": ran})
    assert ran == ["join"]
    assert result.get_output("join", "sum") == 3


def test_a_join_node_is_skipped_when_a_predecessor_was_skipped():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("bad", "raise ValueError('down')")
          .add_async_code("middle", "result = {'v': v}")
          .add_async_code("good", "result = {'v': 1}")
          .add_async_code("join", "result = {'sum': a + b}")
          .add_connection("bad", "v", "middle", "v")
          .add_connection("middle", "v", "join", "a")
          .add_connection("good", "v", "join", "b")
          .build())
    result = run(wf)
    assert result.node_status == {"bad": "failed", "middle": "skipped", "good": "success", "join": "skipped"}


def test_two_connections_from_the_same_producer_wait_for_it_once():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("p", "result = {'a': 1, 'b': 2}")
          .add_async_code("c", "result = {'sum': a + b}")
          .add_connection("p", "a", "c", "a")
          .add_connection("p", "b", "c", "b")
          .build())
    assert run(wf).get_output("c", "sum") == 3


@pytest.mark.parametrize("concurrency", [1, 2, None])
def test_independent_nodes_start_in_plan_order(concurrency):
    builder = AsyncWorkflowBuilder("wf")
    for name in ("e", "b", "d", "a", "c"):
        builder.add_async_code(name, f"started.append('{name}')\nawait asyncio.sleep(0)\nresult = {{}}")
    wf = builder.build()
    started: list[str] = []
    run(wf, {"started": started}, max_concurrency=concurrency)
    assert wf.order == ("e", "b", "d", "a", "c")
    assert started == list(wf.order)


def test_successors_made_ready_together_start_in_plan_order():
    builder = AsyncWorkflowBuilder("wf").add_async_code("source", "result = {'v': 1}")
    for name in ("x", "y", "z"):
        builder.add_async_code(name, f"started.append('{name}')\nresult = {{}}")
    for name in ("z", "x", "y"):  # connections in another order than the plan
        builder.add_connection("source", "v", name, "v")
    wf = builder.build()
    started: list[str] = []
    run(wf, {"started": started}, max_concurrency=1)
    assert started == [n for n in wf.order if n != "source"]


def test_a_node_ready_later_but_earlier_in_the_plan_starts_first():
    # P, Q, R start in plan order (two at a time). Q finishes first: its successor Y is ready, but R comes
    # first in the plan and takes the free slot. P finishes next: X is ready, and X comes before Y in the
    # plan, so X takes the next free slot although Y has been waiting longer.
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("P", "await r_started.wait()\nresult = {'v': 1}")
          .add_async_code("Q", "result = {'v': 1}")
          .add_async_code("R", "started.append('R')\nr_started.set()\nawait release.wait()\nresult = {}")
          .add_async_code("X", "started.append('X')\nrelease.set()\nresult = {}")
          .add_async_code("Y", "started.append('Y')\nrelease.set()\nresult = {}")
          .add_connection("P", "v", "X", "v")
          .add_connection("Q", "v", "Y", "v")
          .build())
    assert wf.order == ("P", "Q", "R", "X", "Y")

    async def main():
        inputs = {"started": [], "r_started": asyncio.Event(), "release": asyncio.Event()}
        result = await AsyncLocalRuntime(max_concurrency=2).execute_workflow_async(wf, inputs)
        return result, inputs["started"]

    result, started = asyncio.run(main())
    assert result.status == "success"
    assert started == ["R", "X", "Y"]


def test_a_long_chain_after_a_failure_is_skipped_without_recursion():
    builder = AsyncWorkflowBuilder("wf").add_async_code("n0", "raise ValueError('first fails')")
    for i in range(1, 1500):
        builder.add_async_code(f"n{i}", "result = {'v': v}")
        builder.add_connection(f"n{i - 1}", "v", f"n{i}", "v")
    result = run(builder.build())
    assert result.node_status["n0"] == "failed"
    assert set(list(result.node_status.values())[1:]) == {"skipped"}
    assert len(result.node_status) == 1500


def test_nodes_are_run_at_most_max_concurrency_at_a_time_and_all_run():
    builder = AsyncWorkflowBuilder("wf")
    for i in range(5):
        builder.add_async_code(f"n{i}", """
            now[0] += 1
            peak[0] = max(peak[0], now[0])
            await asyncio.sleep(0)
            now[0] -= 1
            result = {}
        """)
    peak = [0]
    result = run(builder.build(), {"now": [0], "peak": peak}, max_concurrency=2)
    assert peak == [2]
    assert list(result.node_status.values()) == ["success"] * 5


def test_without_a_concurrency_bound_every_ready_node_runs_at_once():
    builder = AsyncWorkflowBuilder("wf")
    for i in range(12):
        builder.add_async_code(f"n{i}", """
            now[0] += 1
            peak[0] = max(peak[0], now[0])
            await asyncio.sleep(0)
            now[0] -= 1
            result = {}
        """)
    peak = [0]
    run(builder.build(), {"now": [0], "peak": peak}, max_concurrency=None)
    assert peak == [12]


def test_the_default_concurrency_bound_is_ten():
    assert AsyncLocalRuntime().max_concurrency == 10


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_max_concurrency_must_be_a_positive_int_or_none(bad):
    with pytest.raises(ValueError, match=rf"^max_concurrency must be a positive int or None, got {bad!r}$"):
        AsyncLocalRuntime(max_concurrency=bad)


def test_a_finished_node_starts_every_successor_it_made_ready_even_after_one_still_waiting():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("fast", "result = {'v': 1}")
          .add_async_code("slow", "await other_started.wait()\nresult = {'v': 2}")
          .add_async_code("join", "result = {'sum': a + b}")  # waits for fast and slow
          .add_async_code("other", "other_started.set()\nresult = {'v': v}")  # waits for fast only
          .add_connection("fast", "v", "join", "a")
          .add_connection("fast", "v", "other", "v")
          .add_connection("slow", "v", "join", "b")
          .build())

    async def main():
        runtime = AsyncLocalRuntime()
        async with asyncio.timeout(5):  # slow never finishes if other never starts
            return await runtime.execute_workflow_async(wf, {"other_started": asyncio.Event()})

    result = asyncio.run(main())
    assert result.status == "success"
    assert result.get_output("join", "sum") == 3


def test_a_partial_run_ignores_successors_outside_it():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("source", "result = {'v': 1}")
          .add_async_code("outside", "ran.append('outside')\nresult = {}")
          .add_async_code("target", "ran.append('target')\nresult = {'v': v}")
          .add_connection("source", "v", "outside", "v")  # the first successor is not part of the run
          .add_connection("source", "v", "target", "v")
          .build())
    ran: list[str] = []
    result = run(wf, {"ran": ran}, targets=["target"])
    assert ran == ["target"]
    assert result.node_status == {"source": "success", "target": "success"}
