"""The embedded PostgreSQL under virtual time: real queries answer, virtual sleeps take no real time."""

from __future__ import annotations

import asyncio

import pytest

from kailash_nb.testing import virtual_time
from kailash_nb.testing.fixtures.postgres import TestDatabase


def test_100_queries_interleaved_with_30_s_of_virtual_sleeps_all_answer(postgres_db: TestDatabase) -> None:
    async def main() -> tuple[list[int], int, float, list[int]]:
        pool = await postgres_db.pool()
        answers: list[int] = []
        timeouts = 0
        ticks: list[int] = []

        async def ticking() -> None:  # another task's timers keep firing while queries are in flight
            for tick in range(100):
                await asyncio.sleep(0.5)
                ticks.append(tick)

        async with virtual_time() as clock:
            start = clock.now
            ticker = asyncio.create_task(ticking())
            for i in range(100):
                try:
                    answers.append(await asyncio.wait_for(pool.fetchval("select $1::int * 2", i), 5))
                except TimeoutError:
                    timeouts += 1
                await asyncio.sleep(0.3)
            elapsed = clock.now - start
            ticker.cancel()
        return answers, timeouts, elapsed, ticks

    answers, timeouts, elapsed, ticks = asyncio.run(main())
    assert timeouts == 0
    assert answers == [2 * i for i in range(100)]
    assert elapsed == pytest.approx(30, abs=0.5)
    assert len(ticks) >= 59  # the other task slept through the same 30 virtual seconds


def test_a_workflow_reading_postgres_with_retries_on_virtual_time(postgres_db: TestDatabase) -> None:
    from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder

    workflow = (
        AsyncWorkflowBuilder("poll")
        .add_async_code("poll", """
            pool = await get_resource('db')
            await pool.execute('create table if not exists jobs (id int, done bool)')
            await pool.execute('insert into jobs values (1, false)')
            polls = 0
            while not await pool.fetchval('select done from jobs where id = 1'):
                polls += 1
                if polls == 3:
                    await pool.execute('update jobs set done = true where id = 1')
                await asyncio.sleep(60)        # poll once a minute
            result = {'polls': polls}
        """)
        .build()
    )

    async def main() -> tuple[str, dict[str, object], float]:
        pool = await postgres_db.pool()
        result = await AsyncLocalRuntime(virtual_time=True).execute_workflow_async(workflow, resources={"db": pool})
        return result.status, result.outputs.get("poll", {}), result.execution_time

    status, output, seconds = asyncio.run(main())
    assert (status, output) == ("success", {"polls": 3})
    assert seconds == pytest.approx(180, abs=0.5)
