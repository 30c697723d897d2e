import asyncio
import gc
import time
import traceback

import pytest

from kailash_nb.workflow import (
    AsyncLocalRuntime,
    AsyncWorkflowBuilder,
    ConnectionPathError,
    EventLoopRunningError,
    InvalidInputsError,
    InvalidTimeoutError,
    NodeResultError,
    NodeTimeoutError,
    ResourceNotFoundError,
    ResourceRegistry,
    allow_await,
    current_node_id,
)


def run(workflow, inputs=None, **options):
    runtime_options = {k: options.pop(k) for k in ("max_concurrency",) if k in options}
    return asyncio.run(AsyncLocalRuntime(**runtime_options).execute_workflow_async(workflow, inputs, **options))


def one(code: str, node: str = "n"):
    return AsyncWorkflowBuilder("wf").add_async_code(node, code).build()


def test_output_is_exactly_the_dict_assigned_to_result():
    result = run(one("result = {'a': 1, 'b': [1, 2]}"))
    assert result.status == "success"
    assert result.outputs == {"n": {"a": 1, "b": [1, 2]}}
    assert result.get_output("n", "b") == [1, 2]


def test_top_level_await_and_full_python_work():
    code = """
        import json

        class Box:
            def __init__(self, v):
                self.v = v

        async def double(x):
            await asyncio.sleep(0)
            return x * 2

        values = [await double(x) for x in range(3)]
        result = {"values": values, "json": json.dumps({"k": Box(1).v})}
    """
    assert run(one(code)).get_output("n") == {"values": [0, 2, 4], "json": '{"k": 1}'}


def test_inputs_are_variables_in_every_node():
    wf = (AsyncWorkflowBuilder("test")
          .add_async_code("node1", "result = {'data': inputs_value}")
          .add_async_code("node2", "result = {'processed': data, 'also': inputs_value}")
          .add_connection("node1", "data", "node2", "data")
          .build())
    result = run(wf, {"inputs_value": 42})
    assert result.outputs == {"node1": {"data": 42}, "node2": {"processed": 42, "also": 42}}


def test_connection_passes_the_value_at_the_path_not_the_whole_dict():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("p", "result = {'data': {'field': 7, 'other': 0}, 'rows': [{'id': 3}]}")
          .add_async_code("c", "result = {'f': f, 'g': g, 'r': r, 'd': d}")
          .add_connection("p", "data.field", "c", "f")
          .add_connection("p", "result.data.field", "c", "g")
          .add_connection("p", "rows.0.id", "c", "r")
          .add_connection("p", "data", "c", "d")
          .build())
    assert run(wf).get_output("c") == {"f": 7, "g": 7, "r": 3, "d": {"field": 7, "other": 0}}


def test_path_result_alone_passes_the_whole_output():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("p", "result = {'a': 1, 'b': 2}")
          .add_async_code("c", "result = {'all': everything}")
          .add_connection("p", "result", "c", "everything")
          .build())
    assert run(wf).get_output("c", "all") == {"a": 1, "b": 2}


def test_a_result_key_named_result_wins_over_the_prefix():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("p", "result = {'result': {'x': 1}, 'x': 2}")
          .add_async_code("c", "result = {'v': v}")
          .add_connection("p", "result.x", "c", "v")
          .build())
    assert run(wf).get_output("c", "v") == 1


def test_missing_connection_key_names_the_path_and_existing_keys():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("producer", "result = {'items': [1], 'meta': {'count': 1}}")
          .add_async_code("consumer", "result = {'v': v}")
          .add_connection("producer", "meta.total", "consumer", "v")
          .build())
    result = run(wf)
    assert result.status == "failed"
    assert result.node_status == {"producer": "success", "consumer": "failed"}
    error = result.errors["consumer"]
    assert isinstance(error, ConnectionPathError)
    assert str(error) == ("connection producer.meta.total -> consumer.v: node 'producer' produced no "
                          "'meta.total'; keys under 'meta': 'count'")


def test_missing_top_level_key_lists_the_result_keys():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("producer", "result = {'items': [1], 'meta': 1}")
          .add_async_code("consumer", "result = {}")
          .add_connection("producer", "data", "consumer", "v")
          .build())
    assert "produced no 'data'; keys: 'items', 'meta'" in str(run(wf).errors["consumer"])


def test_missing_result_is_an_error_naming_the_node():
    result = run(one("x = 1", node="forgetful"))
    assert result.node_status["forgetful"] == "failed"
    error = result.errors["forgetful"]
    assert isinstance(error, NodeResultError)
    assert "node 'forgetful' finished without assigning `result`" in str(error)


def test_non_dict_result_is_an_error_naming_the_node_and_type():
    error = run(one("result = [1, 2]", node="lister")).errors["lister"]
    assert isinstance(error, NodeResultError)
    assert "node 'lister' assigned `result` a list ([1, 2]); it must be a dict" in str(error)


def test_notebook_namespace_result_does_not_leak_into_a_node():
    result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(
        one("x = 1"), namespace={"result": {"stale": True}}))
    assert isinstance(result.errors["n"], NodeResultError)


def test_namespace_names_resolve_below_inputs():
    result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(
        one("result = {'a': a, 'b': b}"), {"a": "input"}, namespace={"a": "ns", "b": "ns"}))
    assert result.get_output("n") == {"a": "input", "b": "ns"}


def test_node_exception_is_kept_with_a_traceback_showing_node_lines():
    code = """
        x = 1
        raise ValueError("Invalid input: x")
    """
    workflow = one(code, node="validator")
    result = run(workflow)
    error = result.errors["validator"]
    assert isinstance(error, ValueError)
    frames = traceback.extract_tb(error.__traceback__)
    assert frames[-1].filename.startswith("<node validator")  # a content hash follows if the id was reused
    assert (frames[-1].filename, frames[-1].lineno, frames[-1].line) == (
        workflow.nodes["validator"].filename, 2, 'raise ValueError("Invalid input: x")')
    with pytest.raises(ValueError, match="Invalid input") as info:
        result.raise_for_status()
    assert info.value is error


def test_prints_are_captured_per_node():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "print('hello', 1, sep='-')\nprint('x', end='')\nresult = {}")
          .add_async_code("b", "result = {}")
          .build())
    result = run(wf)
    assert result.logs == {"a": "hello-1\nx"}


def test_print_with_a_file_is_not_captured(capsys):
    result = run(one("import sys\nprint('to stderr', file=sys.stderr)\nresult = {}"))
    assert result.logs == {}
    assert capsys.readouterr().err == "to stderr\n"


def test_failing_node_skips_dependants_and_independent_branch_finishes():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("bad", "raise RuntimeError('down')")
          .add_async_code("after_bad", "result = {}")
          .add_async_code("after_after", "result = {}")
          .add_async_code("good", "await asyncio.sleep(0.01)\nresult = {'ok': True}")
          .add_async_code("after_good", "result = {'ok': ok}")
          .add_connection("bad", "x", "after_bad", "x")
          .add_connection("after_bad", "x", "after_after", "x")
          .add_connection("good", "ok", "after_good", "ok")
          .build())
    result = run(wf)
    assert result.status == "failed"
    assert result.node_status == {"bad": "failed", "after_bad": "skipped", "after_after": "skipped",
                                  "good": "success", "after_good": "success"}
    assert set(result.errors) == {"bad"}
    assert result.failed_nodes == ("bad",)
    assert result.get_output("after_good", "ok") is True


def test_node_starts_when_its_inputs_are_ready_not_by_level():
    # fast -> fast_child must not wait for slow (same level as fast)
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("slow", "await gate.wait()\nresult = {}")
          .add_async_code("fast", "result = {'v': 1}")
          .add_async_code("fast_child", "gate.set()\nresult = {'v': v}")
          .add_connection("fast", "v", "fast_child", "v")
          .build())

    async def main():
        gate = asyncio.Event()
        return await asyncio.wait_for(AsyncLocalRuntime().execute_workflow_async(wf, {"gate": gate}), 5)

    result = asyncio.run(main())
    assert result.status == "success"
    assert result.node_timings["fast_child"].end <= result.node_timings["slow"].end


def test_max_concurrency_bounds_running_nodes():
    builder = AsyncWorkflowBuilder("wf")
    for i in range(8):
        builder.add_async_code(f"n{i}", """
            counter["now"] += 1
            counter["peak"] = max(counter["peak"], counter["now"])
            await asyncio.sleep(0.005)
            counter["now"] -= 1
            result = {}
        """)
    counter = {"now": 0, "peak": 0}
    result = run(builder.build(), {"counter": counter}, max_concurrency=3)
    assert result.status == "success"
    assert counter["peak"] == 3


def test_node_timeout_fails_the_node_with_a_named_error():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("sleepy", "await asyncio.sleep(10)\nresult = {}", timeout=0.05)
          .add_async_code("fine", "result = {}")
          .build())
    result = run(wf)
    assert result.node_status == {"sleepy": "failed", "fine": "success"}
    error = result.errors["sleepy"]
    assert isinstance(error, NodeTimeoutError)
    assert str(error) == "node 'sleepy' ran past its timeout of 0.05 s"


def test_timeout_error_raised_by_node_code_is_not_mistaken_for_the_node_timeout():
    result = run(AsyncWorkflowBuilder("wf").add_async_code(
        "n", "raise TimeoutError('upstream timed out')", timeout=5).build())
    error = result.errors["n"]
    assert type(error) is TimeoutError and str(error) == "upstream timed out"


def test_run_timeout_cancels_running_nodes_and_skips_the_rest():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("done", "result = {'v': 1}")
          .add_async_code("hang", "await asyncio.sleep(10)\nresult = {'v': 1}")
          .add_async_code("later", "result = {}")
          .add_connection("hang", "v", "later", "v")
          .build())

    async def main():
        result = await AsyncLocalRuntime(timeout=0.05).execute_workflow_async(wf)
        return result, asyncio.all_tasks()

    result, tasks = asyncio.run(main())
    assert result.status == "failed"
    assert result.node_status == {"done": "success", "hang": "cancelled", "later": "skipped"}
    assert str(result.errors["hang"]) == "node 'hang' was cancelled: workflow 'wf' ran past its timeout of 0.05 s"
    assert len(tasks) == 1  # only main() itself


def test_cancelling_the_caller_cancels_every_node_and_leaves_no_task():
    builder = AsyncWorkflowBuilder("wf")
    for i in range(3):
        builder.add_async_code(f"n{i}", """
            started.append(1)
            if len(started) == 3:
                all_started.set()
            await asyncio.sleep(10)
            result = {}
        """)
    wf = builder.build()

    async def main():
        all_started = asyncio.Event()
        inputs = {"started": [], "all_started": all_started}
        task = asyncio.ensure_future(AsyncLocalRuntime().execute_workflow_async(wf, inputs))
        await all_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(main()) == []


def test_cancelling_a_single_inline_node_propagates():
    async def main():
        task = asyncio.ensure_future(AsyncLocalRuntime().execute_workflow_async(
            one("await asyncio.sleep(10)\nresult = {}")))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_get_resource_returns_the_registered_object():
    wf = one("db = await get_resource('db')\nresult = {'rows': await db.fetch()}")

    class Db:
        async def fetch(self):
            return [1, 2]

    assert run(wf, resources={"db": Db()}).get_output("n", "rows") == [1, 2]


def test_unknown_resource_names_node_and_registered_names():
    result = run(one("await get_resource('dbb')", node="reader"), resources={"db": 1, "cache": 2})
    error = result.errors["reader"]
    assert isinstance(error, ResourceNotFoundError)
    assert "node 'reader' asked for resource 'dbb', but no resource has that name; registered: 'cache', 'db'" in str(
        error)


def test_registry_factories_are_created_once_across_concurrent_nodes():
    created = []

    async def factory():
        created.append(1)
        await asyncio.sleep(0.01)
        return {"conn": len(created)}

    builder = AsyncWorkflowBuilder("wf")
    for i in range(5):
        builder.add_async_code(f"n{i}", "r = await get_resource('db')\nresult = {'conn': r['conn']}")

    async def main():
        async with ResourceRegistry() as registry:
            registry.register_factory("db", factory)
            return await AsyncLocalRuntime().execute_workflow_async(builder.build(), resources=registry)

    result = asyncio.run(main())
    assert created == [1]
    assert {out["conn"] for out in result.outputs.values()} == {1}


def test_current_node_id_is_visible_to_resources():
    class Recorder:
        def __init__(self):
            self.seen = []

        async def call(self):
            self.seen.append(current_node_id())

    rec = Recorder()
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "await (await get_resource('r')).call()\nresult = {}")
          .add_async_code("b", "await (await get_resource('r')).call()\nresult = {}")
          .build())
    run(wf, resources={"r": rec})
    assert sorted(rec.seen) == ["a", "b"]
    assert current_node_id() is None


def test_results_record_timings_and_execution_time():
    result = run(one("await asyncio.sleep(0.01)\nresult = {}"))
    timing = result.node_timings["n"]
    assert 0 <= timing.start < timing.end and timing.duration >= 0.005
    assert result.execution_time >= timing.duration


def test_two_hundred_concurrent_runs_do_not_cross_talk():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("producer", "await asyncio.sleep(0)\nresult = {'items': [worker] * 3, 'meta': worker}")
          .add_async_code("processor", "await asyncio.sleep(0)\nresult = {'sum': sum(items), 'meta': meta}")
          .add_connection("producer", "items", "processor", "items")
          .add_connection("producer", "meta", "processor", "meta")
          .build())

    async def main():
        runtime = AsyncLocalRuntime()
        return await asyncio.gather(*(runtime.execute_workflow_async(wf, {"worker": i}) for i in range(200)))

    results = asyncio.run(main())
    assert [r.get_output("processor") for r in results] == [{"sum": 3 * i, "meta": i} for i in range(200)]


def test_sync_execute_works_without_a_loop_and_refuses_inside_one():
    wf = one("result = {'v': 1}")
    assert AsyncLocalRuntime().execute(wf).get_output("n", "v") == 1

    async def main():
        AsyncLocalRuntime().execute(wf)

    with pytest.raises(EventLoopRunningError, match=r"use `result = await runtime.execute_workflow_async"):
        asyncio.run(main())
    gc.collect()  # the unawaited coroutine must not exist: no RuntimeWarning


@pytest.mark.parametrize(("inputs", "message"), [
    ({"my-input": 1}, "workflow inputs: key 'my-input' is not a Python variable name"),
    ({"result": 1}, "workflow inputs: key 'result' would hide the runtime's 'result'"),
    ({"__builtins__": {}}, "key '__builtins__' is a dunder name"),
    ({"class": 1}, "key 'class' is a Python keyword"),
    ([], "workflow inputs must be a mapping of variable names to values"),
    ("n=1", "workflow inputs must be a mapping"),
])
def test_bad_inputs_are_refused_before_any_node_runs(inputs, message):
    ran = []
    with pytest.raises(InvalidInputsError, match=message):
        run(one("ran.append(1)\nresult = {}"), inputs, namespace={"ran": ran})
    assert ran == []


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1, "1", True])
def test_a_run_timeout_must_be_positive_finite_seconds(timeout):
    with pytest.raises(InvalidTimeoutError, match=r"execute_workflow_async\(timeout=\.\.\.\) must be a"):
        run(one("result = {}"), timeout=timeout)
    with pytest.raises(InvalidTimeoutError, match=r"AsyncLocalRuntime\(timeout=...\) must be a"):
        AsyncLocalRuntime(timeout=timeout)


def test_passing_the_builder_instead_of_a_workflow_says_to_build():
    with pytest.raises(TypeError, match=r"call \.build\(\) on the builder first"):
        run(AsyncWorkflowBuilder("wf").add_async_code("n", "result = {}"))


@pytest.mark.parametrize("option", [{"max_concurrency": 0}, {"timeout": -1}])
def test_runtime_options_are_checked(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        AsyncLocalRuntime(**option)


def diamond():
    return (AsyncWorkflowBuilder("wf")
            .add_async_code("source", "ran.append('source')\nresult = {'v': base}")
            .add_async_code("left", "ran.append('left')\nresult = {'v': v + 1}")
            .add_async_code("right", "ran.append('right')\nresult = {'v': v * 10}")
            .add_async_code("sink", "ran.append('sink')\nresult = {'total': a + b}")
            .add_connection("source", "v", "left", "v")
            .add_connection("source", "v", "right", "v")
            .add_connection("left", "v", "sink", "a")
            .add_connection("right", "v", "sink", "b")
            .build())


def test_targets_run_only_the_nodes_they_need():
    ran: list[str] = []
    result = run(diamond(), {"ran": ran, "base": 1}, targets=["left"])
    assert sorted(ran) == ["left", "source"]
    assert result.node_status == {"source": "success", "left": "success"}
    assert result.get_output("left", "v") == 2


def test_reused_outputs_feed_dependants_without_running():
    ran: list[str] = []
    reuse = {"left": {"v": 5}, "right": {"v": 7}}
    result = run(diamond(), {"ran": ran, "base": 1}, targets=["sink"], reuse=reuse)
    assert ran == ["sink"]
    assert result.node_status == {"sink": "success"}
    assert result.outputs == {"sink": {"total": 12}}
    assert result.summary() == "workflow 'wf': success\n  sink: success"


def test_reuse_of_one_branch_runs_the_rest_of_what_is_needed():
    ran: list[str] = []
    result = run(diamond(), {"ran": ran, "base": 2}, targets=["sink"], reuse={"left": {"v": 100}})
    assert sorted(ran) == ["right", "sink", "source"]
    assert result.get_output("sink", "total") == 120


def test_partial_run_with_a_missing_key_in_a_reused_output_names_the_path():
    result = run(diamond(), {"ran": [], "base": 1}, targets=["sink"],
                 reuse={"left": {"w": 1}, "right": {"v": 1}})
    assert "node 'left' produced no 'v'; keys: 'w'" in str(result.errors["sink"])


def test_partial_run_with_an_unknown_node_lists_nodes():
    with pytest.raises(ValueError, match=r"workflow 'wf' has no node 'snk'; nodes: 'source', 'left'"):
        run(diamond(), {"ran": [], "base": 1}, targets=["snk"])


SWALLOWS_CANCELLATION = """
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        pass
    result = {'done': True}
"""


def test_node_that_swallows_cancellation_still_fails_its_timeout():
    result = run(AsyncWorkflowBuilder("wf").add_async_code("stubborn", SWALLOWS_CANCELLATION, timeout=0.02).build())
    assert result.node_status == {"stubborn": "failed"}
    assert str(result.errors["stubborn"]) == "node 'stubborn' ran past its timeout of 0.02 s"


def test_run_timeout_is_reported_even_when_a_node_swallows_the_cancellation():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("stubborn", SWALLOWS_CANCELLATION)
          .add_async_code("quick", "result = {}")
          .build())

    async def main():
        return await AsyncLocalRuntime(timeout=0.02).execute_workflow_async(wf)

    result = asyncio.run(main())
    assert result.status == "failed"
    assert result.node_status == {"stubborn": "cancelled", "quick": "success"}
    assert "stubborn" not in result.outputs
    assert str(result.errors["stubborn"]) == (
        "node 'stubborn' ignored its cancellation and finished late: workflow 'wf' ran past its timeout of 0.02 s")


def test_raise_for_status_notes_the_other_failed_nodes():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "raise KeyError('k')")
          .add_async_code("b", "raise ValueError('v')")
          .build())
    result = run(wf)
    with pytest.raises(KeyError) as info:
        result.raise_for_status()
    with pytest.raises(KeyError):
        result.raise_for_status()  # a second call does not repeat the note
    assert info.value.__notes__ == ["workflow 'wf' also failed in node 'b': ValueError: v"]


# -- what node code sees ---------------------------------------------------------------------------

def test_node_code_always_has_the_real_builtins():
    result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(
        one("result = {'n': len([1, 2])}"), namespace={"__builtins__": {"len": None}}))
    assert result.get_output("n", "n") == 2


def test_node_code_runs_as_module_kailash_node_unless_the_namespace_names_one():
    code = "class Box:\n    pass\nresult = {'name': __name__, 'module': Box.__module__}"
    assert run(one(code)).get_output("n") == {"name": "__kailash_node__", "module": "__kailash_node__"}
    in_notebook = asyncio.run(AsyncLocalRuntime().execute_workflow_async(one(code), namespace={"__name__": "__main__"}))
    assert in_notebook.get_output("n") == {"name": "__main__", "module": "__main__"}


def test_node_code_does_not_inherit_the_engine_s_future_imports():
    code = "def f(x: int) -> str:\n    return str(x)\nresult = {'annotations': f.__annotations__}"
    assert run(one(code)).get_output("n", "annotations") == {"x": int, "return": str}


def test_the_result_keeps_the_inputs_of_the_run():
    assert run(one("result = {}"), {"a": 1}).inputs == {"a": 1}


@pytest.mark.parametrize(("code", "log"), [
    ("print('a', 1)", "a 1\n"),
    ("print('a', 'b', sep=None, end=None)", "a b\n"),
    ("print()", "\n"),
    ("print('a', end='')\nprint('b')", "ab\n"),
])
def test_prints_are_logged_as_print_would_write_them(code, log):
    assert run(one(code + "\nresult = {}")).logs == {"n": log}


def test_print_to_a_file_gets_every_option():
    class File:
        def __init__(self):
            self.text = ""
            self.flushes = 0

        def write(self, text):
            self.text += text

        def flush(self):
            self.flushes += 1

    plain, flushed = File(), File()
    code = "print('a', 'b', sep='-', end='!', file=plain)\nprint('c', file=flushed, flush=True)\nresult = {}"
    result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(
        one(code), namespace={"plain": plain, "flushed": flushed}))
    assert result.logs == {}
    assert (plain.text, plain.flushes) == ("a-b!", 0)
    assert (flushed.text, flushed.flushes) == ("c\n", 1)


# -- calling the runtime -----------------------------------------------------------------------------

@pytest.mark.parametrize(("workflow", "message"), [
    (AsyncWorkflowBuilder("wf"), "expected a Workflow (call .build() on the builder first), got AsyncWorkflowBuilder"),
    ({"nodes": []}, "expected a Workflow, got dict"),
])
def test_something_else_than_a_workflow_is_a_type_error_naming_it(workflow, message):
    with pytest.raises(TypeError) as info:
        run(workflow)
    assert str(info.value) == message


def test_execution_time_covers_the_nodes_and_fits_in_the_call():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "await asyncio.sleep(0.01)\nresult = {}")
          .add_async_code("b", "await asyncio.sleep(0.01)\nresult = {}")
          .add_connection("a", "v", "b", "v")
          .build())
    before = time.monotonic()  # the loop's clock
    result = AsyncLocalRuntime().execute(wf, targets=["a"])
    after = time.monotonic()
    assert result.node_status == {"a": "success"}
    assert result.node_timings["a"].end <= result.execution_time <= after - before
    assert before <= result.started <= after - result.execution_time


def test_sync_execute_passes_inputs_and_options_on():
    wf = diamond()
    ran: list[str] = []
    result = AsyncLocalRuntime().execute(wf, {"ran": ran, "base": 1}, targets=["right"])
    assert sorted(ran) == ["right", "source"]
    assert result.get_output("right", "v") == 10


def test_sync_execute_inside_a_running_loop_says_what_to_do_instead():
    async def main():
        AsyncLocalRuntime().execute(one("result = {}"))

    with pytest.raises(EventLoopRunningError) as info:
        asyncio.run(main())
    assert str(info.value) == (
        "AsyncLocalRuntime.execute() cannot run inside a running event loop (a notebook or async code runs one); "
        "use `result = await runtime.execute_workflow_async(workflow, inputs)` instead")
    gc.collect()


def test_reuse_without_targets_runs_every_other_node():
    ran: list[str] = []
    result = run(diamond(), {"ran": ran, "base": 1}, reuse={"source": {"v": 5}})
    assert sorted(ran) == ["left", "right", "sink"]
    assert list(result.node_status) == ["left", "right", "sink"]
    assert result.get_output("sink", "total") == 56


def test_await_in_node_code_is_pythons_wherever_it_is_written():
    code = """
        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        async def gen():
            for i in range(3):
                yield await double(i)

        class Holder:
            async def get(self):
                return [await double(x) for x in (5, 6)]

        values = [await double(x) for x in range(2)] + [v async for v in gen()]
        nested = await double(await double(1))
        result = {"values": values, "nested": nested, "held": await Holder().get(),
                  "text": f"{await double(21)}", "awaited": await asyncio.gather(double(1), double(2))}
    """
    assert run(one(code)).get_output("n") == {"values": [0, 2, 0, 2, 4], "nested": 4, "held": [10, 12],
                                              "text": "42", "awaited": [2, 4]}


def test_an_error_inside_an_awaited_call_keeps_the_node_lines_in_its_traceback():
    workflow = one("""
        async def fail():
            raise ValueError("deep")

        x = 1
        await fail()
    """, node="awaits")
    error = run(workflow).errors["awaits"]
    frames = [(f.filename, f.lineno, f.line) for f in traceback.extract_tb(error.__traceback__)]
    name = workflow.nodes["awaits"].filename
    assert frames[-2:] == [(name, 5, "await fail()"), (name, 2, 'raise ValueError("deep")')]
    assert not any("kailash_nb" in f[0] for f in frames[-2:])


class PlainService:
    """A resource whose sync method declares its result awaitable in node code, as a ``Mock()``'s does."""

    def get(self, value):
        allow_await(value, "get() is sync: write it without await")
        return value


@pytest.mark.parametrize("value", [None, 0, "text", [1], {"a": 1}])
def test_node_code_awaits_a_value_allowed_by_the_call_that_returned_it(value):
    code = """
        svc = await get_resource('svc')
        plain = svc.get(value)
        result = {'got': await svc.get(value), 'plain': plain}
    """
    result = run(one(code), {"value": value}, resources={"svc": PlainService()})
    assert result.errors == {} and result.get_output("n") == {"got": value, "plain": value}
    assert result.get_output("n", "got") is value


def test_a_value_allowed_in_one_node_is_not_awaitable_in_another():
    workflow = (
        AsyncWorkflowBuilder("wf")
        .add_async_code("first", "svc = await get_resource('svc')\nresult = {'v': svc.get([1])}")
        .add_async_code("second", "result = {'v': await v}")
        .add_connection("first", "v", "second", "v")
        .build()
    )
    result = run(workflow, resources={"svc": PlainService()})
    error = result.errors["second"]
    assert type(error) is TypeError and str(error) == "object list can't be used in 'await' expression"
    assert not hasattr(error, "__notes__")  # no plain result was allowed in that node


def test_a_type_error_about_awaiting_gets_the_advice_of_the_allowed_plain_result():
    code = "svc = await get_resource('svc')\nawait asyncio.gather(svc.get({'a': 1}))"
    error = run(one(code), resources={"svc": PlainService()}).errors["n"]
    assert type(error) is TypeError and error.__notes__ == ["get() is sync: write it without await"]
    unrelated = "svc = await get_resource('svc')\nsvc.get(1)\nlen(5)"
    assert not hasattr(run(one(unrelated), resources={"svc": PlainService()}).errors["n"], "__notes__")
