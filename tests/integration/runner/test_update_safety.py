"""``kailash-nb update`` never loses a user's work: what it refuses, and what it keeps byte for byte.

Real kernels and real failures: a notebook edited during the run, another process holding the notebook,
a write cut short by the file size limit, notebooks it cannot write (nbformat 3, read-only).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kailash_nb.cli import main
from kailash_nb.runner.check import CheckConfig
from kailash_nb.runner.terminal import Printer
from kailash_nb.runner.update import update

pytestmark = pytest.mark.integration


def run_update(*paths: str) -> tuple[int, str]:
    out = io.StringIO()
    code = update(CheckConfig(paths=paths), printer=Printer(out))
    return code, out.getvalue()


def stale(source: str, stored: str, execution_count: int = 1) -> nbformat.NotebookNode:
    """A code cell whose stored output (``stored`` on stdout) is no longer what it prints."""
    cell = new_code_cell(source, execution_count=execution_count)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    return cell


def notebook_json(cells: list[nbformat.NotebookNode]) -> dict[str, Any]:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return json.loads(nbformat.writes(nb))


def outputs_span(text: str, code_cell: int) -> tuple[int, int]:
    """Where the ``outputs`` value of the ``code_cell``-th code cell (from 1) is in a notebook's text."""
    at = -1
    for _ in range(code_cell):
        at = text.index('"outputs"', at + 1)
    start = text.index("[", at)
    return start, json.JSONDecoder().raw_decode(text, start)[1]


@pytest.mark.parametrize("style", ["crlf, tabs", "minified"])
def test_update_keeps_line_endings_and_indentation_so_the_diff_is_only_the_outputs(workdir: Path,
                                                                                  style: str) -> None:
    nb = notebook_json([new_markdown_cell("# Ünïcode"), stale("RATE = 3\nprint(RATE * 21)", "42\n", 1),
                        stale("print('same')", "same\n", 2)])
    if style == "minified":
        text = json.dumps(nb, separators=(",", ":"), ensure_ascii=False)
    else:
        text = (json.dumps(nb, indent="\t", sort_keys=True, ensure_ascii=False) + "\n").replace("\n", "\r\n")
    path = workdir / "styled.ipynb"
    path.write_bytes(text.encode("utf-8"))

    code, out = run_update("styled.ipynb")

    assert code == 0, out
    assert "accepted styled.ipynb::cell 2: RATE = 3 (stdout changed)" in out
    new = path.read_bytes().decode("utf-8")
    (start, end), (new_start, new_end) = outputs_span(text, 1), outputs_span(new, 1)
    assert new[:new_start] == text[:start] and new[new_end:] == text[end:]  # every other byte as it was
    written = new[new_start:new_end]
    if style == "minified":
        assert written == '[{"name":"stdout","output_type":"stream","text":["63\\n"]}]'
    else:
        assert written == ('[\r\n\t\t\t\t{\r\n\t\t\t\t\t"name": "stdout",\r\n\t\t\t\t\t"output_type": "stream",\r\n'
                           '\t\t\t\t\t"text": [\r\n\t\t\t\t\t\t"63\\n"\r\n\t\t\t\t\t]\r\n\t\t\t\t}\r\n\t\t\t]')
    assert nbformat.reads(new, as_version=4).cells[1].outputs[0].text == "63\n"


def test_update_refuses_a_notebook_that_changed_on_disk_during_the_run(workdir: Path) -> None:
    inserts_a_cell = (  # what a person saving the notebook in Jupyter while update runs does to the file
        "import json, pathlib\n"
        "path = pathlib.Path('moving.ipynb')\n"
        "nb = json.loads(path.read_text())\n"
        "nb['cells'].insert(0, {'cell_type': 'markdown', 'id': 'added', 'metadata': {}, 'source': ['added']})\n"
        "path.write_text(json.dumps(nb, indent=1))"
    )
    path = workdir / "moving.ipynb"
    path.write_text(json.dumps(notebook_json([stale("print('new')", "old\n", 1),
                                              new_code_cell(inserts_a_cell, execution_count=2)]), indent=1))

    code, out = run_update("moving.ipynb")
    edited_during_the_run = path.read_bytes()

    assert code == 1, out
    assert ("not updated: moving.ipynb: it changed on disk during the run: not written, so that the change is "
            "kept; run update again") in out
    assert "accepted" not in out.replace("cell(s) accepted", "")
    nb = nbformat.reads(edited_during_the_run.decode(), as_version=4)
    assert nb.cells[0].source == "added" and nb.cells[1].outputs[0].text == "old\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["moving.ipynb"]


def test_update_of_a_notebook_another_update_holds_is_refused_before_anything_runs(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = workdir / "held.ipynb"
    path.write_text(json.dumps(notebook_json([stale("print('new')", "old\n")]), indent=1))
    before = path.read_bytes()
    holder = subprocess.Popen(  # holds the advisory lock another update would hold while it runs
        [sys.executable, "-c", "import fcntl, sys\nlocked = open(sys.argv[1])\nfcntl.flock(locked, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\nsys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert main(["update", "held.ipynb"]) == 2
    finally:
        holder.communicate("", timeout=60)
    captured = capsys.readouterr()
    assert captured.err == ("kailash-nb update: held.ipynb is being updated by another process (kailash-nb update "
                            "holds its lock): run again when that one has finished\n")
    assert captured.out == ""  # nothing ran
    assert path.read_bytes() == before


def test_update_says_why_it_cannot_write_an_old_format_or_read_only_notebook(workdir: Path) -> None:
    old = workdir / "v3.ipynb"
    old.write_text(json.dumps({
        "metadata": {"name": "v3"}, "nbformat": 3, "nbformat_minor": 0,
        "worksheets": [{"metadata": {}, "cells": [{
            "cell_type": "code", "collapsed": False, "input": "print('new')", "language": "python",
            "metadata": {}, "prompt_number": 1,
            "outputs": [{"output_type": "stream", "stream": "stdout", "text": "old\n"}]}]}],
    }, indent=1))
    frozen = workdir / "frozen.ipynb"
    frozen.write_text(json.dumps(notebook_json([stale("print('new')", "old\n")]), indent=1))
    frozen.chmod(0o444)
    before = {path: path.read_bytes() for path in (old, frozen)}

    code, out = run_update("v3.ipynb", "frozen.ipynb")

    assert code == 1, out
    assert ("not updated: v3.ipynb: an nbformat 3 notebook: update writes only nbformat 4; convert it first "
            "(save it from Jupyter, or jupyter nbconvert --to notebook --inplace)") in out
    assert "not updated: frozen.ipynb: cannot write it (the file is read-only); the file is left as it was" in out
    assert "0 cell(s) accepted; 0 notebook(s) already up to date; 2 notebook(s) not updated" in out
    assert {path: path.read_bytes() for path in (old, frozen)} == before


def test_update_whose_write_fails_leaves_the_notebook_byte_for_byte(workdir: Path) -> None:
    """A real failed write: the file size limit (RLIMIT_FSIZE) is below the size of the notebook."""
    nb = notebook_json([new_markdown_cell("x" * 300_000), stale("print('new')", "old\n")])
    path = workdir / "big.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    before = path.read_bytes()
    limited = ("import resource, signal, sys\n"
               "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
               "from kailash_nb.cli import main\n"
               "sys.exit(main(['update', 'big.ipynb']))")
    run = subprocess.run([sys.executable, "-c", limited], capture_output=True, text=True, timeout=300)

    assert run.returncode == 1, run.stdout + run.stderr
    assert "not updated: big.ipynb: cannot write it (File too large); the file is left as it was" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in workdir.iterdir()) == ["big.ipynb"]


def test_of_two_updates_of_one_notebook_the_second_refuses_and_the_first_writes(workdir: Path) -> None:
    waits = (  # the first update's run stops here until the second one has been tried
        "import pathlib, time\n"
        "pathlib.Path('started').touch()\n"
        "for _ in range(6000):\n"
        "    if pathlib.Path('go').exists():\n"
        "        break\n"
        "    time.sleep(0.01)\n"
        "print('new')"
    )
    path = workdir / "shared.ipynb"
    path.write_text(json.dumps(notebook_json([stale(waits, "old\n")]), indent=1))
    command = [sys.executable, "-m", "kailash_nb.cli", "update", "shared.ipynb"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(30000):
            if (workdir / "started").exists() or first.poll() is not None:
                break
            time.sleep(0.01)
        assert (workdir / "started").exists(), first.communicate()
        second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        (workdir / "go").touch()
        out, err = first.communicate(timeout=300)

    assert second.returncode == 2, second.stdout + second.stderr
    assert second.stderr == ("kailash-nb update: shared.ipynb is being updated by another process (kailash-nb "
                             "update holds its lock): run again when that one has finished\n")
    assert first.returncode == 0, out + err
    assert "accepted shared.ipynb::cell 1: import pathlib, time (stdout changed)" in out
    assert nbformat.read(path, as_version=4).cells[0].outputs[0].text == "new\n"
