"""The guide's examples outside "Testing Patterns"/"Best Practices": core components, resources, workflow
execution, performance, convergence, concurrency, retry, fixtures, variable passing, troubleshooting and
debugging, each as written (``kailash.`` -> ``kailash_nb.``), with the names the guide leaves out."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import ClassVar
from unittest.mock import AsyncMock, Mock, patch

import pytest

from kailash_nb.testing import (
    AsyncAssertions,
    AsyncTestUtils,
    AsyncWorkflowFixtures,
    AsyncWorkflowTestCase,
    use_virtual_time,
)
from kailash_nb.workflow import AsyncWorkflowBuilder

connection_string = "postgresql://test@localhost/test"


class AsyncPostgresDatabase:
    """Stands in for a real async database client: records that the test case closed it."""

    instances: ClassVar[list[AsyncPostgresDatabase]] = []

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.closed = False
        AsyncPostgresDatabase.instances.append(self)

    async def fetch(self, query: str) -> list[dict]:
        return [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]

    async def close(self) -> None:
        self.closed = True


# -- Core Components -----------------------------------------------------------------------------------

class MyWorkflowTest(AsyncWorkflowTestCase):
    __test__ = False  # the guide's skeleton: run and checked by the tests below, not collected on its own

    async def setUp(self):
        await super().setUp()
        # Set up test resources
        self.db = await self.create_test_resource("db", lambda: AsyncPostgresDatabase(connection_string))
        self.service = await self.create_test_resource("service", None, mock=True)

    async def test_my_workflow(self):
        # Test implementation
        pass


def test_guide_skeleton_runs_setup_then_the_test_and_cleans_up_after():
    AsyncPostgresDatabase.instances.clear()
    guide_body = MyWorkflowTest.test_my_workflow
    seen = []

    async def observed(self):
        seen.append({"service is a mock": self.is_mock("service"), "db open": not self.db.closed})
        await guide_body(self)

    with patch.object(MyWorkflowTest, "test_my_workflow", observed):
        case = MyWorkflowTest("test_my_workflow")
        outcome = case.run()
    assert outcome.testsRun == 1 and outcome.wasSuccessful(), outcome.errors + outcome.failures
    assert seen == [{"service is a mock": True, "db open": True}]  # the body ran once, after setUp
    (db,) = AsyncPostgresDatabase.instances
    assert case.db is db and db.closed  # the real resource was cleaned up automatically
    assert case.resource_names == ()


def test_guide_skeleton_reports_a_failing_test_body():
    async def failing(self):
        self.assert_resource_called("service", "fetch")

    with patch.object(MyWorkflowTest, "test_my_workflow", failing):
        outcome = MyWorkflowTest("test_my_workflow").run()
    ((_, failure),) = outcome.failures
    assert "expected service.fetch() to be called at least once, it was called 0 time(s)" in failure
    assert AsyncPostgresDatabase.instances[-1].closed  # cleaned up although the test failed


def test_guide_skeleton_works_as_a_context_manager():
    async def main():
        async with MyWorkflowTest() as test:
            await test.test_my_workflow()
            assert not test.db.closed
        return test

    test = asyncio.run(main())
    assert test.db.closed


class ResourceManagementTest(AsyncWorkflowTestCase):
    async def test_creating_test_resources(self):
        # Real resource (will be cleaned up automatically)
        database = await self.create_test_resource(
            "db",
            lambda: AsyncPostgresDatabase(connection_string)
        )

        # Mock resource
        mock_service = await self.create_test_resource(
            "service",
            lambda: None,
            mock=True
        )
        assert isinstance(database, AsyncPostgresDatabase) and not self.is_mock("db")
        assert self.is_mock("service") and isinstance(mock_service, AsyncMock)

    async def test_mock_resource_configuration(self):
        sample_data = [{"id": 1}, {"id": 2}]
        mock_service = await self.create_test_resource("service", lambda: None, mock=True)

        # Configure mock behavior
        mock_service.fetch.return_value = sample_data
        mock_service.post.side_effect = AsyncMock(return_value={"id": "123"})

        workflow = AsyncWorkflowBuilder("svc").add_async_code("use", """
            service = await get_resource("service")
            rows = await service.fetch()
            created = await service.post({"rows": len(rows)})
            result = {"rows": rows, "created": created}
        """).build()
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "use", {"id": "123"}, "created")
        self.assert_node_output(result, "use", sample_data, "rows")

        # Verify calls
        self.assert_resource_called("service", "fetch", times=1)


def test_real_resource_is_cleaned_up_after_the_test():
    AsyncPostgresDatabase.instances.clear()
    outcome = ResourceManagementTest("test_creating_test_resources").run()
    assert outcome.wasSuccessful(), outcome.errors + outcome.failures
    (db,) = AsyncPostgresDatabase.instances
    assert db.closed


class WorkflowExecutionTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        await self.create_test_resource("db", lambda: AsyncPostgresDatabase(connection_string))

    async def test_workflow_execution(self):
        expected_value = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
        workflow = (
            AsyncWorkflowBuilder("test_workflow")
            .add_async_code("process_data", """
                db = await get_resource("db")
                data = await db.fetch("SELECT * FROM items")
                result = {"items": [dict(row) for row in data]}
            """)
            .build()
        )

        # Execute with test environment
        result = await self.execute_workflow(workflow, {"param": "value"})

        # Assertions
        self.assert_workflow_success(result)
        self.assert_node_output(result, "process_data", expected_value, "items")


# -- Advanced Features -----------------------------------------------------------------------------------

def build_items_workflow():
    return (
        AsyncWorkflowBuilder("items")
        .add_async_code("load", "result = {'items': list(range(size))}")
        .add_async_code("total", "result = {'sum': sum(items), 'worker': worker_id}")
        .add_connection("load", "items", "total", "items")
        .build()
    )


class AdvancedFeaturesTest(AsyncWorkflowTestCase):
    @use_virtual_time(False)  # it measures real durations (on virtual time they are 0)
    async def test_performance_testing(self):
        workflow = build_items_workflow()
        inputs = {"size": 10, "worker_id": 0}

        # Time limit assertion
        async with self.assert_time_limit(2.0):
            result = await self.execute_workflow(workflow, inputs)

        # Performance metrics
        result = await AsyncAssertions.assert_performance(
            self.execute_workflow(workflow, inputs),
            max_time=1.0,
            min_throughput=100,
            operations=50
        )
        assert result.status == "success" and result.get_output("total", "sum") == 45  # the awaited result

        # The figures, for a chart or a report: same arguments, a PerformanceResult
        figures = await AsyncAssertions.measure_performance(self.execute_workflow(workflow, inputs),
                                                            max_time=1.0, operations=50)
        assert figures.operations == 50 and len(figures.samples) == 1
        assert figures.throughput == pytest.approx(50 / figures.time)

    async def test_convergence_testing(self):
        state = await self.create_test_resource("state", lambda: {"step": 0})
        optimization_workflow = AsyncWorkflowBuilder("optimization").add_async_code("optimizer", """
            state = await get_resource("state")
            state["step"] += 1
            result = {"current_value": 100 - 64 / 2 ** state["step"]}
        """).build()

        async def get_metric_value():
            result = await self.execute_workflow(optimization_workflow, {})
            return result.get_output("optimizer", "current_value")

        # Test convergence
        await AsyncAssertions.assert_converges(
            get_metric_value,
            tolerance=1.0,
            timeout=10.0,
            samples=20
        )
        assert 5 <= state["step"] < 20

    async def test_concurrent_testing(self):
        workflow = build_items_workflow()

        # Test concurrent workflow execution
        tasks = []
        for i in range(5):
            task = self.execute_workflow(workflow, {"worker_id": i, "size": i})
            tasks.append(task)

        results = await AsyncTestUtils.run_concurrent(*tasks)

        # All should succeed
        for result in results:
            self.assert_workflow_success(result)
        assert [r.get_output("total", "worker") for r in results] == [0, 1, 2, 3, 4]

    async def test_error_handling_and_retry(self):
        self.flaky_service = await self.create_test_resource("flaky", None, mock=True)

        # Test retry logic
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

        # Configure flaky service
        self.flaky_service.operation.side_effect = [
            ConnectionError("fail"),
            ConnectionError("fail"),
            {"success": True}  # Succeeds on 3rd attempt
        ]

        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "retry_operation", True, "success")
        calls = self.get_calls("flaky", "operation")
        assert [type(c.exception) for c in calls] == [ConnectionError, ConnectionError, type(None)]
        assert calls[-1].result == {"success": True}
        assert all(c.node == "retry_operation" for c in calls)


# -- Test Fixtures ---------------------------------------------------------------------------------------

class FixturesTest(AsyncWorkflowTestCase):
    async def test_http_client_mocking(self):
        # Create mock HTTP client
        http_client = AsyncWorkflowFixtures.create_mock_http_client()
        http_client.add_response("GET", "/api/data", {"results": [1, 2, 3]})
        http_client.add_response("POST", "/api/submit", {"id": "abc123"}, status=201)

        await self.create_test_resource("http", lambda: http_client, mock=True)

        workflow = AsyncWorkflowBuilder("http").add_async_code("sync_data", """
            http = await get_resource("http")
            async with http.get("/api/data") as resp:
                data = await resp.json()
            submitted = await http.post("/api/submit", json={"total": sum(data["results"])})
            result = {"status": submitted.status, "id": (await submitted.json())["id"]}
        """).build()
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "sync_data", {"status": 201, "id": "abc123"})
        assert http_client.get_calls("POST")[0].kwargs == {"json": {"total": 6}}

    async def test_cache_mocking(self):
        # Create mock cache
        cache = await AsyncWorkflowFixtures.create_test_cache()
        await cache.set("key", "value", ttl=60)

        await self.create_test_resource("cache", lambda: cache, mock=True)

        workflow = AsyncWorkflowBuilder("cached").add_async_code("read", """
            cache = await get_resource("cache")
            result = {"value": await cache.get("key"), "missing": await cache.exists("other")}
        """).build()
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "read", {"value": "value", "missing": False})
        self.assert_resource_called("cache", "get", times=1, with_args=("key",))

    async def test_file_system_testing(self):
        file_processor = AsyncWorkflowBuilder("files").add_async_code("process", """
            import csv, json, os
            with open(os.path.join(input_dir, "input.csv")) as f:
                people = list(csv.DictReader(f))
            with open(os.path.join(input_dir, "config.json")) as f:
                config = json.load(f)
            result = {"names": [p["name"] for p in people], "setting": config["setting"]}
        """).build()

        # Temporary directory
        async with AsyncWorkflowFixtures.temp_directory() as temp_dir:
            # Create test files
            await AsyncWorkflowFixtures.create_test_files(temp_dir, {
                "input.csv": "name,age\nJohn,30\nJane,25",
                "config.json": {"setting": "value"}
            })

            # Test workflow with files
            result = await self.execute_workflow(file_processor, {"input_dir": temp_dir})

        self.assert_node_output(result, "process", {"names": ["John", "Jane"], "setting": "value"})
        assert not Path(temp_dir).exists()  # noqa: ASYNC240 - a check, not I/O worth a thread


# -- Variable passing ------------------------------------------------------------------------------------

class VariablePassingTest(AsyncWorkflowTestCase):
    async def test_validated_patterns(self):
        # ✅ Validated patterns with comprehensive test coverage:
        workflow = (
            AsyncWorkflowBuilder("test")
            .add_async_code("node1", "result = {'data': inputs_value}")  # ✅ inputs work
            .add_async_code("node2", "result = {'processed': data}")     # ✅ connected variables work
            .add_connection("node1", "data", "node2", "data")
            .build()
        )
        result = await self.execute_workflow(workflow, {"inputs_value": [1, 2]})
        self.assert_node_output(result, "node2", [1, 2], "processed")

        # ✅ Complex multi-connection workflows tested under load:
        workflow = (
            AsyncWorkflowBuilder("advanced")
            .add_async_code("producer", "result = {'items': [1,2,3], 'meta': {'count': 3}}")
            .add_async_code("processor", "result = {'doubled': [x*2 for x in items], 'original_count': meta}")
            .add_connection("producer", "items", "processor", "items")
            .add_connection("producer", "meta", "processor", "meta")
            .build()
        )
        results = await AsyncTestUtils.run_concurrent(*[self.execute_workflow(workflow) for _ in range(50)])
        for result in results:
            self.assert_node_output(result, "processor", [2, 4, 6], "doubled")
            self.assert_node_output(result, "processor", 3, "original_count.count")

    async def test_dot_notation_and_result_prefix(self):
        workflow = (
            AsyncWorkflowBuilder("test")
            .add_async_code("producer", "result = {'data': {'field': 42}}")
            .add_async_code("consumer", "result = {'value': value}")
            .add_connection("producer", "result.data.field", "consumer", "value")
            .build()
        )
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "consumer", 42, "value")

    async def test_troubleshooting_pattern(self):
        # ✅ These patterns now work perfectly:
        workflow = (
            AsyncWorkflowBuilder("test")
            .add_async_code("producer", "result = {'data': [1,2,3], 'count': 3}")
            .add_async_code("consumer", "result = {'doubled': [x*2 for x in data]}")
            .add_connection("producer", "data", "consumer", "data")
            .build()
        )
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "consumer", [2, 4, 6], "doubled")


# -- Troubleshooting and Debugging ---------------------------------------------------------------------------

class TroubleshootingTest(AsyncWorkflowTestCase):
    async def test_mock_not_working(self):
        mock_http = await self.create_test_resource("http", lambda: Mock(), mock=True)
        # Configure AFTER creation
        mock_response = AsyncMock()
        mock_response.json = AsyncMock(return_value={"data": "test"})
        mock_http.get.return_value = mock_response

        workflow = AsyncWorkflowBuilder("fetch").add_async_code("fetch", """
            http = await get_resource("http")
            resp = await http.get("https://api.example.com/data")
            data = await resp.json()
            result = {"data": data["data"]}
        """).build()
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "fetch", "test", "data")
        self.assert_resource_called("http", "get", times=1, with_args=("https://api.example.com/data",))
        assert mock_http.get.call_count == 1  # the Mock itself saw the call too


class DebuggingTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        self.mock_db = await self.create_test_resource("db", None, mock=True)
        self.mock_db.fetch.return_value = [{"id": 1}]
        self.mock_http = await self.create_test_resource(
            "http", AsyncWorkflowFixtures.create_mock_http_client, mock=True)
        self.mock_http.add_response("GET", "/status", {"ok": True})

    @use_virtual_time(False)  # it checks that the run took some real time
    async def test_debugging(self):
        workflow = AsyncWorkflowBuilder("debug").add_async_code("probe", """
            db = await get_resource("db")
            http = await get_resource("http")
            rows = await db.fetch("SELECT 1")
            status = await (await http.get("/status")).json()
            result = {"rows": rows, "status": status}
        """).build()
        inputs = {}

        # Enable debug logging
        import logging
        logging.getLogger('kailash_nb.testing').setLevel(logging.DEBUG)

        # Check resource calls
        print(f"DB calls: {self.mock_db.get_calls()}")
        print(f"HTTP calls: {self.mock_http.get_calls()}")

        # Inspect workflow results
        result = await self.execute_workflow(workflow, inputs)
        print(f"Outputs: {result.outputs}")
        print(f"Execution time: {result.execution_time}")

        (db_call,) = self.mock_db.get_calls()
        assert (db_call.method, db_call.args, db_call.node) == ("fetch", ("SELECT 1",), "probe")
        (http_call,) = self.mock_http.get_calls()
        assert (http_call.method, http_call.path, http_call.status) == ("GET", "/status", 200)
        assert result.execution_time > 0

    async def tearDown(self):
        logging.getLogger("kailash_nb.testing").setLevel(logging.NOTSET)
        await super().tearDown()
