"""AsyncWorkflowFixtures: mock HTTP client, test cache, temp directories and files, database delegation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kailash_nb.testing import (
    AsyncWorkflowFixtures,
    HttpStatusError,
    MemoryCache,
    UnmatchedRequestError,
)


def run(coro):
    return asyncio.run(coro)


# -- HTTP -----------------------------------------------------------------------------------------------

def test_response_has_status_json_text_and_raise_for_status():
    client = AsyncWorkflowFixtures.create_mock_http_client()
    client.add_response("GET", "/api/data", {"results": [1, 2, 3]}, headers={"X-Id": "1"})
    client.add_response("GET", "/missing", {"error": "nope"}, status=404)
    client.add_response("GET", "/plain", text="hello")

    async def main():
        resp = await client.get("/api/data")
        assert (resp.status, resp.status_code, resp.ok, resp.headers) == (200, 200, True, {"X-Id": "1"})
        assert await resp.json() == {"results": [1, 2, 3]}
        assert json.loads(await resp.text()) == {"results": [1, 2, 3]}
        assert resp.raise_for_status() is resp
        missing = await client.get("/missing")
        with pytest.raises(HttpStatusError, match="404 error for GET /missing") as info:
            missing.raise_for_status()
        assert info.value.status == 404
        plain = await client.get("/plain")
        assert await plain.text() == "hello" and await plain.read() == b"hello"

    run(main())


def test_request_works_awaited_and_as_async_context_manager():
    client = AsyncWorkflowFixtures.create_mock_http_client().add_response("POST", "/send", {"id": "e1"})

    async def main():
        async with client.post("/send", json={"to": "a"}) as resp:
            first = await resp.json()
        second = await (await client.post("/send", json={"to": "b"})).json()
        return first, second

    assert run(main()) == ({"id": "e1"}, {"id": "e1"})
    calls = client.get_calls("POST", "/send")
    assert [c.kwargs["json"] for c in calls] == [{"to": "a"}, {"to": "b"}]
    assert calls[0].json == {"to": "a"} and calls[0].status == 200 and calls[0].duration >= 0


def test_responses_and_errors_queue_per_route_and_the_last_repeats():
    client = AsyncWorkflowFixtures.create_mock_http_client()
    client.add_error("GET", "/flaky", ConnectionError("reset"))
    client.add_response("GET", "/flaky", {"n": 1})
    client.add_response("GET", "/flaky", {"n": 2})

    async def main():
        with pytest.raises(ConnectionError, match="reset"):
            await client.get("/flaky")
        return [(await (await client.get("/flaky")).json())["n"] for _ in range(3)]

    assert run(main()) == [1, 2, 2]
    calls = client.get_calls("get", "/flaky")
    assert isinstance(calls[0].exception, ConnectionError) and calls[0].response is None
    assert [c.status for c in calls] == [None, 200, 200, 200]


def test_unmatched_request_lists_the_routes_that_exist():
    client = AsyncWorkflowFixtures.create_mock_http_client()
    client.add_response("GET", "/api/data", {})
    client.add_response("POST", "/charges", {})
    with pytest.raises(UnmatchedRequestError, match=r"no mock response for POST /charge; routes: GET /api/data, "
                                                    r"POST /charges. Add one with add_response\('POST', '/charge'"):
        run(_await(client.post("/charge")))
    assert isinstance(client.get_calls("POST")[0].exception, UnmatchedRequestError)


def test_full_urls_and_query_strings_match_by_path():
    client = AsyncWorkflowFixtures.create_mock_http_client(base_url="https://api.example.com")
    client.add_response("GET", "/items", {"all": True})
    client.add_response("GET", "/items?page=2", {"page": 2})

    async def main():
        a = await (await client.get("https://api.example.com/items?page=1")).json()
        b = await (await client.get("/items?page=2")).json()
        return a, b

    assert run(main()) == ({"all": True}, {"page": 2})
    assert [c.url for c in client.get_calls(path="/items")] == [
        "https://api.example.com/items?page=1", "https://api.example.com/items?page=2"]


def test_json_bodies_are_copies_and_reset_calls_forgets():
    client = AsyncWorkflowFixtures.create_mock_http_client().add_response("GET", "/x", {"list": [1]})

    async def main():
        data = await (await client.get("/x")).json()
        data["list"].append(2)
        return await (await client.get("/x")).json()

    assert run(main()) == {"list": [1]}
    client.reset_calls()
    assert client.get_calls() == () and client.routes == ("GET /x",)


def test_add_response_validates_its_arguments():
    client = AsyncWorkflowFixtures.create_mock_http_client()
    with pytest.raises(ValueError, match="unknown HTTP method 'FETCH'"):
        client.add_response("FETCH", "/x")
    with pytest.raises(ValueError, match="at most one of json=, text= and body="):
        client.add_response("GET", "/x", {"a": 1}, text="a")
    with pytest.raises(TypeError, match="add_error needs an exception instance"):
        client.add_error("GET", "/x", ConnectionError)


async def _await(awaitable):
    return await awaitable


# -- cache ----------------------------------------------------------------------------------------------

def test_cache_get_set_delete_exists_clear():
    async def main():
        cache = await AsyncWorkflowFixtures.create_test_cache()
        assert isinstance(cache, MemoryCache)
        await cache.set("a", {"v": 1})
        assert await cache.get("a") == {"v": 1} and await cache.exists("a")
        assert await cache.get("missing", "default") == "default"
        assert await cache.delete("a") is True and await cache.delete("a") is False
        await cache.set("b", 1)
        await cache.clear()
        assert not await cache.exists("b") and len(cache) == 0

    run(main())


def test_cache_ttl_and_expire_are_honoured():
    now = [100.0]
    cache = MemoryCache(clock=lambda: now[0])

    async def main():
        await cache.set("k", "v", ttl=60)
        assert await cache.ttl("k") == 60
        now[0] += 59
        assert await cache.get("k") == "v"
        now[0] += 1
        assert await cache.get("k") is None and not await cache.exists("k")
        await cache.set("p", "v")
        assert await cache.ttl("p") is None
        assert await cache.expire("p", 5) and not await cache.expire("gone", 5)
        now[0] += 5
        assert await cache.keys() == []
        with pytest.raises(ValueError, match="ttl must be a positive, finite number"):
            await cache.set("x", 1, ttl=0)

    run(main())


def test_cache_expiry_with_the_real_clock():
    async def main():
        cache = MemoryCache()
        await cache.set("k", "v", ttl=0.02)
        await asyncio.sleep(0.03)
        return await cache.get("k")

    assert run(main()) is None


# -- files ------------------------------------------------------------------------------------------------

def test_temp_directory_is_removed_afterwards_even_on_error():
    seen: list[Path] = []

    async def main():
        async with AsyncWorkflowFixtures.temp_directory() as path:
            seen.append(path)
            (path / "f.txt").write_text("x")
            raise RuntimeError("body failed")

    with pytest.raises(RuntimeError):
        run(main())
    assert seen[0].name.startswith("kailash_nb_") and not seen[0].exists()


def test_create_test_files_writes_text_bytes_and_json():
    async def main():
        async with AsyncWorkflowFixtures.temp_directory() as path:
            written = await AsyncWorkflowFixtures.create_test_files(path, {
                "input.csv": "name,age\nJohn,30",
                "raw.bin": b"\x00\x01",
                "config.json": {"setting": "value"},
                "nested/list.json": [1, 2],
            })
            return (written["input.csv"].read_text(), written["raw.bin"].read_bytes(),
                    json.loads(written["config.json"].read_text()), json.loads((path / "nested/list.json").read_text()))

    assert run(main()) == ("name,age\nJohn,30", b"\x00\x01", {"setting": "value"}, [1, 2])


def test_create_test_files_rejects_escapes_and_unknown_content(tmp_path):
    with pytest.raises(ValueError, match="would be written outside"):
        run(AsyncWorkflowFixtures.create_test_files(tmp_path, {"../evil.txt": "x"}))
    with pytest.raises(TypeError, match="content must be str, bytes, dict or list"):
        run(AsyncWorkflowFixtures.create_test_files(tmp_path, {"n.txt": 3}))


# -- database -----------------------------------------------------------------------------------------------

def test_create_test_database_delegates_to_the_postgres_fixture(monkeypatch):
    import importlib
    import sys
    import types

    received = {}

    async def fake(engine, database, user, password, *, dsn=None, schema=None, seed=None):
        received.update(engine=engine, database=database, user=user, password=password, dsn=dsn, schema=schema,
                        seed=seed)
        return "db"

    module = types.ModuleType("kailash_nb.testing.fixtures.postgres")
    module.create_test_database = fake
    monkeypatch.setitem(sys.modules, "kailash_nb.testing.fixtures.postgres", module)
    fixtures_pkg = importlib.import_module("kailash_nb.testing.fixtures")
    monkeypatch.setattr(fixtures_pkg, "postgres", module, raising=False)
    db = run(AsyncWorkflowFixtures.create_test_database(engine="postgresql", database="test_db", user="u",
                                                        password="p", schema="s"))
    assert db == "db"
    assert received == {"engine": "postgresql", "database": "test_db", "user": "u", "password": "p", "dsn": None,
                        "schema": "s", "seed": None}
