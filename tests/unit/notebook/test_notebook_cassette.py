"""``%kailash cassette PATH``: the resources registered after it are recorded, then replayed without their factories."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from notebook_cells import raised, run

from kailash_nb.notebook.errors import DuplicateResourceError, MagicUsageError

STORE = (
    "made = []\n"
    "class Inventory:\n"
    "    def __init__(self):\n        self.stock = {'apple': 3, 'pear': 0}\n"
    "    async def count(self, item):\n        return self.stock[item]\n"
    "    async def aclose(self):\n        made.append('closed')\n"
    "def inventory():\n    made.append('made')\n    return Inventory()\n"
)
NODE = "%%kailash stock\nstore = await get_resource('store')\nresult = {'apple': await store.count('apple')}"


def _session(path: Path, mode: str = "once") -> tuple[str, ...]:
    return (STORE, f"cassette = %kailash cassette {path} --mode {mode}",
            "from kailash_nb.notebook import register_resource\nregister_resource('store', factory=inventory)", NODE,
            "r = %kailash run")


def test_a_cassette_records_the_first_session_and_replays_the_next_without_the_factory(
        shell: InteractiveShell, tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    results = run(shell, *_session(path))
    assert [raised(r) for r in results] == [None] * 5
    assert shell.user_ns["cassette"].recording and path.is_file()  # saved after each run
    assert shell.user_ns["made"] == ["made"]
    recorded = path.read_bytes()

    results = run(shell, "%kailash reset", *_session(path))
    assert [raised(r) for r in results] == [None] * 6
    assert shell.user_ns["made"] == []  # replayed: the factory never ran
    assert not shell.user_ns["cassette"].recording
    assert shell.user_ns["r"].get_output("stock", "apple") == 3
    assert path.read_bytes() == recorded

    table = run(shell, "%kailash calls store")[0].result
    text, _ = shell.display_formatter.format(table)
    assert "2 replayed from a cassette" in text["text/plain"]
    assert "answered by" in text["text/plain"] and "cassette" in text["text/html"]


def test_reset_saves_the_cassette_and_cleans_up_what_the_factory_made(shell: InteractiveShell, tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    run(shell, *_session(path, "all"))
    assert [raised(r) for r in run(shell, "%kailash reset")] == [None]
    assert shell.user_ns["made"] == ["made", "closed"]


def test_a_live_table_has_no_cassette_column(shell: InteractiveShell) -> None:
    results = run(shell, "%kailash mock db", "db.fetch.return_value = [1]",
                  "%%kailash q\ndb = await get_resource('db')\nresult = {'rows': await db.fetch()}",
                  "%kailash calls db")
    text, _ = shell.display_formatter.format(results[-1].result)
    assert "answered by" not in text["text/plain"] and "replayed" not in text["text/plain"]


def test_replay_only_with_no_file_names_the_file_and_how_to_record(shell: InteractiveShell, tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    result = run(shell, f"%kailash cassette {path} --mode none")[0]
    error = raised(result)
    assert error is not None and str(path) in str(error) and "record it first" in str(error)


def test_an_unknown_mode_is_a_usage_error(shell: InteractiveShell, tmp_path: Path) -> None:
    error = raised(run(shell, f"%kailash cassette {tmp_path / 'c.json'} --mode sometimes")[0])
    assert isinstance(error, MagicUsageError) and "once" in str(error) and "sometimes" in str(error)


def test_an_instance_is_refused_under_a_cassette(shell: InteractiveShell, tmp_path: Path) -> None:
    results = run(shell, f"%kailash cassette {tmp_path / 'c.json'}",
                  "from kailash_nb.notebook import register_resource\nregister_resource('db', instance=object())")
    error = raised(results[1])
    assert isinstance(error, TypeError) and "factory" in str(error) and "'db'" in str(error)


def test_the_same_line_again_keeps_the_cassette_and_another_needs_a_reset(
        shell: InteractiveShell, tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    run(shell, *_session(path))
    first = shell.user_ns["cassette"]
    again = run(shell, f"again = %kailash cassette {path} --mode once")[0]
    assert raised(again) is None and shell.user_ns["again"] is first
    error = raised(run(shell, f"%kailash cassette {tmp_path / 'other.json'}")[0])
    assert isinstance(error, DuplicateResourceError) and "%kailash reset" in str(error) and "'store'" in str(error)


@pytest.mark.parametrize("line", ["%kailash cassette"])
def test_a_cassette_needs_a_path(shell: InteractiveShell, line: str) -> None:
    error = raised(run(shell, line)[0])
    assert isinstance(error, MagicUsageError) and "PATH" in str(error)


def test_calls_of_an_unknown_resource_name_the_cassette_s_too(shell: InteractiveShell, tmp_path: Path) -> None:
    run(shell, *_session(tmp_path / "inventory.json"), "%kailash mock db")
    error = raised(run(shell, "%kailash calls nobody")[0])
    assert error is not None
    assert str(error) == ("no mock named 'nobody' in this session, nor a resource from a cassette; tracked: 'db', "
                          "'store'. Create one with %kailash mock NAME")
