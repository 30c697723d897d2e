"""The pytest side: AsyncWorkflowTestCase classes and the plugin's fixtures in child pytest sessions (run
in-process by ``pytester``), without pytest-asyncio, with it in strict mode and in auto mode, and under
anyio."""

from __future__ import annotations

import importlib.metadata
import textwrap

import pytest

# pytester (in-process child sessions). Here rather than in tests/unit/testing/conftest.py: pytest refuses
# pytest_plugins in a conftest below the rootdir whenever the whole suite is collected.
pytest_plugins = ["pytester"]

CASES = '''
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
        assert asyncio.get_running_loop() is self.loop

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

STRICT = ("-p", "no:cacheprovider", "--strict-markers", "-W", "error::pytest.PytestUnraisableExceptionWarning",
          "-W", "error::RuntimeWarning")


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A child pytest session with the guide's configuration and the kit's plugin (its entry point, or
    ``-p`` until the package is installed with it)."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makefile(".toml", pyproject=GUIDE_CONFIG)
    if not any(ep.value == "kailash_nb.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11")):
        pytester.plugins.append("kailash_nb.pytest_plugin")
    return pytester


def run(child: pytest.Pytester, *args: str) -> pytest.RunResult:
    if "no:asyncio" not in args:  # pytest-asyncio asks for it; without that plugin, it is an unknown option
        args = (*args, "-o", "asyncio_default_fixture_loop_scope=function")
    return child.runpytest_inprocess(*STRICT, *args)


MODES = [
    pytest.param(["-p", "no:asyncio"], id="without-pytest-asyncio"),
    pytest.param(["-o", "asyncio_mode=strict"], id="pytest-asyncio-strict"),
    pytest.param(["-o", "asyncio_mode=auto"], id="pytest-asyncio-auto"),
]


@pytest.mark.parametrize("mode_args", MODES)
def test_cases_and_fixtures_run_in_every_mode(child: pytest.Pytester, mode_args: list[str]) -> None:
    child.makepyfile(test_generated_cases=CASES)
    result = run(child, "-rf", *mode_args)
    # the failing test shows the cleanup failure as a note, and pytest reports it as a teardown error too
    result.assert_outcomes(passed=3, failed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*expected svc.get() to be called 3 time(s), it was called 0 time(s)*",
        "*AssertionError: the test's own failure*",
    ])
    result.stdout.fnmatch_lines(["*cleanup also failed: ResourceCleanupError*closing: RuntimeError: could not close*"])


def test_the_plugin_leaves_generic_markers_to_the_project(child: pytest.Pytester) -> None:
    child.path.joinpath("pyproject.toml").unlink()
    result = run(child, "--markers")
    assert result.ret == 0
    for marker in ("unit", "integration", "e2e", "slow"):
        assert not [line for line in result.outlines if line.startswith(f"@pytest.mark.{marker}:")]


def test_marker_selection_works_on_test_case_methods(child: pytest.Pytester) -> None:
    child.makepyfile(test_generated_cases=CASES)
    result = run(child, "-p", "no:asyncio", "-m", "slow")
    result.assert_outcomes(passed=1, deselected=4)


def test_function_style_cleans_up_resources_under_pytest_asyncio(child: pytest.Pytester) -> None:
    child.makepyfile(test_generated_function='''
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
    ''')
    run(child, "-p", "asyncio", "-o", "asyncio_mode=strict").assert_outcomes(passed=2)


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
        pytest.param(["-p", "no:asyncio"], "@pytest.mark.anyio", id="anyio"),
    ],
)
def test_workflow_case_sets_up_and_cleans_up_on_the_test_loop(child: pytest.Pytester, mode_args: list[str],
                                                              mark: str) -> None:
    source = LOOP_FILE.replace("MARK", mark)
    if "anyio" in mark:
        source += textwrap.dedent('''
            @pytest.fixture
            def anyio_backend():
                return "asyncio"
        ''')
    child.makepyfile(test_generated_loop=source)
    run(child, "-p", "no:randomly", *mode_args).assert_outcomes(passed=2)  # file order: the check runs second


def test_workflow_case_runs_setup_before_an_async_test(child: pytest.Pytester) -> None:
    child.makepyfile(test_generated_setup='''
        import pytest

        from kailash_nb.testing import AsyncWorkflowTestCase

        LOG = []

        class Recording(AsyncWorkflowTestCase):
            async def setUp(self):
                await super().setUp()
                LOG.append("setUp")

            async def tearDown(self):
                LOG.append("tearDown")
                await super().tearDown()

        @pytest.fixture
        def workflow_case():
            return Recording()

        async def test_after_setup(workflow_case):
            LOG.append("test")

        def test_order():
            assert LOG == ["setUp", "test", "tearDown"]
    ''')
    run(child, "-p", "no:asyncio", "-p", "no:randomly").assert_outcomes(passed=2)


def test_resources_an_async_fixture_made_in_workflow_case_are_kept_for_the_test(child: pytest.Pytester) -> None:
    child.makepyfile(test_generated_fixture=LOOP_FILE.replace("MARK", "") + textwrap.dedent('''
        @pytest.fixture
        async def db(workflow_case):
            return await workflow_case.create_test_resource("db", LoopBound)

        async def test_gets_the_fixtures_resource(workflow_case, db):
            LOG.clear()
            assert workflow_case.get_resource("db") is db

        def test_fixtures_resource_was_closed_on_the_test_loop():
            assert LOG == [("closed on the test loop", True)]
    '''))
    run(child, "-p", "no:randomly", "-o", "asyncio_mode=auto").assert_outcomes(passed=4)


def test_resources_made_for_a_sync_test_are_released_after_it(child: pytest.Pytester) -> None:
    child.makepyfile(test_generated_sync='''
        import asyncio

        LOG = []

        class Resource:
            async def aclose(self):
                LOG.append("closed")

        def test_sync(workflow_case):
            asyncio.run(workflow_case.create_test_resource("r", Resource))
            assert workflow_case.has_pending_cleanup

        def test_released():
            assert LOG == ["closed"]
    ''')
    run(child, "-p", "no:asyncio", "-p", "no:randomly").assert_outcomes(passed=2)
