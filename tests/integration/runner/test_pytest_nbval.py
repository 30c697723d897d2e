"""Plain ``pytest --nbval`` with kailash_nb installed: the kit's cell names, readable diffs, images compared,
and ``-n 2`` safe without ``--dist``. The example notebooks pass unmodified and fail on the changed cell.

pytest runs in a subprocess on copies in a temporary folder, so the stored notebooks are never touched.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kailash_nb.notebook import sanitize_file_path
from kailash_nb.runner.check import CheckConfig, check_notebooks
from kailash_nb.runner.terminal import Printer
from kailash_nb.runner.update import update

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"
NOTEBOOK = "03_mock_resources_and_calls.ipynb"
# The node whose code the test changes, and the change: its output changes, its calls do not.
NODE_HEADER = "%%kailash -w inventory audit"
ORIGINAL = 'result = {"audited": [item["id"] for item in items]}'
CHANGED = 'result = {"audited": [item["id"] * 10 for item in items]}'


pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester's folder, for a pytest run in its own process, as a person runs it: no frontend, no colour."""
    for name in ("JPY_SESSION_NAME", "FORCE_COLOR", "PY_COLORS"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def run_pytest(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
        f"--nbval-sanitize-with={sanitize_file_path()}", "-rf", "--color=no", *args, timeout=600,
    )


def stored_notebook(path: Path, *sources: str) -> Path:
    """A notebook of ``sources``, its outputs stored by ``kailash-nb update``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in sources]), path)
    with open(os.devnull, "w") as sink:
        assert update(CheckConfig(paths=[str(path)]), printer=Printer(sink)) == 0
    return path


def test_two_workers_keep_each_notebook_on_one_worker_without_dist(project: pytest.Pytester) -> None:
    for name in ("a", "b", "c", "d"):
        stored_notebook(project.path / "nbs" / f"{name}.ipynb", f"x = {name!r}", "y = x * 2", "z = y + x",
                        "print(z)")

    run = run_pytest(project, "-n", "2", "-v", "nbs")

    out = run.stdout.str()
    assert run.ret == 0, out[-3000:]
    assert "16 passed" in out
    assert "NameError" not in out
    assert "PASSED nbs/c.ipynb::cell 3: z = y + x" in out
    by_notebook: dict[str, set[str]] = {}
    for match in re.finditer(r"\[(gw\d)\] .* PASSED nbs/(\w)\.ipynb", out):
        by_notebook.setdefault(match.group(2), set()).add(match.group(1))
    assert sorted(by_notebook) == ["a", "b", "c", "d"]
    assert all(len(workers) == 1 for workers in by_notebook.values()), by_notebook


@pytest.fixture
def notebook_copy(project: pytest.Pytester) -> Path:
    target = project.path / NOTEBOOK
    shutil.copy(NOTEBOOKS / NOTEBOOK, target)
    return target


def test_the_unmodified_example_notebook_passes(project: pytest.Pytester, notebook_copy: Path) -> None:
    run = run_pytest(project, NOTEBOOK)
    out = run.stdout.str()
    assert run.ret == 0, out[-3000:]
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out


def test_a_changed_node_fails_on_its_cell_with_a_stored_and_new_diff(project: pytest.Pytester,
                                                                    notebook_copy: Path) -> None:
    nb = nbformat.read(notebook_copy, as_version=4)
    position, cell = next((i, c) for i, c in enumerate(nb.cells, 1) if c.source.startswith(NODE_HEADER))
    assert ORIGINAL in cell.source, "the notebook changed: update NODE_HEADER/ORIGINAL in this test"
    cell.source = cell.source.replace(ORIGINAL, CHANGED)
    nbformat.write(nb, notebook_copy)

    run = run_pytest(project, NOTEBOOK)

    out = run.stdout.str()
    assert run.ret == 1, out[-3000:]
    failed = [line for line in out.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 1, out[-3000:]
    assert failed[0].startswith(f"FAILED {NOTEBOOK}::cell {position}: node audit (workflow inventory)")
    assert "  text/plain changed:\n    --- stored\n    +++ new" in out
    assert re.search(r"^    -audited +\[1, 2, 3\]$", out, re.MULTILINE), out[-3000:]
    assert re.search(r"^    \+audited +\[10, 20, 30\]$", out, re.MULTILINE), out[-3000:]
    assert "<table" not in out


def test_a_changed_workflow_graph_fails_on_its_image(project: pytest.Pytester) -> None:
    path = stored_notebook(project.path / "graph.ipynb", "%load_ext kailash_nb",
                           "%%kailash source --no-run\nresult = {'items': [1, 2]}",
                           "%%kailash sink items=source.items --no-run\nresult = {'n': len(items)}",
                           "%kailash show")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace("items=source.items", "rows=source.items").replace(
        "len(items)", "len(rows)")
    nbformat.write(nb, path)

    run = run_pytest(project, "graph.ipynb")

    out = run.stdout.str()
    assert run.ret == 1, out[-3000:]
    assert "FAILED graph.ipynb::cell 4: %kailash show - image 1 changed" in out
    assert re.search(r"^image 1 changed \(RMS [\d.]+ > tolerance 2\)$", out, re.MULTILINE), out


def test_check_and_nbval_fail_the_same_cells(project: pytest.Pytester, notebook_copy: Path) -> None:
    nb = nbformat.read(notebook_copy, as_version=4)
    for cell in nb.cells:  # a changed node, and a cell that now raises
        cell.source = cell.source.replace(ORIGINAL, CHANGED).replace("%kailash calls db", "%kailash calls nowhere")
    nbformat.write(nb, notebook_copy)

    run = run_pytest(project, NOTEBOOK)
    nbval_failed = sorted(line.split("::", 1)[1].split(" - ")[0].strip()
                          for line in run.stdout.str().splitlines() if line.startswith("FAILED "))
    result = asyncio.run(check_notebooks(CheckConfig(paths=[str(notebook_copy)])))
    check_failed = sorted(cell.id.name for notebook in result.notebooks for cell in notebook.failed_cells)

    assert len(check_failed) == 2, check_failed
    assert [name[: len(check)] for name, check in zip(nbval_failed, check_failed, strict=True)] == check_failed
