"""``kailash-nb check``: nbval (strict, with the shipped sanitize file) on notebooks written by the tests."""

import sys
from pathlib import Path

import nbformat
import pytest

import kailash_nb.notebook
from kailash_nb.cli import main
from kailash_nb.runner.check import check_command


def stored_notebook(path: Path, source: str, stored_stdout: str) -> Path:
    """A one-cell notebook saved with ``stored_stdout`` as its recorded output."""
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored_stdout)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_runs_strict_nbval_with_the_shipped_sanitize_file():
    command = check_command(["notebooks"], sanitize_file="/s.cfg")
    assert command[:4] == [sys.executable, "-m", "pytest", "--nbval"]
    assert "--nbval-lax" not in command
    assert "--nbval-sanitize-with=/s.cfg" in command
    assert "-n" not in command
    assert command[-2:] == ["-p", "kailash_nb.runner.check"]


def test_check_with_workers_distributes_whole_notebooks():
    command = check_command(["notebooks"], sanitize_file="/s.cfg", workers=2)
    assert command[-4:] == ["-n", "2", "--dist", "loadscope"]


def test_a_notebook_whose_outputs_match_passes_and_writes_no_report(workdir, capsys):
    stored_notebook(workdir / "good" / "same.ipynb", "print(1 + 1)", "2\n")
    assert main(["check", "good"]) == 0
    assert "1 passed" in capsys.readouterr().out
    assert not (workdir / "out").exists()


def test_sanitized_differences_still_pass(workdir):
    source = "print(f'at 0x{id(object()):x}')"
    stored_notebook(workdir / "addr.ipynb", source, "at 0x7f0000abcdef\n")
    assert main(["check", "addr.ipynb"]) == 0


def test_a_differing_output_fails_and_writes_the_report(workdir, capsys):
    stored_notebook(workdir / "nbs" / "same.ipynb", "print(1 + 1)", "2\n")
    stored_notebook(workdir / "nbs" / "drifted.ipynb", "print('live ' + 'output')", "stored output\n")

    assert main(["check", "nbs", "-n", "2"]) == 1

    out = capsys.readouterr().out
    assert "1 failed, 1 passed" in out
    assert f"failing notebooks: {workdir.resolve() / 'nbs' / 'drifted.ipynb'}" in out
    assert f"report: {Path('out') / 'check-report'}/" in out
    report = workdir / "out" / "check-report"
    assert sorted(entry.name for entry in report.iterdir()) == ["nbs__drifted.html", "pytest-output.txt"]
    assert "drifted.ipynb::Cell 0" in (report / "pytest-output.txt").read_text(encoding="utf-8")
    assert "live output" in (report / "nbs__drifted.html").read_text(encoding="utf-8")


def test_a_later_failing_check_replaces_the_old_report(workdir):
    report = workdir / "reports"
    report.mkdir()
    (report / "old__gone.html").write_text("stale")
    (report / "keep.md").write_text("not ours")
    stored_notebook(workdir / "drifted.ipynb", "print(2)", "3\n")

    assert main(["check", "drifted.ipynb", "--report", str(report)]) == 1
    assert sorted(entry.name for entry in report.iterdir()) == ["drifted.html", "keep.md", "pytest-output.txt"]


def test_the_sanitize_file_ships_with_the_package():
    assert Path(kailash_nb.notebook.sanitize_file_path()).is_file()
