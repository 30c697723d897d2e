"""Charts as matplotlib figures built with the object API (no pyplot global state), shown once as PNG.

A ``Chart`` wraps a ``Figure``; IPython shows it as a PNG with a stable ``text/plain`` title. Its display
metadata says whether the picture is meant to be the same on every run: the workflow graph is
(``kailash-nb check`` and ``pytest --nbval`` compare it with a tolerance), and so is the timeline of a
run on virtual time, whose timings are the same on every run; charts of real durations (a timeline of
a real-time run, a bench, latencies) are not and are never compared::

    {"kailash_nb": {"chart": "graph", "stable": true}}
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .display import METADATA_KEY

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kailash_nb.testing import ScheduleReport
    from kailash_nb.workflow import Workflow, WorkflowResult

_STATUS_COLORS = {"success": "#4c9a2a", "failed": "#c0392b", "skipped": "#95a5a6", "cancelled": "#e67e22"}


class Chart:
    """A figure with a title; ``figure`` is there to customise before it is shown.

    ``kind`` names the chart (``graph``, ``timeline``, ``latency``, ``series``); ``stable`` says whether the
    same inputs always draw the same picture, so that regression checks compare it (``None``: not said).
    """

    def __init__(self, figure: Figure, title: str, *, kind: str = "chart", stable: bool | None = None,
                 varies: str | None = None) -> None:
        self.figure = figure
        self.title = title
        self.kind = kind
        self.stable = stable
        self.varies = varies

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        return buffer.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        meta: dict[str, Any] = {"chart": self.kind}
        if self.stable is not None:
            meta["stable"] = self.stable
        if self.varies:
            meta["varies"] = self.varies
        return {"image/png": self.png(), "text/plain": repr(self)}, {METADATA_KEY: meta}

    def __repr__(self) -> str:
        return f"<Chart: {self.title}>"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def workflow_graph(wf: Workflow) -> Chart:
    """Nodes in columns by dependency depth, arrows labelled ``path → input``."""
    depth: dict[str, int] = {}
    for node_id in wf.order:
        depth[node_id] = max((depth[p] + 1 for p in wf.predecessors[node_id]), default=0)
    columns: dict[int, list[str]] = {}
    for node_id in sorted(wf.nodes):
        columns.setdefault(depth[node_id], []).append(node_id)
    position = {n: (level, -row) for level, ids in columns.items() for row, n in enumerate(ids)}
    fig = _figure(max(4.0, 2.6 * len(columns)), max(2.5, 1.2 * max(len(c) for c in columns.values())))
    ax = fig.add_subplot()
    # One arrow per pair of nodes, with the labels of all its connections stacked: two connections
    # between the same nodes must not draw their labels on top of each other.
    labels: dict[tuple[str, str], list[str]] = {}
    for conn in wf.connections:
        labels.setdefault((conn.source, conn.target), []).append(f"{conn.source_output} → {conn.target_input}")
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    top = max(y for _, y in position.values()) + 0.6
    for (source, target), texts in labels.items():
        (x0, y0), (x1, y1) = position[source], position[target]
        start, end = (x0 + 0.28, y0), (x1 - 0.28, y1)
        # An edge that skips a column would cross the nodes in between: it arcs over them instead.
        lift = 0.9 if depth[target] - depth[source] > 1 else 0.0
        control = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + lift)
        curve = Path([start, control, end], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
        ax.add_patch(FancyArrowPatch(path=curve, arrowstyle="->", mutation_scale=10, color="#555555"))
        # Labels sit just above the curve's middle (a quadratic curve's middle is halfway to its control).
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + lift / 2)
        ax.text(middle[0], middle[1] + 0.06, "\n".join(texts), ha="center", va="bottom", fontsize=8,
                color="#555555", linespacing=1.3)
        top = max(top, middle[1] + 0.3 + 0.15 * len(texts))
    for node_id, (x, y) in position.items():
        ax.text(x, y, node_id, ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#dfe9f5", "edgecolor": "#3b6ea5"})
    xs = [x for x, _ in position.values()]
    ys = [y for _, y in position.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, top)
    ax.set_axis_off()
    ax.set_title(f"workflow {wf.name!r}")
    return Chart(fig, f"workflow {wf.name!r}: {len(wf.nodes)} node(s), {len(wf.connections)} connection(s)",
                 kind="graph", stable=True)


def timeline(result: WorkflowResult) -> Chart:
    """When each node ran in a run: one bar per node, coloured by status. The timeline of a run on virtual
    time is stable (its timings are the same on every run), so regression checks compare it."""
    nodes = sorted(result.workflow.nodes)
    fig = _figure(7.0, max(2.0, 0.45 * len(nodes) + 1))
    ax = fig.add_subplot()
    unit, scale = ("s", 1.0) if result.execution_time >= 10 else ("ms", 1000.0)
    for row, node_id in enumerate(nodes):
        timing = result.node_timings.get(node_id)
        status = result.node_status.get(node_id, "skipped")
        if timing is not None:
            ax.barh(row, max(timing.duration * scale, 1e-6), left=timing.start * scale,
                    color=_STATUS_COLORS.get(status, "#333333"))
    ax.set_yticks(range(len(nodes)), labels=nodes)
    ax.invert_yaxis()
    clock = "virtual " if result.virtual_time else ""
    ax.set_xlabel(f"{clock}{unit} from the start of the run")
    ax.set_title(f"run of {result.workflow.name!r}: {result.status}")
    return Chart(fig, f"timeline of workflow {result.workflow.name!r}", kind="timeline",
                 stable=result.virtual_time, varies=None if result.virtual_time else "durations")


def schedule_timeline(report: ScheduleReport) -> Chart:
    """The first failing schedule of a report, step by step: one row per node, a dot for each resource call
    in the order the (shrunk) schedule let the calls through, the racing calls in red, each race joined
    from the call that ran first. Node timings are no help here: on virtual time, nodes that never sleep
    all start and end at 0 s. The steps are the same on every run, so the chart is stable."""
    if report.first_failure is None:
        from .errors import MagicUsageError

        raise MagicUsageError(f"no failing schedule to draw: all {report.runs} schedules of "
                              f"{report.workflow!r} passed")
    calls = report.failing_calls
    result = report.failing_result
    # rows in plan order, so that the chart reads as the workflow flows; a test's calls, as they first came
    nodes = list(result.workflow.order) if result is not None else list(dict.fromkeys(c.node or "(test)"
                                                                                      for c in calls))
    row = {node: index for index, node in enumerate(nodes)}
    fig = _figure(max(6.0, 0.9 * len(calls) + 2.5), max(2.2, 0.55 * len(nodes) + 1.3))
    ax = fig.add_subplot()
    several = len({call.resource for call in calls}) > 1
    steps: dict[str, list[int]] = {}
    for step, call in enumerate(calls, start=1):
        steps.setdefault(call.node or "(test)", []).append(step)
    for node, taken in steps.items():
        ax.plot([taken[0], taken[-1]], [row[node]] * 2, color="#c8d3df", linewidth=6, solid_capstyle="round",
                zorder=1)
    racing: set[int] = set()
    for race in report.races:
        ran_first = next((i for i, c in enumerate(calls, start=1) if c == race.second), None)
        overtaken = next((i for i, c in enumerate(calls, start=1) if c == race.first and ran_first is not None
                          and i > ran_first), None)
        if ran_first is None or overtaken is None:
            continue
        racing |= {ran_first, overtaken}
        ax.annotate("", xy=(overtaken, row[race.first.node or "(test)"]),
                    xytext=(ran_first, row[race.second.node or "(test)"]),
                    arrowprops={"arrowstyle": "->", "color": "#c0392b", "linestyle": "--", "shrinkA": 7,
                                "shrinkB": 7}, zorder=2)
    for step, call in enumerate(calls, start=1):
        y = row[call.node or "(test)"]
        ax.scatter([step], [y], s=70, color="#c0392b" if step in racing else "#3b6ea5", zorder=3)
        ax.text(step, y - 0.22, f"{call.resource}.{call.method}" if several else call.method, ha="center",
                va="bottom", fontsize=8)
    statuses = result.node_status if result is not None else {}
    ax.set_yticks(range(len(nodes)), labels=nodes)
    for label in ax.get_yticklabels():
        label.set_color(_STATUS_COLORS.get(statuses.get(label.get_text(), ""), "#333333"))
    ax.set_ylim(len(nodes) - 0.4, -0.7)
    ax.set_xlim(0.3, max(len(calls), 1) + 0.7)
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_xlabel("resource calls, in the order the failing schedule let them through (red: what raced)")
    what = f"{'test' if report.test else 'workflow'} {report.workflow!r}"
    failure = report.failure or ""
    failure = failure if len(failure) <= 70 else failure[:67] + "..."
    ax.set_title(f"schedule {report.first_failure} of {what}\n{failure}", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return Chart(fig, f"failing schedule {report.first_failure} of {what}", kind="schedule", stable=True)


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def latency_chart(latencies: Sequence[float], title: str, summary: str = "") -> Chart:
    """Latency of each sample in order, and their distribution."""
    millis = [value * 1000 for value in latencies]
    fig = _figure(9.0, 3.2)
    over_time, distribution = fig.subplots(1, 2)
    over_time.plot(range(1, len(millis) + 1), millis, marker=".", linewidth=0.8)
    over_time.set_xlabel("sample")
    over_time.xaxis.set_major_locator(_integer_ticks())  # samples are counted: no 1.25
    over_time.set_ylabel("latency (ms)")
    distribution.hist(millis, bins=min(30, max(5, len(millis) // 3)))
    distribution.set_xlabel("latency (ms)")
    distribution.set_ylabel("samples")
    distribution.yaxis.set_major_locator(_integer_ticks())
    fig.suptitle(title)
    if summary:
        distribution.text(0.98, 0.95, summary, transform=distribution.transAxes, ha="right", va="top", fontsize=8,
                          bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#cccccc"})
    return Chart(fig, title, kind="latency", stable=False, varies="durations")


def series_chart(values: Sequence[float], title: str, ylabel: str = "value") -> Chart:
    """Samples in order, e.g. the values an ``assert_converges`` polled."""
    fig = _figure(6.5, 3.0)
    ax = fig.add_subplot()
    ax.plot(range(1, len(values) + 1), list(values), marker="o")
    ax.set_xlabel("sample")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return Chart(fig, title, kind="series", stable=False, varies="samples")


def chart_for(obj: Any) -> Chart:
    """The chart of a WorkflowResult, a Workflow, a bench report, a ScheduleReport with a failure (its
    failing schedule) or an assertion result with samples (or a ``ConvergenceError``, through its
    ``result``)."""
    from kailash_nb.testing import ScheduleReport
    from kailash_nb.workflow import Workflow, WorkflowResult

    if isinstance(obj, WorkflowResult):
        return timeline(obj)
    if isinstance(obj, ScheduleReport):
        return schedule_timeline(obj)
    if isinstance(obj, Workflow):
        return workflow_graph(obj)
    if isinstance(obj, BaseException) and hasattr(obj, "result"):
        return chart_for(obj.result)  # ConvergenceError keeps the samples that did not settle
    own = getattr(obj, "chart", None)
    if callable(own):
        return own()
    samples = getattr(obj, "samples", None)
    if samples is not None:
        return samples_chart(obj)
    raise TypeError(
        f"no chart for a {type(obj).__name__}: expected a WorkflowResult, a Workflow, a bench report, "
        "or a measure_performance / assert_converges result"
    )


def samples_chart(obj: Any) -> Chart:
    """Chart of an assertion result that carries ``samples``: latencies (seconds) or polled values."""
    samples = list(obj.samples)
    name = type(obj).__name__
    numbers = [_number(s) for s in samples]
    if "erformance" in name:
        return latency_chart(numbers, f"{name}: {len(numbers)} sample(s)")
    return series_chart(numbers, f"{name}: {len(numbers)} sample(s)")


def _number(sample: Any) -> float:
    for attribute in ("duration", "value", "elapsed"):
        if hasattr(sample, attribute):
            sample = getattr(sample, attribute)
            break
    try:
        return float(sample)
    except (TypeError, ValueError):
        raise TypeError(f"cannot chart sample {sample!r}: expected a number") from None
