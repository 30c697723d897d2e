"""``kailash-nb update``: accept intended changes by writing the new outputs into the cells that changed.

The notebooks are run and judged exactly as ``check`` does; then, in each notebook, the cells whose outputs
changed (and cells stored without ever being run) get their new outputs, and nothing else is touched: other
cells, the metadata and the file's formatting stay byte for byte (``notebook_file.py``), so the git diff
shows only what was accepted. A cell that now raises (unless it is meant to), times out or kills the kernel
is never accepted: that notebook is left untouched and ``update`` fails, naming the cell. After an update,
``check`` passes.

A notebook is locked (``files.lock``) and its content recorded (``files.Snapshot``) before it runs; the new
outputs are written atomically, and only if the file is still that content: an edit saved during the run is
never overwritten, nor are outputs put into cells that moved. A second ``update`` of the same notebook refuses
at once instead of waiting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cells import CellId, identify
from .check import EXIT_COULD_NOT_RUN, EXIT_FAILED, EXIT_PASSED, CheckConfig, check_notebooks, run_until_done
from .files import FileChangedError, Snapshot, lock, write_atomically
from .notebook_file import CellUpdate, NotebookFileError, update_cells
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


def not_selected(result: NotebookResult, selection: Selection) -> list[CellResult]:
    """Changed cells that ``--cell``/``--node`` left out: they still differ after the update."""
    return [cell for cell in result.cells if cell.status == "changed" and not selection.wants(cell.id)]


def refusals(result: NotebookResult) -> list[CellResult]:
    """Cells that make a notebook impossible to update: they raise, time out or kill the kernel now."""
    return [cell for cell in result.cells if cell.status in _NEVER_ACCEPTED]


def write_accepted(path: Path, result: NotebookResult, cells: Sequence[CellResult],
                   snapshot: Snapshot | None = None) -> None:
    """Write the new outputs of ``cells`` into ``path`` atomically, leaving every other byte as it was.

    With ``snapshot`` (the file as it was read for the run), a file that changed since is not written:
    :class:`~kailash_nb.runner.files.FileChangedError`.
    """
    text = (snapshot.read() if snapshot is not None else path.read_bytes()).decode("utf-8")
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
    write_atomically(path, update_cells(text, updates), unchanged=snapshot)


def _with_count(output: Mapping[str, Any], count: int) -> dict[str, Any]:
    data = dict(output)
    if data.get("output_type") == "execute_result":
        data["execution_count"] = count
    return data


def update(config: CheckConfig, selection: Selection | None = None, *, printer: Printer | None = None) -> int:
    """``kailash-nb update``: the exit status is 0 when every notebook could be brought up to date, 1 when a
    notebook was not updated or a changed cell was left out by ``selection``, 3 when the only refusals are
    notebooks that could not run (as ``check``)."""
    from .check import plan

    selection = selection or Selection()
    printer = printer or Printer()
    notebooks = plan(config)
    check_selection(notebooks, selection)
    with contextlib.ExitStack() as held:
        snapshots = {str(path): _hold(held, path) for path in notebooks}
        result = run_until_done(lambda: check_notebooks(config, printer.ran))
        printer.line()
        return _write(result.notebooks, snapshots, selection, printer)


def _hold(held: contextlib.ExitStack, path: Path) -> Snapshot | None:
    """Lock ``path`` for this update and record its content; ``None`` if it cannot be read (the run says why)."""
    try:
        held.enter_context(lock(path))
        return Snapshot.take(path)
    except OSError:
        return None


def _write(notebooks: Sequence[NotebookResult], snapshots: Mapping[str, Snapshot | None], selection: Selection,
           printer: Printer) -> int:
    refused = accepted = unchanged = left_out = could_not_run = 0
    for notebook in notebooks:
        path = Path(notebook.path)
        if notebook.error is not None:
            printer.line(f"not updated: {notebook.path}: could not run: {notebook.error}")
            for line in describe_kernel_output(notebook):
                printer.line(line)
            refused += 1
            could_not_run += 1
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
        if cells:
            problem = _write_one(path, notebook, cells, snapshots.get(notebook.path))
            if problem:
                printer.line(f"not updated: {notebook.path}: {problem}")
                refused += 1
                continue
            for cell in cells:
                printer.line(f"accepted {cell.id} ({cell.summary if cell.status == 'changed' else 'first outputs'})")
            accepted += len(cells)
        left = not_selected(notebook, selection)
        for cell in left:
            printer.line(f"not accepted (not selected): {cell.id} ({cell.summary})")
        left_out += len(left)
        if not cells and not left:
            unchanged += 1
    printer.line(f"{accepted} cell(s) accepted; {unchanged} notebook(s) already up to date"
                 + (f"; {left_out} changed cell(s) not selected, still different" if left_out else "")
                 + (f"; {refused} notebook(s) not updated" if refused else ""))
    if not refused and not left_out:
        return EXIT_PASSED
    return EXIT_COULD_NOT_RUN if refused == could_not_run and not left_out else EXIT_FAILED


def _write_one(path: Path, notebook: NotebookResult, cells: Sequence[CellResult],
               snapshot: Snapshot | None) -> str:
    """Write the accepted cells; what went wrong as a sentence, or ``""``. The file is intact on failure."""
    if snapshot is None:
        return "it could not be read before the run, so it is not written"
    try:
        write_accepted(path, notebook, cells, snapshot)
    except FileChangedError:
        return "it changed on disk during the run: not written, so that the change is kept; run update again"
    except NotebookFileError as exc:
        return str(exc)
    except UnicodeDecodeError:
        return "it is not UTF-8 text, so it cannot be edited in place"
    except OSError as exc:
        return f"cannot write it ({exc.strerror or exc}); the file is left as it was"
    return ""
