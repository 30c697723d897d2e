"""The async workflow engine: build workflows of async code nodes and run them on asyncio.

Standard library only, so that importing it stays fast; the runtime (and with it asyncio) is imported on
first use of ``AsyncLocalRuntime``, ``Deadline`` or ``ResourceRegistry``.
"""

from typing import TYPE_CHECKING, Any

from .builder import AsyncWorkflowBuilder
from .context import allow_await, current_node_id, explain_await_error, running_node
from .errors import (
    ConnectionPathError,
    CycleError,
    DuplicateInputError,
    DuplicateNodeError,
    EmptyWorkflowError,
    EventLoopRunningError,
    InvalidInputNameError,
    InvalidInputsError,
    InvalidNodeIdError,
    InvalidPathError,
    InvalidTimeoutError,
    NodeResultError,
    NodeSyntaxError,
    NodeTimeoutError,
    OutputNotFoundError,
    ResourceNotFoundError,
    SelfConnectionError,
    UnknownNodeError,
    WorkflowError,
    WorkflowValidationError,
)
from .graph import Connection, Node, Workflow
from .result import NodeTiming, WorkflowResult
from .validation import RESERVED_NAMES, input_name_problem, validate_inputs, validate_timeout

if TYPE_CHECKING:  # what type checkers see of the names __getattr__ loads on first use
    from .clock import InvalidAdvanceError, VirtualClock, VirtualTimeError, now, running_clock, virtual_time
    from .deadline import Deadline
    from .resources import ResourceCleanupError, ResourceCleanupTimeoutError, ResourceRegistry
    from .runtime import AsyncLocalRuntime

_LAZY = {
    "InvalidAdvanceError": "clock",
    "VirtualClock": "clock",
    "VirtualTimeError": "clock",
    "now": "clock",
    "running_clock": "clock",
    "virtual_time": "clock",
    "AsyncLocalRuntime": "runtime",
    "Deadline": "deadline",
    "ResourceRegistry": "resources",
    "ResourceCleanupError": "resources",
    "ResourceCleanupTimeoutError": "resources",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

__all__ = [
    "RESERVED_NAMES",
    "AsyncLocalRuntime",
    "AsyncWorkflowBuilder",
    "Connection",
    "ConnectionPathError",
    "CycleError",
    "Deadline",
    "DuplicateInputError",
    "DuplicateNodeError",
    "EmptyWorkflowError",
    "EventLoopRunningError",
    "InvalidAdvanceError",
    "InvalidInputNameError",
    "InvalidInputsError",
    "InvalidNodeIdError",
    "InvalidPathError",
    "InvalidTimeoutError",
    "Node",
    "NodeResultError",
    "NodeSyntaxError",
    "NodeTimeoutError",
    "NodeTiming",
    "OutputNotFoundError",
    "ResourceCleanupError",
    "ResourceCleanupTimeoutError",
    "ResourceNotFoundError",
    "ResourceRegistry",
    "SelfConnectionError",
    "UnknownNodeError",
    "VirtualClock",
    "VirtualTimeError",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "WorkflowValidationError",
    "allow_await",
    "current_node_id",
    "explain_await_error",
    "input_name_problem",
    "now",
    "running_clock",
    "running_node",
    "validate_inputs",
    "validate_timeout",
    "virtual_time",
]
