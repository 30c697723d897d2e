"""The extension in an IPython ``InteractiveShell``: loading, the magics, top-level await, unloading."""

from __future__ import annotations

import asyncio

import pytest
from IPython.core.interactiveshell import InteractiveShell
from notebook_cells import raised, run

from kailash_nb.notebook.errors import NotAwaitedError
from kailash_nb.workflow import Workflow, WorkflowResult


def test_cells_define_and_run_nodes_with_connections_and_await(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "import asyncio\nfactor = 10",
        "%%kailash producer\nawait asyncio.sleep(0)\nresult = {'items': [1, 2, 3]}",
        "%%kailash consumer items=producer.items\nresult = {'total': sum(items) * factor}",
        "r = %kailash run",
    )
    assert [raised(r) for r in results] == [None] * 4
    node_output = results[2].result
    assert (node_output.node, dict(node_output.output)) == ("consumer", {"total": 60})
    r = shell.user_ns["r"]
    assert isinstance(r, WorkflowResult) and r.get_output("consumer", "total") == 60
    assert isinstance(shell.run_line_magic("kailash", "workflow"), Workflow)


def test_running_a_node_reuses_upstream_outputs_and_runs_only_missing_ones(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "counts = {'a': 0, 'b': 0}",
        "%%kailash a\ncounts['a'] += 1\nresult = {'v': 1}",
        "%%kailash b --no-run\ncounts['b'] += 1\nresult = {'v': 2}",
        "%%kailash c x=a.v y=b.v\nresult = {'sum': x + y}",
        "%%kailash c x=a.v y=b.v\nresult = {'sum': x + y + 100}",
    )
    assert [raised(r) for r in results] == [None] * 5
    assert shell.user_ns["counts"] == {"a": 1, "b": 1}
    assert results[4].result.output == {"sum": 103}


def test_node_errors_fail_the_cell_with_the_original_exception(shell: InteractiveShell) -> None:
    results = run(shell, "%%kailash boom\nprint('before')\nraise LookupError('nope')")
    assert isinstance(raised(results[0]), LookupError)


def test_synchronous_call_of_an_awaiting_subcommand_explains_itself(shell: InteractiveShell) -> None:
    run(shell, "%%kailash n --no-run\nresult = {}")
    with pytest.raises(NotAwaitedError, match="top level of a cell"):
        shell.run_line_magic("kailash", "run")
    with pytest.raises(NotAwaitedError, match="--no-run"):
        shell.run_cell_magic("kailash", "m", "result = {}")
    assert "m" in shell.run_line_magic("kailash", "workflow").nodes  # defined, not run


def test_loading_twice_registers_once_and_unloading_removes_everything(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import load_ipython_extension, unload_ipython_extension

    load_ipython_extension(shell)
    post = [t for t in shell.input_transformers_post if getattr(t, "__module__", "").startswith("kailash_nb")]
    assert len(post) == 1
    formatter = shell.display_formatter.mimebundle_formatter
    assert formatter.lookup_by_type(WorkflowResult)
    shows_itself = shell.display_formatter.ipython_display_formatter
    from kailash_nb.testing import ScheduleReport

    assert shows_itself.lookup_by_type(ScheduleReport)
    unload_ipython_extension(shell)
    with pytest.raises(KeyError):
        shows_itself.lookup_by_type(ScheduleReport)
    assert "kailash" not in shell.magics_manager.magics["line"]
    assert "kailash" not in shell.magics_manager.magics["cell"]
    assert not [t for t in shell.input_transformers_post if getattr(t, "__module__", "").startswith("kailash_nb")]
    with pytest.raises(KeyError):
        formatter.lookup_by_type(WorkflowResult)
    load_ipython_extension(shell)  # for the fixture's unload


def test_reset_clears_workflows_mocks_and_cleans_up_resources(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "closed = []\nclass Res:\n    async def aclose(self):\n        closed.append(True)\n"
        "from kailash_nb.notebook import current_session\ncurrent_session().register_resource('res', factory=Res)",
        "%kailash mock api",
        "%%kailash n\nawait get_resource('res')\nresult = {}",
        "%kailash reset",
        "%kailash workflow",
    )
    assert [raised(r) for r in results[:4]] == [None] * 4
    assert shell.user_ns["closed"] == [True]
    assert "api" not in shell.user_ns
    assert type(raised(results[4])).__name__ == "UnknownWorkflowError"


def test_results_and_workflows_display_as_stable_tables(shell: InteractiveShell) -> None:
    run(shell, "%%kailash a\nprint('<script>x</script>')\nresult = {'html': '<b>bold</b>'}", "r = %kailash run")
    data, metadata = shell.display_formatter.format(shell.user_ns["r"])
    assert data["text/plain"].startswith("WorkflowResult 'notebook': success (1 success)")
    assert "&lt;b&gt;bold&lt;/b&gt;" in data["text/html"] and "<b>bold" not in data["text/html"]
    assert "&lt;script&gt;" in data["text/html"] and "<script>" not in data["text/html"]
    assert set(metadata["kailash_nb"]["node_timings"]) == {"a"}


def test_explore_form_reruns_the_workflow_with_edited_inputs(shell: InteractiveShell,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import ipywidgets

    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.widgets import explore

    run(shell, "%%kailash double --no-run\nresult = {'twice': n * 2}")
    monkeypatch.setenv("KAILASH_NB_WIDGETS", "1")
    session = current_session(shell)
    form = explore(session, "notebook", {"n": 3})
    assert isinstance(form, ipywidgets.VBox)
    field, button = form.children[0], form.children[1]
    assert (field.description, field.value) == ("n", "3")

    async def click() -> None:
        field.value = "21"
        button.click()
        await asyncio.gather(*session.tasks)

    asyncio.run(click())
    assert session.workflows["notebook"].outputs["double"] == {"twice": 42}
    assert session.last_inputs["notebook"] == {"n": 21}


def test_rerunning_an_upstream_cell_makes_downstream_outputs_stale(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "runs = []\nbase = 1",
        "%%kailash a\nruns.append('a')\nresult = {'v': base}",
        "%%kailash b x=a.v\nruns.append('b')\nresult = {'v': x * 10}",
        "%%kailash c x=b.v\nruns.append('c')\nresult = {'v': x + 1}",
        "base = 2",
        "%%kailash a\nruns.append('a')\nresult = {'v': base}",
        "%%kailash c x=b.v\nruns.append('c')\nresult = {'v': x + 1}",
    )
    assert [raised(r) for r in results] == [None] * 7
    assert shell.user_ns["runs"] == ["a", "b", "c", "a", "b", "c"]
    assert results[-1].result.output == {"v": 21}


@pytest.mark.parametrize(("inputs", "message"), [
    ("{'print': 1}", "key 'print' would hide the runtime's 'print'"),
    ("{'result': 1}", "key 'result' would hide"),
    ("{'get_resource': 1}", "key 'get_resource' would hide"),
    ("{'not valid': 1}", "key 'not valid' is not a Python variable name"),
    ("{'__builtins__': {}}", "key '__builtins__' is a dunder name"),
    ("[1]", "must be a mapping of variable names to values, e.g. {'n': 3}; got a list"),
])
def test_bad_inputs_raise_inputs_error_and_leave_the_session_usable(shell: InteractiveShell, inputs: str,
                                                                     message: str) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.workflow import InvalidInputsError

    results = run(
        shell,
        "%%kailash a --no-run\nresult = {'n': n * 2}",
        "r = %kailash run --inputs {'n': 1}",
        f"r = %kailash run --inputs {inputs}",
        "r = %kailash run",
        "%%kailash a\nresult = {'n': n * 3}",
    )
    error = raised(results[2])
    assert isinstance(error, InvalidInputsError)
    assert "--inputs" in str(error) and message in str(error)
    assert [raised(r) for r in (results[0], results[1], results[3], results[4])] == [None] * 4
    assert shell.user_ns["r"].get_output("a", "n") == 2
    assert results[4].result.output == {"n": 3}
    assert current_session(shell).last_inputs == {"notebook": {"n": 1}}


def test_session_run_checks_inputs_before_keeping_them(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.workflow import InvalidInputsError

    run(shell, "%%kailash a --no-run\nresult = {'n': n}")
    session = current_session(shell)
    with pytest.raises(InvalidInputsError, match="inputs of workflow 'notebook': key 'print'"):
        asyncio.run(session.run("notebook", {"print": 1}))
    assert session.last_inputs == {}
    assert asyncio.run(session.run("notebook", {"n": 4})).get_output("a", "n") == 4
    assert session.last_inputs == {"notebook": {"n": 4}}


def test_comments_after_line_magics_are_ignored_in_the_shell(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "%%kailash a --no-run  # defined now, run below\nresult = {'tag': tag}",
        "r = %kailash run --inputs {'tag': '#1'}  # the first tag",
        "s = %kailash run  # same inputs again",
    )
    assert [raised(r) for r in results] == [None] * 3
    assert shell.user_ns["r"].get_output("a", "tag") == "#1"
    assert shell.user_ns["s"].get_output("a", "tag") == "#1"


def test_not_awaited_error_says_what_works_and_what_does_not(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "%%kailash n --no-run\nresult = {'v': 1}",
        "r = get_ipython().run_line_magic('kailash', 'run')",
        "def f():\n    return get_ipython().run_line_magic('kailash', 'run')\nf()",
    )
    assert raised(results[1]) is None and shell.user_ns["r"].get_output("n", "v") == 1
    error = raised(results[2])
    assert isinstance(error, NotAwaitedError)
    message = str(error)
    assert "get_ipython().run_line_magic('kailash', 'run')" in message and "top level of a cell" in message
    assert "not work inside a def" in message
    assert "through run_line_magic()" not in message
    assert "current_session().run(NAME, inputs)" in message


def test_a_top_level_magic_awaits_even_when_the_cell_also_defines_a_function_using_one(
        shell: InteractiveShell) -> None:
    results = run(
        shell,
        "%%kailash n --no-run\nresult = {'v': 1}",
        "def later():\n    s = %kailash run\n    return s\nr = %kailash run",
    )
    assert raised(results[1]) is None
    assert shell.user_ns["r"].get_output("n", "v") == 1
    with pytest.raises(NotAwaitedError):
        shell.user_ns["later"]()


def test_a_node_reading_a_missing_input_fails_with_a_name_error_that_says_where_inputs_come_from(
        shell: InteractiveShell) -> None:
    results = run(
        shell,
        "%%kailash a\nresult = {'n': n * 2}",
        "%%kailash b -w other\nresult = {'m': m}",
        "r = %kailash run",
    )
    error = raised(results[0])
    assert type(error) is NameError and str(error) == "name 'n' is not defined"
    [note] = error.__notes__
    assert "`%kailash run --inputs {'n': ...}`" in note and "notebook namespace" in note
    assert "`%kailash run other --inputs {'m': ...}`" in raised(results[1]).__notes__[0]
    data, _ = shell.display_formatter.format(shell.user_ns["r"])
    assert "NameError: name 'n' is not defined" in data["text/plain"]
    assert "--inputs {'n': ...}" in data["text/plain"]


def test_a_name_error_raised_outside_node_code_gets_no_input_hint(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "def helper():\n    return undefined_global",
        "%%kailash a\nresult = {'v': helper()}",
    )
    error = raised(results[1])
    assert type(error) is NameError and not getattr(error, "__notes__", None)


@pytest.mark.parametrize(("name", "message"), [
    ("print", "'print' is reserved by kailash_nb (node code's 'print'; reserved: get_resource, print, result)"),
    ("get_resource", "'get_resource' is reserved by kailash_nb"),
    ("result", "'result' is reserved by kailash_nb"),
    ("len", "'len' would shadow the builtin 'len' in the notebook for the rest of the session"),
    ("display", "would shadow the builtin 'display'"),  # IPython adds it to builtins while a cell runs
    ("__name__", "'__name__' is a dunder name"),
    ("class", "'class' cannot be a notebook variable"),
    ("not-a-name", "'not-a-name' cannot be a notebook variable"),
])
def test_mock_refuses_a_name_that_would_shadow_a_builtin_or_a_reserved_name_and_leaves_nothing_behind(
        shell: InteractiveShell, name: str, message: str) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.errors import MagicUsageError

    before = {k: v for k, v in shell.user_ns.items() if k not in ("_", "__", "___")}
    [result] = run(shell, f"%kailash mock {name}")
    error = raised(result)
    assert isinstance(error, MagicUsageError) and message in str(error), error
    assert str(error).startswith(f"%kailash mock {name}: ") and str(error).endswith("choose another name")
    assert all(shell.user_ns.get(k) is v for k, v in before.items())
    assert name in before or name not in shell.user_ns
    session = current_session(shell)
    assert session.mocks == {} and name not in session.resources


def test_mock_over_a_notebook_variable_needs_force(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.errors import MagicUsageError

    results = run(shell, "db = 'my connection'", "%kailash mock db", "%kailash mock db --force  # on purpose")
    refused = raised(results[1])
    assert isinstance(refused, MagicUsageError)
    assert str(refused) == (
        "%kailash mock db: the notebook variable 'db' already holds a str, which the mock would replace; "
        "use another name, or `%kailash mock db --force` to replace it"
    )
    assert raised(results[2]) is None
    session = current_session(shell)
    assert shell.user_ns["db"] is session.mocks["db"] and session.resources.names == ("db",)


def test_a_name_bound_to_one_of_the_sessions_mocks_needs_no_force(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session

    results = run(shell, "%kailash mock api", "backup = api", "%kailash mock backup")
    assert [raised(r) for r in results] == [None] * 3
    session = current_session(shell)
    assert shell.user_ns["backup"] is session.mocks["backup"] is not session.mocks["api"]


def test_a_name_already_registered_in_the_session_is_refused_with_what_holds_it(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.errors import DuplicateResourceError

    results = run(shell, "%kailash mock db", "%kailash mock db",
                  "from kailash_nb.notebook import register_resource\nregister_resource('db', instance=object())",
                  "register_resource('pool', instance=1)\nregister_resource('pool', instance=2)")
    assert raised(results[0]) is None
    again = raised(results[1])  # no cell id here (as in terminal IPython): a re-run cannot be told from another cell
    assert isinstance(again, DuplicateResourceError)
    assert str(again) == (
        "%kailash mock db: a mock 'db' already exists in this session, and this frontend sends no cell id, so a "
        "re-run of its cell cannot be told from another cell; `%kailash mock db --force` re-creates it here, or "
        "use another name"
    )
    for result, what in ((results[2], "a mock"), (results[3], "a real resource")):
        error = raised(result)
        assert isinstance(error, DuplicateResourceError), error
        assert f"is already registered in this session ({what}); use the one that exists" in str(error)
    assert current_session(shell).resources.names == ("db", "pool")


def test_an_awaiting_magic_in_the_cell_that_loads_the_extension_names_that_cause(bare_shell: InteractiveShell) -> None:
    results = run(
        bare_shell,
        "%load_ext kailash_nb\nget_ipython().run_cell_magic('kailash', 'n --no-run', 'result = {\"v\": 1}')\n"
        "r = %kailash run",
        "r = %kailash run",
        "def later():\n    return get_ipython().run_line_magic('kailash', 'run')\nlater()",
    )
    error = raised(results[0])
    assert isinstance(error, NotAwaitedError)
    assert str(error).startswith(
        "%kailash run was not awaited because the kailash_nb extension was loaded in this same cell: "
    )
    assert "Load the extension in an earlier cell" in str(error) and "`ipython --ext kailash_nb`" in str(error)
    assert raised(results[1]) is None and bare_shell.user_ns["r"].get_output("n", "v") == 1
    later = raised(results[2])
    assert isinstance(later, NotAwaitedError) and "not work inside a def" in str(later)


def test_a_node_output_whose_repr_raises_is_shown_once_without_failing_the_cell(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    results = run(
        shell,
        "class Opaque:\n    def __repr__(self):\n        raise ValueError('no repr')",
        "%%kailash maker\nresult = {'thing': Opaque(), 'n': 1}",
        "%%kailash user thing=maker.thing\nresult = {'kind': type(thing).__name__}",
    )
    assert [raised(r) for r in results] == [None] * 3
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "ValueError" not in err
    assert out.count("node 'maker' of workflow 'notebook': output") == 1
    assert "<unrepresentable Opaque: repr raised ValueError>" in out
    assert results[2].result.output == {"kind": "Opaque"}


# -- re-running cells: the cell id that JupyterLab sends with each execution -------------------------------------

def test_rerunning_a_mock_cell_recreates_the_mock_with_the_configuration_it_now_holds(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session

    node = "%%kailash reader\nrows = await (await get_resource('db')).fetch()\nresult = {'rows': rows}"
    results = run(
        shell,
        ("mock-cell", "%kailash mock db\ndb.fetch.return_value = [1]"),
        ("node-cell", node),
        ("mock-cell", "%kailash mock db\ndb.fetch.return_value = [2]"),
        ("node-cell", node),
    )
    assert [raised(r) for r in results] == [None] * 4
    assert results[1].result.output == {"rows": [1]}
    assert results[3].result.output == {"rows": [2]}
    session = current_session(shell)
    assert shell.user_ns["db"] is session.mocks["db"]
    assert [(c.method, c.result) for c in session.calls("db")] == [("fetch", [2])]  # a fresh mock, fresh calls


def test_a_mock_name_taken_by_another_cell_needs_force_and_a_real_resource_is_refused(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.errors import DuplicateResourceError

    results = run(
        shell,
        ("first", "%kailash mock db\ndb.get.return_value = 'first'"),
        ("second", "%kailash mock db"),
        ("second", "%kailash mock db --force\ndb.get.return_value = 'second'"),
        ("setup", "from kailash_nb.notebook import register_resource\nregister_resource('pool', instance=object())"),
        ("pool-cell", "%kailash mock pool --force"),
    )
    other = raised(results[1])
    assert isinstance(other, DuplicateResourceError)
    assert str(other) == (
        "%kailash mock db: a mock 'db' already exists in this session, made by another cell; re-running that "
        "cell re-creates it; `%kailash mock db --force` re-creates it here, or use another name"
    )
    assert raised(results[2]) is None
    real = raised(results[4])
    assert isinstance(real, DuplicateResourceError) and "(a real resource)" in str(real)
    session = current_session(shell)
    registered = asyncio.run(session.resources.get("db"))
    assert registered is session.mocks["db"] is shell.user_ns["db"]
    assert registered.get.return_value == "second"
    assert "pool" not in session.mocks


def test_a_kailash_cell_rerun_under_a_new_name_replaces_the_node_it_defined(shell: InteractiveShell) -> None:
    results = run(
        shell,
        "ran = []",
        ("cell-a", "%%kailash cleanup\nran.append('cleanup')\nresult = {}"),
        ("cell-b", "%%kailash other\nran.append('other')\nresult = {}"),
        ("cell-a", "%%kailash purge\nran.append('purge')\nresult = {}"),
        "ran.clear()",
        "%kailash run",
    )
    assert [raised(r) for r in results] == [None] * 6
    assert sorted(shell.run_line_magic("kailash", "workflow").nodes) == ["other", "purge"]
    assert sorted(shell.user_ns["ran"]) == ["other", "purge"]  # no ghost of 'cleanup'


def test_a_kailash_cell_moved_to_another_workflow_leaves_none_behind(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.errors import UnknownWorkflowError

    results = run(shell, ("c", "%%kailash n\nresult = {}"), ("c", "%%kailash n -w other\nresult = {}"))
    assert [raised(r) for r in results] == [None] * 2
    session = current_session(shell)
    assert list(session.workflows) == ["other"]
    with pytest.raises(UnknownWorkflowError):
        session.workflow("notebook")


def test_renaming_a_node_that_others_take_input_from_is_refused_and_changes_nothing(shell: InteractiveShell) -> None:
    from kailash_nb.notebook.errors import NodeInUseError

    results = run(
        shell,
        ("p", "%%kailash producer\nresult = {'v': 1}"),
        ("c", "%%kailash consumer v=producer.v\nresult = {'w': v}"),
        ("p", "%%kailash source\nresult = {'v': 2}"),
    )
    error = raised(results[2])
    assert isinstance(error, NodeInUseError)
    assert str(error) == (
        "%%kailash source: this cell defined node 'producer' before, and renaming it would leave node(s) "
        "'consumer' of workflow 'notebook' taking input from a node that no longer exists; drop them first "
        "(`%kailash drop NODE`) or re-run their cells connected to another node, then run this again"
    )
    assert sorted(shell.run_line_magic("kailash", "workflow").nodes) == ["consumer", "producer"]


def test_a_node_another_cell_took_over_stays_when_the_first_cell_is_renamed(shell: InteractiveShell) -> None:
    results = run(
        shell,
        ("one", "%%kailash shared\nresult = {'by': 1}"),
        ("two", "%%kailash shared\nresult = {'by': 2}"),
        ("one", "%%kailash mine\nresult = {}"),
    )
    assert [raised(r) for r in results] == [None] * 3
    assert sorted(shell.run_line_magic("kailash", "workflow").nodes) == ["mine", "shared"]


def test_without_a_cell_id_a_renamed_cell_adds_a_node(shell: InteractiveShell) -> None:
    results = run(shell, "%%kailash old\nresult = {}", "%%kailash new\nresult = {}")
    assert [raised(r) for r in results] == [None] * 2
    assert sorted(shell.run_line_magic("kailash", "workflow").nodes) == ["new", "old"]


def test_drop_removes_one_node_and_says_what_exists_or_what_uses_it(shell: InteractiveShell) -> None:
    from kailash_nb.notebook import current_session
    from kailash_nb.notebook.errors import NodeInUseError, UnknownNotebookNodeError, UnknownWorkflowError

    results = run(
        shell,
        "%%kailash a\nresult = {'v': 1}",
        "%%kailash b v=a.v\nresult = {'v': v}",
        "%%kailash ghost\nresult = {}",
        "%kailash drop ghost",
        "%kailash drop nope",
        "%kailash drop a",
        "%kailash drop b\n%kailash drop a",
        "%kailash run",
    )
    assert [raised(r) for r in results[:4]] == [None] * 4
    unknown = raised(results[4])
    assert isinstance(unknown, UnknownNotebookNodeError)
    assert str(unknown) == "workflow 'notebook' has no node 'nope'; its nodes: 'a', 'b'"
    in_use = raised(results[5])
    assert isinstance(in_use, NodeInUseError) and str(in_use).startswith(
        "%kailash drop a would leave node(s) 'b' of workflow 'notebook' taking input from a node that no longer "
        "exists")
    assert raised(results[6]) is None
    assert isinstance(raised(results[7]), UnknownWorkflowError)  # the workflow went with its last node
    assert current_session(shell).workflows == {}


def test_a_node_raising_generator_exit_fails_its_cell_with_it(shell: InteractiveShell) -> None:
    [result] = run(shell, "%%kailash quits\nraise GeneratorExit('stop')\nresult = {}")
    error = raised(result)
    assert type(error) is GeneratorExit and str(error) == "stop"


def test_a_forgotten_await_in_a_kailash_cell_warns_at_the_node_line(shell: InteractiveShell) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [result] = run(shell, "%%kailash forgot\nimport asyncio\nrows = asyncio.sleep(0)\nresult = {}")
    assert raised(result) is None
    [warning] = [w for w in caught if "never awaited" in str(w.message)]
    assert warning.filename.startswith("<node forgot") and warning.lineno == 2
