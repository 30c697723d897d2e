"""An event loop whose clock the test moves, to pin what happens exactly at a time limit."""

import asyncio
from collections.abc import Iterator

import pytest


class ManualClockLoop(asyncio.SelectorEventLoop):
    """``time()`` stays where the test puts it (``loop.now``): instants are exact and nothing waits for real time.
    Code run on it must not sleep for a positive time (no timer becomes due unless the test moves the clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def manual_clock() -> Iterator[asyncio.Runner]:
    """``manual_clock.run(main())`` runs ``main()`` on a ``ManualClockLoop`` that starts at 0."""
    with asyncio.Runner(loop_factory=ManualClockLoop) as runner:
        yield runner
