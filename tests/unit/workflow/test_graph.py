"""Connections as paths into a producer's result, and the plan a built workflow carries."""

import asyncio

import pytest

from kailash_nb.workflow import (
    AsyncLocalRuntime,
    AsyncWorkflowBuilder,
    ConnectionPathError,
    OutputNotFoundError,
    WorkflowResult,
)
from kailash_nb.workflow.graph import resolve_path

OUTPUT = {"items": [10, 20, 30], "data": {"field": 1, "rows": [{"id": 7}], "empty": []}, "name": "x"}


@pytest.mark.parametrize(("path", "value"), [
    ("items", [10, 20, 30]),
    ("items.0", 10),
    ("items.2", 30),
    ("items.-1", 30),
    ("items.-3", 10),
    ("data.rows.0.id", 7),
    ("result.data.field", 1),
    ("result", OUTPUT),
])
def test_a_path_reaches_keys_and_list_items(path, value):
    assert resolve_path(OUTPUT, path, node="p") == value


@pytest.mark.parametrize(("path", "message"), [
    ("items.3", "node 'p' produced no 'items.3'; keys under 'items': indexes 0..2"),
    ("items.-4", "node 'p' produced no 'items.-4'; keys under 'items': indexes 0..2"),
    ("items.first", "node 'p' produced no 'items.first'; keys under 'items': indexes 0..2"),
    ("items.--1", "node 'p' produced no 'items.--1'; keys under 'items': indexes 0..2"),
    ("items.1_0", "node 'p' produced no 'items.1_0'; keys under 'items': indexes 0..2"),
    ("items.²", "node 'p' produced no 'items.²'; keys under 'items': indexes 0..2"),
    ("data.empty.0", "node 'p' produced no 'data.empty.0'; keys under 'data.empty': none (empty list)"),
    ("data.rows.0.name", "node 'p' produced no 'data.rows.0.name'; keys under 'data.rows.0': 'id'"),
    ("name.first", "node 'p' produced no 'name.first'; keys under 'name': none: it is a str, not a dict"),
    ("missing", "node 'p' produced no 'missing'; keys: 'items', 'data', 'name'"),
    ("missing.deeper", "node 'p' produced no 'missing' of path 'missing.deeper'; keys: 'items', 'data', 'name'"),
    ("result.items.5", "node 'p' produced no 'items.5' of path 'result.items.5'; keys under 'items': indexes 0..2"),
])
def test_a_missing_step_names_the_path_and_what_exists(path, message):
    with pytest.raises(ConnectionPathError) as info:
        resolve_path(OUTPUT, path, node="p")
    assert str(info.value) == message


def test_an_empty_output_has_no_keys():
    with pytest.raises(ConnectionPathError, match=r"^node 'p' produced no 'a'; keys: none$"):
        resolve_path({}, "a", node="p")


def test_a_tuple_is_indexed_like_a_list():
    assert resolve_path({"t": (1, 2)}, "t.1", node="p") == 2


def run(workflow):
    return asyncio.run(AsyncLocalRuntime().execute_workflow_async(workflow))


def test_an_index_past_the_end_of_a_list_fails_the_consumer_naming_the_indexes():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("producer", "result = {'items': [1, 2, 3]}")
          .add_async_code("consumer", "result = {'v': v}")
          .add_connection("producer", "items.3", "consumer", "v")
          .build())
    result = run(wf)
    assert result.node_status == {"producer": "success", "consumer": "failed"}
    error = result.errors["consumer"]
    assert type(error) is ConnectionPathError
    assert str(error) == ("connection producer.items.3 -> consumer.v: node 'producer' produced no 'items.3'; "
                          "keys under 'items': indexes 0..2")


def test_get_output_past_the_end_of_a_list_names_the_path_and_the_indexes():
    wf = AsyncWorkflowBuilder("wf").add_async_code("producer", "result = {'items': [1, 2, 3]}").build()
    result: WorkflowResult = run(wf)
    assert result.get_output("producer", "items.2") == 3
    with pytest.raises(OutputNotFoundError) as info:
        result.get_output("producer", "items.3")
    assert str(info.value) == "node 'producer' produced no 'items.3'; keys under 'items': indexes 0..2"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_built_workflow_knows_each_node_s_plan_position():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("c", "result = {}")
          .add_async_code("a", "result = {}")
          .add_async_code("b", "result = {}")
          .add_connection("a", "v", "c", "v")
          .build())
    assert dict(wf.rank) == {node: position for position, node in enumerate(wf.order)}
    assert wf.order.index("a") < wf.order.index("c")
    assert wf.roots == tuple(n for n in wf.order if n in {"a", "b"})
    assert dict(wf.indegree) == {"c": 1, "a": 0, "b": 0}
    assert dict(wf.predecessors) == {"c": ("a",), "a": (), "b": ()}
    assert dict(wf.successors) == {"c": (), "a": ("c",), "b": ()}


def test_result_prefix_with_one_key_reaches_that_key():
    assert resolve_path(OUTPUT, "result.items", node="p") == [10, 20, 30]


def test_a_workflow_repr_shows_nodes_in_plan_order_and_connections():
    wf = (AsyncWorkflowBuilder("etl")
          .add_async_code("load", "result = {}")
          .add_async_code("extract", "result = {}")
          .add_async_code("report", "result = {}")
          .add_connection("extract", "rows", "load", "rows")
          .add_connection("load", "meta.count", "report", "count")
          .build())
    assert repr(wf) == ("Workflow('etl', nodes=[extract, load, report], "
                        "connections=[extract.rows->load.rows, load.meta.count->report.count])")
