"""Engine benchmark: median time per run of typical workflow shapes, beside hand-written asyncio.

    python benchmarks/bench_engine.py        (or: make bench)
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
from collections.abc import Awaitable, Callable
from time import perf_counter

from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

PRODUCER = "result = {'items': [1, 2, 3], 'meta': {'count': 3}}"
PROCESSOR = "result = {'doubled': [x * 2 for x in items], 'original_count': meta}"


def one_node():
    return AsyncWorkflowBuilder("one").add_async_code("n", "result = {'v': 1}").build()


def producer_processor():
    return (AsyncWorkflowBuilder("advanced")
            .add_async_code("producer", PRODUCER)
            .add_async_code("processor", PROCESSOR)
            .add_connection("producer", "items", "processor", "items")
            .add_connection("producer", "meta", "processor", "meta")
            .build())


def chain(n: int = 10):
    builder = AsyncWorkflowBuilder("chain").add_async_code("n0", "result = {'v': 0}")
    for i in range(1, n):
        builder.add_async_code(f"n{i}", "result = {'v': v + 1}").add_connection(f"n{i - 1}", "v", f"n{i}", "v")
    return builder.build()


def fan(width: int = 10):
    builder = AsyncWorkflowBuilder("fan").add_async_code("source", "result = {'v': 1}")
    gather = ", ".join(f"v{i}" for i in range(width))
    builder.add_async_code("sink", f"result = {{'total': sum([{gather}])}}")
    for i in range(width):
        (builder.add_async_code(f"w{i}", "await asyncio.sleep(0)\nresult = {'v': v * 2}")
         .add_connection("source", "v", f"w{i}", "v")
         .add_connection(f"w{i}", "v", "sink", f"v{i}"))
    return builder.build()


# The same shapes written by hand: the floor any engine pays on top of.
async def hand_one():
    return {"v": 1}


async def hand_producer():
    return {"items": [1, 2, 3], "meta": {"count": 3}}


async def hand_processor(items, meta):
    return {"doubled": [x * 2 for x in items], "original_count": meta}


async def hand_two():
    p = await hand_producer()
    return await hand_processor(p["items"], p["meta"])


async def hand_chain(n: int = 10):
    async def step(v):
        return {"v": v + 1}

    out = {"v": 0}
    for _ in range(1, n):
        out = await step(out["v"])
    return out


async def hand_fan(width: int = 10):
    async def worker(v):
        await asyncio.sleep(0)
        return {"v": v * 2}

    source = {"v": 1}
    outs = await asyncio.gather(*(worker(source["v"]) for _ in range(width)))
    return {"total": sum(o["v"] for o in outs)}


async def measure(fn: Callable[[], Awaitable[object]], repeat: int) -> float:
    for _ in range(min(200, repeat)):
        await fn()
    samples = []
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = perf_counter()
            await fn()
            samples.append(perf_counter() - t0)
    finally:
        gc.enable()
    return statistics.median(samples)


async def main() -> None:
    runtime = AsyncLocalRuntime(max_concurrency=None)
    run = runtime.execute_workflow_async
    wf1, wf2, wf_chain, wf_fan = one_node(), producer_processor(), chain(), fan()
    cases = [
        ("1 node", lambda: run(wf1), hand_one, 5000),
        ("producer -> processor (2 connections)", lambda: run(wf2), hand_two, 5000),
        ("10-node chain", lambda: run(wf_chain), hand_chain, 2000),
        ("10-wide fan-out/fan-in", lambda: run(wf_fan), hand_fan, 2000),
        ("50 concurrent producer -> processor", lambda: asyncio.gather(*(run(wf2) for _ in range(50))),
         lambda: asyncio.gather(*(asyncio.ensure_future(hand_two()) for _ in range(50))), 300),
    ]
    rows = []
    for name, engine, hand, repeat in cases:
        engine_t = await measure(engine, repeat)
        hand_t = await measure(hand, repeat)
        rows.append((name, engine_t, hand_t))
    loop_name = type(asyncio.get_running_loop()).__name__
    print(f"Engine: median time per run (Python {sys.version.split()[0]}, {loop_name})")
    print(f"| {'workflow':<40} | {'kailash_nb':>11} | {'hand-written asyncio':>20} | {'ratio':>6} |")
    print(f"|{'-' * 42}|{'-' * 13}|{'-' * 22}|{'-' * 8}|")
    for name, engine_t, hand_t in rows:
        print(f"| {name:<40} | {_fmt(engine_t):>11} | {_fmt(hand_t):>20} | {engine_t / hand_t:>5.1f}x |")


def import_time() -> float:
    """Median wall time of ``import kailash_nb.workflow`` in a fresh interpreter, from ``-X importtime``."""
    import subprocess

    samples = []
    for _ in range(7):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import kailash_nb.workflow"],
                             capture_output=True, text=True, check=True).stderr
        line = next(ln for ln in reversed(err.splitlines()) if ln.rstrip().endswith("| kailash_nb.workflow"))
        samples.append(int(line.split("|")[1]) / 1e6)
    return statistics.median(samples)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    asyncio.run(main())
    print(f"\nimport kailash_nb.workflow: {import_time() * 1e3:.1f} ms median (python -X importtime, 7 runs)")
