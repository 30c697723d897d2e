"""The PostgreSQL fixture package: its modules meet through public names only, and the reaper's stay stdlib."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import kailash_nb.testing.fixtures.postgres as package

PACKAGE = Path(package.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
DOCUMENTED_UNDERSCORE_APIS = {"os._exit"}


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_crossings(source: str) -> list[str]:
    """Underscore names taken from another module (``from .x import _y``) or another object (``obj._y``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            found += [f"from .{node.module} import {alias.name}" for alias in node.names if private(alias.name)]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) \
                    and ast.unparse(node) not in DOCUMENTED_UNDERSCORE_APIS:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_finds_private_crossings() -> None:
    assert private_crossings("from .database import _close\nx = db._owns_role\ny = self._server._drop(db)\n") == [
        "from .database import _close", "line 2: db._owns_role", "line 3: self._server._drop"]


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_modules_use_one_another_through_public_names_only(module: Path) -> None:
    assert private_crossings(module.read_text()) == []


@pytest.mark.parametrize("name", ["runtime", "reaper", "scram"])
def test_what_the_reaper_runs_imports_only_the_standard_library_and_itself(name: str) -> None:
    """The reaper runs as ``python -I -S``: no site-packages, no kailash_nb package but the folder of the rules
    all embedded servers share (``embedded``, checked in test_embedded_servers_layout)."""
    allowed = {"runtime", "scram"}
    for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 2 and (node.module or "").startswith("embedded"):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and {alias.name for alias in node.names} <= allowed, ast.unparse(node)
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            roots = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for root in roots:
                assert root.partition(".")[0] in sys.stdlib_module_names | {"__future__"}, ast.unparse(node)
