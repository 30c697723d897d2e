"""The tour in a real browser: JupyterLab on loopback, headless Chromium (Debian's) driven by Playwright.

Runs every cell through JupyterLab's own "Run All Cells" menu entry, then checks what a person would see:
a table, a chart image and a live widget, with no "Error displaying widget". Then it uses the widgets as a
person does: it reads the bench progress bar while a bench waits, types into the ``%kailash explore``
form and presses Run (a result, a bad value's error, the running state), and saves the notebook to check
that no view of a closed widget is left in it. Screenshots go to out/browser-*.png. Until
notebooks/01_tour.ipynb exists, a small stand-in notebook is used.

The cells added after the tour run a workflow whose node waits until the test creates a file (a "gate"),
so that the test sees a bench and a form run while they run, without timing anything.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
TOUR = REPO / "notebooks" / "01_tour.ipynb"
OUT = REPO / "out"
SCREENSHOT = OUT / "browser-smoke.png"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAGE_LIMIT_MS = 120_000
RUN_ALL_LIMIT_MS = 600_000  # the tour starts an embedded PostgreSQL
FORM_LIMIT_MS = 30_000  # a form's run of a small workflow

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


BENCH_CELL = '%kailash bench gated -n 3 --inputs {"gate": "bench", "n": 1}'


def gated_cells(gates: Path, *, load: bool) -> list[nbformat.NotebookNode]:
    """A workflow whose node waits for the file ``gates/<gate>``; a bench of it; a form for it."""
    return [
        nbformat.v4.new_markdown_cell("## Widgets under test: a bench and a form that wait for a gate file"),
        nbformat.v4.new_code_cell(("%load_ext kailash_nb\n" if load else "")
                                  + f"import pathlib\nGATES = pathlib.Path({str(gates)!r})"),
        nbformat.v4.new_code_cell(
            "%%kailash -w gated --no-run wait\n"
            "while not (GATES / gate).exists():\n"
            "    await asyncio.sleep(0.05)\n"
            'result = {"gate": gate, "twice": n * 2}'
        ),
        nbformat.v4.new_code_cell(BENCH_CELL),
        nbformat.v4.new_code_cell('%kailash explore gated --inputs {"gate": "explore", "n": 1}'),
    ]


def stage_notebook(root_dir: Path, gates: Path) -> Path:
    """Copy the tour (with its folder, for relative paths) or write the stand-in, outputs cleared, and add
    the gated cells at the end."""
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
    nb.cells += gated_cells(gates, load=not TOUR.is_file())
    nbformat.write(nb, target)
    return target


def click_menu(page, menu: str, entry: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(".lm-Menu-item:visible", has_text=entry).first.click()


def test_the_tour_runs_in_jupyterlab_with_table_chart_and_widget(jupyter_lab, chromium_path, sync_playwright):
    gates = jupyter_lab.root_dir / "gates"
    gates.mkdir()
    staged = stage_notebook(jupyter_lab.root_dir, gates)
    notebook = staged.relative_to(jupyter_lab.root_dir).as_posix()
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
            check_notebook_in_page(page, f"{jupyter_lab.url}/lab/tree/{notebook}?token={jupyter_lab.token}", gates)
            if TOUR.is_file():
                check_explore_form(page, "pricing", "prices")
            check_gated_form(page, gates)
            check_saved_notebook(page, staged)
        finally:
            browser.close()


def check_notebook_in_page(page, url: str, gates: Path) -> None:
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.set_default_timeout(PAGE_LIMIT_MS)
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    page.wait_for_function("() => { const s = (" + NOTEBOOK_STATE_JS + ")(); return s && s.kernel === 'idle'; }")

    click_menu(page, "Run", "Run All Cells")
    # Until the bench waits at its gate; a failed cell stops Run All before it, so that ends the wait too.
    reached = page.wait_for_function(
        "() => (" + RUN_FINISHED_JS + ")() === 'error' ? 'error' : !!document.querySelector('.widget-hprogress')",
        timeout=RUN_ALL_LIMIT_MS).json_value()
    assert reached is True, f"a cell failed in JupyterLab: {cell_errors(page)}"
    check_bench_progress(page, gates)
    outcome = page.wait_for_function(RUN_FINISHED_JS, timeout=RUN_ALL_LIMIT_MS).json_value()
    assert outcome == "done", f"a cell failed in JupyterLab: {cell_errors(page)}"
    check_bench_finished(page)

    outputs = page.locator(OUTPUTS)
    page.wait_for_function(WIDGETS_SETTLED_JS, arg=OUTPUTS)
    widget = outputs.locator(".jupyter-widgets").first  # a view inside an output: not the error text
    if widget.count():
        widget.scroll_into_view_if_needed()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    assert outputs.locator("table").count() >= 1, "no table rendered in the outputs"
    images = outputs.locator("img")
    assert images.count() >= 1, "no chart image rendered in the outputs"
    assert images.first.evaluate("img => img.complete && img.naturalWidth > 0"), "the chart image is empty"
    assert widget.count() == 1 and widget.is_visible(), (
        f"no widget view rendered (is jupyterlab_widgets installed?); console errors: {console_errors}"
    )
    assert page.get_by_text("Error displaying widget").count() == 0, console_errors


def cell_errors(page) -> list[str]:
    cells = page.evaluate(NOTEBOOK_STATE_JS)["notebook"]["cells"]
    return [
        f"cell {index + 1}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


# -- the widgets, used as a person uses them ------------------------------------------------------------

def cell_with_source(page, source: str):
    """The notebook cell whose editor shows ``source`` (its first line is enough)."""
    return page.locator(".jp-NotebookPanel .jp-CodeCell", has=page.locator(".jp-InputArea", has_text=source))


def check_bench_progress(page, gates: Path) -> None:
    """While the bench waits at its gate: the bar shows its whole label. Then open the gate."""
    bar = cell_with_source(page, BENCH_CELL).locator(".widget-hprogress")
    bar.wait_for(state="visible")
    bar.scroll_into_view_if_needed()
    label = bar.locator(".widget-label")
    assert label.inner_text() == "bench 'gated'"
    assert label.evaluate("el => el.scrollWidth <= el.clientWidth"), "the progress bar's label is cut"
    page.screenshot(path=str(OUT / "browser-bench-progress.png"))
    (gates / "bench").touch()


def check_bench_finished(page) -> None:
    """A finished bench leaves a line of text where the bar was, then its chart and report."""
    cell = cell_with_source(page, BENCH_CELL)
    cell.get_by_text("bench 'gated': 3 of 3 runs").wait_for()
    assert cell.locator(".widget-hprogress").count() == 0
    assert cell.locator(".jp-OutputArea-output img").count() == 1
    assert "success" in cell.locator(".jp-OutputArea-output").last.inner_text()


def explore_form(page, workflow: str):
    """The form of ``%kailash explore workflow``: its VBox, found by its Run button."""
    button = page.locator(".widget-button", has_text=re.compile(rf"^(Run|Running) {workflow}"))
    return page.locator(".widget-vbox", has=button), button


def field(form, name: str):
    return form.locator(".widget-text", has=form.page.locator(".widget-label", has_text=re.compile(f"^{name}$"))
                        ).locator("input")


def check_explore_form(page, workflow: str, name: str) -> None:
    """Type a value and press Run: the result appears under the form; a bad value shows an error there."""
    form, button = explore_form(page, workflow)
    form.scroll_into_view_if_needed()
    output = form.locator(".widget-output")
    field(form, name).fill("[10.0, 5.0]")
    button.click()
    output.get_by_text("'total': 13.5").first.wait_for(timeout=FORM_LIMIT_MS)
    shown = output.inner_text()
    assert "WorkflowResult 'pricing': success" in shown and "'items': 2" in shown, shown
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "browser-explore-result.png"))

    field(form, name).fill("[10.0, 5.0")
    button.click()
    error = output.locator("[data-mime-type='application/vnd.jupyter.stderr']")
    error.wait_for(timeout=FORM_LIMIT_MS)
    assert error.inner_text().startswith(
        "input 'prices': '[10.0, 5.0' is not a Python literal ('[' was never closed)"), error.inner_text()
    assert "13.5" not in output.inner_text()  # the earlier result is gone
    page.screenshot(path=str(OUT / "browser-explore-error.png"))


def check_gated_form(page, gates: Path) -> None:
    """While a run waits at its gate, the button says so and is disabled; then the result replaces it."""
    form, button = explore_form(page, "gated")
    form.scroll_into_view_if_needed()
    field(form, "n").fill("21")
    button.click()
    page.wait_for_function(
        "(el) => el.disabled && el.textContent.startsWith('Running gated')", arg=button.element_handle(),
        timeout=FORM_LIMIT_MS)
    assert button.locator("i.fa-spinner.fa-spin").count() == 1
    page.screenshot(path=str(OUT / "browser-explore-running.png"))
    (gates / "explore").touch()
    form.locator(".widget-output").get_by_text("'twice': 42").first.wait_for(timeout=FORM_LIMIT_MS)
    assert button.inner_text().strip() == "Run gated" and button.is_enabled()


def check_saved_notebook(page, path: Path) -> None:
    """Saved, the bench cell keeps the static line and no view of its closed progress widget."""
    before = path.stat().st_mtime_ns
    click_menu(page, "File", "Save Notebook")
    page.wait_for_function(
        "() => { const p = window.jupyterapp.shell.currentWidget; return p && p.model && !p.model.dirty; }")
    assert path.stat().st_mtime_ns != before
    saved = json.loads(path.read_text(encoding="utf-8"))
    [bench] = [c for c in saved["cells"] if "".join(c["source"]) == BENCH_CELL]
    kinds = [sorted(o.get("data", {})) for o in bench["outputs"]]
    assert not any("application/vnd.jupyter.widget-view+json" in k for k in kinds), kinds
    assert "".join(bench["outputs"][0]["data"]["text/plain"]) == "bench 'gated': 3 of 3 runs"
