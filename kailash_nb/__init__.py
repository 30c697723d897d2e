"""kailash_nb: a Jupyter notebook testing kit for async workflows.

``%load_ext kailash_nb`` in a notebook; ``kailash_nb.workflow`` and ``kailash_nb.testing`` in Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import KailashNbError, WorkflowAssertionError

if TYPE_CHECKING:  # what type checkers see of the engine's names, which __getattr__ imports on first use
    from .workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, Workflow, WorkflowResult

__all__ = [
    "AsyncLocalRuntime",
    "AsyncWorkflowBuilder",
    "KailashNbError",
    "Workflow",
    "WorkflowAssertionError",
    "WorkflowResult",
    "__version__",
]
_ENGINE = frozenset({"AsyncLocalRuntime", "AsyncWorkflowBuilder", "Workflow", "WorkflowResult"})


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        from . import workflow

        return getattr(workflow, name)
    if name == "__version__":  # read from the installed package's metadata, on first use (the import is slow)
        from importlib.metadata import version

        globals()["__version__"] = value = version("kailash_nb")
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kailash_nb``: register the magics, displays and the notebook session."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext kailash_nb``: remove the magics and clean up the session's resources."""
    from .notebook import unload_ipython_extension as unload

    unload(ipython)
