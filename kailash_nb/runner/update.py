"""``kailash-nb update``: accept intended changes by writing the new outputs into the cells that changed.

The notebooks are run and judged exactly as ``check`` does; then, in each notebook, the cells whose outputs
changed (and cells stored without ever being run) get their new outputs, and nothing else is touched: other
cells, the metadata and the file's formatting stay byte for byte (``notebook_file.py``), so the git diff
shows only what was accepted. A cell that now raises (unless it is meant to), times out or kills the kernel
is never accepted: that notebook is left untouched and ``update`` fails, naming the cell. After an update,
``check`` passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cells import CellId, identify
from .check import EXIT_COULD_NOT_RUN, EXIT_FAILED, EXIT_PASSED, CheckConfig, check_notebooks, run_until_done
from .notebook_file import CellUpdate, update_cells
from .results import CellResult, NotebookResult
from .terminal import Printer, describe_failure, describe_kernel_output

_NEVER_ACCEPTED = frozenset({"raised", "timed out", "kernel died"})


@dataclass(slots=True, frozen=True)
class Selection:
    """Which cells may be accepted: positions (``--cell 9``) and node names (``--node processor``);
    empty means every changed cell."""

    cells: frozenset[int] = frozenset()
    nodes: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.cells or self.nodes)

    def wants(self, cell_id: CellId) -> bool:
        if not self:
            return True
        return cell_id.position in self.cells or cell_id.node in self.nodes


def check_selection(paths: Sequence[Path], selection: Selection) -> None:
    """Refuse ``--cell``/``--node`` values that match no code cell of the notebooks, listing what exists."""
    if not selection:
        return
    import nbformat

    ids = [cell_id for path in paths for cell_id in identify(str(path), nbformat.read(path, 4).cells).values()]
    missing_cells = sorted(n for n in selection.cells if not any(i.position == n for i in ids))
    missing_nodes = sorted(n for n in selection.nodes if not any(i.node == n for i in ids))
    problems = []
    if missing_cells:
        code = ", ".join(str(i.position) for i in ids) or "none"
        problems.append(f"--cell {', '.join(map(str, missing_cells))}: no such code cell (code cells: {code})")
    if missing_nodes:
        nodes = ", ".join(sorted({i.node for i in ids if i.node})) or "none"
        problems.append(f"--node {', '.join(missing_nodes)}: no %%kailash cell defines it (nodes: {nodes})")
    if problems:
        from .plan import PlanError

        raise PlanError("; ".join(problems))


def accepted_cells(result: NotebookResult, selection: Selection) -> list[CellResult]:
    """The cells of ``result`` whose new outputs ``update`` writes."""
    return [cell for cell in result.cells if selection.wants(cell.id) and _acceptable(cell)]


def _acceptable(cell: CellResult) -> bool:
    if cell.status == "changed":
        return True
    # A cell stored without ever being run: it gets its outputs and an execution count, as "Run All" and
    # "Save" in Jupyter would give it (so that it is compared from now on, unless it is ignored).
    return cell.stored_execution_count is None and cell.status == "passed"


def refusals(result: NotebookResult) -> list[CellResult]:
    """Cells that make a notebook impossible to update: they raise, time out or kill the kernel now."""
    return [cell for cell in result.cells if cell.status in _NEVER_ACCEPTED]


def write_accepted(path: Path, result: NotebookResult, cells: Sequence[CellResult]) -> None:
    """Write the new outputs of ``cells`` into ``path``, leaving every other byte as it was."""
    text = path.read_text(encoding="utf-8")
    counts = [c.stored_execution_count for c in result.cells if c.stored_execution_count is not None]
    next_count = max(counts, default=0) + 1
    updates = []
    for cell in cells:
        count = cell.stored_execution_count
        new_count = None
        if count is None:
            count = new_count = next_count
            next_count += 1
        outputs = [_with_count(output, count) for output in cell.new_outputs]
        updates.append(CellUpdate(cell.id.position - 1, outputs, new_count))
    path.write_text(update_cells(text, updates), encoding="utf-8")


def _with_count(output: Mapping[str, Any], count: int) -> dict[str, Any]:
    data = dict(output)
    if data.get("output_type") == "execute_result":
        data["execution_count"] = count
    return data


def update(config: CheckConfig, selection: Selection | None = None, *, printer: Printer | None = None) -> int:
    """``kailash-nb update``: the exit status is 0 when every notebook could be brought up to date, 1 when a
    cell refused it, 3 when the only refusals are notebooks that could not run (as ``check``)."""
    from .check import plan

    selection = selection or Selection()
    printer = printer or Printer()
    check_selection(plan(config), selection)
    result = run_until_done(lambda: check_notebooks(config, printer.ran))
    printer.line()
    refused = accepted = unchanged = 0
    for notebook in result.notebooks:
        path = Path(notebook.path)
        if notebook.error is not None:
            printer.line(f"not updated: {notebook.path}: could not run: {notebook.error}")
            for line in describe_kernel_output(notebook):
                printer.line(line)
            refused += 1
            continue
        broken = refusals(notebook)
        if broken:
            refused += 1
            printer.line(f"not updated: {notebook.path}: these cells must run cleanly first "
                         "(fix them, or tag a cell that is meant to raise with raises-exception):")
            for cell in broken:
                printer.line(f"  {cell.id}")
                for line in describe_failure(cell):
                    printer.line("  " + line)
            for line in describe_kernel_output(notebook):
                printer.line(line)
            continue
        cells = accepted_cells(notebook, selection)
        if not cells:
            unchanged += 1
            continue
        write_accepted(path, notebook, cells)
        for cell in cells:
            printer.line(f"accepted {cell.id} ({cell.summary if cell.status == 'changed' else 'first outputs'})")
        accepted += len(cells)
    printer.line(f"{accepted} cell(s) accepted; {unchanged} notebook(s) already up to date"
                 + (f"; {refused} notebook(s) not updated" if refused else ""))
    if not refused:
        return EXIT_PASSED
    return EXIT_FAILED if any(refusals(notebook) for notebook in result.notebooks) else EXIT_COULD_NOT_RUN
