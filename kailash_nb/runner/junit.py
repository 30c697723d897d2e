"""JUnit XML for CI dashboards: a test suite per notebook, a test case per code cell, named as everywhere.

``classname`` is the notebook's path and ``name`` the cell's name (``cell 9: node processor``), so a CI
page lists ``notebooks/02_workflows.ipynb`` › ``cell 9: node processor``, as the terminal and the report do.
Characters XML 1.0 cannot hold (NUL, ESC, BEL... from outputs and errors) are written as their Python
escapes (ESC as the four characters ``\\x1b``), so that every JUnit reader accepts the file.

The two kinds of trouble stay apart, as the exit status keeps them: a cell whose output changed, or that
raised, timed out or killed its kernel, is a ``<failure>`` (a regression); a notebook that could not run at
all (its kernel did not start, the file could not be read) is one ``<error>`` test case named ``notebook``.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from .files import write_atomically
from .results import CellResult, NotebookResult
from .terminal import describe_failure

_FAILURES = frozenset({"changed", "raised", "timed out", "kernel died"})
#: What XML 1.0 cannot hold: control characters other than tab and line breaks, surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
    _only_xml_characters(suites)
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


def _only_xml_characters(root: ET.Element) -> None:
    """Write the characters XML 1.0 cannot hold as their Python escapes, in every text and attribute."""

    def escaped(text: str) -> str:
        return _NOT_XML.sub(lambda match: ascii(match.group())[1:-1], text)

    for element in root.iter():
        if element.text:
            element.text = escaped(element.text)
        element.attrib.update({key: escaped(value) for key, value in element.attrib.items()})


def write_junit(path: str | Path, results: Sequence[NotebookResult], seconds: float) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    xml = io.BytesIO()
    junit_xml(results, seconds).write(xml, encoding="utf-8", xml_declaration=True)
    write_atomically(target, xml.getvalue())
    return target
