"""One name per cell: the position among all cells and a label (the node of a %%kailash cell, else code)."""

from __future__ import annotations

import nbformat
import pytest

from kailash_nb.notebook.arguments import parse_cell_line
from kailash_nb.runner.cells import CellId, cell_label, cell_options, identify, kailash_cell_node


@pytest.mark.parametrize(("source", "label"), [
    ("%%kailash processor items=producer.items\nresult = {}", "node processor"),
    ("%%kailash -w orders charge total=cart.total\nresult = {}", "node charge (workflow orders)"),
    ("%%kailash charge --workflow=orders --timeout 2\nresult = {}", "node charge (workflow orders)"),
    ("%%kailash --description 'the first step' load  # loads\nresult = {}", "node load"),
    ("%%kailash -wnotebook load\nresult = {}", "node load"),
    ("\n\n# NBVAL_IGNORE_OUTPUT\n# why: durations\nprint(result.execution_time)", "print(result.execution_time)"),
    ("r = %kailash run", "r = %kailash run"),
    ("x = data[::2]", "x = data[: :2]"),
    ("value = " + "1 + " * 30 + "1", ("value = " + "1 + " * 30)[:57].rstrip() + "..."),
    ("", ""),
    ("# only a comment", "# only a comment"),
])
def test_a_cell_is_labelled_by_its_node_or_first_line_of_code(source: str, label: str) -> None:
    assert cell_label(source) == label


@pytest.mark.parametrize("line", [
    "processor items=producer.items",
    "-w orders charge total=cart.total",
    "charge --workflow=orders --timeout 2",
    "--no-run -w etl load rows=extract.rows",
    "load --description 'a b' -w w2",
])
def test_the_node_and_workflow_are_read_as_the_magic_reads_them(line: str) -> None:
    args, _ = parse_cell_line(line)
    assert kailash_cell_node(f"%%kailash {line}") == (args.node, args.workflow)


def test_every_code_cell_is_numbered_among_all_cells_as_jupyterlab_counts() -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("%load_ext kailash_nb"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("%%kailash producer\nresult = {'items': [1]}"),
    ])
    ids = identify("notebooks/demo.ipynb", nb.cells)
    assert list(ids) == [1, 3]
    assert str(ids[3]) == "notebooks/demo.ipynb::cell 4: node producer"
    assert (ids[3].node, ids[1].node) == ("producer", None)
    assert ids[1] == CellId("notebooks/demo.ipynb", 2, "%load_ext kailash_nb")
    assert ids[1].name == "cell 2: %load_ext kailash_nb"


@pytest.mark.parametrize(("source", "tags", "expected"), [
    ("print(1)", [], dict(check=True, raises=False, skip=False, compare_images=False)),
    ("# NBVAL_IGNORE_OUTPUT\nprint(1)", [], dict(check=False, raises=False, skip=False, compare_images=False)),
    ("print(1)", ["nbval-ignore-output"], dict(check=False, raises=False, skip=False, compare_images=False)),
    ("1/0", ["raises-exception"], dict(check=True, raises=True, skip=False, compare_images=False)),
    ("# NBVAL_RAISES_EXCEPTION\n1/0", [], dict(check=True, raises=True, skip=False, compare_images=False)),
    ("# NBVAL_SKIP\nprint(1)", [], dict(check=True, raises=False, skip=True, compare_images=False)),
    ("# KAILASH_NB_COMPARE_IMAGES\nplot()", [], dict(check=True, raises=False, skip=False, compare_images=True)),
    ("plot()", ["kailash-nb-compare-images"], dict(check=True, raises=False, skip=False, compare_images=True)),
])
def test_markers_and_tags_are_read_as_nbval_reads_them(source: str, tags: list[str], expected: dict) -> None:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": tags})
    options = cell_options(cell)
    assert {name: getattr(options, name) for name in expected} == expected


def test_lax_mode_compares_only_cells_marked_to_check() -> None:
    assert not cell_options(nbformat.v4.new_code_cell("print(1)"), lax=True).check
    assert cell_options(nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"), lax=True).check
