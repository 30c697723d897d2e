import asyncio

import pytest

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, OutputNotFoundError


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
