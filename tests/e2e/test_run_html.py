"""The HTML of ``kailash-nb run``, read in headless Chromium (Debian's) through Playwright: it is styled, it
asks nothing of the network, and a notebook's markup can neither load anything nor run script in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REMOTE_IMAGE = "https://example.invalid/tracker.png"

pytestmark = pytest.mark.integration


def test_the_run_html_is_styled_loads_nothing_and_runs_no_script(tmp_path: Path, offline_page):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Offline\n\n$x^2$"),
        nbformat.v4.new_code_cell(
            "from IPython.display import HTML, Javascript, display\n"
            "display(Javascript('document.body.setAttribute(\"data-ran\", \"javascript\")'))\n"
            f"display(HTML('<p id=\"badge\">badge <img src=\"{REMOTE_IMAGE}\" alt=\"remote\"></p>'\n"
            "             '<img src=\"x\" onerror=\"document.body.setAttribute(\\'data-ran\\', \\'onerror\\')\">'))"
        ),
    ]
    nbformat.write(nb, tmp_path / "offline.ipynb")
    ran = subprocess.run([sys.executable, "-m", "kailash_nb.cli", "run", "offline.ipynb", "--html", "offline.html"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    with offline_page() as seen:
        page = seen.page
        page.goto((tmp_path / "offline.html").as_uri())
        page.wait_for_load_state("load")
        assert page.locator("#badge").inner_text().strip() == "badge"
        assert page.evaluate("document.body.getAttribute('data-ran')") is None
        code = page.evaluate("getComputedStyle(document.querySelector('.jp-InputArea-editor pre')).fontFamily")
    assert seen.reached_network == [], f"the page asked the network for {seen.reached_network}"
    assert "monospace" in code  # nbconvert's inline stylesheet applies under the policy
    # The remote image was refused by the page's policy, not merely unreachable.
    assert any(REMOTE_IMAGE in text and "Content Security Policy" in text for text in seen.console), seen.console
