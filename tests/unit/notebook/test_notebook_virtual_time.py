"""``%kailash run --virtual-time`` and ``%%kailash NODE --virtual-time`` in an IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from notebook_cells import raised, run

from kailash_nb.notebook.charts import timeline


def test_virtual_time_runs_cells_and_workflows_without_waiting(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "import asyncio",
        "%%kailash backoff --virtual-time\nfor delay in (10, 20, 40):\n    await asyncio.sleep(delay)\n"
        "result = {'waited': 70}",
        "%%kailash report waited=backoff.waited --virtual-time\nawait asyncio.sleep(600)\n"
        "result = {'total': waited + 600}",
        "r = %kailash run --virtual-time",
    )
    assert [raised(r) for r in results[:4]] == [None] * 4
    assert dict(results[2].result.output) == {"total": 670}
    r = shell.user_ns["r"]
    assert r.virtual_time is True and r.get_output("report", "total") == 670
    assert (r.node_timings["backoff"].duration, r.node_timings["report"].duration) == (
        pytest.approx(70), pytest.approx(600))
    assert r.execution_time == pytest.approx(670)
    chart = timeline(r)
    assert chart.stable is True and chart.varies is None
    assert chart._repr_mimebundle_()[1]["kailash_nb"] == {"chart": "timeline", "stable": True}


def test_a_real_time_timeline_is_never_compared(shell: InteractiveShell) -> None:
    run(shell, "%%kailash quick\nresult = {'v': 1}", "r = %kailash run")
    r = shell.user_ns["r"]
    assert r.virtual_time is False
    assert timeline(r)._repr_mimebundle_()[1]["kailash_nb"] == {"chart": "timeline", "stable": False,
                                                                "varies": "durations"}


def test_the_virtual_time_option_is_in_the_help(shell: InteractiveShell) -> None:
    from kailash_nb.notebook.arguments import help_text

    assert help_text().count("--virtual-time") >= 2


def test_the_interrupt_ticker_keeps_out_of_the_way_of_virtual_time() -> None:
    """A magic's ticker (a 0.1 s timer) would cut every jump into 0.1 s steps; on virtual time it waits."""
    import asyncio

    from kailash_nb.notebook.interrupt import interruptible
    from kailash_nb.testing import virtual_time

    async def main() -> tuple[int, float, bool]:
        async with interruptible():
            async with virtual_time() as clock:
                start = clock.now
                await asyncio.sleep(600)
                elapsed = clock.now - start
            await asyncio.sleep(0.15)  # back on real time: the ticker ticks again
            ticking = any(not h._cancelled for h in asyncio.get_running_loop()._scheduled)  # type: ignore[attr-defined]
        return clock.jumps, elapsed, ticking

    jumps, elapsed, ticking = asyncio.run(main())
    assert (jumps, elapsed) == (1, pytest.approx(600))
    assert ticking


def test_schedules_and_replay_magics_find_and_replay_a_lost_update(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "import asyncio\nfrom kailash_nb.notebook import current_session\n"
        "class Store:\n"
        "    def __init__(self):\n        self.data = {'count': 0}\n"
        "    async def get(self, key):\n        return self.data[key]\n"
        "    async def put(self, key, value):\n        self.data[key] = value\n"
        "current_session().register_resource('store', factory=Store)",
        "%%kailash a --no-run\nstore = await get_resource('store')\nc = await store.get('count')\n"
        "await store.put('count', c + 1)\nresult = {'seen': c}",
        "%%kailash b --no-run\nstore = await get_resource('store')\nc = await store.get('count')\n"
        "await store.put('count', c + 1)\nresult = {'seen': c}",
        "%%kailash total x=a.seen y=b.seen --no-run\nstore = await get_resource('store')\n"
        "count = await store.get('count')\nif count != 2:\n    raise AssertionError(f'count is {count}')\n"
        "result = {'count': count}",
        "report = %kailash schedules --runs 60 --seed 1",
    )
    assert [raised(r) for r in results] == [None] * 5
    report = shell.user_ns["report"]
    results += run(shell, f"replayed = %kailash replay {report.first_failure}")
    assert report.runs == 60 and not report.ok
    assert "AssertionError: count is 1" in report.failing[0].summary
    assert any("store.put" in str(race) for race in report.races)
    with capture_output() as shown:  # what the cell showed: the report, then its failing schedule's timeline
        assert shell.display_formatter.format(report) == ({}, {})
    [table, chart] = [output.data for output in shown.outputs]
    assert "[replay: s1:" in table["text/plain"] and "<table>" in table["text/html"]
    assert chart["text/plain"] == f"<Chart: failing schedule {report.first_failure} of workflow 'notebook'>"
    assert shown.outputs[1].metadata == {"kailash_nb": {"chart": "schedule", "stable": True}}
    assert chart["image/png"]
    assert raised(results[5]) is None
    assert shell.user_ns["replayed"].node_status["total"] == "failed"
