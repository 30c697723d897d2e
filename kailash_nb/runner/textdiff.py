"""A side-by-side diff of two texts, for the report: lines paired up, changes marked within lines, long
unchanged stretches folded. (The terminal uses difflib's unified diff; a page has room for both sides.)"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Literal

#: Unchanged lines shown around each change of a diff; longer unchanged stretches are folded into one row.
CONTEXT_LINES = 3
#: Rows of one diff before the rest is left out (a whole output replaced by a long one).
MAX_DIFF_ROWS = 1500


@dataclass(slots=True, frozen=True)
class Segment:
    """A run of characters in a diff line; ``changed`` marks what differs from the other side."""

    text: str
    changed: bool = False


@dataclass(slots=True, frozen=True)
class DiffRow:
    """One row of a side-by-side diff: ``equal``, ``changed``, ``removed`` (stored only), ``added`` (new only),
    or ``folded`` (``folded`` unchanged lines not shown)."""

    kind: Literal["equal", "changed", "removed", "added", "folded"]
    stored_number: int | None = None
    stored: tuple[Segment, ...] = ()
    new_number: int | None = None
    new: tuple[Segment, ...] = ()
    folded: int = 0


@dataclass(slots=True, frozen=True)
class TextDiff:
    rows: tuple[DiffRow, ...]
    note: str = ""



def side_by_side(stored: str, new: str, *, context: int = CONTEXT_LINES, limit: int = MAX_DIFF_ROWS) -> TextDiff:
    """The lines of ``stored`` and ``new`` paired up, changes marked within lines, long unchanged stretches
    folded to ``context`` lines around each change."""
    before, after = stored.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    rows: list[DiffRow] = []
    shown = 0  # lines of ``before`` accounted for so far
    groups: list[Sequence[tuple[str, int, int, int, int]]] = list(matcher.get_grouped_opcodes(context))
    if not groups:  # the lines are the same: show them all
        groups = [matcher.get_opcodes()]
    for group in groups:
        if group[0][1] > shown:
            rows.append(DiffRow("folded", folded=group[0][1] - shown))
        for tag, i1, i2, j1, j2 in group:
            rows += _rows(tag, before, after, i1, i2, j1, j2)
        shown = group[-1][2]
    if len(before) > shown:
        rows.append(DiffRow("folded", folded=len(before) - shown))
    note = ""
    if all(row.kind in ("equal", "folded") for row in rows) and stored != new:
        note = "The lines are the same: the values differ in line endings, a final newline, or how they are split."
    if len(rows) > limit:
        note = f"{len(rows) - limit} more rows of this diff are not shown."
        rows = rows[:limit]
    return TextDiff(tuple(rows), note)


def _rows(tag: str, before: list[str], after: list[str], i1: int, i2: int, j1: int, j2: int) -> list[DiffRow]:
    if tag == "equal":
        return [
            DiffRow("equal", i + 1, (Segment(before[i]),), j + 1, (Segment(after[j]),))
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
        ]
    rows = []
    for i, j in zip_longest(range(i1, i2), range(j1, j2)):
        if i is None and j is not None:
            rows.append(DiffRow("added", new_number=j + 1, new=(Segment(after[j], True),)))
        elif j is None and i is not None:
            rows.append(DiffRow("removed", i + 1, (Segment(before[i], True),)))
        elif i is not None and j is not None:
            old, now = _changes_within(before[i], after[j])
            rows.append(DiffRow("changed", i + 1, old, j + 1, now))
    return rows


def _changes_within(stored: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """Both lines split into unchanged and changed runs; lines with little in common are changed whole."""
    matcher = difflib.SequenceMatcher(None, stored, new, autojunk=False)
    if matcher.ratio() < 0.4:
        return (Segment(stored, True),), (Segment(new, True),)
    old: list[Segment] = []
    now: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if i2 > i1:
            old.append(Segment(stored[i1:i2], tag != "equal"))
        if j2 > j1:
            now.append(Segment(new[j1:j2], tag != "equal"))
    return tuple(old), tuple(now)
