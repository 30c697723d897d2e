"""``WorkflowResult``: everything that happened in one run, per node."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import OutputNotFoundError, add_note
from .graph import Workflow, resolve_path

NodeStatus = Literal["success", "failed", "skipped", "cancelled"]


@dataclass(slots=True, frozen=True)
class NodeTiming:
    """When a node ran, in seconds from the start of its run."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(slots=True, eq=False)
class WorkflowResult:
    """The outcome of one run: status, each node's output, status, error, timing and prints."""

    workflow: Workflow = field(repr=False)
    inputs: Mapping[str, Any] = field(repr=False)
    status: Literal["success", "failed"] = "success"
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_status: dict[str, NodeStatus] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    node_timings: dict[str, NodeTiming] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    execution_time: float = 0.0
    #: The event loop's time when the run started: node timings are relative to it.
    started: float = 0.0
    #: The run was on virtual time: its timings are virtual, the same from run to run.
    virtual_time: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def failed_nodes(self) -> tuple[str, ...]:
        """Nodes that raised, in plan order."""
        return tuple(n for n in self.workflow.order if self.node_status.get(n) == "failed")

    def get_output(self, node: str, key: str | None = None) -> Any:
        """A node's output dict, or the value at dotted ``key`` in it (``"data.field"``)."""
        if node not in self.outputs:
            raise OutputNotFoundError(self._why_no_output(node))
        output = self.outputs[node]
        if key is None:
            return output
        try:
            return resolve_path(output, key, node=node)
        except LookupError as exc:
            raise OutputNotFoundError(str(exc)) from None

    def raise_for_status(self) -> WorkflowResult:
        """Re-raise the original exception of the first failed node; return self when all succeeded.

        When several nodes failed, a note on the exception (Python 3.11+) names the others.
        """
        failed = self.failed_nodes or tuple(self.errors)
        if not failed:
            return self
        error = self.errors[failed[0]]
        others = [f"node {n!r}: {type(self.errors[n]).__name__}: {self.errors[n]}" for n in failed[1:]]
        note = f"workflow {self.workflow.name!r} also failed in " + "; ".join(others)
        if others:
            add_note(error, note)
        raise error

    def summary(self) -> str:
        """One line per node: status, and the error for failed nodes."""
        lines = [f"workflow {self.workflow.name!r}: {self.status}"]
        for node, status in self.node_status.items():
            error = self.errors.get(node)
            detail = f" ({type(error).__name__}: {error})" if error is not None else ""
            lines.append(f"  {node}: {status}{detail}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for status in self.node_status.values():
            counts[status] = counts.get(status, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"WorkflowResult({self.workflow.name!r}, status={self.status!r}, nodes: {parts})"

    def _why_no_output(self, node: str) -> str:
        if node not in self.workflow.nodes:
            known = ", ".join(repr(n) for n in self.workflow.order)
            return f"workflow {self.workflow.name!r} has no node {node!r}; nodes: {known}"
        status = self.node_status.get(node)
        error = self.errors.get(node)
        if error is not None:
            happened = "failed" if status == "failed" else f"was {status}"
            return f"node {node!r} has no output: it {happened}: {type(error).__name__}: {error}"
        if status is None:
            return f"node {node!r} has no output: it was not part of this run"
        blockers = [
            f"node {p!r} {'failed' if self.node_status.get(p) == 'failed' else 'was ' + str(self.node_status.get(p))}"
            for p in self.workflow.predecessors[node]
            if p in self.node_status and self.node_status[p] != "success"
        ]
        because = f" because {' and '.join(blockers)}" if blockers else " because the run ended first"
        return f"node {node!r} has no output: it was {status}{because}"
