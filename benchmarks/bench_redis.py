"""Benchmark of the real-Redis test fixtures: python benchmarks/bench_redis.py [--repeat N] [--ops N].

Measures, on a private embedded server (so a shared one does not distort the figures), side by side with the
in-memory cache:
  cold start      starting the embedded redis-server (reaper + server) until it answers
  fresh cache     create_test_cache(backend=...) until it has answered a first call (``exists``): a new
                  isolated key space, its client connected (the client connects on first use)
  set + get       one cache.set and one cache.get of a small dict (one round trip each on Redis)
and prints a table with the targets of issue 15 (median of each).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timings import TimingTable
from kailash_nb.testing.fixtures import MemoryCache
from kailash_nb.testing.fixtures.embedded.runtime import runtime_base
from kailash_nb.testing.fixtures.redis import RedisCache
from kailash_nb.testing.fixtures.redis.embedded import EmbeddedRedisManager
from kailash_nb.testing.fixtures.redis.host import redis_binary
from kailash_nb.testing.fixtures.redis.runtime import RUNTIME_DIR_ENV, runtime_dir_in
from kailash_nb.testing.fixtures.redis.server import RedisServer

VALUE = {"user": "ada", "roles": ["admin", "ops"], "visits": 42}


def private_runtime_dir() -> Path:
    return runtime_dir_in(Path(tempfile.mkdtemp(prefix="knbbench-", dir=runtime_base(RUNTIME_DIR_ENV))))


def bench_cold_start(repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        runtime_dir = private_runtime_dir()
        manager = EmbeddedRedisManager(runtime_dir)
        start = time.perf_counter()
        manager.ensure_running()
        times.append(time.perf_counter() - start)
        manager.release()
        shutil.rmtree(runtime_dir.parent, ignore_errors=True)
    return times


async def bench_caches(server: RedisServer, repeat: int, ops: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}

    async def fresh_memory() -> MemoryCache:
        return MemoryCache()

    async def fresh_redis() -> RedisCache:
        return RedisCache(await server.create_redis("cache"))

    for backend, fresh in (("memory", fresh_memory), ("redis", fresh_redis)):
        made, round_trips = [], []
        for _ in range(repeat + 2):
            start = time.perf_counter()
            cache = await fresh()
            await cache.exists("absent")  # on Redis: connect, authenticate, one round trip
            made.append(time.perf_counter() - start)
            for i in range(ops):
                start = time.perf_counter()
                await cache.set(f"k{i}", VALUE)
                assert await cache.get(f"k{i}") == VALUE
                round_trips.append(time.perf_counter() - start)
            await cache.aclose()
        results[f"fresh {backend}"] = made[2:]  # without the warm-up
        results[f"set+get {backend}"] = round_trips[2 * ops:]
    return results


TABLE = TimingTable(width=40, digits=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="fresh caches per backend (default 50)")
    parser.add_argument("--ops", type=int, default=100, help="set + get round trips per cache (default 100)")
    parser.add_argument("--cold", type=int, default=5, help="cold starts (default 5)")
    argv = sys.argv[1:]
    while argv and not argv[0].startswith("-"):  # benchmark names given to ``python -m benchmarks``
        argv.pop(0)
    args = parser.parse_args(argv)

    cold = bench_cold_start(args.cold)
    runtime_dir = private_runtime_dir()
    manager = EmbeddedRedisManager(runtime_dir)
    try:
        results = asyncio.run(bench_caches(RedisServer(manager), args.repeat, args.ops))
    finally:
        manager.release()
        shutil.rmtree(runtime_dir.parent, ignore_errors=True)

    print(f"redis-server: {redis_binary()}")
    print(TABLE.header())
    print(TABLE.row("cold start of the embedded redis-server", cold, 0.3))
    print(TABLE.row("fresh isolated cache, Redis", results["fresh redis"], 0.005))
    print(TABLE.row("fresh cache, in memory", results["fresh memory"], None))
    print(TABLE.row("set + get round trip, Redis", results["set+get redis"], 0.0005))
    print(TABLE.row("set + get round trip, in memory", results["set+get memory"], None))


if __name__ == "__main__":
    main()
