"""The engine's public names: the runtime and what needs asyncio load on first use."""

import ast
import inspect
import subprocess
import sys

import pytest

import kailash_nb
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


def _type_checking_imports(module) -> set[str]:
    """The names ``module`` imports under ``if TYPE_CHECKING:``, which type checkers see in place of its
    module ``__getattr__`` (that one would make each lazily loaded name ``Any`` to them)."""
    tree = ast.parse(inspect.getsource(module))
    return {
        alias.asname or alias.name
        for statement in tree.body
        if isinstance(statement, ast.If) and ast.unparse(statement.test) == "TYPE_CHECKING"
        for node in statement.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_every_name_loaded_on_first_use_is_declared_for_type_checkers():
    assert _type_checking_imports(engine) == set(engine._LAZY)
    assert _type_checking_imports(kailash_nb) == set(kailash_nb._ENGINE)


def test_importing_the_engine_does_not_load_asyncio():
    code = "import sys, kailash_nb, kailash_nb.workflow; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
