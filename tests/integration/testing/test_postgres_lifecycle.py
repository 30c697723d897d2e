"""The shared embedded server's life: sharing between processes, start errors, death, and no leaks."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import processes_mentioning, run_child, sysv_segment_exists, sysv_shmid, wait_until_gone

from kailash_nb.testing.fixtures.postgres import (
    PostgresConfigurationError,
    PostgresServer,
    PostgresServerDiedError,
    PostgresStartError,
)
from kailash_nb.testing.fixtures.postgres.embedded import EmbeddedServerManager, default_runtime_dir
from kailash_nb.testing.fixtures.postgres.host import OS_USER_ENV, postgres_bin_dir
from kailash_nb.testing.fixtures.postgres.runtime import RUNTIME_DIR_ENV

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another account")

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
    assert child.stdout is not None and child.stderr is not None
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
    server = PostgresServer(manager)

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


CHILD_OUTLIVING_A_DEATH = '''
import asyncio, sys
from kailash_nb.testing.fixtures.postgres import PostgresServerDiedError, create_test_database

async def main():
    db = await create_test_database(database="bystander")
    print(db.instance, flush=True)
    sys.stdin.readline()  # the server is killed meanwhile
    try:
        await db.connect()
    except PostgresServerDiedError:
        print("died", flush=True)
    async with await create_test_database(database="bystander_next") as fresh:
        await (await fresh.connect()).fetchval("select 1")
        print(fresh.instance, flush=True)
    sys.stdin.readline()

asyncio.run(main())
'''


def said(child: subprocess.Popen[str]) -> str:
    """The next line ``child`` printed; its stderr as the failure if it printed none."""
    assert child.stdout is not None and child.stderr is not None
    line = child.stdout.readline().strip()
    if not line:
        pytest.fail(f"the child said nothing: {child.stderr.read()}")
    return line


def test_a_dead_servers_database_says_it_died_on_connect_and_pool_and_another_run_survives(
        runtime_dir: Path) -> None:
    bystander = run_child(CHILD_OUTLIVING_A_DEATH, runtime_dir)
    assert bystander.stdin is not None and bystander.stdout is not None and bystander.stderr is not None
    manager = EmbeddedServerManager(runtime_dir)
    server = PostgresServer(manager)

    async def scenario() -> None:
        assert bystander.stdout is not None and bystander.stdin is not None
        shared = said(bystander)
        db = await server.create_database("victim")
        assert db.instance == shared
        postmaster = int((runtime_dir / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        for use in (db.connect, db.pool, db.cleanup):
            with pytest.raises(PostgresServerDiedError, match=r"died during this test.*restarted server"):
                await use()
        async with await server.create_database("next") as fresh:
            assert fresh.instance != shared
            assert await (await fresh.connect()).fetchval("select 1") == 1
            bystander.stdin.write("go\n")
            bystander.stdin.flush()
            assert said(bystander) == "died"
            assert said(bystander) == fresh.instance  # the same new server for both runs

    try:
        asyncio.run(scenario())
        _, stderr = bystander.communicate("done\n", timeout=60)
        assert bystander.returncode == 0, stderr
    finally:
        if bystander.poll() is None:
            bystander.kill()
        manager.release()


def test_a_stale_runtime_directory_whose_pids_name_unrelated_live_processes_is_recovered(runtime_dir: Path) -> None:
    # what a reaper, its server and a user killed together (or a reboot, for a directory on disk) leave, once
    # their pids are reused: the files name live processes that are not the kit's, which must be neither
    # trusted nor killed; the server must still be removed when its last real user leaves
    unrelated = [subprocess.Popen(["sleep", "600"]) for _ in range(2)]
    try:
        runtime_dir.mkdir(mode=0o700)
        (runtime_dir / "reaper.pid").write_text(str(unrelated[0].pid))
        (runtime_dir / "state.json").write_text(json.dumps(
            {"status": "ready", "instance": "stale", "postmaster_pid": unrelated[1].pid}))
        (runtime_dir / "secret").write_text("of a server long gone")
        (runtime_dir / "users").mkdir(mode=0o700)
        (runtime_dir / "users" / str(unrelated[0].pid)).write_text("1")  # a user that started at tick 1
        manager = EmbeddedServerManager(runtime_dir)
        server = PostgresServer(manager)

        async def scenario() -> None:
            async with await server.create_database("after_stale") as db:
                assert db.instance != "stale"
                assert await (await db.connect()).fetchval("select 1") == 1

        try:
            asyncio.run(scenario())
        finally:
            manager.release()
        wait_until_gone(runtime_dir)  # its last real user left
        assert all(process.poll() is None for process in unrelated)  # not killed for the kit's
    finally:
        for process in unrelated:
            process.kill()
            process.wait()


def test_a_running_servers_folder_missing_a_file_names_it_and_what_to_remove(runtime_dir: Path) -> None:
    first = EmbeddedServerManager(runtime_dir)
    first.ensure_running()
    (runtime_dir / "secret").unlink()  # removed by hand while the server runs
    second = EmbeddedServerManager(runtime_dir)  # another process's view: it needs the secret
    try:
        with pytest.raises(PostgresStartError) as info:
            second.ensure_running()
        assert str(info.value) == (
            f"the embedded server's folder {runtime_dir} lacks {runtime_dir / 'secret'}, which its running server "
            f"should have; if no test run is using it, remove {runtime_dir} (the kit makes it again)")
    finally:
        second.release()
        first.release()


def test_server_in_the_temp_directory_runs_as_an_unprivileged_user_under_root(disk_runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(disk_runtime_dir)
    try:
        manager.ensure_running()
        owner = (disk_runtime_dir / "data").stat().st_uid
        assert owner != 0 if os.geteuid() == 0 else owner == os.geteuid()
    finally:
        manager.release()


def test_failed_start_keeps_the_files_of_the_directory_it_was_pointed_at(
        runtime_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = runtime_dir.parent  # a directory of the user's own, named by KAILASH_NB_POSTGRES_RUNTIME_DIR
    (mine / "data").mkdir()
    (mine / "data" / "keep.csv").write_text("1,2,3\n")
    (mine / "postgres.log").write_text("my own log\n")
    monkeypatch.setenv(RUNTIME_DIR_ENV, str(mine))
    assert default_runtime_dir() == runtime_dir  # the kit makes a directory of its own in there
    manager = EmbeddedServerManager(default_runtime_dir(), settings={"shared_buffers": "lots"})
    with pytest.raises(PostgresStartError, match="could not start"):
        manager.ensure_running()
    assert not runtime_dir.exists()  # what the kit made is gone at once ...
    assert sorted(p.name for p in mine.iterdir()) == ["data", "postgres.log"]  # ... and only that
    assert (mine / "data" / "keep.csv").read_text() == "1,2,3\n"
    assert (mine / "postgres.log").read_text() == "my own log\n"


def test_the_state_file_holds_nothing_the_runtime_directory_tells(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir)
    try:
        info = manager.ensure_running()
        state = json.loads((runtime_dir / "state.json").read_text())
    finally:
        manager.release()
    assert sorted(state) == ["instance", "postmaster_pid", "status"]  # socket and port follow from the directory
    assert f"host={runtime_dir / 'sock'}&port=5432" in info.dsn()


def test_missing_runtime_directory_is_named_and_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNTIME_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(PostgresConfigurationError, match=rf"{tmp_path / 'missing'}.*{RUNTIME_DIR_ENV}"):
        EmbeddedServerManager(default_runtime_dir()).ensure_running()
    assert not (tmp_path / "missing").exists()


def test_runtime_directory_whose_socket_path_is_too_long_is_a_configuration_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    with pytest.raises(PostgresConfigurationError, match=rf"{deep}.* is longer than Unix sockets allow .*"
                                                         rf"{RUNTIME_DIR_ENV} to a shorter directory"):
        EmbeddedServerManager(deep)


@pytest.mark.parametrize("kind", ["symlink", "foreign"])
def test_runtime_directory_that_is_a_symlink_or_someone_elses_is_not_used(runtime_dir: Path, kind: str) -> None:
    elsewhere = runtime_dir.parent / "elsewhere"
    elsewhere.mkdir()
    if kind == "symlink":
        runtime_dir.symlink_to(elsewhere)
    else:
        if os.geteuid() != 0:
            pytest.skip("only root can make a directory that belongs to another user")
        runtime_dir.mkdir()
        os.chown(runtime_dir, pwd.getpwnam("nobody").pw_uid, -1)
    try:
        with pytest.raises(PostgresStartError, match=r"cannot use the server directory: .* is a symlink or "
                                                     r"belongs to another user .*KAILASH_NB_POSTGRES_RUNTIME_DIR"):
            EmbeddedServerManager(runtime_dir).ensure_running()
        assert list(elsewhere.iterdir()) == list(runtime_dir.iterdir()) == []  # nothing was made in there
    finally:
        if kind == "symlink":
            runtime_dir.unlink()
        else:
            runtime_dir.rmdir()


@pytest.fixture
def closed_bin_dir(runtime_dir: Path) -> Iterator[Path]:
    """The server's binaries seen through a folder only root may enter (as a venv under /root would be)."""
    closed = Path(tempfile.mkdtemp(prefix="knb-closed-", dir=runtime_dir.parent))
    closed.chmod(0o700)
    (closed / "bin").mkdir()
    for name in ("postgres", "initdb"):
        (closed / "bin" / name).symlink_to(postgres_bin_dir() / name)
    try:
        yield closed / "bin"
    finally:
        shutil.rmtree(closed)


@root_only
def test_binaries_the_servers_account_cannot_reach_get_advice_that_helps(
        runtime_dir: Path, closed_bin_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir, bin_dir=closed_bin_dir)
    with pytest.raises(PostgresStartError) as failure:
        manager.ensure_running()
    message = str(failure.value)
    assert f"cannot run its binaries in {closed_bin_dir}" in message
    assert "Install this Python environment where other users can read it" in message
    assert OS_USER_ENV in message and "KAILASH_NB_POSTGRES_URL" in message
    assert RUNTIME_DIR_ENV not in message  # it would not help
    assert not runtime_dir.exists()


@root_only
def test_an_account_that_can_reach_the_binaries_runs_the_server(
        runtime_dir: Path, closed_bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = next((a for a in pwd.getpwall() if 0 < a.pw_uid < 65534 and a.pw_name != "pgserver"), None)
    if account is None:
        pytest.skip("no unprivileged account other than nobody on this machine")
    os.chown(closed_bin_dir.parent, account.pw_uid, account.pw_gid)  # its owner may enter it
    monkeypatch.setenv(OS_USER_ENV, account.pw_name)  # the advice of the test above
    manager = EmbeddedServerManager(runtime_dir, bin_dir=closed_bin_dir)
    try:
        manager.ensure_running()
        assert (runtime_dir / "data").stat().st_uid == account.pw_uid
    finally:
        manager.release()
