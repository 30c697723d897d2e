"""Stored outputs against new ones, by nbval's rules, keeping every difference for a person to read.

nbval decides whether a cell passes: after merging streams and applying the sanitize file, it compares,
MIME type by MIME type, the list of values each output kind produced, skipping metadata, tracebacks,
execution counts, widget views and images. :func:`compare_outputs` applies those same rules (with nbval's
own stream and sanitize helpers) and returns *all* the differing keys, not only the first, so the terminal
and the report can say which output changed and how. Images are compared separately (``images.py``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Keys nbval never compares (its ``IPyNbFile.skip_compare``, images included).
SKIPPED_KEYS = frozenset({
    "metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
    "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg",
})
# The order in which differences are told: what a person reads first.
_READING_ORDER = ("text/plain", "stdout", "stderr", "ename", "evalue", "text/markdown", "text/html")

Patterns = Sequence[tuple[str, str]]


@dataclass(slots=True, frozen=True)
class OutputDifference:
    """One output key whose values differ: ``text/plain``, ``stdout``, ``text/html``, ``ename``...

    ``stored`` and ``new`` are the sanitized values, one per output that has the key, as compared.
    """

    key: str
    stored: tuple[Any, ...]
    new: tuple[Any, ...]

    @property
    def what(self) -> str:
        """``text/plain changed``, ``stderr appeared``, ``text/html is gone``: a few words for a person."""
        if not self.stored:
            return f"{self.key} appeared"
        if not self.new:
            return f"{self.key} is gone"
        if len(self.stored) != len(self.new):
            return f"{self.key} changed ({len(self.stored)} output(s) stored, {len(self.new)} now)"
        return f"{self.key} changed"

    def text(self, side: str) -> str:
        """The values of one side (``"stored"``/``"new"``) as one text, for a diff."""
        values = self.stored if side == "stored" else self.new
        return "\n".join(_as_text(value) for value in values)


def load_sanitize_patterns(path: str | Path | None) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of an nbval sanitize file, read with nbval's own parser."""
    if path is None:
        return []
    from nbval.plugin import get_sanitize_patterns

    return list(get_sanitize_patterns(Path(path).read_text(encoding="utf-8")))


def sanitize(value: Any, patterns: Patterns) -> Any:
    if not isinstance(value, str):
        return value
    for regex, replacement in patterns:
        value = re.sub(regex, replacement, value)
    return value


def normalize_outputs(outputs: Iterable[Any]) -> list[Any]:
    """Outputs as nbval compares them: streams of one name merged (``\\r`` and ``\\b`` applied)."""
    from nbformat import from_dict
    from nbval.plugin import coalesce_streams

    return list(coalesce_streams([from_dict(output) for output in outputs]))  # from_dict copies


def flatten(outputs: Iterable[Any], patterns: Patterns) -> dict[str, list[Any]]:
    """``key -> values``: every compared key of every output (MIME types of ``data`` flattened, streams
    keyed by their name), in output order, sanitized."""
    flat: dict[str, list[Any]] = defaultdict(list)
    for output in normalize_outputs(outputs):
        if output.get("output_type") == "stream":
            flat[output.get("name", "stdout")].append(sanitize(output.get("text", ""), patterns))
            continue
        for key, value in output.items():
            if key in SKIPPED_KEYS:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIPPED_KEYS:
                        flat[mime].append(sanitize(data, patterns))
            else:
                flat[key].append(sanitize(value, patterns))
    return dict(flat)


def compare_outputs(stored: Iterable[Any], new: Iterable[Any], patterns: Patterns = ()) -> list[OutputDifference]:
    """Every key whose values differ between the stored and the new outputs, in reading order.

    Empty exactly when nbval's comparison passes: the same keys, the same number of values for each key,
    and equal values.
    """
    before, after = flatten(stored, patterns), flatten(new, patterns)
    differences = [
        OutputDifference(key, tuple(before.get(key, ())), tuple(after.get(key, ())))
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
    ]
    return sorted(differences, key=_reading_rank)


def _reading_rank(difference: OutputDifference) -> tuple[int, str]:
    key = difference.key
    return (_READING_ORDER.index(key) if key in _READING_ORDER else len(_READING_ORDER), key)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    import json

    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


def error_of(outputs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first error output (``ename``, ``evalue``, ``traceback``), if the cell raised."""
    return next((output for output in outputs if output.get("output_type") == "error"), None)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (IPython colours tracebacks)."""
    return _ANSI.sub("", text)
