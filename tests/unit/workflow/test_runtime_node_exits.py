"""What node code that raises a BaseException, or forgets an ``await``, does to a run."""

import asyncio
import gc
import warnings

import pytest

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder


def _loop_errors(main):
    """Run ``main()`` and return (its value, what the loop's exception handler received, e.g. "Task exception
    was never retrieved"), collected after a garbage collection so that a dropped task reports itself."""
    reported = []

    async def wrapper():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context["message"]))
        value = await main()
        gc.collect()
        await asyncio.sleep(0)
        return value

    return asyncio.run(wrapper()), reported


def _parallel(code_a: str, code_b: str = "result = {'b': 1}"):
    return AsyncWorkflowBuilder("wf").add_async_code("a", code_a).add_async_code("b", code_b).build()


@pytest.mark.parametrize("raised", ["GeneratorExit('bye')", "asyncio.CancelledError('own')",
                                    "type('Stop', (BaseException,), {})('custom')"])
@pytest.mark.parametrize("concurrent", [True, False])
def test_a_node_raising_a_base_exception_fails_with_it_and_no_task_exception_goes_unretrieved(raised, concurrent):
    workflow = (_parallel(f"raise {raised}") if concurrent
                else AsyncWorkflowBuilder("wf").add_async_code("a", f"raise {raised}").build())

    result, reported = _loop_errors(lambda: AsyncLocalRuntime().execute_workflow_async(workflow))

    assert result.node_status["a"] == "failed"
    assert isinstance(result.errors["a"], BaseException) and not isinstance(result.errors["a"], Exception)
    assert str(result.errors["a"]) in ("bye", "own", "custom")
    if concurrent:
        assert result.node_status["b"] == "success"
    assert reported == []


def test_a_failed_base_exception_skips_the_dependants():
    workflow = (AsyncWorkflowBuilder("wf").add_async_code("a", "raise GeneratorExit\nresult = {'v': 1}")
                .add_async_code("b", "result = {'v': v}").add_connection("a", "v", "b", "v").build())
    result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(workflow))
    assert result.node_status == {"a": "failed", "b": "skipped"}
    assert type(result.errors["a"]) is GeneratorExit


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("concurrent", [True, False])
def test_system_exit_and_keyboard_interrupt_stop_the_run_and_reach_the_caller(raised, concurrent):
    stopped = []
    waiting = "try:\n    await asyncio.sleep(3600)\nfinally:\n    stopped.append('b')\nresult = {}"
    code = f"await asyncio.sleep(0)\nraise {raised.__name__}(7)"
    workflow = _parallel(code, waiting) if concurrent else AsyncWorkflowBuilder("wf").add_async_code("a", code).build()

    async def main():
        try:
            await AsyncLocalRuntime().execute_workflow_async(workflow, namespace={"stopped": stopped})
        except raised as exc:  # reaches the awaiting caller, not the loop (which asyncio would stop with it)
            return exc, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return None, []

    (caught, left), reported = _loop_errors(main)

    assert isinstance(caught, raised) and caught.args == (7,)
    assert left == [] and reported == []
    if concurrent:
        assert stopped == ["b"]  # the other node was cancelled and waited for


def test_a_cancellation_from_outside_still_cancels_the_node_and_propagates():
    workflow = AsyncWorkflowBuilder("wf").add_async_code("a", "await asyncio.sleep(3600)\nresult = {}").build()

    async def main():
        task = asyncio.ensure_future(AsyncLocalRuntime().execute_workflow_async(workflow))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


@pytest.mark.parametrize("concurrent", [True, False])
def test_a_forgotten_await_warns_at_the_node_line_that_kept_the_coroutine(concurrent):
    code = "x = 1\npending = asyncio.sleep(0)\nresult = {'x': x}"
    workflow = _parallel(code) if concurrent else AsyncWorkflowBuilder("wf").add_async_code("a", code).build()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(workflow))
        gc.collect()

    assert result.node_status["a"] == "success"
    never_awaited = [w for w in caught if "never awaited" in str(w.message)]
    filename = workflow.nodes["a"].filename  # <node a>, with a hash if other code was compiled as node 'a'
    assert filename.startswith("<node a")
    assert [(w.category, w.filename, w.lineno) for w in never_awaited] == [(RuntimeWarning, filename, 2)]
    assert str(never_awaited[0].message) == "coroutine 'sleep' was never awaited"


def test_a_forgotten_await_in_a_failing_node_warns_at_its_line_too():
    code = "rows = asyncio.sleep(0)\nfor row in rows:\n    pass\nresult = {}"
    workflow = AsyncWorkflowBuilder("wf").add_async_code("a", code).build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(workflow))
        assert isinstance(result.errors["a"], TypeError)
        del result
        gc.collect()
    filename = workflow.nodes["a"].filename
    assert [(w.filename, w.lineno) for w in caught if "never awaited" in str(w.message)] == [(filename, 1)]


def test_a_coroutine_the_node_handed_elsewhere_is_left_alone():
    kept = []
    code = "c = asyncio.sleep(0, 'later')\nkept.append(c)\nresult = {}"

    async def main():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await AsyncLocalRuntime().execute_workflow_async(
                AsyncWorkflowBuilder("wf").add_async_code("a", code).build(), namespace={"kept": kept})
        return caught, await kept.pop()

    caught, value = asyncio.run(main())
    assert value == "later"
    assert [w for w in caught if "never awaited" in str(w.message)] == []


def test_a_forgotten_await_with_warnings_as_errors_fails_the_node():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = asyncio.run(AsyncLocalRuntime().execute_workflow_async(
            AsyncWorkflowBuilder("wf").add_async_code("a", "c = asyncio.sleep(0)\nresult = {}").build()))
    assert result.node_status["a"] == "failed"
    assert isinstance(result.errors["a"], RuntimeWarning)
    assert "never awaited" in str(result.errors["a"])
