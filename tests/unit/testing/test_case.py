"""AsyncWorkflowTestCase: lifecycle on one loop, resources and their cleanup, workflow runs, assertions."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import traceback
import unittest
import warnings
from unittest.mock import Mock

import pytest

from kailash_nb.testing import AsyncWorkflowFixtures, AsyncWorkflowTestCase, use_virtual_time
from kailash_nb.workflow import (
    AsyncWorkflowBuilder,
    InvalidTimeoutError,
    ResourceCleanupError,
    ResourceNotFoundError,
)


def run_case(case_class: type[unittest.TestCase], *names: str) -> unittest.TestResult:
    suite = unittest.TestSuite(case_class(n) for n in names) if names else \
        unittest.defaultTestLoader.loadTestsFromTestCase(case_class)
    result = unittest.TestResult()
    suite.run(result)
    return result


def failing_workflow():
    return (
        AsyncWorkflowBuilder("failing")
        .add_async_code("ok", "result = {'value': 1}")
        .add_async_code("check", """
            if value < 10:
                raise ValueError(f"value {value} is too small")
            result = {}
        """)
        .add_async_code("after", "result = {}")
        .add_connection("ok", "value", "check", "value")
        .add_connection("check", "value", "after", "value")
        .build()
    )


OK_WORKFLOW = (
    AsyncWorkflowBuilder("ok")
    .add_async_code("producer", "result = {'data': {'items': [1, 2], 'name': 'x'}}")
    .build()
)


class Closeable:
    """A real resource that logs its cleanup; ``how`` picks the cleanup method it has."""

    def __new__(cls, name: str, log: list[str], *, how: str = "aclose", fail: bool = False):
        kind = {"aclose": _AsyncAclose, "close": _SyncClose, "cleanup": _AsyncCleanup}[how]
        instance = object.__new__(kind)
        instance.name, instance.log, instance.fail = name, log, fail
        return instance

    def _close(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} would not close")


class _AsyncAclose(Closeable):
    async def aclose(self) -> None:
        self._close()


class _SyncClose(Closeable):
    def close(self) -> None:
        self._close()


class _AsyncCleanup(Closeable):
    async def cleanup(self) -> None:
        self._close()


# -- lifecycle -------------------------------------------------------------------------------------------

def test_setup_test_and_teardown_share_one_loop_and_each_test_gets_a_fresh_instance():
    seen: list[tuple[str, int, int]] = []

    class Lifecycle(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            self.loop = asyncio.get_running_loop()
            seen.append(("setUp", id(self), id(self.loop)))

        async def test_a(self):
            assert asyncio.get_running_loop() is self.loop
            seen.append(("test", id(self), id(asyncio.get_running_loop())))

        async def test_b(self):
            seen.append(("test", id(self), id(asyncio.get_running_loop())))

        async def tearDown(self):
            assert asyncio.get_running_loop() is self.loop
            seen.append(("tearDown", id(self), id(asyncio.get_running_loop())))
            await super().tearDown()

    result = run_case(Lifecycle)
    assert result.wasSuccessful(), result.errors + result.failures
    assert [s[0] for s in seen] == ["setUp", "test", "tearDown"] * 2
    assert len({s[1] for s in seen[:3]}) == 1 and seen[0][1] != seen[3][1]
    assert len({s[2] for s in seen[:3]}) == 1


def test_context_variables_set_in_setup_are_visible_in_the_test_and_teardown():
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    class UsesContext(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            var.set("from setUp")

        async def test_it(self):
            seen.append(var.get())
            var.set("from the test")

        async def tearDown(self):
            seen.append(var.get())
            await super().tearDown()

    result = run_case(UsesContext)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen == ["from setUp", "from the test"] and var.get() == "unset"  # the caller's context is untouched


def test_sync_setup_is_rejected_with_a_fix():
    with pytest.raises(TypeError, match=r"Wrong.setUp must be `async def setUp\(self\)`"):
        class Wrong(AsyncWorkflowTestCase):
            def setUp(self):
                pass


def test_async_with_runs_setup_and_teardown_on_the_running_loop():
    log: list[str] = []

    class Notebook(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            self.loop = asyncio.get_running_loop()
            await self.create_test_resource("res", lambda: Closeable("res", log))

        async def test_x(self):
            assert asyncio.get_running_loop() is self.loop
            log.append("test")

        async def tearDown(self):
            log.append("tearDown")

    async def main():
        async with Notebook() as t:
            await t.test_x()
        return t

    case = asyncio.run(main())
    assert log == ["test", "tearDown", "res"]
    assert case.resource_names == ()


def test_run_inside_a_running_loop_explains_the_alternative():
    class Simple(AsyncWorkflowTestCase):
        async def test_x(self):
            pass

    async def main():
        Simple("test_x").run(unittest.TestResult())

    with pytest.raises(RuntimeError, match="async with MyTest"):
        asyncio.run(main())


def test_leftover_tasks_are_cancelled_when_the_test_ends():
    started: list[asyncio.Task] = []

    class Leaky(AsyncWorkflowTestCase):
        async def test_x(self):
            started.append(asyncio.get_running_loop().create_task(asyncio.sleep(60)))

    assert run_case(Leaky).wasSuccessful()
    assert started[0].cancelled()


# -- resources --------------------------------------------------------------------------------------------

class ResourceKinds(AsyncWorkflowTestCase):
    async def test_factory_kinds(self):
        async def async_factory():
            return "async"

        async def awaitable_value():
            return "awaitable"

        assert await self.create_test_resource("sync", lambda: "sync") == "sync"
        assert await self.create_test_resource("async", async_factory) == "async"
        assert await self.create_test_resource("returns_awaitable", lambda: awaitable_value()) == "awaitable"
        bare = await self.create_test_resource("bare", None, mock=True)
        none_factory = await self.create_test_resource("none", lambda: None, mock=True)
        bare.get.return_value = 1
        none_factory.get.side_effect = [2, KeyError("k")]
        assert await bare.get() == 1 and await none_factory.get() == 2
        with pytest.raises(KeyError):
            await none_factory.get()
        assert [self.is_mock(n) for n in ("sync", "bare", "none", "missing")] == [False, True, True, False]
        assert self.get_resource("sync") == "sync" and self.get_resource("bare") is bare

    async def test_fake_object_with_mock_true_is_the_resource_and_calls_are_tracked(self):
        cache = await AsyncWorkflowFixtures.create_test_cache()
        proxy = await self.create_test_resource("cache", lambda: cache, mock=True)
        await proxy.set("k", 1)
        assert await cache.get("k") == 1 and proxy.wrapped is cache
        assert [c.method for c in self.get_calls("cache")] == ["set"]

    async def test_unknown_resource_lists_existing_names(self):
        await self.create_test_resource("db", None, mock=True)
        await self.create_test_resource("cache", None, mock=True)
        with pytest.raises(ResourceNotFoundError, match=r"no test resource named 'dbx'; resources: 'db', 'cache'"):
            self.get_resource("dbx")
        with pytest.raises(AssertionError, match="no test resource named 'nope'"):
            self.assert_resource_called("nope", "get")

    async def test_unknown_resource_in_node_code_names_node_and_resources(self):
        await self.create_test_resource("db", None, mock=True)
        workflow = AsyncWorkflowBuilder("w").add_async_code("n", "x = await get_resource('dbx'); result = {}").build()
        with pytest.raises(ResourceNotFoundError, match=r"node 'n' asked for resource 'dbx'.*registered: 'db'"):
            await self.execute_workflow(workflow)

    async def test_duplicate_and_invalid_resources_are_errors(self):
        await self.create_test_resource("db", None, mock=True)
        with pytest.raises(ValueError, match="resource 'db' already exists in this test; names: 'db'"):
            await self.create_test_resource("db", None, mock=True)
        with pytest.raises(TypeError, match="a real resource needs a factory; pass mock=True"):
            await self.create_test_resource("real")
        with pytest.raises(TypeError, match=r"factory must be a callable \(such as lambda: obj\), got dict"):
            await self.create_test_resource("obj", {"a": 1})

    async def test_calls_of_real_resources_are_not_tracked(self):
        await self.create_test_resource("real", lambda: Mock())
        with pytest.raises(AssertionError, match="'real' is a real resource, whose calls are not tracked"):
            self.assert_resource_called("real", "get")


def test_resource_kinds():
    result = run_case(ResourceKinds)
    assert result.testsRun == 6
    assert result.wasSuccessful(), result.errors + result.failures


def test_resources_are_cleaned_up_in_reverse_order_with_every_cleanup_method():
    log: list[str] = []

    class Cleanup(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            await self.create_test_resource("a", lambda: Closeable("a", log, how="aclose"))
            await self.create_test_resource("b", lambda: Closeable("b", log, how="close"))
            await self.create_test_resource("c", lambda: Closeable("c", log, how="cleanup"))
            await self.create_test_resource("m", None, mock=True)  # mocks are not closed

        async def test_x(self):
            log.append("test")

    assert run_case(Cleanup).wasSuccessful()
    assert log == ["test", "c", "b", "a"]


def test_cleanup_runs_when_the_test_failed_and_both_failures_are_reported():
    log: list[str] = []

    class Failing(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            await self.create_test_resource("a", lambda: Closeable("a", log, fail=True))
            await self.create_test_resource("b", lambda: Closeable("b", log))
            await self.create_test_resource("c", lambda: Closeable("c", log, fail=True))

        async def test_x(self):
            raise AssertionError("the test's own failure")

    case = Failing("test_x")
    result = unittest.TestResult()
    case.run(result)
    assert log == ["c", "b", "a"]
    ((_, failure),) = result.failures
    ((_, error),) = result.errors
    assert "AssertionError: the test's own failure" in failure
    assert "cleanup failed for 2 resource(s): c: RuntimeError: c would not close; a: RuntimeError: a would " \
           "not close" in error
    test_error = case._failure
    assert any("cleanup also failed: ResourceCleanupError" in n for n in test_error.__notes__)


def test_cleanup_runs_when_setup_fails_halfway():
    log: list[str] = []

    class SetUpFails(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            await self.create_test_resource("a", lambda: Closeable("a", log))
            raise RuntimeError("setUp broke")

        async def test_x(self):
            log.append("test")

    result = run_case(SetUpFails)
    assert log == ["a"] and "setUp broke" in result.errors[0][1]


def test_async_with_keeps_the_body_failure_and_notes_cleanup_failures():
    log: list[str] = []

    async def main():
        async with AsyncWorkflowTestCase() as case:
            await case.create_test_resource("a", lambda: Closeable("a", log, fail=True))
            raise ValueError("body failed")

    with pytest.raises(ValueError, match="body failed") as info:
        asyncio.run(main())
    assert info.value.__notes__ == ["cleanup also failed: ResourceCleanupError: cleanup failed for 1 "
                                    "resource(s): a: RuntimeError: a would not close"]


def test_async_with_raises_cleanup_failure_after_a_passing_body():
    async def main():
        async with AsyncWorkflowTestCase() as case:
            await case.create_test_resource("a", lambda: Closeable("a", [], fail=True))

    with pytest.raises(ResourceCleanupError, match="a: RuntimeError: a would not close"):
        asyncio.run(main())


# -- running workflows ----------------------------------------------------------------------------------------

class Execution(AsyncWorkflowTestCase):
    async def test_failing_node_reraises_its_own_exception_with_node_code_in_traceback(self):
        workflow = failing_workflow()
        with pytest.raises(ValueError, match="value 1 is too small") as info:
            await self.execute_workflow(workflow)
        text = "".join(traceback.format_exception(info.value))
        assert f'File "{workflow.nodes["check"].filename}", line 2' in text
        assert 'raise ValueError(f"value {value} is too small")' in text

    async def test_raise_on_error_false_returns_the_failed_result(self):
        result = await self.execute_workflow(failing_workflow(), raise_on_error=False)
        assert result.status == "failed" and result.node_status == {
            "ok": "success", "check": "failed", "after": "skipped"}
        self.assert_workflow_failed(result)
        self.assert_workflow_failed(result, "check", ValueError)
        with pytest.raises(AssertionError, match=r"expected node 'ok' to fail, but its status is 'success'; "
                                                 r"failed: check"):
            self.assert_workflow_failed(result, "ok")
        with pytest.raises(AssertionError, match="expected node 'check' to raise KeyError, it raised "
                                                 "ValueError: value 1 is too small"):
            self.assert_workflow_failed(result, "check", KeyError)

    async def test_assert_workflow_success_lists_each_failed_node_and_error(self):
        result = await self.execute_workflow(failing_workflow(), raise_on_error=False)
        with pytest.raises(AssertionError) as info:
            self.assert_workflow_success(result)
        assert str(info.value) == (
            "workflow 'failing' failed (1 node(s) raised):\n"
            "  - check failed: ValueError: value 1 is too small\n"
            "  - after skipped"
        )

    async def test_assert_workflow_failed_on_success_says_so(self):
        result = await self.execute_workflow(OK_WORKFLOW)
        with pytest.raises(AssertionError, match="expected workflow 'ok' to fail, but every node succeeded"):
            self.assert_workflow_failed(result)

    async def test_assert_node_output_uses_dotted_keys_and_shows_expected_and_actual(self):
        result = await self.execute_workflow(OK_WORKFLOW)
        self.assert_node_output(result, "producer", [1, 2], "data.items")
        self.assert_node_output(result, "producer", 2, "data.items.1")
        with pytest.raises(AssertionError, match=r"node 'producer' output 'data.name': expected 'y', got 'x'"):
            self.assert_node_output(result, "producer", "y", "data.name")
        with pytest.raises(AssertionError, match=r"expected 1, but node 'producer' produced no 'data.size'"):
            self.assert_node_output(result, "producer", 1, "data.size")
        with pytest.raises(AssertionError, match=r"has no node 'nope'; nodes: 'producer'"):
            self.assert_node_output(result, "nope", 1)

    async def test_timeout_is_passed_to_the_runtime(self):
        hang = AsyncWorkflowBuilder("hang").add_async_code("wait", "await asyncio.sleep(10); result = {}").build()
        with pytest.raises(TimeoutError, match=r"ran past its timeout of 0\.05 s"):
            await self.execute_workflow(hang, timeout=0.05)


def test_execution():
    result = run_case(Execution)
    assert result.testsRun == 6
    assert result.wasSuccessful(), result.errors + result.failures


# -- call assertions -----------------------------------------------------------------------------------------------

class CallAssertions(AsyncWorkflowTestCase):
    async def setUp(self):
        await super().setUp()
        self.http = await self.create_test_resource("payments", AsyncWorkflowFixtures.create_mock_http_client,
                                                    mock=True)
        self.http.add_response("POST", "/charges", {"status": "ok"})
        self.db = await self.create_test_resource("db", None, mock=True)
        workflow = AsyncWorkflowBuilder("pay").add_async_code("charge", """
            payments = await get_resource("payments")
            db = await get_resource("db")
            await payments.post("/charges", json={"amount": 100}, headers={"k": "v"})
            await db.insert("charges", amount=100)
            result = {}
        """).build()
        await self.execute_workflow(workflow)

    async def test_counts_and_filters(self):
        self.assert_resource_called("payments", "post", times=1)
        self.assert_resource_called("payments", "post", with_args=["/charges"])
        self.assert_resource_called("payments", "post", with_kwargs={"json": {"amount": 100}})
        self.assert_resource_called("db", "insert", times=1, with_args=("charges",), with_kwargs={"amount": 100})
        self.assert_resource_not_called("payments", "get")

    async def test_failure_lists_the_calls_made(self):
        with pytest.raises(AssertionError) as info:
            self.assert_resource_called("payments", "post", times=2)
        assert str(info.value) == (
            "expected payments.post() to be called 2 time(s), it was called 1 time(s); calls to 'payments':\n"
            "  post('/charges', json={'amount': 100}, headers={'k': 'v'}) -> "
            "<MockResponse 200 POST /charges> [node 'charge']"
        )
        with pytest.raises(AssertionError, match=r"expected db.insert\(\) to be called at least once with args "
                                                 r"\('users',\), it was called 0 time\(s\); calls to 'db':\n"
                                                 r"  insert\('charges', amount=100\)"):
            self.assert_resource_called("db", "insert", with_args=("users",))

    async def test_not_called_failure_lists_the_calls(self):
        with pytest.raises(AssertionError, match=r"expected db.insert\(\) not to be called, it was called 1 "
                                                 r"time\(s\); calls to 'db':\n  insert"):
            self.assert_resource_not_called("db", "insert")
        with pytest.raises(AssertionError, match="expected resource 'db' not to be called"):
            self.assert_resource_not_called("db")

    async def test_get_calls_lists_all_calls_of_the_test_and_reset_forgets(self):
        assert [(c.resource, c.method, c.node) for c in self.get_calls()] == [
            ("payments", "post", "charge"), ("db", "insert", "charge")]
        assert [c.method for c in self.get_calls(node="charge")] == ["post", "insert"]
        self.reset_calls("db")
        assert [c.resource for c in self.get_calls()] == ["payments"]
        self.reset_calls()
        assert self.get_calls() == ()
        self.assert_resource_not_called("payments")


def test_call_assertions():
    result = run_case(CallAssertions)
    assert result.testsRun == 4
    assert result.wasSuccessful(), result.errors + result.failures


# -- time limits -----------------------------------------------------------------------------------------------------

class TimeLimits(AsyncWorkflowTestCase):
    async def test_hung_workflow_is_cancelled_at_the_limit(self):
        hang = AsyncWorkflowBuilder("hang").add_async_code("wait", "await asyncio.sleep(30); result = {}").build()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AssertionError, match=r"time limit of 0.1 s exceeded: the block was still running "
                                                 r"and was cancelled after 0.1\d* s"):
            async with self.assert_time_limit(0.1):
                await self.execute_workflow(hang)
        assert loop.time() - started < 1.0
        await asyncio.sleep(0)  # the task is not left cancelled
        assert asyncio.current_task().cancelling() == 0

    async def test_body_exception_propagates(self):
        with pytest.raises(ValueError, match="value 1 is too small"):
            async with self.assert_time_limit(5):
                await self.execute_workflow(failing_workflow())

    async def test_fast_body_passes(self):
        async with self.assert_time_limit(5):
            result = await self.execute_workflow(OK_WORKFLOW)
        self.assert_workflow_success(result)

    @use_virtual_time(False)  # a blocking time.sleep moves real time only
    async def test_blocking_body_past_the_limit_fails(self):
        import time

        with pytest.raises(AssertionError, match="without yielding to the event loop"):
            async with self.assert_time_limit(0.01):
                time.sleep(0.03)  # noqa: ASYNC251 - blocking on purpose

    async def test_invalid_limit_names_the_option(self):
        for bad in (0, -1, float("nan"), float("inf"), "2"):
            with pytest.raises(ValueError, match=r"^assert_time_limit\(seconds=\.\.\.\) must be a"):
                async with self.assert_time_limit(bad):
                    pass

    async def test_no_limit_is_refused(self):
        with pytest.raises(InvalidTimeoutError, match=r"^assert_time_limit\(seconds=\.\.\.\) needs a number "
                                                      r"of seconds, got None"):
            self.assert_time_limit(None)

    async def test_body_that_swallows_its_cancellation_still_fails_the_limit(self):
        with pytest.raises(AssertionError, match=r"time limit of 0.01 s exceeded: the block was still running"):
            async with self.assert_time_limit(0.01):
                with contextlib.suppress(asyncio.CancelledError):  # node code that swallows it
                    await asyncio.sleep(5)

    async def test_outside_cancellation_propagates(self):
        async def limited():
            async with self.assert_time_limit(5):
                await asyncio.sleep(5)

        task = asyncio.create_task(limited())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def test_the_block_gives_the_deadline(self):
        async with self.assert_time_limit(5) as deadline:
            await asyncio.sleep(0)
        assert (deadline.seconds, deadline.expired, deadline.blocked) == (5.0, False, False)
        assert 0 <= deadline.elapsed < 5


def test_time_limits():
    result = run_case(TimeLimits)
    assert result.testsRun == 9
    assert result.wasSuccessful(), result.errors + result.failures


# -- run_test and release: a test on a loop that is running already (the pytest plugin's seam) -------------

class Recording(AsyncWorkflowTestCase):
    """Logs its steps; ``fail`` names the step that raises."""

    def __init__(self, log: list[str], fail: str = "") -> None:
        super().__init__()
        self.log, self.fail = log, fail

    async def setUp(self):
        await super().setUp()
        self.log.append("setUp")
        if self.fail == "setUp":
            raise RuntimeError("setUp broke")

    async def tearDown(self):
        self.log.append("tearDown")
        if self.fail == "tearDown":
            raise RuntimeError("tearDown broke")
        await super().tearDown()


def test_run_test_runs_setup_the_test_teardown_and_cleanup_keeping_resources_made_before():
    log: list[str] = []
    case = Recording(log)

    async def main():
        made_before = await case.create_test_resource("early", lambda: Closeable("early", log))

        async def test():
            log.append("test")
            assert case.get_resource("early") is made_before
            await case.create_test_resource("late", lambda: Closeable("late", log))
            return "value"

        return await case.run_test(test)

    assert asyncio.run(main()) == "value"
    assert log == ["setUp", "test", "tearDown", "late", "early"]
    assert case.resource_names == () and not case.has_pending_cleanup


def test_run_test_does_not_start_the_test_when_setup_fails_and_cleans_up():
    log: list[str] = []
    case = Recording(log, fail="setUp")
    test = Mock()

    async def main():
        await case.create_test_resource("early", lambda: Closeable("early", log))
        await case.run_test(test)

    with pytest.raises(RuntimeError, match="setUp broke"):
        asyncio.run(main())
    test.assert_not_called()
    assert log == ["setUp", "early"]


def test_run_test_keeps_the_tests_failure_and_notes_teardown_and_cleanup_failures():
    log: list[str] = []
    case = Recording(log, fail="tearDown")

    async def test():
        await case.create_test_resource("a", lambda: Closeable("a", log, fail=True))
        raise ValueError("the test failed")

    with pytest.raises(ValueError, match="the test failed") as info:
        asyncio.run(case.run_test(test))
    assert info.value.__notes__ == ["tearDown also failed: RuntimeError: tearDown broke",
                                    "cleanup also failed: ResourceCleanupError: cleanup failed for 1 "
                                    "resource(s): a: RuntimeError: a would not close"]
    assert log == ["setUp", "tearDown", "a"]


def test_async_with_keeps_the_body_failure_and_notes_a_teardown_failure():
    log: list[str] = []

    async def main():
        async with Recording(log, fail="tearDown"):
            raise ValueError("body failed")

    with pytest.raises(ValueError, match="body failed") as info:
        asyncio.run(main())
    assert info.value.__notes__ == ["tearDown also failed: RuntimeError: tearDown broke"]
    assert log == ["setUp", "tearDown"]


def test_run_test_of_a_passing_test_raises_the_first_teardown_failure_noting_the_others():
    log: list[str] = []
    case = Recording(log, fail="tearDown")

    async def test():
        await case.create_test_resource("a", lambda: Closeable("a", log, fail=True))

    with pytest.raises(RuntimeError, match="tearDown broke") as info:
        asyncio.run(case.run_test(test))
    assert info.value.__notes__ == ["also failed: ResourceCleanupError: cleanup failed for 1 resource(s): a: "
                                    "RuntimeError: a would not close"]


def test_release_cleans_up_what_was_made_outside_a_test_once():
    log: list[str] = []
    case = AsyncWorkflowTestCase()
    assert not case.has_pending_cleanup

    async def make():
        await case.create_test_resource("a", lambda: Closeable("a", log))
        case.addCleanup(log.append, "cleanup")

    asyncio.run(make())
    assert case.has_pending_cleanup
    asyncio.run(case.release())
    assert log == ["cleanup", "a"] and not case.has_pending_cleanup
    asyncio.run(case.release())
    assert log == ["cleanup", "a"]


def test_release_raises_the_first_failure_noting_the_others():
    case = AsyncWorkflowTestCase()

    def broken(name):
        raise OSError(f"{name} broke")

    async def make():
        await case.create_test_resource("a", lambda: Closeable("a", [], fail=True))
        case.addCleanup(broken, "first added")
        case.addCleanup(broken, "last added")

    asyncio.run(make())
    with pytest.raises(OSError, match="last added broke") as info:
        asyncio.run(case.release())
    assert info.value.__notes__ == [
        "also failed: OSError: first added broke",
        "also failed: ResourceCleanupError: cleanup failed for 1 resource(s): a: RuntimeError: a would not close"]


# -- a call node code forgot to await ------------------------------------------------------------------------

class MissingAwait(AsyncWorkflowTestCase):
    async def test_assert_resource_called_says_the_call_was_never_awaited(self):
        await self.create_test_resource("db", None, mock=True)
        workflow = AsyncWorkflowBuilder("w").add_async_code("store", """
            db = await get_resource("db")
            db.save(1)
            result = {}
        """).build()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await self.execute_workflow(workflow)
        assert [str(w.message) for w in caught] == ["coroutine 'db.save' was never awaited"]
        with pytest.raises(AssertionError) as info:
            self.assert_resource_called("db", "save", times=1)
        assert str(info.value) == (
            "expected db.save() to be called 1 time(s), it was called once but never awaited: add await; "
            "calls to 'db':\n  save(1) never awaited: add await [node 'store']")
        with pytest.raises(AssertionError, match=r"not to be called, it was called once but never awaited"):
            self.assert_resource_not_called("db", "save")


def test_missing_await():
    result = run_case(MissingAwait)
    assert result.testsRun == 1
    assert result.wasSuccessful(), result.errors + result.failures


# -- a sync Mock() resource awaited in the test's own code ---------------------------------------------------

SYNC_MOCK_NOTE = ("resource 'db': fetch() is a sync Mock method, so its result is a plain value, which only "
                  "`await` in node code accepts; for asyncio.gather(), wait_for(), create_task() or an `await` "
                  "outside node code, make it async: `<mock>.fetch = AsyncMock(return_value=...)`, or create "
                  "the resource with mock=True and no factory (an AsyncMock)")


def test_awaiting_a_sync_mock_in_test_code_says_what_to_write_instead():
    class AwaitsInTest(AsyncWorkflowTestCase):
        async def test_x(self):
            db = await self.create_test_resource("db", lambda: Mock(), mock=True)
            db.fetch.return_value = [1]
            assert db.fetch() == [1]  # the plain value, without await
            await db.fetch()

    case = AwaitsInTest("test_x")
    case.run(unittest.TestResult())
    error = case._failure
    assert type(error) is TypeError and str(error) == "object list can't be used in 'await' expression"
    assert error.__notes__ == [SYNC_MOCK_NOTE]

    async def main():
        async with AsyncWorkflowTestCase() as case:
            db = await case.create_test_resource("db", lambda: Mock(), mock=True)
            await db.fetch()

    with pytest.raises(TypeError, match="can't be used in 'await' expression") as info:
        asyncio.run(main())
    assert info.value.__notes__ == [SYNC_MOCK_NOTE]


# -- a cleanup that hangs --------------------------------------------------------------------------------------

class _HangingClose:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def aclose(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.log.append("stuck cancelled")


def test_a_hanging_cleanup_fails_the_test_at_cleanup_timeout_naming_it_and_releases_the_rest():
    log: list[str] = []

    class Hangs(AsyncWorkflowTestCase):
        cleanup_timeout = 0.01

        async def test_x(self):
            await self.create_test_resource("a", lambda: Closeable("a", log))
            await self.create_test_resource("stuck", lambda: _HangingClose(log))
            await self.create_test_resource("c", lambda: Closeable("c", log))

    async def main():
        async with Hangs("test_x") as case:
            await case.test_x()

    with pytest.raises(ResourceCleanupError) as info:
        asyncio.run(asyncio.wait_for(main(), 30))  # a safety net: before the bound this hung forever
    assert log == ["c", "stuck cancelled", "a"]
    assert str(info.value) == (
        "cleanup failed for 1 resource(s): stuck: ResourceCleanupTimeoutError: resource 'stuck' did not finish "
        "its cleanup (_HangingClose.aclose()) within its cleanup timeout of 0.01 s and was cancelled; fix what "
        "it waits for, or give it longer with cleanup_timeout=")

    log.clear()
    result = run_case(Hangs, "test_x")
    assert log == ["c", "stuck cancelled", "a"]
    ((_, error),) = result.errors
    assert "resource 'stuck' did not finish its cleanup" in error


def test_the_cleanup_timeout_is_ten_seconds_unless_the_class_says_otherwise_and_is_checked():
    assert AsyncWorkflowTestCase.cleanup_timeout == 10.0

    class Bad(AsyncWorkflowTestCase):
        cleanup_timeout = -1

        async def test_x(self):
            pass

    with pytest.raises(InvalidTimeoutError, match=r"Bad\.cleanup_timeout must be a positive, finite number"):
        Bad("test_x")
