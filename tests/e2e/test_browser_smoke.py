"""The tour in a real browser: JupyterLab on loopback, headless Chromium (Debian's) driven by Playwright.

Runs every cell through JupyterLab's own "Run All Cells" menu entry, then checks what a person would see:
a table, a chart image and a live widget, with no "Error displaying widget". The screenshot goes to
out/browser-smoke.png. Until notebooks/01_tour.ipynb exists, a small stand-in notebook is used.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
TOUR = REPO / "notebooks" / "01_tour.ipynb"
SCREENSHOT = REPO / "out" / "browser-smoke.png"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAGE_LIMIT_MS = 120_000
RUN_ALL_LIMIT_MS = 600_000  # the tour starts an embedded PostgreSQL

# In the page: the open notebook as nbformat JSON, and the state of its kernel (window.jupyterapp is
# there because the server runs with --LabApp.expose_app_in_browser).
NOTEBOOK_STATE_JS = """
() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.model) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {kernel: kernel ? kernel.status : null, notebook: panel.model.toJSON()};
}
"""
RUN_FINISHED_JS = """
() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.model) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.model.toJSON().cells.filter(c => c.cell_type === 'code' && [].concat(c.source).join('').trim());
  const tags = c => (c.metadata && c.metadata.tags) || [];
  const failed = cells.some(c => !tags(c).includes('raises-exception')
                            && (c.outputs || []).some(o => o.output_type === 'error'));
  if (failed) return 'error';
  return kernel && kernel.status === 'idle' && cells.every(c => c.execution_count !== null) ? 'done' : false;
}
"""

# Widget views render asynchronously: jupyterlab_widgets shows "Loading widget..." until the view (or
# "Error displaying widget: ...") replaces it.
OUTPUTS = ".jp-NotebookPanel .jp-OutputArea-output"
WIDGETS_SETTLED_JS = """
(selector) => [...document.querySelectorAll(selector)].every(view => !view.textContent.includes('Loading widget'))
"""


def smoke_notebook() -> nbformat.NotebookNode:
    """A stand-in for the tour with the same kinds of output: a DataFrame, a PNG chart and a widget."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Browser smoke test"),
        nbformat.v4.new_code_cell(
            "import pandas as pd\npd.DataFrame({'node': ['producer', 'processor'], 'ms': [1, 2]})"
        ),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(4, 2))\nax.barh(['producer', 'processor'], [1, 2])\nplt.show()"
        ),
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\nwidgets.IntSlider(value=3, max=10, description='batch')"
        ),
    ]
    return nb


def stage_notebook(root_dir: Path) -> Path:
    """Copy the tour (with its folder, for relative paths) or write the stand-in, outputs cleared."""
    if TOUR.is_file():
        folder = root_dir / TOUR.parent.name
        shutil.copytree(TOUR.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "out"))
        target = folder / TOUR.name
    else:
        target = root_dir / "smoke.ipynb"
        nbformat.write(smoke_notebook(), target)
    nb = nbformat.read(target, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, target)
    return target


def click_menu(page, menu: str, entry: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(".lm-Menu-item:visible", has_text=entry).first.click()


def test_the_tour_runs_in_jupyterlab_with_table_chart_and_widget(jupyter_lab, chromium_path, sync_playwright):
    notebook = stage_notebook(jupyter_lab.root_dir).relative_to(jupyter_lab.root_dir).as_posix()
    with (
        tempfile.TemporaryDirectory(prefix="kailash-nb-chromium-", ignore_cleanup_errors=True) as profile,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1600},
        )
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            check_notebook_in_page(page, f"{jupyter_lab.url}/lab/tree/{notebook}?token={jupyter_lab.token}")
        finally:
            browser.close()


def check_notebook_in_page(page, url: str) -> None:
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.set_default_timeout(PAGE_LIMIT_MS)
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    page.wait_for_function("() => { const s = (" + NOTEBOOK_STATE_JS + ")(); return s && s.kernel === 'idle'; }")

    click_menu(page, "Run", "Run All Cells")
    outcome = page.wait_for_function(RUN_FINISHED_JS, timeout=RUN_ALL_LIMIT_MS).json_value()

    outputs = page.locator(OUTPUTS)
    page.wait_for_function(WIDGETS_SETTLED_JS, arg=OUTPUTS)
    widget = outputs.locator(".jupyter-widgets").first  # a view inside an output: not the error text
    if widget.count():
        widget.scroll_into_view_if_needed()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    cells = page.evaluate(NOTEBOOK_STATE_JS)["notebook"]["cells"]
    errors = [
        f"cell {index + 1}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert outcome == "done", f"a cell failed in JupyterLab: {errors}"
    assert outputs.locator("table").count() >= 1, "no table rendered in the outputs"
    images = outputs.locator("img")
    assert images.count() >= 1, "no chart image rendered in the outputs"
    assert images.first.evaluate("img => img.complete && img.naturalWidth > 0"), "the chart image is empty"
    assert widget.count() == 1 and widget.is_visible(), (
        f"no widget view rendered (is jupyterlab_widgets installed?); console errors: {console_errors}"
    )
    assert page.get_by_text("Error displaying widget").count() == 0, console_errors
