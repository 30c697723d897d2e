"""What a notebook cell is called and how it is to be checked: one identity everywhere, nbval's markers.

A cell is named by its notebook, its 1-based position among *all* the notebook's cells (as JupyterLab's
status bar counts them) and a label: ``node NAME`` for a ``%%kailash`` cell (``node NAME (workflow W)``
outside the default workflow), else the cell's first line of code::

    notebooks/02_workflows.ipynb::cell 9: node processor
    notebooks/02_workflows.ipynb::cell 4: result = await runtime.execute_workflow_async(demo)

The terminal, pytest's item ids, JUnit XML and the HTML report all use :func:`cell_name` and :class:`CellId`.
"""

from __future__ import annotations

import re
import shlex
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The workflow a ``%%kailash`` cell defines its node in when it names none (kailash_nb.notebook.arguments).
DEFAULT_WORKFLOW = "notebook"
LABEL_LIMIT = 60

#: A cell asks for its PNG outputs to be compared (they are not, unless a chart says it is stable).
COMPARE_IMAGES_MARKER = "KAILASH_NB_COMPARE_IMAGES"
COMPARE_IMAGES_TAG = "kailash-nb-compare-images"

# Options of the %%kailash line that take a value (everything else starting with "-" is a flag).
_VALUE_OPTIONS = frozenset({"-w", "--workflow", "--timeout", "--description"})


@dataclass(slots=True, frozen=True)
class CellId:
    """Where a cell is: ``path`` as given on the command line, ``position`` among all cells (from 1)."""

    path: str
    position: int
    label: str
    node: str | None = None  # the node a %%kailash cell defines (in any workflow), for ``update --node``

    @property
    def name(self) -> str:
        """``cell 9: node processor``: the cell's name within its notebook (a pytest item name)."""
        return cell_name(self.position, self.label)

    def __str__(self) -> str:
        return f"{self.path}::{self.name}"


def cell_name(position: int, label: str) -> str:
    return f"cell {position}: {label}" if label else f"cell {position}"


def cell_label(source: str) -> str:
    """``node NAME`` for a ``%%kailash`` cell, else the first line of code (comments and blanks skipped)."""
    return _describe(source)[0]


def _describe(source: str) -> tuple[str, str | None]:
    """The cell's label, and the node it defines when it is a ``%%kailash`` cell."""
    lines = source.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%kailash"):
        node, workflow = kailash_cell_node(first)
        if node is not None:
            where = "" if workflow == DEFAULT_WORKFLOW else f" (workflow {workflow})"
            return f"node {node}{where}", node
    code = next((line.strip() for line in lines if line.strip() and not line.strip().startswith("#")), first)
    code = re.sub(r"\s+", " ", code).replace("::", ": :")  # "::" separates a pytest id's parts
    return (code if len(code) <= LABEL_LIMIT else code[: LABEL_LIMIT - 3].rstrip() + "..."), None


def kailash_cell_node(line: str) -> tuple[str | None, str]:
    """(node, workflow) named on a ``%%kailash NODE [INPUT=SOURCE.PATH ...] [-w NAME] ...`` line."""
    try:
        words = shlex.split(line, comments=True)[1:]
    except ValueError:
        words = line.split()[1:]
    node: str | None = None
    workflow = DEFAULT_WORKFLOW
    position = 0
    while position < len(words):
        word = words[position]
        option, equals, value = word.partition("=")
        if option in _VALUE_OPTIONS:
            if not equals:
                position += 1
                value = words[position] if position < len(words) else ""
            if option in ("-w", "--workflow"):
                workflow = value
        elif word.startswith("-w") and not word.startswith("--"):
            workflow = word[2:]  # -wNAME, as argparse allows
        elif not word.startswith("-") and node is None:
            node = word
        position += 1
    return node, workflow


def identify(path: str, cells: list[Any]) -> dict[int, CellId]:
    """The identity of every code cell of a notebook, by its index in ``cells`` (0-based)."""
    return {
        index: CellId(path, index + 1, *_describe(_source(cell)))
        for index, cell in enumerate(cells)
        if cell.get("cell_type") == "code"
    }


@dataclass(slots=True, frozen=True)
class CellOptions:
    """How a cell is checked, from nbval's comment markers and tags plus the kit's image marker.

    ``check``: compare outputs (``NBVAL_IGNORE_OUTPUT`` turns it off; under ``lax`` only
    ``NBVAL_CHECK_OUTPUT`` turns it on); ``raises``: the cell is expected to raise
    (``NBVAL_RAISES_EXCEPTION``, tag ``raises-exception``); ``skip``: not run at all (``NBVAL_SKIP``);
    ``compare_images``: its PNG outputs are compared too.
    """

    check: bool = True
    raises: bool = False
    skip: bool = False
    compare_images: bool = False


def cell_options(cell: Mapping[str, Any], *, lax: bool = False) -> CellOptions:
    """Read a cell's markers with nbval's own parser, so that the kit and nbval agree on every cell."""
    from nbval.plugin import find_comment_markers, find_metadata_tags

    source = _source(cell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbval warns about conflicting markers; it uses the last one
        options: dict[str, bool] = dict(find_metadata_tags(cell.get("metadata", {})))
        options.update(find_comment_markers(source))
    tags = cell.get("metadata", {}).get("tags") or []
    compare_images = COMPARE_IMAGES_TAG in tags or any(
        line.strip().lstrip("#").strip() == COMPARE_IMAGES_MARKER
        for line in source.splitlines()
        if line.strip().startswith("#")
    )
    return CellOptions(
        check=options.get("check", not lax),
        raises=options.get("check_exception", False),
        skip=options.get("skip", False),
        compare_images=compare_images,
    )


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
