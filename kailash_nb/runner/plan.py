"""Which notebooks a check runs, in which order, and on which CI machine (``--shard K/N``).

Notebooks run longest first, so that two workers finish together instead of one waiting on a long
notebook started last. Durations come from a durations file (``kailash-nb check --store-durations``
writes it; commit it so that every CI machine plans the same way); a notebook it does not know is
estimated from its number of code cells, so the plan is deterministic either way. Shards are balanced by
the same durations: each notebook goes to the shard with the least work so far (longest first).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kailash_nb.errors import KailashNbError

from .files import write_atomically

DURATIONS_FILE = ".kailash_nb_durations.json"
SECONDS_PER_CELL = 0.3  # the estimate for a notebook without a stored duration


class PlanError(KailashNbError, ValueError):
    """The notebooks to check cannot be found, or ``--shard``/the durations file is malformed."""


@dataclass(slots=True, frozen=True)
class Shard:
    """Shard ``index`` (from 1) of ``count``: ``--shard 2/3``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
            raise PlanError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. --shard 1/3")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def find_notebooks(paths: Sequence[str]) -> list[Path]:
    """The ``.ipynb`` files named or found under the folders named (sorted; checkpoints and hidden folders
    skipped). A path that does not exist, or paths with no notebook at all, are an error that says so."""
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*.ipynb")
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not inside:
                raise PlanError(f"no notebooks (.ipynb files) in {given}")
            found.update(dict.fromkeys(inside))
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise PlanError(f"{given} is not a notebook (.ipynb file)")
            found[path] = None
        else:
            raise PlanError(f"{given}: no such file or folder")
    if not found:
        raise PlanError("no notebooks to check: name .ipynb files or folders that hold them")
    return list(found)


def key(path: Path) -> str:
    """How a notebook is named in the durations file: its path relative to the current folder."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def read_durations(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        durations = {str(k): float(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise PlanError(f"{path}: not a durations file ({{\"notebook.ipynb\": seconds, ...}}): {exc}") from None
    for name, seconds in durations.items():
        if isinstance(data[name], bool) or not math.isfinite(seconds) or seconds < 0:
            raise PlanError(f"{path}: entry {name!r}: {data[name]!r} is not a duration (a number of seconds, "
                            "0 or more); fix or delete the entry, or store the durations again")
    return durations


def write_durations(path: Path, measured: Mapping[str, float]) -> None:
    """Merge ``measured`` into the durations file (other notebooks' entries are kept)."""
    durations = read_durations(path)
    durations.update({k: round(v, 2) for k, v in measured.items()})
    write_atomically(path, json.dumps(dict(sorted(durations.items())), indent=1) + "\n")


def estimated(notebook: Path, durations: Mapping[str, float]) -> float:
    known = durations.get(key(notebook))
    if known is not None:
        return known
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return 0.0
    return SECONDS_PER_CELL * sum(1 for cell in cells if isinstance(cell, dict) and cell.get("cell_type") == "code")


def longest_first(notebooks: Iterable[Path], durations: Mapping[str, float]) -> list[Path]:
    return [notebook for _, notebook in _by_length(notebooks, durations)]


def _by_length(notebooks: Iterable[Path], durations: Mapping[str, float]) -> list[tuple[float, Path]]:
    """(estimated seconds, notebook), longest first; ties by name, so that every machine agrees."""
    sized = [(estimated(notebook, durations), notebook) for notebook in notebooks]
    return sorted(sized, key=lambda item: (-item[0], key(item[1])))


def shard(notebooks: Sequence[Path], which: Shard, durations: Mapping[str, float]) -> list[Path]:
    """The notebooks of shard ``which``, longest first: every machine computes the same split."""
    loads = [0.0] * which.count
    mine = []
    for seconds, notebook in _by_length(notebooks, durations):
        target = loads.index(min(loads))
        loads[target] += max(seconds, 1e-3)
        if target == which.index - 1:
            mine.append(notebook)
    return mine
