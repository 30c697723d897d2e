"""Input transformer: turn ``%%kailash`` cells and awaiting ``%kailash`` lines into top-level ``await``.

IPython cannot await inside a magic function, and the kit must not start a second event loop, a thread
or nest_asyncio. So after IPython's own transformations (which turn ``%%kailash a`` into
``get_ipython().run_cell_magic('kailash', 'a', body)`` and ``r = %kailash run`` into
``r = get_ipython().run_line_magic('kailash', 'run')``), this transformer replaces those calls with an
``await`` of the magic's coroutine. ipykernel sees the ``await`` (``should_run_async``) and runs the
cell as a coroutine on its own loop, so resources made in earlier cells stay usable.

``%unload_ext kailash_nb`` becomes an await too, so that the session's resources are cleaned up on
the loop they were made on. A call that cannot await (inside a ``def``, ``lambda`` or ``class`` body) is
left alone, while the cell's top-level calls are still rewritten; the magic then raises ``NotAwaitedError``.

IPython keeps the transformed cell in ``linecache`` for its tracebacks; ``show_as_written`` puts the
magic lines back there as the user wrote them, so a traceback shows ``run = %kailash run``.
"""

from __future__ import annotations

import ast
import linecache
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

MAGIC_NAME = "kailash"

#: Subcommands of the line magic whose work awaits on the kernel's loop.
AWAITING_SUBCOMMANDS = frozenset({"run", "test", "bench", "schedules", "replay", "reset"})

# IPython writes the arguments with %r, so each is one Python string literal.
_STRING = r"""(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_LINE_CALL = re.compile(
    rf"get_ipython\(\)\.run_line_magic\('{MAGIC_NAME}', (?P<line>{_STRING})\)"
)
_CELL_CALL = re.compile(
    rf"\A(?P<indent>[ \t]*)get_ipython\(\)\.run_cell_magic\('{MAGIC_NAME}', "
    rf"(?P<line>{_STRING}), (?P<body>{_STRING})\)\s*\Z",
    re.DOTALL,
)
_UNLOAD_CALL = re.compile(
    r"get_ipython\(\)\.run_line_magic\('unload_ext', (?P<line>'\s*kailash_nb(?:\.notebook)?\s*')\)"
)
_MODULE = "__import__('kailash_nb.notebook.magics', fromlist=['magics'])"


# What the rewritten calls look like, to show them as written again.
_AWAITED_LINE = re.compile(rf"\(await {re.escape(_MODULE)}\.line_magic_async\(get_ipython\(\), (?P<line>{_STRING})\)\)")
_AWAITED_CELL = re.compile(
    rf"await {re.escape(_MODULE)}\.cell_magic_async\(get_ipython\(\), (?P<line>{_STRING}), {_STRING}\)"
)
_AWAITED_UNLOAD = re.compile(
    rf"\(await {re.escape(_MODULE)}\.unload_async\(get_ipython\(\), (?P<line>{_STRING})\)\)"
)


def _subcommand(line_literal: str) -> str:
    line = ast.literal_eval(line_literal)
    words = line.split(None, 1)
    return words[0] if words else ""


def _replace_line(match: re.Match[str]) -> str:
    literal = match.group("line")
    if _subcommand(literal) not in AWAITING_SUBCOMMANDS:
        return match.group(0)
    return f"(await {_MODULE}.line_magic_async(get_ipython(), {literal}))"


def _replace_unload(match: re.Match[str]) -> str:
    module = repr(ast.literal_eval(match.group("line")).strip())
    return f"(await {_MODULE}.unload_async(get_ipython(), {module}))"


def rewrite_cell(cell: str) -> str:
    """Return ``cell`` (already transformed by IPython) with kailash magic calls turned into awaits."""
    if MAGIC_NAME not in cell:
        return cell
    match = _CELL_CALL.match(cell)
    if match:
        rewritten = (
            f"{match.group('indent')}await {_MODULE}.cell_magic_async("
            f"get_ipython(), {match.group('line')}, {match.group('body')})\n"
        )
    else:
        nested = _nested_spans(cell)
        rewritten = _sub_top_level(_LINE_CALL, _replace_line, cell, nested)
        rewritten = _sub_top_level(_UNLOAD_CALL, _replace_unload, rewritten, _nested_spans(rewritten))
    if rewritten == cell or not _compiles_with_await(rewritten):
        return cell
    return rewritten


def _sub_top_level(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], cell: str,
                   nested: list[tuple[tuple[int, int], tuple[int, int]]]) -> str:
    """``pattern.sub(replace, cell)`` for the matches outside ``nested`` spans (which cannot await)."""

    def top_level_only(match: re.Match[str]) -> str:
        at = _position(cell, match.start())
        if any(start <= at < end for start, end in nested):
            return match.group(0)
        return replace(match)

    return pattern.sub(top_level_only, cell)


def _nested_spans(cell: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(line, byte column) spans of the function, lambda and class bodies in ``cell``, where ``await``
    is not top-level; none when the cell does not parse (the final compile check decides then)."""
    try:
        tree = ast.parse(cell)
    except SyntaxError:
        return []
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    return [
        ((node.lineno, node.col_offset), (node.end_lineno or node.lineno, node.end_col_offset or 0))
        for node in ast.walk(tree)
        if isinstance(node, scopes)
    ]


def _position(text: str, index: int) -> tuple[int, int]:
    """The (line, UTF-8 byte column) of ``text[index]``, as ``ast`` numbers them."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, len(text[line_start:index].encode("utf-8"))


def transform_lines(lines: list[str]) -> list[str]:
    """The ``input_transformers_post`` entry point: IPython passes and expects a list of lines."""
    cell = "".join(lines)
    rewritten = rewrite_cell(cell)
    if rewritten is cell:
        return lines
    return rewritten.splitlines(keepends=True)


def _compiles_with_await(source: str) -> bool:
    try:
        compile(source, "<kailash>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError:
        return False
    return True


def as_written(line: str) -> str:
    """``line`` of a transformed cell with the kailash calls this module wrote shown as magics again:
    ``r = (await ...line_magic_async(get_ipython(), 'run'))`` reads ``r = %kailash run``.

    IPython's own ``get_ipython().run_line_magic('kailash', 'run')`` and ``%kailash run`` are the same
    call by then, so both are shown as the magic.
    """
    if _MODULE not in line:
        return line
    line = _AWAITED_CELL.sub(lambda m: f"%%{MAGIC_NAME} {ast.literal_eval(m.group('line'))}".rstrip(), line)
    line = _AWAITED_LINE.sub(lambda m: f"%{MAGIC_NAME} {ast.literal_eval(m.group('line'))}".rstrip(), line)
    return _AWAITED_UNLOAD.sub(lambda m: f"%unload_ext {ast.literal_eval(m.group('line'))}", line)


def show_as_written(filename: str) -> None:
    """Show the kailash magics of the cell cached under ``filename`` as written, in its tracebacks.

    IPython caches a cell's transformed text in ``linecache`` under the name its code is compiled
    with; the magic's coroutine calls this with the file name of the cell that awaits it. The line
    count stays, so every line number still points at the same statement.
    """
    entry = linecache.cache.get(filename)
    if entry is None or len(entry) != 4 or not any(_MODULE in line for line in entry[2]):
        return
    size, mtime, lines, name = entry
    linecache.cache[filename] = (size, mtime, [as_written(line) for line in lines], name)


def install(shell: InteractiveShell) -> None:
    """Add the transformer to ``shell`` once (loading the extension twice is harmless)."""
    if not any(_is_ours(t) for t in shell.input_transformers_post):
        shell.input_transformers_post.append(transform_lines)


def uninstall(shell: InteractiveShell) -> None:
    """Remove the transformer from ``shell`` if present."""
    remaining: list[Callable[[list[str]], list[str]]] = [
        t for t in shell.input_transformers_post if not _is_ours(t)
    ]
    shell.input_transformers_post[:] = remaining


def _is_ours(transformer: object) -> bool:
    # By name, not identity: a reloaded module makes a new function object.
    return (
        getattr(transformer, "__module__", None) == __name__
        and getattr(transformer, "__name__", None) == "transform_lines"
    )
