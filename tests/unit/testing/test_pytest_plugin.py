"""The pytest side: AsyncWorkflowTestCase classes and the plugin's fixtures in a child pytest run, without
pytest-asyncio, with it in strict mode and in auto mode."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

TEST_FILE = '''
import asyncio

import pytest

from kailash_nb.testing import AsyncWorkflowTestCase, MemoryCache, MockHttpClient
from kailash_nb.workflow import AsyncWorkflowBuilder

WORKFLOW = AsyncWorkflowBuilder("w").add_async_code("n", """
    svc = await get_resource("svc")
    result = {"v": await svc.get() + 1}
""").build()


class Closing:
    async def aclose(self):
        raise RuntimeError("could not close")


class DataPipelineTest(AsyncWorkflowTestCase):  # collected although its name does not start with Test
    async def setUp(self):
        await super().setUp()
        self.loop = asyncio.get_running_loop()
        self.svc = await self.create_test_resource("svc", None, mock=True)
        self.svc.get.return_value = 41

    async def test_runs_workflow_on_the_setup_loop(self):
        assert asyncio.get_running_loop() is self.loop
        result = await self.execute_workflow(WORKFLOW)
        self.assert_node_output(result, "n", 42, "v")
        self.assert_resource_called("svc", "get", times=1)

    @pytest.mark.slow
    async def test_marked_slow(self):
        pass

    async def test_fails_with_its_message(self):
        self.assert_resource_called("svc", "get", times=3)

    async def test_failure_shows_cleanup_failure_too(self):
        await self.create_test_resource("closing", Closing)
        raise AssertionError("the test's own failure")

    async def tearDown(self):
        assert asyncio.get_running_loop() is self.loop
        await super().tearDown()


async def test_function_style(workflow_case, workflow_calls, mock_http_client, memory_cache):
    assert isinstance(mock_http_client, MockHttpClient) and isinstance(memory_cache, MemoryCache)
    svc = await workflow_case.create_test_resource("svc", None, mock=True)
    svc.get.return_value = 1
    result = await workflow_case.execute_workflow(WORKFLOW)
    workflow_case.assert_node_output(result, "n", 2, "v")
    assert [c.method for c in workflow_calls.get_calls("svc")] == ["get"]
'''


def _plugin_args() -> list[str]:
    """``-p kailash_nb.pytest_plugin`` until the package is installed with its pytest11 entry point."""
    entry_points = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value == "kailash_nb.pytest_plugin" for ep in entry_points):
        return []
    return ["-p", "kailash_nb.pytest_plugin"]


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "--strict-markers",
         "-W", "error::pytest.PytestUnraisableExceptionWarning", "-W", "error::RuntimeWarning",
         *_plugin_args(), *args],
        cwd=directory, env=env, capture_output=True, text=True, timeout=180,
    )


# The guide's pytest configuration: markers are the project's own, not the plugin's.
GUIDE_CONFIG = """
[tool.pytest.ini_options]
markers = [
    "unit: Unit tests",
    "integration: Integration tests",
    "e2e: End-to-end tests",
    "slow: Slow tests that may take time"
]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_generated_cases.py").write_text(TEST_FILE)
    (tmp_path / "pyproject.toml").write_text(GUIDE_CONFIG)
    return tmp_path


@pytest.mark.parametrize(
    "mode_args",
    [
        pytest.param(["-p", "no:asyncio"], id="without-pytest-asyncio"),
        pytest.param(["-o", "asyncio_mode=strict"], id="pytest-asyncio-strict"),
        pytest.param(["-o", "asyncio_mode=auto"], id="pytest-asyncio-auto"),
    ],
)
def test_cases_and_fixtures_run_in_every_mode(project: Path, mode_args: list[str]) -> None:
    proc = run_pytest(project, "-rf", *mode_args)
    output = proc.stdout + proc.stderr
    # the failing test shows the cleanup failure as a note, and pytest reports it as a teardown error too
    assert re.search(r"\b2 failed, 3 passed, 1 error\b", output), output
    assert "expected svc.get() to be called 3 time(s), it was called 0 time(s)" in output
    assert "AssertionError: the test's own failure" in output
    assert "cleanup also failed: ResourceCleanupError" in output
    assert "closing: RuntimeError: could not close" in output


def test_the_plugin_leaves_generic_markers_to_the_project(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--markers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for marker in ("unit", "integration", "e2e", "slow"):
        assert f"@pytest.mark.{marker}:" not in proc.stdout


def test_marker_selection_works_on_test_case_methods(project: Path) -> None:
    proc = run_pytest(project, "-p", "no:asyncio", "-m", "slow")
    assert re.search(r"\b1 passed, 4 deselected\b", proc.stdout), proc.stdout


def test_function_style_cleans_up_resources_under_pytest_asyncio(tmp_path: Path) -> None:
    (tmp_path / "test_generated_function.py").write_text(textwrap.dedent('''
        import pytest

        LOG = []

        class Resource:
            async def aclose(self):
                LOG.append("closed")

        @pytest.mark.asyncio
        async def test_creates_resource(workflow_case):
            await workflow_case.create_test_resource("r", Resource)

        def test_resource_was_closed():
            assert LOG == ["closed"]
    '''))
    proc = run_pytest(tmp_path, "-p", "asyncio", "-o", "asyncio_mode=strict")
    assert re.search(r"\b2 passed\b", proc.stdout), proc.stdout + proc.stderr


LOOP_FILE = '''
import asyncio

import pytest

LOG = []


class LoopBound:
    """Like an asyncpg pool: usable only on the loop it was made on."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()

    async def aclose(self):
        LOG.append(("closed on the test loop", asyncio.get_running_loop() is self.loop))


MARK
async def test_uses_the_case(workflow_case):
    loop = asyncio.get_running_loop()
    assert workflow_case._cleanups, "setUp ran: the resource cleanup is registered"

    async def cleanup():
        LOG.append(("cleanup on the test loop", asyncio.get_running_loop() is loop))

    workflow_case.addCleanup(cleanup)
    await workflow_case.create_test_resource("db", LoopBound)


def test_cleanup_ran_on_the_test_loop():
    assert LOG == [("cleanup on the test loop", True), ("closed on the test loop", True)]
'''


@pytest.mark.parametrize(
    ("mode_args", "mark"),
    [
        pytest.param(["-p", "no:asyncio"], "", id="without-pytest-asyncio"),
        pytest.param(["-o", "asyncio_mode=strict"], "", id="pytest-asyncio-strict-unmarked"),
        pytest.param(["-o", "asyncio_mode=strict"], "@pytest.mark.asyncio", id="pytest-asyncio-strict-marked"),
        pytest.param(["-o", "asyncio_mode=auto"], "", id="pytest-asyncio-auto"),
    ],
)
def test_workflow_case_sets_up_and_cleans_up_on_the_test_loop(tmp_path: Path, mode_args: list[str],
                                                              mark: str) -> None:
    (tmp_path / "test_generated_loop.py").write_text(LOOP_FILE.replace("MARK", mark))
    # -p no:randomly in run_pytest keeps file order: the checking test runs second
    proc = run_pytest(tmp_path, *mode_args)
    assert re.search(r"\b2 passed\b", proc.stdout) and "error" not in proc.stdout, proc.stdout + proc.stderr


def test_resources_an_async_fixture_made_in_workflow_case_are_kept_for_the_test(tmp_path: Path) -> None:
    (tmp_path / "test_generated_fixture.py").write_text(LOOP_FILE.replace("MARK", "") + textwrap.dedent('''
        @pytest.fixture
        async def db(workflow_case):
            return await workflow_case.create_test_resource("db", LoopBound)

        async def test_gets_the_fixtures_resource(workflow_case, db):
            LOG.clear()
            assert workflow_case.get_resource("db") is db

        def test_fixtures_resource_was_closed_on_the_test_loop():
            assert LOG == [("closed on the test loop", True)]
    '''))
    proc = run_pytest(tmp_path, "-o", "asyncio_mode=auto")
    assert re.search(r"\b4 passed\b", proc.stdout), proc.stdout + proc.stderr
