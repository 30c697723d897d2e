"""Real PostgreSQL behind workflow nodes: the guide's Database Testing example, pools, isolation."""

from __future__ import annotations

import asyncio

import asyncpg

from kailash_nb.testing import AsyncWorkflowFixtures, AsyncWorkflowTestCase
from kailash_nb.testing.fixtures.postgres import TestDatabase, create_test_database
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Workflow


def create_table_insert_query_workflow() -> Workflow:
    return (
        AsyncWorkflowBuilder("orders")
        .add_async_code("create", (
            "pool = await get_resource('db')\n"
            "await pool.execute('create table if not exists orders (id int primary key, item text)')\n"
            "result = {'ready': True}"))
        .add_async_code("insert", (
            "pool = await get_resource('db')\n"
            "await pool.executemany('insert into orders values ($1, $2)', [(i, f'item-{i}') for i in ids])\n"
            "result = {'inserted': len(ids)}"))
        .add_async_code("query", (
            "pool = await get_resource('db')\n"
            "rows = await pool.fetch('select id, item from orders order by id')\n"
            "result = {'rows': [dict(r) for r in rows]}"))
        .add_connection("create", "ready", "insert", "ready")
        .add_connection("insert", "inserted", "query", "inserted")
        .build()
    )


class GuideDatabaseTestingExample(AsyncWorkflowTestCase):
    """The guide's example, with asyncpg.connect as its create_connection (run by the test below)."""

    __test__ = False
    dropped: TestDatabase | None = None

    async def test_database_from_fixtures_feeds_a_workflow(self) -> None:
        db = await AsyncWorkflowFixtures.create_test_database(
            engine="postgresql", database="test_db", user="test_user", password="test_pass")
        await self.create_test_resource("testdb", lambda: db)  # dropped after the test like any resource
        await self.create_test_resource("db", lambda: asyncpg.connect(db.connection_string))

        workflow = create_table_insert_query_workflow()
        result = await self.execute_workflow(workflow, {"ids": [1, 2, 3]})

        self.assert_workflow_success(result)
        assert result.get_output("query", "rows") == [
            {"id": 1, "item": "item-1"}, {"id": 2, "item": "item-2"}, {"id": 3, "item": "item-3"}]
        self.__class__.dropped = db


def test_guide_example_drops_its_database_after_the_test() -> None:
    import unittest

    case = GuideDatabaseTestingExample("test_database_from_fixtures_feeds_a_workflow")
    outcome = unittest.TestResult()
    case.run(outcome)
    assert outcome.wasSuccessful(), outcome.errors + outcome.failures
    db = GuideDatabaseTestingExample.dropped
    assert db is not None

    async def exists() -> bool:
        async with await create_test_database(database="admin") as admin:  # connects as the server's admin
            conn = await admin.connect()
            return bool(await conn.fetchval("select 1 from pg_database where datname = $1", db.name))

    assert not asyncio.run(exists())


def test_workflow_nodes_create_insert_and_query_through_a_pool() -> None:
    async def scenario() -> None:
        async with await create_test_database(database="wf") as db:
            result = await AsyncLocalRuntime().execute_workflow_async(
                create_table_insert_query_workflow(), {"ids": [2, 1]}, resources={"db": await db.pool()})
            assert result.status == "success", result.errors
            assert result.get_output("query", "rows") == [{"id": 1, "item": "item-1"},
                                                          {"id": 2, "item": "item-2"}]

    asyncio.run(scenario())


def test_twenty_concurrent_workflows_write_through_one_pool() -> None:
    workflow = (
        AsyncWorkflowBuilder("writer")
        .add_async_code("write", (
            "pool = await get_resource('db')\n"
            "async with pool.acquire() as conn:\n"
            "    async with conn.transaction():\n"
            "        await conn.execute('insert into events (run, n) '\n"
            "                           'select $1, g from generate_series(1, 50) g', run)\n"
            "        await conn.execute('select pg_sleep(0.01)')\n"
            "result = {'run': run}"))
        .build()
    )

    async def scenario() -> None:
        async with await create_test_database(database="concurrent",
                                              schema="create table events (run int, n int);") as db:
            pool = await db.pool(min_size=2, max_size=5)
            runtime = AsyncLocalRuntime()
            results = await asyncio.gather(*(
                runtime.execute_workflow_async(workflow, {"run": run}, resources={"db": pool})
                for run in range(20)))
            assert [r.status for r in results] == ["success"] * 20
            counts = await pool.fetch("select run, count(*) as c from events group by run order by run")
            assert [(r["run"], r["c"]) for r in counts] == [(run, 50) for run in range(20)]

    asyncio.run(scenario())


def _write_marker_and_count(db: TestDatabase, marker: str) -> list[str]:
    async def scenario() -> list[str]:
        pool = await db.pool()
        await pool.execute("create table if not exists shared_name (marker text)")
        await pool.execute("insert into shared_name values ($1)", marker)
        await asyncio.sleep(0.05)  # give a concurrently running test time to write its row
        return [r["marker"] for r in await pool.fetch("select marker from shared_name")]

    return asyncio.run(scenario())


def test_isolation_first_writer_sees_only_its_rows(postgres_db: TestDatabase) -> None:
    assert _write_marker_and_count(postgres_db, "first") == ["first"]


def test_isolation_second_writer_sees_only_its_rows(postgres_db: TestDatabase) -> None:
    assert _write_marker_and_count(postgres_db, "second") == ["second"]


def test_concurrent_databases_with_the_same_table_never_share_rows() -> None:
    async def writer(marker: str) -> list[str]:
        async with await create_test_database(database="isolated", schema="create table t (marker text);") as db:
            pool = await db.pool()
            await pool.execute("insert into t values ($1)", marker)
            await asyncio.sleep(0.05)
            return [r["marker"] for r in await pool.fetch("select marker from t")]

    async def scenario() -> list[list[str]]:
        return await asyncio.gather(*(writer(f"w{i}") for i in range(5)))

    assert asyncio.run(scenario()) == [[f"w{i}"] for i in range(5)]


def test_etl_workflow_loads_ten_thousand_records() -> None:
    workflow = (
        AsyncWorkflowBuilder("etl")
        .add_async_code("extract", (
            "records = [(i, f'customer-{i % 100}', i * 1.5) for i in range(count)]\n"
            "result = {'records': records, 'record_count': len(records)}"))
        .add_async_code("transform", (
            "result = {'processed_records': [(i, c.upper(), round(a, 2)) for i, c, a in records]}"))
        .add_async_code("load", (
            "pool = await get_resource('warehouse')\n"
            "await pool.copy_records_to_table('sales', records=processed_records)\n"
            "result = {'loaded': await pool.fetchval('select count(*) from sales')}"))
        .add_connection("extract", "records", "transform", "records")
        .add_connection("transform", "processed_records", "load", "processed_records")
        .build()
    )

    async def scenario() -> None:
        async with await create_test_database(
                database="warehouse",
                schema="create table sales (id int primary key, customer text, amount numeric);") as db:
            result = await AsyncLocalRuntime().execute_workflow_async(
                workflow, {"count": 10_000}, resources={"warehouse": await db.pool()})
            assert result.status == "success", result.errors
            assert result.get_output("extract", "record_count") == 10_000
            assert result.get_output("load", "loaded") == 10_000

    asyncio.run(scenario())
