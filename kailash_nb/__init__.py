"""kailash_nb: a Jupyter notebook testing kit for async workflows.

``%load_ext kailash_nb`` in a notebook; ``kailash_nb.workflow`` and ``kailash_nb.testing`` in Python.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["AsyncLocalRuntime", "AsyncWorkflowBuilder", "Workflow", "WorkflowResult", "__version__"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import workflow

        return getattr(workflow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kailash_nb``: register the magics, displays and the notebook session."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext kailash_nb``: remove the magics and clean up the session's resources."""
    from .notebook import unload_ipython_extension as unload

    unload(ipython)
