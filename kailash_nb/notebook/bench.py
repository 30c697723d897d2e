"""``%kailash bench``: run a workflow N times, C at a time, on the kernel's loop; report latency and throughput.

The report's text and HTML hold only counts (stable for nbval); the timings are in its metadata, its
attributes and its chart.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kailash_nb.workflow import now

from .charts import Chart, latency_chart
from .display import Bundle, error_lines, render, table
from .session import add_input_hints
from .widgets import Progress

if TYPE_CHECKING:
    from .session import NotebookSession


@dataclass(slots=True, frozen=True)
class BenchReport:
    """What a bench measured: each run's latency (seconds, completion order) and status."""

    workflow: str
    concurrency: int
    latencies: tuple[float, ...]
    statuses: tuple[str, ...]
    wall_time: float
    first_error: str | None = None

    @property
    def runs(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        """Runs per second over the whole bench."""
        return self.runs / self.wall_time if self.wall_time > 0 else float("inf")

    def percentile(self, q: float) -> float:
        """Latency at percentile ``q`` (0-100), nearest rank."""
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1]

    def stats(self) -> dict[str, float]:
        return {
            "mean": statistics.fmean(self.latencies),
            "p50": self.percentile(50),
            "p95": self.percentile(95),
            "max": max(self.latencies),
            "throughput_per_s": self.throughput,
            "wall_time": self.wall_time,
        }

    def chart(self) -> Chart:
        s = self.stats()
        summary = (f"mean {s['mean'] * 1000:.2f} ms\np50 {s['p50'] * 1000:.2f} ms\n"
                   f"p95 {s['p95'] * 1000:.2f} ms\n{s['throughput_per_s']:.1f} runs/s")
        return latency_chart(self.latencies, f"bench {self.workflow!r}: {self.runs} runs, "
                             f"concurrency {self.concurrency}", summary)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        counts: dict[str, int] = {}
        for status in self.statuses:
            counts[status] = counts.get(status, 0) + 1
        rows = [{"status": s, "runs": n} for s, n in sorted(counts.items())]
        notes = [f"first error:\n{self.first_error}"] if self.first_error else []
        title = f"bench {self.workflow!r}: {self.runs} runs, concurrency {self.concurrency}"
        return render(title, table(rows, ["status", "runs"]), notes, self.stats())

    def __repr__(self) -> str:
        return self._repr_mimebundle_()[0]["text/plain"]


async def bench(session: NotebookSession, workflow: str, runs: int, concurrency: int,
                inputs: Mapping[str, Any] | None) -> BenchReport:
    """Run ``workflow`` ``runs`` times with at most ``concurrency`` runs in flight; a progress bar meanwhile."""
    wf = session.workflow(workflow).build()
    inputs = inputs if inputs is not None else session.last_inputs.get(workflow)
    runtime = session.runtime()
    progress = Progress(runs, f"bench {workflow!r}")
    latencies: list[float] = []
    statuses: list[str] = []
    errors: list[str] = []
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            started = now()
            result = await runtime.execute_workflow_async(
                wf, inputs, resources=session.resources, namespace=session.namespace
            )
            latencies.append(now() - started)
            statuses.append(result.status)
            add_input_hints(result)
            for node_id in result.failed_nodes[:1]:
                errors.append(f"node {node_id!r}: " + error_lines(result.errors[node_id], wf.nodes[node_id].filename))
            progress.advance()

    started = now()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(runs):
                group.create_task(one())
    except* Exception as failed:
        # Node errors are in each run's result; this is the runtime refusing a run, the same for all.
        raise _first(failed) from None
    finally:
        progress.close()
    return BenchReport(workflow, concurrency, tuple(latencies), tuple(statuses), now() - started,
                       errors[0] if errors else None)


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error
