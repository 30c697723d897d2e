"""pytest plugin for kailash_nb, registered through the ``pytest11`` entry point.

- Registers the markers ``unit``, ``integration``, ``e2e`` and ``slow``.
- ``AsyncWorkflowTestCase`` classes need nothing from it: they are ``unittest.TestCase`` subclasses, which
  pytest collects whatever their name, and each test runs its async setUp/test/tearDown on its own loop.
  This works without pytest-asyncio, and with it in strict or auto mode (it leaves TestCase classes alone).
- Fixtures for function-style tests: ``workflow_case`` (an ``AsyncWorkflowTestCase`` to create resources
  in, run workflows with and assert on), ``workflow_calls`` (its recorded mock calls),
  ``mock_http_client`` and ``memory_cache``. An ``async def`` test that requests ``workflow_case`` and
  is not claimed by an async plugin (``@pytest.mark.asyncio``, auto mode, anyio) runs on a fresh loop
  here, so it needs nothing but kailash_nb; under such a plugin it runs on that plugin's loop.
- ``postgres_server`` (session) and ``postgres_db`` (a fresh database per test) on a real PostgreSQL,
  embedded and started on first use (see ``kailash_nb.testing.fixtures.postgres``).

Importing this module stays cheap: kailash_nb.testing is imported when a fixture is first used.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from kailash_nb.testing.fixtures.postgres_pytest import postgres_db, postgres_server  # noqa: F401  (fixtures)

if TYPE_CHECKING:
    from kailash_nb.testing import AsyncWorkflowTestCase, CallTracker, MemoryCache, MockHttpClient

MARKERS = {
    "unit": "Unit tests",
    "integration": "Integration tests",
    "e2e": "End-to-end tests",
    "slow": "Slow tests that may take time",
}

_ASYNC_PLUGIN_MARKERS = ("asyncio", "anyio", "trio")


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")


@pytest.fixture
def workflow_case() -> Iterator[AsyncWorkflowTestCase]:
    """A fresh ``AsyncWorkflowTestCase`` for a function-style test; its resources are cleaned up after."""
    from kailash_nb.testing import AsyncWorkflowTestCase

    case = AsyncWorkflowTestCase()
    yield case
    if case.resource_names or case._cleanups:  # the test ran under another plugin's loop
        asyncio.run(_release(case))


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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an unclaimed ``async def`` test that uses ``workflow_case``: ``async with case: await test``."""
    if "workflow_case" not in pyfuncitem.funcargs or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if any(pyfuncitem.get_closest_marker(name) for name in _ASYNC_PLUGIN_MARKERS):
        return None
    case = pyfuncitem.funcargs["workflow_case"]
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    case._run_on_own_loop(lambda: pyfuncitem.obj(**kwargs))
    return True


async def _release(case: AsyncWorkflowTestCase) -> None:
    problems: list[BaseException] = await case._finish(None)
    try:
        await case._cleanup_resources()
    except Exception as error:
        problems.append(error)
    if problems:
        raise problems[0]

