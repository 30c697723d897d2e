"""What the runner writes never costs a user's file: atomic writes, refusals, locks, output paths."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from kailash_nb.runner.files import (
    FileChangedError,
    FileLockedError,
    OutputPathError,
    Snapshot,
    lock,
    refuse_unsafe_output,
    write_atomically,
)

#: A child that may write at most {limit} bytes to any file, and gets EFBIG (not SIGXFSZ) past it.
SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.{on_limit})
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""

# The child: update one cell of the notebook at sys.argv[1] with an output far larger than the limit.
ACCEPT_A_BIG_OUTPUT = """
from pathlib import Path
from nbformat.v4 import new_output
from kailash_nb.runner.cells import CellId, CellOptions
from kailash_nb.runner.results import CellResult, NotebookResult
from kailash_nb.runner.update import write_accepted

path = Path(sys.argv[1])
big = new_output("stream", name="stdout", text="x" * 200_000)
cell = CellResult(CellId(str(path), 2, "print"), "changed", "print()", CellOptions(), (), (big,), 1)
try:
    write_accepted(path, NotebookResult(str(path), (cell,)), [cell])
except OSError as exc:
    print("refused:", exc.strerror)
"""


def notebook(path: Path) -> Path:
    nb = new_notebook(cells=[
        new_markdown_cell("# a notebook someone cannot write again"),
        new_code_cell("print()", execution_count=1, outputs=[new_output("stream", name="stdout", text="a\n")]),
    ])
    nbformat.write(nb, path)
    return path


def run_limited(code: str, *args: str, limit: int = 50_000) -> subprocess.CompletedProcess[str]:
    script = SIZE_LIMITED.format(limit=limit, on_limit="SIG_IGN") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)


def test_an_update_whose_write_fails_leaves_the_notebook_byte_for_byte(tmp_path: Path) -> None:
    path = notebook(tmp_path / "a.ipynb")
    before = path.read_bytes()

    child = run_limited(ACCEPT_A_BIG_OUTPUT, str(path))

    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "refused: File too large"
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ipynb"]  # no temporary file left behind


def test_a_writer_killed_by_the_size_limit_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text("the last report\n")
    code = SIZE_LIMITED.format(limit=1000, on_limit="SIG_DFL") + textwrap.dedent("""
        from kailash_nb.runner.files import write_atomically
        write_atomically(sys.argv[1], "y" * 100_000)
    """)
    child = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    assert child.returncode == -25  # SIGXFSZ
    assert path.read_text() == "the last report\n"


def test_the_file_keeps_its_mode_and_a_new_file_gets_the_umask_s(tmp_path: Path) -> None:
    kept = tmp_path / "kept.ipynb"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomically(kept, "new")
    assert kept.read_text() == "new"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640

    umask = os.umask(0o027)
    try:
        write_atomically(tmp_path / "new.xml", b"<x/>")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.xml").stat().st_mode) == 0o640


def test_a_symlink_stays_a_symlink_and_its_target_is_written(tmp_path: Path) -> None:
    target = tmp_path / "real.ipynb"
    target.write_text("old")
    link = tmp_path / "link.ipynb"
    link.symlink_to(target.name)
    write_atomically(link, "new")
    assert link.is_symlink()
    assert target.read_text() == "new"


def test_a_read_only_file_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "frozen.ipynb"
    path.write_text("keep me")
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="the file is read-only"):
        write_atomically(path, "new")
    assert path.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["frozen.ipynb"]


def test_a_file_changed_since_its_snapshot_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    path.write_text("as run")
    snapshot = Snapshot.take(path)
    assert snapshot.read() == b"as run"
    path.write_text("edited during the run")
    with pytest.raises(FileChangedError, match=r"a\.ipynb changed on disk since it was read for this run"):
        write_atomically(path, "outputs for what ran", unchanged=snapshot)
    assert path.read_text() == "edited during the run"
    assert [p.name for p in tmp_path.iterdir()] == ["a.ipynb"]


def test_a_file_locked_by_another_process_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    path.write_text("{}")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kailash_nb.runner.files import lock\n"
                               "with lock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.read()",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(FileLockedError, match=r"a\.ipynb is being updated by another process"), lock(path):
            pass
    finally:
        holder.communicate("", timeout=60)
    with lock(path):  # released when its holder ended
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["a.ipynb"]  # the notebook itself is locked: no lock file


@pytest.mark.parametrize(("option", "given", "folder", "message"), [
    ("--junitxml", "nb/a.ipynb", False, "--junitxml nb/a.ipynb: that is a notebook"),
    ("--junitxml", "results.IPYNB", False, "that is a notebook"),
    ("--html", "nb/link-to-a", False, "--html nb/link-to-a: that is a notebook"),
    ("--junitxml", "nb", False, "--junitxml nb: that is a folder; --junitxml names the file to write"),
    ("--report", "nb/a.ipynb", True, "--report nb/a.ipynb: that is a notebook"),
    ("--report", "notes.txt", True, "--report notes.txt: that is a file; --report names the folder to write into"),
    ("--report", "notes.txt/out", True, "notes.txt is a file, not a folder"),
])
def test_an_output_path_that_would_overwrite_a_notebook_or_is_the_wrong_kind_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, given: str, folder: bool, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "a.ipynb").write_text("{}")
    (tmp_path / "nb" / "link-to-a").symlink_to("a.ipynb")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputPathError, match=message.replace(".", r"\.")):
        refuse_unsafe_output(option, given, [Path("nb/a.ipynb")], folder=folder)


def test_ordinary_output_paths_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    refuse_unsafe_output("--junitxml", "out/junit.xml", [Path("a.ipynb")])
    refuse_unsafe_output("--report", "out", [Path("a.ipynb")], folder=True)
    refuse_unsafe_output("--report", "new/report", [Path("a.ipynb")], folder=True)
