"""``%kailash test``: run the notebook's ``AsyncWorkflowTestCase`` classes on the kernel's loop.

Each test runs as ``async with Case("test_x") as case: await case.test_x()``, the test case's own
way of running on a caller's loop, so resources made in earlier cells stay usable. The report shows
test, outcome and message (durations in metadata); a failure raises ``AssertionError`` after the
report is shown, so that nbval fails the cell too.
"""

from __future__ import annotations

import fnmatch
import unittest
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kailash_nb.workflow import now

from .display import Bundle, render, short, table
from .errors import KailashMagicError, NotebookTestsFailed
from .tables import CALL_COLUMNS, call_rows


@dataclass(slots=True, frozen=True)
class TestOutcome:
    """One test's outcome: ``passed``, ``failed`` (an AssertionError), ``error`` or ``skipped``."""

    test: str
    outcome: str
    message: str
    duration: float
    calls: tuple[Any, ...] = ()


@dataclass(slots=True, frozen=True)
class TestReport:
    """The outcomes of one ``%kailash test``, sorted by test name."""

    __test__ = False  # not a pytest test class

    outcomes: tuple[TestOutcome, ...]
    pattern: str | None = None

    @property
    def failures(self) -> tuple[TestOutcome, ...]:
        return tuple(o for o in self.outcomes if o.outcome in ("failed", "error"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        rows = [{"test": o.test, "outcome": o.outcome, "message": o.message} for o in self.outcomes]
        notes = []
        for failed in self.failures:
            if failed.calls:
                calls = table(call_rows(failed.calls), CALL_COLUMNS).to_string(index=False)
                notes.append(f"calls of {failed.test}:\n{calls}")
            else:
                notes.append(f"calls of {failed.test}: (none)")
        metadata = {"durations": {o.test: o.duration for o in self.outcomes}}
        return render(f"tests: {summary}", table(rows, ["test", "outcome", "message"]), notes, metadata)

    def __repr__(self) -> str:
        return self._repr_mimebundle_()[0]["text/plain"]


def find_tests(namespace: Mapping[str, Any], pattern: str | None) -> list[tuple[type, str]]:
    """(class, method) of every test of the notebook's test case classes, sorted by ``Class.method``.

    ``pattern`` is an fnmatch pattern on ``Class.method`` when it has ``*?[``, else a substring of it.
    """
    from kailash_nb.testing import AsyncWorkflowTestCase

    module = namespace.get("__name__", "__main__")
    loader = unittest.TestLoader()
    found = []
    for value in list(namespace.values()):
        if not (isinstance(value, type) and issubclass(value, AsyncWorkflowTestCase)):
            continue
        if value is AsyncWorkflowTestCase or value.__module__ != module:
            continue
        for method in loader.getTestCaseNames(value):
            name = f"{value.__qualname__}.{method}"
            if pattern is None or _matches(name, pattern):
                found.append((name, value, method))
    found.sort(key=lambda item: item[0])
    return [(cls, method) for _, cls, method in found]


def _matches(name: str, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


async def run_test(cls: type, method: str) -> TestOutcome:
    """Run one test on the running loop and classify what happened (interrupts propagate)."""
    name = f"{cls.__qualname__}.{method}"
    case = cls(method)
    started = now()
    try:
        async with case:
            outcome = getattr(case, method)()
            if hasattr(outcome, "__await__"):
                await outcome
    except unittest.SkipTest as exc:
        return TestOutcome(name, "skipped", str(exc), now() - started)
    except AssertionError as exc:
        return TestOutcome(name, "failed", _message(exc), now() - started, tuple(case.calls.calls))
    except Exception as exc:
        return TestOutcome(name, "error", _message(exc), now() - started, tuple(case.calls.calls))
    return TestOutcome(name, "passed", "", now() - started)


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return short(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


async def run_notebook_tests(namespace: Mapping[str, Any], pattern: str | None) -> TestReport:
    """Run the matching tests one after another; show the report and raise when any failed."""
    tests = find_tests(namespace, pattern)
    if not tests:
        which = f" matching {pattern!r}" if pattern else ""
        raise KailashMagicError(
            f"no AsyncWorkflowTestCase tests{which} are defined in this notebook; define a subclass "
            "with async def test_* methods in a cell first"
        )
    outcomes = [await run_test(cls, method) for cls, method in tests]
    report = TestReport(tuple(outcomes), pattern)
    if report.failures:
        from IPython.display import display

        display(report)
        names = ", ".join(f.test for f in report.failures)
        raise NotebookTestsFailed(f"{len(report.failures)} of {len(outcomes)} notebook tests failed: {names}")
    return report
