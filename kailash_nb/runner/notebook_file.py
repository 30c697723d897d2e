"""Write new outputs into some cells of a notebook file and leave every other byte as it was.

``kailash-nb update`` must produce a git diff that shows only the accepted cells: not a re-serialized
notebook with its metadata, key order or indentation changed. So instead of writing the parsed notebook
back, this module finds the exact text of each accepted cell's ``outputs`` (and, for a cell that was never
run, its ``execution_count``) with the standard library's JSON scanner, and replaces only that text, in
the file's own style, as the file's writer would have written those values: its line endings (LF or CRLF),
its indentation (N spaces, tabs, or none at all in a minified file), its separators, key order and ASCII
escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Any

from kailash_nb.errors import KailashNbError

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class NotebookFileError(KailashNbError, ValueError):
    """A notebook file is not the JSON object of cells that ``update`` can edit in place."""


@dataclass(slots=True, frozen=True)
class CellUpdate:
    """New outputs for the cell at ``index`` (among all cells, from 0); ``execution_count`` is written too
    when it is not ``None`` (a cell that had never been run)."""

    index: int
    outputs: Sequence[Mapping[str, Any]]
    execution_count: int | None = None


def update_cells(text: str, updates: Sequence[CellUpdate]) -> str:
    """``text`` with the outputs (and counts) of ``updates`` replaced; every other character unchanged."""
    try:
        members = _object_members(text, 0)
        cells_span = members.get("cells")
        if cells_span is None and "worksheets" in members:
            version = _DECODER.raw_decode(text, members["nbformat"][0])[0] if "nbformat" in members else "3"
            raise NotebookFileError(f"an nbformat {version} notebook: update writes only nbformat 4; convert "
                                    "it first (save it from Jupyter, or jupyter nbconvert --to notebook --inplace)")
        if cells_span is None:
            raise NotebookFileError("the notebook has no \"cells\" list")
        cells = _array_items(text, cells_span[0])
    except (JSONDecodeError, IndexError) as exc:
        raise NotebookFileError(f"not a notebook's JSON: {exc}") from None
    style = _Style.of(text, cells)
    edits: list[tuple[int, int, str]] = []
    for update in updates:
        if not 0 <= update.index < len(cells):
            raise NotebookFileError(f"cell {update.index + 1} does not exist ({len(cells)} cells)")
        cell = _object_members(text, cells[update.index][0])
        if "outputs" not in cell:
            raise NotebookFileError(f"cell {update.index + 1} is not a code cell (it has no outputs)")
        start, end = cell["outputs"]
        edits.append((start, end, style.dump(_as_stored(update.outputs), _indent_at(text, start))))
        if update.execution_count is not None and "execution_count" in cell:
            start, end = cell["execution_count"]
            edits.append((start, end, json.dumps(update.execution_count)))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _as_stored(outputs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Outputs as nbformat stores them: multi-line text split into lists of lines, transient data dropped."""
    import nbformat
    from nbformat.v4.rwbase import split_lines, strip_transient

    holder = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.from_dict(dict(o))
                                                                               for o in outputs])])
    holder = split_lines(strip_transient(holder))
    return [_plain(output) for output in holder.cells[0].outputs]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(slots=True, frozen=True)
class _Style:
    newline: str  # "\n" or "\r\n"
    indent: str | None  # one level of indentation; None: everything on one line (a minified file)
    item_separator: str
    key_separator: str
    sort_keys: bool
    ensure_ascii: bool

    @classmethod
    def of(cls, text: str, cells: Sequence[tuple[int, int]]) -> _Style:
        """The file's own style, read from its text: line endings, indent unit, separators, key order, escaping."""
        first_break = text.find("\n")
        newline = "\r\n" if first_break > 0 and text[first_break - 1] == "\r" else "\n"
        start = _skip(text, 0)
        _expect(text.startswith("{", start), f"expected an object at character {start}")
        first_member = _skip(text, start + 1)
        line_start = text.rfind("\n", 0, first_member) + 1
        indent = text[line_start:first_member] if line_start > start else None
        key_separator, item_separator = _separators(text, start)
        keys = [list(_object_members(text, cell_start)) for cell_start, _ in cells[:3]]
        sort_keys = all(k == sorted(k) for k in keys)
        ensure_ascii = text.isascii() and "\\u" in text
        return cls(newline, indent, item_separator, key_separator, sort_keys, ensure_ascii)

    def dump(self, value: Any, margin: str) -> str:
        dumped = json.dumps(value, indent=self.indent, sort_keys=self.sort_keys, ensure_ascii=self.ensure_ascii,
                            separators=(self.item_separator, self.key_separator))
        return dumped.replace("\n", self.newline + margin)


def _separators(text: str, start: int) -> tuple[str, str]:
    """The key separator (``": "`` or ``":"``) and item separator (``","`` or ``", "``) of the object at
    ``start``, as written around its first two members; a line break in a separator is the indentation's."""
    members = list(_object_members(text, start).values())
    if not members:
        return ": ", ","
    value_start, value_end = members[0]
    key_separator = text[text.rfind('"', 0, value_start) + 1:value_start]
    item_separator = text[value_end:text.index('"', value_end)] if len(members) > 1 else ","
    key_separator = ": " if key_separator.strip(" ") != ":" else key_separator
    item_separator = "," if item_separator.strip(" ") != "," else item_separator
    return key_separator, item_separator


def _indent_at(text: str, position: int) -> str:
    """The leading whitespace of the line that holds ``position``."""
    line_start = text.rfind("\n", 0, position) + 1
    line = text[line_start:position]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise NotebookFileError(f"not a notebook's JSON: {message}")


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _object_members(text: str, start: int) -> dict[str, tuple[int, int]]:
    """The (start, end) span of each member's value in the JSON object that begins at ``start``."""
    position = _skip(text, start)
    _expect(text[position] == "{", f"expected an object at character {position}")
    position = _skip(text, position + 1)
    members: dict[str, tuple[int, int]] = {}
    if text[position] == "}":
        return members
    while True:
        _expect(text[position] == '"', f"expected a key at character {position}")
        name, position = _DECODER.raw_decode(text, position)
        position = _skip(text, position)
        _expect(text[position] == ":", f"expected ':' at character {position}")
        value_start = _skip(text, position + 1)
        _, value_end = _DECODER.raw_decode(text, value_start)
        members[name] = (value_start, value_end)
        position = _skip(text, value_end)
        if text[position] == "}":
            return members
        _expect(text[position] == ",", f"expected ',' at character {position}")
        position = _skip(text, position + 1)


def _array_items(text: str, start: int) -> list[tuple[int, int]]:
    """The (start, end) span of each item of the JSON array that begins at ``start``."""
    position = _skip(text, start)
    _expect(text[position] == "[", f"expected a list at character {position}")
    position = _skip(text, position + 1)
    items: list[tuple[int, int]] = []
    if text[position] == "]":
        return items
    while True:
        _, end = _DECODER.raw_decode(text, position)
        items.append((position, end))
        position = _skip(text, end)
        if text[position] == "]":
            return items
        _expect(text[position] == ",", f"expected ',' at character {position}")
        position = _skip(text, position + 1)
