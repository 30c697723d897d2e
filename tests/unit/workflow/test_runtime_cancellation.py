"""Cancelling the caller always propagates, leaves no task behind, and stops nodes from starting."""

import asyncio
import contextlib

import pytest

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

SWALLOWS = """
    started.set()
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        seen.append('{node} swallowed it')
    result = {{'v': 1}}
"""


def swallowing(node: str) -> str:
    return SWALLOWS.format(node=node)


async def cancel_once_started(workflow, inputs):
    """Start a run, cancel it once ``started`` is set, and return the leftover tasks after it ended."""
    task = asyncio.create_task(AsyncLocalRuntime().execute_workflow_async(workflow, inputs))
    await inputs["started"].wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def test_cancelling_the_caller_propagates_when_the_only_node_swallows_it():
    wf = AsyncWorkflowBuilder("wf").add_async_code("only", swallowing("only")).build()
    seen: list[str] = []

    async def main():
        return await cancel_once_started(wf, {"started": asyncio.Event(), "seen": seen})

    assert asyncio.run(main()) == []
    assert seen == ["only swallowed it"]


def test_cancelling_the_caller_stops_a_chain_whose_first_node_swallows_it():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("first", swallowing("first"))
          .add_async_code("second", "seen.append('second ran')\nresult = {}")
          .add_connection("first", "v", "second", "v")
          .build())
    seen: list[str] = []

    async def main():
        return await cancel_once_started(wf, {"started": asyncio.Event(), "seen": seen})

    assert asyncio.run(main()) == []
    assert seen == ["first swallowed it"]


def test_cancelling_the_caller_propagates_when_a_node_task_swallows_it():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("stubborn", swallowing("stubborn"))
          .add_async_code("other", "await asyncio.sleep(10)\nresult = {}")
          .add_async_code("after", "seen.append('after ran')\nresult = {}")
          .add_connection("stubborn", "v", "after", "v")
          .build())
    seen: list[str] = []

    async def main():
        return await cancel_once_started(wf, {"started": asyncio.Event(), "seen": seen})

    assert asyncio.run(main()) == []
    assert seen == ["stubborn swallowed it"]


def test_cancelling_the_caller_cancels_every_running_node():
    builder = AsyncWorkflowBuilder("wf")
    for i in range(3):
        builder.add_async_code(f"n{i}", f"""
            running.append('n{i}')
            if len(running) == 3:
                started.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append('n{i}')
                raise
            result = {{}}
        """)
    seen: list[str] = []

    async def main():
        return await cancel_once_started(builder.build(), {"started": asyncio.Event(), "seen": seen, "running": []})

    assert asyncio.run(main()) == []
    assert sorted(seen) == ["n0", "n1", "n2"]


def test_a_caller_cancelling_again_passes_it_on_and_still_waits_for_every_node():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("slow_cleanup", """
              started.set()
              try:
                  await asyncio.sleep(10)
              finally:
                  cleaning.set()
                  try:
                      await asyncio.sleep(10)
                  except asyncio.CancelledError:
                      for _ in range(3):
                          await asyncio.sleep(0)  # still cleaning up after the second cancellation
                      seen.append('cleaned up')
                      raise
              result = {}
          """)
          .add_async_code("other", "await asyncio.sleep(10)\nresult = {}")
          .build())
    seen: list[str] = []

    async def main():
        inputs = {"started": asyncio.Event(), "cleaning": asyncio.Event(), "seen": seen}
        task = asyncio.create_task(AsyncLocalRuntime().execute_workflow_async(wf, inputs))
        await inputs["started"].wait()
        task.cancel()
        await inputs["cleaning"].wait()
        task.cancel()  # the caller insists while a node is still cleaning up
        with pytest.raises(asyncio.CancelledError):
            await task
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(main()) == []
    assert seen == ["cleaned up"]


def test_a_cancel_request_pending_before_the_run_does_not_stop_it():
    wf = (AsyncWorkflowBuilder("wf")
          .add_async_code("a", "await asyncio.sleep(0)\nresult = {'v': 1}")
          .add_async_code("b", "await asyncio.sleep(0)\nresult = {'v': v + 1}")
          .add_connection("a", "v", "b", "v")
          .build())

    async def main():
        me = asyncio.current_task()
        me.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # handled, not withdrawn: as in cleanup code
            await asyncio.sleep(1)
        return await AsyncLocalRuntime().execute_workflow_async(wf)

    result = asyncio.run(main())
    assert result.status == "success"
    assert result.get_output("b", "v") == 2


def test_cancelling_a_run_with_a_timeout_propagates_the_cancellation():
    wf = AsyncWorkflowBuilder("wf").add_async_code("only", swallowing("only")).build()

    async def main():
        inputs = {"started": asyncio.Event(), "seen": []}
        task = asyncio.create_task(AsyncLocalRuntime(timeout=5).execute_workflow_async(wf, inputs))
        await inputs["started"].wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_workflow_outside_any_task_is_refused():
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", "result = {}").build()

    async def main():
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[BaseException] = loop.create_future()

        def outside_any_task() -> None:
            running = AsyncLocalRuntime().execute_workflow_async(wf)
            try:
                running.send(None)
            except BaseException as exc:
                outcome.set_result(exc)

        loop.call_soon(outside_any_task)
        return await outcome

    error = asyncio.run(main())
    assert isinstance(error, RuntimeError)
    assert str(error) == "a workflow must run inside an asyncio task (await it from async code)"
