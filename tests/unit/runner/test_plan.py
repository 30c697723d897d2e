"""Which notebooks run, longest first, and how shards split them the same way on every machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kailash_nb.runner.plan import (
    PlanError,
    Shard,
    find_notebooks,
    longest_first,
    read_durations,
    shard,
    write_durations,
)


def write_notebook(path: Path, code_cells: int) -> Path:
    cells = [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": [], "execution_count": None}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells * code_cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_folders_are_searched_and_checkpoints_and_hidden_folders_skipped(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "nbs" / "b.ipynb", 1)
    write_notebook(tmp_path / "nbs" / "a.ipynb", 1)
    write_notebook(tmp_path / "nbs" / ".ipynb_checkpoints" / "a-checkpoint.ipynb", 1)
    write_notebook(tmp_path / "nbs" / "sub" / "c.ipynb", 1)
    assert [p.as_posix() for p in find_notebooks(["nbs"])] == ["nbs/a.ipynb", "nbs/b.ipynb", "nbs/sub/c.ipynb"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: root.joinpath("empty").mkdir(), "no notebooks (.ipynb files) in empty"),
    (lambda root: root.joinpath("empty").write_text("x"), "empty is not a notebook (.ipynb file)"),
    (lambda root: None, "empty: no such file or folder"),
])
def test_nothing_to_check_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    with pytest.raises(PlanError, match=re.escape(message)):
        find_notebooks(["empty"])


def test_longest_first_from_stored_durations_else_from_the_number_of_cells(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    small, big, measured = (write_notebook(tmp_path / f"{n}.ipynb", c) for n, c in (("small", 2), ("big", 9),
                                                                                    ("measured", 1)))
    assert longest_first([small, big, measured], {}) == [big, small, measured]
    assert longest_first([small, big, measured], {"measured.ipynb": 60.0}) == [measured, big, small]


def test_durations_are_merged_into_the_file(tmp_path: Path) -> None:
    target = tmp_path / "durations.json"
    write_durations(target, {"a.ipynb": 1.234})
    write_durations(target, {"b.ipynb": 2.0})
    assert read_durations(target) == {"a.ipynb": 1.23, "b.ipynb": 2.0}
    target.write_text("[1, 2]")
    with pytest.raises(PlanError, match="not a durations file"):
        read_durations(target)


def test_shards_are_disjoint_cover_everything_and_are_balanced(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    notebooks = [write_notebook(tmp_path / f"nb{i}.ipynb", 1) for i in range(7)]
    durations = {f"nb{i}.ipynb": seconds for i, seconds in enumerate([10, 9, 8, 3, 2, 2, 1])}
    parts = [shard(notebooks, Shard(k, 3), durations) for k in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == sorted(notebooks)
    loads = sorted(sum(durations[p.name] for p in part) for part in parts)
    assert loads == [11, 12, 12]
    assert parts == [shard(list(reversed(notebooks)), Shard(k, 3), durations) for k in (1, 2, 3)]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_malformed_shard_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(PlanError, match="expected K/N with 1 <= K <= N"):
        Shard.parse(text)


@pytest.mark.parametrize(("stored", "shown"), [
    ('{"a.ipynb": 1.5, "b.ipynb": NaN}', "NaN"),
    ('{"b.ipynb": -2}', "-2"),
    ('{"b.ipynb": Infinity}', "inf"),
    ('{"b.ipynb": true}', "True"),
])
def test_a_duration_that_is_not_a_number_of_seconds_is_refused_naming_the_file_and_entry(
        tmp_path: Path, stored: str, shown: str) -> None:
    target = tmp_path / "durations.json"
    target.write_text(stored)
    with pytest.raises(PlanError) as refused:
        read_durations(target)
    assert str(refused.value).startswith(f"{target}: entry 'b.ipynb': ")
    assert "is not a duration (a number of seconds, 0 or more)" in str(refused.value)
    assert shown.lower() in str(refused.value).lower()
