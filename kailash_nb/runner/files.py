"""Writing files that may be a user's: never half-written, never over a notebook, never over someone's edit.

Every file the runner writes (a notebook ``update`` edits, the check report, JUnit XML, the HTML of ``run``,
the durations file) goes through :func:`write_atomically`: the bytes go to a temporary file in the same
folder, which then replaces the old file in one rename, with the old file's mode. A write that fails (a
full disk, a file size limit, a folder the process cannot write, a kill) leaves the old file byte for byte.

``update`` also takes a :class:`Snapshot` of a notebook before it runs it and holds its :func:`lock` until
it has written: the new outputs are written only into the very content that ran, and two ``update``
processes never edit one notebook at once (the second refuses at once; it never waits).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kailash_nb.atomic import write_atomically
from kailash_nb.errors import KailashNbError

__all__ = ["FileChangedError", "FileLockedError", "OutputPathError", "Snapshot", "lock", "refuse_unsafe_output",
           "write_atomically"]


class OutputPathError(KailashNbError, ValueError):
    """An output path (``--junitxml``, ``--report``, ``--html``) that would overwrite a notebook, or that
    names a folder where a file is wanted (or the other way round)."""


class FileChangedError(KailashNbError, RuntimeError):
    """A file changed on disk after it was read, so writing what was computed from it would lose the change."""


class FileLockedError(KailashNbError, RuntimeError):
    """Another process holds the lock of a file that this one means to rewrite."""


@dataclass(slots=True, frozen=True)
class Snapshot:
    """A file's content, as a SHA-256 digest, at the moment it was read."""

    path: Path
    digest: str

    @classmethod
    def take(cls, path: str | os.PathLike[str]) -> Snapshot:
        return cls(Path(path), _digest(Path(path).read_bytes()))

    def read(self) -> bytes:
        """The file's bytes, which must still be the snapshot's, else :class:`FileChangedError`."""
        data = self.path.read_bytes()
        if _digest(data) != self.digest:
            raise FileChangedError(f"{self.path} changed on disk since it was read for this run: "
                                   "not written, so that the change is kept; run again to include it")
        return data

    def verify(self) -> None:
        self.read()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on ``path`` itself, or refuse at once if another process
    holds it: no lock file is left behind. Where there is no ``fcntl`` (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileLockedError(f"{path} is being updated by another process (kailash-nb update holds its "
                                  "lock): run again when that one has finished") from None
        yield
    finally:
        os.close(handle)  # closing the last descriptor releases the lock


def refuse_unsafe_output(option: str, path: str | os.PathLike[str], inputs: Iterable[Path] = (), *,
                         folder: bool = False) -> None:
    """Refuse an output path before anything runs: one that is a notebook (named as an input, or any
    ``.ipynb``), a file where a folder is wanted (``folder``), or a folder where a file is wanted."""
    given = Path(path)
    if given.suffix.lower() == ".ipynb" or any(_same_file(given, notebook) for notebook in inputs):
        raise OutputPathError(f"{option} {path}: that is a notebook, which the output would overwrite; "
                              f"name another {'folder' if folder else 'file'}")
    if folder and given.exists() and not given.is_dir():
        raise OutputPathError(f"{option} {path}: that is a file; {option} names the folder to write into")
    if not folder and given.is_dir():
        raise OutputPathError(f"{option} {path}: that is a folder; {option} names the file to write")
    for parent in given.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder")
            break


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.absolute() == b.absolute()
