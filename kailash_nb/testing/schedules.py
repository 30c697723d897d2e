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
fewest that matter. What raced is the pairs of calls that the shrunk run made out of the default order and
that the runs failing the same way (those explored, and the shrunk schedule with one more deviation after
its last) also made out of order: two reads, which do not race, drop out without the kit knowing which
method reads.

Limits: calls that are not awaited (a sync ``Mock()`` method) are not reordered, and neither is what
happens inside one await of a C-level client; real I/O during a run makes replays as exact as the
service is.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import re
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kailash_nb.errors import KailashNbError, WorkflowAssertionError
from kailash_nb.workflow import AsyncLocalRuntime, Workflow, WorkflowResult, virtual_time
from kailash_nb.workflow.calls import CALL_SEAM_ATTRIBUTE, CallPolicy, call_policy
from kailash_nb.workflow.clock import STUCK_GRACE

from .mocks import CallTracker, TrackedResource

__all__ = ["Call", "Outcome", "Race", "ScheduleDeadlockError", "ScheduleReport", "ScheduleTokenError",
           "explore_schedules", "replay_schedule"]

_TOKEN = re.compile(r"s1:((?:\d+=\d+)(?:\.\d+=\d+)*)?")
#: The most turns a task may give away at one resource call.
MAX_YIELDS = 3
#: The chance that a decision deviates from the default in a random schedule.
DEVIATION = 0.3


class ScheduleTokenError(KailashNbError, ValueError):
    """A schedule token that is not one ``explore_schedules`` printed."""


class ScheduleDeadlockError(KailashNbError, RuntimeError):
    """A run under a schedule that stopped: every task waited on another, and nothing (no timer, no I/O, no
    executor job) could wake one. The run was cancelled (a test's tearDown and cleanups ran)."""


def deadlock() -> ScheduleDeadlockError:
    return ScheduleDeadlockError(
        f"the run stopped: every task waited on another and nothing could wake one (no timer, no I/O, no "
        f"executor job, for {STUCK_GRACE:g} s of real time); a deadlock under this schedule, such as two nodes "
        f"taking two locks in opposite orders. The run was cancelled")


@dataclass(slots=True, frozen=True)
class Call:
    """A resource call as a schedule let it through: who called what, in order."""

    node: str | None
    resource: str
    method: str

    def __str__(self) -> str:
        who = "the test" if self.node is None else f"node {self.node!r}"
        return f"{self.resource}.{self.method} by {who}"


@dataclass(slots=True, frozen=True)
class Race:
    """Two calls on one resource by different nodes whose order matters: the passing default order made
    ``first`` before ``second``; the shrunk failing run, and the most runs that failed the same way, made
    ``second`` first."""

    first: Call
    second: Call

    def __str__(self) -> str:
        return f"{self.first} against {self.second}"


@dataclass(slots=True)
class _Run:
    token: str
    result: Any  # the WorkflowResult of a workflow's run; for a test's run, its exception or None
    failure: str | None  # why the run failed (its check, or the workflow's errors), or None
    outcome: str
    calls: tuple[Call, ...]
    options: tuple[int, ...] = ()  # how many values each decision of the run could take


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
    failing_calls: tuple[Call, ...] = field(default=(), repr=False)  # of the shrunk first failing run
    failing_token: str | None = None  # the shrunk first failing run's token
    #: The shrunk first failing run's WorkflowResult (``None`` for a test's schedules, or when all passed).
    failing_result: WorkflowResult | None = field(default=None, repr=False, compare=False)
    test: bool = False  # the schedules were of a whole test (``pytest --kailash-schedules``), not a workflow

    @property
    def ok(self) -> bool:
        return not any(outcome.failed for outcome in self.outcomes)

    @property
    def failing(self) -> tuple[Outcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.failed)

    @property
    def first_failure(self) -> str | None:
        """The (shrunk) token of the first failing schedule found, or ``None`` when every schedule passed."""
        if self.failing_token is not None:
            return self.failing_token
        return self.failing[0].token if self.failing else None

    def __str__(self) -> str:
        what = "test" if self.test else "workflow"
        lines = [f"{self.runs} schedules of {what} {self.workflow!r} (seed {self.seed}): "
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
        self.options: list[int] = []  # how many values each decision could take
        self.index = 0
        self.calls: list[Call] = []

    def _decide(self, options: int) -> int:
        index = self.index
        self.index += 1
        self.options.append(options)
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
        async with virtual_time() as clock:
            running = asyncio.ensure_future(AsyncLocalRuntime().execute_workflow_async(workflow, inputs,
                                                                                       resources=made))

            def cancel_stuck_run() -> None:  # a deadlock: cancel the run rather than wait for ever
                running.cancel()

            outer, clock.on_stuck = clock.on_stuck, cancel_stuck_run  # a clock joined: the outer run's
            try:
                result = await running
            except asyncio.CancelledError:
                caller = asyncio.current_task()
                if not running.cancelled() or (caller is not None and caller.cancelling()):
                    raise  # the caller was cancelled, not the run
                error = deadlock()
                stopped = f"{type(error).__name__}: {error}"
                return _Run(schedule.token(), error, stopped, stopped, tuple(schedule.calls),
                            tuple(schedule.options))
            finally:
                clock.on_stuck = outer
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
    return _Run(schedule.token(), result, failure, outcome, tuple(schedule.calls), tuple(schedule.options))


# -- the search: one implementation of exploring, shrinking and naming the race, driven by whoever runs ------
# It is a generator that yields the schedule to run next and is sent the run it gave, so that a workflow
# (on the caller's loop, awaited) and a whole test (each run on a fresh loop, called) share every rule.

#: At most this many runs (and no more than were explored) look around the shrunk failing schedule for
#: pairs whose order does not matter.
MAX_PROBES = 200
#: At most this many runs shrink the failing schedules, all outcomes together. A schedule whose deviations
#: shift the calls that later decisions fall on (a test with hundreds of calls) can fail to shrink one
#: deviation at a time, and would otherwise cost about a run per deviation per pass: over a thousand runs
#: for ``runs=10``. When the budget is spent, the token is the shortest failing one found so far.
MAX_SHRINKS = 100


@dataclass(slots=True)
class _Findings:
    outcomes: list[Outcome]
    first_pass: _Run | None
    first_fail: _Run | None  # shrunk
    races: tuple[Race, ...]


_Search = Generator[_Schedule, _Run, _Findings]


def _search(runs: int, seed: int, *, once_if_fixed: bool = False) -> _Search:
    """Run ``runs`` schedules (the first in the default order), shrink each failing outcome's first run,
    and name the calls whose order makes the first failure. ``once_if_fixed`` (a whole test's runs): stop
    after the default run when it had nothing to decide (no ready-node choice, no awaited resource call),
    since every schedule is that one, or when it failed, since a test that fails in the order it passed in
    fails for another reason than the schedule, and the other runs would only repeat it."""
    rng = random.Random(seed)
    seen: dict[str, list[Any]] = {}  # outcome -> [count, first run]
    first_pass: _Run | None = None
    first_fail: _Run | None = None
    failing_orders: list[tuple[Call, ...]] = []  # call orders of the runs that failed as the first failure did
    for number in range(runs):
        schedule = _Schedule(decisions={}) if number == 0 else _Schedule(rng=random.Random(rng.getrandbits(64)))
        run = yield schedule
        entry = seen.setdefault(run.outcome, [0, run])
        entry[0] += 1
        if run.failure is None and first_pass is None:
            first_pass = run
        if run.failure is not None and first_fail is None:
            first_fail = run
        if first_fail is not None and run.outcome == first_fail.outcome:
            failing_orders.append(run.calls)
        if once_if_fixed and number == 0 and (not run.options or run.failure is not None):
            break
    outcomes = []
    budget = [MAX_SHRINKS]
    for summary, (count, run) in seen.items():
        if run.failure is not None:
            first = first_fail is not None and first_fail.outcome == summary
            run = yield from _shrink(run, failing_orders if first else [], budget)
            if first:
                first_fail = run
        outcomes.append(Outcome(summary, count, run.failure is not None, run.token))
    outcomes.sort(key=lambda o: (-o.count, o.summary))
    races: tuple[Race, ...] = ()
    if first_pass is not None and first_fail is not None:
        failing_orders += yield from _probe(first_fail, min(MAX_PROBES, runs))
        races = _races(first_pass.calls, first_fail.calls, failing_orders)
    return _Findings(outcomes, first_pass, first_fail, races)


def _shrink(failing: _Run, orders: list[tuple[Call, ...]], budget: list[int]) -> Generator[_Schedule, _Run, _Run]:
    """The failing run with the fewest, smallest deviations that still fail with the same outcome (the
    call order of each trial that does goes to ``orders``), in at most ``budget[0]`` runs (spent from it)."""
    best = failing
    improved = True
    while improved and budget[0] > 0:
        improved = False
        decisions = parse_token(best.token)
        for index in sorted(decisions):
            for smaller in range(0, decisions[index]):
                if budget[0] <= 0:
                    return best
                budget[0] -= 1
                trial = dict(decisions)
                if smaller:
                    trial[index] = smaller
                else:
                    del trial[index]
                run = yield _Schedule(decisions=trial)
                if run.failure is not None and run.outcome == failing.outcome:
                    orders.append(run.calls)
                    best, improved = run, True
                    break
            if improved:
                break
    return best


def _probe(failing: _Run, budget: int) -> Generator[_Schedule, _Run, list[tuple[Call, ...]]]:
    """The call orders of the shrunk failing run and of its neighbours that fail the same way: the same
    schedule up to its last deviation (so its deviations still fall on the same calls), with one more
    deviation after it: more evidence of which pairs every such failure makes out of order."""
    decisions = parse_token(failing.token)
    orders = [failing.calls]
    for index in range(max(decisions, default=-1) + 1, len(failing.options)):
        for value in range(1, failing.options[index]):
            if budget == 0:
                return orders
            budget -= 1
            run = yield _Schedule(decisions={**decisions, index: value})
            if run.failure is not None and run.outcome == failing.outcome:
                orders.append(run.calls)
    return orders


_Key = tuple[Call, int]  # a call and how many times its node made the same call before it


def _positions(calls: Sequence[Call]) -> dict[_Key, int]:
    counts: dict[Call, int] = {}
    positions: dict[_Key, int] = {}
    for position, call in enumerate(calls):
        positions[(call, counts.get(call, 0))] = position
        counts[call] = counts.get(call, 0) + 1
    return positions


def _reversed(passing: Sequence[Call], failing: Sequence[Call]) -> list[tuple[_Key, _Key]]:
    """Pairs of calls on one resource by different nodes, in the passing order, that ``failing`` made the
    other way round."""
    before, after = _positions(passing), _positions(failing)
    keys = sorted((key for key in before if key in after), key=before.__getitem__)
    return [(x, y) for i, x in enumerate(keys) for y in keys[i + 1:]
            if x[0].resource == y[0].resource and x[0].node != y[0].node and after[y] < after[x]]


def _races(passing: Sequence[Call], failing: Sequence[Call], orders: Sequence[Sequence[Call]]) -> tuple[Race, ...]:
    """What raced: of the pairs the shrunk failing run made out of the passing order, those that the most
    runs failing the same way (``orders``) also made out of order (all of them, when one race makes the
    failure): two reads, or two writes whose order never mattered, are out of order in some failing runs
    only, and drop out. Then a pair implied by another through a node's own order goes too: when b's call
    ran before a's first call, it ran before a's later ones as well."""
    candidates = _reversed(passing, failing)
    if not candidates:
        return ()
    # linear in the candidates for each order, and in the kept pairs below: a test makes hundreds of calls,
    # and so tens of thousands of candidate pairs
    later = [_positions(order) for order in orders]
    support = {(x, y): sum(x in at and y in at and at[y] < at[x] for at in later) for x, y in candidates}
    best = max(support.values())
    kept = [pair for pair in candidates if support[pair] == best]
    position = _positions(passing)
    first_x: dict[tuple[_Key, str | None], int] = {}  # (y, a node): where that node's first x against y is
    last_y: dict[tuple[_Key, str | None], int] = {}  # (x, a node): where that node's last y against x is
    for x, y in kept:
        first_x[(y, x[0].node)] = min(first_x.get((y, x[0].node), position[x]), position[x])
        last_y[(x, y[0].node)] = max(last_y.get((x, y[0].node), position[y]), position[y])

    def implied(x: _Key, y: _Key) -> bool:
        """Another kept pair holds y against an earlier call of x's node, or x against a later one of y's."""
        return first_x[(y, x[0].node)] < position[x] or last_y[(x, y[0].node)] > position[y]

    found: dict[Race, None] = {}
    for x, y in kept:
        if not implied(x, y):
            found.setdefault(Race(x[0], y[0]))
    return tuple(found)


async def _drive(search: _Search, run: Callable[[_Schedule], Awaitable[_Run]]) -> _Findings:
    """Run ``search`` by awaiting each schedule's run."""
    try:
        schedule = next(search)
        while True:
            schedule = search.send(await run(schedule))
    except StopIteration as done:
        return done.value


def _drive_sync(search: _Search, run: Callable[[_Schedule], _Run]) -> _Findings:
    """Run ``search`` by calling ``run`` for each schedule (a test's runs each start their own loop)."""
    try:
        schedule = next(search)
        while True:
            schedule = search.send(run(schedule))
    except StopIteration as done:
        return done.value


async def explore_schedules(workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                            resources: Mapping[str, Any] | None = None, runs: int = 100, seed: int = 0,
                            check: Callable[[WorkflowResult], Any] | None = None) -> ScheduleReport:
    """Run ``workflow`` ``runs`` times, each under a different seeded schedule, on virtual time.

    ``resources`` maps names to objects (shared by all runs) or to factories (a function, class or lambda,
    called for each run so that every schedule starts from the same state); each is wrapped so that its
    awaited calls are schedule points. ``check(result)`` judges a run (raise ``AssertionError`` to fail
    it); by default a run fails when the workflow did not succeed. The first run is the default order.
    The report keeps the shrunk first failing run's ``WorkflowResult`` (``failing_result``).
    """
    _check_runs(runs, "explore_schedules(runs=...)")
    if not isinstance(workflow, Workflow):
        raise TypeError(f"explore_schedules needs a built Workflow, got {type(workflow).__name__}")
    found = await _drive(_search(runs, seed),
                         lambda schedule: _run_once(workflow, inputs, resources, schedule, check))
    return _report_of(found, workflow.name, runs, seed)


def _check_runs(runs: object, what: str) -> None:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"{what} must be a positive int, got {runs!r}")


def _report_of(found: _Findings, name: str, runs: int, seed: int, *, test: bool = False) -> ScheduleReport:
    first_pass, first_fail = found.first_pass, found.first_fail
    runs = sum(outcome.count for outcome in found.outcomes)  # fewer than asked when there was nothing to decide
    return ScheduleReport(name, runs, seed, tuple(found.outcomes), found.races,
                          first_fail.failure if first_fail else None,
                          first_pass.calls if first_pass else (), first_fail.calls if first_fail else (),
                          failing_token=first_fail.token if first_fail else None,
                          failing_result=first_fail.result if first_fail and isinstance(first_fail.result,
                                                                                        WorkflowResult) else None,
                          test=test)


# -- the seam for schedules of something larger than one workflow: a whole test (case_schedules.py) -------
#: Runs something once under the policy it is given, on a loop of its own; returns its failure or None.
PolicyRun = Callable[[CallPolicy], BaseException | None]


def _error_summary(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _judged(run: PolicyRun, schedule: _Schedule) -> _Run:
    error = run(schedule)
    failure = None if error is None else _error_summary(error)
    return _Run(schedule.token(), error, failure, failure or "passed", tuple(schedule.calls), tuple(schedule.options))


def explore_runs(run: PolicyRun, *, runs: int, seed: int, name: str, what: str) -> ScheduleReport:
    """``explore_schedules`` for what ``run`` runs (each call under a new schedule): a run fails when it
    returns an exception, and runs failing with the same exception type and first line are one outcome.
    When the default run has nothing to decide, or fails, it is the only run. ``what`` names the option or argument
    that gave ``runs``, for its error."""
    _check_runs(runs, what)
    found = _drive_sync(_search(runs, seed, once_if_fixed=True), lambda schedule: _judged(run, schedule))
    return _report_of(found, name, runs, seed, test=True)


def replay_run(run: PolicyRun, token: str) -> BaseException | None:
    """``run`` once under the schedule ``token`` names; its failure, or None."""
    result: BaseException | None = _judged(run, _Schedule(decisions=parse_token(token))).result
    return result


async def replay_schedule(workflow: Workflow, token: str, inputs: Mapping[str, Any] | None = None, *,
                          resources: Mapping[str, Any] | None = None) -> WorkflowResult:
    """Run ``workflow`` again under the schedule ``token`` names: the same node starts and resource calls
    in the same order, and so the same result."""
    decisions = parse_token(token)
    run = await _run_once(workflow, inputs, resources, _Schedule(decisions=decisions), None)
    if isinstance(run.result, ScheduleDeadlockError):
        raise run.result
    return run.result


def schedule_dependence(report: ScheduleReport) -> WorkflowAssertionError:
    """The failure of ``assert_schedule_independent``: the outcomes, the token to replay and what raced."""
    return WorkflowAssertionError(f"the workflow's outcome depends on the schedule; replay the first failure "
                                  f"with replay_schedule(workflow, {report.first_failure!r}, ...)\n{report}")
