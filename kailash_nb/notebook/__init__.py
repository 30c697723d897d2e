"""The IPython extension of kailash_nb: ``%%kailash`` cells, ``%kailash`` subcommands, rich displays,
charts and widgets for async workflows in a notebook.

Load it with ``%load_ext kailash_nb`` (or ``%load_ext kailash_nb.notebook``). IPython, pandas,
matplotlib and ipywidgets are imported only when the extension loads or something is displayed.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .charts import Chart
    from .session import NotebookSession

#: Environment variable: ``1`` always use widgets, ``0`` never (static output), unset: auto.
WIDGETS_ENV = "KAILASH_NB_WIDGETS"

__all__ = [
    "WIDGETS_ENV",
    "call_table",
    "chart",
    "current_session",
    "load_ipython_extension",
    "register_resource",
    "sanitize_file_path",
    "unload_ipython_extension",
]


def load_ipython_extension(ip: InteractiveShell) -> None:
    """Register the magics, the input transformer and the displays (a second load does nothing).

    Loaded by a cell, the transformer starts with the next cell: the magics remember that, so that an
    awaiting magic in the same cell explains it instead of giving the general advice.
    """
    from . import formatters, transform
    from .magics import KailashMagics

    if KailashMagics.__name__ not in ip.magics_manager.registry:
        magics = KailashMagics(ip)
        ip.register_magics(magics)
        magics.loaded_mid_cell()
    transform.install(ip)
    formatters.register(ip)


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """Remove everything ``load_ipython_extension`` added and clean up the session's resources.

    ``%unload_ext kailash_nb`` awaits the cleanup on the kernel's loop (the input transformer makes it
    a top-level await); called from elsewhere, the cleanup is scheduled on the running loop.
    """
    from . import formatters, transform
    from .magics import KailashMagics

    magics = ip.magics_manager.registry.pop(KailashMagics.__name__, None)
    if isinstance(magics, KailashMagics):
        magics.detach()
        magics.session.close_soon()
        for kind in ("line", "cell"):
            ip.magics_manager.magics[kind].pop("kailash", None)
    transform.uninstall(ip)
    formatters.unregister(ip)


def current_session(ip: InteractiveShell | None = None) -> NotebookSession:
    """The notebook session of the running kernel, e.g. to register real resources::

        from kailash_nb.notebook import current_session
        current_session().register_resource("db", factory=lambda: asyncpg.create_pool(dsn))
    """
    from .errors import KailashMagicError
    from .magics import KailashMagics

    if ip is None:
        from IPython import get_ipython

        ip = get_ipython()
    magics = ip.magics_manager.registry.get(KailashMagics.__name__) if ip is not None else None
    if not isinstance(magics, KailashMagics):
        raise KailashMagicError("the kailash_nb extension is not loaded: run %load_ext kailash_nb first")
    return magics.session


def register_resource(name: str, factory: Callable[[], Any] | None = None, *, instance: Any = None) -> None:
    """Register a real resource for the notebook's workflows (node code: ``await get_resource(name)``).

    ``factory`` (sync or async) runs on first use, on the kernel's loop; what it made is cleaned up
    (``aclose``/``close``/``cleanup``) by ``%kailash reset`` and ``%unload_ext``. An ``instance`` stays yours::

        register_resource("db", factory=lambda: asyncpg.create_pool(dsn))
    """
    current_session().register_resource(name, factory, instance=instance)


def chart(obj: Any) -> Chart:
    """The chart of a WorkflowResult (timeline), a Workflow (graph), a bench report, or an
    ``measure_performance`` / ``assert_converges`` result (samples)."""
    from .charts import chart_for

    return chart_for(obj)


def call_table(calls: Any, resource: str | None = None) -> Any:
    """A stable table of tracked calls, as ``%kailash calls`` shows them: for a test case's calls
    (``call_table(test.get_calls())``) or any sequence of ``CallRecord``."""
    from .tables import CallTable

    return CallTable(calls, resource)


def sanitize_file_path() -> str:
    """Path of the nbval sanitize file shipped with kailash_nb (``--nbval-sanitize-with PATH``)."""
    return str(resources.files(__name__).joinpath("sanitize.cfg"))
