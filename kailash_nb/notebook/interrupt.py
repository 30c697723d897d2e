"""Keep Ctrl-C (a kernel interrupt) prompt while a magic awaits on the kernel's loop.

ipykernel turns SIGINT during an async cell into cancelling the cell's task, but schedules that with
a loop callback that does not wake a loop asleep in ``select()`` (ipykernel issue #881): a workflow
waiting on I/O would only be cancelled when something else woke the loop. While a magic awaits, a
ticker wakes the loop a few times a second so the cancellation is seen at once. It only sleeps, and not
while the loop is on virtual time, whose clock wakes the loop on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

TICK_SECONDS = 0.1


async def _tick(interval: float) -> None:
    from kailash_nb.workflow import running_clock

    while True:
        clock = running_clock()
        if clock is None:
            await asyncio.sleep(interval)
        else:  # virtual time wakes the loop itself; a ticking timer would only cut its jumps short
            await clock.left()


@asynccontextmanager
async def interruptible(interval: float = TICK_SECONDS) -> AsyncIterator[None]:
    """Run the body with the loop woken every ``interval`` seconds.

    On the way out the ticker is cancelled and waited for, so no half-cancelled task outlives the
    body. ``asyncio.wait`` never raises the ticker's own ``CancelledError``, only one aimed at the
    task running the body, so an outer cancellation (Ctrl-C) still propagates.
    """
    ticker = asyncio.get_running_loop().create_task(_tick(interval))
    try:
        yield
    finally:
        ticker.cancel()
        await asyncio.wait([ticker])
