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
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kailash_nb.errors import KailashNbError


class OutputPathError(KailashNbError, ValueError):
    """An output path (``--junitxml``, ``--report``, ``--html``) that would overwrite a notebook, or that
    names a folder where a file is wanted (or the other way round)."""


class FileChangedError(KailashNbError, RuntimeError):
    """A file changed on disk after it was read, so writing what was computed from it would lose the change."""


class FileLockedError(KailashNbError, RuntimeError):
    """Another process holds the lock of a file that this one means to rewrite."""


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *,
                     unchanged: Snapshot | None = None) -> Path:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8) in one rename, keeping the file's mode.

    The temporary file is made in the same folder (a rename is atomic only within one file system) and
    removed again when anything fails, so the old file is left byte for byte. A new file gets the usual
    mode (0666 minus the umask); a read-only file is not replaced (``PermissionError``). A symlink stays a
    symlink: the file it points to is replaced. With ``unchanged``, the file must still be that snapshot
    just before the rename, else :class:`FileChangedError`.
    """
    target = Path(os.path.realpath(path))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None and (not stat.S_IMODE(old.st_mode) & 0o222 or not os.access(target, os.W_OK)):
        # Renaming over it would work (the folder is writable), but whoever made it read-only meant it.
        raise PermissionError(errno.EACCES, "the file is read-only", str(path))
    temporary, handle = _temporary_file(target)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        if old is not None:
            os.chmod(temporary, stat.S_IMODE(old.st_mode))
            if (old.st_uid, old.st_gid) != _owner(temporary):
                with contextlib.suppress(OSError):  # only root may give a file away; the mode is what matters
                    os.chown(temporary, old.st_uid, old.st_gid)
        if unchanged is not None:
            unchanged.verify()
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)
    return Path(path)


def _temporary_file(target: Path) -> tuple[Path, int]:
    """A new, empty, hidden file next to ``target``; created with mode 0666 so that the umask applies."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue


def _owner(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_uid, info.st_gid


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform can open a folder)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


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
