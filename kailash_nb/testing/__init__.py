"""Testing kit for async workflows: a test case, tracked mocks, assertions, utilities and fixtures.

::

    from kailash_nb.testing import AsyncWorkflowTestCase, AsyncWorkflowFixtures, AsyncAssertions
"""

from .assertions import AsyncAssertions, ConvergenceError, ConvergenceResult, PerformanceResult
from .case import AsyncWorkflowTestCase
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
from .utils import AsyncTestUtils

__all__ = [
    "AsyncAssertions",
    "AsyncTestUtils",
    "AsyncWorkflowFixtures",
    "AsyncWorkflowTestCase",
    "CallRecord",
    "CallTracker",
    "ConvergenceError",
    "ConvergenceResult",
    "HttpCall",
    "HttpStatusError",
    "MemoryCache",
    "MockExhaustedError",
    "MockHttpClient",
    "MockResponse",
    "PerformanceResult",
    "TrackedResource",
    "UnmatchedRequestError",
]
