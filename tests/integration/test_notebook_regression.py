"""The example notebooks are real regression tests: nbval (strict mode, the shipped sanitize file) passes on
an unmodified copy, and fails on exactly the cell whose node code was changed.

nbval runs in a subprocess on a copy in a temporary directory, so the stored notebooks are never touched.
One small notebook keeps this fast.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kailash_nb.notebook import sanitize_file_path

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = "03_mock_resources_and_calls.ipynb"
# The node whose code the test changes, and the change: its output changes, its calls do not.
NODE_HEADER = "%%kailash -w inventory audit"
ORIGINAL = 'result = {"audited": [item["id"] for item in items]}'
CHANGED = 'result = {"audited": [item["id"] * 10 for item in items]}'


def run_nbval(notebook: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "FORCE_COLOR", "PY_COLORS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
         "--nbval-sanitize-with", sanitize_file_path(), "-q", "-rf", "--color=no", str(notebook)],
        capture_output=True, text=True, cwd=notebook.parent, env=env, timeout=300,
    )


def code_cell_index(nb: nbformat.NotebookNode, header: str) -> int:
    """nbval's number for a cell: its index among the code cells."""
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    return next(i for i, cell in enumerate(code_cells) if cell.source.startswith(header))


@pytest.fixture
def notebook_copy(tmp_path: Path) -> Path:
    target = tmp_path / NOTEBOOK
    shutil.copy(NOTEBOOKS / NOTEBOOK, target)
    return target


def test_unmodified_notebook_passes_nbval(notebook_copy: Path) -> None:
    run = run_nbval(notebook_copy)
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"\b\d+ passed\b", run.stdout) and "failed" not in run.stdout


def test_changed_node_code_fails_nbval_on_that_cell(notebook_copy: Path) -> None:
    nb = nbformat.read(notebook_copy, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(NODE_HEADER))
    assert ORIGINAL in cell.source, "the notebook changed: update NODE_HEADER/ORIGINAL in this test"
    cell.source = cell.source.replace(ORIGINAL, CHANGED)
    nbformat.write(nb, notebook_copy)

    run = run_nbval(notebook_copy)

    assert run.returncode == 1, run.stdout[-3000:]
    failed = re.findall(r"^FAILED \S*::Cell (\d+)", run.stdout, re.MULTILINE)
    assert failed == [str(code_cell_index(nb, NODE_HEADER))], run.stdout[-3000:]
    assert "Cell outputs differ" in run.stdout
    assert "[10, 20, 30]" in run.stdout  # the new output is shown against the stored one
