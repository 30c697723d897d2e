"""The notebook's view of the testing kit's tracked mocks (imported only when a mock is made)."""

from __future__ import annotations

from typing import Any

from .errors import MissingDependencyError


def _mocks() -> Any:
    try:
        from kailash_nb.testing import mocks
    except ImportError as exc:  # pragma: no cover - only while the testing kit is missing
        raise MissingDependencyError(
            f"tracked mocks need kailash_nb.testing.mocks, which failed to import: {exc}"
        ) from exc
    return mocks


def create_mock(name: str, tracker: Any | None) -> tuple[Any, Any]:
    """A tracked bare mock named ``name`` and the session's call tracker (created on first use)."""
    mocks = _mocks()
    tracker = tracker if tracker is not None else mocks.CallTracker()
    return mocks.TrackedResource(name, mocks.create_mock(name), tracker), tracker


def calls_of(tracker: Any | None, resource: str | None) -> list[Any]:
    """The call records of the session (of one resource when named), oldest first."""
    if tracker is None:
        return []
    return list(tracker.get_calls(resource))
