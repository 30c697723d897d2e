"""Writing a user's file atomically: the new bytes, or the old file byte for byte, never half of either.

Every file the kit writes for a user (a notebook ``update`` edits, reports, cassettes) goes through
:func:`write_atomically`. Like :mod:`kailash_nb.errors`, this module imports only the standard library,
so every layer can use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

__all__ = ["write_atomically"]


class Unchanged(Protocol):
    """A check that a file is still what was read (the runner's ``Snapshot``)."""

    def verify(self) -> None:
        """Raise if the file changed on disk since it was read."""


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *,
                     unchanged: Unchanged | None = None) -> Path:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8) in one rename, keeping the file's mode.

    The temporary file is made in the same folder (a rename is atomic only within one file system) and
    removed again when anything fails, so the old file is left byte for byte. A new file gets the usual
    mode (0666 minus the umask); a read-only file is not replaced (``PermissionError``). A symlink stays a
    symlink: the file it points to is replaced. With ``unchanged``, ``unchanged.verify()`` runs just before
    the rename (the runner's ``Snapshot`` raises ``FileChangedError`` there).
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
