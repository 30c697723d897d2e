"""Testing kit for async workflows: a test case, tracked mocks, assertions, utilities and fixtures.

::

    from kailash_nb.testing import AsyncWorkflowTestCase, AsyncWorkflowFixtures, AsyncAssertions

    async with virtual_time() as clock:   # sleeps, timeouts, retries and TTLs take no real time
        ...
"""

from kailash_nb.workflow.clock import InvalidAdvanceError, VirtualClock, VirtualTimeError, virtual_time

from .assertions import AsyncAssertions, ConvergenceError, ConvergenceResult, PerformanceResult
from .case import AsyncWorkflowTestCase, use_virtual_time
from .cassettes import Cassette, UnmatchedCallError
from .fixtures import (
    AsyncWorkflowFixtures,
    HttpCall,
    HttpStatusError,
    MemoryCache,
    MockHttpClient,
    MockResponse,
    UnmatchedRequestError,
)
from .mocks import CallRecord, CallTracker, MockExhaustedError, TrackedResource
from .schedules import Race, ScheduleReport, ScheduleTokenError, explore_schedules, replay_schedule
from .utils import AsyncTestUtils

__all__ = [
    "AsyncAssertions",
    "AsyncTestUtils",
    "AsyncWorkflowFixtures",
    "AsyncWorkflowTestCase",
    "CallRecord",
    "CallTracker",
    "Cassette",
    "ConvergenceError",
    "ConvergenceResult",
    "HttpCall",
    "HttpStatusError",
    "InvalidAdvanceError",
    "MemoryCache",
    "MockExhaustedError",
    "MockHttpClient",
    "MockResponse",
    "PerformanceResult",
    "Race",
    "ScheduleReport",
    "ScheduleTokenError",
    "TrackedResource",
    "UnmatchedCallError",
    "UnmatchedRequestError",
    "VirtualClock",
    "VirtualTimeError",
    "explore_schedules",
    "replay_schedule",
    "use_virtual_time",
    "virtual_time",
]
