"""The resource registry: named objects that node code gets with ``await get_resource(name)``.

It owns resource lifetimes: factories run lazily, once per registry; ``aclose()`` cleans up what it
created, in reverse creation order, each cleanup bounded by ``cleanup_timeout`` (10 s by default).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from .context import current_node_id
from .deadline import Deadline
from .errors import ResourceNotFoundError, WorkflowError
from .validation import validate_timeout

_CLEANUP_METHODS = ("aclose", "close", "cleanup")

#: Seconds one resource's cleanup may take before it is cancelled and reported as failed.
DEFAULT_CLEANUP_TIMEOUT = 10.0


class ResourceCleanupError(WorkflowError):
    """One or more resources failed to clean up; ``errors`` maps each resource name to its exception."""

    def __init__(self, errors: dict[str, BaseException]) -> None:
        details = "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in errors.items())
        super().__init__(f"cleanup failed for {len(errors)} resource(s): {details}")
        self.errors = errors


class ResourceCleanupTimeoutError(WorkflowError, TimeoutError):
    """A resource's cleanup did not finish within the registry's ``cleanup_timeout`` and was cancelled."""


class ResourceRegistry:
    """Resources by name: ready instances, or factories (sync or async) created on first use.

    ``cleanup_timeout`` bounds each created resource's cleanup in ``aclose()`` (seconds, ``None`` for no
    bound): one that is still running then is cancelled and reported, and the others are cleaned up anyway.
    A cleanup that blocks the event loop cannot be stopped before it returns.
    """

    def __init__(self, cleanup_timeout: float | None = DEFAULT_CLEANUP_TIMEOUT, *,
                 what: str = "ResourceRegistry(cleanup_timeout=...)") -> None:
        self.cleanup_timeout = validate_timeout(cleanup_timeout, what=what)
        self._factories: dict[str, Callable[[], Any]] = {}
        self._instances: dict[str, Any] = {}
        self._owned: list[str] = []  # names created from factories, in creation order
        self._locks: dict[str, asyncio.Lock] = {}

    def register_factory(self, name: str, factory: Callable[[], Any]) -> None:
        """Create the resource with ``factory()`` (awaited if it returns an awaitable) on first use."""
        if not callable(factory):
            raise TypeError(f"resource {name!r}: factory must be callable, got {type(factory).__name__}")
        self._check_free(name)
        self._factories[name] = factory

    def register_instance(self, name: str, instance: Any) -> None:
        """Make ``instance`` available as ``name``; the caller keeps ownership (it is not cleaned up)."""
        self._check_free(name)
        self._instances[name] = instance

    def replace_instance(self, name: str, instance: Any) -> None:
        """Put ``instance`` in the place of the instance registered as ``name`` (a notebook re-creating a
        mock); both stay the caller's. Only a registered instance can be replaced, not a factory's resource."""
        if name not in self._instances or name in self._factories:
            raise ValueError(f"resource {name!r} is not an instance registered with register_instance(); "
                             f"only those can be replaced")
        self._instances[name] = instance

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({*self._factories, *self._instances}))

    def factory(self, name: str) -> Callable[[], Any] | None:
        """The factory ``name`` was registered with, or ``None`` for an instance (or an unknown name)."""
        return self._factories.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._instances or name in self._factories

    async def get(self, name: str) -> Any:
        """The resource ``name``, creating it from its factory the first time."""
        try:
            return self._instances[name]
        except KeyError:
            pass
        if name not in self._factories:
            raise resource_not_found(name, self.names)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._instances:
                value = self._factories[name]()
                if inspect.isawaitable(value):
                    value = await value
                self._instances[name] = value
                self._owned.append(name)
        return self._instances[name]

    async def aclose(self) -> None:
        """Clean up resources created from factories, newest first, each within ``cleanup_timeout``;
        report every failure together (a cleanup that timed out as a ``ResourceCleanupTimeoutError``)."""
        errors: dict[str, BaseException] = {}
        while self._owned:
            name = self._owned.pop()
            instance = self._instances.pop(name)
            try:
                async with Deadline(self.cleanup_timeout, fail_when_blocked=False,
                                    error=partial(_cleanup_timed_out, name, instance)):
                    await cleanup(instance)
            except Exception as exc:  # keep going: every resource gets its chance to clean up
                errors[name] = exc
        if errors:
            raise ResourceCleanupError(errors)

    async def __aenter__(self) -> ResourceRegistry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _check_free(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"resource name must be a non-empty string, got {name!r}")
        if name in self:
            raise ValueError(f"resource {name!r} is already registered; names must be unique")


async def cleanup(instance: Any) -> None:
    """Call the first of ``aclose``/``close``/``cleanup`` that the object's class defines, awaiting it if
    needed. Only methods of the class count, so a mock's auto-created attributes are never called."""
    method_name = _cleanup_method(instance)
    if method_name is not None:
        outcome = getattr(instance, method_name)()
        if inspect.isawaitable(outcome):
            await outcome


def _cleanup_method(instance: Any) -> str | None:
    return next((name for name in _CLEANUP_METHODS if getattr(type(instance), name, None) is not None), None)


def _cleanup_timed_out(name: str, instance: Any, deadline: Deadline) -> ResourceCleanupTimeoutError:
    return ResourceCleanupTimeoutError(
        f"resource {name!r} did not finish its cleanup ({type(instance).__name__}.{_cleanup_method(instance)}()) "
        f"within its cleanup timeout of {deadline.seconds:g} s and was cancelled; fix what it waits for, or give "
        "it longer with cleanup_timeout=")


class MappingResources:
    """Adapter for ``resources={...}``: ready objects, owned by the caller."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._mapping))

    async def get(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise resource_not_found(name, self.names) from None


def resource_not_found(name: str, names: tuple[str, ...]) -> ResourceNotFoundError:
    """The error for an unknown resource: names the asking node and the resources that exist."""
    node = current_node_id()
    who = f"node {node!r} asked for" if node else "asked for"
    known = ", ".join(repr(n) for n in names) or "none"
    return ResourceNotFoundError(
        f"{who} resource {name!r}, but no resource has that name; registered: {known}. "
        f"Register it before the run: resources={{{name!r}: ...}}, or a ResourceRegistry with "
        f"register_instance({name!r}, ...) or register_factory({name!r}, ...)"
    )
