"""The notebook layer in real kernels: nbclient executes notebooks built here, with the test's own python.

The kernel is started from ``sys.executable`` (not whatever ``python3`` kernelspec is installed), with
the repository on PYTHONPATH, so a fresh clone works without ``ipykernel install`` or ``pip install``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from kailash_nb.runner.execute import kernel_manager

REPO = Path(__file__).resolve().parents[3]
LOAD = "%load_ext kailash_nb.notebook"

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]


def kernel_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["KAILASH_NB_WIDGETS"] = "0"
    env.pop("JPY_SESSION_NAME", None)
    env.update(extra)
    return env


def new_client(nb: Any, cwd: Path) -> NotebookClient:
    """A client on a kernel of this interpreter (the runner's kernel manager), whatever kernelspecs exist."""
    return NotebookClient(nb, km=kernel_manager(), timeout=120, allow_errors=True,
                          resources={"metadata": {"path": str(cwd)}})


def execute(cells: list[str], cwd: Path, **env: str) -> list[Any]:
    """Execute cells in a fresh kernel (shut down afterwards); return the executed cells."""
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    new_client(nb, cwd).execute(env=kernel_env(**env), cleanup_kc=True)
    return nb.cells


def error(cell: Any) -> Any | None:
    return next((o for o in cell.outputs if o.output_type == "error"), None)


def no_error(cell: Any) -> Any:
    found = error(cell)
    assert found is None, f"cell failed: {cell.source!r}: {found.ename}: {found.evalue}"
    return cell


def text(cell: Any) -> str:
    """Every text output of a cell: streams and text/plain of displays and results."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def plain_traceback(cell: Any) -> str:
    """The traceback a failed cell shows, without terminal colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error(cell).traceback))


def data(cell: Any, mime: str) -> list[Any]:
    return [o.data[mime] for o in cell.outputs if "data" in o and mime in o.data]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


LOOP_BOUND = '''
import asyncio

class LoopBound:
    """Stands for an asyncpg pool: made on the kernel's loop, unusable from any other."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()

    async def echo(self, value):
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("used from another event loop")
        await self.queue.put(value)
        return await self.queue.get()

resource = LoopBound()
'''


def test_kailash_cell_awaits_on_the_kernel_loop_with_a_resource_from_an_earlier_cell(workdir: Path) -> None:
    cells = execute([
        LOAD,
        LOOP_BOUND,
        '%%kailash producer\nvalue = await resource.echo(41)\nawait asyncio.sleep(0)\nprint("produced", value)\n'
        'result = {"value": value, "same_loop": asyncio.get_running_loop() is resource.loop}',
        "%%kailash consumer value=producer.value\nresult = {'answer': value + 1}",
        "r = %kailash run\nprint(r.status, r.get_output('consumer'), r.get_output('producer', 'same_loop'))",
        "%kailash run",
        "%kailash workflow",
        "%kailash show",
        "print(get_ipython().find_line_magic('kailash').__doc__)",
    ], workdir)
    for cell in cells:
        no_error(cell)
    producer = text(cells[2])
    assert "produced 41" in producer
    assert producer.splitlines()[-3:] == ["      key value", "same_loop  True", "    value    41"]
    assert text(cells[3]).splitlines()[-1] == "answer    42"
    assert text(cells[4]).strip() == "success {'answer': 42} True"
    shown = text(cells[5])
    assert shown.startswith("WorkflowResult 'notebook': success (2 success)")
    assert "produced 41" in shown
    assert data(cells[5], "text/html")
    assert text(cells[6]).startswith("Workflow 'notebook': 2 node(s), 1 connection(s)")
    assert "value=producer.value" in text(cells[6])
    assert data(cells[7], "image/png") and data(cells[7], "text/plain") == [
        "<Chart: workflow 'notebook': 2 node(s), 1 connection(s)>"
    ]
    help_text = text(cells[8])
    for subcommand in ("run", "workflow", "show", "mock", "calls", "test", "bench", "explore", "reset"):
        assert f"%kailash {subcommand}" in help_text
    assert "%%kailash" in help_text and "KAILASH_NB_WIDGETS" in help_text


def test_errors_fail_the_cell_with_specific_exceptions(workdir: Path) -> None:
    cells = execute([
        LOAD,
        "%%kailash producer\nresult = {'items': [1, 2]}",
        "%kailash run --bogus",
        "%kailash run nowhere",
        "%kailash frobnicate",
        "%kailash run --inputs [1, 2]",
        "%kailash run --inputs undefined_name",
        "%%kailash consumer items=missing.items\nresult = {}",
        "%%kailash consumer items=producer.items\nx = 1\nraise ValueError('bad ' + str(items))",
        "%kailash calls nobody",
        "%%kailash broken\nresult = {",
        "%kailash reset",
        "%kailash run",
    ], workdir)
    no_error(cells[1])
    expected = [
        (2, "MagicUsageError", "unrecognized arguments: --bogus"),
        (3, "UnknownWorkflowError", "no workflow 'nowhere'"),
        (4, "MagicUsageError", "unknown %kailash subcommand 'frobnicate'"),
        (5, "InvalidInputsError", "--inputs '[1, 2]' must be a mapping of variable names to values"),
        (6, "InputsError", "NameError"),
        (7, "UnknownNodeError", "missing"),
        (8, "ValueError", "bad [1, 2]"),
        (9, "UnknownResourceError", "no mock named 'nobody'"),
        (10, "NodeSyntaxError", "node 'broken'"),
        (12, "UnknownWorkflowError", "defined: none yet"),
    ]
    no_error(cells[11])
    for index, ename, message in expected:
        found = error(cells[index])
        assert found is not None, f"cell {index} did not fail: {cells[index].source!r}"
        assert (found.ename, message in found.evalue) == (ename, True), (found.ename, found.evalue)
    traceback = plain_traceback(cells[8])
    assert "----> 1 %%kailash consumer items=producer.items" in traceback
    assert "<node consumer" in traceback and "----> 2 raise ValueError" in traceback
    assert "__import__" not in traceback and "kailash_nb/" not in traceback
    assert "----> 1 %kailash run nowhere" in plain_traceback(cells[3])


def test_unload_cleans_up_session_resources_and_load_is_idempotent(workdir: Path) -> None:
    cells = execute([
        LOAD,
        "%load_ext kailash_nb",
        "from kailash_nb.notebook import current_session\n"
        "closed = []\n"
        "class Pool:\n"
        "    async def aclose(self):\n"
        "        closed.append(asyncio.get_running_loop() is loop)\n"
        "import asyncio\n"
        "loop = asyncio.get_running_loop()\n"
        "async def make_pool():\n"
        "    return Pool()\n"
        "current_session().register_resource('pool', factory=make_pool)",
        "%%kailash uses_pool\npool = await get_resource('pool')\nresult = {'kind': type(pool).__name__}",
        "%unload_ext kailash_nb",
        "print(closed)",
        "%kailash run",
        "%load_ext kailash_nb",
        "%%kailash again\nresult = {'ok': True}",
    ], workdir)
    for index in (0, 1, 2, 3, 4, 5, 7, 8):
        no_error(cells[index])
    assert "Pool" in text(cells[3])
    assert text(cells[5]).strip() == "[True]"
    assert error(cells[6]) is not None or "not found" in text(cells[6])
    assert "ok" in text(cells[8])


DETERMINISTIC = [
    LOAD,
    "%kailash mock db\n"
    "db.fetch.side_effect = lambda q, limit=0: [{'id': i, 'name': f'<b>{i}</b>'} for i in range(limit)]",
    "%kailash mock cache\ncache.get.return_value = None",
    "%%kailash load\nrows = await db.fetch('select', limit=3)\nawait asyncio.sleep(0.001)\nprint('loaded', len(rows))\n"
    "result = {'rows': rows}",
    "%%kailash left rows=load.rows\nfor r in rows:\n    await cache.get(r['id'])\nresult = {'n': len(rows)}",
    "%%kailash right rows=load.rows\nhit = await cache.get('all')\nresult = {'names': [r['name'] for r in rows]}",
    "%%kailash merge n=left.n names=right.names\nresult = {'n': n, 'names': names}",
    "%kailash run",
    "%kailash workflow",
    "%kailash calls",
    "%kailash calls cache",
    "%kailash bench -n 6 --concurrency 3",
    "%kailash explore notebook --inputs {'limit': 3}",
    "%%kailash fails rows=load.rows\nraise KeyError(len(rows))",
    "r = %kailash run\nr",
]


def test_executing_a_notebook_twice_gives_identical_text_and_html(workdir: Path) -> None:
    first = execute(DETERMINISTIC, workdir)
    second = execute(DETERMINISTIC, workdir)
    for cell in first[:13]:
        no_error(cell)
    assert error(first[13]).ename == "KeyError"

    def comparable(cells: list[Any]) -> list[list[tuple[str, Any]]]:
        out = []
        for cell in cells:
            items = []
            for output in cell.outputs:
                if output.output_type == "stream":
                    items.append((output.name, output.text))
                elif output.output_type == "error":
                    items.append(("error", (output.ename, output.evalue)))
                else:
                    items += [(k, v) for k, v in sorted(output.data.items()) if k in ("text/plain", "text/html")]
            out.append(items)
        return out

    assert comparable(first) == comparable(second)
    html = "\n".join(h for cell in first for h in data(cell, "text/html"))
    assert "&lt;b&gt;0&lt;/b&gt;" in html and "<b>0</b>" not in html
    calls = text(first[9])
    # load 1 fetch, left 3 gets, right 1 get when their cells ran; the full run repeats all 5 calls
    assert calls.startswith("calls of the session: 10\n")
    assert text(first[10]).startswith("calls of 'cache': 8\n")
    assert [line.split()[-1] for line in calls.splitlines()[2:]] == ["left"] * 6 + ["right"] * 2 + ["load"] * 2
    assert "0x" not in "".join(text(c) for c in first)
    bench = first[11]
    assert data(bench, "image/png")
    assert [line.split() for line in text(bench).splitlines()[-2:]] == [["status", "runs"], ["success", "6"]]
    report = [o.metadata["kailash_nb"] for o in bench.outputs if "p95" in o.get("metadata", {}).get("kailash_nb", {})]
    assert report and report[0]["p95"] > 0
    result_metadata = [o.metadata for o in first[7].outputs if o.get("metadata")]
    assert set(result_metadata[0]["kailash_nb"]["node_timings"]) == {"load", "left", "right", "merge"}


def test_a_finished_progress_bar_leaves_a_static_line_and_no_widget_view(workdir: Path) -> None:
    nb = new_notebook(cells=[new_code_cell(source) for source in (
        LOAD, "%%kailash one\nresult = {'x': 1}", "%kailash bench -n 2")])
    new_client(nb, workdir).execute(env=kernel_env(KAILASH_NB_WIDGETS="1"), cleanup_kc=True)
    bench = no_error(nb.cells[2])
    # the bar was a widget, with its whole label...
    states = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"].values()
    [bar] = [s["state"] for s in states if s["model_name"] == "IntProgressModel"]
    [style] = [s["state"] for s in states if s["model_name"] == "ProgressStyleModel"]
    assert (bar["description"], bar["value"], bar["max"], style["description_width"]) == ("bench 'notebook'", 2, 2,
                                                                                          "initial")
    # ...and what the saved notebook keeps in its place is a line of text, not a view of a closed widget
    assert not data(bench, "application/vnd.jupyter.widget-view+json")
    assert text(bench).splitlines()[0] == "bench 'notebook': 2 of 2 runs"


def test_kernel_interrupt_cancels_a_running_workflow_cleanly(workdir: Path) -> None:
    started, cancelled = workdir / "started", workdir / "cancelled"
    nb = new_notebook(cells=[
        new_code_cell(LOAD),
        new_code_cell(
            "%%kailash sleeper --no-run\n"
            "try:\n"
            f"    open({str(started)!r}, 'w').close()\n"
            "    await asyncio.sleep(3600)\n"
            "finally:\n"
            f"    open({str(cancelled)!r}, 'w').close()\n"
            "result = {}"
        ),
        new_code_cell("%%kailash other\nawait asyncio.sleep(3600)\nresult = {}"),
        new_code_cell("r = %kailash run"),
        new_code_cell("print('still alive', 6 * 7)"),
    ])
    client = new_client(nb, workdir)

    async def scenario() -> None:
        async with client.async_setup_kernel(env=kernel_env(), cleanup_kc=True):
            for index in (0, 1):
                await client.async_execute_cell(nb.cells[index], index)
            running = asyncio.ensure_future(client.async_execute_cell(nb.cells[3], 3))
            while not started.exists():
                assert not running.done(), "the run finished before it was interrupted"
                await asyncio.sleep(0.05)
            await client.km.interrupt_kernel()
            await running
            await client.async_execute_cell(nb.cells[4], 4)

    asyncio.run(asyncio.wait_for(scenario(), 120))
    failure = error(nb.cells[3])
    assert failure is not None and failure.ename == "KeyboardInterrupt"
    assert failure.evalue == "%kailash run was interrupted while node 'sleeper' was awaiting"
    assert cancelled.exists()
    assert text(nb.cells[4]).strip() == "still alive 42"


def test_an_interrupted_kailash_cell_shows_keyboard_interrupt_at_the_node_line(workdir: Path) -> None:
    started = workdir / "started"
    nb = new_notebook(cells=[
        new_code_cell(LOAD),
        new_code_cell(f"%%kailash waits\nopen({str(started)!r}, 'w').close()\n"
                      "await asyncio.sleep(3600)\nresult = {}"),
        new_code_cell("%%kailash after\nresult = {'ok': True}"),
    ])
    client = new_client(nb, workdir)

    async def scenario() -> None:
        async with client.async_setup_kernel(env=kernel_env(), cleanup_kc=True):
            await client.async_execute_cell(nb.cells[0], 0)
            running = asyncio.ensure_future(client.async_execute_cell(nb.cells[1], 1))
            while not started.exists():
                assert not running.done(), "the cell finished before it was interrupted"
                await asyncio.sleep(0.05)
            await client.km.interrupt_kernel()
            await running
            await client.async_execute_cell(nb.cells[2], 2)

    asyncio.run(asyncio.wait_for(scenario(), 120))
    failure = error(nb.cells[1])
    assert (failure.ename, failure.evalue) == (
        "KeyboardInterrupt", "%%kailash waits was interrupted while node 'waits' was awaiting")
    traceback = plain_traceback(nb.cells[1])
    assert "----> 1 %%kailash waits" in traceback and "File <node waits>:2" in traceback
    assert "----> 2 await asyncio.sleep(3600)" in traceback
    assert "CancelledError" not in traceback and "kailash_nb/" not in traceback and "asyncio/" not in traceback
    assert text(no_error(nb.cells[2])).splitlines()[-1].split() == ["ok", "True"]


NOTEBOOK_TESTS = '''
from kailash_nb.testing import AsyncWorkflowTestCase

class Checks(AsyncWorkflowTestCase):
    async def test_workflow_reads_the_mock(self):
        db = await self.create_test_resource("db", mock=True)
        db.fetch.return_value = [1, 2, 3]
        result = await self.execute_workflow(get_ipython().run_line_magic("kailash", "workflow"))
        self.assert_node_output(result, "count", 3, key="n")

    async def test_a_wrong_expectation(self):
        db = await self.create_test_resource("db", mock=True)
        await db.fetch("select <1>", limit=1)
        assert False, "expected <nothing>"
'''


def test_kailash_test_reports_and_fails_the_cell_when_a_test_fails(workdir: Path) -> None:
    cells = execute([
        LOAD,
        "%%kailash count --no-run\nrows = await (await get_resource('db')).fetch('select')\nresult = {'n': len(rows)}",
        NOTEBOOK_TESTS,
        "%kailash test reads",
        "%kailash test",
        "%kailash test no_such_test",
    ], workdir)
    for cell in cells[:4]:
        no_error(cell)
    assert [line.split() for line in text(cells[3]).splitlines()] == [
        ["tests:", "1", "passed"],
        ["test", "outcome", "message"],
        ["Checks.test_workflow_reads_the_mock", "passed"],
    ]
    failed = error(cells[4])
    assert failed.ename == "NotebookTestsFailed"
    assert failed.evalue == "1 of 2 notebook tests failed: Checks.test_a_wrong_expectation"
    report = text(cells[4])
    assert report.startswith("tests: 1 failed, 1 passed")
    assert "AssertionError: expected <nothing>" in report
    assert "calls of Checks.test_a_wrong_expectation:" in report and "select <1>, limit=1" in report
    html = data(cells[4], "text/html")[0]
    assert "expected &lt;nothing&gt;" in html and "<nothing>" not in html
    assert error(cells[5]).ename == "KailashMagicError"


def test_an_asyncpg_pool_made_in_a_cell_is_used_by_a_node(workdir: Path) -> None:
    pytest.importorskip("asyncpg")
    cells = execute([
        LOAD,
        "from kailash_nb.testing.fixtures.postgres import create_test_database\n"
        "db = await create_test_database(schema='create table items (id serial primary key, name text)')\n"
        "pool = await db.pool()",
        "%%kailash insert\n"
        "async with pool.acquire() as conn:\n"
        "    await conn.executemany('insert into items (name) values ($1)', [(n,) for n in names])\n"
        "result = {'inserted': len(names)}",
        "%%kailash read inserted=insert.inserted\n"
        "rows = await pool.fetch('select name from items order by id')\n"
        "result = {'names': [r['name'] for r in rows], 'inserted': inserted}",
        "r = %kailash run --inputs {'names': ['x', 'y']}\nprint(r.status, r.get_output('read'))",
        "await pool.close()\nawait db.cleanup()",
    ], workdir)
    no_error(cells[1])
    insert = error(cells[2])
    assert insert is not None and insert.ename == "NameError" and "names" in insert.evalue
    for cell in cells[4:]:
        no_error(cell)
    assert text(cells[4]).strip() == "success {'names': ['x', 'y'], 'inserted': 2}"


def test_a_redis_cache_made_in_a_cell_is_used_by_kailash_cells(workdir: Path) -> None:
    cells = execute([
        LOAD,
        "from kailash_nb.testing import AsyncWorkflowFixtures\n"
        "cache = await AsyncWorkflowFixtures.create_test_cache(backend='redis')",
        "%%kailash remember --no-run\n"
        "await cache.set('names', names, ttl=60)\n"
        "result = {'stored': len(names)}",
        "%%kailash recall stored=remember.stored --no-run\n"
        "result = {'names': await cache.get('names'), 'stored': stored, 'keys': await cache.keys()}",
        "r = %kailash run --inputs {'names': ['x', 'y']}\nprint(r.status, r.get_output('recall'))",
        "raw = await cache.client.get(cache.key('names'))\nawait cache.aclose()\nprint(raw)",
    ], workdir)
    for cell in cells[1:]:
        no_error(cell)
    assert text(cells[4]).strip() == "success {'names': ['x', 'y'], 'stored': 2, 'keys': ['names']}"
    assert text(cells[5]).strip() == """b'["x","y"]'"""


def test_nbval_passes_a_stored_notebook_and_fails_a_failing_test_cell(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from kailash_nb.notebook import sanitize_file_path

    def stored(sources: list[str], name: str) -> Path:
        nb = new_notebook(cells=[new_code_cell(source) for source in sources])
        new_client(nb, pytester.path).execute(env=kernel_env(), cleanup_kc=True)
        path = pytester.path / name
        nbformat.write(nb, path)
        return path

    good = stored(DETERMINISTIC[:13], "good.ipynb")
    bad = stored([LOAD, "%%kailash count --no-run\nrows = await (await get_resource('db')).fetch('select')\n"
                  "result = {'n': len(rows)}", NOTEBOOK_TESTS, "%kailash test"], "bad.ipynb")

    for name, value in kernel_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)

    def nbval(path: Path) -> pytest.RunResult:
        return pytester.runpytest_subprocess("--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
                                             f"--nbval-sanitize-with={sanitize_file_path()}", "-q", path.name,
                                             timeout=300)

    passed = nbval(good)
    assert passed.ret == 0, passed.stdout.str()[-3000:]
    failed = nbval(bad)
    assert failed.ret == 1, failed.stdout.str()[-3000:]
    assert "NotebookTestsFailed" in failed.stdout.str()


async def _execute_as_jupyterlab(client: Any, code: str, cell_id: str) -> tuple[dict[str, Any], str]:
    """Execute ``code`` as JupyterLab does: an execute_request whose metadata holds the cell's ``cellId``
    (nbclient sends no metadata). Returns the reply's content and the cell's text output."""
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    request = client.session.msg("execute_request", content, metadata={"cellId": cell_id, "deletedCells": [],
                                                                        "recordTiming": False})
    client.shell_channel.send(request)
    msg_id = request["header"]["msg_id"]
    while True:
        reply = await client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    printed = []
    while True:
        message = await client.get_iopub_msg(timeout=60)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, body = message["msg_type"], message["content"]
        if kind == "status" and body["execution_state"] == "idle":
            return reply["content"], "".join(printed)
        if kind == "stream":
            printed.append(body["text"])
        elif kind == "error":
            printed.append(f"{body['ename']}: {body['evalue']}")


def test_rerunning_cells_in_jupyterlab_recreates_the_mock_and_replaces_a_renamed_node(workdir: Path) -> None:
    from kailash_nb.runner.execute import kernel_manager

    cells = [
        ("load", f"{LOAD}\nran = []"),
        ("mock", "%kailash mock db\ndb.fetch.return_value = [1]"),
        ("node", "%%kailash cleanup\nran.append('cleanup')\nresult = {'rows': await db.fetch()}"),
        ("mock", "%kailash mock db\ndb.fetch.return_value = [2]"),  # the same cell, edited and re-run
        ("node", "%%kailash purge\nran.append('purge')\nresult = {'rows': await db.fetch()}"),  # renamed
        ("check", "ran.clear()\nr = %kailash run\nprint(list(r.node_status), ran, r.get_output('purge', 'rows'))"),
        ("drop", "%kailash drop cleanup"),
    ]

    async def scenario() -> list[tuple[dict[str, Any], str]]:
        manager = kernel_manager()
        await manager.start_kernel(env=kernel_env(), cwd=str(workdir))
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            return [await _execute_as_jupyterlab(client, code, cell_id) for cell_id, code in cells]
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    replies = asyncio.run(asyncio.wait_for(scenario(), 120))
    for (cell_id, _), (reply, printed) in zip(cells[:-1], replies[:-1], strict=True):
        assert reply["status"] == "ok", f"cell {cell_id!r} failed: {printed}"
    assert replies[5][1].strip() == "['purge'] ['purge'] [2]"
    reply, printed = replies[6]
    assert reply["status"] == "error" and reply["ename"] == "UnknownNotebookNodeError"
    assert printed == "UnknownNotebookNodeError: workflow 'notebook' has no node 'cleanup'; its nodes: 'purge'"
