"""Charts as matplotlib figures built with the object API (no pyplot global state), shown once as PNG.

A ``Chart`` wraps a ``Figure``; IPython shows it through ``_repr_png_`` and its ``text/plain`` is a
stable title, so nbval (which skips images) compares only that.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kailash_nb.workflow import Workflow, WorkflowResult

_STATUS_COLORS = {"success": "#4c9a2a", "failed": "#c0392b", "skipped": "#95a5a6", "cancelled": "#e67e22"}


class Chart:
    """A figure with a title; ``figure`` is there to customise before it is shown."""

    def __init__(self, figure: Figure, title: str) -> None:
        self.figure = figure
        self.title = title

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()

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
    for conn in wf.connections:
        (x0, y0), (x1, y1) = position[conn.source], position[conn.target]
        ax.annotate("", xy=(x1 - 0.28, y1), xytext=(x0 + 0.28, y0),
                    arrowprops={"arrowstyle": "->", "color": "#555555"})
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, f"{conn.source_output} → {conn.target_input}",
                ha="center", fontsize=8, color="#555555")
    for node_id, (x, y) in position.items():
        ax.text(x, y, node_id, ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#dfe9f5", "edgecolor": "#3b6ea5"})
    xs = [x for x, _ in position.values()]
    ys = [y for _, y in position.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    ax.set_title(f"workflow {wf.name!r}")
    return Chart(fig, f"workflow {wf.name!r}: {len(wf.nodes)} node(s), {len(wf.connections)} connection(s)")


def timeline(result: WorkflowResult) -> Chart:
    """When each node ran in a run: one bar per node, coloured by status."""
    nodes = sorted(result.workflow.nodes)
    fig = _figure(7.0, max(2.0, 0.45 * len(nodes) + 1))
    ax = fig.add_subplot()
    for row, node_id in enumerate(nodes):
        timing = result.node_timings.get(node_id)
        status = result.node_status.get(node_id, "skipped")
        if timing is not None:
            ax.barh(row, max(timing.duration, 1e-6) * 1000, left=timing.start * 1000,
                    color=_STATUS_COLORS.get(status, "#333333"))
    ax.set_yticks(range(len(nodes)), labels=nodes)
    ax.invert_yaxis()
    ax.set_xlabel("ms from the start of the run")
    ax.set_title(f"run of {result.workflow.name!r}: {result.status}")
    return Chart(fig, f"timeline of workflow {result.workflow.name!r}")


def latency_chart(latencies: Sequence[float], title: str, summary: str = "") -> Chart:
    """Latency of each sample in order, and their distribution."""
    millis = [value * 1000 for value in latencies]
    fig = _figure(9.0, 3.2)
    over_time, distribution = fig.subplots(1, 2)
    over_time.plot(range(1, len(millis) + 1), millis, marker=".", linewidth=0.8)
    over_time.set_xlabel("sample")
    over_time.set_ylabel("latency (ms)")
    distribution.hist(millis, bins=min(30, max(5, len(millis) // 3)))
    distribution.set_xlabel("latency (ms)")
    distribution.set_ylabel("samples")
    fig.suptitle(title)
    if summary:
        distribution.text(0.98, 0.95, summary, transform=distribution.transAxes, ha="right", va="top", fontsize=8,
                          bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#cccccc"})
    return Chart(fig, title)


def series_chart(values: Sequence[float], title: str, ylabel: str = "value") -> Chart:
    """Samples in order, e.g. the values an ``assert_converges`` polled."""
    fig = _figure(6.5, 3.0)
    ax = fig.add_subplot()
    ax.plot(range(1, len(values) + 1), list(values), marker="o")
    ax.set_xlabel("sample")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return Chart(fig, title)


def chart_for(obj: Any) -> Chart:
    """The chart of a WorkflowResult, a Workflow, a bench report or an assertion result with samples
    (or a ``ConvergenceError``, through its ``result``)."""
    from kailash_nb.workflow import Workflow, WorkflowResult

    if isinstance(obj, WorkflowResult):
        return timeline(obj)
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
        "or an assert_performance / assert_converges result"
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
