"""The shared embedded server's life: sharing between processes, start errors, death, and no leaks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import processes_mentioning, run_child, sysv_segment_exists, sysv_shmid, wait_until_gone

from kailash_nb.testing.fixtures.postgres import (
    PostgresServer,
    PostgresServerDiedError,
    PostgresStartError,
)
from kailash_nb.testing.fixtures.postgres.embedded import EmbeddedServerManager

CHILD_USING_A_DATABASE = '''
import asyncio, sys
from kailash_nb.testing.fixtures.postgres import create_test_database

async def main():
    db = await create_test_database(database="child", user="child_user", password="pw",
                                    schema="create table t (x int);")
    pool = await db.pool()
    await pool.execute("insert into t values (1)")
    print(db.instance, flush=True)
    if sys.argv[-1] == "crash":
        raise RuntimeError("the child test crashes")
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def start_child(runtime_dir: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A child Python holding a test database of the server in ``runtime_dir``; returns it and the
    server instance it uses, once the database is ready."""
    child = run_child(CHILD_USING_A_DATABASE, runtime_dir, args=args)
    line = child.stdout.readline().strip()
    assert line, child.stderr.read()
    return child, line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_process_leaves_no_server_socket_or_data_behind(runtime_dir: Path, sig: signal.Signals) -> None:
    child, _ = start_child(runtime_dir)
    assert processes_mentioning(str(runtime_dir))  # the server is running for the child
    assert (runtime_dir / "sock" / ".s.PGSQL.5432").exists()
    shmid = sysv_shmid(runtime_dir / "data")
    child.send_signal(sig)
    child.communicate(timeout=30)
    wait_until_gone(runtime_dir)
    assert not sysv_segment_exists(shmid)


def test_crashed_test_process_leaves_nothing_behind(runtime_dir: Path) -> None:
    child, _ = start_child(runtime_dir, "crash")
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 1
    assert "the child test crashes" in stderr
    wait_until_gone(runtime_dir)


def test_server_is_shared_and_stopped_when_its_last_user_exits(runtime_dir: Path) -> None:
    first, first_instance = start_child(runtime_dir)
    second, second_instance = start_child(runtime_dir)
    assert first_instance == second_instance
    first.terminate()
    first.communicate(timeout=30)
    assert (runtime_dir / "sock" / ".s.PGSQL.5432").exists()  # still in use by the second
    second.terminate()
    second.communicate(timeout=30)
    wait_until_gone(runtime_dir)


def test_server_that_cannot_start_reports_the_reason_from_its_log(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir, settings={"shared_buffers": "lots"})
    try:
        with pytest.raises(PostgresStartError, match=r"(?s)could not start.*invalid value for parameter "
                                                     r"\"shared_buffers\": \"lots\""):
            manager.ensure_running()
    finally:
        manager.release()


def test_server_dying_mid_test_fails_that_test_and_is_restarted_for_the_next(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir)
    server = PostgresServer("embedded", _manager=manager)

    async def scenario() -> None:
        db = await server.create_database("victim", schema="create table t (x int);")
        pool = await db.pool()
        await pool.execute("insert into t values (1)")
        postmaster = int((runtime_dir / "data" / "postmaster.pid").read_text().split()[0])
        shmid = sysv_shmid(runtime_dir / "data")
        os.kill(postmaster, signal.SIGKILL)
        with pytest.raises(PostgresServerDiedError, match=r"died during this test.*restarted server"):
            await db.cleanup()

        async with await server.create_database("next", schema="create table t (x int);") as fresh:
            assert fresh.instance != db.instance
            assert await (await fresh.pool()).fetchval("select count(*) from t") == 0
        assert not sysv_segment_exists(shmid)  # the killed server's shared memory was released

    try:
        asyncio.run(scenario())
    finally:
        manager.release()


def test_server_in_the_temp_directory_runs_as_an_unprivileged_user_under_root(disk_runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(disk_runtime_dir)
    try:
        manager.ensure_running()
        owner = (disk_runtime_dir / "data").stat().st_uid
        assert owner != 0 if os.geteuid() == 0 else owner == os.geteuid()
    finally:
        manager.release()
