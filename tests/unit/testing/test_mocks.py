"""Tracked mock resources: configuration reaches the mock, every call becomes a CallRecord."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import json
import pickle
import warnings
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


@pytest.mark.parametrize("mock_class", [AsyncMock, Mock])
def test_running_out_of_side_effect_values_names_the_mock_and_is_recorded(mock_class):
    proxy, tracker = tracked(mock_class())
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


def test_sync_mock_result_not_awaited_behaves_as_the_value():
    proxy, tracker = tracked(Mock(), "config")
    settings = {"debug": True, "hosts": ["a", "b"]}
    proxy.get.return_value = settings

    async def go():
        value = proxy.get("app")
        return value

    value = run(go())
    assert value == settings and isinstance(value, dict) and value.__wrapped__ is settings
    assert value["hosts"] == ["a", "b"] and len(value) == 2 and list(value) == ["debug", "hosts"]
    assert "debug" in value and repr(value) == repr(settings) and str(value) == str(settings)
    assert proxy.get("again") == settings  # sync code: no event loop involved
    assert tracker.get_calls("config", "get")[0].result is settings  # the record keeps the value itself


def test_sync_mock_result_copies_and_pickles_as_the_plain_value():
    proxy, _ = tracked(Mock(), "config")
    proxy.get.return_value = {"nested": [1, 2]}
    value = proxy.get()
    for duplicate in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert type(duplicate) is dict and duplicate == {"nested": [1, 2]}
    assert copy.deepcopy(value)["nested"] is not value["nested"]


def test_sync_mock_result_stays_a_proxy_for_none_and_c_level_type_checks_see_the_proxy():
    proxy, _ = tracked(Mock(), "svc")
    proxy.set.return_value = None
    proxy.rows.return_value = [{"id": 1}]

    async def go():
        return await proxy.set("k", 1), json.dumps(await proxy.rows())

    assert run(go()) == (None, '[{"id": 1}]')  # awaited: the values themselves
    unset = proxy.set("k", 2)  # not awaited: a proxy of None, so that `await` works where code awaits it
    assert unset is not None and unset.__wrapped__ is None and not unset and repr(unset) == "None"
    with pytest.raises(TypeError, match="Object of type list is not JSON serializable"):
        json.dumps(proxy.rows())  # the C encoder checks the exact type, not __class__
    assert json.dumps(proxy.rows().__wrapped__) == '[{"id": 1}]'


def test_sync_mock_result_is_callable_or_iterable_only_when_the_value_is():
    proxy, _ = tracked(Mock(), "svc")
    proxy.plain.return_value = 3
    proxy.factory.return_value = lambda x: x + 1
    proxy.rows.return_value = iter([1, 2])
    assert not callable(proxy.plain()) and proxy.plain() + 1 == 4
    assert proxy.factory()(1) == 2
    assert next(proxy.rows()) == 1


@pytest.mark.parametrize("how", ["await", "variable", "wait_for", "gather", "create_task"])
@pytest.mark.parametrize("mock_class", [Mock, AsyncMock])
def test_tracked_call_works_however_it_is_awaited(mock_class, how):
    target = mock_class()
    proxy, tracker = tracked(target, "svc")
    proxy.op.return_value = {"id": 7}

    async def go():
        if how == "await":
            return await proxy.op(1)
        if how == "variable":
            pending = proxy.op(1)
            return await pending
        if how == "wait_for":
            return await asyncio.wait_for(proxy.op(1), 1)
        if how == "gather":
            (value,) = await asyncio.gather(proxy.op(1))
            return value
        if isinstance(target, AsyncMock):  # create_task needs a coroutine: an async method's result
            return await asyncio.create_task(proxy.op(1))
        return await asyncio.ensure_future(proxy.op(1))

    assert run(go()) == {"id": 7}
    (call,) = tracker.get_calls("svc", "op")
    assert call.args == (1,) and call.result == {"id": 7} and call.awaited


@pytest.mark.parametrize("how", ["await", "variable", "wait_for", "gather"])
def test_tracked_http_request_works_however_it_is_awaited(how):
    client = MockHttpClient().add_response("GET", "/x", {"ok": True})
    proxy, tracker = tracked(client, "http")

    async def go():
        if how == "await":
            return await proxy.get("/x")
        if how == "variable":
            pending = proxy.get("/x")
            return await pending
        if how == "wait_for":
            return await asyncio.wait_for(proxy.get("/x"), 1)
        (response,) = await asyncio.gather(proxy.get("/x"))
        return response

    assert run(go()).status == 200
    assert [c.result.status for c in tracker.get_calls("http", "get")] == [200]


def test_sync_mock_awaited_plain_value_inside_workflow_node():
    proxy, tracker = tracked(MagicMock(), "config")
    proxy.load.return_value = {"retries": 3}
    workflow = AsyncWorkflowBuilder("w").add_async_code("read", """
        config = await get_resource("config")
        awaited = await config.load("a")
        plain = config.load("b")
        result = {"awaited_is_dict": type(awaited) is dict, "awaited": awaited, "plain": plain["retries"]}
    """).build()
    result = run(AsyncLocalRuntime().execute_workflow_async(workflow, resources={"config": proxy}))
    assert result.outputs["read"] == {"awaited_is_dict": True, "awaited": {"retries": 3}, "plain": 3}
    assert [c.node for c in tracker.calls] == ["read", "read"]


def collect_warnings(function):
    """Run ``function`` and collect the warnings raised, including those of objects it dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        function()  # its value is dropped here: a dropped coroutine or request warns now
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_call_never_awaited_in_node_code_is_recorded_and_the_warning_names_it():
    proxy, tracker = tracked(name="db")
    workflow = AsyncWorkflowBuilder("w").add_async_code("store", """
        db = await get_resource("db")
        db.save(1)
        await db.save(2)
        result = {}
    """).build()
    messages = collect_warnings(
        lambda: run(AsyncLocalRuntime().execute_workflow_async(workflow, resources={"db": proxy})))
    assert messages == ["coroutine 'db.save' was never awaited"]  # not the internals' names, and only once
    first, second = tracker.get_calls("db", "save")
    assert (first.args, first.awaited, first.result, first.node) == ((1,), False, None, "store")
    assert (second.args, second.awaited) == ((2,), True)
    assert first.describe() == "save(1) never awaited: add await [node 'store']"
    assert proxy.wrapped.save.call_count == 2 and proxy.wrapped.save.await_count == 1


def test_call_never_awaited_by_a_node_that_then_raises_is_recorded():
    # the failed node's traceback keeps its namespace, and with it the dropped coroutine, in a reference
    # cycle: the call must be recorded when the garbage collector frees that cycle
    proxy, tracker = tracked(name="db")
    workflow = AsyncWorkflowBuilder("w").add_async_code("store", """
        db = await get_resource("db")
        pending = db.save(1)
        raise ValueError("boom")
    """).build()

    def fail():
        result = run(AsyncLocalRuntime().execute_workflow_async(workflow, resources={"db": proxy}))
        assert isinstance(result.errors["store"], ValueError)

    messages = collect_warnings(fail)
    assert messages == ["coroutine 'db.save' was never awaited"]
    (call,) = tracker.get_calls("db", "save")
    assert (call.args, call.awaited, call.node) == ((1,), False, "store")


def test_call_of_a_fakes_async_method_never_awaited_is_recorded():
    class Fake:
        async def ping(self):
            return "pong"

    proxy, tracker = tracked(Fake(), "fake")
    messages = collect_warnings(lambda: proxy.ping())
    assert messages == ["coroutine 'fake.ping' was never awaited"]
    assert [(c.method, c.awaited) for c in tracker.calls] == [("ping", False)]


def test_request_never_awaited_is_recorded_as_such_with_a_warning():
    client = MockHttpClient().add_response("POST", "/p", {})
    proxy, tracker = tracked(client, "http")
    messages = collect_warnings(lambda: proxy.post("/p", json={"a": 1}))
    assert messages == ["'http.post' was never awaited: the call is recorded as not awaited and did not run; "
                        "add await (or async with)"]
    (call,) = tracker.calls
    assert (call.method, call.kwargs, call.awaited) == ("post", {"json": {"a": 1}}, False)
    assert client.get_calls() == ()  # the request was never sent


def test_coroutine_closed_unstarted_is_recorded_as_not_awaited_without_a_warning():
    proxy, tracker = tracked(name="db")
    messages = collect_warnings(lambda: proxy.save(1).close())
    assert messages == [] and [c.awaited for c in tracker.calls] == [False]


def test_calls_reach_the_tracker_through_record():
    seen = []

    class Spy(CallTracker):
        def record(self, call):
            seen.append(call)
            super().record(call)

    tracker = Spy()
    proxy = TrackedResource("svc", create_mock("svc"), tracker)
    run(proxy.op(1))
    assert [c.args for c in seen] == [(1,)] and tracker.calls == tuple(seen)


def test_tracked_resource_is_a_transparent_proxy():
    cache = {"k": 1}
    proxy, _ = tracked(cache, "cache")
    assert proxy.__wrapped__ is cache and proxy.wrapped is cache and proxy.resource_name == "cache"
    assert isinstance(proxy, dict) and proxy["k"] == 1 and len(proxy) == 1 and proxy == {"k": 1}


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
