"""Benchmark of the real-PostgreSQL test fixtures: python benchmarks/bench_postgres.py [--repeat N].

Measures, on a private embedded server (so a shared one does not distort the figures):
  cold start      starting the embedded server (initdb + postgres) until it accepts connections
  fresh database  create_test_database + cleanup (clone from template + drop), per test
  login           one asyncpg connection of the guide's user (SCRAM-SHA-256 password check)
  ETL 10k rows    the guide's "10k+ records" pipeline: extract -> transform -> load through a workflow
and prints a table with the targets of issue 4.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from benchmarks.timings import TimingTable
from kailash_nb.testing.fixtures.postgres import PostgresServer
from kailash_nb.testing.fixtures.postgres.embedded import EmbeddedServerManager, runtime_base
from kailash_nb.testing.fixtures.postgres.runtime import runtime_dir_in
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Workflow

SCHEMA = "create table sales (id int primary key, customer text, amount numeric);"


def etl_workflow() -> Workflow:
    return (
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


def private_runtime_dir(base: Path | None) -> Path:
    """A fresh runtime directory in ``base``, by default where the shared one would be (/dev/shm if roomy)."""
    parent = Path(tempfile.mkdtemp(prefix="knbbench-", dir=base or runtime_base()))
    parent.chmod(0o711)  # as root the server runs as an unprivileged user
    return runtime_dir_in(parent)


def bench_cold_start(repeat: int, base: Path | None) -> list[float]:
    times = []
    for _ in range(repeat):
        runtime_dir = private_runtime_dir(base)
        manager = EmbeddedServerManager(runtime_dir)
        start = time.perf_counter()
        manager.ensure_running()
        times.append(time.perf_counter() - start)
        manager.release()
        shutil.rmtree(runtime_dir.parent, ignore_errors=True)
    return times


async def timed(repeat: int, step: Callable[[], Awaitable[None]], warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        await step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await step()
        times.append(time.perf_counter() - start)
    return times


async def bench_server(server: PostgresServer, repeat: int) -> dict[str, list[float]]:
    async def plain() -> None:
        db = await server.create_database("bench")
        await db.cleanup()

    async def guide() -> None:
        db = await server.create_database("test_db", "test_user", "test_pass", schema=SCHEMA)
        await db.cleanup()

    workflow = etl_workflow()
    runtime = AsyncLocalRuntime()
    etl_times: list[float] = []

    async def etl() -> None:
        async with await server.create_database("warehouse", schema=SCHEMA) as db:
            pool = await db.pool()
            start = time.perf_counter()
            result = await runtime.execute_workflow_async(workflow, {"count": 10_000},
                                                          resources={"warehouse": pool})
            etl_times.append(time.perf_counter() - start)
            assert result.status == "success" and result.get_output("load", "loaded") == 10_000, result.errors

    async with await server.create_database("login", "test_user", "test_pass") as db:
        async def login() -> None:
            conn = await asyncpg.connect(db.connection_string)
            await conn.close()

        results = {"plain": await timed(repeat, plain), "guide": await timed(repeat, guide),
                   "login": await timed(repeat, login)}
    await timed(max(3, repeat // 6), etl, warmup=1)
    results["etl"] = etl_times[1:]  # the workflow alone, without the warm-up run
    return results


TABLE = TimingTable(width=44, digits=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="fresh-database iterations (default 30)")
    parser.add_argument("--cold", type=int, default=3, help="cold starts (default 3)")
    parser.add_argument("--base", type=Path, default=None,
                        help="directory for the server files (default: /dev/shm if it has room, else temp dir)")
    argv = sys.argv[1:]
    while argv and not argv[0].startswith("-"):  # benchmark names given to ``python -m benchmarks``
        argv.pop(0)
    args = parser.parse_args(argv)

    cold = bench_cold_start(args.cold, args.base)
    runtime_dir = private_runtime_dir(args.base)
    manager = EmbeddedServerManager(runtime_dir)
    try:
        results = asyncio.run(bench_server(PostgresServer(manager), args.repeat))
    finally:
        manager.release()
        shutil.rmtree(runtime_dir.parent, ignore_errors=True)

    print(f"runtime directory (data, socket): {runtime_dir.parent.parent}")
    print(TABLE.header())
    print(TABLE.row("cold start of the embedded server", cold, 2.0))
    print(TABLE.row("fresh database (clone + drop), no schema", results["plain"], 0.1))
    print(TABLE.row("fresh database, guide args + schema + role", results["guide"], 0.1))
    print(TABLE.row("login of the guide's user (SCRAM-SHA-256)", results["login"], 0.1))
    print(TABLE.row("ETL workflow loading 10k rows", results["etl"], 0.5))


if __name__ == "__main__":
    main()
