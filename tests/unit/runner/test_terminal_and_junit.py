"""What a person reads about a failing cell: in the terminal and in JUnit XML, under the same name."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

from nbformat.v4 import new_output

from kailash_nb.runner.cells import CellId, CellOptions
from kailash_nb.runner.compare import compare_outputs
from kailash_nb.runner.junit import junit_xml, write_junit
from kailash_nb.runner.results import CellResult, NotebookResult
from kailash_nb.runner.terminal import Printer, describe_failure

CELL = CellId("notebooks/02.ipynb", 9, "node processor")


def changed() -> CellResult:
    stored = [new_output("execute_result", data={"text/plain": "doubled [2, 4, 6]", "text/html": "<td>2</td>"},
                         execution_count=3)]
    new = [new_output("execute_result", data={"text/plain": "doubled [3, 6, 9]", "text/html": "<td>3</td>"},
                      execution_count=3)]
    return CellResult(CELL, "changed", "%%kailash processor", CellOptions(), tuple(stored), tuple(new), 3,
                      differences=tuple(compare_outputs(stored, new)))


def raised() -> CellResult:
    error = new_output("error", ename="KeyError", evalue="'items'",
                       traceback=["\x1b[0;31mKeyError\x1b[0m", "File <node load>:2", "KeyError: 'items'"])
    return CellResult(CellId("notebooks/02.ipynb", 4, "node load"), "raised", "%%kailash load", CellOptions(),
                      (), (error,), 2, compared=False)


def test_a_changed_value_is_a_diff_labelled_stored_and_new_and_html_is_only_mentioned() -> None:
    lines = describe_failure(changed())
    assert lines[:5] == ["  text/plain changed:", "    --- stored", "    +++ new", "    @@ -1 +1 @@",
                         "    -doubled [2, 4, 6]"]
    assert "    +doubled [3, 6, 9]" in lines
    assert not any("<td>" in line for line in lines)
    assert "  text/html changed: the report shows both renderings" in lines


def test_an_error_shows_its_name_and_traceback_without_colour_codes() -> None:
    lines = describe_failure(raised())
    assert lines[0] == "  raised KeyError: 'items'"
    assert "    File <node load>:2" in lines
    assert not any("\x1b[" in line for line in lines)


def test_no_colour_codes_when_not_writing_to_a_terminal() -> None:
    out = io.StringIO()
    printer = Printer(out)
    printer.failures([NotebookResult("notebooks/02.ipynb", (changed(), raised()))])
    text = out.getvalue()
    assert "FAILED notebooks/02.ipynb::cell 9: node processor" in text
    assert "\x1b[" not in text


def test_colour_on_a_terminal() -> None:
    out = io.StringIO()
    Printer(out, colour=True).failures([NotebookResult("notebooks/02.ipynb", (changed(),))])
    assert "\x1b[31m    -doubled [2, 4, 6]" in out.getvalue()


def test_junit_names_each_cell_as_the_terminal_does() -> None:
    passed = CellResult(CellId("notebooks/02.ipynb", 2, "%load_ext kailash_nb"), "passed", "", CellOptions())
    skipped = CellResult(CellId("notebooks/02.ipynb", 5, "slow()"), "skipped", "", CellOptions(),
                         reason="NBVAL_SKIP")
    result = NotebookResult("notebooks/02.ipynb", (passed, raised(), skipped, changed()), 2.5)
    root = junit_xml([result], 3.0).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "notebooks/02.ipynb"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "2", "errors": "0", "skipped": "1"}
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["cell 2: %load_ext kailash_nb", "cell 4: node load", "cell 5: slow()",
                           "cell 9: node processor"]
    assert all(case.get("classname") == "notebooks/02.ipynb" for case in cases.values())
    failure = cases["cell 9: node processor"].find("failure")
    assert failure is not None and failure.get("message") == "text/plain changed; text/html changed"
    assert "-doubled [2, 4, 6]" in (failure.text or "")
    raised_failure = cases["cell 4: node load"].find("failure")
    assert raised_failure is not None and raised_failure.get("message") == "raised KeyError: 'items'"
    assert raised_failure.get("type") == "raised" and cases["cell 4: node load"].find("error") is None
    ET.fromstring(ET.tostring(root))  # well-formed


def test_junit_xml_with_control_characters_in_outputs_and_errors_parses(tmp_path: Path) -> None:
    stored = [new_output("stream", name="stdout", text="ring\x07 null\x00 done\n")]
    new = [new_output("stream", name="stdout", text="ring\x07 null\x00 \x1b[1mbold\x1b[0m \ud800 done\n")]
    bell = CellResult(CellId("notebooks/02.ipynb", 3, "print('\x07')"), "changed", "", CellOptions(),
                      tuple(stored), tuple(new), 1, differences=tuple(compare_outputs(stored, new)))
    error = new_output("error", ename="ValueError", evalue="bad byte \x00\x1b\x08",
                       traceback=["ValueError: bad byte \x00\x1b\x08"])
    nul = CellResult(CellId("notebooks/02.ipynb", 4, "node load"), "raised", "", CellOptions(), (), (error,), 2)
    broken = NotebookResult("notebooks/\x0b.ipynb", (), error="cannot read notebooks/\x0b.ipynb: \x00")

    path = write_junit(tmp_path / "junit.xml", [NotebookResult("notebooks/02.ipynb", (bell, nul)), broken], 1.0)

    root = ET.parse(path).getroot()  # a reader that follows XML 1.0 accepts the file
    cases = {case.get("name"): case for case in root.iter("testcase")}
    failure = cases["cell 3: print('\\x07')"].find("failure")
    assert failure is not None and "+ring\\x07 null\\x00 \\x1b[1mbold\\x1b[0m \\ud800 done" in (failure.text or "")
    error_element = cases["cell 4: node load"].find("failure")  # a cell that raised is a regression
    assert error_element is not None and error_element.get("message") == "raised ValueError: bad byte \\x00\\x1b\\x08"
    suite_names = [suite.get("name") for suite in root.iter("testsuite")]
    assert suite_names == ["notebooks/02.ipynb", "notebooks/\\x0b.ipynb"]


def could_not_run(output: str = "") -> NotebookResult:
    return NotebookResult("notebooks/07.ipynb", (), 0.5, "the kernel could not bind its port (Address already "
                          "in use) (3 tries)", kernel_output=output)


def test_a_notebook_that_could_not_run_is_a_junit_error_and_a_failing_cell_a_failure() -> None:
    timed_out = CellResult(CellId("notebooks/02.ipynb", 6, "wait()"), "timed out", "wait()", CellOptions(),
                           reason="no result after the cell timeout of 3 s", compared=False)
    died = CellResult(CellId("notebooks/02.ipynb", 7, "os._exit(1)"), "kernel died", "os._exit(1)", CellOptions(),
                      reason="the kernel died while the cell ran", compared=False)
    broken = could_not_run("zmq.error.ZMQError: Address already in use\n")
    root = junit_xml([NotebookResult("notebooks/02.ipynb", (changed(), raised(), timed_out, died)), broken],
                     3.0).getroot()

    assert {k: root.get(k) for k in ("tests", "failures", "errors")} == {"tests": "5", "failures": "4", "errors": "1"}
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert {k: suites["notebooks/07.ipynb"].get(k) for k in ("tests", "errors")} == {"tests": "1", "errors": "1"}
    kinds = [(case.get("name"), [child.tag for child in case]) for case in suites["notebooks/02.ipynb"]]
    assert kinds == [("cell 9: node processor", ["failure"]), ("cell 4: node load", ["failure"]),
                     ("cell 6: wait()", ["failure"]), ("cell 7: os._exit(1)", ["failure"])]
    error = suites["notebooks/07.ipynb"].find("testcase/error")
    assert error is not None and error.get("type") == "could not run"
    assert error.get("message", "").startswith("the kernel could not bind its port")
    assert "ZMQError: Address already in use" in (error.text or "")


def test_exit_status_1_for_a_failed_cell_3_for_a_notebook_that_could_not_run_and_1_when_both() -> None:
    from kailash_nb.runner.check import exit_status

    passed = CellResult(CellId("notebooks/01.ipynb", 1, "1"), "passed", "1", CellOptions())
    fine = NotebookResult("notebooks/01.ipynb", (passed,))
    assert exit_status([fine]) == 0
    assert exit_status([fine, NotebookResult("notebooks/02.ipynb", (changed(),))]) == 1
    assert exit_status([fine, NotebookResult("notebooks/02.ipynb", (raised(),))]) == 1
    assert exit_status([fine, could_not_run()]) == 3
    assert exit_status([could_not_run(), NotebookResult("notebooks/02.ipynb", (changed(),))]) == 1


def test_the_kernels_own_output_is_shown_only_for_a_notebook_that_failed() -> None:
    out = io.StringIO()
    noisy_pass = NotebookResult("notebooks/01.ipynb", (CellResult(CellId("notebooks/01.ipynb", 1, "1"), "passed",
                                                                  "1", CellOptions()),), kernel_output="NOISE\n")
    noisy_fail = NotebookResult("notebooks/02.ipynb", (changed(),), kernel_output="the kernel said this\n")
    Printer(out).failures([noisy_pass, noisy_fail, could_not_run("Traceback ...\nZMQError: Address already in use\n")])
    text = out.getvalue()
    assert "NOISE" not in text
    assert "  kernel output of notebooks/02.ipynb:\n    | the kernel said this\n" in text
    assert ("COULD NOT RUN notebooks/07.ipynb\n  the kernel could not bind its port (Address already in use) "
            "(3 tries)\n  kernel output of notebooks/07.ipynb:\n    | Traceback ...\n"
            "    | ZMQError: Address already in use\n") in text
