"""update writes only the accepted cells' outputs: every other byte of the file stays as it was."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from kailash_nb.runner.notebook_file import CellUpdate, NotebookFileError, update_cells


def notebook_text() -> str:
    nb = new_notebook(cells=[
        new_markdown_cell("# Ünïcode title"),
        new_code_cell("print('a')", execution_count=1, outputs=[new_output("stream", name="stdout", text="a\n")]),
        new_code_cell("6 * 7", execution_count=2,
                      outputs=[new_output("execute_result", data={"text/plain": "42"}, execution_count=2)]),
        new_code_cell("x = 1"),
    ])
    nb.metadata["custom"] = {"keep": ["me", "exactly"]}
    return nbformat.writes(nb) + "\n"


def test_writing_the_stored_outputs_back_changes_no_byte() -> None:
    text = notebook_text()
    nb = nbformat.reads(text, as_version=4)
    updates = [CellUpdate(i, cell.outputs) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    assert update_cells(text, updates) == text


def test_only_the_updated_cell_changes_and_it_reads_as_nbformat_writes_it() -> None:
    text = notebook_text()
    new = [new_output("execute_result", data={"text/plain": "43\nmore"}, execution_count=2)]
    updated = update_cells(text, [CellUpdate(2, new)])
    expected = nbformat.reads(text, as_version=4)
    expected.cells[2].outputs = new
    assert updated == nbformat.writes(expected) + "\n"
    changed = [line for line in updated.splitlines() if line not in text.splitlines()]
    assert changed == ['       "43\\n",', '       "more"']


def test_a_cell_never_run_gets_its_execution_count() -> None:
    updated = update_cells(notebook_text(), [CellUpdate(3, [], execution_count=3)])
    assert nbformat.reads(updated, as_version=4).cells[3].execution_count == 3


def test_another_style_of_file_keeps_its_style() -> None:
    nb = json.loads(notebook_text())
    text = json.dumps(nb, indent=2, ensure_ascii=False) + "\n"   # keys in nbformat's order, indent 2
    nb_back = nbformat.reads(text, as_version=4)
    updates = [CellUpdate(i, cell.outputs) for i, cell in enumerate(nb_back.cells) if cell.cell_type == "code"]
    assert update_cells(text, updates) == text
    new = [new_output("stream", name="stdout", text="b\n")]
    updated = update_cells(text, [CellUpdate(1, new)])
    assert '      "outputs": [\n        {\n          "name": "stdout",' in updated


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "expected an object"),
    ('{"metadata": {}}', 'no "cells" list'),
    ('{"cells": [{"cell_type": "markdown", "source": ""}]}', "cell 1 is not a code cell"),
    ('{"cells": []}', "cell 1 does not exist"),
    ('{"cells": [', "not a notebook's JSON"),
])
def test_a_file_that_is_not_an_editable_notebook_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(NotebookFileError, match=message):
        update_cells(text, [CellUpdate(0, [])])
