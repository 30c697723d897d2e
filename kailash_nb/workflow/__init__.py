"""The async workflow engine: build workflows of async code nodes and run them on asyncio.

Standard library only, so that importing it stays fast.
"""

from .builder import AsyncWorkflowBuilder
from .context import current_node_id
from .errors import (
    ConnectionPathError,
    CycleError,
    DuplicateInputError,
    DuplicateNodeError,
    EmptyWorkflowError,
    EventLoopRunningError,
    InvalidInputNameError,
    InvalidNodeIdError,
    InvalidPathError,
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
from .resources import ResourceCleanupError, ResourceRegistry
from .result import NodeTiming, WorkflowResult
from .runtime import AsyncLocalRuntime

__all__ = [
    "AsyncLocalRuntime",
    "AsyncWorkflowBuilder",
    "Connection",
    "ConnectionPathError",
    "CycleError",
    "DuplicateInputError",
    "DuplicateNodeError",
    "EmptyWorkflowError",
    "EventLoopRunningError",
    "InvalidInputNameError",
    "InvalidNodeIdError",
    "InvalidPathError",
    "Node",
    "NodeResultError",
    "NodeSyntaxError",
    "NodeTimeoutError",
    "NodeTiming",
    "OutputNotFoundError",
    "ResourceCleanupError",
    "ResourceNotFoundError",
    "ResourceRegistry",
    "SelfConnectionError",
    "UnknownNodeError",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "current_node_id",
]
