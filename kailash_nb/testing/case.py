"""``AsyncWorkflowTestCase``: one test class for workflows, run by pytest, unittest or ``async with``.

Each test gets a fresh instance, and its async ``setUp``, test method and ``tearDown`` run on one event
loop, in one ``contextvars`` context: an ``asyncio.Runner`` per test under pytest and ``python -m
unittest``, the caller's running loop under ``async with MyTest() as t: await t.test_x()`` (a notebook)
or ``await case.run_test(...)`` (an async plugin's loop). Resources made with ``create_test_resource``
are cleaned up after ``tearDown``, newest first, whether the test passed or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import unittest
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from kailash_nb.errors import WorkflowAssertionError
from kailash_nb.workflow import (
    AsyncLocalRuntime,
    Deadline,
    ResourceNotFoundError,
    ResourceRegistry,
    VirtualClock,
    Workflow,
    WorkflowResult,
    explain_await_error,
)
from kailash_nb.workflow.errors import add_note

from . import assertions
from .mocks import CallRecord, CallTracker, TrackedResource, create_mock
from .utils import maybe_await

if TYPE_CHECKING:
    from .cassettes import Cassette

__all__ = ["AsyncWorkflowTestCase"]

logger = logging.getLogger(__name__)  # DEBUG: resources created and cleaned up, workflows run

ResourceFactory = Callable[[], Any]
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_VIRTUAL_TIME_MARK = "__kailash_virtual_time__"


def use_virtual_time(enabled: bool = True) -> Callable[[F], F]:
    """Mark one test method to run on virtual time (or, with ``False``, on real time), whatever its
    class's ``virtual_time`` attribute says::

        class RetryTests(AsyncWorkflowTestCase):
            virtual_time = True

            @use_virtual_time(False)
            async def test_against_the_real_clock(self): ...
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"use_virtual_time(enabled) takes True or False, got {enabled!r}; write "
                        "@use_virtual_time() or @use_virtual_time(False)")

    def mark(test: F) -> F:
        setattr(test, _VIRTUAL_TIME_MARK, enabled)
        return test

    return mark


def virtual_time_mark(test: Callable[..., Any]) -> bool | None:
    """What :func:`use_virtual_time` says of test method ``test``: ``True``, ``False``, or ``None`` when it is
    not marked (its class's ``virtual_time`` decides)."""
    mark = getattr(test, _VIRTUAL_TIME_MARK, None)
    return mark if isinstance(mark, bool) else None


@dataclass(slots=True, frozen=True)
class _Resource:
    value: Any  # what tests and node code get: the object itself, or its TrackedResource proxy for a mock
    mock: bool


async def _explained(step: Awaitable[T]) -> T:
    """Await one step of the test in its context: a ``TypeError`` about awaiting a sync mock's plain result
    gets what to write instead."""
    __tracebackhide__ = True
    try:
        return await step
    except TypeError as error:
        explain_await_error(error)
        raise


async def _nothing() -> None:
    """What the base class's setUp and tearDown give to await."""


def _raise_first(problems: list[BaseException]) -> None:
    """Raise the first of ``problems`` with the others noted on it; nothing when there is none."""
    if not problems:
        return
    first = problems[0]
    for later in problems[1:]:
        add_note(first, f"also failed: {type(later).__name__}: {later}")
    raise first


class AsyncWorkflowTestCase(unittest.TestCase):
    """Base class for async workflow tests.

    Write ``async def setUp`` / ``async def tearDown`` (calling ``await super().setUp()``) and
    ``async def test_*`` methods. In a test: ``create_test_resource`` real or mock resources,
    ``execute_workflow``, then the ``assert_*`` methods and ``get_calls`` to check what happened.

    ``virtual_time = True`` on the class runs setUp, each test, tearDown and the cleanups on virtual time
    (:func:`kailash_nb.testing.virtual_time`): sleeps, timeouts, retries and TTLs take no real time, and
    ``self.clock`` is the clock (``self.clock.advance(5)``); :func:`use_virtual_time` overrides it for one
    test. ``self.clock`` is ``None`` on real time.
    """

    #: Run every test of the class on virtual time; ``@use_virtual_time(False)`` opts one test out.
    virtual_time: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("setUp", "tearDown"):
            method = cls.__dict__.get(name)
            if method is not None and not inspect.iscoroutinefunction(method):
                raise TypeError(
                    f"{cls.__qualname__}.{name} must be `async def {name}(self)` and call "
                    f"`await super().{name}()`: AsyncWorkflowTestCase runs setUp, the test and tearDown "
                    "on one event loop")

    #: Seconds each resource's cleanup may take after the test (``None``: no bound). One still running then
    #: is cancelled and fails the test naming the resource; the other resources are cleaned up anyway.
    cleanup_timeout: float | None = 10.0

    # unittest.TestCase's stack of (function, args, kwargs) from addCleanup: run by unittest on the test's
    # runner, and by run_test/__aexit__/release on the running loop
    _cleanups: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self.calls = CallTracker()
        self._reset_state()
        self._runner: asyncio.Runner | None = None

    def _reset_state(self) -> None:
        self.calls.reset()  # the same tracker: a fixture may hold it already
        self._registry = ResourceRegistry(self.cleanup_timeout, what=f"{type(self).__name__}.cleanup_timeout")
        self._resources: dict[str, _Resource] = {}
        self._runtime: AsyncLocalRuntime | None = None
        self._failure: BaseException | None = None
        self.clock: VirtualClock | None = None

    def _wants_virtual_time(self) -> bool:
        test = getattr(self, self._testMethodName, None)
        return bool(getattr(test, _VIRTUAL_TIME_MARK, type(self).virtual_time))

    def _start_clock(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._wants_virtual_time():
            self.clock = VirtualClock().install(loop)

    def _stop_clock(self) -> None:
        clock, self.clock = self.clock, None
        if clock is not None:
            clock.uninstall()

    # -- lifecycle hooks -----------------------------------------------------------------------------
    # Both return an awaitable: subclasses write ``async def setUp(self)`` and ``await super().setUp()``.
    # They are typed ``Any`` so that such an override type-checks against unittest.TestCase's ``-> None``.
    def setUp(self) -> Any:
        """Prepare the test; subclasses write ``async def setUp(self)`` and ``await super().setUp()`` first."""
        return _nothing()

    def tearDown(self) -> Any:
        """Undo what ``setUp`` did; resources from ``create_test_resource`` are cleaned up after it
        whether or not this runs ``await super().tearDown()``."""
        return _nothing()

    def create_runtime(self) -> AsyncLocalRuntime:
        """The runtime ``execute_workflow`` uses; override to change concurrency or the default timeout."""
        return AsyncLocalRuntime()

    @property
    def runtime(self) -> AsyncLocalRuntime:
        if self._runtime is None:
            self._runtime = self.create_runtime()
        return self._runtime

    # -- running under unittest and pytest -----------------------------------------------------------
    def run(self, result: unittest.TestResult | None = None) -> unittest.TestResult | None:
        with self._own_loop():
            return super().run(result)

    def debug(self) -> None:
        with self._own_loop():
            super().debug()

    @contextlib.contextmanager
    def _own_loop(self) -> Iterator[None]:
        """A fresh ``asyncio.Runner`` for this test: its loop and its one context carry setUp to the test
        to tearDown; closing it cancels leftover tasks and shuts down async generators and the executor."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "an AsyncWorkflowTestCase cannot start its own event loop inside a running one; in a "
                "notebook or async code use `async with MyTest() as t: await t.test_x()`")
        self._reset_state()
        with asyncio.Runner() as runner:
            self._runner = runner
            self._start_clock(runner.get_loop())
            try:
                yield
            finally:
                self._stop_clock()
                self._runner = None

    def _run_part(self, value: Any, part: str) -> Any:
        """Run one step (setUp, test, tearDown, a cleanup) on the test's runner. The first failure is the
        test's; a later one is reported too and noted on the first, since pytest shows only the first."""
        if not inspect.isawaitable(value):
            return value
        assert self._runner is not None, "AsyncWorkflowTestCase steps run inside run() or debug()"
        try:
            return self._runner.run(_explained(value))
        except unittest.SkipTest:
            raise
        except BaseException as error:
            if self._failure is None:
                self._failure = error
            elif error is not self._failure:
                add_note(self._failure, f"{part} also failed: {type(error).__name__}: {error}")
            raise

    def _callSetUp(self) -> None:
        self.addCleanup(self._cleanup_resources)  # first added, so it runs after every other cleanup
        self._run_part(self.setUp(), "setUp")

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        self._run_part(method(), "test")

    def _callTearDown(self) -> None:
        self._run_part(self.tearDown(), "tearDown")

    def _callCleanup(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self._run_part(function(*args, **kwargs), "cleanup")

    # -- running on a loop that is running already (a notebook, an async test plugin) ------------------
    async def __aenter__(self) -> AsyncWorkflowTestCase:
        self._reset_state()
        await self._enter()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: Any) -> bool:
        await self._exit(exc)
        return False  # the body's own exception propagates, with notes about the rest

    async def run_test(self, test: Callable[[], Awaitable[T]]) -> T:
        """Run ``test()`` as this case's test on the running loop: ``setUp``, the test, ``tearDown`` and
        every cleanup, as ``async with case: await test()`` does, but keeping what the case holds already:
        resources that an async fixture created in it, on this same loop, are the test's and are cleaned
        up with the rest. ``test`` is called only once ``setUp`` has passed. Returns what it returned.

        A failing test keeps its own exception, with any tearDown or cleanup failure noted on it; a passing
        test whose tearDown or cleanup failed raises that failure.
        """
        await self._enter()
        try:
            value = await test()
        except BaseException as error:
            await self._exit(error)
            raise
        await self._exit(None)
        return value

    @property
    def has_pending_cleanup(self) -> bool:
        """True while resources or cleanups wait to be released: made outside ``run_test`` or ``async
        with`` (say by an async fixture of a test that never entered the case), or left by a test that
        was interrupted."""
        return bool(self._resources or self._cleanups)

    async def release(self) -> None:
        """Run every cleanup left (newest first) and clean up the case's resources, on the running loop.
        Raises the first failure, with the others noted on it; a second call has nothing left to do."""
        problems = await self._run_cleanups(None)
        try:
            await self._cleanup_resources()
        except Exception as error:
            problems.append(error)
        _raise_first(problems)

    async def _enter(self) -> None:
        """``setUp`` on the running loop, keeping what the case holds already."""
        self._start_clock(asyncio.get_running_loop())
        self.addCleanup(self._cleanup_resources)
        try:
            await self.setUp()
        except BaseException as error:
            try:
                await self._run_cleanups(error)
            finally:
                self._stop_clock()
            raise

    async def _exit(self, failure: BaseException | None) -> None:
        """``tearDown`` and every cleanup on the running loop; with no ``failure`` from the body, raise the
        first problem (noting the others on it), else note them all on ``failure``."""
        if failure is not None:
            explain_await_error(failure)
        problems: list[BaseException] = []
        try:
            try:
                await self.tearDown()
            except Exception as error:
                problems.append(error)
                if failure is not None:
                    add_note(failure, f"tearDown also failed: {type(error).__name__}: {error}")
            problems.extend(await self._run_cleanups(failure))
        finally:
            self._stop_clock()
        if failure is None:
            _raise_first(problems)

    async def _run_cleanups(self, failure: BaseException | None) -> list[BaseException]:
        """Run every cleanup (LIFO) on the running loop; note each failure on ``failure``."""
        problems: list[BaseException] = []
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            try:
                await maybe_await(function(*args, **kwargs))
            except Exception as error:
                problems.append(error)
        if failure is not None:
            for problem in problems:
                add_note(failure, f"cleanup also failed: {type(problem).__name__}: {problem}")
        return problems

    async def _cleanup_resources(self) -> None:
        """Clean up real resources newest first (``aclose``/``close``/``cleanup``, sync or async); every
        failure is reported together in one ``ResourceCleanupError``."""
        if self._resources:
            logger.debug("cleaning up resources of %s: %s", self.id(), ", ".join(reversed(self._resources)))
        self._resources.clear()
        await self._registry.aclose()

    async def assert_schedule_independent(self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                                          resources: Mapping[str, Any] | None = None, runs: int = 100,
                                          seed: int = 0, check: Callable[[WorkflowResult], Any] | None = None
                                          ) -> Any:
        """Run ``workflow`` under ``runs`` seeded schedules (:func:`kailash_nb.testing.explore_schedules`)
        and fail unless every one passes, with the outcomes, the token that replays the first failure and
        the calls that raced. ``resources`` defaults to this test's resources (shared by all runs); give
        factories to start every schedule from the same state. Returns the report."""
        from .schedules import explore_schedules, schedule_dependence

        if resources is None:
            resources = {name: resource.value for name, resource in self._resources.items()}
        report = await explore_schedules(workflow, inputs, resources=resources, runs=runs, seed=seed, check=check)
        if not report.ok:
            raise schedule_dependence(report)
        return report

    # -- resources -----------------------------------------------------------------------------------
    async def create_test_resource(self, name: str, factory: ResourceFactory | None = None,
                                   mock: bool = False) -> Any:
        """Create resource ``name`` for this test; node code gets it with ``await get_resource(name)``.

        Real (``mock=False``): ``factory()`` (sync or async, or returning an awaitable) is called once and
        the object cleaned up after the test. ``mock=True``: the factory's object (a mock HTTP client, a
        test cache, a ``Mock()``) or, when the factory is ``None`` or returns ``None``, an ``AsyncMock``;
        every call to it is tracked. Returns what node code will get (a tracking proxy for a mock).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"resource name must be a non-empty string, got {name!r}")
        self._refuse_taken((name,))
        if factory is not None and not callable(factory):
            raise TypeError(f"resource {name!r}: factory must be a callable (such as lambda: obj), "
                            f"got {type(factory).__name__}")
        if mock:
            target = await maybe_await(factory()) if factory is not None else None
            if target is None:
                target = create_mock(name)
            value: Any = TrackedResource(name, target, self.calls)
            self._registry.register_instance(name, value)
        else:
            if factory is None:
                raise TypeError(f"resource {name!r}: a real resource needs a factory; pass mock=True "
                                "for a mock")
            self._registry.register_factory(name, factory)
            value = await self._registry.get(name)
        self._resources[name] = _Resource(value, mock)
        logger.debug("created %s resource %r: %s", "mock" if mock else "real", name, type(value).__name__)
        return value

    def _refuse_taken(self, names: Iterable[str]) -> None:
        taken = [repr(name) for name in names if name in self._resources]
        if taken:
            what = f"resource {taken[0]} already exists" if len(taken) == 1 else \
                f"resources {', '.join(taken)} already exist"
            raise ValueError(f"{what} in this test; names: {', '.join(repr(n) for n in self._resources)}")

    def get_resource(self, name: str) -> Any:
        """The resource ``name`` as node code sees it (the tracking proxy, for a mock)."""
        try:
            return self._resources[name].value
        except KeyError:
            raise ResourceNotFoundError(self._unknown(name)) from None

    def is_mock(self, name: str) -> bool:
        """True when ``name`` was created with ``mock=True``; False for a real or not yet created one."""
        entry = self._resources.get(name)
        return entry is not None and entry.mock

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(self._resources)

    def _unknown(self, name: str) -> str:
        known = ", ".join(repr(n) for n in self._resources) or "none yet"
        return (f"no test resource named {name!r}; resources: {known}. Create it first with "
                f"`await self.create_test_resource({name!r}, factory)`")

    async def use_cassette(self, path: str | os.PathLike[str], mode: str | None = None, **factories: ResourceFactory
                           ) -> Cassette:
        """Make this test's resources ``factories`` from the cassette at ``path`` (:class:`Cassette`): recorded
        from the factories' real objects, or replayed without calling them. They are tracked like mocks
        (``assert_resource_called``, ``get_calls``; replayed calls have ``replayed=True``), and the cassette is
        saved when the test's cleanups run. ``mode`` defaults to ``"once"``; ``--kailash-record`` overrides it.
        """
        from .cassettes import Cassette

        self._refuse_taken(factories)
        cassette = Cassette(path, mode or "once", tracker=self.calls)
        self.addCleanup(cassette.aclose)
        for name, value in (await cassette.resources(**factories)).items():
            self._registry.register_instance(name, value)
            self._resources[name] = _Resource(value, True)
        return cassette

    # -- running workflows ---------------------------------------------------------------------------
    async def execute_workflow(self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                               timeout: float | None = None, raise_on_error: bool = True) -> WorkflowResult:
        """Run ``workflow`` with this test's resources.

        A failing node re-raises its own exception (its traceback shows the node's code), so
        ``pytest.raises(ValueError, match=...)`` works; ``raise_on_error=False`` returns the failed result.
        """
        result = await self.runtime.execute_workflow_async(workflow, inputs, resources=self._registry,
                                                           timeout=timeout)
        logger.debug("%r in %.6f s", result, result.execution_time)
        if raise_on_error and result.status != "success":
            result.raise_for_status()
        return result

    # -- assertions ----------------------------------------------------------------------------------
    def assert_workflow_success(self, result: WorkflowResult) -> None:
        """Fail unless every node succeeded; the message lists each failed node and its error."""
        assertions.assert_workflow_success(result)

    def assert_workflow_failed(self, result: WorkflowResult, node: str | None = None,
                               error: type[BaseException] | None = None) -> None:
        """Fail unless the run failed (and ``node`` failed, with an ``error`` instance, when given)."""
        assertions.assert_workflow_failed(result, node, error)

    def assert_node_output(self, result: WorkflowResult, node: str, expected: Any, key: str | None = None) -> None:
        """Fail unless ``node``'s output at dotted ``key`` (or the whole output) equals ``expected``."""
        assertions.assert_node_output(result, node, expected, key)

    def assert_resource_called(self, name: str, method: str, times: int | None = None,
                               with_args: Sequence[Any] | None = None,
                               with_kwargs: Mapping[str, Any] | None = None) -> None:
        """Fail unless mock ``name``'s ``method`` was called (``times`` times exactly, when given), counting
        only calls with positional ``with_args`` and kwargs including ``with_kwargs``."""
        assertions.assert_calls(name, method, self._tracked_calls(name), times, with_args, with_kwargs)

    def assert_resource_not_called(self, name: str, method: str | None = None) -> None:
        """Fail if mock ``name`` (or its ``method``) was called; the message lists the calls."""
        assertions.assert_no_calls(name, self._tracked_calls(name), method)

    def assert_time_limit(self, seconds: float) -> Deadline:
        """``async with self.assert_time_limit(2.0): ...``: a body still running at the limit is cancelled
        and the assertion fails naming the limit, as it does for a body that blocked the event loop past
        the limit; a body that raised keeps its own exception. ``None`` is refused: it would check nothing."""
        return assertions.time_limit(seconds)

    # -- recorded calls ------------------------------------------------------------------------------
    def get_calls(self, resource: str | None = None, method: str | None = None, *,
                  node: str | None = None) -> tuple[CallRecord, ...]:
        """Calls to mock resources, oldest first; every call of the test when no filter is given."""
        if resource is not None:
            self._tracked_calls(resource)
        return self.calls.get_calls(resource, method, node=node)

    def reset_calls(self, resource: str | None = None) -> None:
        """Forget the recorded calls (of ``resource`` only, when given)."""
        self.calls.reset(resource)

    def _tracked_calls(self, name: str) -> tuple[CallRecord, ...]:
        entry = self._resources.get(name)
        if entry is None:
            raise WorkflowAssertionError(self._unknown(name))
        if not entry.mock:
            raise WorkflowAssertionError(f"resource {name!r} is a real resource, whose calls are not tracked; "
                                 "create it with mock=True to check its calls")
        return self.calls.get_calls(name)
