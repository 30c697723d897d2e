"""Start and stop one headless kernel so that neither flakes nor prints: the kit's only way to get a kernel.

- **Its output is its notebook's.** The kernel process writes its stdout and stderr (a warning at start, a
  traceback of ipykernel's own while it shuts down) into a temporary file of its own, never into the
  command's output. :attr:`Kernel.output` reads it back; the reports show it only when that notebook fails.
- **A start that fails for a reason outside the notebook is tried again on fresh ports.** jupyter_client
  picks free ports by binding and releasing them, and another process may take one before the kernel binds
  it (``ZMQError: Address already in use``): the kernel dies before it answers ``kernel_info``. Such a start,
  and any kernel that dies before answering, is retried on a new connection file, at most
  :data:`START_TRIES` times in all, with one line per retry. A kernel that answered is never restarted:
  a notebook that kills its kernel while a cell runs is reported as ``kernel died`` by the caller.
- **It stops in an order that does not race ipykernel's shutdown:** the client's channels first, then a
  shutdown request on the control channel, then a bounded wait, then SIGTERM and SIGKILL.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from kailash_nb.errors import KailashNbError

from .execute import KERNEL_ARGUMENTS, headless_kernel_env, kernel_manager

if TYPE_CHECKING:
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager

#: Starts of one kernel, first included, before the notebook is given up as "could not run".
START_TRIES = 3
#: A kernel asked to shut down gets half of this to exit on its own, then SIGTERM, then SIGKILL at the end.
SHUTDOWN_WAIT = 3.0
#: The most of a kernel's own output kept for a report (its end, where a traceback is).
OUTPUT_LIMIT = 20_000
#: What a kernel that lost the port race prints (pyzmq's message for EADDRINUSE).
PORT_IN_USE = "Address already in use"


class KernelStartError(KailashNbError, RuntimeError):
    """A kernel did not start: it died before answering, or did not answer within the start timeout.

    ``output`` is what the kernel printed (the end of it), ``tries`` how many starts were made.
    """

    def __init__(self, message: str, *, output: str = "", tries: int = 1) -> None:
        super().__init__(message)
        self.output = output
        self.tries = tries


def log_to_stderr(line: str) -> None:
    """The default for retry lines: the command's own stderr, one line each."""
    print(f"kailash-nb: {line}", file=sys.stderr, flush=True)


class KernelOutput:
    """A kernel's stdout and stderr, in an unnamed temporary file (gone when closed, or if the process dies)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (it lives as long as the kernel)

    def read(self) -> str:
        """The kernel's output so far (its last :data:`OUTPUT_LIMIT` characters)."""
        if self.file.closed:
            return ""
        self.file.flush()
        size = self.file.seek(0, 2)
        self.file.seek(max(0, size - OUTPUT_LIMIT * 4))
        text = self.file.read().decode("utf-8", errors="replace")
        return text[-OUTPUT_LIMIT:]

    def close(self) -> None:
        self.file.close()


@dataclass(slots=True)
class Kernel:
    """A running kernel: its manager, a client with started channels, and its captured output."""

    manager: AsyncKernelManager
    client: AsyncKernelClient
    captured: KernelOutput

    @property
    def output(self) -> str:
        """What the kernel process printed so far (not the cells' outputs: those come as messages)."""
        return self.captured.read()


async def start_kernel(cwd: Path, startup_timeout: float, *, name: str = "",
                       log: Callable[[str], None] = log_to_stderr) -> Kernel:
    """A fresh kernel of this interpreter in ``cwd``, ready to execute.

    A kernel that dies before it answers ``kernel_info``, or that could not bind one of its ports (exiting,
    if not yet gone), is started again on fresh ports, up to :data:`START_TRIES` starts; ``log`` gets one line
    per retry, naming ``name`` (the notebook).
    Raises :class:`KernelStartError` when no start succeeded; nothing is left running.
    """
    for attempt in range(1, START_TRIES + 1):
        captured = KernelOutput()
        manager = kernel_manager()
        manager.shutdown_wait_time = SHUTDOWN_WAIT
        client: AsyncKernelClient | None = None
        try:
            await manager.start_kernel(cwd=str(cwd), env=headless_kernel_env(), extra_arguments=KERNEL_ARGUMENTS,
                                       stdout=captured.file, stderr=captured.file)
            client = manager.client()
            client.start_channels()
            await client.wait_for_ready(timeout=startup_timeout)
        except BaseException as exc:
            died = not await _alive(manager)
            if client is not None:
                await _stop(manager, client, now=True)
            else:
                await _release(manager)
            output = captured.read()
            captured.close()
            if not isinstance(exc, Exception):
                raise  # cancelled or interrupted: no retry, nothing left behind
            cause = _cause(exc, output, died, startup_timeout, launched=client is not None)
            # A kernel that could not bind its port is exiting: it may not have gone yet when asked (it was
            # stopped above all the same), and it lost the port race as surely as one already dead.
            lost_port = PORT_IN_USE in output or PORT_IN_USE in str(exc)
            if (died or lost_port) and attempt < START_TRIES:
                log(f"{name or cwd}: the kernel {cause}; starting it again on fresh ports "
                    f"(try {attempt + 1} of {START_TRIES})")
                continue
            tries = f" ({attempt} tries)" if attempt > 1 else ""
            raise KernelStartError(f"the kernel {cause}{tries}", output=output, tries=attempt) from exc
        return Kernel(manager, client, captured)
    raise AssertionError("unreachable")  # pragma: no cover


async def stop_kernel(kernel: Kernel, *, now: bool = False) -> None:
    """Shut the kernel down and release its channels, files and captured output.

    Politely unless ``now``: the client's channels are stopped first (no socket of ours is left for a
    message that ipykernel sends while it exits), then the shutdown request, then a bounded wait before
    SIGTERM and SIGKILL. ``now`` kills at once (a hung or dead kernel).
    """
    try:
        await _stop(kernel.manager, kernel.client, now=now)
    finally:
        kernel.captured.close()


async def _stop(manager: AsyncKernelManager, client: AsyncKernelClient, *, now: bool) -> None:
    with contextlib.suppress(Exception):
        client.stop_channels()
    try:
        if await _alive(manager):
            manager.shutting_down = True
            if now:
                await manager.shutdown_kernel(now=True)
            else:
                await manager.request_shutdown()
                await manager.finish_shutdown(waittime=SHUTDOWN_WAIT)
    except RuntimeError:  # "No kernel is running!": it died on its own meanwhile
        pass
    finally:
        await _release(manager)


async def _release(manager: AsyncKernelManager) -> None:
    """The connection file, the control socket, the context, the ports: whatever the manager holds."""
    with contextlib.suppress(Exception):
        if await _alive(manager):
            await manager.shutdown_kernel(now=True)
    with contextlib.suppress(Exception):
        await manager.cleanup_resources()


async def _alive(manager: AsyncKernelManager) -> bool:
    try:
        return bool(await manager.is_alive())
    except Exception:
        return False


def _cause(exc: Exception, output: str, died: bool, startup_timeout: float, *, launched: bool) -> str:
    """Why a start failed, in words: the port race, a death with the kernel's last line, or a timeout."""
    if PORT_IN_USE in output or PORT_IN_USE in str(exc):
        return f"could not bind its port ({PORT_IN_USE})"
    if not launched:
        return f"could not be launched: {type(exc).__name__}: {exc}"
    if died:
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
        return f"died before answering ({last})" if last else "died before answering"
    if isinstance(exc, TimeoutError) or "didn't respond" in str(exc):
        return f"did not answer within {startup_timeout:g} s"
    return f"did not start: {type(exc).__name__}: {exc}"
