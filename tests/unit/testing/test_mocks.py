"""Tracked mock resources: configuration reaches the mock, every call becomes a CallRecord."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import re
import traceback
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
    # node code is a coroutine: a Mock's StopIteration would become RuntimeError there
    result = run_node("svc = await get_resource('svc')\nassert await svc.op() == 1\nawait svc.op()", {"svc": proxy})
    error = result.errors["node"]
    assert type(error) is MockExhaustedError and isinstance(error, AssertionError)
    assert re.fullmatch(EXHAUSTED, str(error))
    first, second = tracker.get_calls("svc", "op")
    assert first.result == 1 and second.exception is error


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


def run_node(code, resources, node="node"):
    """Run ``code`` as the one node of a workflow; returns the WorkflowResult."""
    workflow = AsyncWorkflowBuilder("w").add_async_code(node, code).build()
    return run(AsyncLocalRuntime().execute_workflow_async(workflow, resources=resources))


def test_sync_mock_result_is_awaitable_where_node_code_awaits_it():
    proxy, tracker = tracked(Mock(), "http")
    response = AsyncMock()
    response.json = AsyncMock(return_value={"data": "test"})
    proxy.get.return_value = response
    result = run_node("""
        http = await get_resource("http")
        resp = await http.get("u")
        result = {"response": resp, "data": await resp.json()}
    """, {"http": proxy})
    assert result.outputs["node"]["response"] is response and result.outputs["node"]["data"] == {"data": "test"}
    assert tracker.get_calls("http", "get")[0].result is response


def test_sync_mock_result_is_the_plain_value_in_test_code():
    proxy, tracker = tracked(Mock(), "config")
    settings = {"debug": True, "hosts": ["a", "b"]}
    proxy.get.return_value = settings
    proxy.unset.return_value = None
    value = proxy.get("app")
    assert value is settings and type(value) is dict and json.dumps(value) == json.dumps(settings)
    assert proxy.unset() is None
    assert tracker.get_calls("config", "get")[0].result is settings


# Each use that a proxy of the value failed: the node's result says whether the value behaved as itself.
PLAIN_VALUE_USES = {
    "json.dumps": ("rows", "json.dumps(db.rows())", '[{"id": 1}]'),
    "json.dumps awaited": ("rows", "json.dumps(await db.rows())", '[{"id": 1}]'),
    "str.join": ("name", "','.join([db.name(), 'x'])", "abc,x"),
    "str.join awaited": ("names", "','.join(await db.names())", "a,b"),
    "re.match": ("name", "bool(re.match('ab', db.name()))", True),
    "type(x) == str": ("name", "type(db.name()) == str", True),
    "x is None": ("nothing", "db.nothing() is None", True),
    "x is None awaited": ("nothing", "(await db.nothing()) is None", True),
    "match case None": ("nothing", "matched(db.nothing())", "None"),
}


@pytest.mark.parametrize("use", sorted(PLAIN_VALUE_USES))
def test_sync_mock_result_is_the_plain_value_in_node_code(use):
    method, expression, expected = PLAIN_VALUE_USES[use]
    proxy, _ = tracked(Mock(), "db")
    proxy.rows.return_value = [{"id": 1}]
    proxy.names.return_value = ["a", "b"]
    proxy.name.return_value = "abc"
    proxy.nothing.return_value = None
    result = run_node(f"""
        import json, re

        def matched(value):
            match value:
                case None:
                    return "None"
                case _:
                    return "something else"

        db = await get_resource("db")
        result = {{"value": {expression}}}
    """, {"db": proxy})
    assert result.errors == {} and result.outputs["node"] == {"value": expected}
    assert [c.method for c in proxy.tracked_calls()] == [method]


def test_outputs_and_call_records_hold_plain_values_and_serialize_as_json():
    proxy, tracker = tracked(Mock(), "db")
    proxy.rows.return_value = [{"id": 1}]
    proxy.count.return_value = 1
    result = run_node("""
        db = await get_resource("db")
        rows = db.rows()
        result = {"rows": rows, "count": await db.count(), "first": rows[0]}
    """, {"db": proxy})
    assert json.dumps(result.outputs) == '{"node": {"rows": [{"id": 1}], "count": 1, "first": {"id": 1}}}'
    assert type(result.outputs["node"]["rows"]) is list and type(result.outputs["node"]["count"]) is int
    assert [type(c.result) for c in tracker.calls] == [list, int]


def test_node_code_awaits_a_sync_mock_result_however_it_is_held():
    proxy, _ = tracked(MagicMock(), "config")
    proxy.load.return_value = {"retries": 3}
    result = run_node("""
        config = await get_resource("config")
        first = config.load("a")
        second = config.load("b")
        results = [await second, await first, await config.load("c")]

        async def inner():
            return await config.load("d")

        result = {"all_dicts": all(type(r) is dict for r in [*results, await inner()])}
    """, {"config": proxy})
    assert result.outputs["node"] == {"all_dicts": True}
    assert [c.node for c in proxy.tracked_calls()] == ["node"] * 4


def test_awaiting_a_plain_value_that_no_mock_returned_fails_as_python_says():
    result = run_node("import time\nawait time.sleep(0)\nresult = {}", {})
    error = result.errors["node"]
    assert type(error) is TypeError and str(error) == "object NoneType can't be used in 'await' expression"
    assert not getattr(error, "__notes__", None)
    assert traceback.extract_tb(error.__traceback__)[-1].filename.startswith("<node node")


SYNC_MOCK_ADVICE = ("resource 'db': op() is a sync Mock method, so its result is a plain value, which only "
                    "`await` in node code accepts; for asyncio.gather(), wait_for(), create_task() or an "
                    "`await` outside node code, make it async: `<mock>.op = AsyncMock(return_value=...)`, or "
                    "create the resource with mock=True and no factory (an AsyncMock)")


@pytest.mark.parametrize("how", ["wait_for", "gather", "create_task"])
def test_asyncio_functions_given_a_sync_mock_result_in_node_code_say_what_to_write(how):
    proxy, _ = tracked(Mock(), "db")
    proxy.op.return_value = {"id": 7}
    call = {"wait_for": "asyncio.wait_for(db.op(), 1)", "gather": "asyncio.gather(db.op())",
            "create_task": "asyncio.create_task(db.op())"}[how]
    result = run_node(f"db = await get_resource('db')\nawait {call}\nresult = {{}}", {"db": proxy})
    error = result.errors["node"]
    assert type(error) is TypeError and error.__notes__ == [SYNC_MOCK_ADVICE]


@pytest.mark.parametrize("how", ["await", "variable", "wait_for", "gather", "create_task"])
def test_async_mock_call_works_however_it_is_awaited(how):
    proxy, tracker = tracked(AsyncMock(), "svc")
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
        return await asyncio.create_task(proxy.op(1))

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
