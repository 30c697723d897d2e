"""Stored against new outputs by nbval's rules, keeping every difference for a person to read."""

from __future__ import annotations

from nbformat.v4 import new_output

from kailash_nb.runner.compare import compare_outputs, strip_ansi


def result(plain: str, html: str | None = None, count: int = 1) -> dict:
    data = {"text/plain": plain} | ({"text/html": html} if html is not None else {})
    return new_output("execute_result", data=data, execution_count=count, metadata={"kailash_nb": {"d": count}})


def stream(text: str, name: str = "stdout") -> dict:
    return new_output("stream", name=name, text=text)


def test_equal_outputs_have_no_difference_whatever_their_metadata_and_counts() -> None:
    assert compare_outputs([result("6", "<b>6</b>", count=1)], [result("6", "<b>6</b>", count=7)]) == []


def test_a_changed_value_is_reported_as_its_text_on_both_sides() -> None:
    [plain] = compare_outputs([result("doubled [2, 4, 6]")], [result("doubled [3, 6, 9]")])
    assert plain.key == "text/plain"
    assert plain.what == "text/plain changed"
    assert (plain.text("stored"), plain.text("new")) == ("doubled [2, 4, 6]", "doubled [3, 6, 9]")


def test_text_plain_is_told_before_html_and_both_are_kept() -> None:
    differences = compare_outputs([result("6", "<td>6</td>")], [result("7", "<td>7</td>")])
    assert [d.key for d in differences] == ["text/plain", "text/html"]


def test_streams_are_merged_before_they_are_compared_as_nbval_does() -> None:
    assert compare_outputs([stream("a\nb\n")], [stream("a\n"), stream("b\n")]) == []
    assert compare_outputs([stream("10%\r100%\n")], [stream("100%\n")]) == []


def test_an_output_that_appears_or_goes_is_a_difference() -> None:
    [appeared] = compare_outputs([], [stream("warning\n", "stderr")])
    assert appeared.what == "stderr appeared"
    [gone] = compare_outputs([stream("hello\n")], [])
    assert gone.what == "stdout is gone"


def test_sanitize_patterns_apply_to_both_sides() -> None:
    patterns = [(r"0x[0-9a-f]+", "0xADDRESS")]
    assert compare_outputs([stream("<A at 0x7f01>\n")], [stream("<A at 0x7f99>\n")], patterns) == []
    assert compare_outputs([stream("<A at 0x7f01>\n")], [stream("<A at 0x7f99>\n")]) != []


def test_images_tracebacks_and_widget_views_are_not_compared_here() -> None:
    stored = [new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Chart>"})]
    new = [new_output("display_data", data={"image/png": "BBBB", "text/plain": "<Chart>"})]
    assert compare_outputs(stored, new) == []
    error = new_output("error", ename="KeyError", evalue="'x'", traceback=["one"])
    assert compare_outputs([error], [{**error, "traceback": ["two"]}]) == []


def test_a_different_error_is_a_difference_of_its_name_and_value() -> None:
    stored = [new_output("error", ename="KeyError", evalue="'x'", traceback=[])]
    new = [new_output("error", ename="KeyError", evalue="'y'", traceback=[])]
    [difference] = compare_outputs(stored, new)
    assert difference.key == "evalue"


def test_colour_codes_are_stripped_from_tracebacks() -> None:
    assert strip_ansi("\x1b[0;31mKeyError\x1b[0m: 'x'") == "KeyError: 'x'"
