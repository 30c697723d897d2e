"""``interruptible()``: the loop-waking ticker lives exactly as long as the body, and cancellation passes."""

from __future__ import annotations

import asyncio

import pytest

from kailash_nb.notebook.interrupt import interruptible


def _tickers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_tick"]


def test_the_ticker_is_gone_when_the_body_ends() -> None:
    async def main() -> None:
        async with interruptible(interval=0.001):
            assert len(_tickers()) == 1
            await asyncio.sleep(0.005)
        assert _tickers() == []

    asyncio.run(main())


def test_the_ticker_is_gone_when_the_body_raises() -> None:
    async def main() -> None:
        with pytest.raises(LookupError):
            async with interruptible():
                raise LookupError("boom")
        assert _tickers() == []

    asyncio.run(main())


def test_cancelling_the_body_cancels_the_task_and_the_ticker() -> None:
    async def body() -> None:
        async with interruptible():
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(body())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled() and _tickers() == []

    asyncio.run(main())


def test_a_cancellation_that_arrives_while_the_ticker_is_awaited_is_not_swallowed() -> None:
    async def body(task: list[asyncio.Task[None]]) -> None:
        async with interruptible():
            asyncio.get_running_loop().call_soon(task[0].cancel)  # lands as the context manager exits

    async def main() -> None:
        holder: list[asyncio.Task[None]] = []
        task = asyncio.get_running_loop().create_task(body(holder))
        holder.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())
