"""Cassettes: what replaying and recording add to a workflow's run.

    python benchmarks/bench_cassettes.py [--repeat N]        (or: python -m benchmarks cassettes)

- replay: a workflow making 1,000 awaited resource calls (four parallel nodes of 250), replayed from its
  cassette (reading the file, making the resources and the run), against the same run on the in-memory object
  it was recorded from; target: at most 50 ms more.
- record: a workflow making 100 queries through an asyncpg pool on the embedded PostgreSQL (one node, one
  query after the other), recorded, against the same run on the bare pool; target: at most 20 % more. The
  queries are the cheapest a real service answers (``select $1``, local socket).
- record, worst case: 200 such queries from four parallel nodes over four connections, which keeps this
  process's core busy, so every microsecond the kit spends per call shows in full; reported against the
  same target, not counted in the exit status.
- Shown too for both: the same run with the pool as a plain tracked mock (the share of the call seam that
  every tracked resource pays), and writing the cassette afterwards (once per test, atomically, with fsync).

Medians of ``--repeat`` runs (15 by default), the two forms alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from kailash_nb.testing import CallTracker, Cassette, TrackedResource
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Workflow

REPLAY_TARGET = 0.050
RECORD_TARGET = 0.20
NODES = 4


class Catalogue:
    """An in-memory service: what the replayed cassette was recorded from."""

    async def item(self, number: int) -> dict[str, Any]:
        return {"id": number, "name": f"item {number}", "tags": ["a", "b"], "price": number * 1.5}


def calls_workflow(resource: str, call: str, per_node: int, nodes: int = NODES) -> Workflow:
    builder = AsyncWorkflowBuilder(f"{resource}_calls")
    for node in range(nodes):
        builder.add_async_code(f"n{node}", f"""
service = await get_resource("{resource}")
rows = [{call} for i in range({node * per_node}, {(node + 1) * per_node})]
result = {{"count": len(rows)}}
""")
    return builder.build()


async def run(workflow: Workflow, resources: dict[str, Any]) -> None:
    result = await AsyncLocalRuntime().execute_workflow_async(workflow, resources=resources)
    result.raise_for_status()


async def bench_replay(repeat: int, folder: Path) -> tuple[float, float]:
    workflow = calls_workflow("catalogue", "await service.item(i)", 250)
    path = folder / "catalogue.json"
    async with Cassette(path, "all") as cassette:
        await run(workflow, await cassette.resources(catalogue=Catalogue))
    assert cassette.recorded_count == 1000
    bare, replayed = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        await run(workflow, {"catalogue": Catalogue()})
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        async with Cassette(path, "none") as cassette:
            await run(workflow, await cassette.resources(catalogue=Catalogue))
        replayed.append(time.perf_counter() - started)
        assert cassette.replayed_count == 1000
    return statistics.median(bare), statistics.median(replayed)


async def bench_record(repeat: int, folder: Path, dsn: str, nodes: int, per_node: int
                       ) -> tuple[float, float, float, float]:
    """Medians of the bare pool, the pool as a tracked mock (the call seam alone), the pool recorded, and of
    writing the cassette; one pool for all, the forms alternating."""
    workflow = calls_workflow("db", "await service.fetchrow('select $1::int as id, $2::text as name', i, str(i))",
                              per_node, nodes)
    bare, tracked, recorded, saves = [], [], [], []
    pool = await asyncpg.create_pool(dsn, min_size=NODES, max_size=NODES)
    try:
        for attempt in range(repeat + 1):  # the first round warms the server and the connections up
            started = time.perf_counter()
            await run(workflow, {"db": pool})
            took = time.perf_counter() - started
            started = time.perf_counter()
            await run(workflow, {"db": TrackedResource("db", pool, CallTracker())})
            took_tracked = time.perf_counter() - started
            cassette = Cassette(folder / "db.json", "all")
            resources = await cassette.resources(db=lambda: pool)
            started = time.perf_counter()
            await run(workflow, resources)
            took_recording = time.perf_counter() - started
            started = time.perf_counter()
            cassette.save()  # not aclose(): that would close the pool
            took_saving = time.perf_counter() - started
            assert cassette.recorded_count == nodes * per_node
            if attempt:
                bare.append(took)
                tracked.append(took_tracked)
                recorded.append(took_recording)
                saves.append(took_saving)
    finally:
        await pool.close()
    return (statistics.median(bare), statistics.median(tracked), statistics.median(recorded),
            statistics.median(saves))


async def main(repeat: int) -> int:
    from kailash_nb.testing.fixtures.postgres import get_postgres_server

    with tempfile.TemporaryDirectory(prefix="knb-cassettes-") as folder:
        bare, replayed = await bench_replay(repeat, Path(folder))
        server = get_postgres_server()
        db = await server.create_database("bench_cassettes")
        try:
            sequential = await bench_record(repeat, Path(folder), db.connection_string, 1, 100)
            parallel = await bench_record(repeat, Path(folder), db.connection_string, NODES, 50)
        finally:
            await db.cleanup()
    replay_added = replayed - bare
    replay_ok = replay_added <= REPLAY_TARGET
    print("| measure | without cassette | with cassette | added | target | ok |")
    print("|---|--:|--:|--:|---|---|")
    print(f"| replay 1,000 calls (in-memory service) | {bare * 1e3:.1f} ms | {replayed * 1e3:.1f} ms | "
          f"{replay_added * 1e3:.1f} ms | <= {REPLAY_TARGET * 1e3:g} ms | {'yes' if replay_ok else 'NO'} |")
    record_ok = True
    for label, (plain, tracking, recording, saving), counted in (
            ("100 queries, one node", sequential, True), (f"200 queries, {NODES} parallel nodes (worst case)",
                                                          parallel, False)):
        added = recording / plain - 1
        ok = added <= RECORD_TARGET
        record_ok = record_ok and (ok or not counted)
        print(f"| record {label} | {plain * 1e3:.1f} ms | {recording * 1e3:.1f} ms | {added * 100:.1f} % | "
              f"<= {RECORD_TARGET * 100:g} % | {('yes' if ok else 'NO') + ('' if counted else ' (reported)')} |")
        print(f"| (the call seam alone: pool as a tracked mock) | {plain * 1e3:.1f} ms | {tracking * 1e3:.1f} ms | "
              f"{(tracking / plain - 1) * 100:.1f} % | | |")
        print(f"| (writing that cassette) | | {saving * 1e3:.1f} ms | | once per test | |")
    return 0 if replay_ok and record_ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    raise SystemExit(asyncio.run(main(parser.parse_args().repeat)))
