"""One exception tree: every exception class kailash_nb defines derives from KailashNbError and is drawn in
the tree of ``kailash_nb.errors``."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import re

import pytest

import kailash_nb
from kailash_nb import KailashNbError
from kailash_nb.errors import __doc__ as TREE


def defined_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(kailash_nb.__path__, prefix="kailash_nb."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return sorted(found.values(), key=lambda cls: cls.__name__)


EXCEPTIONS = defined_exceptions()


def test_the_package_defines_exceptions_in_every_layer() -> None:
    layers = {cls.__module__.split(".")[1] for cls in EXCEPTIONS}
    assert {"errors", "workflow", "testing", "notebook", "runner"} <= layers


@pytest.mark.parametrize("exception", EXCEPTIONS, ids=lambda cls: cls.__name__)
def test_every_exception_derives_from_the_root(exception: type[BaseException]) -> None:
    assert issubclass(exception, KailashNbError)


@pytest.mark.parametrize("exception", [cls for cls in EXCEPTIONS if not cls.__name__.startswith("_")],
                         ids=lambda cls: cls.__name__)
def test_every_public_exception_is_drawn_in_the_tree(exception: type[BaseException]) -> None:
    assert re.search(rf"[─ ]{exception.__name__}\b", TREE), f"{exception.__name__} is missing from kailash_nb.errors"


def test_the_tree_names_only_exceptions_that_exist() -> None:
    drawn = set(re.findall(r"[├└]── (\w+)", TREE)) | {"KailashNbError"}
    assert drawn == {cls.__name__ for cls in EXCEPTIONS if not cls.__name__.startswith("_")}


def test_each_error_is_also_the_builtin_a_user_catches() -> None:
    by_name = {cls.__name__: cls for cls in EXCEPTIONS}
    for line in TREE.splitlines():
        match = re.search(r"── (\w+)\s+\+ (\w+)", line)
        if match:
            assert issubclass(by_name[match.group(1)], getattr(builtins, match.group(2))), line
