"""The guide's workflow examples (Variable Passing, Workflow Execution, retry), run by the engine as written."""

import asyncio

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder


def execute(workflow, inputs=None, resources=None):
    return asyncio.run(AsyncLocalRuntime().execute_workflow_async(workflow, inputs, resources=resources))


def test_variable_passing_inputs_and_connected_variables():
    workflow = (
        AsyncWorkflowBuilder("test")
        .add_async_code("node1", "result = {'data': inputs_value}")  # ✅ inputs work
        .add_async_code("node2", "result = {'processed': data}")     # ✅ connected variables work
        .add_connection("node1", "data", "node2", "data")
        .build()
    )
    result = execute(workflow, {"inputs_value": [1, 2]})
    assert result.outputs == {"node1": {"data": [1, 2]}, "node2": {"processed": [1, 2]}}


def test_variable_passing_multi_connection():
    workflow = (
        AsyncWorkflowBuilder("advanced")
        .add_async_code("producer", "result = {'items': [1,2,3], 'meta': {'count': 3}}")
        .add_async_code("processor", "result = {'doubled': [x*2 for x in items], 'original_count': meta}")
        .add_connection("producer", "items", "processor", "items")
        .add_connection("producer", "meta", "processor", "meta")
        .build()
    )
    result = execute(workflow)
    assert result.get_output("processor") == {"doubled": [2, 4, 6], "original_count": {"count": 3}}


def test_variable_passing_troubleshooting_example():
    workflow = (
        AsyncWorkflowBuilder("test")
        .add_async_code("producer", "result = {'data': [1,2,3], 'count': 3}")
        .add_async_code("consumer", "result = {'doubled': [x*2 for x in data]}")
        .add_connection("producer", "data", "consumer", "data")
        .build()
    )
    assert execute(workflow).get_output("consumer", "doubled") == [2, 4, 6]


def test_dot_notation_for_nested_data():
    workflow = (
        AsyncWorkflowBuilder("nested")
        .add_async_code("source", "result = {'data': {'field': 'deep'}}")
        .add_async_code("sink", "result = {'got': field}")
        .add_connection("source", "result.data.field", "sink", "field")
        .build()
    )
    assert execute(workflow).get_output("sink", "got") == "deep"


def test_workflow_execution_example_reads_rows_from_the_db_resource():
    class Row(dict):
        pass

    class Database:
        async def fetch(self, query):
            assert query == "SELECT * FROM items"
            return [Row(id=1, name="a"), Row(id=2, name="b")]

    workflow = (
        AsyncWorkflowBuilder("test_workflow")
        .add_async_code("process_data", """
            db = await get_resource("db")
            data = await db.fetch("SELECT * FROM items")
            result = {"items": [dict(row) for row in data]}
        """)
        .build()
    )
    result = execute(workflow, {"param": "value"}, resources={"db": Database()})
    assert result.status == "success"
    assert result.get_output("process_data", "items") == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_retry_example_uses_asyncio_without_importing_it():
    class Flaky:
        def __init__(self):
            self.calls = 0

        async def operation(self):
            self.calls += 1
            if self.calls < 3:
                raise ConnectionError("fail")
            return {"success": True}

    workflow = (
        AsyncWorkflowBuilder("retry_test")
        .add_async_code("retry_operation", """
            flaky_service = await get_resource("flaky")
            max_attempts = 3

            for attempt in range(max_attempts):
                try:
                    result = await flaky_service.operation()
                    break
                except Exception as e:
                    if attempt == max_attempts - 1:
                        raise
                    await asyncio.sleep(0.1 * (2 ** attempt))  # Exponential backoff
        """)
        .build()
    )
    flaky = Flaky()
    result = execute(workflow, resources={"flaky": flaky})
    assert result.get_output("retry_operation") == {"success": True}
    assert flaky.calls == 3
