"""Exceptions of the notebook layer: each one fails the cell with a message that says what to fix.

nbval only fails a cell on a real exception, never on a printed usage line, so every mistake in a
``%kailash`` magic raises one of these.
"""

from __future__ import annotations

from kailash_nb.errors import KailashNbError, WorkflowAssertionError


class KailashMagicError(KailashNbError):
    """Base class of every error raised by the ``%kailash`` magics."""


class MagicUsageError(KailashMagicError, ValueError):
    """A ``%kailash`` line has an unknown subcommand, an unknown option or a malformed value."""


class UnknownWorkflowError(KailashMagicError, LookupError):
    """A subcommand names a workflow that no ``%%kailash`` cell has defined in this session."""


class UnknownNotebookNodeError(KailashMagicError, LookupError):
    """A ``%%kailash`` cell connects an input from a node that its workflow does not have."""


class NodeInUseError(KailashMagicError, ValueError):
    """A node that other nodes take input from would be removed (``%kailash drop``, or a renamed cell)."""


class UnknownResourceError(KailashMagicError, LookupError):
    """A subcommand names a resource or mock that the session does not have."""


class DuplicateResourceError(KailashMagicError, ValueError):
    """A notebook resource or mock is registered under a name the session already uses."""


class InputsError(KailashMagicError, ValueError):
    """``--inputs EXPR`` failed to evaluate, or did not give a mapping."""


class NotAwaitedError(KailashMagicError, RuntimeError):
    """An awaiting subcommand was called where the input transformer could not make it a top-level await."""


class NotebookTestsFailed(WorkflowAssertionError):
    """``%kailash test`` ran tests and at least one failed or errored: fails the cell, so nbval fails."""
