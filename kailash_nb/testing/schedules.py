"""Seeded schedules: run a workflow under many interleavings, find the ones that fail, replay them exactly.

A schedule makes two kinds of decision, each through the one resource-call seam
(:mod:`kailash_nb.workflow.calls`):

- which of the ready nodes starts first (decision 0 is plan order);
- at each awaited resource call (tracked mocks, the mock HTTP client, any object handed in as a resource,
  which is wrapped), how many times the calling task lets the others run first (decision 0: none).

Every run is on virtual time, so a schedule never depends on how fast the machine is. A schedule is
written as a short token: ``s1:`` and the decisions that deviate from the default, ``index=value``
separated by ``.`` (``s1:3=1.7=2``; ``s1:`` alone is the default order). The same token replays the same
order of node starts and calls, and so the same result. Before a failing schedule is reported it is
shrunk: deviations are dropped or lowered while the run still fails the same way, so the token shows the
fewest that matter.

Limits: calls that are not awaited (a sync ``Mock()`` method) are not reordered, and neither is what
happens inside one await of a C-level client; real I/O during a run makes replays as exact as the
service is.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kailash_nb.errors import KailashNbError, WorkflowAssertionError
from kailash_nb.workflow import AsyncLocalRuntime, Workflow, WorkflowResult, virtual_time
from kailash_nb.workflow.calls import CALL_SEAM_ATTRIBUTE, call_policy

from .mocks import CallTracker, TrackedResource

__all__ = ["Call", "Outcome", "Race", "ScheduleReport", "ScheduleTokenError", "explore_schedules", "replay_schedule"]

_TOKEN = re.compile(r"s1:((?:\d+=\d+)(?:\.\d+=\d+)*)?")
#: The most turns a task may give away at one resource call.
MAX_YIELDS = 3
#: The chance that a decision deviates from the default in a random schedule.
DEVIATION = 0.3


class ScheduleTokenError(KailashNbError, ValueError):
    """A schedule token that is not one ``explore_schedules`` printed."""


@dataclass(slots=True, frozen=True)
class Call:
    """A resource call as a schedule let it through: who called what, in order."""

    node: str | None
    resource: str
    method: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.method} by node {self.node!r}"


@dataclass(slots=True, frozen=True)
class Race:
    """Two calls on one resource by different nodes whose order differs between a passing and a failing
    schedule: in the failing one, ``second`` came before ``first``."""

    first: Call
    second: Call

    def __str__(self) -> str:
        return f"{self.first} against {self.second}"


@dataclass(slots=True)
class _Run:
    token: str
    result: WorkflowResult
    failure: str | None  # why the run failed (its check, or the workflow's errors), or None
    outcome: str
    calls: tuple[Call, ...]


@dataclass(slots=True, frozen=True)
class Outcome:
    """One distinct outcome of the runs: what happened, how often, and the first schedule that gave it."""

    summary: str
    count: int
    failed: bool
    token: str


@dataclass(slots=True, frozen=True)
class ScheduleReport:
    """What ``explore_schedules`` found: the number of runs, the distinct outcomes with their counts,
    the (shrunk) token of each failing outcome, and the calls that raced."""

    workflow: str
    runs: int
    seed: int
    outcomes: tuple[Outcome, ...]
    races: tuple[Race, ...] = ()
    failure: str | None = None  # the first failing outcome's reason
    passing_calls: tuple[Call, ...] = field(default=(), repr=False)
    failing_calls: tuple[Call, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not any(outcome.failed for outcome in self.outcomes)

    @property
    def failing(self) -> tuple[Outcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.failed)

    @property
    def first_failure(self) -> str | None:
        """The token of the first failing outcome, or ``None`` when every schedule passed."""
        return self.failing[0].token if self.failing else None

    def __str__(self) -> str:
        lines = [f"{self.runs} schedules of workflow {self.workflow!r} (seed {self.seed}): "
                 f"{len(self.outcomes)} distinct outcome(s), {sum(o.count for o in self.failing)} failing run(s)"]
        for outcome in self.outcomes:
            mark = "FAIL" if outcome.failed else "ok  "
            lines.append(f"  {mark} {outcome.count:>5} x {outcome.summary}"
                         + (f"  [replay: {outcome.token}]" if outcome.failed else ""))
        if self.failure:
            lines.append(f"first failure: {self.failure}")
        if self.races:
            lines.append("what raced (the failing schedule ran the second call first):")
            lines += [f"  {race}" for race in self.races]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))  # IPython's text/plain: the readable report, not the dataclass fields

    def _repr_html_(self) -> str:
        from html import escape

        head = "<tr><th>outcome</th><th>runs</th><th>failed</th><th>replay with</th></tr>"
        body = "".join(f"<tr><td>{escape(o.summary)}</td><td>{o.count}</td><td>{'yes' if o.failed else ''}</td>"
                       f"<td><code>{escape(o.token) if o.failed else ''}</code></td></tr>" for o in self.outcomes)
        races = "".join(f"<li><code>{escape(str(r.first))}</code> against <code>{escape(str(r.second))}</code></li>"
                        for r in self.races)
        title = escape(str(self).splitlines()[0])
        return (f"<p>{title}</p><table>{head}{body}</table>"
                + (f"<p>What raced (the failing schedule ran the second call first):</p><ul>{races}</ul>"
                   if races else ""))


class _Schedule:
    """The call policy of one run: decisions from a seeded generator, or replayed from a token."""

    def __init__(self, rng: random.Random | None = None, decisions: Mapping[int, int] | None = None) -> None:
        self.rng = rng
        self.given = dict(decisions or {})
        self.made: dict[int, int] = {}
        self.index = 0
        self.calls: list[Call] = []

    def _decide(self, options: int) -> int:
        index = self.index
        self.index += 1
        if self.rng is not None:
            value = self.rng.randrange(1, options) if options > 1 and self.rng.random() < DEVIATION else 0
        else:
            value = min(self.given.get(index, 0), options - 1)
        if value:
            self.made[index] = value
        return value

    def choose(self, count: int) -> int:
        return self._decide(count)

    async def before_call(self, resource: str, method: str, node: str | None) -> None:
        for _ in range(self._decide(MAX_YIELDS + 1)):
            await asyncio.sleep(0)
        self.calls.append(Call(node, resource, method))

    def token(self) -> str:
        return "s1:" + ".".join(f"{i}={v}" for i, v in sorted(self.made.items()))


def parse_token(token: str) -> dict[int, int]:
    match = _TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
    if match is None:
        raise ScheduleTokenError(f"{token!r} is not a schedule token: expected what explore_schedules printed, "
                                 "such as 's1:3=1.7=2' (or 's1:' for the default order)")
    return {int(i): int(v) for i, v in (part.split("=") for part in (match.group(1) or "").split(".") if part)}


async def _instantiate(resources: Mapping[str, Any] | None, tracker: CallTracker) -> dict[str, Any]:
    """This run's resources: factories (functions, classes, lambdas) are called afresh, so that every
    schedule starts from the same state; objects are shared; each is wrapped so its calls are seen."""
    made: dict[str, Any] = {}
    for name, value in (resources or {}).items():
        if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismethod(value):
            value = value()
            if inspect.isawaitable(value):  # an async factory
                value = await value
        seen_already = isinstance(value, TrackedResource) or getattr(value, CALL_SEAM_ATTRIBUTE, False)
        made[name] = value if seen_already else TrackedResource(name, value, tracker)
    return made


def _describe(result: WorkflowResult) -> str:
    if result.ok:
        return "success: " + ", ".join(f"{node}={_short(output)}" for node, output in sorted(result.outputs.items()))
    errors = "; ".join(f"{node}: {type(error).__name__}: {error}" for node, error in sorted(result.errors.items()))
    return f"failed: {errors or result.status}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _run_once(workflow: Workflow, inputs: Mapping[str, Any] | None, resources: Mapping[str, Any] | None,
                    schedule: _Schedule, check: Callable[[WorkflowResult], Any] | None) -> _Run:
    tracker = CallTracker()
    made = await _instantiate(resources, tracker)
    with call_policy(schedule):
        async with virtual_time():
            result = await AsyncLocalRuntime().execute_workflow_async(workflow, inputs, resources=made)
    failure: str | None = None
    outcome = _describe(result)
    if check is None:
        if not result.ok:
            failure = outcome
    else:
        try:
            value = check(result)
            if inspect.isawaitable(value):
                await value
        except AssertionError as error:
            failure = f"check failed: {error}"
            outcome = f"{outcome} | {failure}"
    return _Run(schedule.token(), result, failure, outcome, tuple(schedule.calls))


async def _shrink(workflow: Workflow, inputs: Mapping[str, Any] | None, resources: Mapping[str, Any] | None,
                  check: Callable[[WorkflowResult], Any] | None, failing: _Run) -> _Run:
    """The failing run with the fewest, smallest deviations that still fail with the same outcome."""
    best = failing
    improved = True
    while improved:
        improved = False
        decisions = parse_token(best.token)
        for index in sorted(decisions):
            for smaller in range(0, decisions[index]):
                trial = dict(decisions)
                if smaller:
                    trial[index] = smaller
                else:
                    del trial[index]
                run = await _run_once(workflow, inputs, resources, _Schedule(decisions=trial), check)
                if run.failure is not None and run.outcome == failing.outcome:
                    best, improved = run, True
                    break
            if improved:
                break
    return best


def _races(passing: Sequence[Call], failing: Sequence[Call]) -> tuple[Race, ...]:
    """Pairs of calls on one resource by different nodes, in the passing order, that the failing run made
    the other way round."""
    def positions(calls: Sequence[Call]) -> dict[Call, list[int]]:
        seen: dict[Call, list[int]] = {}
        for i, call in enumerate(calls):
            seen.setdefault(call, []).append(i)
        return seen

    before, after = positions(passing), positions(failing)
    found: list[Race] = []
    for a in before:
        for b in before:
            if a.resource != b.resource or a.node == b.node or a not in after or b not in after:
                continue
            if before[a][0] < before[b][0] and after[b][0] < after[a][0]:
                race = Race(a, b)
                if race not in found:
                    found.append(race)
    return tuple(found)


async def explore_schedules(workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                            resources: Mapping[str, Any] | None = None, runs: int = 100, seed: int = 0,
                            check: Callable[[WorkflowResult], Any] | None = None) -> ScheduleReport:
    """Run ``workflow`` ``runs`` times, each under a different seeded schedule, on virtual time.

    ``resources`` maps names to objects (shared by all runs) or to factories (a function, class or lambda,
    called for each run so that every schedule starts from the same state); each is wrapped so that its
    awaited calls are schedule points. ``check(result)`` judges a run (raise ``AssertionError`` to fail
    it); by default a run fails when the workflow did not succeed. The first run is the default order.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"explore_schedules(runs=...) must be a positive int, got {runs!r}")
    if not isinstance(workflow, Workflow):
        raise TypeError(f"explore_schedules needs a built Workflow, got {type(workflow).__name__}")
    rng = random.Random(seed)
    seen: dict[str, list[Any]] = {}  # outcome -> [count, first run]
    first_pass: _Run | None = None
    first_fail: _Run | None = None
    for number in range(runs):
        schedule = _Schedule(decisions={}) if number == 0 else _Schedule(rng=random.Random(rng.getrandbits(64)))
        run = await _run_once(workflow, inputs, resources, schedule, check)
        entry = seen.setdefault(run.outcome, [0, run])
        entry[0] += 1
        if run.failure is None and first_pass is None:
            first_pass = run
        if run.failure is not None and first_fail is None:
            first_fail = run
    outcomes = []
    for summary, (count, run) in seen.items():
        if run.failure is not None:
            run = await _shrink(workflow, inputs, resources, check, run)
            if first_fail is not None and first_fail.outcome == summary:
                first_fail = run
        outcomes.append(Outcome(summary, count, run.failure is not None, run.token))
    outcomes.sort(key=lambda o: (-o.count, o.summary))
    races: tuple[Race, ...] = ()
    if first_pass is not None and first_fail is not None:
        races = _races(first_pass.calls, first_fail.calls)
    return ScheduleReport(workflow.name, runs, seed, tuple(outcomes), races,
                          first_fail.failure if first_fail else None,
                          first_pass.calls if first_pass else (), first_fail.calls if first_fail else ())


async def replay_schedule(workflow: Workflow, token: str, inputs: Mapping[str, Any] | None = None, *,
                          resources: Mapping[str, Any] | None = None) -> WorkflowResult:
    """Run ``workflow`` again under the schedule ``token`` names: the same node starts and resource calls
    in the same order, and so the same result."""
    decisions = parse_token(token)
    run = await _run_once(workflow, inputs, resources, _Schedule(decisions=decisions), None)
    return run.result


def schedule_dependence(report: ScheduleReport) -> WorkflowAssertionError:
    """The failure of ``assert_schedule_independent``: the outcomes, the token to replay and what raced."""
    return WorkflowAssertionError(f"the workflow's outcome depends on the schedule; replay the first failure "
                                  f"with replay_schedule(workflow, {report.first_failure!r}, ...)\n{report}")
