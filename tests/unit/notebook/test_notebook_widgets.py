"""The explore form and the progress bar as widget state, what a frontend renders (no kernel here).

A run started by the Run button ends after the click's message was handled, when a frontend no longer
routes output to the form; so what the form shows must be in its widgets' state. These tests read that
state. (That a person sees it is tested by clicking in Chromium: tests/e2e.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from notebook_cells import raised, run

from kailash_nb.notebook import current_session
from kailash_nb.notebook.session import NotebookSession
from kailash_nb.notebook.widgets import Progress, explore


@pytest.fixture
def widgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAILASH_NB_WIDGETS", "1")


def form_parts(form: Any) -> tuple[dict[str, Any], Any, Any]:
    *fields, button, output = form.children
    return {field.description: field for field in fields}, button, output


async def press(session: NotebookSession, button: Any) -> None:
    button.click()
    await asyncio.gather(*session.tasks)


def test_run_shows_the_result_under_the_form_as_widget_state(
        shell: InteractiveShell, widgets: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, "%%kailash quote --no-run\nresult = {'total': round(sum(prices) * (1 - discount), 2)}")
    session = current_session(shell)
    fields, button, output = form_parts(explore(session, "notebook", {"prices": [9.99], "discount": 0.1}))
    assert {name: field.value for name, field in fields.items()} == {"discount": "0.1", "prices": "[9.99]"}
    fields["prices"].value = "[10.0, 5.0]"
    asyncio.run(press(session, button))
    [shown] = output.outputs
    assert shown["output_type"] == "display_data"
    assert shown["data"]["text/plain"].startswith("WorkflowResult 'notebook': success (1 success)")
    assert "13.5" in shown["data"]["text/plain"] and "13.5" in shown["data"]["text/html"]
    assert session.last_inputs["notebook"] == {"prices": [10.0, 5.0], "discount": 0.1}
    assert capsys.readouterr().out == ""  # nothing went to a cell instead of the form
    assert not session.tasks


def test_a_field_that_is_not_a_literal_shows_an_error_naming_it_and_runs_nothing(
        shell: InteractiveShell, widgets: None) -> None:
    run(shell, "runs = []", "%%kailash quote --no-run\nruns.append(1)\nresult = {'n': len(prices)}")
    session = current_session(shell)
    fields, button, output = form_parts(explore(session, "notebook", {"prices": [9.99]}))
    fields["prices"].value = "[10.0, 5.0"
    asyncio.run(press(session, button))
    [error] = output.outputs
    assert (error["output_type"], error["name"]) == ("stream", "stderr")
    assert error["text"].startswith("input 'prices': '[10.0, 5.0' is not a Python literal ('[' was never closed)")
    assert shell.user_ns["runs"] == [] and "notebook" not in session.last_inputs
    assert (button.disabled, button.description) == (False, "Run notebook")


def test_the_button_shows_a_running_state_until_the_run_ends(shell: InteractiveShell, widgets: None) -> None:
    run(shell, "%%kailash wait --no-run\nstarted.set()\nawait gate.wait()\nresult = {'n': n}")
    session = current_session(shell)
    fields, button, output = form_parts(explore(session, "notebook", {"n": 1}))

    async def scenario() -> tuple[tuple[bool, str, str], int, tuple[bool, str, str]]:
        started, gate = asyncio.Event(), asyncio.Event()
        shell.user_ns.update(started=started, gate=gate)
        fields["n"].value = "2"
        button.click()
        await started.wait()
        running = (button.disabled, button.description, button.icon)
        button.click()  # a second press while it runs starts nothing
        tasks = len(session.tasks)
        gate.set()
        await asyncio.gather(*session.tasks)
        return running, tasks, (button.disabled, button.description, button.icon)

    running, tasks, after = asyncio.run(scenario())
    assert running == (True, "Running notebook…", "spinner spin")
    assert tasks == 1
    assert after == (False, "Run notebook", "play")
    assert "'n': 2" in output.outputs[0]["data"]["text/plain"]


def test_a_run_that_is_refused_shows_why_in_the_form(shell: InteractiveShell, widgets: None) -> None:
    run(shell, "%%kailash quote --no-run\nresult = {}")
    session = current_session(shell)
    _, button, output = form_parts(explore(session, "notebook", {"n": 1}))
    run(shell, "%kailash reset")
    asyncio.run(press(session, button))
    [error] = output.outputs
    assert error["name"] == "stderr"
    assert error["text"].startswith("run of 'notebook' failed: UnknownWorkflowError: no workflow 'notebook'")
    assert button.disabled is False


def test_reset_cancels_a_run_the_form_started_and_leaves_no_task(shell: InteractiveShell, widgets: None) -> None:
    run(shell, "%%kailash wait --no-run\nstarted.set()\nawait asyncio.Event().wait()\nresult = {}")
    session = current_session(shell)
    _, button, output = form_parts(explore(session, "notebook", {"n": 1}))

    async def scenario() -> set[asyncio.Task[Any]]:
        started = asyncio.Event()
        shell.user_ns["started"] = started
        button.click()
        await started.wait()
        await session.reset()
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(scenario()) == set() and not session.tasks
    [note] = output.outputs
    assert note["text"] == "run of 'notebook' cancelled (the session was reset)\n"
    assert (button.disabled, button.description) == (False, "Run notebook")


def test_a_finished_progress_bar_leaves_a_static_line_in_its_place(
        shell: InteractiveShell, widgets: None, monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, **kw: published.append({"data": data, **kw}))
    progress = Progress(3, "bench 'pricing'")
    bar = progress._bar
    assert bar.style.description_width == "initial"  # the label is not cut to the default width
    for _ in range(3):
        progress.advance()
    assert bar.value == 3
    progress.close()
    shown, replaced = published
    display_id = shown["transient"]["display_id"]
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]
    assert replaced == {"data": {"text/plain": "bench 'pricing': 3 of 3 runs"},
                        "transient": {"display_id": display_id}, "update": True}
    assert bar.comm is None  # the widget is closed: nothing refers to it any more


def test_bench_raises_the_runtime_refusal_itself_and_leaves_no_task(shell: InteractiveShell) -> None:
    from kailash_nb.notebook.bench import bench
    from kailash_nb.workflow import InvalidInputsError

    run(shell, "%%kailash n --no-run\nresult = {}")

    async def scenario() -> set[asyncio.Task[Any]]:
        with pytest.raises(InvalidInputsError, match="key 'print'"):
            await bench(current_session(shell), "notebook", 4, 2, {"print": 1})
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(scenario()) == set()


def test_bench_of_a_workflow_runs_every_run_on_the_cells_loop(shell: InteractiveShell) -> None:
    results = run(shell, "import asyncio\nloops = set()",
                  "%%kailash n --no-run\nloops.add(asyncio.get_running_loop())\nresult = {}",
                  "report = %kailash bench -n 5 --concurrency 2")
    assert [raised(r) for r in results] == [None] * 3
    report = shell.user_ns["report"]
    assert report.runs == 5 and set(report.statuses) == {"success"} and len(shell.user_ns["loops"]) == 1
