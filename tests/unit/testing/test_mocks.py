"""Tracked mock resources: configuration reaches the mock, every call becomes a CallRecord."""

from __future__ import annotations

import asyncio
import dataclasses
from unittest.mock import AsyncMock, MagicMock, Mock

import pytest

from kailash_nb.testing import CallRecord, CallTracker, MockExhaustedError, MockHttpClient, TrackedResource
from kailash_nb.testing.mocks import create_mock
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder


def run(awaitable):
    async def wait():
        return await awaitable

    return asyncio.run(wait())


def tracked(target=None, name="svc"):
    tracker = CallTracker()
    return TrackedResource(name, target if target is not None else create_mock(name), tracker), tracker


def test_call_record_is_a_frozen_slotted_dataclass():
    record = CallRecord("svc", "fetch", (1,), {"a": 2})
    assert dataclasses.is_dataclass(record) and not hasattr(record, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.method = "other"


def test_bare_mock_return_value_is_configured_through_the_proxy():
    proxy, tracker = tracked()
    proxy.fetch.return_value = [{"id": 1}]
    assert run(proxy.fetch("SELECT 1", limit=5)) == [{"id": 1}]
    (call,) = tracker.get_calls()
    assert (call.resource, call.method, call.args, call.kwargs) == ("svc", "fetch", ("SELECT 1",), {"limit": 5})
    assert call.result == [{"id": 1}] and call.exception is None and call.node is None
    assert call.start > 0 and call.duration >= 0


def test_side_effect_list_mixes_values_and_exceptions_and_records_each_outcome():
    proxy, tracker = tracked()
    proxy.op.side_effect = [1, ConnectionError("down"), 3]

    async def three_calls():
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(await proxy.op())
            except ConnectionError as error:
                outcomes.append(error)
        return outcomes

    first, second, third = run(three_calls())
    assert (first, third) == (1, 3) and isinstance(second, ConnectionError)
    calls = tracker.get_calls("svc", "op")
    assert [c.result for c in calls] == [1, None, 3]
    assert [type(c.exception) for c in calls] == [type(None), ConnectionError, type(None)]
    assert calls[1].failed and calls[1].exception is second


EXHAUSTED = (r"mock 'svc'\.op\(\) was called 2 times but its side_effect list has 1 value\(s\); "
             r"add more values or use return_value")


@pytest.mark.parametrize("target", [AsyncMock(), Mock()], ids=["AsyncMock", "Mock"])
def test_running_out_of_side_effect_values_names_the_mock_and_is_recorded(target):
    proxy, tracker = tracked(target)
    proxy.op.side_effect = [1]

    async def two_calls():  # a coroutine, as node code is: a Mock's StopIteration would become RuntimeError
        assert await proxy.op() == 1
        await proxy.op()

    with pytest.raises(MockExhaustedError, match=EXHAUSTED) as caught:
        run(two_calls())
    assert isinstance(caught.value, AssertionError)
    first, second = tracker.get_calls("svc", "op")
    assert first.result == 1 and second.exception is caught.value


def test_stop_async_iteration_given_as_a_side_effect_value_is_raised_as_it_is():
    proxy, _ = tracked()
    proxy.op.side_effect = [StopAsyncIteration()]
    with pytest.raises(StopAsyncIteration):
        run(proxy.op())


def test_calls_are_listed_in_the_order_they_were_made_not_completed():
    proxy, tracker = tracked()

    async def op(label):
        if label == "first":
            await asyncio.sleep(0.05)
        return label

    proxy.op.side_effect = op

    async def second_call_10ms_later():
        await asyncio.sleep(0.01)
        return await proxy.op("second")

    async def both():
        await asyncio.gather(proxy.op("first"), second_call_10ms_later())

    run(both())
    order = [("first",), ("second",)]
    assert [c.args for c in tracker.get_calls("svc", "op")] == order
    assert [c.args for c in tracker.calls] == [c.args for c in tracker] == order
    assert [c.args for c in proxy.tracked_calls()] == order


def test_side_effect_may_be_an_async_mock():
    proxy, _ = tracked()
    proxy.post.side_effect = AsyncMock(return_value={"id": "123"})
    assert run(proxy.post({"x": 1})) == {"id": "123"}


def test_the_mock_underneath_sees_the_calls_too():
    mock = create_mock("svc")
    proxy, _ = tracked(mock)
    run(proxy.fetch(1))
    mock.fetch.assert_awaited_once_with(1)
    proxy.fetch.assert_awaited_once_with(1)  # mock API through the proxy: not recorded as a call
    assert proxy.fetch.call_count == 1
    assert len(proxy.tracked_calls()) == 1


def test_factory_object_is_the_resource_itself_and_calls_are_tracked():
    client = MockHttpClient().add_response("GET", "/x", {"ok": True})
    proxy, tracker = tracked(client, "http")
    assert proxy.wrapped is client and isinstance(proxy, MockHttpClient)

    async def go():
        resp = await proxy.get("/x", params={"a": 1})
        return await resp.json()

    assert run(go()) == {"ok": True}
    (call,) = tracker.get_calls("http", "get")
    assert call.args == ("/x",) and call.kwargs == {"params": {"a": 1}} and call.result.status == 200
    proxy.add_response("GET", "/y", {})  # configuration methods are not recorded
    assert [c.method for c in tracker.calls] == ["get"]


def test_tracked_request_works_as_async_context_manager_too():
    client = MockHttpClient().add_response("GET", "/x", {"ok": True})
    proxy, tracker = tracked(client, "http")

    async def go():
        async with proxy.get("/x") as resp:
            return resp.status

    assert run(go()) == 200
    assert tracker.get_calls("http", "get")[0].result.status == 200


def test_sync_mock_result_is_awaitable_where_node_code_awaits_it():
    proxy, tracker = tracked(Mock(), "http")
    response = AsyncMock()
    response.json = AsyncMock(return_value={"data": "test"})
    proxy.get.return_value = response

    async def go():
        resp = await proxy.get("u")
        return resp, await resp.json()

    resp, data = run(go())
    assert resp is response and data == {"data": "test"}
    assert tracker.get_calls("http", "get")[0].result is response


def test_sync_mock_result_is_the_plain_value_where_it_is_not_awaited():
    proxy, _ = tracked(Mock(), "config")
    proxy.get.return_value = {"debug": True}

    async def go():
        value = proxy.get("app")
        return value

    value = run(go())
    assert type(value) is dict and value == {"debug": True}
    assert proxy.get("again") == {"debug": True}  # sync code: no event loop involved


def test_sync_mock_awaited_plain_value_inside_workflow_node():
    proxy, tracker = tracked(MagicMock(), "config")
    proxy.load.return_value = {"retries": 3}
    workflow = AsyncWorkflowBuilder("w").add_async_code("read", """
        config = await get_resource("config")
        awaited = await config.load("a")
        plain = config.load("b")
        result = {"awaited": awaited, "plain_is_dict": type(plain) is dict}
    """).build()
    result = run(AsyncLocalRuntime().execute_workflow_async(workflow, resources={"config": proxy}))
    assert result.outputs["read"] == {"awaited": {"retries": 3}, "plain_is_dict": True}
    assert [c.node for c in tracker.calls] == ["read", "read"]


def test_call_made_inside_a_node_records_that_node():
    proxy, tracker = tracked()
    workflow = (
        AsyncWorkflowBuilder("w")
        .add_async_code("first", "svc = await get_resource('svc'); await svc.ping(1); result = {}")
        .add_async_code("second", "svc = await get_resource('svc'); await svc.ping(2); result = {}")
        .build()
    )
    run(AsyncLocalRuntime().execute_workflow_async(workflow, resources={"svc": proxy}))
    assert {c.args[0]: c.node for c in tracker.calls} == {1: "first", 2: "second"}
    assert tracker.get_calls(node="second")[0].args == (2,)


def test_attribute_chains_are_tracked_with_a_dotted_method_name():
    proxy, tracker = tracked()
    proxy.pool.acquire.return_value = "conn"
    assert run(proxy.pool.acquire()) == "conn"
    assert tracker.calls[0].method == "pool.acquire"


def test_duration_covers_the_awaited_work():
    proxy, tracker = tracked()

    async def slow(*args):
        await asyncio.sleep(0.05)
        return "done"

    proxy.work.side_effect = slow
    assert run(proxy.work()) == "done"
    assert tracker.calls[0].duration >= 0.045


def test_exception_raised_synchronously_is_recorded_and_reraised():
    proxy, tracker = tracked(Mock(), "svc")
    proxy.boom.side_effect = KeyError("nope")
    with pytest.raises(KeyError):
        proxy.boom(1)
    assert isinstance(tracker.calls[0].exception, KeyError)


def test_plain_attributes_of_a_fake_are_not_wrapped():
    class Fake:
        name = "fake"

        async def ping(self):
            return "pong"

    proxy, tracker = tracked(Fake(), "fake")
    assert proxy.name == "fake"
    assert run(proxy.ping()) == "pong"
    proxy.name = "renamed"
    assert proxy.wrapped.name == "renamed"
    assert [c.method for c in tracker.calls] == ["ping"]


def test_proxy_get_calls_is_the_trackers_for_mocks_and_the_objects_own_for_http_clients():
    proxy, _ = tracked()
    run(proxy.fetch())
    assert [c.method for c in proxy.get_calls()] == ["fetch"]
    assert proxy.get_calls("other") == ()

    client = MockHttpClient().add_response("POST", "/p", {})
    http, _ = tracked(client, "http")
    run(http.post("/p", json={"a": 1}))
    assert http.get_calls("POST", "/p")[0].kwargs["json"] == {"a": 1}
    assert http.tracked_calls("post")[0].kwargs == {"json": {"a": 1}}


def test_reset_forgets_calls_of_one_resource_or_all():
    tracker = CallTracker()
    a = TrackedResource("a", create_mock("a"), tracker)
    b = TrackedResource("b", create_mock("b"), tracker)

    async def go():
        await a.x()
        await b.y()

    run(go())
    a.reset_calls()
    assert [c.resource for c in tracker] == ["b"]
    tracker.reset()
    assert len(tracker) == 0


def test_describe_shows_call_outcome_and_node():
    ok = CallRecord("svc", "fetch", ("q",), {"limit": 2}, result=[1], node="extract")
    failed = CallRecord("svc", "fetch", (), {}, exception=ValueError("bad"))
    assert ok.describe() == "fetch('q', limit=2) -> [1] [node 'extract']"
    assert failed.describe() == "fetch() raised ValueError('bad') [test]"


def test_repr_names_the_resource():
    proxy, _ = tracked(MockHttpClient(), "payments")
    assert repr(proxy) == "<tracked resource 'payments': MockHttpClient>"


def test_tracked_call_costs_within_2x_of_a_bare_async_mock_call():
    import time

    bare = AsyncMock()
    proxy, tracker = tracked()
    bare.fetch.return_value = proxy.fetch.return_value = 1

    async def best_batch(call, n=300, batches=15):
        best = float("inf")
        for _ in range(batches):
            started = time.perf_counter()
            for _ in range(n):
                await call()
            best = min(best, time.perf_counter() - started)
            bare.reset_mock()
            proxy.wrapped.reset_mock()
            tracker.reset()
        return best

    async def main():
        await best_batch(lambda: proxy.fetch(1), batches=2)  # warm up
        return await best_batch(lambda: proxy.fetch(1)), await best_batch(lambda: bare.fetch(1))

    tracked_time, bare_time = run(main())
    assert tracked_time < 2 * bare_time, f"tracked {tracked_time:.4f} s vs bare {bare_time:.4f} s"
