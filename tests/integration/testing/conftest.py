"""Helpers for the PostgreSQL fixture tests: private servers and leak checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kailash_nb.testing.fixtures.postgres.embedded import runtime_base
from kailash_nb.testing.fixtures.postgres.runtime import runtime_dir_in

REPO = Path(__file__).resolve().parents[3]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or working directory mentions ``text`` (postgres -D <dir>, its backends,
    the reaper <dir>)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        try:
            cwd = os.readlink(entry / "cwd")  # postgres backends run in the data directory
        except OSError:
            cwd = ""
        if (text in cmdline or cwd.startswith(text)) and state != "Z":
            found.append(int(entry.name))
    return found


def sysv_shmid(data_dir: Path) -> int:
    """The System V shared memory id a running server records on line 7 of postmaster.pid."""
    return int((data_dir / "postmaster.pid").read_text().splitlines()[6].split()[1])


def sysv_segment_exists(shmid: int) -> bool:
    rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return any(int(row.split()[1]) == shmid for row in rows)


def wait_until_gone(runtime_dir: Path, timeout: float = 20.0) -> None:
    """Wait (bounded) until no process uses ``runtime_dir`` and the directory is removed, else fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes_mentioning(str(runtime_dir)) and not runtime_dir.exists():
            return
        time.sleep(0.05)
    left = sorted(p.name for p in runtime_dir.iterdir()) if runtime_dir.exists() else []
    pytest.fail(f"left behind: processes {processes_mentioning(str(runtime_dir))}, files {left}")


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A private runtime directory for a server of this test only, where the shared one would be
    (in memory on /dev/shm when it has room). Its parent is what KAILASH_NB_POSTGRES_RUNTIME_DIR names."""
    yield from _private_runtime_dir(runtime_base())


@pytest.fixture
def disk_runtime_dir() -> Iterator[Path]:
    """A private runtime directory under the temporary directory (the fallback without /dev/shm)."""
    yield from _private_runtime_dir(Path(tempfile.gettempdir()))


def _private_runtime_dir(base: Path) -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="knbpg-", dir=base))
    parent.chmod(0o711)  # as root, the server runs as an unprivileged user that must traverse it
    path = runtime_dir_in(parent)
    try:
        yield path
        wait_until_gone(path)
    finally:
        for pid in processes_mentioning(str(path)):  # only if the test failed: do not leak either way
            os.kill(pid, 9)
        shutil.rmtree(parent, ignore_errors=True)


def run_child(code: str, runtime_dir: Path, args: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start a child Python running ``code`` with the repository importable and the server of
    ``runtime_dir``; its stdin, stdout and stderr are pipes."""
    env = dict(os.environ, PYTHONPATH=str(REPO), KAILASH_NB_POSTGRES_RUNTIME_DIR=str(runtime_dir.parent))
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
