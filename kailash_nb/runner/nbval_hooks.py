"""What kailash_nb adds to a plain ``pytest --nbval`` run (registered by the plugin only under --nbval).

- Cells are named as everywhere else in the kit: ``notebooks/02_x.ipynb::cell 9: node processor`` instead
  of nbval's ``Cell 5`` (which counts code cells, and from 0 in some versions).
- A cell whose outputs differ reports the differing output as a ``stored``/``new`` diff of its text, not
  nbval's dump of HTML markup with ``-`` for the new side.
- PNG images that are meant to be stable (the kit's workflow graph, cells marked to compare images) are
  compared with a tolerance, which nbval does not do.
- ``-n N`` keeps each notebook's cells on one worker (they share one kernel), as ``--dist loadscope``
  would, while other tests are still spread one by one as with ``--dist load``.
- A notebook's kernel that dies before it answers ``kernel_info`` (the port race of ``kernel.py``) is
  started again, up to ``kernel.START_TRIES`` starts, with one line on stderr per retry. nbval starts the
  kernel in its notebook collector's ``setup()`` (``RunningKernel``, on fresh ports each time), so the
  kit's collector subclass retries that call; nbval itself sends the kernel's stderr to ``os.devnull``.

The cells stay nbval's own items (a subclass adds the name, the images and the diff), so what passes and
fails is still nbval's decision.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError

from .cells import CellId, cell_label, cell_options

#: xdist modes that would send the cells of one notebook to different workers.
_SPLITTING_MODES = frozenset({"load", "worksteal"})


class NbvalHooks:
    """The hooks, as a plugin object: registered in ``pytest_configure`` when --nbval is given."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Generator[
            None, list[Any], list[Any]]:
        """nbval's notebook collector, as the kit's subclass whose kernel start is retried."""
        collected = yield
        return [KailashNotebook.from_parent(parent, path=file_path) if type(node) is IPyNbFile else node
                for node in collected]

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[
            None, pytest.CollectReport, pytest.CollectReport]:
        """Replace the cells nbval collected from a notebook by the same cells under the kit's names."""
        report = yield
        if isinstance(collector, IPyNbFile) and report.result:
            report.result = [KailashCell.renamed(item) for item in report.result]
        return report

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist", "no") not in _SPLITTING_MODES:
            return None
        return _notebook_scheduling(config, log)


#: nbval's (jupyter_client's) words for a kernel that died before it answered ``kernel_info``.
_DIED_AT_START = "Kernel died before replying to kernel_info"


class KailashNotebook(IPyNbFile):
    """nbval's notebook collector; a kernel that dies before answering is started again on fresh ports."""

    def setup(self) -> None:
        from .kernel import START_TRIES

        for attempt in range(1, START_TRIES + 1):
            try:
                super().setup()
                return
            except RuntimeError as exc:
                if _DIED_AT_START not in str(exc) or attempt == START_TRIES:
                    raise
                self._log(f"kailash-nb: {self.nodeid}: the kernel died before answering; starting it again "
                          f"on fresh ports (try {attempt + 1} of {START_TRIES})")

    def _log(self, line: str) -> None:
        """One line on the real stderr, past pytest's output capture (setup output is otherwise hidden)."""
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if capture is None:
            print(line, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(line, file=sys.stderr, flush=True)


class KailashCell(IPyNbCell):
    """nbval's cell item under the kit's name; it also compares stable images and reports readable diffs."""

    cell_id: CellId

    @classmethod
    def renamed(cls, item: Any) -> Any:
        """The same cell as a ``KailashCell`` named ``cell N: label`` (other items are kept as they are)."""
        if type(item) is not IPyNbCell:
            return item
        position = next((i for i, cell in enumerate(item.parent.nb.cells) if cell is item.cell), None)
        if position is None:
            return item
        cell_id = CellId(item.parent.nodeid, position + 1, cell_label(item.cell.source))
        new = cls.from_parent(item.parent, name=cell_id.name, cell_num=item.cell_num, cell=item.cell,
                              options=item.options)
        new.cell_id = cell_id
        return new

    def reportinfo(self) -> tuple[Any, int, str]:
        # The domain heads a failure's section. pytest reads a domain that ends the node id as a dotted
        # Python name and turns its dots into "::" in verbose lines ("kailash_nb::notebook"): the trailing
        # space keeps the cell's name as it is there.
        return self.path, 0, f"{self.cell_id} "

    def runtest(self) -> None:
        super().runtest()
        self._check_images()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return self._readable_failure(excinfo.value) or super().repr_failure(excinfo)

    def _check_images(self) -> None:
        from .images import compare_images

        if self.test_outputs is None or not self.options.get("check") or self.cell.execution_count is None:
            return
        requested = cell_options(self.cell).compare_images
        differences = compare_images(self.cell.outputs, self.test_outputs, requested=requested)
        if differences:
            details = "\n".join(f"  {d.what}" for d in differences)
            raise NbCellError(self.cell_num, "Cell images differ", self.cell.source,
                              f"\n{details}\n  (kailash-nb check shows both images and their difference)")

    def _readable_failure(self, error: BaseException) -> str | None:
        """What failed, first line first (pytest's short summary shows it): the differing outputs as a
        ``stored``/``new`` diff, or the error with its traceback, without colour codes."""
        if not isinstance(error, NbCellError):
            return None
        from .compare import compare_outputs, strip_ansi
        from .images import compare_images
        from .results import CellResult
        from .terminal import describe_failure

        if str(error) in ("Cell outputs differ", "Cell images differ") and self.test_outputs is not None:
            options = cell_options(self.cell)
            patterns = list(self.parent.sanitize_patterns.items())
            result = CellResult(
                self.cell_id, "changed", self.cell.source, options,
                differences=tuple(compare_outputs(self.cell.outputs, self.test_outputs, patterns)),
                image_differences=tuple(compare_images(self.cell.outputs, self.test_outputs,
                                                       requested=options.compare_images)),
            )
            return "\n".join([result.summary, *describe_failure(result)])
        traceback = strip_ansi(getattr(error, "inner_traceback", None) or "").strip("\n")
        errors = [o for o in self.test_outputs or () if o.get("output_type") == "error"]
        what = f"raised {errors[-1]['ename']}: {errors[-1]['evalue']}".rstrip(": ") if errors else str(error)
        return "\n".join([what, *("    " + line for line in traceback.splitlines())])


def _notebook_scheduling(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        """A notebook's cells together on one worker, in order; every other test on its own."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(".ipynb") else nodeid

    return NotebookScheduling(config, log)
