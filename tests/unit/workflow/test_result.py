import asyncio
import time

import pytest

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, NodeTimeoutError, OutputNotFoundError


@pytest.fixture(scope="module")
def result():
    wf = (AsyncWorkflowBuilder("shop")
          .add_async_code("load", "result = {'order': {'id': 7, 'lines': [{'sku': 'a'}]}}")
          .add_async_code("charge", "raise ConnectionError('payment service down')")
          .add_async_code("email", "result = {}")
          .add_connection("charge", "id", "email", "charge_id")
          .build())
    return asyncio.run(AsyncLocalRuntime().execute_workflow_async(wf))


def test_get_output_with_dotted_keys(result):
    assert result.get_output("load", "order.id") == 7
    assert result.get_output("load", "order.lines.0.sku") == "a"
    assert result.get_output("load") == {"order": {"id": 7, "lines": [{"sku": "a"}]}}


def test_get_output_missing_key_lists_what_exists(result):
    expected = r"node 'load' produced no 'order.total'; keys under 'order': 'id', 'lines'"
    with pytest.raises(OutputNotFoundError, match=expected):
        result.get_output("load", "order.total")


def test_get_output_of_unknown_node_lists_nodes(result):
    expected = r"workflow 'shop' has no node 'lod'; nodes: 'load', 'charge', 'email'"
    with pytest.raises(OutputNotFoundError, match=expected):
        result.get_output("lod")


def test_get_output_of_failed_or_skipped_node_says_why(result):
    with pytest.raises(OutputNotFoundError, match=r"node 'charge' has no output: it failed: ConnectionError: payment"):
        result.get_output("charge")
    skipped = r"node 'email' has no output: it was skipped because node 'charge' failed"
    with pytest.raises(OutputNotFoundError, match=skipped):
        result.get_output("email")


def test_summary_and_repr_are_stable(result):
    assert result.summary() == (
        "workflow 'shop': failed\n"
        "  load: success\n"
        "  charge: failed (ConnectionError: payment service down)\n"
        "  email: skipped"
    )
    assert repr(result) == "WorkflowResult('shop', status='failed', nodes: 1 failed, 1 skipped, 1 success)"


def test_raise_for_status_reraises_the_original_error(result):
    with pytest.raises(ConnectionError, match="payment service down") as info:
        result.raise_for_status()
    assert info.value is result.errors["charge"]


def test_get_output_of_a_node_outside_a_partial_run_says_so():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "result = {}")
          .add_async_code("b", "result = {}")
          .build())
    result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(wf, targets=["a"]))
    with pytest.raises(OutputNotFoundError, match=r"node 'b' has no output: it was not part of this run"):
        result.get_output("b")


def run(workflow, **options):
    runtime_options = {k: options.pop(k) for k in ("max_concurrency",) if k in options}
    return asyncio.run(AsyncLocalRuntime(**runtime_options).execute_workflow_async(workflow, **options))


def test_raise_for_status_raises_the_first_failed_node_in_plan_order_and_notes_the_others():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "await asyncio.sleep(0.02)\nraise KeyError('a')")
          .add_async_code("b", "raise ValueError('b')")
          .add_async_code("c", "await asyncio.sleep(0.01)\nraise OSError('c')")
          .build())
    result = run(wf)
    assert list(result.errors) == ["b", "c", "a"]  # in the order they failed
    assert result.failed_nodes == ("a", "b", "c")
    with pytest.raises(KeyError) as info:
        result.raise_for_status()
    assert info.value.__notes__ == ["workflow 'wf' also failed in node 'b': ValueError: b; node 'c': OSError: c"]


def test_raise_for_status_after_a_run_timeout_raises_the_timeout():
    wf = AsyncWorkflowBuilder("wf").add_async_code("hang", "await asyncio.sleep(10)\nresult = {}").build()
    result = run(wf, timeout=0.02)
    assert result.failed_nodes == ()
    with pytest.raises(NodeTimeoutError, match=r"^node 'hang' was cancelled: workflow 'wf' ran past its timeout"):
        result.raise_for_status()


def test_raise_for_status_returns_the_result_when_every_node_succeeded():
    result = run(AsyncWorkflowBuilder("wf").add_async_code("a", "result = {}").build())
    assert result.raise_for_status() is result
    assert result.ok


def test_repr_counts_nodes_by_status():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "result = {}")
          .add_async_code("b", "result = {}")
          .add_async_code("c", "raise ValueError('c')")
          .build())
    assert repr(run(wf)) == "WorkflowResult('wf', status='failed', nodes: 1 failed, 2 success)"


def test_get_output_of_a_node_timed_out_by_the_run_says_it_was_cancelled():
    wf = AsyncWorkflowBuilder("wf").add_async_code("hang", "await asyncio.sleep(10)\nresult = {}").build()
    with pytest.raises(OutputNotFoundError) as info:
        run(wf, timeout=0.02).get_output("hang")
    assert str(info.value) == ("node 'hang' has no output: it was cancelled: NodeTimeoutError: node 'hang' was "
                               "cancelled: workflow 'wf' ran past its timeout of 0.02 s")


def test_get_output_of_a_skipped_node_names_every_predecessor_that_did_not_succeed():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("ok", "result = {'v': 1}")
          .add_async_code("bad", "raise ValueError('bad')")
          .add_async_code("hang", "await asyncio.sleep(10)\nresult = {'v': 1}")
          .add_async_code("after_hang", "result = {'v': v}")
          .add_async_code("sink", "result = {}")
          .add_connection("ok", "v", "sink", "a")
          .add_connection("bad", "v", "sink", "b")
          .add_connection("hang", "v", "after_hang", "v")
          .add_connection("after_hang", "v", "sink", "c")
          .build())
    result = run(wf, timeout=0.05)
    assert result.node_status == {"ok": "success", "bad": "failed", "hang": "cancelled", "after_hang": "skipped",
                                  "sink": "skipped"}
    with pytest.raises(OutputNotFoundError) as info:
        result.get_output("sink")
    assert str(info.value) == ("node 'sink' has no output: it was skipped because node 'bad' failed and "
                               "node 'after_hang' was skipped")
    with pytest.raises(OutputNotFoundError) as info:
        result.get_output("after_hang")
    assert str(info.value) == "node 'after_hang' has no output: it was skipped because node 'hang' was cancelled"


def test_get_output_of_a_node_the_run_had_no_time_to_start_says_so():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("first", "block(0.1)\nresult = {}")
          .add_async_code("second", "result = {}")
          .build())

    async def main():
        return await AsyncLocalRuntime(max_concurrency=1).execute_workflow_async(
            wf, namespace={"block": time.sleep}, timeout=0.05)

    result = asyncio.run(main())
    assert result.node_status == {"first": "cancelled", "second": "skipped"}
    with pytest.raises(OutputNotFoundError) as info:
        result.get_output("second")
    assert str(info.value) == "node 'second' has no output: it was skipped because the run ended first"


def test_get_output_of_a_node_skipped_in_a_partial_run_ignores_reused_predecessors():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("left", "result = {'v': 1}")
          .add_async_code("right", "raise ValueError('right')")
          .add_async_code("sink", "result = {'sum': a + b}")
          .add_connection("left", "v", "sink", "a")
          .add_connection("right", "v", "sink", "b")
          .build())
    result = run(wf, targets=["sink"], reuse={"left": {"v": 1}})
    assert result.node_status == {"right": "failed", "sink": "skipped"}
    with pytest.raises(OutputNotFoundError) as info:
        result.get_output("sink")
    assert str(info.value) == "node 'sink' has no output: it was skipped because node 'right' failed"
