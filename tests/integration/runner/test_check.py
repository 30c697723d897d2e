"""``kailash-nb check`` and ``update`` on notebooks the tests write themselves, on real kernels.

The loop a person goes through: outputs stored, a change made, check fails naming the cell and showing
stored against new, update accepts the change (and only it), check passes again.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kailash_nb.cli import main
from kailash_nb.runner.check import CheckConfig, check
from kailash_nb.runner.plan import Shard
from kailash_nb.runner.terminal import Printer
from kailash_nb.runner.update import Selection, update

pytestmark = pytest.mark.integration

PRICING = [
    new_markdown_cell("# Pricing"),
    new_code_cell("%load_ext kailash_nb"),
    new_code_cell("RATE = 1.2"),
    new_code_cell("%%kailash price\nresult = {'total': round(sum([19.99, 5.01]) * RATE, 2)}"),
    new_code_cell("%%kailash receipt total=price.total\nresult = {'line': f'total: {total}'}"),
]


def write(path: Path, cells: list[nbformat.NotebookNode]) -> Path:
    nb = new_notebook(cells=[nbformat.from_dict(cell) for cell in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def edit(path: Path, position: int, old: str, new: str) -> None:
    """Change the source of the cell at ``position`` (from 1), as a person would in Jupyter."""
    nb = nbformat.read(path, as_version=4)
    assert old in nb.cells[position - 1].source
    nb.cells[position - 1].source = nb.cells[position - 1].source.replace(old, new)
    nbformat.write(nb, path)


def run_check(*paths: str, junit: Path | None = None, **options: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = check(CheckConfig(paths=paths, **options), report_dir=Path("out") / "check-report", junit=junit,
                 printer=Printer(out))
    return code, out.getvalue()


def run_update(*paths: str, selection: Selection | None = None, **options: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = update(CheckConfig(paths=paths, **options), selection, printer=Printer(out))
    return code, out.getvalue()


@pytest.fixture
def pricing(workdir: Path) -> Path:
    """A notebook whose outputs were stored by a first ``update``."""
    path = write(workdir / "pricing.ipynb", PRICING)
    code, out = run_update("pricing.ipynb")
    assert code == 0, out
    assert "accepted pricing.ipynb::cell 4: node price (first outputs)" in out
    return path


def test_an_output_only_change_fails_names_the_node_and_shows_stored_and_new(pricing: Path) -> None:
    assert run_check("pricing.ipynb")[0] == 0
    edit(pricing, 3, "1.2", "1.25")

    code, out = run_check("pricing.ipynb")

    assert code == 1
    assert "FAILED pricing.ipynb::cell 4: node price" in out
    assert "FAILED pricing.ipynb::cell 5: node receipt" in out
    price = out.split("FAILED pricing.ipynb::cell 4: node price", 1)[1].split("FAILED", 1)[0]
    assert "  text/plain changed:" in price and "    --- stored" in price and "    +++ new" in price
    assert "    -total  30.0" in price and "    +total 31.25" in price
    assert "<table" not in out and "\x1b[" not in out
    assert "2 failed (2 changed), 2 passed: 4 cells of 1 notebook(s)" in out
    assert "report: out/check-report/index.html" in out
    assert "pricing.ipynb::cell 4: node price" in Path("out/check-report/index.html").read_text(encoding="utf-8")


def test_update_accepts_only_the_changed_cells_and_then_check_passes(pricing: Path) -> None:
    edit(pricing, 3, "1.2", "1.25")
    edited = pricing.read_text(encoding="utf-8")

    code, out = run_update("pricing.ipynb")

    assert code == 0, out
    accepted = [line for line in out.splitlines() if line.startswith("accepted ")]
    assert accepted == ["accepted pricing.ipynb::cell 4: node price (text/plain changed; text/html changed)",
                        "accepted pricing.ipynb::cell 5: node receipt (text/plain changed; text/html changed)"]
    assert run_check("pricing.ipynb")[0] == 0
    # Every line outside the outputs of cells 4 and 5 is as it was, metadata and cell ids included.
    before, after = json.loads(edited), json.loads(pricing.read_text(encoding="utf-8"))
    for position in (4, 5):
        before["cells"][position - 1]["outputs"] = after["cells"][position - 1]["outputs"]
    assert before == after
    # At the level of lines (what git diff shows), only those two cells' outputs changed.
    old_lines, new_lines = edited.splitlines(), pricing.read_text(encoding="utf-8").splitlines()
    ids = [cell["id"] for cell in after["cells"][3:5]]
    old_spans, new_spans = _cell_spans(old_lines, ids), _cell_spans(new_lines, ids)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False).get_opcodes():
        if tag != "equal":
            assert any(a <= i1 and i2 <= b for a, b in old_spans), old_lines[i1:i2]
            assert any(a <= j1 and j2 <= b for a, b in new_spans), new_lines[j1:j2]


def _cell_spans(lines: list[str], ids: list[str]) -> list[tuple[int, int]]:
    """(first, last) line numbers of each cell's JSON object, found by its id."""
    spans = []
    for cell_id in ids:
        at = next(i for i, line in enumerate(lines) if line.strip() == f'"id": "{cell_id}",')
        start = max(i for i in range(at) if lines[i] == "  {")
        end = next(i for i in range(at, len(lines)) if lines[i] in ("  },", "  }"))
        spans.append((start, end + 1))
    return spans


def test_update_writes_nothing_when_nothing_changed(pricing: Path) -> None:
    stored = pricing.read_bytes()
    code, out = run_update("pricing.ipynb")
    assert code == 0
    assert "0 cell(s) accepted; 1 notebook(s) already up to date" in out
    assert pricing.read_bytes() == stored


def test_update_refuses_a_cell_that_now_raises_and_leaves_the_file_untouched(pricing: Path) -> None:
    edit(pricing, 3, "1.2", "None")
    edited = pricing.read_bytes()

    code, out = run_update("pricing.ipynb")

    assert code == 1
    assert "not updated: pricing.ipynb: these cells must run cleanly first" in out
    assert "  pricing.ipynb::cell 4: node price" in out
    assert "raised TypeError: unsupported operand type(s) for *: 'float' and 'NoneType'" in out
    assert pricing.read_bytes() == edited


def test_update_accepts_only_the_cells_or_nodes_asked_for(pricing: Path) -> None:
    edit(pricing, 3, "1.2", "1.25")

    code, out = run_update("pricing.ipynb", selection=Selection(nodes=frozenset({"receipt"})))
    assert code == 1  # cell 4 still differs
    assert [line for line in out.splitlines() if line.startswith("accepted")] == [
        "accepted pricing.ipynb::cell 5: node receipt (text/plain changed; text/html changed)"]
    assert ("not accepted (not selected): pricing.ipynb::cell 4: node price (text/plain changed; text/html changed)"
            in out)
    assert out.splitlines()[-1] == ("1 cell(s) accepted; 0 notebook(s) already up to date; 1 changed cell(s) not "
                                    "selected, still different")
    code, out = run_check("pricing.ipynb")
    assert "FAILED pricing.ipynb::cell 4: node price" in out and "cell 5" not in out.split("\n\n", 1)[1]

    code, out = run_update("pricing.ipynb", selection=Selection(cells=frozenset({4})))
    assert code == 0, out
    assert [line for line in out.splitlines() if line.startswith("accepted")] == [
        "accepted pricing.ipynb::cell 4: node price (text/plain changed; text/html changed)"]
    assert run_check("pricing.ipynb")[0] == 0


def test_asking_for_a_cell_or_node_that_does_not_exist_lists_what_does(pricing: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["update", "pricing.ipynb", "--node", "pricee", "--cell", "3", "--cell", "9"]) == 2
    err = capsys.readouterr().err
    assert "--cell 9: no such code cell (code cells: 2, 3, 4, 5)" in err
    assert "--node pricee: no %%kailash cell defines it (nodes: price, receipt)" in err


def test_a_changed_workflow_graph_fails_on_its_image(workdir: Path) -> None:
    path = write(workdir / "graph.ipynb", [
        new_code_cell("%load_ext kailash_nb"),
        new_code_cell("%%kailash source --no-run\nresult = {'items': [1, 2]}"),
        new_code_cell("%%kailash sink items=source.items --no-run\nresult = {'n': len(items)}"),
        new_code_cell("%kailash show"),
    ])
    assert run_update("graph.ipynb")[0] == 0
    edit(path, 3, "items=source.items", "rows=source.items")
    edit(path, 3, "len(items)", "len(rows)")

    code, out = run_check("graph.ipynb")

    assert code == 1
    assert "FAILED graph.ipynb::cell 4: %kailash show" in out
    assert "  image 1 changed (RMS " in out
    assert "text/plain" not in out.split("FAILED graph.ipynb::cell 4", 1)[1]


def test_a_kernel_that_dies_and_a_cell_that_hangs_end_their_notebook_naming_the_cell(workdir: Path) -> None:
    write(workdir / "nbs" / "dies.ipynb", [new_code_cell("import os\nos._exit(1)"), new_code_cell("print('after')")])
    write(workdir / "nbs" / "hangs.ipynb", [new_code_cell("import time\ntime.sleep(600)"), new_code_cell("1")])

    code, out = run_check("nbs", workers=2, cell_timeout=3.0)

    assert code == 1
    assert "FAILED nbs/dies.ipynb::cell 1: import os\n  kernel died: the kernel died while the cell ran" in out
    assert "FAILED nbs/hangs.ipynb::cell 1: import time\n  timed out: no result after the cell timeout of 3 s" in out
    assert "2 failed (1 kernel died, 1 timed out), 2 not run" in out


def test_a_folder_without_notebooks_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "empty").mkdir()
    assert main(["check", "empty"]) == 2
    assert capsys.readouterr().err == "kailash-nb check: no notebooks (.ipynb files) in empty\n"


def test_junit_xml_names_every_cell_as_the_terminal_does(pricing: Path) -> None:
    edit(pricing, 3, "1.2", "1.25")
    run_check("pricing.ipynb", junit=Path("out/junit.xml"))
    suite = ET.parse("out/junit.xml").getroot().find("testsuite")
    assert suite is not None
    names = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(names) == ["cell 2: %load_ext kailash_nb", "cell 3: RATE = 1.25", "cell 4: node price",
                           "cell 5: node receipt"]
    assert names["cell 4: node price"].find("failure") is not None
    assert names["cell 2: %load_ext kailash_nb"].find("failure") is None


def test_shards_split_the_notebooks_between_machines(workdir: Path) -> None:
    for cells, name in enumerate(("a", "b", "c"), start=1):  # estimated from their number of code cells
        write(workdir / "nbs" / f"{name}.ipynb", [new_code_cell(f"print({i})") for i in range(cells)])
    ran = []
    for shard in ("1/2", "2/2"):
        code, out = run_check("nbs", shard=Shard.parse(shard))
        assert code == 0, out
        assert f"on 1 worker(s), shard {shard}" in out
        ran.append(sorted(line.split()[1] for line in out.splitlines() if line.startswith("PASS")))
    assert ran == [["nbs/c.ipynb"], ["nbs/a.ipynb", "nbs/b.ipynb"]]


def test_sigterm_stops_the_check_and_leaves_no_kernel_or_file_behind(workdir: Path) -> None:
    write(workdir / "slow.ipynb", [new_code_cell("import time\ntime.sleep(600)")])
    runtime = workdir / "runtime"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "TMPDIR": str(workdir / "tmp")}
    (workdir / "tmp").mkdir()
    check_process = subprocess.Popen([sys.executable, "-m", "kailash_nb.cli", "check", "slow.ipynb"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernel = _wait_for_child_kernel(check_process.pid)
    check_process.send_signal(signal.SIGTERM)
    _, err = check_process.communicate(timeout=60)

    assert check_process.returncode == 130
    assert "kailash-nb check: interrupted; kernels shut down" in err
    assert not _alive(kernel)
    assert list(runtime.glob("kernel-*.json")) == []
    assert list((workdir / "tmp").iterdir()) == []


def _wait_for_child_kernel(parent: int, limit: float = 60.0) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[1]) == parent and b"ipykernel_launcher" in command:
                time.sleep(1.0)  # let the kernel start the cell
                return int(entry.name)
        time.sleep(0.1)
    raise AssertionError("the check started no kernel")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sanitized_differences_still_pass(workdir: Path) -> None:
    cell = new_code_cell("print(f'at 0x{id(object()):x}')", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="at 0x7f0000abcdef\n")]
    write(workdir / "addr.ipynb", [cell])
    assert run_check("addr.ipynb")[0] == 0


def test_check_outside_a_project_prints_no_warning(workdir: Path) -> None:
    write(workdir / "plain.ipynb", [new_code_cell("print('hello')")])
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "PYTHONWARNINGS"))}
    run = subprocess.run([sys.executable, "-W", "default", "-m", "kailash_nb.cli", "check", "plain.ipynb"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr == ""
    assert "arning" not in run.stdout


def test_a_notebook_that_cannot_be_read_is_reported_and_the_others_still_run(workdir: Path) -> None:
    (workdir / "nbs").mkdir()
    (workdir / "nbs" / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    write(workdir / "nbs" / "fine.ipynb", [new_code_cell("print('fine')")])

    code, out = run_check("nbs", junit=Path("out/junit.xml"))

    assert code == 3  # could not run: not a regression
    assert "ERROR nbs/broken.ipynb  could not run: cannot read nbs/broken.ipynb as a notebook" in out
    assert "PASS  nbs/fine.ipynb  1 cells" in out
    assert "1 passed, 1 notebook(s) could not run (not a regression)" in out
    suites = {s.get("name"): s for s in ET.parse("out/junit.xml").getroot().iter("testsuite")}
    assert suites["nbs/broken.ipynb"].get("errors") == "1"
