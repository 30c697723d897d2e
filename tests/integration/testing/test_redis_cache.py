"""The Redis-backed cache answers as the in-memory one: the same cases run against both backends."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kailash_nb.testing import AsyncWorkflowFixtures, MemoryCache
from kailash_nb.testing.fixtures.redis import CacheValueError, RedisCache, create_test_redis

pytestmark = pytest.mark.integration

Scenario = Callable[[Any], Awaitable[Any]]


def run_on(backend: str, scenario: Scenario) -> Any:
    """Run ``scenario(cache)`` on a fresh cache of ``backend``, released afterwards."""
    async def main() -> Any:
        cache = await AsyncWorkflowFixtures.create_test_cache(backend=backend)
        try:
            return await scenario(cache)
        finally:
            await cache.aclose()
    return asyncio.run(main())


BACKENDS = ["memory", "redis"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_read_back_equal(backend: str) -> None:
    value = {"name": "Ada", "tags": ["a", "b"], "score": 9.5, "n": 3, "ok": True, "none": None,
             "nested": {"deep": [1, {"x": "é"}]}}

    async def scenario(cache: Any) -> list[Any]:
        await cache.set("user:1", value)
        await cache.set("count", 0)
        await cache.set("text", "plain")
        return [await cache.get("user:1"), await cache.get("count"), await cache.get("text"),
                await cache.get("missing"), await cache.get("missing", "fallback")]

    assert run_on(backend, scenario) == [value, 0, "plain", None, "fallback"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_exists_keys_and_clear(backend: str) -> None:
    async def scenario(cache: Any) -> list[Any]:
        await cache.set("b", 1)
        await cache.set("a", 2)
        seen = [await cache.keys(), await cache.exists("a"), await cache.delete("a"), await cache.delete("a"),
                await cache.exists("a"), await cache.keys()]
        await cache.clear()
        return [*seen, await cache.keys()]

    assert run_on(backend, scenario) == [["a", "b"], True, True, False, False, ["b"], []]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ttl_and_expiry(backend: str) -> None:
    async def scenario(cache: Any) -> list[Any]:
        await cache.set("short", "x", ttl=0.05)
        await cache.set("long", "y", ttl=60)
        await cache.set("forever", "z")
        left = await cache.ttl("long")
        seen = [0 < left <= 60, await cache.ttl("forever"), await cache.expire("forever", 30),
                await cache.expire("nothing", 30)]
        await asyncio.sleep(0.15)
        return [*seen, await cache.get("short"), await cache.exists("short"), await cache.keys()]

    assert run_on(backend, scenario) == [True, None, True, False, None, False, ["forever", "long"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ttl_of_a_missing_key_is_a_key_error_naming_the_keys(backend: str) -> None:
    async def scenario(cache: Any) -> str:
        await cache.set("present", 1)
        with pytest.raises(KeyError) as raised:
            await cache.ttl("absent")
        return str(raised.value)

    assert run_on(backend, scenario) == "\"no key 'absent' in the cache; keys: ['present']\""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ttl", [0, -1, -0.5, "10", True, math.nan, math.inf])
def test_a_bad_ttl_is_refused(backend: str, ttl: Any) -> None:
    async def scenario(cache: Any) -> list[str]:
        with pytest.raises(ValueError, match="ttl must be a positive, finite number of seconds"):
            await cache.set("k", 1, ttl=ttl)
        await cache.set("kept", 1)
        with pytest.raises(ValueError, match="ttl must be a positive, finite number of seconds"):
            await cache.expire("kept", ttl)
        return [*await cache.keys(), await cache.ttl("kept")]

    assert run_on(backend, scenario) == ["kept", None]


def test_a_ttl_beyond_what_redis_holds_is_a_value_error_naming_the_limit() -> None:
    async def scenario(cache: Any) -> list[str]:
        with pytest.raises(ValueError, match=r"ttl 1e\+17 is more than Redis can hold \(at most 4\.6e\+15 seconds\)"):
            await cache.set("k", 1, ttl=1e17)
        await cache.set("k", 1, ttl=4e15)
        return await cache.keys()

    assert run_on("redis", scenario) == ["k"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_strings_that_are_not_valid_utf8_read_back_equal(backend: str) -> None:
    value = {"lone surrogate": "a\ud800b", "list": ["\udcff", "é"]}

    async def scenario(cache: Any) -> Any:
        await cache.set("k", value)
        return await cache.get("k")

    assert run_on(backend, scenario) == value


def test_default_cache_is_in_memory_and_an_unknown_backend_is_refused() -> None:
    assert isinstance(asyncio.run(AsyncWorkflowFixtures.create_test_cache()), MemoryCache)
    with pytest.raises(ValueError, match="backend must be 'memory' or 'redis', got 'memcached'"):
        asyncio.run(AsyncWorkflowFixtures.create_test_cache(backend="memcached"))


@pytest.mark.parametrize(("value", "problem"), [
    ((1, 2), "the value at the top has type tuple"),
    ({"when": {1: "x"}}, "the value's key 1 at the top['when'] has type int"),
    ([b"raw"], "the value at the top[0] has type bytes"),
    ({"s": {1, 2}}, "the value at the top['s'] has type set"),
])
def test_values_json_would_change_are_refused_not_stored(value: Any, problem: str) -> None:
    async def scenario(cache: Any) -> list[str]:
        with pytest.raises(CacheValueError, match=problem.replace("[", r"\[").replace("]", r"\]")) as raised:
            await cache.set("k", value)
        assert isinstance(raised.value, TypeError)
        return await cache.keys()

    assert run_on("redis", scenario) == []


def test_a_value_that_contains_itself_is_refused_as_a_cache_value_error() -> None:
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = [cyclic]

    async def scenario(cache: Any) -> list[str]:
        with pytest.raises(CacheValueError, match=r"contains itself .* or is nested too deeply"):
            await cache.set("k", cyclic)
        return await cache.keys()

    assert run_on("redis", scenario) == []


def test_raw_client_sees_the_cache_under_its_prefix_and_release_deletes_only_that() -> None:
    async def main() -> tuple[Any, ...]:
        cache = await AsyncWorkflowFixtures.create_test_cache(backend="redis")
        neighbour = await create_test_redis("neighbour")
        await cache.set("k", {"v": 1})
        raw = await cache.client.get(cache.key("k"))
        await neighbour.client.set(neighbour.key("k"), "kept")
        await cache.client.set(cache.key("raw"), "not json")
        with pytest.raises(CacheValueError, match="key 'raw' does not hold a cache value"):
            await cache.get("raw")
        outside = "kailash_nb-test-outside-any-prefix"
        await cache.client.set(outside, "not the kit's")
        await cache.aclose()
        checker = await create_test_redis("checker")
        try:
            left = [await checker.client.exists(cache.key("k")), await checker.client.get(neighbour.key("k")),
                    await checker.client.get(outside)]
        finally:
            await checker.client.delete(outside)
            await neighbour.cleanup()
            await checker.cleanup()
        return raw, left

    raw, left = asyncio.run(main())
    assert raw == b'{"v":1}'
    assert left == [0, b"kept", b"not the kit's"]


def test_each_cache_has_its_own_key_space() -> None:
    async def main() -> list[Any]:
        first = await AsyncWorkflowFixtures.create_test_cache(backend="redis")
        second = await AsyncWorkflowFixtures.create_test_cache(backend="redis")
        try:
            await first.set("shared-name", 1)
            return [await second.get("shared-name"), await second.keys(), first.key("x") != second.key("x")]
        finally:
            await first.aclose()
            await second.aclose()

    assert asyncio.run(main()) == [None, [], True]


def test_a_released_key_space_refuses_its_client_and_displays_stay_deterministic() -> None:
    async def main() -> tuple[str, str]:
        cache = await AsyncWorkflowFixtures.create_test_cache(backend="redis")
        shown = (repr(cache), repr(cache.redis))
        await cache.aclose()
        await cache.aclose()  # idempotent
        with pytest.raises(RuntimeError, match="was cleaned up"):
            cache.client  # noqa: B018
        return shown

    assert asyncio.run(main()) == ("<RedisCache backend=embedded>", "TestRedis(name='cache', backend='embedded')")


def test_a_forgotten_client_is_closed_when_its_loop_shuts_down() -> None:
    async def main() -> tuple[RedisCache, Any]:
        cache = await AsyncWorkflowFixtures.create_test_cache(backend="redis")
        await cache.set("k", 1)
        return cache, cache.client

    cache, client = asyncio.run(main())
    assert all(conn._writer is None for conn in client.connection_pool._available_connections)
    cache.cleanup_sync()
