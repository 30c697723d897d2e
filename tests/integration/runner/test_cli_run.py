"""``kailash-nb run`` / ``tour`` / ``sanitize-file``: real kernels on small notebooks written by the tests."""

import os
import sys
from pathlib import Path

import nbformat

import kailash_nb.notebook
from kailash_nb.cli import main


def write_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# a notebook written by a test")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_run_writes_html_with_the_table_and_the_chart_inline_and_prints_a_summary(workdir, capsys):
    notebook = write_notebook(
        workdir / "nb" / "report.ipynb",
        "import pandas as pd\npd.DataFrame({'node': ['a', 'b'], 'ms': [1, 2]})",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
        "from pathlib import Path\nprint('cwd is the notebook folder:', Path.cwd().name)",
    )
    assert main(["run", str(notebook), "--html", "out/report.html"]) == 0

    out = capsys.readouterr().out
    assert "3 of 3 code cells, 0 errors" in out
    assert "HTML: out/report.html" in out
    html = (workdir / "out" / "report.html").read_text(encoding="utf-8")
    assert '<table border="1" class="dataframe">' in html
    assert "data:image/png;base64," in html
    assert "cwd is the notebook folder: nb" in html


def test_run_uses_this_interpreter_headlessly_whatever_the_kernelspec(workdir):
    notebook = write_notebook(
        workdir / "env.ipynb",
        "import os, sys\nprint('python', sys.executable)\n"
        "print('widgets', os.environ.get('KAILASH_NB_WIDGETS'))",
    )
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["kernelspec"]["name"] = "no-such-kernel"
    nbformat.write(nb, notebook)

    assert main(["run", str(notebook), "--html", "env.html"]) == 0
    html = (workdir / "env.html").read_text(encoding="utf-8")
    assert f"python {sys.executable}" in html
    assert "widgets 0" in html


def test_a_failing_cell_exits_nonzero_naming_the_cell_and_the_error_and_still_writes_html(workdir, capsys):
    notebook = write_notebook(workdir / "fails.ipynb", "x = 1", "x / 0", "print('never reached')")
    assert main(["run", str(notebook), "--html", "fails.html"]) == 1

    out = capsys.readouterr().out
    assert "FAILED cell 3, In [2]: ZeroDivisionError: division by zero" in out
    assert "    x / 0" in out
    assert "2 of 3 code cells, 1 error" in out
    html = (workdir / "fails.html").read_text(encoding="utf-8")
    assert "ZeroDivisionError" in html
    assert "never reached" in html  # the source is there, but not as output
    assert html.count("never reached") == 1


def test_keep_going_runs_every_cell_and_still_fails(workdir, capsys):
    notebook = write_notebook(workdir / "fails.ipynb", "1 / 0", "print('went on ' + 'anyway')")
    assert main(["run", str(notebook), "--html", "fails.html", "--keep-going"]) == 1
    assert "2 of 2 code cells, 1 error" in capsys.readouterr().out
    assert "went on anyway" in (workdir / "fails.html").read_text(encoding="utf-8")


def test_a_cell_tagged_raises_exception_is_not_a_failure(workdir, capsys):
    notebook = write_notebook(workdir / "expected.ipynb", "raise KeyError('shown on purpose')", "print('next')")
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[1].metadata["tags"] = ["raises-exception"]
    nbformat.write(nb, notebook)
    assert main(["run", str(notebook), "--html", "expected.html"]) == 0
    assert "2 of 2 code cells, 0 errors" in capsys.readouterr().out


def test_a_cell_over_the_timeout_is_named(workdir, capsys):
    notebook = write_notebook(workdir / "slow.ipynb", "import time", "time.sleep(60)")
    assert main(["run", str(notebook), "--html", "slow.html", "--cell-timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED cell 3, In [2]: CellTimeoutError: no result after 1 s (cell timeout)" in out
    assert (workdir / "slow.html").is_file()


def test_a_missing_notebook_is_a_usage_error(workdir, capsys):
    assert main(["run", "nowhere.ipynb", "--html", "x.html"]) == 2
    assert "notebook not found: nowhere.ipynb" in capsys.readouterr().err
    assert not (workdir / "x.html").exists()


def test_tour_writes_out_tour_html_by_default(workdir, capsys):
    notebook = write_notebook(workdir / "notebooks" / "01_tour.ipynb", "print('the ' + 'tour')")
    assert main(["tour"]) == 0
    assert f"HTML: {Path('out') / 'tour.html'}" in capsys.readouterr().out
    assert "the tour" in (workdir / "out" / "tour.html").read_text(encoding="utf-8")
    assert notebook.is_file()


def test_tour_takes_another_notebook_and_output(workdir):
    notebook = write_notebook(workdir / "mine.ipynb", "print('my ' + 'tour')")
    assert main(["tour", "--notebook", str(notebook), "--html", "here/t.html"]) == 0
    assert "my tour" in (workdir / "here" / "t.html").read_text(encoding="utf-8")


def test_sanitize_file_prints_the_shipped_file(capsys):
    assert main(["sanitize-file"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(kailash_nb.notebook.sanitize_file_path())
    assert "[memory_addresses]" in Path(printed).read_text(encoding="utf-8")


def test_run_shuts_its_kernel_down(workdir):
    from kailash_nb.runner.execute import run_notebook

    notebook = write_notebook(workdir / "one.ipynb", "print(1)")
    assert run_notebook(notebook, None).ok
    children = [
        entry for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent(entry) == os.getpid()
        and b"ipykernel_launcher" in (entry / "cmdline").read_bytes()
    ]
    assert children == []


def _parent(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_the_html_loads_nothing_runs_no_script_and_carries_the_reports_policy(workdir):
    import re

    from kailash_nb.runner.report import CONTENT_SECURITY_POLICY

    notebook = write_notebook(
        workdir / "scripts.ipynb",
        "from IPython.display import HTML, Javascript, display\n"
        "display(Javascript('document.' + 'title = 1'))\n"
        "display(HTML('<b>bold</b><' + 'script src=\"https://example.com/x.js\"></' + 'script>'\n"
        "             '<' + 'link rel=\"stylesheet\" href=\"https://example.com/x.css\">'))",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
    )
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[0].source += "\n\n$e^{i\\pi} = -1$"
    nbformat.write(nb, notebook)
    assert main(["run", str(notebook), "--html", "scripts.html"]) == 0

    html = (workdir / "scripts.html").read_text(encoding="utf-8")
    head = html[:html.index("</head>")]
    policy = re.search(r'<meta[^>]*http-equiv="Content-Security-Policy"[^>]*>', head)
    assert policy is not None and f'content="{CONTENT_SECURITY_POLICY}"' in policy.group()
    assert html.index("Content-Security-Policy") < html.index("<style")
    # Nothing from the network and no script: no require.js, MathJax, mermaid or widget manager, and
    # neither the JavaScript output nor the script and stylesheet of the HTML output is copied into the page.
    assert re.findall(r"<(?:script|link)\b[^>]*>", html, re.IGNORECASE) == []
    assert "document.title" not in html
    assert html.count("example.com/x.js") == html.count("example.com/x.css") == 1  # in the cell's source only
    assert "<b>bold</b>" in html and "data:image/png;base64," in html
    assert "e^{i\\pi} = -1" in html  # math shows as its TeX
