"""The report of a real failing ``kailash-nb check``, read in headless Chromium (Debian's) through Playwright.

A notebook written here stores its outputs with ``kailash-nb update``; then a node's code changes
(``x * 2`` becomes ``x * 3``: no assertion fails, only the value differs) and so does an HTML output that
tries to load a remote image and run a script. ``kailash-nb check`` fails and writes the report, and the
test looks at it as a person would: the summary names the cell, its link brings the marked cell into view,
stored and new are both on screen, and nothing left the machine. The screenshot goes to
out/check-report.png.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "out" / "check-report.png"
COMMAND_LIMIT = 300
NOTEBOOK = "report_demo.ipynb"
CELL = f"{NOTEBOOK}::cell 5: node doubler"
REMOTE_IMAGE = "https://example.invalid/tracker.png"
LOCAL = ("file:", "data:", "about:")
DOUBLER = '%%kailash doubler items=producer.items\nresult = {"doubled": [x * 2 for x in items]}'

pytestmark = pytest.mark.integration


def badge_cell(value: str) -> str:
    """An HTML output that shows ``value``, and would load a remote image and run a script if it could."""
    return (
        "from IPython.display import HTML\n"
        f"HTML('<p>badge {value} <img src=\"{REMOTE_IMAGE}\" alt=\"remote\"></p>'\n"
        "     '<script>document.body.setAttribute(\"data-ran\", \"yes\")</script>')"
    )


def demo_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# The report in a browser"),
        nbformat.v4.new_code_cell("%load_ext kailash_nb"),
        nbformat.v4.new_code_cell('%%kailash producer\nresult = {"items": [1, 2, 3]}'),
        nbformat.v4.new_markdown_cell("## The node that changes"),
        nbformat.v4.new_code_cell(DOUBLER),
        nbformat.v4.new_code_cell(badge_cell("stored-badge")),
        nbformat.v4.new_code_cell('print("unchanged")'),
    ]
    return nb


def kailash_nb(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kailash_nb.cli", *arguments], cwd=cwd, capture_output=True,
                          text=True, timeout=COMMAND_LIMIT, check=False)


@pytest.fixture
def failing_report(tmp_path: Path) -> Path:
    """The report of a check in which node ``doubler`` (cell 5) and an HTML output (cell 6) changed."""
    nbformat.write(demo_notebook(), tmp_path / NOTEBOOK)
    stored = kailash_nb("update", NOTEBOOK, cwd=tmp_path)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    nb = nbformat.read(tmp_path / NOTEBOOK, as_version=4)
    assert "[2, 4, 6]" in nb.cells[4].outputs[-1]["data"]["text/plain"], "update stored the first value"
    nb.cells[4].source = nb.cells[4].source.replace("x * 2", "x * 3")
    nb.cells[5].source = badge_cell("new-badge")
    nbformat.write(nb, tmp_path / NOTEBOOK)

    checked = kailash_nb("check", NOTEBOOK, "--report", "report", cwd=tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    page = tmp_path / "report" / "index.html"
    assert f"report: {Path('report') / 'index.html'}" in checked.stdout, checked.stdout
    return page


def test_a_failing_check_report_shows_the_changed_cell_both_sides_and_loads_nothing(
        failing_report, offline_page):
    with offline_page(viewport={"width": 1280, "height": 720}) as seen:
        seen.page.goto(failing_report.as_uri())
        read_the_report(seen.page)
    assert seen.reached_network == [], f"the report asked the network for {seen.reached_network}"
    assert [url for url in seen.responses if not url.startswith(LOCAL)] == []
    # The frames inherit the page's policy: the output's remote image was refused by it, not merely unreachable.
    assert any(REMOTE_IMAGE in text and "Content Security Policy" in text for text in seen.console), seen.console


def read_the_report(page) -> None:
    summary = page.locator("#summary")
    assert summary.is_visible() and summary.locator("h1").inner_text().startswith("FAILED")
    failures = summary.locator("ol.failures > li")
    assert failures.count() == 2
    line = failures.filter(has_text=CELL)
    assert line.is_visible() and "text/plain changed" in line.inner_text()

    line.get_by_role("link", name=CELL).click()
    cell = page.locator("section.cell.failing:target")
    cell.wait_for()
    assert cell.locator(".cell-name").inner_text() == "cell 5: node doubler"
    assert page.evaluate("window.scrollY") > 0, "the link did not scroll"
    top = cell.evaluate("element => element.getBoundingClientRect().top")
    assert 0 <= top < 40, f"the marked cell is at {top}px from the top of the window"

    plain = cell.locator("div.difference", has_text="text/plain changed").locator("table.diff")
    assert [plain.locator(f"th.{side}").inner_text().lower() for side in ("stored", "new")] == ["stored", "new"]
    assert plain.locator("td.line.stored", has_text="[2, 4, 6]").is_visible()
    assert plain.locator("td.line.new", has_text="[3, 6, 9]").is_visible()
    frames = cell.frame_locator("iframe")
    assert frames.nth(0).get_by_text("[2, 4, 6]").is_visible()  # the kit's HTML display, rendered
    assert frames.nth(1).get_by_text("[3, 6, 9]").is_visible()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    badge = page.locator("section.cell.failing", has_text="cell 6: from IPython.display import HTML")
    badge.scroll_into_view_if_needed()
    for index, text in enumerate(["badge stored-badge", "badge new-badge"]):
        frame = badge.frame_locator("iframe").nth(index)
        assert frame.get_by_text(text).is_visible()
        assert frame.locator("body[data-ran]").count() == 0, "a script in an output ran"
    assert page.locator("script").count() == 0
