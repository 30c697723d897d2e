"""create_test_database against the embedded server: isolation, schema templates, roles, cleanup."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kailash_nb.testing.fixtures.postgres import (
    PostgresConfigurationError,
    PostgresServer,
    TemplateBuildError,
    TestDatabase,
    UnsupportedEngineError,
    create_test_database,
)
from kailash_nb.testing.fixtures.postgres.embedded import EmbeddedServerManager

SCHEMA = "create table items (id serial primary key, name text not null);"


async def seed_two_items(conn: asyncpg.Connection) -> None:
    await conn.execute("insert into items (name) values ('apple'), ('pear')")


async def admin_fetchval(query: str, *args: object) -> object:
    """``query`` as the server's admin (a database made without ``user`` connects as the admin)."""
    async with await create_test_database(database="admin") as admin:
        return await (await admin.connect()).fetchval(query, *args)


def test_unsupported_engine_error_lists_the_supported_ones() -> None:
    with pytest.raises(UnsupportedEngineError, match=r"'mysql' is not supported.*supported: 'postgresql'"):
        asyncio.run(create_test_database(engine="mysql"))


def test_unsupported_engine_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        asyncio.run(create_test_database(engine="sqlite"))


def test_guide_arguments_give_a_database_owned_by_the_requested_user() -> None:
    async def scenario() -> None:
        db = await create_test_database(engine="postgresql", database="test_db", user="test_user",
                                        password="test_pass")
        try:
            assert db.name.startswith("test_db_")
            conn = await asyncpg.connect(db.connection_string)
            try:
                assert await conn.fetchval("select current_user") == "test_user"
                assert await conn.fetchval("select current_database()") == db.name
                await conn.execute("create table t (x int)")  # the owner may create tables
            finally:
                await conn.close()
            assert await admin_fetchval(
                "select rolpassword is not null from pg_authid where rolname = 'test_user'")
        finally:
            await db.cleanup()

    asyncio.run(scenario())


def test_repr_and_html_are_deterministic_and_mask_the_password() -> None:
    async def scenario() -> tuple[str, str, str]:
        async with await create_test_database(database="test_db", user="test_user", password="s3cret") as db:
            assert "s3cret" in db.connection_string
            return repr(db), db._repr_html_(), db.name

    first_repr, first_html, first_name = asyncio.run(scenario())
    second_repr, second_html, second_name = asyncio.run(scenario())
    assert first_name != second_name
    assert first_repr == second_repr == (
        "TestDatabase(engine='postgresql', database='test_db', user='test_user', "
        "connection_string='postgresql://test_user:***@<embedded>/test_db_<n>')")
    assert first_html == second_html
    assert "s3cret" not in first_repr + first_html


def test_schema_and_seed_are_prepared_once_and_cloned_into_each_database() -> None:
    async def scenario() -> None:
        calls: list[str] = []

        async def seed(conn: asyncpg.Connection) -> None:
            calls.append("seed")
            await seed_two_items(conn)

        # Templates are shared by every process using the server: a schema of our own makes a new one.
        schema = f"{SCHEMA} -- {uuid.uuid4()}"
        first = await create_test_database(database="cloned", schema=schema, seed=seed)
        second = await create_test_database(database="cloned", schema=schema, seed=seed)
        try:
            pool1, pool2 = await first.pool(), await second.pool()
            await pool1.execute("insert into items (name) values ('only-in-first')")
            assert await pool1.fetchval("select count(*) from items") == 3
            assert sorted(r["name"] for r in await pool2.fetch("select name from items")) == ["apple", "pear"]
            assert calls == ["seed"]
        finally:
            await first.cleanup()
            await second.cleanup()

    asyncio.run(scenario())


def test_schema_objects_belong_to_the_requested_user(tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.sql"
    schema_file.write_text(SCHEMA)

    async def scenario() -> None:
        async with await create_test_database(database="owned", user="owner_user", password="pw",
                                              schema=schema_file, seed=seed_two_items) as db:
            conn = await db.connect()
            await conn.execute("alter table items add column price numeric")  # owner-only DDL
            await conn.execute("insert into items (name, price) values ('fig', 2)")
            assert await conn.fetchval("select count(*) from items") == 3

    asyncio.run(scenario())


def test_schema_error_names_the_failing_stage() -> None:
    with pytest.raises(TemplateBuildError, match=r"failed in the schema: .*syntax error"):
        asyncio.run(create_test_database(schema="create tabel oops (x int);"))


def test_missing_schema_file_is_a_configuration_error() -> None:
    with pytest.raises(PostgresConfigurationError, match=r"cannot read the schema file .*missing\.sql"):
        asyncio.run(create_test_database(schema="missing.sql"))


def test_password_with_a_nul_character_is_a_configuration_error() -> None:
    with pytest.raises(PostgresConfigurationError, match="password cannot contain NUL characters"):
        asyncio.run(create_test_database(user="nul_user", password="before\x00after"))


def test_server_of_something_else_than_a_manager_or_url_is_a_type_error(tmp_path: Path) -> None:
    target: Any = tmp_path  # a path, where a URL or an EmbeddedServerManager belongs
    with pytest.raises(TypeError, match=r"EmbeddedServerManager or a PostgreSQL URL, got PosixPath\('/"):
        PostgresServer(target)


def test_cleanup_terminates_open_sessions_and_drops_the_database() -> None:
    async def scenario() -> None:
        db = await create_test_database(database="dropme")
        leaked = await asyncpg.connect(db.connection_string)  # not tracked by db: cleanup must end it
        pool = await db.pool()
        await pool.fetchval("select 1")
        await db.cleanup()
        assert leaked.is_closed() or not await _still_alive(leaked)
        assert not await admin_fetchval("select count(*) from pg_database where datname = $1", db.name)
        with pytest.raises(RuntimeError, match="was cleaned up"):
            await db.pool()
        await db.cleanup()  # idempotent

    asyncio.run(scenario())


async def _still_alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("select 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    finally:
        conn.terminate()
    return True


def test_role_is_dropped_with_the_last_database_using_it() -> None:
    async def scenario() -> None:
        first = await create_test_database(user="shared_role")
        second = await create_test_database(user="shared_role")
        await first.cleanup()
        assert await admin_fetchval("select count(*) from pg_roles where rolname = 'shared_role'") == 1
        await second.cleanup()
        assert await admin_fetchval("select count(*) from pg_roles where rolname = 'shared_role'") == 0

    asyncio.run(scenario())


def test_pool_is_reused_per_event_loop_and_closed_when_the_loop_shuts_down() -> None:
    async def scenario() -> tuple[TestDatabase, asyncpg.Pool]:
        db = await create_test_database()
        pool = await db.pool()
        assert await db.pool() is pool
        return db, pool

    db, pool = asyncio.run(scenario())  # asyncio.run's shutdown closes the pool on its own loop
    assert pool.is_closing()
    db.cleanup_sync()


RESERVED_USERS = {
    "postgres": "is the server's superuser",
    "kailash_nb_owner": "is the kit's own role, which owns the schema of every template (a test given it breaks them)",
    "pg_monitor": "starts with pg_, which PostgreSQL reserves for its own roles",
    "pg_not_made_yet": "starts with pg_, which PostgreSQL reserves for its own roles",
}


def test_the_superuser_the_kits_role_and_pg_roles_are_refused_as_a_test_user(runtime_dir: Path) -> None:
    # a private server: were a role accepted, the shared server's later schemas would break
    manager = EmbeddedServerManager(runtime_dir)
    server = PostgresServer(manager)

    async def scenario() -> None:
        async with await server.create_database("builds_the_template", schema=SCHEMA) as first:
            admin = await asyncpg.connect(manager.ensure_running().dsn())
            try:
                await admin.execute('create role "another_superuser" superuser login')
                for user, problem in {**RESERVED_USERS, "another_superuser": "is a superuser of the server"}.items():
                    with pytest.raises(PostgresConfigurationError) as info:
                        await server.create_database("taken", user=user, schema=SCHEMA)
                    assert str(info.value) == (
                        f"user {user!r} {problem}: a test database's user must be a role of its own; pass another "
                        "user= (such as 'test_user'), or none to connect as the server's admin")
                roles = await admin.fetch("select rolname, rolsuper, rolcanlogin from pg_roles where rolname = any($1)",
                                          ["postgres", "kailash_nb_owner", "pg_not_made_yet"])
                assert sorted(tuple(r) for r in roles) == [("kailash_nb_owner", True, False), ("postgres", True, True)]
                assert not await admin.fetchval("select count(*) from pg_database where datname like 'taken%'")
            finally:
                await admin.close()
            async with await server.create_database("later", user="later_user", schema=SCHEMA) as later:
                assert first.instance == later.instance  # the same server: its template still works
                await (await later.connect()).execute("insert into items (name) values ('ok')")

    try:
        asyncio.run(scenario())
    finally:
        manager.release()
