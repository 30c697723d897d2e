"""Virtual time: a workflow that waits through minutes of backoff, timeouts and TTLs, in milliseconds.

    python benchmarks/bench_virtual_time.py        (or: python -m benchmarks virtual-time)

- A workflow whose nodes wait through 60 s of retry backoff, a 30 s timeout and a 10-minute cache TTL,
  run on virtual time: the target is under 50 ms of real time, with the same outputs as the same workflow
  run on real time (there with every delay scaled down 1000 times, so that it ends in under a second).
- A workflow that never sleeps (a 10-node chain), with and without virtual time, timed in alternating
  batches: the target is at most 10 % more on virtual time.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
from time import perf_counter

from kailash_nb.testing import MemoryCache
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

REAL_TIME_TARGET = 0.050
OVERHEAD_TARGET = 1.10

WAITING = (
    AsyncWorkflowBuilder("waiting")
    .add_async_code("retry", """
        flaky = await get_resource("flaky")
        attempts = 0
        for delay in (4, 8, 16, 32):               # 60 s of backoff before the fifth attempt succeeds
            attempts += 1
            if await flaky(attempts):
                break
            await asyncio.sleep(delay * scale)
        attempts += 1
        result = {'attempts': attempts, 'answer': await flaky(attempts)}
    """)
    .add_async_code("slow_service", """
        try:
            await asyncio.wait_for(asyncio.sleep(3600 * scale), 30 * scale)   # a 30 s timeout
            outcome = 'answered'
        except TimeoutError:
            outcome = 'timed out'
        result = {'outcome': outcome}
    """)
    .add_async_code("session", """
        cache = await get_resource("cache")
        await cache.set('token', 'abc', ttl=600 * scale)   # a 10-minute TTL
        await asyncio.sleep(590 * scale)
        alive = await cache.get('token')
        await asyncio.sleep(20 * scale)
        result = {'alive': alive, 'expired': await cache.get('token') is None}
    """)
    .add_async_code("report", "result = {'summary': [attempts, outcome, alive, expired]}")
    .add_connection("retry", "attempts", "report", "attempts")
    .add_connection("slow_service", "outcome", "report", "outcome")
    .add_connection("session", "alive", "report", "alive")
    .add_connection("session", "expired", "report", "expired")
    .build()
)

CHAIN = AsyncWorkflowBuilder("chain")
for _i in range(10):
    CHAIN.add_async_code(f"n{_i}", f"result = {{'v': {'v + 1' if _i else '0'}}}")
    if _i:
        CHAIN.add_connection(f"n{_i - 1}", "v", f"n{_i}", "v")
NO_SLEEP = CHAIN.build()


async def flaky(attempt: int) -> bool:
    return attempt >= 5


async def run_waiting(virtual: bool) -> tuple[float, dict[str, object], float]:
    scale = 1.0 if virtual else 0.001
    runtime = AsyncLocalRuntime(virtual_time=virtual)
    started = perf_counter()
    result = await runtime.execute_workflow_async(WAITING, {"scale": scale},
                                                  resources={"flaky": flaky, "cache": MemoryCache()})
    real = perf_counter() - started
    assert result.ok, result.errors
    return real, dict(result.outputs), result.execution_time


async def overhead(runs: int = 3000, batch: int = 100) -> tuple[float, float]:
    real_time, virtual = AsyncLocalRuntime(), AsyncLocalRuntime(virtual_time=True)
    for runtime in (real_time, virtual):
        for _ in range(200):
            await runtime.execute_workflow_async(NO_SLEEP)
    samples: dict[AsyncLocalRuntime, list[float]] = {real_time: [], virtual: []}
    gc.disable()
    try:
        for round_number in range(runs // batch):
            for runtime in (real_time, virtual) if round_number % 2 == 0 else (virtual, real_time):
                t0 = perf_counter()
                for _ in range(batch):
                    await runtime.execute_workflow_async(NO_SLEEP)
                samples[runtime].append((perf_counter() - t0) / batch)
    finally:
        gc.enable()
    return statistics.median(samples[real_time]), statistics.median(samples[virtual])


async def main() -> int:
    real_seconds, real_outputs, _ = await run_waiting(virtual=False)
    timings = [await run_waiting(virtual=True) for _ in range(5)]
    virtual_real = statistics.median(t[0] for t in timings)
    same = all(t[1] == real_outputs for t in timings)
    virtual_seconds = timings[0][2]
    plain, on_virtual = await overhead()
    ratio = on_virtual / plain
    print("| workflow | on | real time | virtual time | target | ok |")
    print("|---|---|--:|--:|---|---|")
    print(f"| backoff 60 s, timeout 30 s, TTL 10 min | real time, delays / 1000 | {real_seconds * 1e3:.1f} ms | "
          "- | - | - |")
    print(f"| backoff 60 s, timeout 30 s, TTL 10 min | virtual time (median of 5) | {virtual_real * 1e3:.2f} ms | "
          f"{virtual_seconds:.1f} s | < {REAL_TIME_TARGET * 1e3:.0f} ms, same outputs | "
          f"{'yes' if virtual_real < REAL_TIME_TARGET and same else 'NO'} |")
    print(f"| 10-node chain, no sleep | real time | {plain * 1e6:.1f} µs | - | - | - |")
    print(f"| 10-node chain, no sleep | virtual time | {on_virtual * 1e6:.1f} µs | - | "
          f"<= {OVERHEAD_TARGET:.2f}x | {'yes' if ratio <= OVERHEAD_TARGET else 'NO'} ({ratio:.2f}x) |")
    print(f"\noutputs on virtual time {'equal' if same else 'DIFFER FROM'} those on real time: "
          f"{real_outputs['report']}")
    return 0 if virtual_real < REAL_TIME_TARGET and same and ratio <= OVERHEAD_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
