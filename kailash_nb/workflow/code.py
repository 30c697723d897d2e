"""Compile node code once: dedented async Python with top-level ``await``, registered with linecache.

Every ``await X`` is compiled as ``await __kailash_await__(X)`` (see :mod:`.context`): Python's ``await``,
which also accepts the plain result of a sync mock call, as the guide writes ``await db.fetch()``.
"""

from __future__ import annotations

import linecache
import textwrap
import zlib
from _ast import PyCF_ALLOW_TOP_LEVEL_AWAIT, PyCF_ONLY_AST  # the C module behind ast: flags without importing ast
from dataclasses import dataclass
from types import CodeType

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
