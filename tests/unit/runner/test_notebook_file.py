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


def _styled(style: str) -> str:
    nb = json.loads(notebook_text())
    if style == "crlf":
        return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").replace("\n", "\r\n")
    if style == "tabs":
        return json.dumps(nb, indent="\t", ensure_ascii=False) + "\n"
    if style == "tabs, crlf":
        return (json.dumps(nb, indent="\t", ensure_ascii=False) + "\n").replace("\n", "\r\n")
    if style == "minified":
        return json.dumps(nb, separators=(",", ":"), ensure_ascii=False)
    assert style == "one line"  # json.dump's defaults: no indentation, ", " and ": "
    return json.dumps(nb)


@pytest.mark.parametrize("style", ["crlf", "tabs", "tabs, crlf", "minified", "one line"])
def test_line_endings_and_indentation_are_kept_and_only_the_outputs_change(style: str) -> None:
    text = _styled(style)
    nb = nbformat.reads(text, as_version=4)
    unchanged = [CellUpdate(i, cell.outputs) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    assert update_cells(text, unchanged) == text

    new = [new_output("execute_result", data={"text/plain": "43\nmore"}, execution_count=2),
           new_output("stream", name="stdout", text="b\n")]
    updated = update_cells(text, [CellUpdate(2, new)])

    # Every byte outside the outputs of cell 3 is as it was.
    start, end = _outputs_span(text, 2)
    prefix, suffix = text[:start], text[end:]
    assert updated.startswith(prefix) and updated.endswith(suffix)
    # The new outputs are written in the file's style, and nbformat reads them back.
    written = updated[len(prefix):len(updated) - len(suffix)]
    if "crlf" in style:
        assert "\r\n" in written and "\n" not in written.replace("\r\n", "")
    if "tabs" in style:
        newline = "\r\n" if "crlf" in style else "\n"
        assert f'[{newline}\t\t\t\t{{{newline}\t\t\t\t\t"data": {{{newline}\t\t\t\t\t\t"text/plain": [' in written
    if style in ("minified", "one line"):
        assert "\n" not in updated
        spaced = '"text/plain": ["43\\n", "more"]}, "execution_count": 2' in written
        compact = '"text/plain":["43\\n","more"]},"execution_count":2' in written
        assert (spaced, compact) == ((True, False) if style == "one line" else (False, True))
    again = nbformat.reads(updated, as_version=4)
    nbformat.validate(again)
    assert [dict(o) for o in again.cells[2].outputs] == [
        {"output_type": "execute_result", "data": {"text/plain": "43\nmore"}, "metadata": {}, "execution_count": 2},
        {"output_type": "stream", "name": "stdout", "text": "b\n"}]


def _outputs_span(text: str, code_cell: int) -> tuple[int, int]:
    """Where the value of the ``outputs`` of the ``code_cell``-th code cell (from 1) is in ``text``."""
    at = -1
    for _ in range(code_cell):
        at = text.index('"outputs"', at + 1)
    start = text.index("[", at)
    return start, json.JSONDecoder().raw_decode(text, start)[1]


def test_an_nbformat_3_notebook_is_refused_with_how_to_convert_it() -> None:
    text = json.dumps({"metadata": {}, "nbformat": 3, "nbformat_minor": 0,
                       "worksheets": [{"cells": [{"cell_type": "code", "input": "1", "outputs": []}]}]})
    with pytest.raises(NotebookFileError, match="an nbformat 3 notebook: update writes only nbformat 4; convert it"):
        update_cells(text, [CellUpdate(0, [])])
