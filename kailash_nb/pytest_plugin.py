"""pytest plugin for kailash_nb, registered through the ``pytest11`` entry point.

- ``AsyncWorkflowTestCase`` classes need nothing from it: they are ``unittest.TestCase`` subclasses, which
  pytest collects whatever their name, and each test runs its async setUp/test/tearDown on its own loop.
  This works without pytest-asyncio, and with it in strict or auto mode (it leaves TestCase classes alone).
- Fixtures for function-style tests: ``workflow_case`` (an ``AsyncWorkflowTestCase`` to create resources
  in, run workflows with and assert on), ``workflow_calls`` (its recorded mock calls),
  ``mock_http_client``, ``memory_cache`` and ``virtual_clock`` (the test runs on virtual time: an ``async
  def`` test that requests it runs inside ``async with virtual_time()``, on its plugin's loop or a new
  one). An ``async def`` test that requests ``workflow_case`` runs inside the case (as ``async with case:
  await test(...)``), so setUp, the test, tearDown and resource cleanup share the test's loop: that of the
  async plugin that claims the test (``@pytest.mark.asyncio``, pytest-asyncio's auto mode, anyio), or else
  a fresh loop here, so it needs nothing but kailash_nb.
- Under ``pytest --nbval``: cells named as in ``kailash-nb check``, diffs of the changed text, stable
  images compared, and each notebook kept on one xdist worker (see ``kailash_nb.runner.nbval_hooks``).
- ``--kailash-record=once|none|new|all`` sets the mode of every cassette (``kailash_nb.testing.Cassette``).
- ``postgres_server`` (session) and ``postgres_db`` (a fresh database per test) on a real PostgreSQL,
  embedded and started on first use (see ``kailash_nb.testing.fixtures.postgres``).
- ``--kailash-schedules N [--kailash-schedule-seed S]``: each ``AsyncWorkflowTestCase`` test that passes is
  re-run whole under N seeded schedules on virtual time and fails with the token of the first failing one;
  ``--kailash-schedule-replay TOKEN`` runs the selected tests under that one schedule (see
  ``kailash_nb.testing.case_schedules``).
- ``redis_server`` (session), ``redis_cache`` (a ``RedisCache`` per test) and ``redis_client`` (a
  ``TestRedis`` per test) on a real Redis, isolated by key prefix (see ``kailash_nb.testing.fixtures.redis``).

Importing this module stays cheap (it is loaded by every pytest run where kailash_nb is installed): the
testing kit and the PostgreSQL fixture are imported when a fixture is first used. Markers such as
``unit`` or ``slow`` are left to the project's own configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kailash_nb.testing import AsyncWorkflowTestCase, CallTracker, MemoryCache, MockHttpClient, VirtualClock
    from kailash_nb.testing.fixtures.postgres import PostgresServer, TestDatabase
    from kailash_nb.testing.fixtures.redis import RedisCache, RedisServer, TestRedis

_ASYNC_PLUGIN_MARKERS = ("asyncio", "anyio", "trio")
_RECORD_MODES = ("once", "none", "new", "all")
_RECORD_VARIABLE = "KAILASH_NB_RECORD"  # read by kailash_nb.testing.cassettes
_previous_record = pytest.StashKey[str | None]()  # the variable's value before the session set it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kailash_nb", "kailash_nb")
    group.addoption(
        "--kailash-record", choices=_RECORD_MODES, default=None, dest="kailash_record",
        help="record mode of every cassette (kailash_nb.testing.Cassette), whatever the test asks: once, none "
             "(replay only), new (record calls not in the file) or all (record again)")
    group.addoption("--kailash-schedules", type=_schedule_runs, default=None, metavar="N",
                    help="re-run each passing AsyncWorkflowTestCase test under N seeded schedules on virtual time "
                         "and fail it with the token of the first failing one")
    group.addoption("--kailash-schedule-seed", type=int, default=0, metavar="S",
                    help="seed of the schedules of --kailash-schedules (default 0)")
    group.addoption("--kailash-schedule-replay", type=_schedule_token, default=None, metavar="TOKEN",
                    help="run the selected AsyncWorkflowTestCase tests under the schedule TOKEN that "
                         "--kailash-schedules printed, on virtual time")


def _schedule_runs(value: str) -> int:
    runs = int(value) if value.strip().isdigit() else 0
    if runs < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of schedules per test, such as 20; got {value!r}")
    return runs


def _schedule_token(value: str) -> str:
    from kailash_nb.testing.schedules import ScheduleTokenError, parse_token

    try:
        parse_token(value)
    except ScheduleTokenError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value.strip()


def pytest_configure(config: pytest.Config) -> None:
    """Under ``--nbval``: the kit's cell names, readable diffs, image comparison and one worker per notebook.
    With ``--kailash-record``: every cassette's mode, through ``KAILASH_NB_RECORD`` (so that kernels started
    by the run see it too). With ``--kailash-schedules`` or ``--kailash-schedule-replay``: their hooks."""
    record = config.getoption("kailash_record", default=None)
    if record:
        config.stash[_previous_record] = os.environ.get(_RECORD_VARIABLE)
        os.environ[_RECORD_VARIABLE] = record
    if config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False):
        from kailash_nb.runner.nbval_hooks import NbvalHooks

        config.pluginmanager.register(NbvalHooks(config), "kailash-nb-nbval")
    runs = config.getoption("kailash_schedules", default=None)
    replay = config.getoption("kailash_schedule_replay", default=None)
    if runs is not None and replay is not None:
        raise pytest.UsageError("--kailash-schedules explores schedules and --kailash-schedule-replay replays one: "
                                "give one of them")
    if runs is not None or replay is not None:
        from kailash_nb.testing.case_schedules import ScheduleOption

        seed = config.getoption("kailash_schedule_seed", default=0)
        config.pluginmanager.register(ScheduleOption(runs, seed, replay), "kailash-nb-schedules")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _previous_record in config.stash:
        previous = config.stash[_previous_record]
        if previous is None:
            os.environ.pop(_RECORD_VARIABLE, None)
        else:
            os.environ[_RECORD_VARIABLE] = previous


@pytest.fixture
def workflow_case() -> Iterator[AsyncWorkflowTestCase]:
    """A fresh ``AsyncWorkflowTestCase`` for a function-style test; its resources are cleaned up after."""
    from kailash_nb.testing import AsyncWorkflowTestCase

    case = AsyncWorkflowTestCase()
    yield case
    if case.has_pending_cleanup:  # made outside an async test (a sync test's async fixture)
        asyncio.run(case.release())


@pytest.fixture
def workflow_calls(workflow_case: AsyncWorkflowTestCase) -> CallTracker:
    """The calls recorded for ``workflow_case``'s mock resources (``.get_calls(resource, method)``)."""
    return workflow_case.calls


@pytest.fixture
def mock_http_client() -> MockHttpClient:
    """An empty ``MockHttpClient``; add routes with ``add_response(method, path, json, status=...)``."""
    from kailash_nb.testing import MockHttpClient

    return MockHttpClient()


@pytest.fixture
def memory_cache() -> MemoryCache:
    """An empty in-memory cache with TTLs (what ``AsyncWorkflowFixtures.create_test_cache()`` returns)."""
    from kailash_nb.testing import MemoryCache

    return MemoryCache()


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """Run this ``async def`` test on virtual time; the fixture is its clock (``.now``, ``.advance(s)``).

    The whole test body runs inside ``async with virtual_time()`` on the test's own loop (and, with
    ``workflow_case``, so do the case's setUp, tearDown and cleanups)."""
    from kailash_nb.testing import VirtualClock

    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        raise pytest.UsageError(f"{request.node.nodeid}: the virtual_clock fixture needs an `async def` test: "
                                "virtual time runs on the test's event loop")
    return VirtualClock()


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The session's PostgreSQL server (embedded unless KAILASH_NB_POSTGRES_URL is set), started once."""
    from kailash_nb.testing.fixtures.postgres import get_postgres_server

    return get_postgres_server()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[TestDatabase]:
    """A fresh, empty database for this test; ``await postgres_db.pool()`` gives its asyncpg pool.

    A synchronous fixture, so it works in plain pytest and under any async plugin: the database is
    created and dropped on a private loop, and the test opens its pool on its own loop (the same pool
    on every call); when the test's loop shuts down, that pool is closed on it.
    """
    from kailash_nb.testing.fixtures.postgres import run_sync

    db = run_sync(lambda: postgres_server.create_database("test_db"))
    yield db
    db.cleanup_sync()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """The session's Redis server (KAILASH_NB_REDIS_URL, else the embedded one), started once."""
    from kailash_nb.testing.fixtures.redis import get_redis_server

    return get_redis_server()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[TestRedis]:
    """A fresh key space for this test: ``redis_client.client`` (redis.asyncio), ``redis_client.key(name)``.

    Synchronous, like ``postgres_db``: the client is made on the test's loop at first use, and the keys are
    deleted afterwards."""
    from kailash_nb.testing.fixtures.embedded.sync import run_sync

    test_redis = run_sync(lambda: redis_server.create_redis("test"))
    yield test_redis
    test_redis.cleanup_sync()


@pytest.fixture
def redis_cache(redis_client: TestRedis) -> RedisCache:
    """An empty Redis-backed cache with MemoryCache's API (``create_test_cache(backend="redis")``)."""
    from kailash_nb.testing.fixtures.redis import RedisCache

    return RedisCache(redis_client)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Run an ``async def`` test that uses ``workflow_case`` inside the case, on whatever loop runs it.

    The test function is swapped before ``item.runtest()``, where async plugins take it (pytest-asyncio
    wraps ``item.obj`` there, anyio and this plugin call it in ``pytest_pyfunc_call``), so the case is
    entered and exited within the test's own coroutine, on its loop.
    """
    funcargs = getattr(item, "funcargs", {})
    case = funcargs.get("workflow_case")
    clock = funcargs.get("virtual_clock")
    test = getattr(item, "obj", None)
    if (case is None and clock is None) or not inspect.iscoroutinefunction(test):
        return (yield)
    if case is not None:
        test = _inside_case(case, test)
    if clock is not None:
        test = _on_virtual_time(clock, test)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(item, "obj", test)
        return (yield)


def _inside_case(case: AsyncWorkflowTestCase,
                 test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def test_inside_case(**kwargs: object) -> None:
        await case.run_test(lambda: test(**kwargs))

    return test_inside_case


def _on_virtual_time(clock: VirtualClock, test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def test_on_virtual_time(**kwargs: object) -> None:
        async with clock:
            await test(**kwargs)

    return test_on_virtual_time


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses ``workflow_case`` or ``virtual_clock`` and that no async plugin
    claims on a new loop."""
    uses_kit = "workflow_case" in pyfuncitem.funcargs or "virtual_clock" in pyfuncitem.funcargs
    if not uses_kit or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None  # pytest-asyncio has already made a claimed test's function sync
    if any(pyfuncitem.get_closest_marker(name) for name in _ASYNC_PLUGIN_MARKERS):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True
