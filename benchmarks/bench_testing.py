"""Testing-kit benchmark: what call tracking and the test case add on top of the bare tools.

    python benchmarks/bench_testing.py        (or: python -m benchmarks testing)

- a tracked mock call (``await proxy.fetch(1)`` through ``TrackedResource``) vs a bare ``AsyncMock`` call;
  the target is within 2x;
- ``execute_workflow`` through an ``AsyncWorkflowTestCase`` vs ``AsyncLocalRuntime.execute_workflow_async``.

Each pair is timed in alternating batches, so that a change of machine load hits both sides alike.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
from collections.abc import Awaitable, Callable
from time import perf_counter
from unittest.mock import AsyncMock

from kailash_nb.testing import AsyncWorkflowTestCase, CallTracker, TrackedResource
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

CALL_TARGET = 2.0


async def measure(kit: Callable[[], Awaitable[object]], plain: Callable[[], Awaitable[object]], calls: int,
                  reset: Callable[[], None], batch: int = 100) -> tuple[float, float]:
    """Median seconds per call of ``kit`` and of ``plain``, timed in alternating batches of ``batch``
    calls so that both see the same machine load; ``reset`` runs between rounds so that recorded calls
    do not pile up."""
    for fn in (kit, plain):
        for _ in range(min(500, calls)):
            await fn()
    reset()
    samples: dict[Callable[[], Awaitable[object]], list[float]] = {kit: [], plain: []}
    gc.disable()
    try:
        for round_number in range(calls // batch):
            for fn in (kit, plain) if round_number % 2 == 0 else (plain, kit):
                t0 = perf_counter()
                for _ in range(batch):
                    await fn()
                samples[fn].append((perf_counter() - t0) / batch)
            if round_number % 10 == 9:
                reset()
    finally:
        gc.enable()
        reset()
    return statistics.median(samples[kit]), statistics.median(samples[plain])


async def main() -> None:
    bare = AsyncMock()
    bare.fetch.return_value = 1
    tracked_target = AsyncMock()
    tracker = CallTracker()
    tracked = TrackedResource("db", tracked_target, tracker)
    tracked.fetch.return_value = 1

    def reset_mocks() -> None:
        bare.reset_mock()
        tracked_target.reset_mock()
        tracker.reset()

    workflow = (AsyncWorkflowBuilder("bench")
                .add_async_code("producer", "db = await get_resource('db'); result = {'v': await db.fetch(1)}")
                .add_async_code("consumer", "result = {'v': v + 1}")
                .add_connection("producer", "v", "consumer", "v")
                .build())
    runtime = AsyncLocalRuntime()
    case = AsyncWorkflowTestCase()
    async with case:
        db = await case.create_test_resource("db", None, mock=True)
        db.fetch.return_value = 1

        def reset_case() -> None:
            case.reset_calls()
            db.wrapped.reset_mock()

        mock_call = await measure(lambda: tracked.fetch(1), lambda: bare.fetch(1), 20000, reset_mocks)

        def reset_both() -> None:
            reset_case()
            reset_mocks()

        workflow_run = await measure(lambda: case.execute_workflow(workflow),
                                     lambda: runtime.execute_workflow_async(workflow, resources={"db": bare}),
                                     3000, reset_both, batch=20)
        rows = [
            ("mock call: await db.fetch(1)", *mock_call, "tracked", "bare AsyncMock"),
            ("2-node workflow with one mock call", *workflow_run, "test case", "runtime"),
        ]
    print(f"Testing kit: median time per call (Python {sys.version.split()[0]})")
    print(f"| {'operation':<36} | {'with the kit':>13} | {'without':>13} | {'ratio':>6} | compared with")
    print(f"|{'-' * 38}|{'-' * 15}|{'-' * 15}|{'-' * 8}|{'-' * 30}")
    for name, kit, plain, kit_label, plain_label in rows:
        print(f"| {name:<36} | {_fmt(kit):>13} | {_fmt(plain):>13} | {kit / plain:>5.2f}x | "
              f"{kit_label} vs {plain_label}")
    ratio = rows[0][1] / rows[0][2]
    verdict = "within" if ratio <= CALL_TARGET else "OVER"
    print(f"\ntracked mock call is {ratio:.2f}x a bare AsyncMock call: {verdict} the {CALL_TARGET:g}x target")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    asyncio.run(main())
