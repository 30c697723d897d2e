import asyncio
from typing import Any, cast

import pytest

from kailash_nb.workflow import (
    AsyncLocalRuntime,
    AsyncWorkflowBuilder,
    ResourceCleanupError,
    ResourceNotFoundError,
    ResourceRegistry,
)


def make(cls_method):
    """A class whose instances have exactly one cleanup method, found on the type as the registry expects."""
    def close(self):
        self.log.append(self.name)
        if self.fail:
            raise OSError(f"{self.name} would not close")

    async def aclose(self):
        close(self)

    body = {"__init__": lambda self, name, log, fail=False: self.__dict__.update(name=name, log=log, fail=fail),
            cls_method: aclose if cls_method == "aclose" else close}
    return type(f"With{cls_method}", (), body)


def test_factories_run_lazily_once_and_clean_up_in_reverse_order():
    log: list[str] = []
    created: list[str] = []

    async def main():
        registry = ResourceRegistry()
        for name, method in (("first", "aclose"), ("second", "close"), ("third", "cleanup")):
            def factory(name=name, method=method):
                created.append(name)
                return make(method)(name, log)
            registry.register_factory(name, factory)

        async def async_factory():
            created.append("fourth")
            return make("aclose")("fourth", log)

        registry.register_factory("fourth", async_factory)
        assert created == []
        for name in ("second", "first", "fourth", "third", "first"):
            await registry.get(name)
        assert created == ["second", "first", "fourth", "third"]
        await registry.aclose()

    asyncio.run(main())
    assert log == ["third", "fourth", "first", "second"]


def test_instances_are_not_cleaned_up_by_the_registry():
    log: list[str] = []

    async def main():
        async with ResourceRegistry() as registry:
            registry.register_instance("mine", make("close")("mine", log))
            await registry.get("mine")

    asyncio.run(main())
    assert log == []


def test_cleanup_errors_are_reported_together_after_every_cleanup_ran():
    log: list[str] = []

    async def main():
        registry = ResourceRegistry()
        registry.register_factory("a", lambda: make("close")("a", log, fail=True))
        registry.register_factory("b", lambda: make("aclose")("b", log))
        registry.register_factory("c", lambda: make("cleanup")("c", log, fail=True))
        for name in "abc":
            await registry.get(name)
        await registry.aclose()

    with pytest.raises(ResourceCleanupError) as info:
        asyncio.run(main())
    assert log == ["c", "b", "a"]
    assert set(info.value.errors) == {"a", "c"}
    assert str(info.value) == ("cleanup failed for 2 resource(s): c: OSError: c would not close; "
                               "a: OSError: a would not close")


def test_unknown_resource_lists_registered_names():
    async def main():
        registry = ResourceRegistry()
        registry.register_instance("cache", object())
        registry.register_factory("db", object)
        await registry.get("http")

    with pytest.raises(ResourceNotFoundError, match=r"asked for resource 'http'.*registered: 'cache', 'db'"):
        asyncio.run(main())


def test_names_must_be_unique_and_factories_callable():
    registry = ResourceRegistry()
    registry.register_instance("x", 1)
    with pytest.raises(ValueError, match="resource 'x' is already registered"):
        registry.register_factory("x", object)
    with pytest.raises(TypeError, match="resource 'y': factory must be callable"):
        registry.register_factory("y", cast(Any, 42))
    assert registry.names == ("x",) and "x" in registry


def test_an_unknown_resource_says_how_to_register_it_in_engine_terms():
    async def main():
        await ResourceRegistry().get("db")

    with pytest.raises(ResourceNotFoundError) as info:
        asyncio.run(main())
    assert str(info.value) == (
        "asked for resource 'db', but no resource has that name; registered: none. Register it before the run: "
        "resources={'db': ...}, or a ResourceRegistry with register_instance('db', ...) or "
        "register_factory('db', ...)")


class RegistryLike:
    """Has ``get`` and ``names`` like a registry, but is neither a ResourceRegistry nor a mapping."""

    names = ("db",)

    async def get(self, name):
        return name


@pytest.mark.parametrize("resources", [RegistryLike(), ["db"], "db"], ids=["registry-like", "list", "str"])
def test_resources_must_be_a_registry_or_a_mapping(resources):
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", "result = {}").build()
    with pytest.raises(TypeError) as info:
        asyncio.run(AsyncLocalRuntime().execute_workflow_async(wf, resources=resources))
    assert str(info.value) == (f"resources must be a ResourceRegistry or a mapping of names to objects, "
                               f"got {type(resources).__name__}")


def test_a_mapping_of_resources_is_copied_when_the_run_starts():
    code = "await asyncio.sleep(0)\nresult = {'db': await get_resource('db')}"
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", code).build()
    resources = {"db": "first"}

    async def main():
        running = asyncio.create_task(AsyncLocalRuntime().execute_workflow_async(wf, resources=resources))
        await asyncio.sleep(0)
        resources["db"] = "second"
        return await running

    assert asyncio.run(main()).get_output("n", "db") == "first"


def test_a_registered_instance_is_what_get_returns():
    instance = object()

    async def main():
        registry = ResourceRegistry()
        registry.register_instance("config", instance)
        return await registry.get("config")

    assert asyncio.run(main()) is instance


def test_a_factory_can_use_another_resource_of_the_registry():
    async def main():
        registry = ResourceRegistry()
        registry.register_factory("pool", lambda: ["connection"])

        async def repository():
            return {"pool": await registry.get("pool")}

        registry.register_factory("repository", repository)
        async with asyncio.timeout(5):  # a registry-wide lock would deadlock here
            return await registry.get("repository"), registry.names

    assert asyncio.run(main()) == ({"pool": ["connection"]}, ("pool", "repository"))


@pytest.mark.parametrize("name", ["", 3, None])
def test_a_resource_name_must_be_a_non_empty_string(name):
    registry = ResourceRegistry()
    with pytest.raises(ValueError) as info:
        registry.register_instance(name, object())
    assert str(info.value) == f"resource name must be a non-empty string, got {name!r}"
    assert registry.names == ()


def test_a_factory_that_is_not_callable_is_named_with_its_type():
    with pytest.raises(TypeError) as info:
        ResourceRegistry().register_factory("db", cast(Any, 42))
    assert str(info.value) == "resource 'db': factory must be callable, got int"


class Hangs:
    """A resource whose ``aclose`` never finishes until cancelled; ``log`` says whether it was cancelled."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def aclose(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.log.append("hangs cancelled")
            raise


def test_a_hanging_cleanup_is_cancelled_at_the_timeout_naming_the_resource_and_the_others_still_run():
    log: list[str] = []

    async def main():
        registry = ResourceRegistry(cleanup_timeout=0.01)
        registry.register_factory("first", lambda: make("close")("first", log))
        registry.register_factory("stuck", lambda: Hangs(log))
        registry.register_factory("last", lambda: make("aclose")("last", log))
        for name in ("first", "stuck", "last"):
            await registry.get(name)
        with pytest.raises(ResourceCleanupError) as info:
            await asyncio.wait_for(registry.aclose(), 30)  # a safety net: before the bound this hung forever
        return info.value

    error = asyncio.run(main())
    assert log == ["last", "hangs cancelled", "first"]
    assert list(error.errors) == ["stuck"] and isinstance(error.errors["stuck"], TimeoutError)
    assert str(error.errors["stuck"]) == (
        "resource 'stuck' did not finish its cleanup (Hangs.aclose()) within its cleanup timeout of 0.01 s "
        "and was cancelled; fix what it waits for, or give it longer with cleanup_timeout=")
    assert str(error).startswith("cleanup failed for 1 resource(s): stuck: ResourceCleanupTimeoutError: ")


def test_the_cleanup_timeout_is_ten_seconds_by_default_and_checked():
    assert ResourceRegistry().cleanup_timeout == 10.0
    assert ResourceRegistry(cleanup_timeout=None).cleanup_timeout is None
    with pytest.raises(ValueError, match=r"ResourceRegistry\(cleanup_timeout=...\) must be"):
        ResourceRegistry(cleanup_timeout=0)
