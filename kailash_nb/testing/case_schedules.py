"""A whole ``AsyncWorkflowTestCase`` test under seeded schedules: ``pytest --kailash-schedules N``.

A test's resources are its own: mocks whose ``side_effect`` lists and call counts a run consumes, a fake
store whose contents it changes. So a schedule does not re-run a workflow against the test's objects; it
re-runs the whole test, a fresh instance each time (setUp, so fresh resources; the test; tearDown and the
cleanups), on a fresh event loop on virtual time, with the schedule as the call policy in force from
setUp to the last cleanup. Every workflow the test executes, and every awaited call the test itself makes
on a tracked mock, then passes its decisions through that one schedule.

A token therefore numbers the schedule points of the whole test in the order they come: each choice of
which ready node starts first and each awaited resource call, across all the workflows the test runs,
one after the other. It replays with the same test (``pytest --kailash-schedule-replay TOKEN
path::Class::test``); ``replay_schedule(workflow, TOKEN)`` gives the same interleaving only for a test
that runs one workflow and makes no awaited mock call of its own before it.

What is shared between runs is not reset: class attributes, ``setUpClass`` state, module globals. Left
alone (run once, as usual): a test marked ``@use_virtual_time(False)``, which needs real time; a plain
``def`` test method, which runs off the case's loop; and a function-style test that uses the
``workflow_case`` fixture, since pytest cannot make its fixtures afresh for each run.
"""

from __future__ import annotations

import asyncio
import inspect
import unittest
from collections.abc import Generator
from typing import Any

import pytest

from kailash_nb.workflow import virtual_time
from kailash_nb.workflow.calls import CallPolicy, call_policy

from .case import AsyncWorkflowTestCase, virtual_time_mark
from .cassettes import replay_only
from .schedules import ScheduleDeadlockError, ScheduleReport, deadlock, explore_runs, replay_run
from .utils import maybe_await

__all__ = ["ScheduleOption", "explore_test_schedules", "replay_test_schedule"]


#: What a run lets through instead of counting it as the test's failure: a skip, and a request to stop.
#: (pytest's ``Exit`` is an ``Exception``; its ``Failed``, which ``pytest.fail`` and a ``pytest.raises``
#: that saw nothing raise, is not, and is a failure like any other.)
_NOT_FAILURES = (unittest.SkipTest, pytest.skip.Exception, pytest.exit.Exception, KeyboardInterrupt, SystemExit,
                 asyncio.CancelledError)


async def _test_under(case_class: type[AsyncWorkflowTestCase], method: str, schedule: CallPolicy
                      ) -> BaseException | None:
    """Run a fresh instance's setUp, test, tearDown and cleanups under ``schedule`` on virtual time; return
    the test's failure, or ``None``. A skip propagates (as does an interrupt). A run that deadlocks is
    cancelled and fails with a ``ScheduleDeadlockError``."""
    case = case_class(method)
    task = asyncio.current_task()
    assert task is not None
    stuck: list[bool] = []

    def cancel_stuck_run() -> None:
        stuck.append(True)
        task.cancel()

    with call_policy(schedule), replay_only("a re-run under seeded schedules (--kailash-schedules)"):
        async with virtual_time() as clock:
            clock.on_stuck = cancel_stuck_run
            try:
                async with case:
                    await maybe_await(getattr(case, method)())
            except BaseException as error:
                if stuck:
                    return _deadlock(task, error)
                if isinstance(error, _NOT_FAILURES):
                    raise
                return error
            if stuck:  # the test caught the cancellation
                return _deadlock(task, None)
    return None


def _deadlock(task: asyncio.Task[Any], cause: BaseException | None) -> ScheduleDeadlockError:
    while task.cancelling():  # the cancellation was the kit's, not the caller's: take it back
        task.uncancel()
    error = deadlock()
    error.__cause__ = cause
    return error


def _run_test(case_class: type[AsyncWorkflowTestCase], method: str, schedule: CallPolicy) -> BaseException | None:
    with asyncio.Runner() as runner:  # a fresh loop: what one run leaves running cannot reach the next
        return runner.run(_test_under(case_class, method, schedule))


def explore_test_schedules(case_class: type[AsyncWorkflowTestCase], method: str, *, runs: int, seed: int = 0,
                           name: str | None = None) -> ScheduleReport:
    """Run test ``method`` of ``case_class`` ``runs`` times, each a fresh instance under a different seeded
    schedule on virtual time (the first in the default order); shrink the first failure and name what
    raced, as ``explore_schedules`` does for one workflow. A skip in a run (unittest's or pytest's) propagates."""
    return explore_runs(lambda schedule: _run_test(case_class, method, schedule), runs=runs, seed=seed,
                        name=name or f"{case_class.__qualname__}.{method}", what="--kailash-schedules")


def replay_test_schedule(case_class: type[AsyncWorkflowTestCase], method: str, token: str) -> None:
    """Run test ``method`` once under schedule ``token`` on virtual time; raise its failure, noted with
    the token."""
    error = replay_run(lambda schedule: _run_test(case_class, method, schedule), token)
    if error is not None:
        error.add_note(f"(the test ran under schedule {token}, on virtual time: --kailash-schedule-replay)")
        raise error


def dependence_message(report: ScheduleReport, nodeid: str) -> str:
    """The failure message of a test whose outcome depends on the schedule."""
    token = report.first_failure
    if token == "s1:":  # the default order: no schedule deviated from what asyncio does
        return (f"the test passed, but failed when run again whole on virtual time in the default order "
                f"(schedule s1:), so not because of the schedule: it depends on real time or on state its runs "
                f"share; no other schedule was tried.\n"
                f"- on real time (it measures durations, reads time.monotonic(), blocks in time.sleep, waits on a "
                f"server's own clock such as a Redis TTL): mark it "
                f"@use_virtual_time(False), and --kailash-schedules runs it once, as usual;\n"
                f"- on shared state (class attributes, setUpClass, globals, rows left in a database): make "
                f"it in setUp, which every run repeats, or undo it in tearDown;\n"
                f"see it fail with:  pytest --kailash-schedule-replay 's1:' '{nodeid}'\n{report}")
    return (f"the test passed, but its outcome depends on the schedule of the workflows it runs;\n"
            f"replay the first failure with:  pytest --kailash-schedule-replay '{token}' '{nodeid}'\n"
            f"(the token numbers the schedule points of the whole test: which ready node starts first and "
            f"each awaited resource call, across every workflow it runs, in order)\n{report}")


def _case_class(item: pytest.Item) -> type[AsyncWorkflowTestCase] | None:
    cls = getattr(item, "cls", None)
    is_case = isinstance(cls, type) and issubclass(cls, AsyncWorkflowTestCase)
    return cls if is_case and isinstance(item, pytest.Function) and hasattr(cls, item.name) else None


def _left_alone(case_class: type[AsyncWorkflowTestCase], method: str) -> bool:
    """Whether the option leaves the test to its usual run: it opts out of virtual time
    (``@use_virtual_time(False)``), which every schedule's run is on; or it is a plain ``def``, which the
    case calls off its loop (where it may start a loop of its own, ``asyncio.run``), not inside a run."""
    test = getattr(case_class, method)
    return virtual_time_mark(test) is False or not inspect.iscoroutinefunction(test)


def _expects_failure(case_class: type[AsyncWorkflowTestCase], method: str) -> bool:
    return bool(getattr(getattr(case_class, method), "__unittest_expecting_failure__", False)
                or getattr(case_class, "__unittest_expecting_failure__", False))


class ScheduleOption:
    """The hooks of ``--kailash-schedules N`` and ``--kailash-schedule-replay TOKEN`` (registered by the
    pytest plugin only when one is given): for an ``AsyncWorkflowTestCase`` test, after it passed as usual,
    ``N`` re-runs under seeded schedules; or, to replay, its one run under the token's schedule."""

    def __init__(self, runs: int | None, seed: int, replay: str | None) -> None:
        self.runs = runs
        self.seed = seed
        self.replay = replay

    def pytest_report_header(self) -> str:
        if self.replay is not None:
            return f"kailash_nb: AsyncWorkflowTestCase tests run under schedule {self.replay}, on virtual time"
        return (f"kailash_nb: each passing AsyncWorkflowTestCase test re-run under {self.runs} seeded "
                f"schedule(s) (seed {self.seed}), on virtual time")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        case_class = _case_class(item)
        if case_class is None or _left_alone(case_class, item.name):
            return (yield)
        method = item.name
        if self.replay is not None:
            token = self.replay
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(item, "runtest", lambda: replay_test_schedule(case_class, method, token))
                return (yield)
        outcome = yield
        # pytest's unittest support records a TestCase's failure or skip on the item (its _excinfo) and
        # reports it after this hook: a test that did not pass as usual is left to that report.
        if getattr(item, "_excinfo", None) or _expects_failure(case_class, method) or self.runs is None:
            return outcome
        try:
            report = explore_test_schedules(case_class, method, runs=self.runs, seed=self.seed, name=item.nodeid)
        except (unittest.SkipTest, pytest.skip.Exception):
            return outcome
        if not report.ok:
            pytest.fail(dependence_message(report, item.nodeid), pytrace=False)
        return outcome
