"""The embedded server as a shared service: passwords on every connection, no secrets in its files."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from kailash_nb.testing.fixtures.postgres import (
    PostgresConfigurationError,
    PostgresServer,
    create_test_database,
)
from kailash_nb.testing.fixtures.postgres.embedded import EmbeddedServerManager, manager_for
from kailash_nb.testing.fixtures.postgres.host import postgres_bin_dir, postgres_os_user

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="as another user the server runs as that user itself")


def socket_of(dsn: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(dsn).query)
    return query["host"][0], query["port"][0]


def with_password(dsn: str, password: str | None) -> str:
    parts = urlsplit(dsn)
    user = parts.username or ""
    netloc = f"{user}:{password}@" if password is not None else f"{user}@"
    return parts._replace(netloc=netloc + parts.netloc.rpartition("@")[2]).geturl()


def test_a_role_of_the_guide_logs_in_with_its_password_and_a_wrong_one_fails() -> None:
    async def scenario() -> None:
        async with await create_test_database(database="test_db", user="test_user", password="test_pass") as db:
            conn = await asyncpg.connect(db.connection_string)
            assert await conn.fetchval("select current_user") == "test_user"
            await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(with_password(db.connection_string, "wrong_pass"))
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(with_password(db.connection_string, None))

    asyncio.run(scenario())


def test_the_superuser_needs_its_password_on_the_socket_too() -> None:
    async def scenario() -> None:
        async with await create_test_database(database="admin") as db:  # the admin's own DSN
            conn = await asyncpg.connect(db.connection_string)
            assert await conn.fetchval("select rolsuper from pg_roles where rolname = current_user")
            await conn.close()
            for password in (None, "", "postgres"):
                with pytest.raises(asyncpg.InvalidPasswordError):
                    await asyncpg.connect(with_password(db.connection_string, password))

    asyncio.run(scenario())


@root_only
def test_processes_of_the_servers_account_get_no_session_without_the_password() -> None:
    async def socket() -> tuple[str, str]:
        async with await create_test_database(database="admin") as db:
            return socket_of(db.connection_string)

    host, port = asyncio.run(socket())
    account = pwd.getpwnam(postgres_os_user() or "")
    psql = subprocess.run(
        [str(postgres_bin_dir() / "psql"), "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-w",
         "-Atc", "select current_user"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}, cwd="/", capture_output=True, text=True,
        user=account.pw_uid, group=account.pw_gid, extra_groups=[], timeout=60)
    assert psql.returncode != 0, psql.stdout
    assert "password" in psql.stderr


def test_a_role_made_without_a_password_gets_one_that_every_process_derives_alike() -> None:
    async def scenario() -> None:
        async with await create_test_database(user="no_password_user") as first:
            assert urlsplit(first.connection_string).password
            assert repr(first).endswith("connection_string='postgresql://no_password_user:***@<embedded>/test_<n>')")
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(with_password(first.connection_string, None))
            # Another process (another server object) giving the role its password keeps the first DSN working.
            other = PostgresServer(manager_for())
            async with await other.create_database(user="no_password_user"):
                conn = await asyncpg.connect(first.connection_string)
                assert await conn.fetchval("select current_user") == "no_password_user"
                await conn.close()

    asyncio.run(scenario())


def test_only_passwords_a_test_chose_are_stretched_by_their_verifier() -> None:
    """A password the kit makes is 256 random bits: stretching it would only slow every login down."""
    async def scenario() -> None:
        async with await create_test_database(user="chosen_user", password="chosen_pass") as chosen, \
                await create_test_database(user="made_user") as made, \
                await create_test_database(database="admin") as admin:
            conn = await admin.connect()
            verifiers = dict(await conn.fetch("select rolname, rolpassword from pg_authid where rolname = any($1)",
                                              ["chosen_user", "made_user", "postgres"]))
            for db in (chosen, made):
                await (await asyncpg.connect(db.connection_string)).close()
        assert verifiers["chosen_user"].startswith("SCRAM-SHA-256$4096:")  # PostgreSQL's default
        assert verifiers["made_user"].startswith("SCRAM-SHA-256$1:")
        assert verifiers["postgres"].startswith("SCRAM-SHA-256$1:")

    asyncio.run(scenario())


def test_a_password_outside_ascii_logs_in_as_postgresql_prepares_it() -> None:
    async def scenario() -> None:
        async with await create_test_database(user="unicode_user", password="pässwörd ﬁx") as db:
            conn = await asyncpg.connect(db.connection_string)
            assert await conn.fetchval("select current_user") == "unicode_user"
            await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(with_password(db.connection_string, "passwort"))

    asyncio.run(scenario())


def test_passwords_and_failing_statements_stay_out_of_the_server_log(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir)
    server = PostgresServer(manager)

    async def scenario() -> None:
        async with await server.create_database("logged", "log_user", "pw-must-not-leak") as db:
            conn = await db.connect()
            with pytest.raises(asyncpg.InvalidTextRepresentationError):
                await conn.execute("select 'row-data-must-not-leak'::int")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # a failing statement holding a password
                await conn.execute("create role log_user password 'plain-must-not-leak'")
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(with_password(db.connection_string, "wrong-must-not-leak"))

    try:
        asyncio.run(scenario())
        log = (runtime_dir / "postgres.log").read_text()
    finally:
        manager.release()
    assert "database system is ready to accept connections" in log  # server events are still there
    assert 'password authentication failed for user "log_user"' in log
    for secret in ("must-not-leak", "SCRAM-SHA-256$"):
        assert secret not in log


def test_server_files_are_readable_by_their_owner_only(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir)
    try:
        manager.ensure_running()
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in runtime_dir.iterdir()}
        socket_mode = stat.S_IMODE((runtime_dir / "sock" / ".s.PGSQL.5432").stat().st_mode)
    finally:
        manager.release()
    assert modes == {"lock": 0o600, "users": 0o700, "reaper.pid": 0o600, "state.json": 0o600, "secret": 0o600,
                     "postgres.log": 0o600, "data": 0o700, "sock": 0o700}
    assert socket_mode & 0o077 == 0


def test_the_runtime_directory_is_closed_unless_another_account_runs_the_server(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir)
    try:
        manager.ensure_running()
        mode = stat.S_IMODE(runtime_dir.stat().st_mode)
    finally:
        manager.release()
    assert mode == (0o711 if os.geteuid() == 0 else 0o700)


@pytest.mark.parametrize("setting", ["log_statement", "log_min_error_statement", "log_min_messages"])
def test_settings_that_keep_secrets_out_of_the_log_cannot_be_changed(runtime_dir: Path, setting: str) -> None:
    with pytest.raises(PostgresConfigurationError, match=f"{setting} cannot be changed"):
        EmbeddedServerManager(runtime_dir, settings={setting: "all"})
    assert not runtime_dir.exists()


README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_says_what_the_server_log_holds(runtime_dir: Path) -> None:
    manager = EmbeddedServerManager(runtime_dir)
    server = PostgresServer(manager)

    async def scenario() -> None:
        async with await server.create_database("logged", "log_user", "right-password") as db:
            conn = await db.connect()
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.execute("select 1 / 0")
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(with_password(db.connection_string, "wrong-password"))

    try:
        asyncio.run(scenario())
        log = (runtime_dir / "postgres.log").read_text()
    finally:
        manager.release()
    client_lines = [line.split("]", 1)[1].strip() for line in log.splitlines()
                    if "] FATAL:" in line or "] ERROR:" in line or "] DETAIL:" in line]
    failed_login, matched = client_lines  # the failed login, and only that: no other client error
    assert failed_login == 'FATAL:  password authentication failed for user "log_user"'
    assert matched.startswith(f'DETAIL:  Connection matched file "{runtime_dir}/data/pg_hba.conf" line ')
    assert "wrong-password" not in log and "division by zero" not in log
    claim = README.read_text().split("- **No secrets on disk.**")[1].split("\n- **")[0]
    claim = " ".join(claim.split())
    assert "failed logins (with the user name" in claim and "the `pg_hba.conf` line" in claim
    assert "never the password tried" in claim and "no other client error" in claim
