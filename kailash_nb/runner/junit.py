"""JUnit XML for CI dashboards: a test suite per notebook, a test case per code cell, named as everywhere.

``classname`` is the notebook's path and ``name`` the cell's name (``cell 9: node processor``), so a CI
page lists ``notebooks/02_workflows.ipynb`` › ``cell 9: node processor``, as the terminal and the report do.

The two kinds of trouble stay apart, as the exit status keeps them: a cell whose output changed, or that
raised, timed out or killed its kernel, is a ``<failure>`` (a regression); a notebook that could not run at
all (its kernel did not start, the file could not be read) is one ``<error>`` test case named ``notebook``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from .results import CellResult, NotebookResult
from .terminal import describe_failure

_FAILURES = frozenset({"changed", "raised", "timed out", "kernel died"})


def junit_xml(results: Sequence[NotebookResult], seconds: float) -> ET.ElementTree:
    suites = ET.Element("testsuites", name="kailash-nb check", time=f"{seconds:.3f}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in results:
        counts = {
            "tests": len(result.cells) + result.could_not_run,  # the could-not-run case "notebook" counts
            "failures": sum(cell.status in _FAILURES for cell in result.cells),
            "errors": int(result.could_not_run),
            "skipped": sum(cell.status in ("skipped", "not run") for cell in result.cells),
        }
        suite = ET.SubElement(suites, "testsuite", {"name": result.path, "time": f"{result.seconds:.3f}",
                                                   **{key: str(value) for key, value in counts.items()}})
        if result.error is not None:
            case = ET.SubElement(suite, "testcase", classname=result.path, name="notebook", file=result.path)
            error = ET.SubElement(case, "error", message=result.error, type="could not run")
            if result.kernel_output:
                error.text = result.kernel_output
        for cell in result.cells:
            _testcase(suite, cell)
        for key, value in counts.items():
            totals[key] += value
    suites.attrib.update({key: str(value) for key, value in totals.items()})
    ET.indent(suites)
    return ET.ElementTree(suites)


def _testcase(suite: ET.Element, cell: CellResult) -> None:
    case = ET.SubElement(suite, "testcase", classname=cell.id.path, name=cell.id.name, file=cell.id.path,
                         time=f"{cell.seconds:.3f}")
    if cell.status in _FAILURES:
        kind = "outputs changed" if cell.status == "changed" else cell.status
        failure = ET.SubElement(case, "failure", message=cell.summary, type=kind)
        failure.text = "\n".join(describe_failure(cell))
    elif cell.status in ("skipped", "not run"):
        ET.SubElement(case, "skipped", message=cell.reason or cell.status)


def write_junit(path: str | Path, results: Sequence[NotebookResult], seconds: float) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(results, seconds).write(target, encoding="utf-8", xml_declaration=True)
    return target
