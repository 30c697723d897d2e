"""Seeded schedules: how fast ``explore_schedules`` runs a workflow under many interleavings.

    python benchmarks/bench_schedules.py        (or: python -m benchmarks schedules)

1,000 schedules of a 10-node workflow (five independent pairs) making 20 awaited resource calls, on
virtual time: the target is under 10 s on one core.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from kailash_nb.testing import explore_schedules
from kailash_nb.workflow import AsyncWorkflowBuilder

TARGET = 10.0
RUNS = 1000


class Store:
    def __init__(self) -> None:
        self.data: dict[str, int] = {}

    async def get(self, key: str) -> int:
        return self.data.get(key, 0)

    async def put(self, key: str, value: int) -> None:
        self.data[key] = value


builder = AsyncWorkflowBuilder("pairs")
for pair in range(5):
    builder.add_async_code(f"write_{pair}", f"""
        store = await get_resource("store")
        await store.put("k{pair}", {pair})
        result = {{"v": await store.get("k{pair}")}}
    """)
    builder.add_async_code(f"read_{pair}", f"""
        store = await get_resource("store")
        await store.put("seen{pair}", v)
        result = {{"v": await store.get("k{pair}")}}
    """)
    builder.add_connection(f"write_{pair}", "v", f"read_{pair}", "v")
WORKFLOW = builder.build()


async def main() -> int:
    started = perf_counter()
    report = await explore_schedules(WORKFLOW, resources={"store": Store}, runs=RUNS)
    seconds = perf_counter() - started
    calls = len(report.passing_calls)
    print("| schedules | nodes | resource calls per run | outcomes | time | per schedule | target | ok |")
    print("|--:|--:|--:|--:|--:|--:|---|---|")
    print(f"| {RUNS} | {len(WORKFLOW.nodes)} | {calls} | {len(report.outcomes)} | {seconds:.2f} s | "
          f"{seconds / RUNS * 1e3:.2f} ms | < {TARGET:g} s | {'yes' if seconds < TARGET and calls == 20 else 'NO'} |")
    return 0 if seconds < TARGET and calls == 20 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
