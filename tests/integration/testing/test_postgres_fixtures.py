"""The pytest fixtures, in plain pytest sessions run as child processes (with and without xdist)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_until_gone

pytest_plugins = ["pytester"]

TESTS = r'''
import asyncio
import os



def use(db, marker):
    async def scenario():
        pool = await db.pool()
        assert await db.pool() is pool
        await pool.execute("create table t (marker text)")
        await pool.execute("insert into t values ($1)", marker)
        await asyncio.sleep(0.2)
        return [r["marker"] for r in await pool.fetch("select marker from t")]
    return asyncio.run(scenario())


def test_server_is_shared(postgres_server, postgres_db):
    assert repr(postgres_server) == "PostgresServer(backend='embedded')"
    with open("instances.txt", "a") as out:
        out.write(f"{os.getpid()} {postgres_db.instance}\n")


def test_one(postgres_db):
    assert use(postgres_db, "one") == ["one"]


def test_two(postgres_db):
    assert use(postgres_db, "two") == ["two"]


def test_three_leaves_its_pool_open(postgres_db):
    async def scenario():
        pool = await postgres_db.pool()
        await pool.fetchval("select 1")
    asyncio.run(scenario())


def test_four_crashes(postgres_db):
    raise RuntimeError("this test fails on purpose")
'''


def run_pytest(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path,
               *args: str) -> str:
    """A child pytest session of TESTS, in its own process, on the test's own server folder; its output."""
    pytester.makepyfile(test_child_session=TESTS)
    monkeypatch.setenv("KAILASH_NB_POSTGRES_RUNTIME_DIR", str(runtime_dir.parent))
    result = pytester.runpytest_subprocess("-q", "-s", "-p", "no:cacheprovider", "-p", "no:asyncio",
                                           "-W", "error::pytest.PytestUnraisableExceptionWarning", *args,
                                           timeout=240)
    return result.stdout.str() + result.stderr.str()


def test_fixtures_work_without_pytest_asyncio_and_clean_up_after_the_session(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path) -> None:
    output = run_pytest(pytester, monkeypatch, runtime_dir)
    assert "1 failed, 4 passed" in output, output
    assert "this test fails on purpose" in output
    assert not runtime_dir.exists()  # the last user waited for the server to be removed
    wait_until_gone(runtime_dir)


def test_xdist_workers_share_one_server_and_it_is_removed_after_the_session(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path) -> None:
    output = run_pytest(pytester, monkeypatch, runtime_dir, "-n", "2", "-p", "xdist", "--dist", "each")
    assert "2 failed, 8 passed" in output, output
    lines = [line.split() for line in (pytester.path / "instances.txt").read_text().splitlines()]
    assert len({pid for pid, _ in lines}) == 2  # two worker processes ...
    assert len({instance for _, instance in lines}) == 1  # ... one server
    wait_until_gone(runtime_dir)
