"""Soak: kernel starts, ``kailash-nb check -n 2`` and strict ``pytest --nbval``, again and again, under load.

    python -m benchmarks soak [--starts N] [--at-once K] [--checks N] [--nbval N] [--load P]
                              [--connections C] [--time-limit SECONDS] [PATH ...]

While it runs, ``--load`` busy processes keep the CPUs loaded, and ephemeral ports are taken and released
all the time as jupyter_client picks the kernels' ports, the port race behind "ZMQError: Address already
in use": a thread keeps up to ``--connections`` loopback TCP connections open, opening a new one and
closing the oldest, and another binds ``--binds`` free ports a second and listens on each for a moment, as
other processes starting kernels do. (Linux hands ``connect()`` even ports and ``bind()`` to port 0 odd
ones, so the kernels' ports, chosen by ``bind()``, mostly race with the second kind.) All of it stops when
the soak ends, on 127.0.0.1 only. Then, in turn:

1. ``--starts`` kernel starts through the kit (``kailash_nb.runner.kernel``), ``--at-once`` at a time, each
   stopped again; this process's stderr is watched meanwhile;
2. ``--checks`` runs of ``kailash-nb check -n 2 --no-report PATH...``;
3. ``--nbval`` runs of strict ``pytest --nbval --nbval-current-env --nbval-sanitize-with=...``.

It prints, for each: kernels started, retried starts (the one-line notes the kit prints), stray stderr
lines (anything else on stderr: a kernel's traceback leaking into the command's output) and failures (a
kernel that did not start, a command that did not exit 0). Goal: 0 failures and 0 stray lines in 500
starts, 20 checks and 20 nbval runs, the defaults. It runs only when named: ``python -m benchmarks soak``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RETRY = re.compile(r"starting it again on fresh ports \(try \d of \d\)")
#: SO_LINGER on, 0 s: a closed connection is reset, so its port is free at once (no TIME_WAIT pile-up).
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


@dataclass(slots=True)
class Tally:
    """What one phase saw."""

    name: str
    runs: int = 0
    kernels: int = 0
    retries: int = 0
    stray: int = 0
    failures: int = 0
    skipped: int = 0  # runs not made: the time limit passed
    seconds: float = 0.0
    first_failure: str = ""

    def row(self) -> str:
        runs = f"{self.runs}" + (f" (+{self.skipped} skipped)" if self.skipped else "")
        return (f"| {self.name:<27} | {runs:>6} | {self.kernels:>7} | {self.retries:>7} | {self.stray:>12} | "
                f"{self.failures:>8} | {self.seconds:7.0f} s |")


class PortChurn:
    """Keeps up to ``limit`` loopback connections open, opening a new one and closing the oldest all the time
    (at most ``rate`` a second). Closed connections are reset, not left in TIME_WAIT: the ports taken at any
    moment are the ``limit`` open ones, so the machine's ephemeral ports are never used up."""

    def __init__(self, limit: int, rate: float = 200.0) -> None:
        self.limit = limit
        self.pause = 1.0 / rate
        self.made = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=max(16, limit))
        self._listener.settimeout(0.2)
        self._threads = [threading.Thread(target=self._accept, daemon=True),
                         threading.Thread(target=self._connect, daemon=True)]

    def __enter__(self) -> PortChurn:
        if self.limit > 0:
            for thread in self._threads:
                thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        self._listener.close()

    def _accept(self) -> None:
        accepted: deque[socket.socket] = deque()
        try:
            while not self._stop.is_set():
                try:
                    connection, _ = self._listener.accept()
                except (TimeoutError, OSError):
                    continue
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
                accepted.append(connection)
                while len(accepted) > self.limit:
                    accepted.popleft().close()
        finally:
            for connection in accepted:
                connection.close()

    def _connect(self) -> None:
        address = self._listener.getsockname()
        opened: deque[socket.socket] = deque()
        try:
            while not self._stop.is_set():
                client = socket.socket()
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
                try:
                    client.connect(address)
                except OSError:
                    client.close()
                    time.sleep(0.01)
                    continue
                opened.append(client)
                self.made += 1
                while len(opened) > self.limit:
                    opened.popleft().close()
                time.sleep(self.pause)
        finally:
            for client in opened:
                client.close()


class PortTaker:
    """Binds a free loopback port (port 0) ``rate`` times a second and listens on it for ``hold`` seconds,
    as another process choosing ports for its kernels does; at most ``rate * hold`` ports at a time."""

    def __init__(self, rate: float, hold: float = 0.2) -> None:
        self.rate = rate
        self.hold = hold
        self.taken = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._take, daemon=True)

    def __enter__(self) -> PortTaker:
        if self.rate > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _take(self) -> None:
        held: deque[tuple[float, socket.socket]] = deque()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                while held and held[0][0] <= now:
                    held.popleft()[1].close()
                listener = socket.socket()
                try:
                    listener.bind(("127.0.0.1", 0))
                    listener.listen()
                except OSError:
                    listener.close()
                else:
                    held.append((now + self.hold, listener))
                    self.taken += 1
                time.sleep(1.0 / self.rate)
        finally:
            for _, listener in held:
                listener.close()


@contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """``processes`` busy loops, for as long as the block runs."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()


@contextmanager
def watched_stderr() -> Iterator[list[str]]:
    """This process's fd 2 into a temporary file for the block; the list gets its lines afterwards."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode("utf-8", errors="replace").splitlines()


def kernel_starts(count: int, at_once: int, deadline: float) -> Tally:
    from kailash_nb.runner.kernel import KernelStartError, start_kernel, stop_kernel

    tally = Tally(f"kernel starts ({at_once} at a time)")
    notes: list[str] = []

    async def one(index: int, gate: asyncio.Semaphore, folder: Path) -> None:
        async with gate:
            if time.monotonic() > deadline:
                tally.skipped += 1
                return
            tally.runs += 1
            try:
                kernel = await start_kernel(folder, 120.0, name=f"start {index + 1}", log=notes.append)
            except KernelStartError as exc:
                tally.failures += 1
                tally.first_failure = tally.first_failure or f"start {index + 1}: {exc}"
                return
            tally.kernels += 1
            await stop_kernel(kernel)

    async def main() -> None:
        gate = asyncio.Semaphore(at_once)
        with tempfile.TemporaryDirectory(prefix="kailash_nb_soak_") as folder:
            await asyncio.gather(*(one(index, gate, Path(folder)) for index in range(count)))

    started = time.perf_counter()
    with watched_stderr() as stray:
        asyncio.run(main())
    tally.seconds = time.perf_counter() - started
    tally.retries = sum(bool(RETRY.search(note)) for note in notes)
    tally.stray = len([line for line in stray if line.strip()])
    if stray and not tally.first_failure:
        tally.first_failure = f"stray stderr: {stray[0]}"
    return tally


def command_runs(name: str, command: list[str], runs: int, kernels_per_run: int, deadline: float) -> Tally:
    """``runs`` runs of ``command`` in the repository; stderr lines other than retry notes are stray."""
    tally = Tally(name)
    env = {key: value for key, value in os.environ.items()
           if key not in ("JPY_SESSION_NAME", "FORCE_COLOR", "PY_COLORS") and not key.startswith("PYTEST")}
    started = time.perf_counter()
    for _ in range(runs):
        if time.monotonic() > deadline:
            tally.skipped += 1
            continue
        tally.runs += 1
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        tally.kernels += kernels_per_run
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        retried = [line for line in lines if RETRY.search(line)]
        tally.retries += len(retried)
        tally.stray += len(lines) - len(retried)
        if run.returncode != 0:
            tally.failures += 1
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
            tally.first_failure = tally.first_failure or f"{name}: exit {run.returncode}\n{tail}"
        elif len(lines) > len(retried) and not tally.first_failure:
            tally.first_failure = f"{name}: stray stderr: {next(line for line in lines if not RETRY.search(line))}"
    tally.seconds = time.perf_counter() - started
    return tally


def count_notebooks(paths: list[str]) -> int:
    total = 0
    for given in paths:
        path = ROOT / given
        total += sum(1 for _ in path.rglob("*.ipynb")) if path.is_dir() else 1
    return total


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=500, help="kernel starts (default %(default)s)")
    parser.add_argument("--at-once", type=int, default=8, help="kernels starting at once (default %(default)s)")
    parser.add_argument("--checks", type=int, default=20, help="runs of check -n 2 (default %(default)s)")
    parser.add_argument("--nbval", type=int, default=20, help="runs of strict pytest --nbval (default %(default)s)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1,
                        help="busy-loop processes meanwhile (default: one per CPU, %(default)s)")
    parser.add_argument("--connections", type=int, default=200,
                        help="loopback connections kept open and rotated meanwhile (default %(default)s)")
    parser.add_argument("--churn-rate", type=float, default=200.0,
                        help="loopback connections opened per second at most (default %(default)g)")
    parser.add_argument("--binds", type=float, default=200.0,
                        help="free loopback ports bound and listened on per second, 0.2 s each "
                             "(default %(default)g)")
    parser.add_argument("--time-limit", type=float, default=3 * 3600.0, metavar="SECONDS",
                        help="start no new run after this long (default %(default)g)")
    parser.add_argument("paths", nargs="*", default=["notebooks"], help="notebooks for check and nbval")
    args = parser.parse_args(argv)
    from kailash_nb.notebook import sanitize_file_path

    deadline = time.monotonic() + args.time_limit
    notebooks = count_notebooks(args.paths)
    check = [sys.executable, "-m", "kailash_nb.cli", "check", "-n", "2", "--no-report", *args.paths]
    nbval = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
             f"--nbval-sanitize-with={sanitize_file_path()}", "-p", "no:cacheprovider", "-q", *args.paths]
    with cpu_load(args.load), PortChurn(args.connections, args.churn_rate) as churn, PortTaker(args.binds) as taker:
        tallies = [kernel_starts(args.starts, args.at_once, deadline)]
        tallies.append(command_runs("kailash-nb check -n 2", check, args.checks, notebooks, deadline))
        tallies.append(command_runs("pytest --nbval (strict)", nbval, args.nbval, notebooks, deadline))

    print(f"Soak: {os.cpu_count()} cores, {args.load} busy process(es), up to {args.connections} loopback "
          f"connections rotating ({churn.made} made), {taker.taken} ports bound for 0.2 s each, "
          f"{notebooks} notebook(s) in {' '.join(args.paths)}")
    print()
    print("| phase                       |   runs | kernels | retries | stray stderr | failures |      time |")
    print("|-----------------------------|-------:|--------:|--------:|-------------:|---------:|----------:|")
    for tally in tallies:
        print(tally.row())
    failures = sum(t.failures for t in tallies)
    stray = sum(t.stray for t in tallies)
    print()
    print(f"{failures} failure(s), {stray} stray stderr line(s), {sum(t.retries for t in tallies)} retried start(s)"
          f": goal {'met' if failures == stray == 0 else 'MISSED'}")
    for tally in tallies:
        if tally.first_failure:
            print(f"first problem in {tally.name}: {tally.first_failure}")
    return 1 if failures or stray else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
