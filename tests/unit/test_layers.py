"""The package's shape, read from its source: layers import downwards only, and modules meet through
public names (a leading underscore stays inside its own module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kailash_nb"
#: Each layer and the layers it may import (besides itself and kailash_nb.errors).
ALLOWED = {
    "workflow": set(),
    "testing": {"workflow"},
    "notebook": {"workflow", "testing"},
    "runner": {"workflow", "testing", "notebook"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of every kailash_nb import in ``path``, relative ones resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found += [(target, alias.name, node.lineno) for alias in node.names]
    return [(module, name, line) for module, name, line in found if module.split(".")[0] == "kailash_nb"]


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    private = [f"line {line}: {module}.{name}" for module, name, line in imports(path)
               if name is not None and name.startswith("_") and not name.startswith("__")]
    private += [f"line {line}: {module}" for module, _, line in imports(path)
                if any(part.startswith("_") and not part.startswith("__") for part in module.split("."))]
    assert not private, private


@pytest.mark.parametrize("path", [p for p in SOURCES if len(p.relative_to(PACKAGE).parts) > 1],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_the_layers_below(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    upward = []
    for module, name, line in imports(path):
        parts = module.split(".")
        if len(parts) == 1 and name in ALLOWED:  # from kailash_nb import workflow
            parts = [*parts, name]
        target = parts[1] if len(parts) > 1 else None
        if target in ALLOWED and target != layer and target not in ALLOWED[layer]:
            upward.append(f"line {line}: {module}")
    assert not upward, f"{layer} imports a layer above it: {upward}"
