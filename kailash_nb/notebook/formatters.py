"""Register the rich displays of the engine's ``WorkflowResult`` and ``Workflow`` with a shell.

The engine is stdlib-only and knows nothing about pandas or IPython, so its classes get their
``text/html`` from here, through the shell's mimebundle formatter, and lose it on unload. A
``ScheduleReport`` with a failure shows as two outputs, its table and then the timeline of its first
failing schedule (registered by name: the testing kit is not imported until a report is shown).
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


_SCHEDULE_REPORT = ("kailash_nb.testing.schedules", "ScheduleReport")


def show_schedule_report(report: Any) -> None:
    """The report's table and races, then (when a schedule failed) the timeline of the first failing one."""
    from IPython.display import display

    display({"text/plain": str(report), "text/html": report._repr_html_()}, raw=True)
    if report.first_failure is not None:
        from .charts import schedule_timeline

        display(schedule_timeline(report))


def register(ip: InteractiveShell) -> None:
    formatter = _mimebundle_formatter(ip)
    for cls, printer in _printers().items():
        formatter.for_type(cls, printer)
    _display_formatter(ip).for_type_by_name(*_SCHEDULE_REPORT, show_schedule_report)


def unregister(ip: InteractiveShell) -> None:
    formatter = _mimebundle_formatter(ip)
    for cls in _printers():
        formatter.pop(cls, None)
    _display_formatter(ip).pop(".".join(_SCHEDULE_REPORT), None)


def _display_formatter(ip: InteractiveShell) -> Any:
    assert ip.display_formatter is not None, "an initialised shell has a display formatter"
    return ip.display_formatter.ipython_display_formatter


def _mimebundle_formatter(ip: InteractiveShell) -> Any:
    assert ip.display_formatter is not None, "an initialised shell has a display formatter"
    return ip.display_formatter.mimebundle_formatter
