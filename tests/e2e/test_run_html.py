"""The HTML of ``kailash-nb run``, read in headless Chromium (Debian's) through Playwright: it is styled, it
asks nothing of the network, and a notebook's markup can neither load anything nor run script in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # whatever else happens, no name resolves to the network
]
REMOTE_IMAGE = "https://example.invalid/tracker.png"
LOCAL = ("file:", "data:", "about:")

pytestmark = pytest.mark.integration


def test_the_run_html_is_styled_loads_nothing_and_runs_no_script(tmp_path: Path, chromium_path, sync_playwright):
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

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            reached_network: list[str] = []
            console: list[str] = []

            def local_only(route) -> None:
                if route.request.url.startswith(LOCAL):
                    route.continue_()
                else:
                    reached_network.append(route.request.url)
                    route.abort()

            context.route("**/*", local_only)
            page = context.new_page()
            page.on("console", lambda message: console.append(message.text))
            page.goto((tmp_path / "offline.html").as_uri())
            page.wait_for_load_state("load")
            assert page.locator("#badge").inner_text().strip() == "badge"
            assert page.evaluate("document.body.getAttribute('data-ran')") is None
            code = page.evaluate("getComputedStyle(document.querySelector('.jp-InputArea-editor pre')).fontFamily")
        finally:
            browser.close()
    assert reached_network == [], f"the page asked the network for {reached_network}"
    assert "monospace" in code  # nbconvert's inline stylesheet applies under the policy
    # The remote image was refused by the page's policy, not merely unreachable.
    assert any(REMOTE_IMAGE in text and "Content Security Policy" in text for text in console), console
