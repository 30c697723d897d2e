"""``pytest --kailash-record=MODE`` sets the mode of every cassette in the session, and only in it."""

from __future__ import annotations

import importlib.metadata
import os

import pytest

pytest_plugins = ["pytester"]

TESTS = '''
import asyncio

from kailash_nb.testing import Cassette


class Counter:
    def __init__(self):
        self.n = 0

    async def next(self):
        self.n += 1
        return self.n


def test_mode():
    path = "counter.json"  # in the session's folder, the same for the three sessions

    async def scenario():
        async with Cassette(path, "none") as cassette:
            counter = (await cassette.resources(counter=Counter))["counter"]
            print("MODE", cassette.mode, "VALUE", await counter.next(), "RECORDED", cassette.recorded_count)

    asyncio.run(scenario())
'''


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("KAILASH_NB_RECORD", raising=False)
    if not any(ep.value == "kailash_nb.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11")):
        pytester.plugins.append("kailash_nb.pytest_plugin")
    pytester.makepyfile(test_counter=TESTS)
    return pytester


ARGS = ("-s", "-p", "no:cacheprovider", "-p", "no:asyncio")


def test_the_record_option_overrides_each_cassettes_mode(child: pytest.Pytester) -> None:
    missing = child.runpytest_inprocess(*ARGS)
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*CassetteNotFoundError*counter.json does not exist and mode is 'none'*"])

    recorded = child.runpytest_inprocess(*ARGS, "--kailash-record=all")
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["*MODE all VALUE 1 RECORDED 1"])
    assert "KAILASH_NB_RECORD" not in os.environ  # set for the session only

    replayed = child.runpytest_inprocess(*ARGS)
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*MODE none VALUE 1 RECORDED 0"])


def test_an_unknown_record_mode_is_a_usage_error(child: pytest.Pytester) -> None:
    result = child.runpytest_inprocess("-p", "no:asyncio", "--kailash-record=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kailash-record: invalid choice: 'sometimes'*"])


def test_the_plugin_offers_the_modes_and_sets_the_variable_that_cassettes_read() -> None:
    # the plugin keeps its own copies so that importing it stays cheap; they must not drift
    import kailash_nb.pytest_plugin as plugin
    from kailash_nb.testing import cassettes

    assert plugin._RECORD_MODES == cassettes.MODES
    assert plugin._RECORD_VARIABLE == cassettes.RECORD_MODE_VARIABLE
