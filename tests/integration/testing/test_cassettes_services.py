"""Cassettes against real services: a streamed HTTP response from a local server, and PostgreSQL through an
asyncpg pool (acquire, transactions, cursors, Records, errors). Each workflow is recorded, then replayed with
the service gone and a factory that fails if it is called."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kailash_nb.testing import AsyncWorkflowTestCase, Cassette
from kailash_nb.testing.cassettes import SECRET, ReplayedRecord
from kailash_nb.testing.fixtures.postgres import TestDatabase
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Workflow

pytestmark = pytest.mark.integration


def unreachable() -> Any:
    raise AssertionError("a factory was called during replay")


async def run(cassette: Cassette, workflow: Workflow, inputs: dict[str, Any] | None = None,
              **factories: Any) -> dict[str, Any]:
    resources = await cassette.resources(**factories)
    result = await AsyncLocalRuntime().execute_workflow_async(workflow, inputs, resources=resources)
    result.raise_for_status()
    return dict(result.outputs)


# -- a streamed HTTP response: a local stand-in for an LLM API -----------------------------------------------
@asynccontextmanager
async def llm_server() -> AsyncIterator[str]:
    """An HTTP/1.1 server on a free local port that answers POST /api/generate with one JSON line per token,
    sent as separate chunks (chunked transfer encoding), as a streaming LLM API does."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        prompt = json.loads(await reader.readexactly(length))["prompt"]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n")
        for token in [f"Re: {prompt}.", " Streamed", " answer", " done"]:
            line = (json.dumps({"token": token}) + "\n").encode()
            writer.write(b"%x\r\n%s\r\n" % (len(line), line))
            await writer.drain()
            await asyncio.sleep(0.005)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def generate_workflow() -> Workflow:
    builder = AsyncWorkflowBuilder("generate")
    for node, prompt in (("ask_a", "first"), ("ask_b", "second")):
        builder.add_async_code(node, f"""
import json
client = await get_resource("llm")
tokens = []
async with client.stream("POST", "/api/generate", json={{"model": "llama3", "prompt": "{prompt}"}},
                         headers={{"Authorization": "Bearer sk-live-123"}}) as response:
    status = response.status_code
    async for line in response.aiter_lines():
        tokens.append(json.loads(line)["token"])
result = {{"status": status, "text": "".join(tokens), "chunks": len(tokens)}}
""")
    return builder.build()


@pytest.mark.asyncio
async def test_a_streamed_http_response_replays_with_the_server_gone(tmp_path: Path) -> None:
    path = tmp_path / "llm.json"
    async with llm_server() as url, Cassette(path) as cassette:
        recorded = await run(cassette, generate_workflow(), llm=lambda: httpx.AsyncClient(base_url=url))
    assert recorded["ask_a"] == {"status": 200, "text": "Re: first. Streamed answer done", "chunks": 4}
    assert recorded["ask_b"]["text"] == "Re: second. Streamed answer done"
    text = path.read_text()
    assert "sk-live-123" not in text and f'"Authorization": "{SECRET}"' in text

    async with Cassette(path, "none") as cassette:
        replayed = await run(cassette, generate_workflow(), llm=unreachable)
    assert replayed == recorded
    methods = [call.method for call in cassette.calls.get_calls("llm", node="ask_a")]
    assert methods[:3] == ["stream", "__aenter__", "aiter_lines"]
    assert methods.count("__anext__") == 5  # four lines, then the end of the stream
    assert all(call.replayed for call in cassette.calls)


# -- PostgreSQL through an asyncpg pool -----------------------------------------------------------------------
def orders_workflow() -> Workflow:
    return (
        AsyncWorkflowBuilder("orders")
        .add_async_code("setup", """
pool = await get_resource("db")
await pool.execute("drop table if exists orders")
await pool.execute("create table orders (id int primary key, item text, price numeric, placed date)")
await pool.executemany("insert into orders values ($1, $2, $3, $4)", rows)
result = {"ready": True}
""")
        .add_async_code("report", """
pool = await get_resource("db")
async with pool.acquire() as conn:
    async with conn.transaction():
        seen = [dict(r) async for r in conn.cursor("select id, item from orders order by id")]
    total = await conn.fetchval("select sum(price) from orders")
    first = await conn.fetchrow("select * from orders where id = $1", 1)
    major = conn.get_server_version().major
row_id, item, *rest = first
result = {"seen": seen, "total": total, "first_item": first["item"], "first_price": first[2],
          "first": dict(first), "first_values": list(first), "unpacked": [row_id, item], "has_item": "item" in first,
          "major": major}
""")
        .add_async_code("duplicate", """
pool = await get_resource("db")
try:
    await pool.execute("insert into orders values (1, 'again', 0, null)")
    outcome = "inserted"
    fields = {}
except Exception as error:
    outcome = f"{type(error).__module__}.{type(error).__name__}: {error}"
    fields = {"sqlstate": error.sqlstate, "detail": error.detail, "constraint": error.constraint_name}
result = {"outcome": outcome, "fields": fields}
""")
        .add_connection("setup", "ready", "report", "ready")
        .add_connection("setup", "ready", "duplicate", "ready")
        .build()
    )


ROWS = [(1, "apple", "1.10", "2024-05-01"), (2, "pear", "2.25", "2024-05-02"), (3, "fig", "0.65", "2024-05-03")]


def inputs() -> dict[str, Any]:
    import datetime as dt
    from decimal import Decimal

    return {"rows": [(i, item, Decimal(price), dt.date.fromisoformat(day)) for i, item, price, day in ROWS]}


def test_a_postgres_workflow_replays_without_the_database(postgres_db: TestDatabase, tmp_path: Path) -> None:
    from decimal import Decimal

    first, second = tmp_path / "orders.json", tmp_path / "again.json"

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], Cassette]:
        def pool() -> Any:
            return asyncpg.create_pool(postgres_db.connection_string, min_size=1, max_size=2)

        async with Cassette(first) as cassette:
            recorded = await run(cassette, orders_workflow(), inputs(), db=pool)
        async with Cassette(second) as cassette:  # the same run again: the same bytes
            await run(cassette, orders_workflow(), inputs(), db=pool)
        async with Cassette(first, "none") as cassette:
            replayed = await run(cassette, orders_workflow(), inputs(), db=unreachable)
        return recorded, replayed, cassette

    recorded, replayed, cassette = asyncio.run(scenario())
    assert recorded["report"]["seen"] == [{"id": 1, "item": "apple"}, {"id": 2, "item": "pear"},
                                          {"id": 3, "item": "fig"}]
    assert recorded["report"]["total"] == Decimal("4.00")
    assert recorded["duplicate"]["outcome"].startswith(
        "asyncpg.exceptions.UniqueViolationError: duplicate key value violates unique constraint")
    assert recorded["duplicate"]["fields"] == {"sqlstate": "23505", "detail": "Key (id)=(1) already exists.",
                                               "constraint": "orders_pkey"}
    assert replayed == recorded
    assert type(replayed["report"]["total"]) is Decimal
    assert first.read_bytes() == second.read_bytes()
    fetchrow = cassette.calls.get_calls("db", "fetchrow")[0]
    assert fetchrow.replayed and isinstance(fetchrow.result, ReplayedRecord)
    assert fetchrow.result == (1, "apple", Decimal("1.10"), inputs()["rows"][0][3])


class ReplayedOrders(AsyncWorkflowTestCase):
    """The test case form: ``use_cassette`` gives the resources, tracked like mocks."""

    __test__ = False
    path: Path

    async def test_orders(self) -> None:
        await self.use_cassette(self.path, "none", db=unreachable)
        result = await self.execute_workflow(orders_workflow(), inputs())
        assert result.get_output("report", "first_item") == "apple"
        self.assert_resource_called("db", "fetchval", times=1, with_args=["select sum(price) from orders"])
        assert all(call.replayed for call in self.get_calls("db"))


def test_the_test_case_replays_a_postgres_cassette(postgres_db: TestDatabase, tmp_path: Path) -> None:
    import unittest

    path = tmp_path / "orders.json"

    async def record() -> None:
        async with Cassette(path) as cassette:
            await run(cassette, orders_workflow(), inputs(),
                      db=lambda: asyncpg.create_pool(postgres_db.connection_string, min_size=1, max_size=2))

    asyncio.run(record())
    ReplayedOrders.path = path
    outcome = unittest.TestResult()
    ReplayedOrders("test_orders").run(outcome)
    assert outcome.wasSuccessful(), outcome.errors + outcome.failures
