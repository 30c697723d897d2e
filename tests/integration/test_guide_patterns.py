"""The guide's "Testing Patterns" and "Best Practices" examples, as written (``kailash.`` -> ``kailash_nb.``).

The guide leaves out the ``build_*_workflow`` functions and a few names (``sample_records``,
``create_db``...); they are written here to do what each test expects of them.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from kailash_nb.testing import AsyncTestUtils, AsyncWorkflowFixtures, AsyncWorkflowTestCase
from kailash_nb.workflow import AsyncWorkflowBuilder

sample_records = [
    {"id": 1, "name": "widget", "amount": "10.50"},
    {"id": 2, "name": "gadget", "amount": "3.25"},
    {"id": 3, "name": "doohickey", "amount": "7.00"},
]


def build_etl_workflow():
    """extract rows for ``date`` from "source", convert amounts to cents, bulk insert into "warehouse"."""
    return (
        AsyncWorkflowBuilder("daily_etl")
        .add_async_code("extract", """
            source = await get_resource("source")
            records = await source.fetch("SELECT * FROM sales WHERE day = $1", date)
            result = {"records": records, "record_count": len(records)}
        """)
        .add_async_code("transform", """
            processed = [
                {"id": r["id"], "name": r["name"].title(), "cents": round(float(r["amount"]) * 100), "day": date}
                for r in records
            ]
            result = {"processed_records": processed}
        """)
        .add_async_code("load", """
            warehouse = await get_resource("warehouse")
            await warehouse.bulk_insert("daily_sales", processed_records)
            result = {"loaded": len(processed_records)}
        """)
        .add_connection("extract", "records", "transform", "records")
        .add_connection("transform", "processed_records", "load", "processed_records")
        .build()
    )


def build_checkout_workflow():
    """charge the order total in cents through "payments", then send a receipt through "email"."""
    return (
        AsyncWorkflowBuilder("checkout")
        .add_async_code("price", """
            amount = round(sum(item["price"] for item in items) * 100)
            result = {"amount": amount}
        """)
        .add_async_code("charge", """
            payments = await get_resource("payments")
            resp = await payments.post("/charges", json={"user_id": user_id, "amount": amount})
            resp.raise_for_status()
            result = {"charge": await resp.json()}
        """)
        .add_async_code("notify", """
            email = await get_resource("email")
            async with email.post("/send", json={"user_id": user_id, "template": "receipt"}) as resp:
                sent = await resp.json()
            result = {"email_id": sent["id"], "charge_status": charge["status"]}
        """)
        .add_connection("price", "amount", "charge", "amount")
        .add_connection("charge", "charge", "notify", "charge")
        .build()
    )


def build_monitoring_workflow(threshold: float = 90.0):
    """read metrics from "metrics"; post one alert per metric above ``threshold`` to "alerts"."""
    return (
        AsyncWorkflowBuilder("monitoring")
        .add_async_code("collect", """
            metrics = await get_resource("metrics")
            rows = await metrics.fetch("SELECT metric, value FROM latest_metrics")
            result = {"metrics": {row["metric"]: row["value"] for row in rows}}
        """)
        .add_async_code("alerting", f"""
            alerts = await get_resource("alerts")
            sent = []
            for metric, value in sorted(metrics.items()):
                if value > {threshold}:
                    resp = await alerts.post("/alerts", json={{"metric": metric, "value": value}})
                    sent.append((await resp.json())["alert_id"])
            result = {{"alerts_sent": len(sent), "alert_ids": sent}}
        """)
        .add_connection("collect", "metrics", "alerting", "metrics")
        .build()
    )


# -- Testing Patterns ----------------------------------------------------------------------------------

class DataPipelineTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()

        # Mock source database
        self.source_db = await self.create_test_resource("source", None, mock=True)
        self.source_db.fetch.return_value = sample_records

        # Mock target warehouse
        self.warehouse = await self.create_test_resource("warehouse", None, mock=True)

    async def test_daily_etl(self):
        workflow = build_etl_workflow()
        result = await self.execute_workflow(workflow, {"date": "2023-01-01"})

        # Verify each stage
        self.assert_workflow_success(result)

        # Check extraction
        extract_result = result.get_output("extract", "record_count")
        assert extract_result > 0

        # Check transformation
        transform_result = result.get_output("transform", "processed_records")
        assert len(transform_result) == extract_result

        # Check loading
        self.assert_resource_called("warehouse", "bulk_insert", times=1)

    async def test_daily_etl_loads_what_it_transformed(self):
        result = await self.execute_workflow(build_etl_workflow(), {"date": "2023-01-01"})
        (insert,) = self.get_calls("warehouse", "bulk_insert")
        assert insert.args[0] == "daily_sales"
        assert insert.args[1] == result.get_output("transform", "processed_records")
        assert [r["cents"] for r in insert.args[1]] == [1050, 325, 700]
        assert insert.node == "load"
        self.assert_resource_called("source", "fetch", times=1,
                                    with_args=("SELECT * FROM sales WHERE day = $1", "2023-01-01"))


class APIIntegrationTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()

        # Mock external services
        self.payment_service = AsyncWorkflowFixtures.create_mock_http_client()
        self.payment_service.add_response("POST", "/charges", {"status": "success"})

        self.email_service = AsyncWorkflowFixtures.create_mock_http_client()
        self.email_service.add_response("POST", "/send", {"id": "email_123"})

        await self.create_test_resource("payments", lambda: self.payment_service, mock=True)
        await self.create_test_resource("email", lambda: self.email_service, mock=True)

    async def test_checkout_flow(self):
        workflow = build_checkout_workflow()
        result = await self.execute_workflow(workflow, {
            "user_id": 123,
            "items": [{"id": 1, "price": 99.99}]
        })

        self.assert_workflow_success(result)

        # Verify service calls
        self.assert_resource_called("payments", "post", times=1)
        self.assert_resource_called("email", "post", times=1)

        # Check payment data
        payment_calls = self.payment_service.get_calls("POST", "/charges")
        assert payment_calls[0].kwargs["json"]["amount"] == 9999  # cents

    async def test_checkout_fails_when_payment_is_declined(self):
        self.payment_service.add_response("POST", "/charges", {"status": "declined"}, status=402)
        # responses queue per route: the first checkout gets "success", later ones the 402
        first = await self.execute_workflow(build_checkout_workflow(), {"user_id": 1, "items": []})
        self.assert_workflow_success(first)

        from kailash_nb.testing import HttpStatusError

        with pytest.raises(HttpStatusError, match="402 error for POST /charges"):
            await self.execute_workflow(build_checkout_workflow(), {"user_id": 1, "items": []})
        self.assert_resource_called("email", "post", times=1)  # only the first checkout sent a receipt


class MonitoringTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()

        # Mock metrics database
        self.metrics_db = await self.create_test_resource("metrics", None, mock=True)

        # Mock alert manager
        self.alert_manager = AsyncWorkflowFixtures.create_mock_http_client()
        self.alert_manager.add_response("POST", "/alerts", {"alert_id": "alert_123"})

        await self.create_test_resource("alerts", lambda: self.alert_manager, mock=True)

    async def test_alert_on_high_cpu(self):
        # Configure high CPU metrics
        self.metrics_db.fetch.return_value = [
            {"metric": "cpu_usage", "value": 95.0}
        ]

        workflow = build_monitoring_workflow()
        result = await self.execute_workflow(workflow, {})

        self.assert_workflow_success(result)

        # Should trigger alert
        alert_result = result.get_output("alerting", "alerts_sent")
        assert alert_result > 0

        self.assert_resource_called("alerts", "post", times=1)

    async def test_no_alert_on_normal_cpu(self):
        self.metrics_db.fetch.return_value = [{"metric": "cpu_usage", "value": 40.0}]
        result = await self.execute_workflow(build_monitoring_workflow(), {})
        self.assert_node_output(result, "alerting", 0, "alerts_sent")
        self.assert_resource_not_called("alerts", "post")


# -- Best Practices: Test Organization ---------------------------------------------------------------

# Use descriptive test class names
class UserRegistrationWorkflowTest(AsyncWorkflowTestCase):
    pass

class PaymentProcessingIntegrationTest(AsyncWorkflowTestCase):
    pass

class DataPipelinePerformanceTest(AsyncWorkflowTestCase):
    pass


# -- Best Practices: Resource Management -------------------------------------------------------------

class FakeDatabase:
    """What ``create_db`` gives: an async database whose ``close`` the test case must call."""

    closed: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.rows: list[dict] = []

    async def insert(self, row: dict) -> int:
        self.rows.append(row)
        return len(self.rows)

    async def close(self) -> None:
        FakeDatabase.closed.append("db")


async def create_db():
    return FakeDatabase()


def create_cache():
    return AsyncWorkflowFixtures.create_test_cache()  # an awaitable: create_test_resource awaits it


class ResourceManagementPracticeTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()

        # Create resources in dependency order
        self.database = await self.create_test_resource("db", create_db)
        self.cache = await self.create_test_resource("cache", create_cache)

        # Configure mocks after creation
        if self.is_mock("external_api"):
            self.configure_api_mocks()

    def configure_api_mocks(self):
        """Separate method for mock configuration."""
        api = self.get_resource("external_api")
        api.add_response("GET", "/health", {"status": "ok"})

    async def test_resources_are_real_and_ready(self):
        assert isinstance(self.database, FakeDatabase)
        assert not self.is_mock("db")
        assert not self.is_mock("external_api")  # never created: setUp skipped configure_api_mocks
        await self.cache.set("user:1", {"name": "Ada"}, ttl=60)
        assert await self.cache.get("user:1") == {"name": "Ada"}


class ResourceManagementWithApiMockTest(ResourceManagementPracticeTest):
    """The same setUp when a mock ``external_api`` exists first: ``configure_api_mocks`` runs."""

    async def setUp(self):
        await self.create_test_resource("external_api", AsyncWorkflowFixtures.create_mock_http_client, mock=True)
        await super().setUp()

    async def test_resources_are_real_and_ready(self):
        workflow = AsyncWorkflowBuilder("health").add_async_code("check", """
            api = await get_resource("external_api")
            resp = await api.get("/health")
            result = await resp.json()
        """).build()
        result = await self.execute_workflow(workflow)
        self.assert_node_output(result, "check", "ok", "status")
        self.assert_resource_called("external_api", "get", times=1, with_args=["/health"])


def test_resource_management_cleans_up_the_database():
    FakeDatabase.closed.clear()
    outcome = ResourceManagementPracticeTest("test_resources_are_real_and_ready").run()
    assert outcome.wasSuccessful(), outcome.errors + outcome.failures
    assert FakeDatabase.closed == ["db"]


# -- Best Practices: Assertions and Performance Testing ----------------------------------------------

def build_validation_workflow():
    return (
        AsyncWorkflowBuilder("registration")
        .add_async_code("validator", """
            if "email" not in user or "@" not in user["email"]:
                raise ValueError(f"Invalid input: no valid email in {sorted(user)}")
            result = {"is_valid": True, "user": user}
        """)
        .add_async_code("store", """
            db = await get_resource("db")
            user_id = await db.insert("users", user)
            result = {"user_id": user_id}
        """)
        .add_connection("validator", "user", "store", "user")
        .build()
    )


class AssertionsPracticeTest(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        self.db = await self.create_test_resource("db", None, mock=True)
        self.db.insert.return_value = 7

    async def test_specific_assertions_and_error_conditions(self):
        workflow = build_validation_workflow()
        result = await self.execute_workflow(workflow, {"user": {"email": "ada@example.com"}})

        # Use specific assertions
        self.assert_workflow_success(result)
        self.assert_node_output(result, "validator", True, "is_valid")
        self.assert_resource_called("db", "insert", times=1)

        # Test error conditions
        with pytest.raises(ValueError, match="Invalid input"):
            await self.execute_workflow(workflow, {"user": {"invalid": "data"}})


def build_complex_workflow(width: int = 5):
    """source -> ``width`` parallel square nodes -> total: a fan-out/fan-in workflow."""
    builder = AsyncWorkflowBuilder("complex").add_async_code("source", """
        await asyncio.sleep(0.01)
        result = {"values": list(range(batch * 10, batch * 10 + 10))}
    """)
    parts = ", ".join(f"p{i}" for i in range(width))
    builder.add_async_code("total", f"result = {{'sum': sum(sum(p) for p in [{parts}])}}")
    for i in range(width):
        builder.add_async_code(f"square_{i}", f"""
            await asyncio.sleep(0.01)
            result = {{"squares": [v * v for v in values if v % {width} == {i}]}}
        """)
        builder.add_connection("source", "values", f"square_{i}", "values")
        builder.add_connection(f"square_{i}", "squares", "total", f"p{i}")
    return builder.build()


class PerformancePracticeTest(AsyncWorkflowTestCase):
    async def test_time_limit_and_load(self):
        complex_workflow = build_complex_workflow()
        workflow = complex_workflow
        inputs = {"batch": 1}

        # Set realistic performance expectations
        async with self.assert_time_limit(5.0):  # Allow reasonable time
            result = await self.execute_workflow(complex_workflow, inputs)

        # Test under load
        concurrent_results = await AsyncTestUtils.run_concurrent(
            *[self.execute_workflow(workflow, {"batch": i}) for i in range(10)]
        )

        self.assert_node_output(result, "total", sum(v * v for v in range(10, 20)), "sum")
        assert [r.get_output("total", "sum") for r in concurrent_results] == [
            sum(v * v for v in range(i * 10, i * 10 + 10)) for i in range(10)
        ]
