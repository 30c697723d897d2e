"""Displays, charts and widgets without a kernel: stable text and HTML, escaping, lazy heavy imports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kailash_nb.notebook.bench import BenchReport
from kailash_nb.notebook.charts import Chart, chart_for
from kailash_nb.notebook.display import NodeOutput, short, workflow_bundle, workflow_result_bundle
from kailash_nb.notebook.tables import CallTable
from kailash_nb.notebook.widgets import StaticExplore, widgets_enabled
from kailash_nb.testing import CallRecord, ConvergenceResult, PerformanceResult
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

REPO = Path(__file__).resolve().parents[3]


def run_workflow(inputs: dict | None = None):
    wf = (
        AsyncWorkflowBuilder("demo")
        .add_async_code("b_consumer", "result = {'total': sum(items)}", description="adds <up>")
        .add_async_code("a_producer", "print('made', len(n))\nresult = {'items': n}", timeout=5)
        .add_connection("a_producer", "items", "b_consumer", "items")
        .add_async_code("c_fails", "raise ValueError('<img src=x onerror=alert(1)>')")
        .build()
    )
    return wf, asyncio.run(AsyncLocalRuntime().execute_workflow_async(wf, inputs or {"n": [1, 2]}))


def test_result_text_is_identical_across_runs_with_nodes_in_plan_order() -> None:
    (wf, first), (_, second) = run_workflow(), run_workflow()
    data1, meta1 = workflow_result_bundle(first)
    data2, _ = workflow_result_bundle(second)
    assert data1 == data2
    lines = data1["text/plain"].splitlines()
    assert lines[0] == "WorkflowResult 'demo': failed (1 failed, 2 success)"
    assert [line.split()[0] for line in lines[2:5]] == list(wf.order) == ["a_producer", "c_fails", "b_consumer"]
    assert "made 2" in lines[2]
    assert "error in node 'c_fails':" in data1["text/plain"]
    assert "  line 1: raise ValueError('<img src=x onerror=alert(1)>')" in data1["text/plain"]
    assert meta1["kailash_nb"]["execution_time"] >= 0 and set(meta1["kailash_nb"]["node_timings"]) == {
        "a_producer", "b_consumer", "c_fails"}


def test_html_escapes_values_errors_and_descriptions() -> None:
    wf, result = run_workflow({"n": ["<script>alert(1)</script>"]})
    html = workflow_result_bundle(result)[0]["text/html"] + workflow_bundle(wf)[0]["text/html"]
    assert "<script>" not in html and "<img" not in html and "<up>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html and "adds &lt;up&gt;" in html


def test_workflow_lists_inputs_timeouts_and_descriptions() -> None:
    wf, _ = run_workflow()
    text = workflow_bundle(wf)[0]["text/plain"]
    assert text.splitlines()[0] == "Workflow 'demo': 3 node(s), 1 connection(s)"
    assert "items=a_producer.items" in text and "5 s" in text


def test_short_values_drop_addresses_and_mock_ids_and_are_bounded() -> None:
    from unittest.mock import AsyncMock

    assert " at 0x" not in short(object())
    assert "id=" not in short(AsyncMock(name="db"))
    assert short({"b": 1, "a": 2}) == "{'a': 2, 'b': 1}"
    assert len(short("x" * 1000)) == 200
    assert short("one\ntwo\n") == "one ↵ two"


class _Unrepresentable:
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


def test_a_value_whose_repr_raises_shows_as_unrepresentable_with_stable_text() -> None:
    bad = _Unrepresentable()
    assert short(bad) == "<unrepresentable _Unrepresentable: repr raised ValueError>"
    assert short([1, bad, {"k": bad}]) == (
        "[1, <unrepresentable _Unrepresentable: repr raised ValueError>, "
        "{'k': <unrepresentable _Unrepresentable: repr raised ValueError>}]"
    )
    output = NodeOutput("notebook", "n", {"bad": bad, "ok": [1, 2]})
    text = repr(output)
    assert text == output._repr_mimebundle_()[0]["text/plain"]
    assert "<unrepresentable _Unrepresentable: repr raised ValueError>" in text and "[1, 2]" in text
    html = output._repr_mimebundle_()[0]["text/html"]
    assert "&lt;unrepresentable _Unrepresentable: repr raised ValueError&gt;" in html


def test_call_table_groups_calls_by_resource_and_node_with_durations_in_metadata() -> None:
    calls = [
        CallRecord("db", "fetch", ("q2",), {}, result=[2], duration=0.2, node="right"),
        CallRecord("db", "fetch", ("q1",), {"limit": 1}, result=[1], duration=0.1, node="left"),
        CallRecord("api", "get", ("/x",), {}, exception=TimeoutError("slow"), duration=0.3, node="left"),
        CallRecord("db", "fetch", ("q3",), {}, result=[3], duration=0.4, node="left"),
    ]
    data, metadata = CallTable(calls)._repr_mimebundle_()
    rows = [line.split()[:3] for line in data["text/plain"].splitlines()[2:]]
    assert rows == [["api", "get", "/x"], ["db", "fetch", "q1,"], ["db", "fetch", "q3"], ["db", "fetch", "q2"]]
    assert "raised TimeoutError: slow" in data["text/plain"]
    assert metadata["kailash_nb"]["durations"] == [0.3, 0.1, 0.4, 0.2]
    assert CallTable([])._repr_mimebundle_()[0]["text/plain"] == "calls of the session: 0\n(no calls)"


def test_call_table_says_when_a_call_was_never_awaited() -> None:
    call = CallRecord("db", "save", (1,), {}, node="store", awaited=False)
    text = CallTable([call])._repr_mimebundle_()[0]["text/plain"]
    assert "never awaited: add await" in text.splitlines()[-1]


def test_bench_report_text_holds_counts_only() -> None:
    fast = BenchReport("wf", 2, (0.01, 0.02, 0.03), ("success", "success", "failed"), 0.05, "node 'x': E")
    slow = BenchReport("wf", 2, (1.0, 2.0, 3.0), ("success", "failed", "success"), 5.0, "node 'x': E")
    assert fast._repr_mimebundle_()[0] == slow._repr_mimebundle_()[0]
    assert fast.percentile(50) == 0.02 and fast.percentile(95) == 0.03
    assert fast._repr_mimebundle_()[1]["kailash_nb"]["throughput_per_s"] == pytest.approx(60.0)


def test_charts_render_png_for_results_workflows_benches_and_assertion_results() -> None:
    wf, result = run_workflow()
    charts = [
        chart_for(result),
        chart_for(wf),
        chart_for(BenchReport("wf", 1, (0.01, 0.02), ("success", "success"), 0.03)),
        chart_for(PerformanceResult(time=0.1, throughput=20.0, operations=2, samples=(0.04, 0.06))),
        chart_for(ConvergenceResult(samples=(1.0, 0.5, 0.5), times=(0, 1, 2), converged=True, tolerance=0.1,
                                    window=2, elapsed=2.0)),
    ]
    for chart in charts:
        assert isinstance(chart, Chart) and chart.png().startswith(b"\x89PNG")
        assert chart._repr_mimebundle_()[0]["image/png"].startswith(b"\x89PNG")
    assert repr(charts[1]) == "<Chart: workflow 'demo': 3 node(s), 1 connection(s)>"
    with pytest.raises(TypeError, match=r"no chart for a int: .* or a measure_performance / assert_converges result"):
        chart_for(3)


def test_a_failing_schedule_report_charts_its_shrunk_schedule_step_by_step() -> None:
    from kailash_nb.notebook.errors import MagicUsageError
    from kailash_nb.testing import explore_schedules

    class Store:
        def __init__(self) -> None:
            self.count = 0

        async def get(self) -> int:
            return self.count

        async def put(self, value: int) -> None:
            self.count = value

    def counter(code: str):  # type: ignore[no-untyped-def]
        return AsyncWorkflowBuilder("counter").add_async_code("a", code).add_async_code("b", code).build()

    racy = "store = await get_resource('store')\nawait store.put(await store.get() + 1)\nresult = {}"
    passing = asyncio.run(explore_schedules(counter(racy), resources={"store": Store}, runs=30,
                                            check=lambda result: None))
    assert passing.ok  # the check looks at nothing: every run passes, and there is no failing schedule to draw
    with pytest.raises(MagicUsageError, match="no failing schedule to draw: all 30 schedules of 'counter' passed"):
        chart_for(passing)
    stores: list[Store] = []

    def store() -> Store:
        stores.append(Store())
        return stores[-1]

    def both_counted(result: object) -> None:
        assert stores[-1].count == 2, f"count is {stores[-1].count}"

    report = asyncio.run(explore_schedules(counter(racy), resources={"store": store}, runs=30, check=both_counted))
    chart = chart_for(report)
    assert repr(chart) == f"<Chart: failing schedule {report.first_failure} of workflow 'counter'>"
    assert chart._repr_mimebundle_()[1] == {"kailash_nb": {"chart": "schedule", "stable": True}}
    assert chart.png() == chart_for(report).png()  # the same report draws the same picture
    axes = chart.figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["a", "b"]
    assert [text.get_text() for text in axes.texts if text.get_text()] == ["get", "get", "put", "put"]
    assert len(axes.texts) == 5  # and one arrow: from the call that ran first to the one it overtook
    assert "count is 1" in axes.get_title()


def test_node_output_and_static_explore_are_stable_text() -> None:
    assert repr(NodeOutput("wf", "n", {"b": 2, "a": [1]}, duration=0.5)).splitlines() == [
        "node 'n' of workflow 'wf': output", "key value", "  a   [1]", "  b     2"]
    assert "static view" in repr(StaticExplore("wf", {"n": 3}))


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, False),
    ({"JPY_SESSION_NAME": "/home/u/a.ipynb"}, True),
    ({"JPY_SESSION_NAME": "/a.ipynb", "KAILASH_NB_WIDGETS": "0"}, False),
    ({"KAILASH_NB_WIDGETS": "1"}, True),
    ({"KAILASH_NB_WIDGETS": "off"}, False),
])
def test_widgets_follow_the_environment(environ: dict[str, str], expected: bool) -> None:
    assert widgets_enabled(environ) is expected


def test_widgets_setting_with_a_typo_is_an_error() -> None:
    with pytest.raises(ValueError, match="KAILASH_NB_WIDGETS='maybe'"):
        widgets_enabled({"KAILASH_NB_WIDGETS": "maybe"})


def test_importing_the_notebook_layer_and_charting_import_no_heavy_library_eagerly() -> None:
    code = (
        "import sys, kailash_nb.notebook as n\n"
        "heavy = ['IPython', 'pandas', 'matplotlib', 'ipywidgets']\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "from kailash_nb.notebook.charts import series_chart\n"
        "series_chart([1.0, 2.0], 't').png()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "print(n.sanitize_file_path())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_text().count("regex: ") >= 3


def test_call_table_of_a_test_case_renders_its_calls() -> None:
    from kailash_nb.notebook import call_table
    from kailash_nb.testing import AsyncWorkflowTestCase

    class Probe(AsyncWorkflowTestCase):
        async def test_probe(self) -> None:
            db = await self.create_test_resource("db", None, mock=True)
            db.fetch.return_value = [1]
            await db.fetch("select 1")

    async def main() -> Probe:
        async with Probe("test_probe") as case:
            await case.test_probe()
        return case

    case = asyncio.run(main())
    text = repr(call_table(case.get_calls()))
    assert "calls of the session: 1" in text
    assert text.splitlines()[2].split() == ["db", "fetch", "select", "1", "[1]", "(outside", "a", "node)"]
