"""The existing-server backend (dsn= / KAILASH_NB_POSTGRES_URL), against a second server this test starts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from conftest import run_child

from kailash_nb.testing.fixtures.postgres import (
    POSTGRES_URL_ENV,
    PostgresConfigurationError,
    TestDatabase,
    create_test_database,
    get_postgres_server,
)
from kailash_nb.testing.fixtures.postgres.dsn import dsn_password, replace_in_dsn
from kailash_nb.testing.fixtures.postgres.embedded import EmbeddedServerManager

CHILD_MAKING_A_ROLE = '''
import asyncio, sys
from kailash_nb.testing.fixtures.postgres import create_test_database

async def main():
    db = await create_test_database(dsn=sys.argv[1], user="shared_user")
    print(db.name, flush=True)

asyncio.run(main())
'''


@pytest.fixture
def other_server(runtime_dir: Path) -> Iterator[str]:
    """Admin DSN of a second PostgreSQL server, private to this test."""
    manager = EmbeddedServerManager(runtime_dir)
    info = manager.ensure_running()
    try:
        yield info.dsn()
    finally:
        manager.release()


class InjectedFailure(Exception):
    """What a statement made to fail raises."""


class FailingConnection:
    """An asyncpg connection whose first statement starting with ``prefix`` fails, once in the whole test."""

    def __init__(self, conn: asyncpg.Connection, fault: dict[str, bool], prefix: str) -> None:
        self._conn, self._fault, self._prefix = conn, fault, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if query.startswith(self._prefix) and not self._fault["failed"]:
            self._fault["failed"] = True
            raise InjectedFailure(f"{query.split(' (')[0]} failed")
        return await self._conn.execute(query, *args, **kwargs)


def fail_once(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """From now on in this test, the first statement starting with ``prefix`` fails."""
    connect, fault = asyncpg.connect, {"failed": False}

    async def failing_connect(*args: Any, **kwargs: Any) -> FailingConnection:
        return FailingConnection(await connect(*args, **kwargs), fault, prefix)

    monkeypatch.setattr(asyncpg, "connect", failing_connect)


def without_password(dsn: str) -> str:
    """``dsn`` with no password in its user part."""
    return replace_in_dsn(dsn, user="postgres", password=None, database="postgres")


async def fetch(dsn: str, query: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [row[0] for row in await conn.fetch(query)]
    finally:
        await conn.close()


def test_dsn_backend_creates_database_and_role_and_removes_them(other_server: str) -> None:
    async def scenario() -> None:
        db = await create_test_database(dsn=other_server, database="test_db", user="test_user",
                                        password="test_pass", schema="create table t (x int);")
        assert db.backend == "dsn"
        assert repr(db) == ("TestDatabase(engine='postgresql', database='test_db', user='test_user', "
                            "connection_string='postgresql://test_user:***@<server>/test_db_<n>')")
        assert db.name in await fetch(other_server, "select datname from pg_database")
        assert "test_user" in await fetch(other_server, "select rolname from pg_roles")
        pool = await db.pool()
        await pool.execute("insert into t values (1)")
        assert await pool.fetchval("select current_user") == "test_user"
        await db.cleanup()
        assert db.name not in await fetch(other_server, "select datname from pg_database")
        assert "test_user" not in await fetch(other_server, "select rolname from pg_roles")

    asyncio.run(scenario())
    server = get_postgres_server(other_server)
    server.drop_leftovers()  # what happens at process exit, done now while the server still runs
    left = asyncio.run(fetch(other_server, "select datname from pg_database where datname like 'kailash_nb%'"))
    assert left == []
    assert asyncio.run(fetch(other_server, "select rolname from pg_roles where rolname like 'kailash_nb%'")) == []


def test_databases_left_open_are_dropped_when_the_process_exits(other_server: str) -> None:
    async def scenario() -> str:
        db = await create_test_database(dsn=other_server, database="forgotten", user="forgetful")
        return db.name

    name = asyncio.run(scenario())  # no cleanup, as in a notebook that is simply closed
    get_postgres_server(other_server).drop_leftovers()
    assert name not in asyncio.run(fetch(other_server, "select datname from pg_database"))
    assert "forgetful" not in asyncio.run(fetch(other_server, "select rolname from pg_roles"))


def test_environment_variable_selects_the_existing_server(other_server: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POSTGRES_URL_ENV, other_server)

    async def scenario() -> None:
        async with await create_test_database(database="from_env") as db:
            assert db.backend == "dsn"
            assert db.name in await fetch(other_server, "select datname from pg_database")

    asyncio.run(scenario())


def test_existing_role_of_the_server_is_used_but_never_dropped(other_server: str) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(other_server)
        await conn.execute("create role app_owner login password 'app_pass'")
        await conn.close()
        verifier = "select rolpassword from pg_authid where rolname = 'app_owner'"
        before = await fetch(other_server, verifier)
        async with await create_test_database(dsn=other_server, user="app_owner", password="app_pass") as db:
            assert await (await db.pool()).fetchval("select current_user") == "app_owner"
        assert "app_owner" in await fetch(other_server, "select rolname from pg_roles")
        assert await fetch(other_server, verifier) == before  # used as it is: its password left alone

    asyncio.run(scenario())


def test_non_postgres_url_is_rejected_with_the_expected_form() -> None:
    with pytest.raises(PostgresConfigurationError, match=r"must look like postgresql://user:password@host"):
        asyncio.run(create_test_database(dsn="mysql://root@localhost/db"))


def test_no_password_travels_in_sql_text_even_to_a_server_that_logs_every_statement(
        other_server: str, runtime_dir: Path) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(other_server)
        await conn.execute("alter role postgres set log_statement = 'all'")  # as an existing server may do
        await conn.close()
        async with await create_test_database(dsn=other_server, user="logged_user", password="never-in-sql") as db:
            assert await (await db.pool()).fetchval("select current_user") == "logged_user"

    asyncio.run(scenario())
    log = (runtime_dir / "postgres.log").read_text()
    assert 'CREATE ROLE "logged_user" LOGIN PASSWORD' in log  # the kit's statements were logged ...
    assert "never-in-sql" not in log  # ... with no password in them


@pytest.mark.parametrize("where", ["query", "PGPASSWORD"])
def test_processes_give_a_role_made_without_a_password_the_same_one(
        other_server: str, runtime_dir: Path, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    admin_password = dsn_password(other_server) or ""
    url = without_password(other_server)
    if where == "query":
        url += "&password=" + quote(admin_password, safe="")
    else:
        monkeypatch.setenv("PGPASSWORD", admin_password)  # the child process inherits it

    async def first_process() -> TestDatabase:
        return await create_test_database(dsn=url, user="shared_user")

    db = asyncio.run(first_process())
    child = run_child(CHILD_MAKING_A_ROLE, runtime_dir, (url,))  # sets the role's password again
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr

    async def after_the_child() -> None:
        conn = await asyncpg.connect(db.connection_string)  # still the role's password
        assert await conn.fetchval("select current_user") == "shared_user"
        await conn.close()
        assert stdout.strip() not in await fetch(other_server, "select datname from pg_database")  # gone at exit
        await db.cleanup()

    asyncio.run(after_the_child())


def test_a_role_without_a_password_needs_the_admins_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)  # nothing to derive the role's password from
    with pytest.raises(PostgresConfigurationError, match=r"pass password= or put the admin's password in the URL"):
        asyncio.run(create_test_database(dsn="postgresql://postgres@localhost:1/postgres", user="some_user"))


def test_the_admins_password_given_as_a_query_parameter_stays_in_its_connection_string(
        other_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = without_password(other_server) + "&password=" + quote(dsn_password(other_server) or "", safe="")

    async def scenario() -> None:
        async with await create_test_database(dsn=url, database="admin_db") as db:
            conn = await asyncpg.connect(db.connection_string)
            assert await conn.fetchval("select current_database()") == db.name
            await conn.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("then", ["cleanup again", "exit"])
def test_a_database_whose_drop_failed_is_dropped_by_the_next_try(
        other_server: str, then: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing_cleanup() -> TestDatabase:
        db = await create_test_database(dsn=other_server, database="retried", user="retried_user")
        fail_once(monkeypatch, "DROP DATABASE")
        with pytest.raises(InjectedFailure):
            await db.cleanup()
        assert db.name in await fetch(other_server, "select datname from pg_database")
        if then == "cleanup again":
            await db.cleanup()
        return db

    db = asyncio.run(failing_cleanup())
    if then == "exit":
        get_postgres_server(other_server).drop_leftovers()
    assert db.name not in asyncio.run(fetch(other_server, "select datname from pg_database"))
    assert "retried_user" not in asyncio.run(fetch(other_server, "select rolname from pg_roles"))


def test_a_database_whose_preparation_fails_after_its_creation_is_dropped(
        other_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_once(monkeypatch, "REASSIGN OWNED")  # handing the schema's objects to the user
    with pytest.raises(InjectedFailure):
        asyncio.run(create_test_database(dsn=other_server, database="half_made", user="half_made_user",
                                         schema="create table t (x int);"))
    assert asyncio.run(fetch(other_server, "select datname from pg_database where datname like 'half_made%'")) == []
    assert "half_made_user" not in asyncio.run(fetch(other_server, "select rolname from pg_roles"))
    get_postgres_server(other_server).drop_leftovers()  # the schema's template, while the server still runs


def test_a_role_made_for_a_clone_that_fails_is_dropped(other_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_once(monkeypatch, "CREATE DATABASE")
    with pytest.raises(InjectedFailure):
        asyncio.run(create_test_database(dsn=other_server, database="never_made", user="orphan_user"))
    assert "orphan_user" not in asyncio.run(fetch(other_server, "select rolname from pg_roles"))
