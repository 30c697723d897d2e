"""Cassettes: record a workflow's resource calls, replay them without the resources, in every mode."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import ItemsView, KeysView
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kailash_nb.errors import KailashNbError
from kailash_nb.testing import AsyncWorkflowTestCase, Cassette, UnmatchedCallError, explore_schedules
from kailash_nb.testing.cassettes import (
    RECORD_MODE_VARIABLE,
    SECRET,
    CassetteFileError,
    CassetteModeError,
    CassetteNotFoundError,
    CassetteVersionError,
    Encoder,
    RecordedError,
    ReplayedRecord,
    UnencodableValueError,
)
from kailash_nb.testing.cassettes.tape import Entry, dump
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Workflow, virtual_time


@pytest.fixture(autouse=True)
def no_mode_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RECORD_MODE_VARIABLE, raising=False)


class Transaction:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> Transaction:
        self.log.append("begin")
        return self

    async def __aexit__(self, *exc_info: Any) -> bool:
        self.log.append("commit" if exc_info[0] is None else "rollback")
        return False

    async def execute(self, query: str) -> str:
        self.log.append(query)
        return "INSERT 0 1"


class Connection:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.server_version = (16, 2)

    async def fetch(self, query: str, *args: Any, password: str | None = None) -> list[dict[str, Any]]:
        self.service.calls += 1
        await asyncio.sleep(self.service.delay.get(query, 0))
        return [{"query": query, "args": list(args), "n": self.service.calls, "at": dt.date(2024, 5, 1)}]

    def transaction(self) -> Transaction:
        return Transaction(self.service.log)

    async def stream(self, count: int) -> Any:
        for i in range(count):
            await asyncio.sleep(0)
            yield f"chunk {i}".encode()

    async def fail(self) -> None:
        raise KeyError("no such row")


class Service:
    """A fake database: counts its calls, so that a replay that reached it would show."""

    def __init__(self, delay: dict[str, float] | None = None) -> None:
        self.calls = 0
        self.log: list[str] = []
        self.delay = delay or {}
        self.closed = False

    def acquire(self) -> Connection:
        return Connection(self)

    async def next_id(self, name: str) -> int:
        self.calls += 1
        await asyncio.sleep(self.delay.get(name, 0))
        return self.calls

    async def aclose(self) -> None:
        self.closed = True


def never_called() -> Any:
    raise AssertionError("the factory was called during replay")


def orders_workflow() -> Workflow:
    return (
        AsyncWorkflowBuilder("orders")
        .add_async_code("load", """
db = await get_resource("db")
conn = db.acquire()
rows = await conn.fetch("select * from orders where id = $1", 7, password="hunter2")
async with conn.transaction() as tx:
    tag = await tx.execute("insert into audit values (1)")
chunks = [chunk async for chunk in conn.stream(3)]
try:
    await conn.fail()
except KeyError as error:
    missing = str(error)
result = {"rows": rows, "tag": tag, "chunks": chunks, "missing": missing, "version": conn.server_version}
""")
        .build()
    )


def parallel_workflow() -> Workflow:
    builder = AsyncWorkflowBuilder("parallel")
    for name in ("a", "b"):
        builder.add_async_code(name, f"""
db = await get_resource("db")
result = {{"id": await db.next_id("{name}"), "again": await db.next_id("shared")}}
""")
    return builder.build()


async def run(cassette: Cassette, workflow: Workflow, inputs: dict[str, Any] | None = None,
              **factories: Any) -> dict[str, Any]:
    """Run ``workflow`` on the cassette's resources, on virtual time: the services' delays order the calls
    the same way on every machine."""
    resources = await cassette.resources(**factories)
    async with virtual_time():
        result = await AsyncLocalRuntime().execute_workflow_async(workflow, inputs, resources=resources)
    result.raise_for_status()
    return dict(result.outputs)


async def record_and_replay(path: Path, workflow: Workflow, mode: str = "once") -> tuple[Any, Any, Service]:
    service = Service()
    async with Cassette(path, mode) as cassette:
        recorded = await run(cassette, workflow, db=lambda: service)
        assert cassette.recording and cassette.recorded_count > 0
    async with Cassette(path, mode) as cassette:
        replayed = await run(cassette, workflow, db=never_called)
        assert cassette.replaying and cassette.replayed_count == cassette_calls(path)
    return recorded, replayed, service


def cassette_calls(path: Path) -> int:
    data = json.loads(path.read_text())
    return sum(1 for nodes in data["resources"].values() for calls in nodes.values() for call in calls
               if call["kind"] != "get")


# -- modes ----------------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_once_records_when_the_file_is_missing_then_replays_without_calling_the_factory(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    recorded, replayed, service = await record_and_replay(path, orders_workflow())
    assert replayed == recorded
    assert recorded["load"]["chunks"] == [b"chunk 0", b"chunk 1", b"chunk 2"]
    assert recorded["load"]["missing"] == "'no such row'"
    assert service.log == ["begin", "insert into audit values (1)", "commit"]
    assert service.calls == 1 and service.closed  # the real resource was cleaned up after recording


@pytest.mark.asyncio
async def test_replayed_calls_are_tracked_and_marked_replayed(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    await record_and_replay(path, orders_workflow())
    async with Cassette(path) as cassette:
        await run(cassette, orders_workflow(), db=never_called)
    methods = [call.method for call in cassette.calls]
    assert methods[:4] == ["acquire", "fetch", "transaction", "__aenter__"]
    assert all(call.replayed and call.node == "load" for call in cassette.calls)
    fetch = cassette.calls.get_calls("db", "fetch")[0]
    assert fetch.args == ("select * from orders where id = $1", 7) and fetch.result[0]["n"] == 1
    assert fetch.describe().endswith("(replayed)")


@pytest.mark.asyncio
async def test_none_replays_only_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(CassetteNotFoundError, match=r"missing\.json does not exist and mode is 'none'") as caught:
        async with Cassette(path, "none") as cassette:
            await cassette.resources(db=never_called)
    assert isinstance(caught.value, FileNotFoundError) and not path.exists()
    await record_and_replay(path, orders_workflow())
    before = path.read_bytes()
    async with Cassette(path, "none") as cassette:
        await run(cassette, orders_workflow(), db=never_called)
    assert path.read_bytes() == before


@pytest.mark.asyncio
async def test_new_replays_known_calls_and_records_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    one = (AsyncWorkflowBuilder("one").add_async_code("n", """
db = await get_resource("db")
result = {"first": await db.next_id("x")}
""").build())
    two = (AsyncWorkflowBuilder("two").add_async_code("n", """
db = await get_resource("db")
result = {"first": await db.next_id("x"), "second": await db.next_id("y")}
""").build())
    async with Cassette(path) as cassette:
        assert await run(cassette, one, db=Service) == {"n": {"first": 1}}
    live = Service()
    live.calls = 40
    async with Cassette(path, "new") as cassette:
        assert await run(cassette, two, db=lambda: live) == {"n": {"first": 1, "second": 41}}
        assert [call.replayed for call in cassette.calls] == [True, False]
    assert live.calls == 41  # only the new call reached the service
    async with Cassette(path, "none") as cassette:
        assert await run(cassette, two, db=never_called) == {"n": {"first": 1, "second": 41}}


@pytest.mark.asyncio
async def test_all_records_again_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    await record_and_replay(path, parallel_workflow())
    service = Service()
    service.calls = 100
    async with Cassette(path, "all") as cassette:
        outputs = await run(cassette, parallel_workflow(), db=lambda: service)
    assert service.calls == 104
    async with Cassette(path, "none") as cassette:
        assert await run(cassette, parallel_workflow(), db=never_called) == outputs


@pytest.mark.asyncio
async def test_the_record_mode_variable_overrides_every_cassettes_mode(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ids.json"
    await record_and_replay(path, parallel_workflow())
    monkeypatch.setenv(RECORD_MODE_VARIABLE, "all")
    service = Service()
    async with Cassette(path, "none") as cassette:
        assert cassette.mode == "all" and cassette.requested_mode == "none"
        await run(cassette, parallel_workflow(), db=lambda: service)
    assert service.calls == 4
    monkeypatch.setenv(RECORD_MODE_VARIABLE, "sometimes")
    with pytest.raises(CassetteModeError, match="KAILASH_NB_RECORD='sometimes' is not a record mode"):
        Cassette(path)


def test_an_unknown_mode_is_refused_with_the_modes() -> None:
    with pytest.raises(CassetteModeError, match=r"mode='new_episodes'.*once, none, new, all"):
        Cassette("x.json", "new_episodes")


# -- matching -------------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_an_unmatched_call_names_the_call_the_closest_recorded_calls_and_how_to_record(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    await record_and_replay(path, orders_workflow())
    changed = (AsyncWorkflowBuilder("orders").add_async_code("load", """
db = await get_resource("db")
conn = db.acquire()
rows = await conn.fetch("select * from orders where id = $1", 8)
result = {"rows": rows}
""").build())
    async with Cassette(path) as cassette:
        resources = await cassette.resources(db=never_called)
        result = await AsyncLocalRuntime().execute_workflow_async(changed, resources=resources)
    error = result.errors["load"]
    assert isinstance(error, UnmatchedCallError) and isinstance(error, LookupError)
    message = str(error)
    assert f"cassette {path}" in message
    assert 'db.fetch("select * from orders where id = $1", 8) (on the object returned by call load#0)' in message
    assert "by node 'load'" in message
    assert 'closest recorded calls:\n  db.fetch("select * from orders where id = $1", 7, password="<secret>")' \
        in message
    # a call on an object a replayed call returned: mode='new' could not make it, so only 'all' is offered
    assert message.endswith("record everything again with mode='all' (pytest --kailash-record=all; in a "
                            "notebook, %kailash cassette PATH --mode all)")


@pytest.mark.asyncio
async def test_an_attribute_never_recorded_is_an_error_not_a_silent_value(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    await record_and_replay(path, orders_workflow())
    async with Cassette(path) as cassette:
        db = (await cassette.resources(db=never_called))["db"]
        with pytest.raises(UnmatchedCallError, match=r"no recording of db\.vacuum \(read as an attribute or method\) "
                                                     r"by the test"):
            db.vacuum  # noqa: B018
        with pytest.raises(UnmatchedCallError, match=r"db\.acquire\(\) by the test") as caught:
            db.acquire()
    assert str(caught.value).endswith("To record it: Cassette(..., mode='new') adds new calls, mode='all' records "
                                      "everything again (pytest --kailash-record=new or all; in a notebook, "
                                      "%kailash cassette PATH --mode new or all)")


@pytest.mark.asyncio
async def test_parallel_nodes_replay_their_own_calls_whatever_order_they_run_in(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    # recording: b's calls finish first, so b gets the smaller ids
    service = Service(delay={"a": 5.0})
    async with Cassette(path) as cassette:
        recorded = await run(cassette, parallel_workflow(), db=lambda: service)
    assert recorded["b"]["id"] < recorded["a"]["id"]
    async with Cassette(path, "none") as cassette:
        report = await explore_schedules(parallel_workflow(), resources=cassette.factories(), runs=30, seed=3)
    assert report.ok, str(report)
    assert [outcome.summary for outcome in report.outcomes] == [
        f"success: a={recorded['a']!r}, b={recorded['b']!r}"]
    assert cassette.replayed_count == 30 * 4


@pytest.mark.asyncio
async def test_repeated_identical_calls_replay_in_order(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    workflow = (AsyncWorkflowBuilder("ids").add_async_code("n", """
db = await get_resource("db")
result = {"ids": [await db.next_id("x") for _ in range(3)]}
""").build())
    recorded, replayed, _ = await record_and_replay(path, workflow)
    assert recorded == replayed == {"n": {"ids": [1, 2, 3]}}


# -- the file -------------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_recording_the_same_run_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    lookups = AsyncWorkflowBuilder("lookups")
    for name in ("a", "b", "c"):
        lookups.add_async_code(name, f"""
import asyncio
db = await get_resource("db")
await asyncio.sleep(waits["{name}"])
result = {{"first": await db.lookup("{name}"), "second": await db.lookup("{name}-2")}}
""")
    workflow = lookups.build()
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    async with Cassette(first) as cassette:  # a calls first, then b, then c
        await run(cassette, workflow, {"waits": {"a": 0, "b": 1, "c": 2}}, db=lambda: Lookups({"a-2": 5.0}))
        first_order = [call.node for call in cassette.calls]
    async with Cassette(second) as cassette:  # the other way round
        await run(cassette, workflow, {"waits": {"a": 2, "b": 1, "c": 0}}, db=lambda: Lookups({"c-2": 5.0}))
        second_order = [call.node for call in cassette.calls]
    assert first_order != second_order  # the nodes really called in other orders
    assert first.read_bytes() == second.read_bytes()
    again = tmp_path / "again.json"
    for path in (first, again):
        async with Cassette(path, "all") as cassette:
            await run(cassette, orders_workflow(), db=Service)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_text().endswith("}\n") and '"kailash_nb_cassette": 1' in first.read_text()


class Lookups:
    """Answers depend on the arguments only; ``delay`` sets how long each key takes."""

    def __init__(self, delay: dict[str, float]) -> None:
        self.delay = delay

    async def lookup(self, key: str) -> dict[str, Any]:
        await asyncio.sleep(self.delay.get(key, 0))
        return {"key": key, "at": dt.datetime(2024, 5, 1, 12, 0), "size": Decimal(len(key))}


@pytest.mark.asyncio
async def test_secret_arguments_and_fields_are_written_as_a_placeholder_and_still_match(tmp_path: Path) -> None:
    path = tmp_path / "login.json"

    class Api:
        async def login(self, user: str, *, password: str, api_key: str, extra: dict[str, str]) -> dict[str, Any]:
            return {"user": user, "access_token": "tok-123", "session_ref": "s-9", "Authorization": "Bearer x"}

    call = "await api.login('ann', password=pw, api_key='k-1', extra={'session_ref': 'r', 'note': 'n'})"
    workflow = (AsyncWorkflowBuilder("login").add_async_code("login", f"""
api = await get_resource("api")
result = {{"answer": {call}}}
""").build())
    async with Cassette(path, secrets=["session_ref"]) as cassette:
        resources = await cassette.resources(api=Api)
        recorded = await AsyncLocalRuntime().execute_workflow_async(workflow, {"pw": "hunter2"}, resources=resources)
    text = path.read_text()
    for secret in ("hunter2", "k-1", "tok-123", "s-9", "Bearer x", '"r"'):
        assert secret not in text
    assert text.count(f'"{SECRET}"') == 6 and '"note": "n"' in text
    async with Cassette(path, "none", secrets=["session_ref"]) as cassette:
        resources = await cassette.resources(api=never_called)
        replayed = await AsyncLocalRuntime().execute_workflow_async(workflow, {"pw": "other"}, resources=resources)
    assert replayed.get_output("login", "answer") == {
        "user": "ann", "access_token": SECRET, "session_ref": SECRET, "Authorization": SECRET}
    assert recorded.get_output("login", "answer")["access_token"] == "tok-123"


@pytest.mark.asyncio
async def test_secrets_in_header_pairs_and_auth_arguments_are_written_as_a_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "http.json"

    class Client:  # as httpx and aiohttp take them: headers as (name, value) pairs, auth=(user, password)
        async def get(self, url: str, **options: Any) -> int:
            return 200

        async def hgetall(self, key: str) -> dict[bytes, bytes]:  # as redis.asyncio answers: bytes fields
            return {b"user": b"ann", b"password": b"pw-hash"}

    async def calls(client: Any) -> list[Any]:
        return [await client.get("/a", headers=[("Authorization", "Bearer sk-pairs"), ("Accept", "text/plain")]),
                await client.get("/b", headers=[["X-Api-Key", "k-listed"]], params=[("api_key", "k-param")]),
                await client.get("/c", headers=[(b"authorization", b"Bearer sk-raw")]),
                await client.get("/c", headers=[(HeaderName("Authorization"), "Bearer sk-istr")]),
                await client.get("/d", auth=("ann", "pw-tuple")),
                await client.get("/e", proxy_auth=("ann", "pw-proxy")),
                await client.hgetall("user:1")]

    async with Cassette(path) as cassette:
        recorded = await calls((await cassette.resources(http=Client))["http"])
    text = path.read_text()
    for secret in ("sk-pairs", "k-listed", "k-param", "sk-raw", "sk-istr", "pw-tuple", "pw-proxy", "pw-hash"):
        assert secret not in text
    assert "text/plain" in text and '"Authorization"' in text  # names and other headers stay readable
    async with Cassette(path, "none") as cassette:
        replayed = await calls((await cassette.resources(http=never_called))["http"])
    assert replayed[:6] == recorded[:6] == [200] * 6
    assert replayed[6] == {b"user": b"ann", b"password": SECRET}
    # a list of two words is data, not a pair: only a list of pairs is read as names and values
    assert Encoder().encode(["token", "t-1"]) == ["token", "t-1"]


@pytest.mark.asyncio
async def test_arguments_of_types_the_encoder_does_not_know_match_by_their_repr(tmp_path: Path) -> None:
    from types import MappingProxyType

    path = tmp_path / "http.json"

    class Timeout:  # as aiohttp.ClientTimeout, httpx.Timeout, yarl.URL: no registration, a stable repr
        def __init__(self, total: float) -> None:
            self.total = total

        def __repr__(self) -> str:
            return f"Timeout(total={self.total})"

    class Login:
        def __repr__(self) -> str:
            return "Login(user='ann', password='pw-repr')"

    class Client:
        async def get(self, url: str, **options: Any) -> int:
            return 200

    async def calls(client: Any, total: float = 5) -> list[int]:
        headers = MappingProxyType({"Authorization": "Bearer sk-mapping", "Accept": "*/*"})  # not a dict
        return [await client.get("/a", timeout=Timeout(total)), await client.get("/b", headers=headers),
                await client.get("/c", login=Login())]

    async with Cassette(path) as cassette:
        assert await calls((await cassette.resources(http=Client))["http"]) == [200] * 3
    text = path.read_text()
    assert "Timeout(total=5)" in text and "*/*" in text
    assert "sk-mapping" not in text and "pw-repr" not in text
    async with Cassette(path, "none") as cassette:
        assert await calls((await cassette.resources(http=never_called))["http"]) == [200] * 3
    async with Cassette(path, "none") as cassette:
        with pytest.raises(UnmatchedCallError, match=r"Timeout\(total=6\)"):
            await calls((await cassette.resources(http=never_called))["http"], total=6)


@pytest.mark.asyncio
async def test_a_value_the_encoder_cannot_write_names_the_file_the_call_and_the_type(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text("left alone\n")

    class Odd:
        pass

    class Api:
        async def rows(self) -> list[Any]:
            return [1, Odd()]

    with pytest.raises(UnencodableValueError) as caught:
        async with Cassette(path, "all") as cassette:
            api = (await cassette.resources(api=Api))["api"]
            await api.rows()
    message = str(caught.value)
    assert f"cassette {path}: api.rows() result[1]" in message
    assert "<locals>.Odd" in message and "Encoder().register" in message and "left as it was" in message
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, KailashNbError)
    assert path.read_text() == "left alone\n"
    assert os.listdir(tmp_path) == ["odd.json"]  # no temporary file left


@pytest.mark.asyncio
async def test_an_argument_the_encoder_cannot_write_is_named_and_the_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text("left alone\n")

    class Odd:
        pass

    class Api:
        async def rows(self, *args: Any, **kwargs: Any) -> int:
            return 1

    with pytest.raises(UnencodableValueError) as caught:
        async with Cassette(path, "all") as cassette:
            api = (await cassette.resources(api=Api))["api"]
            await api.rows(1, where=Odd())
    message = str(caught.value)
    assert f"cassette {path}: api.rows() argument where is a " in message
    assert "<locals>.Odd" in message and "left as it was" in message
    assert path.read_text() == "left alone\n"
    assert os.listdir(tmp_path) == ["odd.json"]


@pytest.mark.asyncio
async def test_a_replayed_call_with_an_argument_the_encoder_cannot_write_names_it(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    await record_one_call(path)

    class Odd:
        pass

    async with Cassette(path, "none") as cassette:
        db = (await cassette.resources(db=never_called))["db"]
        with pytest.raises(UnencodableValueError, match=rf"cassette {re.escape(str(path))}: db\.next_id\(\) "
                           r"argument name is a .*<locals>\.Odd, which the cassette's encoder cannot write"):
            await db.next_id(name=Odd())


@pytest.mark.parametrize(("text", "problem"), [
    ('{"kailash_nb_cassette": 1,\n  "resources": {,}}', r"not valid JSON: .* at line 2, column 17"),
    ("[1, 2]", r"the file holds a JSON list"),
    ('{"resources": {}}', r"no format version"),
    ('{"kailash_nb_cassette": 1, "resources": {"db": {"n": [{"kind": "call", "result": 1}]}}}',
     r"resources\.db\.n\[0\] has no 'method'"),
    ('{"kailash_nb_cassette": 1, "resources": {"db": {"n": [{"method": "f", "kind": "call", "args": {}, '
     '"result": 1}]}}}', r"resources\.db\.n\[0\] has 'args' that is not a list"),
    ('{"kailash_nb_cassette": 1, "resources": {"db": {"n": [{"method": "f", "kind": "sometimes", "result": 1}]}}}',
     r"has 'kind' 'sometimes'"),
    ('{"kailash_nb_cassette": 1, "resources": {"db": {"n": [{"method": "f", "kind": "call"}]}}}',
     r"exactly one of 'result', 'raised' or 'returns'"),
    ('{"kailash_nb_cassette": 1, "resources": {"db": []}}', r"resources\.db must be an object of nodes"),
])
@pytest.mark.asyncio
async def test_a_broken_cassette_names_the_file_and_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(CassetteFileError, match=rf"cassette {path}.*{problem}") as caught:
        await Cassette(path).resources(db=never_called)
    assert isinstance(caught.value, ValueError)
    assert path.read_text() == text


@pytest.mark.parametrize(("recorded", "edited"), [
    ('"value": "2024-05-01"', '"value": "May the first"'),  # a date that is not one
    ('"$type": "date"', '"$type": "a_type_nobody_registered"'),
    ('{"$type": "date", "value": "2024-05-01"}', '{"$type": "tuple"}'),  # a tag without its value
])
@pytest.mark.asyncio
async def test_a_hand_broken_value_names_the_file_and_the_record_when_replayed(tmp_path: Path, recorded: str,
                                                                               edited: str) -> None:
    path = tmp_path / "orders.json"
    await record_and_replay(path, orders_workflow())
    text = path.read_text()
    assert recorded in text
    path.write_text(text.replace(recorded, edited))
    async with Cassette(path, "none") as cassette:
        resources = await cassette.resources(db=never_called)
        result = await AsyncLocalRuntime().execute_workflow_async(orders_workflow(), resources=resources)
    error = result.errors["load"]
    assert isinstance(error, CassetteFileError), error
    assert str(error).startswith(f"cassette {path}: resources.db.load[1] (fetch) has a 'result' that cannot be "
                                 "read back:")
    assert "record again with mode='all'" in str(error)


@pytest.mark.asyncio
async def test_a_cassette_from_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.json"
    path.write_text('{"kailash_nb_cassette": 2, "resources": {}}')
    with pytest.raises(CassetteVersionError, match=r"format version 2, but this kailash_nb reads versions up to 1"):
        await Cassette(path).resources(db=never_called)


# -- the encoder ----------------------------------------------------------------------------------------------
VALUES = [
    dt.datetime(2024, 5, 1, 12, 30, 5, 123, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2024, 5, 1, 12, 30), dt.date(2024, 5, 1), dt.time(7, 8, 9), dt.timedelta(days=-1, seconds=5),
    Decimal("1.10"), uuid.UUID("12345678-1234-5678-1234-567812345678"), b"\x00\xff", bytearray(b"ab"),
    b'{"response": "caf\xc3\xa9 "}\n', b"\x1b[1m", b"",
    (1, "a", (2,)), {1: "one", (2, 3): "pair"}, {"$type": "not a tag"}, {3, 1, 2}, frozenset({"a"}),
    float("inf"), float("nan"), [None, True, 1.5, "x"], {"nested": [{"at": dt.date(2020, 1, 1)}]},
    ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("::1"), ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_interface("10.0.0.1/24"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_json_cannot_hold_round_trip_to_equal_values(value: Any) -> None:
    encoder = Encoder()
    data = json.loads(json.dumps(encoder.encode(value)))
    back = encoder.decode(data)
    assert type(back) is type(value)
    assert back == value or (value != value and back != back)  # nan


def test_bytes_of_utf8_text_are_written_as_text_and_others_as_base64() -> None:
    encoder = Encoder()
    assert encoder.encode(b'{"done": true}\n') == {"$type": "bytes", "value": {"text": '{"done": true}\n'}}
    assert encoder.encode(b"\x1b[1m") == {"$type": "bytes", "value": {"base64": "G1sxbQ=="}}
    assert encoder.encode(b"\xff") == {"$type": "bytes", "value": {"base64": "/w=="}}


def test_the_file_keeps_a_short_row_on_one_line() -> None:
    text = dump({"db": {"n": [Entry(None, "fetch", "await", ["select 1"], {}, "", outcome="result",
                                      result=[{"$type": "record", "fields": [["id", 1], ["name", "ann"]]}])]}})
    assert '"fields": [["id", 1], ["name", "ann"]]' in text
    assert json.loads(text)["resources"]["db"]["n"][0]["method"] == "fetch"


def test_a_replayed_record_behaves_like_an_asyncpg_record() -> None:
    record = ReplayedRecord([("id", 1), ("name", "ann")])
    assert record["name"] == "ann" and record[0] == 1 and record[-1] == "ann" and record[:1] == (1,)
    assert record.get("id") == 1 and record.get("missing", 0) == 0
    assert dict(record) == {"id": 1, "name": "ann"} and list(record.keys()) == ["id", "name"]
    assert list(record.values()) == [1, "ann"] and list(record.items()) == [("id", 1), ("name", "ann")]
    assert len(record) == 2 and record == ReplayedRecord([("id", 1), ("name", "ann")]) and record == (1, "ann")
    assert record != ReplayedRecord([("id", 2), ("name", "ann")])
    assert repr(record) == "<Record id=1 name='ann'>"
    with pytest.raises(KeyError):
        record["missing"]


def test_iterating_a_replayed_record_gives_its_values_as_an_asyncpg_record_does() -> None:
    record = Encoder().decode({"$type": "record", "fields": [["id", 1], ["name", "ann"]]})
    assert tuple(record) == (1, "ann") and list(record) == [1, "ann"]
    row_id, name = record
    assert (row_id, name) == (1, "ann")
    assert "name" in record and "ann" not in record and 1 not in record
    assert dict(record) == {"id": 1, "name": "ann"} and list(record.keys()) == ["id", "name"]


def test_exceptions_come_back_as_their_own_class_or_a_clear_stand_in() -> None:
    encoder = Encoder()
    error = encoder.decode(encoder.encode(ConnectionRefusedError(111, "refused")))
    assert type(error) is ConnectionRefusedError and str(error) == "[Errno 111] refused" and error.errno == 111
    lost = encoder.decode({"$type": "exception", "class": "gone.module.QuotaError", "args": ["over quota"],
                           "message": "over quota"})
    assert type(lost) is RecordedError and str(lost) == "QuotaError: over quota"
    assert lost.recorded_class == "gone.module.QuotaError"


def test_an_exceptions_attributes_come_back_with_it() -> None:
    asyncpg = pytest.importorskip("asyncpg")
    error = asyncpg.UniqueViolationError('duplicate key value violates unique constraint "t_pkey"')
    # as asyncpg raises it: the server's fields are set on the instance
    error.detail, error.constraint_name, error.table_name = "Key (id)=(1) already exists.", "t_pkey", "t"
    error.response, error.token = object(), "tok-123"  # not writable; secret by name
    data = Encoder().encode(error)
    assert "tok-123" not in json.dumps(data) and "response" not in data["attributes"]
    replayed = Encoder().decode(json.loads(json.dumps(data)))
    assert type(replayed) is asyncpg.UniqueViolationError and replayed.sqlstate == "23505"
    assert (replayed.detail, replayed.constraint_name, replayed.table_name) == (
        "Key (id)=(1) already exists.", "t_pkey", "t")
    assert replayed.token == SECRET
    assert "attributes" not in Encoder().encode(ValueError("plain"))  # the file is as before for others


def test_the_encoder_takes_new_types() -> None:
    class Money:
        def __init__(self, amount: Decimal, currency: str) -> None:
            self.amount, self.currency = amount, currency

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Money) and (self.amount, self.currency) == (other.amount, other.currency)

    encoder = Encoder().register(Money, "money", lambda m: [m.amount, m.currency], lambda v: Money(*v))
    data = encoder.encode({"price": Money(Decimal("9.99"), "EUR")})
    assert data == {"price": {"$type": "money", "value": [{"$type": "decimal", "value": "9.99"}, "EUR"]}}
    assert encoder.decode(data) == {"price": Money(Decimal("9.99"), "EUR")}
    with pytest.raises(UnencodableValueError, match="Money"):
        Encoder().encode(Money(Decimal(1), "EUR"))


# -- the test case --------------------------------------------------------------------------------------------
class CassetteCase(AsyncWorkflowTestCase):
    __test__ = False
    path: Path
    factory: Any = staticmethod(Service)

    async def test_orders(self) -> None:
        cassette = await self.use_cassette(self.path, db=self.factory)
        result = await self.execute_workflow(orders_workflow())
        assert result.get_output("load", "tag") == "INSERT 0 1"
        self.assert_resource_called("db", "fetch", times=1, with_args=["select * from orders where id = $1", 7])
        replaying = cassette.replaying
        assert all(call.replayed is replaying for call in self.get_calls("db"))
        with pytest.raises(ValueError, match="'db' already exist"):
            await self.use_cassette(self.path, db=self.factory)


def test_the_test_case_records_at_cleanup_and_replays_with_assertions(tmp_path: Path) -> None:
    import unittest

    CassetteCase.path = tmp_path / "case.json"
    for factory in (Service, never_called):
        CassetteCase.factory = staticmethod(factory)
        outcome = unittest.TestResult()
        CassetteCase("test_orders").run(outcome)
        assert outcome.wasSuccessful(), outcome.errors + outcome.failures
        assert CassetteCase.path.is_file()




def test_subclasses_of_containers_str_and_numbers_come_back_as_the_base_type_they_equal() -> None:
    from collections import OrderedDict, namedtuple
    from enum import Enum, IntEnum
    from http import HTTPStatus

    class Color(str, Enum):  # noqa: UP042 - the mixin form, whose str() is "Color.RED", not its value
        RED = "red"

    class Ratio(float):
        pass

    Point = namedtuple("Point", "x y")
    encoder = Encoder()
    for value, kind in ((Point(1, 2), tuple), (OrderedDict(a=1), dict), (HTTPStatus.OK, int),
                        (IntEnum("Level", "LOW HIGH").HIGH, int), (Color.RED, str), (HeaderName("X-Id"), str),
                        (Ratio(0.5), float)):
        assert encoder.knows(value)
        back = encoder.decode(json.loads(json.dumps(encoder.encode(value))))
        assert type(back) is kind and back == value


def test_a_namedtuple_comes_back_as_itself_when_its_class_can_be_imported() -> None:
    from urllib.parse import SplitResult, urlsplit

    asyncpg_types = pytest.importorskip("asyncpg.types")
    version = asyncpg_types.ServerVersion(16, 2, 0, "final", 0)  # conn.get_server_version()
    attribute = asyncpg_types.Attribute("id", asyncpg_types.Type(23, "int4", "scalar", "pg_catalog"))
    encoder = Encoder()
    for value in (version, attribute, urlsplit("https://example.org/a?b=1")):
        data = json.loads(json.dumps(encoder.encode(value)))
        back = encoder.decode(data)
        assert type(back) is type(value) and back == value
    assert encoder.decode(encoder.encode(version)).major == 16
    assert encoder.decode(encoder.encode(attribute)).type.name == "int4"
    assert encoder.encode(urlsplit("https://h/"))["class"] == "urllib.parse.SplitResult" and SplitResult
    gone = {"$type": "namedtuple", "class": "gone.module.Version", "items": [1, 2]}
    assert type(encoder.decode(gone)) is tuple and encoder.decode(gone) == (1, 2)


@pytest.mark.asyncio
async def test_calls_made_by_the_test_itself_replay_and_unplayed_calls_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "test_calls.json"
    async with Cassette(path) as cassette:
        db = (await cassette.resources(db=Service))["db"]
        assert [await db.next_id("x"), await db.next_id("y")] == [1, 2]
    assert '"<test>": [' in path.read_text()
    async with Cassette(path, "none") as cassette:
        db = (await cassette.resources(db=never_called))["db"]
        assert await db.next_id("x") == 1
        assert cassette.unplayed() == ("""db.next_id("y") [node '<test>', call 1]""",)
        assert [call.node for call in cassette.replayed_calls()] == [None]


@pytest.mark.asyncio
async def test_a_cassette_changed_on_disk_while_recording_is_not_written_over(tmp_path: Path) -> None:
    from kailash_nb.testing.cassettes import CassetteChangedError

    path = tmp_path / "ids.json"
    with pytest.raises(CassetteChangedError, match=r"ids\.json changed on disk while it was being recorded"):
        async with Cassette(path) as cassette:
            db = (await cassette.resources(db=Service))["db"]
            await db.next_id("x")
            path.write_text("edited by hand\n")
    assert path.read_text() == "edited by hand\n"


#: The child: records again (mode all) into the cassette at sys.argv[1], under a file size limit far below
#: what the new recording needs; the write fails with EFBIG (SIGXFSZ is ignored).
RECORD_PAST_THE_SIZE_LIMIT = """
import asyncio, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
from kailash_nb.testing import Cassette

class Service:
    async def next_id(self, name):
        return 1

async def main():
    async with Cassette(sys.argv[1], "all") as cassette:
        db = (await cassette.resources(db=Service))["db"]
        await db.next_id("x" * 100_000)

try:
    asyncio.run(main())
except OSError as exc:
    print("refused:", exc.strerror)
"""


def test_a_cassette_whose_write_fails_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    asyncio.run(record_one_call(path))
    before = path.read_bytes()

    child = subprocess.run([sys.executable, "-c", textwrap.dedent(RECORD_PAST_THE_SIZE_LIMIT), str(path)],
                           capture_output=True, text=True, timeout=120)

    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "refused: File too large"
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.json"]  # no temporary file left behind


async def record_one_call(path: Path) -> None:
    async with Cassette(path) as cassette:
        db = (await cassette.resources(db=Service))["db"]
        await db.next_id("x")


@pytest.mark.asyncio
async def test_a_save_with_nothing_recorded_since_the_last_one_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    async with Cassette(path) as cassette:
        db = (await cassette.resources(db=Service))["db"]
        await db.next_id("x")
        assert cassette.save() is True
        written = path.stat().st_ino
        assert cassette.save() is False  # and aclose, on leaving the block, does not write it again either
    assert path.stat().st_ino == written
    assert '"x"' in path.read_text()


@pytest.mark.asyncio
async def test_the_repr_says_what_the_cassette_is_doing(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    assert repr(Cassette(path)) == f"<Cassette {path} mode='once' (not loaded): 0 recorded, 0 replayed>"
    async with Cassette(path) as cassette:
        db = (await cassette.resources(db=Service))["db"]
        await db.next_id("x")
        assert repr(cassette) == f"<Cassette {path} mode='once' (recording): 1 recorded, 0 replayed>"
    async with Cassette(path) as cassette:
        assert repr(cassette) == f"<Cassette {path} mode='once' (replaying): 0 recorded, 0 replayed>"
    async with Cassette(path, "new") as cassette:
        assert "(replaying, recording new calls)" in repr(cassette)
    async with Cassette(path, "all") as cassette:
        assert "(recording)" in repr(cassette)


class Answering:
    """A call handler of its own: answers every call with its method name, awaited or not."""

    replays = True

    def attribute(self, proxy: Any, name: str) -> Any:
        from kailash_nb.workflow.calls import METHOD

        return METHOD

    def call(self, proxy: Any, method: str, args: tuple[Any, ...], kwargs: Any, node: str | None) -> Any:
        async def answer() -> str:
            return f"{method}{args}"

        return (answer() if method.startswith("a") else method.upper()), True, None


@pytest.mark.asyncio
async def test_a_call_handler_answers_through_the_tracked_proxy_and_the_call_policy_sees_it() -> None:
    from kailash_nb.testing import CallTracker
    from kailash_nb.testing.mocks import handled_resource
    from kailash_nb.workflow.calls import call_policy

    seen: list[tuple[str, str]] = []

    class Watch:
        async def before_call(self, resource: str, method: str, node: str | None) -> None:
            seen.append((resource, method))

        def choose(self, count: int) -> int:
            return 0

    tracker = CallTracker()
    proxy = handled_resource("svc", object(), tracker, Answering())
    with call_policy(Watch()):
        assert await proxy.ask(1) == "ask(1,)"
        assert proxy.sync() == "SYNC"
    assert seen == [("svc", "ask")]  # only the awaited call passes the policy
    assert [(c.method, c.result, c.replayed) for c in tracker] == [("ask", "ask(1,)", True), ("sync", "SYNC", True)]


@pytest.mark.asyncio
async def test_new_cannot_make_a_call_on_an_object_that_only_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    await record_and_replay(path, orders_workflow())
    changed = (AsyncWorkflowBuilder("orders").add_async_code("load", """
db = await get_resource("db")
conn = db.acquire()  # replayed: no real connection behind it
result = {"rows": await conn.fetch("select 2")}
""").build())
    async with Cassette(path, "new") as cassette:
        resources = await cassette.resources(db=Service)
        result = await AsyncLocalRuntime().execute_workflow_async(changed, resources=resources)
    assert isinstance(result.errors["load"], UnmatchedCallError)
    assert "mode='new' cannot make it: record everything again with mode='all'" in str(result.errors["load"])


@pytest.mark.asyncio
async def test_a_cassette_refuses_uses_its_state_does_not_allow(tmp_path: Path) -> None:
    from kailash_nb.testing.cassettes import CassetteUsageError
    from kailash_nb.workflow import ResourceNotFoundError

    async with Cassette(tmp_path / "ids.json") as cassette:
        db = (await cassette.resources(db=Service))["db"]
        assert cassette.resource("db") is db and cassette.names == ("db",)
        with pytest.raises(CassetteUsageError, match="resource 'db' was made already"):
            await cassette.resources(db=Service)
        with pytest.raises(CassetteUsageError, match=r"factories\(\) replays, but the cassette is recording"):
            cassette.factories()
        with pytest.raises(ResourceNotFoundError, match="has made no resource 'cache'; made: 'db'"):
            cassette.resource("cache")
        with pytest.raises(TypeError, match="resource 'cache' needs a factory"):
            await cassette.resources(cache=Service())


class Pool:
    """A pool whose release() insists on getting back a connection it handed out."""

    def __init__(self) -> None:
        self.out: list[Connection] = []
        self.service = Service()

    async def acquire(self) -> Connection:
        self.out.append(Connection(self.service))
        return self.out[-1]

    async def release(self, connection: Connection, *, timeout: float | None = None) -> None:
        if connection not in self.out:
            raise ValueError(f"{connection!r} is not a connection of this pool")
        self.out.remove(connection)


@pytest.mark.asyncio
async def test_an_object_a_call_returned_can_be_passed_back_to_a_call(tmp_path: Path) -> None:
    path = tmp_path / "pool.json"
    workflow = (AsyncWorkflowBuilder("explicit").add_async_code("n", """
pool = await get_resource("pool")
conn = await pool.acquire()
rows = await conn.fetch("select 1")
await pool.release(conn, timeout=2)
result = {"n": rows[0]["n"]}
""").build())
    pool = Pool()
    async with Cassette(path) as cassette:
        assert await run(cassette, workflow, pool=lambda: pool) == {"n": {"n": 1}}
    assert pool.out == []  # the real pool got its own connection back
    release = json.loads(path.read_text())["resources"]["pool"]["n"][2]
    assert (release["method"], release["args"]) == ("release", [{"$type": "handle", "value": "n#0"}])
    async with Cassette(path, "none") as cassette:
        assert await run(cassette, workflow, pool=never_called) == {"n": {"n": 1}}


def test_a_call_never_awaited_is_recorded_and_replays_as_never_awaited(tmp_path: Path) -> None:
    import gc
    import warnings

    path = tmp_path / "forgot.json"
    workflow = (AsyncWorkflowBuilder("forgot").add_async_code("n", """
db = await get_resource("db")
db.next_id("x")
result = {"id": await db.next_id("y")}
""").build())

    def once(mode: str, factory: Any) -> tuple[list[str], list[tuple[Any, bool]], dict[str, Any]]:
        async def scenario() -> tuple[list[tuple[Any, bool]], dict[str, Any]]:
            async with Cassette(path, mode) as cassette:
                outputs = await run(cassette, workflow, db=factory)
            return [(call.args, call.awaited) for call in cassette.calls], outputs

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            calls, outputs = asyncio.run(scenario())
            gc.collect()
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)], calls, outputs

    recorded = once("once", Service)
    replayed = once("none", never_called)
    assert recorded == replayed == (["coroutine 'db.next_id' was never awaited"],
                                    [(("x",), False), (("y",), True)], {"n": {"id": 1}})  # x never ran
    assert json.loads(path.read_text())["resources"]["db"]["n"][0]["returns"] == "nothing"


class Headers:
    """An object that node code reads with str(), bool(), len(), in and [key] rather than by methods."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.fields.items())

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, key: str) -> bool:
        return key in self.fields

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def __iter__(self) -> Any:  # names as multidict gives them: a str subclass
        return (HeaderName(name) for name in self.fields)

    def keys(self) -> Any:
        return KeysView(self)

    def items(self) -> Any:
        return ItemsView(self)


class HeaderName(str):
    """A case-insensitive header name, as multidict's ``istr``: a str subclass."""


class Api:
    def headers(self) -> Headers:
        return Headers({"type": "json", "encoding": "utf-8"})

    def empty(self) -> Headers:
        return Headers({})


@pytest.mark.asyncio
async def test_str_bool_len_in_and_indexing_on_a_returned_object_replay_as_recorded(tmp_path: Path) -> None:
    path = tmp_path / "headers.json"
    workflow = (AsyncWorkflowBuilder("headers").add_async_code("n", """
api = await get_resource("api")
h = api.headers()
result = {"text": str(h), "size": len(h), "has": "type" in h, "missing": "x" in h, "type": h["type"],
          "empty": bool(api.empty()), "full": bool(h)}
""").build())
    async with Cassette(path) as cassette:
        recorded = await run(cassette, workflow, api=Api)
    assert recorded["n"] == {"text": "type=json; encoding=utf-8", "size": 2, "has": True, "missing": False,
                             "type": "json", "empty": False, "full": True}
    async with Cassette(path, "none") as cassette:
        assert await run(cassette, workflow, api=never_called) == recorded


@pytest.mark.asyncio
async def test_plain_for_and_dict_on_a_returned_object_replay_as_recorded(tmp_path: Path) -> None:
    path = tmp_path / "headers.json"
    workflow = (AsyncWorkflowBuilder("headers").add_async_code("n", """
api = await get_resource("api")
h = api.headers()
names = [name for name in h]
result = {"names": names, "upper": [name.upper() for name in names], "dict": dict(h),
          "pairs": [(k, v) for k, v in h.items() if k != "encoding"]}
""").build())
    async with Cassette(path) as cassette:
        recorded = await run(cassette, workflow, api=Api)
    assert recorded["n"] == {"names": ["type", "encoding"], "upper": ["TYPE", "ENCODING"],
                             "dict": {"type": "json", "encoding": "utf-8"}, "pairs": [("type", "json")]}
    async with Cassette(path, "none") as cassette:
        assert await run(cassette, workflow, api=never_called) == recorded


@pytest.mark.asyncio
async def test_a_block_that_now_raises_inside_a_replayed_async_with_shows_its_own_error(tmp_path: Path) -> None:
    path = tmp_path / "tx.json"
    code = """
db = await get_resource("db")
conn = db.acquire()
async with conn.transaction() as tx:
    await tx.execute("insert into audit values (1)")
    {extra}
result = {{"done": True}}
"""
    workflow = AsyncWorkflowBuilder("tx").add_async_code("save", code.format(extra="pass")).build()
    async with Cassette(path, "all") as cassette:
        await run(cassette, workflow, db=Service)
    changed = AsyncWorkflowBuilder("tx").add_async_code("save", code.format(extra="undefined_name")).build()
    async with Cassette(path, "none") as cassette:
        resources = await cassette.resources(db=never_called)
        result = await AsyncLocalRuntime().execute_workflow_async(changed, resources=resources)
    assert isinstance(result.errors["save"], NameError) and "undefined_name" in str(result.errors["save"])


@pytest.mark.asyncio
async def test_an_object_a_call_returned_shows_its_class_when_recorded_and_when_replayed(tmp_path: Path) -> None:
    path = tmp_path / "objects.json"
    shown = []
    for mode, factory in (("all", Service), ("none", never_called)):
        async with Cassette(path, mode) as cassette:
            db = (await cassette.resources(db=factory))["db"]
            shown.append(repr(db.acquire()))
    assert shown == ["<tracked resource 'db': Connection>"] * 2
    assert '"type": "Connection"' in path.read_text()
