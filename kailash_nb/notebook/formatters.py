"""Register the rich displays of the engine's ``WorkflowResult`` and ``Workflow`` with a shell.

The engine is stdlib-only and knows nothing about pandas or IPython, so its classes get their
``text/html`` from here, through the shell's mimebundle formatter, and lose it on unload.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


def _printers() -> dict[type, Callable[[Any], Any]]:
    from kailash_nb.workflow import Workflow, WorkflowResult

    from .display import workflow_bundle, workflow_result_bundle

    return {WorkflowResult: workflow_result_bundle, Workflow: workflow_bundle}


def register(ip: InteractiveShell) -> None:
    formatter = _mimebundle_formatter(ip)
    for cls, printer in _printers().items():
        formatter.for_type(cls, printer)


def unregister(ip: InteractiveShell) -> None:
    formatter = _mimebundle_formatter(ip)
    for cls in _printers():
        formatter.pop(cls, None)


def _mimebundle_formatter(ip: InteractiveShell) -> Any:
    assert ip.display_formatter is not None, "an initialised shell has a display formatter"
    return ip.display_formatter.mimebundle_formatter
