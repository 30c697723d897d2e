"""Exceptions of the workflow engine: one class per mistake, each message says what and how to fix."""

from __future__ import annotations

from kailash_nb.errors import KailashNbError


def add_note(error: BaseException, note: str) -> None:
    """Attach ``note`` to ``error`` (``BaseException.add_note``) unless it already carries that note, so that
    code which re-raises or re-reports the same exception does not repeat itself."""
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)


class WorkflowError(KailashNbError):
    """Base class of every error raised by kailash_nb.workflow (the tree: ``kailash_nb.errors``)."""


class WorkflowValidationError(WorkflowError, ValueError):
    """A workflow definition is wrong; raised by the builder, never during a run."""


class InvalidNodeIdError(WorkflowValidationError):
    """A node id is empty, not a string, or contains characters reserved for paths."""


class DuplicateNodeError(WorkflowValidationError):
    """Two nodes were added with the same id."""


class NodeSyntaxError(WorkflowValidationError):
    """Node code does not compile; carries the node id, the line number and the offending line."""

    def __init__(self, message: str, *, node_id: str, lineno: int | None, line: str | None) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.lineno = lineno
        self.line = line


class UnknownNodeError(WorkflowValidationError):
    """A connection names a node that the workflow does not have."""


class SelfConnectionError(WorkflowValidationError):
    """A connection goes from a node to itself."""


class CycleError(WorkflowValidationError):
    """The connections form a cycle; ``nodes`` lists it in order, first node repeated at the end."""

    def __init__(self, message: str, nodes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.nodes = nodes


class DuplicateInputError(WorkflowValidationError):
    """Two connections feed the same input of the same node."""


class InvalidInputNameError(WorkflowValidationError):
    """A connection's target input cannot be a Python variable name in the node's code."""


class InvalidPathError(WorkflowValidationError):
    """A connection's source output is not a dotted path like ``items`` or ``data.field``."""


class EmptyWorkflowError(WorkflowValidationError):
    """``build()`` was called before any node was added."""


class InvalidTimeoutError(WorkflowError, ValueError):
    """A timeout is not a positive, finite number of seconds (or None)."""


class InvalidInputsError(WorkflowError, ValueError):
    """Workflow inputs are not a mapping of variable names; refused before any node runs."""


class NodeResultError(WorkflowError, TypeError):
    """Node code finished without assigning a dict to ``result``."""


class ConnectionPathError(WorkflowError, LookupError):
    """A connection's path does not exist in the result its producer returned."""


class ResourceNotFoundError(WorkflowError, LookupError):
    """``get_resource(name)`` asked for a name that no resource is registered under."""


class NodeTimeoutError(WorkflowError, TimeoutError):
    """A node ran past its own timeout, or was still running when the run's timeout expired."""


class OutputNotFoundError(WorkflowError, LookupError):
    """``WorkflowResult.get_output`` asked for a node or key that the run did not produce."""


class EventLoopRunningError(WorkflowError, RuntimeError):
    """The synchronous ``execute()`` was called where an event loop is already running."""
