"""What a failing or interrupted magic cell shows: the line the user wrote and the node's own lines."""

from __future__ import annotations

import asyncio
import re

import pytest
from IPython.core.interactiveshell import InteractiveShell
from notebook_cells import plain, raised, run, run_cell

from kailash_nb.notebook.transform import as_written


def shown(capsys: pytest.CaptureFixture[str]) -> str:
    """What the shell printed (IPython prints a failing cell's traceback to stdout)."""
    return plain(capsys.readouterr().out)


def frames(traceback: str) -> list[str]:
    """The frame headers of a traceback IPython printed: ``Cell In[1], line 2`` or ``File <node a>:2``
    (a node id that other tests used with other code gets a content hash in its name: left out here)."""
    headers = [line for line in traceback.splitlines() if line.startswith(("Cell In", "File "))]
    return [re.sub(r"<node (\S+) [0-9a-f]{8}>", r"<node \1>", line) for line in headers]


def test_a_node_error_shows_the_magic_line_then_the_node_lines_without_the_kit(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    [result] = run(shell, "%%kailash boom --description 'goes wrong'\nx = 1\nraise ValueError('bad')")
    assert isinstance(raised(result), ValueError)
    traceback = shown(capsys)
    assert "----> 1 %%kailash boom --description 'goes wrong'" in traceback
    assert "----> 2 raise ValueError('bad')" in traceback
    assert frames(traceback) == ["Cell In[1], line 1", "File <node boom>:2"]
    assert "__import__" not in traceback and "kailash_nb/" not in traceback
    assert traceback.rstrip().endswith("ValueError: bad")


def test_a_notebook_function_called_by_node_code_keeps_its_frame(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    results = run(shell, "def lookup(key):\n    raise LookupError(key)", "%%kailash deep\nx = lookup('k')\nresult = {}")
    assert isinstance(raised(results[1]), LookupError)
    traceback = shown(capsys)
    assert frames(traceback) == ["Cell In[1], line 1", "File <node deep>:1", "Cell In[1], line 2, in lookup(key)"]
    assert "----> 1 x = lookup('k')" in traceback and "----> 2     raise LookupError(key)" in traceback


def test_an_error_the_kit_raised_for_node_code_points_at_the_node_line(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    [result] = run(shell, "%%kailash needs\nclient = await get_resource('api')\nresult = {}")
    assert type(raised(result)).__name__ == "ResourceNotFoundError"
    traceback = shown(capsys)
    assert frames(traceback) == ["Cell In[1], line 1", "File <node needs>:1"]
    assert "----> 1 client = await get_resource('api')" in traceback


def test_a_line_magic_error_shows_the_line_as_written_and_only_where_the_kit_raised_it(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    [result] = run(shell, "x = 1\nrun = %kailash run nowhere  # a workflow that does not exist")
    assert type(raised(result)).__name__ == "UnknownWorkflowError"
    traceback = shown(capsys)
    assert "      1 x = 1\n----> 2 run = %kailash run nowhere  # a workflow that does not exist" in traceback
    assert "__import__" not in traceback
    [cell, kit] = frames(traceback)
    assert cell == "Cell In[1], line 2" and kit.startswith("File ") and "session.py" in kit


def test_lines_after_a_magic_show_it_as_written_in_their_context(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    [result] = run(shell, "%%kailash n --no-run\nresult = {'v': 1}",
                   "if True:\n    r = %kailash run\nraise RuntimeError(r.status)")[1:]
    assert isinstance(raised(result), RuntimeError)
    traceback = shown(capsys)
    assert "      1 if True:\n      2     r = %kailash run\n----> 3 raise RuntimeError(r.status)" in traceback


@pytest.mark.parametrize(("cell", "lines"), [
    ("r = %kailash run  # again", ["r = %kailash run  # again"]),
    ("%kailash bench etl -n 3 --inputs {'n': 1}", ["%kailash bench etl -n 3 --inputs {'n': 1}"]),
    ("%%kailash a items=b.items -w 'my flow'\nx = await f()\nresult = {'x': x}\n",
     ["%%kailash a items=b.items -w 'my flow'"]),
    ("if ok:\n    %kailash reset\n%unload_ext kailash_nb", ["if ok:", "    %kailash reset", "%unload_ext kailash_nb"]),
    ("%kailash workflow\nx = '%kailash run'", ["get_ipython().run_line_magic('kailash', 'workflow')",
                                               "x = '%kailash run'"]),
])
def test_as_written_undoes_the_rewriting_line_by_line(cell: str, lines: list[str]) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    from kailash_nb.notebook.transform import transform_lines

    transformed = transform_lines(TransformerManager().transform_cell(cell).splitlines(keepends=True))
    assert [as_written(line).rstrip("\n") for line in transformed] == lines


async def _interrupt(ip: InteractiveShell, cell: str, started: asyncio.Event) -> object:
    """Run ``cell``, cancel its task once ``started`` is set (what ipykernel does on an interrupt)."""
    running = asyncio.ensure_future(run_cell(ip, cell))
    await asyncio.wait_for(started.wait(), 30)
    running.cancel()
    return await running


def test_an_interrupted_cell_shows_keyboard_interrupt_at_the_awaiting_node_line(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> tuple[object, object, set[asyncio.Task[object]]]:
        started = asyncio.Event()
        shell.user_ns.update(started=started, cleaned=[])
        cell = ("%%kailash sleeper\ntry:\n    started.set()\n    await asyncio.sleep(3600)\n"
                "finally:\n    cleaned.append(True)\nresult = {}")
        interrupted = await _interrupt(shell, cell, started)
        after = await run_cell(shell, "%%kailash other\nresult = {'ok': True}")
        return interrupted, after, asyncio.all_tasks() - {asyncio.current_task()}

    interrupted, after, left = asyncio.run(scenario())
    error = raised(interrupted)
    assert type(error) is KeyboardInterrupt
    assert str(error) == "%%kailash sleeper was interrupted while node 'sleeper' was awaiting"
    traceback = shown(capsys)
    assert frames(traceback) == ["Cell In[1], line 1", "File <node sleeper>:3"]
    assert "----> 1 %%kailash sleeper" in traceback and "----> 3     await asyncio.sleep(3600)" in traceback
    assert "CancelledError" not in traceback and "kailash_nb/" not in traceback and "asyncio/" not in traceback
    assert shell.user_ns["cleaned"] == [True] and left == set()
    assert raised(after) is None and after.result.output == {"ok": True}


def test_an_interrupted_run_of_concurrent_nodes_shows_keyboard_interrupt(shell: InteractiveShell) -> None:
    async def scenario() -> object:
        started = asyncio.Event()
        shell.user_ns["started"] = started
        for cell in ("%%kailash a --no-run\nstarted.set()\nawait asyncio.sleep(3600)\nresult = {}",
                     "%%kailash b --no-run\nawait asyncio.sleep(3600)\nresult = {}"):
            await run_cell(shell, cell)
        return await _interrupt(shell, "r = %kailash run", started)

    error = raised(asyncio.run(scenario()))
    assert type(error) is KeyboardInterrupt and str(error).startswith("%kailash run was interrupted")
    assert "r" not in shell.user_ns


def test_a_cancellation_raised_by_node_code_is_not_taken_for_an_interrupt(shell: InteractiveShell) -> None:
    [result] = run(shell, "%%kailash gives_up\nraise asyncio.CancelledError('by itself')")
    assert type(raised(result)) is asyncio.CancelledError


def test_an_interrupted_notebook_test_shows_the_line_of_the_test_that_was_awaiting(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> object:
        started = asyncio.Event()
        shell.user_ns["started"] = started
        await run_cell(shell, "import asyncio\nfrom kailash_nb.testing import AsyncWorkflowTestCase\n"
                              "class Slow(AsyncWorkflowTestCase):\n"
                              "    async def test_waits(self):\n"
                              "        started.set()\n"
                              "        await asyncio.sleep(3600)\n")
        return await _interrupt(shell, "%kailash test", started)

    error = raised(asyncio.run(scenario()))
    assert type(error) is KeyboardInterrupt and str(error) == "%kailash test was interrupted"
    traceback = shown(capsys)
    assert frames(traceback) == ["Cell In[1], line 1", "Cell In[1], line 6, in Slow.test_waits(self)"]
    assert "----> 6     await asyncio.sleep(3600)" in traceback and "kailash_nb/" not in traceback
