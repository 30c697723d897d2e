"""Running cells in a shell as ipykernel does, and reading what a failing cell showed."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(ip: InteractiveShell, *cells: str | tuple[str, str]) -> list[Any]:
    """Run cells as ipykernel does (the transformed cell, as a coroutine on one loop); return results.

    A cell given as ``(cell_id, source)`` runs with that cell id, as JupyterLab sends it with each execution.
    """

    async def main() -> list[Any]:
        return [await (run_cell(ip, cell) if isinstance(cell, str) else run_cell(ip, cell[1], cell_id=cell[0]))
                for cell in cells]

    return asyncio.run(main())


async def run_cell(ip: InteractiveShell, cell: str, *, cell_id: str | None = None) -> ExecutionResult:
    return await ip.run_cell_async(cell, transformed_cell=ip.transform_cell(cell), silent=False, cell_id=cell_id)


def raised(result: Any) -> BaseException | None:
    return result.error_before_exec or result.error_in_exec


def plain(text: str) -> str:
    """``text`` without terminal colours."""
    return _ANSI.sub("", text)
