"""Bad command lines are refused before anything runs, in one sentence: output paths, option values."""

from __future__ import annotations

import io
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kailash_nb.cli import main
from kailash_nb.runner.check import CheckConfig, check
from kailash_nb.runner.terminal import Printer

pytestmark = pytest.mark.integration


def write(path: Path, cells: list[nbformat.NotebookNode]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_an_output_that_would_overwrite_a_notebook_is_refused_before_anything_runs(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(workdir / "nb" / "a.ipynb", [new_code_cell("print('a')")])
    before = path.read_bytes()
    (workdir / "notes.txt").write_text("mine")
    refusals = {
        ("check", "nb", "--junitxml", "nb/a.ipynb"): "kailash-nb check: --junitxml nb/a.ipynb: that is a notebook",
        ("check", "nb", "--junitxml", "junit.ipynb"): "kailash-nb check: --junitxml junit.ipynb: that is a notebook",
        ("check", "nb", "--junitxml", "nb"): "kailash-nb check: --junitxml nb: that is a folder",
        ("check", "nb", "--report", "notes.txt"): "kailash-nb check: --report notes.txt: that is a file",
        ("check", "nb", "--report", "nb/a.ipynb"): "kailash-nb check: --report nb/a.ipynb: that is a notebook",
        ("check", "nb", "--store-durations", "--durations-file", "nb/a.ipynb"):
            "kailash-nb check: --durations-file nb/a.ipynb: that is a notebook",
        ("run", "nb/a.ipynb", "--html", "nb/a.ipynb"): "kailash-nb: --html nb/a.ipynb: that is a notebook",
        ("tour", "--notebook", "nb/a.ipynb", "--html", "out.ipynb"): "kailash-nb: --html out.ipynb: that is a notebook",
    }
    for argv, message in refusals.items():
        assert main(list(argv)) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(message) and captured.err.count("\n") == 1, (argv, captured.err)
        assert "running" not in captured.out and "PASS" not in captured.out  # nothing ran
    assert path.read_bytes() == before
    assert sorted(p.name for p in workdir.iterdir()) == ["nb", "notes.txt"]


@pytest.mark.parametrize(("argv", "message"), [
    (["update", "--cell", "abc"], "argument --cell: expected a whole number, 1 or more; got 'abc'"),
    (["check", "-n", "0"], "argument -n: expected a whole number, 1 or more; got '0'"),
    (["check", "--cell-timeout", "None"],
     "argument --cell-timeout: expected a positive, finite number of seconds, such as 60; got 'None'"),
    (["check", "--cell-timeout", "0"],
     "argument --cell-timeout: expected a positive, finite number of seconds, such as 60; got '0'"),
    (["check", "--image-tolerance", "nan"],
     "argument --image-tolerance: expected an RMS difference: a finite number, 0 or more; got 'nan'"),
    (["update", "--image-tolerance", "-1"],
     "argument --image-tolerance: expected an RMS difference: a finite number, 0 or more; got '-1'"),
])
def test_an_option_value_is_refused_in_one_sentence(argv: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"kailash-nb {argv[0]}: error: {message}"
    assert "_positive_int" not in err and "None for no limit" not in err


def test_more_workers_than_notebooks_is_said_as_it_ran(workdir: Path) -> None:
    write(workdir / "one.ipynb", [new_code_cell("print('one')")])
    printed = io.StringIO()
    code = check(CheckConfig(paths=["one.ipynb"], workers=1000), report_dir=None, printer=Printer(printed))
    out = printed.getvalue()
    assert code == 0, out
    assert "on 1 worker(s)" in out and "1000" not in out
