"""What a reaper runs (``python -I -S``, no site-packages, no kailash_nb package) imports only the standard
library, the shared ``embedded`` folder and its own server folder's stdlib modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import kailash_nb.testing.fixtures as fixtures

FIXTURES = Path(fixtures.__file__).parent
REAPER_MODULES = {
    "embedded/runtime.py": set(),
    "embedded/reaper.py": {(1, "runtime")},
    "redis/runtime.py": {(2, "embedded")},
    "redis/reaper.py": {(2, "embedded"), (1, "runtime")},
    "postgres/runtime.py": {(2, "embedded"), (2, "embedded.runtime")},
    "postgres/reaper.py": {(2, "embedded"), (1, "runtime"), (1, "scram")},
}


def relative_imports(source: str) -> set[tuple[int, str]]:
    """(level, module or imported name) of each relative import; absolute ones must be standard library."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.module:
                found.add((node.level, node.module))
            else:
                found |= {(node.level, alias.name) for alias in node.names}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            roots = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for root in roots:
                assert root.partition(".")[0] in sys.stdlib_module_names | {"__future__"}, ast.unparse(node)
    return found


@pytest.mark.parametrize("name", sorted(REAPER_MODULES))
def test_what_a_reaper_runs_imports_only_the_standard_library_and_the_shared_folder(name: str) -> None:
    assert relative_imports((FIXTURES / name).read_text()) <= REAPER_MODULES[name]


def test_the_check_sees_a_package_import() -> None:
    with pytest.raises(AssertionError, match="import redis"):
        relative_imports("import redis\n")
    assert relative_imports("from .server import TestRedis\n") == {(1, "server")}
