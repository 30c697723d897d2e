"""Compile node code once: dedented async Python with top-level ``await``, registered with linecache; and
point what went wrong in node code at its own lines (``<node ID>:LINE``), as a traceback does.

Every ``await X`` is compiled as ``await __kailash_await__(X)`` (see :mod:`.context`): Python's ``await``,
which also accepts the plain result of a sync mock call, as the guide writes ``await db.fetch()``.
"""

from __future__ import annotations

import inspect
import linecache
import sys
import textwrap
import warnings
import zlib
from _ast import PyCF_ALLOW_TOP_LEVEL_AWAIT, PyCF_ONLY_AST  # the C module behind ast: flags without importing ast
from collections.abc import Mapping
from dataclasses import dataclass
from types import CodeType, CoroutineType
from typing import Any

from .context import AWAIT_NAME
from .errors import NodeSyntaxError


@dataclass(slots=True, frozen=True)
class NodeCode:
    """A node's source as the user wrote it (dedented) and its code object, compiled once."""

    source: str
    filename: str
    code: CodeType


def normalize(code: str) -> str:
    """Dedent node code and drop leading blank lines, so that line 1 is the first line of code."""
    lines = textwrap.dedent(code).splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


def compile_node(node_id: str, code: str) -> NodeCode:
    """Compile ``code`` for node ``node_id``; a syntax error names the node, the line and shows it."""
    if not isinstance(code, str):
        raise TypeError(f"node {node_id!r}: code must be a str of Python source, got {type(code).__name__}")
    source = normalize(code)
    filename = _filename(node_id, source)
    try:
        compiled = _compile(source, filename)
    except SyntaxError as exc:
        lineno = exc.lineno
        lines = source.splitlines()
        line = lines[lineno - 1] if lineno and lineno <= len(lines) else None
        where = f", line {lineno}" if lineno else ""
        shown = f"\n    {line.strip()}" if line else ""
        raise NodeSyntaxError(
            f"node {node_id!r} has a syntax error{where}: {exc.msg}{shown}",
            node_id=node_id,
            lineno=lineno,
            line=line,
        ) from None
    lines_with_ends = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines_with_ends, filename)
    return NodeCode(source, filename, compiled)


def _compile(source: str, filename: str) -> CodeType:
    """The code object of ``source``, each ``await X`` calling :data:`AWAIT_NAME` on ``X`` first."""
    if "await" not in source:  # nothing to rewrite: skip the syntax tree
        return compile(source, filename, "exec", flags=PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    import ast  # only here: importing the engine stays light

    tree = compile(source, filename, "exec", flags=PyCF_ONLY_AST | PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    for node in ast.walk(tree):  # walk() has queued a node's children already: the rewritten value is still seen
        if isinstance(node, ast.Await):
            value = node.value
            helper = ast.copy_location(ast.Name(AWAIT_NAME, ast.Load()), value)
            node.value = ast.copy_location(ast.Call(helper, [value], []), value)
    return compile(tree, filename, "exec", flags=PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)

def _filename(node_id: str, source: str) -> str:
    """``<node ID>``, or with a content hash when another node of that id had other code."""
    name = f"<node {node_id}>"
    known = linecache.getlines(name)  # [] when no node of that id was compiled yet
    if not known or "".join(known) == source:
        return name
    digest = f"{zlib.crc32(source.encode()):08x}"
    return f"<node {node_id} {digest}>"


def warn_unawaited(node: NodeCode, namespace: dict[str, Any], given: Mapping[str, Any]) -> None:
    """Warn at the node's own line for each coroutine its code left unawaited in one of its variables.

    ``rows = db.fetch()`` without ``await`` leaves a coroutine that Python reports as "never awaited" only
    when it is freed, pointing at whatever kit line freed the namespace. Instead, each coroutine that node
    code bound to a variable (not one of ``given``: inputs, notebook names), never started and held by
    nothing else, is closed here, and the warning points at ``<node ID>:LINE``, the line that assigned it.
    A coroutine handed elsewhere (kept in a list, given to a task) is left alone.
    """
    for name in node.code.co_names:  # the names node code uses (and so every one it assigns): a few
        coroutine = namespace.get(name)
        if type(coroutine) is not CoroutineType or coroutine is given.get(name):
            continue
        if inspect.getcoroutinestate(coroutine) != inspect.CORO_CREATED:
            continue
        if sys.getrefcount(coroutine) > 3:  # the namespace, this frame and the call's argument: nothing else
            continue
        coroutine.close()  # closed, it never warns again when freed
        warnings.warn_explicit(
            f"coroutine {coroutine.__qualname__!r} was never awaited",  # Python's own words, for warning filters
            RuntimeWarning, node.filename, _assigned_at(node.code, name), module=node.filename,
        )


def _assigned_at(code: CodeType, name: str) -> int:
    """The line of the last top-level statement of ``code`` that assigns ``name`` (1 when none is found)."""
    import dis

    lines = [ins.positions.lineno for ins in dis.get_instructions(code)
             if ins.opname in ("STORE_NAME", "STORE_GLOBAL") and ins.argval == name
             and ins.positions is not None and ins.positions.lineno is not None]
    return lines[-1] if lines else 1
