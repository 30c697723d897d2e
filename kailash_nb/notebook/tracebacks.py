"""What a failing or interrupted magic shows: the node's own lines, not the frames of the kit.

An error raised by node code reaches the cell through the magic, the session and the engine; a
traceback of all of that buries the one line that matters. The magics hand their errors through
``for_cell`` (the traceback starts at the node's code and leaves out the kit's frames) and turn a
kernel interrupt into ``KeyboardInterrupt`` with ``interrupted``, as a plain cell shows it.
"""

from __future__ import annotations

import asyncio
import os
import sysconfig
from collections.abc import Iterator, Mapping
from types import TracebackType

import kailash_nb
from kailash_nb.errors import KailashNbError

_KIT = os.path.dirname(os.path.abspath(kailash_nb.__file__)) + os.sep
_PATHS = sysconfig.get_paths()
_STDLIB = os.path.abspath(_PATHS["stdlib"]) + os.sep
_INSTALLED = tuple({os.path.abspath(_PATHS[key]) + os.sep for key in ("purelib", "platlib")})


def _entries(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _filename(entry: TracebackType) -> str:
    return entry.tb_frame.f_code.co_filename


def _in_kit(entry: TracebackType) -> bool:
    return os.path.abspath(_filename(entry)).startswith(_KIT)


def _in_stdlib(entry: TracebackType) -> bool:
    path = os.path.abspath(_filename(entry))
    return path.startswith(_STDLIB) and not path.startswith(_INSTALLED)


def _chain(entries: list[TracebackType]) -> TracebackType | None:
    """A new traceback of ``entries`` (outermost first), each at the line it had."""
    tb: TracebackType | None = None
    for entry in reversed(entries):
        tb = TracebackType(tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return tb


def node_traceback(tb: TracebackType | None, node_files: Mapping[str, str]) -> TracebackType | None:
    """The part of ``tb`` from the first frame of node code on, without the kit's own frames
    (``None`` when ``tb`` never went through node code). ``node_files``: filename to node id."""
    entries = list(_entries(tb))
    first = next((i for i, entry in enumerate(entries) if _filename(entry) in node_files), None)
    if first is None:
        return None
    return _chain([entry for entry in entries[first:] if not _in_kit(entry)])


def for_cell(error: BaseException, node_files: Mapping[str, str]) -> BaseException | None:
    """``error`` with the traceback a cell should show, to raise again; ``None``: re-raise it as it is.

    An error that went through node code keeps the frames from the node's code on (what node code
    called, a notebook function or a library, stays; the engine and the kit are left out). An error
    the kit raised itself (a usage error, an unknown workflow) keeps only the frame that raised it.
    Anything else, a bug included, keeps its whole traceback.
    """
    tb = node_traceback(error.__traceback__, node_files)
    if tb is not None:
        return error.with_traceback(tb)
    if isinstance(error, KailashNbError):
        entries = list(_entries(error.__traceback__))
        return error.with_traceback(_chain(entries[-1:]))
    return None


def interrupted(cancelled: asyncio.CancelledError, magic: str,
                node_files: Mapping[str, str]) -> KeyboardInterrupt:
    """The ``KeyboardInterrupt`` a cell shows when the kernel was interrupted while ``magic`` awaited.

    Its traceback holds the frames of the code that was awaiting, node code or a notebook's own (a
    test method under ``%kailash test``), without the kit's and the standard library's frames
    (asyncio's sleep, a context manager's exit). Its message names the magic and, when it was inside
    node code, the node. It replaces the cancellation, which a cell does not show as its context.
    """
    entries = [e for e in _entries(cancelled.__traceback__) if not _in_kit(e) and not _in_stdlib(e)]
    nodes = [node_files[_filename(e)] for e in entries if _filename(e) in node_files]
    where = f" while node {nodes[-1]!r} was awaiting" if nodes else ""
    interrupt = KeyboardInterrupt(f"{magic} was interrupted{where}").with_traceback(_chain(entries))
    interrupt.__suppress_context__ = True
    return interrupt
