"""Execute many notebooks at once on one event loop, each on its own fresh kernel, cell by cell.

``kailash-nb check`` and ``update`` need, for every code cell, the outputs it produces now, how long it
took and how it ended. :func:`execute_notebooks` runs the notebooks ``workers`` at a time, in the order
given (the caller puts the longest first), and starts the kernel of the next notebook while the current
ones run, so a worker never waits for a kernel to boot. Cells run through nbclient's
``async_execute_cell``; a kernel that dies and a cell that hangs past the cell timeout end that notebook
at once, naming the cell, and the kernel is always shut down: nothing outlives the run. Kernels start,
stop and keep their own output as ``kernel.py`` says: a start lost to a port race is retried, a kernel that
dies while a cell runs never is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from .kernel import Kernel, KernelStartError, log_to_stderr, start_kernel, stop_kernel

if TYPE_CHECKING:
    from nbformat import NotebookNode

#: How a code cell's execution ended. "raised" says nothing yet about whether the cell was meant to.
Ending = Literal["ran", "raised", "timed out", "kernel died", "not run", "skipped"]


@dataclass(slots=True)
class CellRun:
    """One code cell of a run: its new outputs and how its execution ended."""

    index: int  # position among all the notebook's cells, from 0
    ending: Ending
    outputs: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    reason: str = ""  # why a cell did not run, or how it timed out


@dataclass(slots=True)
class NotebookRun:
    """A notebook as stored (``stored``, never modified) and what each code cell did now."""

    path: Path
    stored: NotebookNode | None
    cells: dict[int, CellRun] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None  # the notebook could not be run at all
    kernel_output: str = ""  # what the kernel process printed itself, shown only if the notebook fails


async def run_cells(path: Path, stored: NotebookNode, kernel: Kernel, *, skip: frozenset[int],
                    cell_timeout: float) -> dict[int, CellRun]:
    """Execute the code cells of a copy of ``stored`` in turn on ``kernel``; ``skip`` holds cell indexes
    not to run. A timeout or a dead kernel ends the run: the remaining cells are ``not run``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    work = nbformat.from_dict(stored)
    client = NotebookClient(work, km=kernel.manager, allow_errors=True, record_timing=False,
                            timeout_func=lambda cell: cell_timeout)
    client.kc = kernel.client
    client.reset_execution_trackers()
    runs: dict[int, CellRun] = {}
    stopped = ""
    for index, cell in enumerate(work.cells):
        if cell.cell_type != "code":
            continue
        if stopped:
            runs[index] = CellRun(index, "not run", reason=stopped)
            continue
        if index in skip:
            runs[index] = CellRun(index, "skipped", reason="NBVAL_SKIP")
            continue
        cell.outputs = []
        started = perf_counter()
        ending: Ending
        reason = ""
        try:
            await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        except CellTimeoutError:
            ending, reason = "timed out", f"no result after the cell timeout of {cell_timeout:g} s"
            stopped = f"not run: cell {index + 1} timed out"
        except DeadKernelError:
            ending, reason = "kernel died", "the kernel died while the cell ran"
            stopped = f"not run: the kernel died in cell {index + 1}"
        else:
            ending = "raised" if any(o.get("output_type") == "error" for o in cell.outputs) else "ran"
        runs[index] = CellRun(index, ending, list(cell.outputs), perf_counter() - started, reason)
    return runs


async def execute_notebooks(
    paths: Sequence[Path],
    *,
    workers: int = 1,
    cell_timeout: float,
    startup_timeout: float = 60.0,
    skip: Callable[[NotebookNode], frozenset[int]] = lambda nb: frozenset(),
    on_done: Callable[[NotebookRun], Awaitable[None] | None] | None = None,
    log: Callable[[str], None] = log_to_stderr,
) -> list[NotebookRun]:
    """Run ``paths`` (in this order, ``workers`` at a time) and return their runs in the same order.

    The kernel for the next waiting notebook starts while the others run. ``skip(nb)`` gives the indexes
    of the cells not to run; ``on_done`` is called as each notebook finishes (for progress output);
    ``log`` gets a line for each kernel start that is retried.
    """
    waiting = deque(paths)
    booting: dict[Path, asyncio.Task[Kernel]] = {}
    stopping: set[asyncio.Task[None]] = set()
    runs: dict[Path, NotebookRun] = {}

    def boot_ahead() -> None:
        for path in list(waiting)[:workers]:
            if path not in booting and path.is_file():
                booting[path] = boot(path)

    def boot(path: Path) -> asyncio.Task[Kernel]:
        return asyncio.ensure_future(start_kernel(path.parent, startup_timeout, name=str(path), log=log))

    async def run_one(path: Path) -> NotebookRun:
        import nbformat  # after the first kernels started booting: its import takes a while

        started = perf_counter()
        try:
            stored = nbformat.read(path, as_version=4)
        except Exception as exc:  # unreadable JSON, not a notebook, a folder...
            await _drop(booting.pop(path, None))
            return NotebookRun(path, None, error=f"cannot read {path} as a notebook: {exc}")
        booted = booting.pop(path, None) or boot(path)
        try:
            kernel = await booted
        except KernelStartError as exc:
            return NotebookRun(path, stored, error=str(exc), seconds=perf_counter() - started,
                               kernel_output=exc.output)
        except Exception as exc:
            return NotebookRun(path, stored, error=f"the kernel did not start: {type(exc).__name__}: {exc}",
                               seconds=perf_counter() - started)
        try:
            cells = await run_cells(path, stored, kernel, skip=skip(stored), cell_timeout=cell_timeout)
        except BaseException:
            await stop_kernel(kernel, now=True)
            raise
        seconds = perf_counter() - started
        output = kernel.output  # what it printed while the cells ran; not what it prints while it exits
        # The next notebook need not wait for this kernel to exit: stop it in the background.
        hard_stop = any(run.ending in ("timed out", "kernel died") for run in cells.values())
        stopping.add(asyncio.ensure_future(stop_kernel(kernel, now=hard_stop)))
        return NotebookRun(path, stored, cells, seconds, kernel_output=output)

    async def worker() -> None:
        while waiting:
            path = waiting.popleft()
            boot_ahead()
            run = await run_one(path)
            runs[path] = run
            if on_done is not None:
                outcome = on_done(run)
                if outcome is not None:
                    await outcome

    boot_ahead()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(workers, len(waiting)))):
                group.create_task(worker())
    finally:
        for task in booting.values():
            await _drop(task)
        if stopping:
            await asyncio.wait(stopping)
    return [runs[path] for path in paths if path in runs]


async def _drop(task: asyncio.Task[Kernel] | None) -> None:
    """A kernel started ahead that will not be used: cancel its start, or stop it if it is up."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait([task])
    if not task.cancelled() and task.exception() is None:
        await stop_kernel(task.result(), now=True)
