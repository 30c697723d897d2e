"""The engine's public names: the runtime and what needs asyncio load on first use."""

import pytest

import kailash_nb.workflow as engine


def test_the_listing_of_the_package_is_its_public_names():
    assert dir(engine) == sorted(engine.__all__)
    assert all(hasattr(engine, name) for name in engine.__all__)


@pytest.mark.parametrize(("name", "module"), [
    ("AsyncLocalRuntime", "kailash_nb.workflow.runtime"),
    ("Deadline", "kailash_nb.workflow.deadline"),
    ("ResourceRegistry", "kailash_nb.workflow.resources"),
    ("ResourceCleanupError", "kailash_nb.workflow.resources"),
])
def test_names_that_need_asyncio_load_on_first_use_and_are_kept(name, module, monkeypatch):
    monkeypatch.delitem(vars(engine), name, raising=False)  # as before its first use
    value = engine.__getattr__(name)
    assert value.__module__ == module
    assert value.__name__ == name
    assert vars(engine)[name] is value  # kept: the next use does not go through __getattr__


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError) as info:
        engine.__getattr__("Runtime")
    assert str(info.value) == "module 'kailash_nb.workflow' has no attribute 'Runtime'"
    assert not hasattr(engine, "Runtime")
