"""The immutable workflow: nodes, connections and the execution plan computed once at build time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .code import NodeCode
from .errors import ConnectionPathError


@dataclass(slots=True, frozen=True)
class Node:
    """One unit of async code in a workflow."""

    id: str
    compiled: NodeCode = field(repr=False)
    timeout: float | None = None
    description: str | None = None

    @property
    def source(self) -> str:
        return self.compiled.source

    @property
    def filename(self) -> str:
        return self.compiled.filename


@dataclass(slots=True, frozen=True)
class Connection:
    """``source``'s output at ``source_output`` (a dotted path) becomes variable ``target_input`` of ``target``."""

    source: str
    source_output: str
    target: str
    target_input: str

    def resolve(self, output: Mapping[str, Any]) -> Any:
        """Follow the path into the producer's result; a missing step names the path and what exists."""
        return resolve_path(output, self.source_output, node=self.source, consumer=self)


def resolve_path(output: Mapping[str, Any], path: str, *, node: str, consumer: Connection | None = None) -> Any:
    """Value at dotted ``path`` in ``output``; ``result.`` is an optional prefix (``result`` alone is the
    whole output, unless the output has a key ``result``); list items by index."""
    keys = path.split(".")
    if keys[0] == "result" and "result" not in output:
        if len(keys) == 1:
            return output
        keys = keys[1:]
    value: Any = output
    for depth, key in enumerate(keys):
        if isinstance(value, Mapping):
            if key in value:
                value = value[key]
                continue
            available = ", ".join(repr(k) for k in value) or "none"
        elif isinstance(value, (list, tuple)):
            index = _index(key)
            if index is not None and -len(value) <= index < len(value):
                value = value[index]
                continue
            available = f"indexes 0..{len(value) - 1}" if value else "none (empty list)"
        else:
            available = f"none: it is a {type(value).__name__}, not a dict"
        at = ".".join(keys[: depth + 1])
        where = f"{at!r} of path {path!r}" if at != path else f"{path!r}"
        who = f"connection {node}.{path} -> {consumer.target}.{consumer.target_input}: " if consumer else ""
        inside = f" under {'.'.join(keys[:depth])!r}" if depth else ""
        raise ConnectionPathError(
            f"{who}node {node!r} produced no {where}; keys{inside}: {available}"
        )
    return value


def _index(key: str) -> int | None:
    """``key`` as a list index (``"3"``, ``"-1"``), or None when it is not written as an integer."""
    digits = key[1:] if key.startswith("-") else key
    return int(key) if digits.isdecimal() else None


@dataclass(slots=True, frozen=True, eq=False)
class Workflow:
    """A built, immutable workflow. Build it with ``AsyncWorkflowBuilder``; run it with ``AsyncLocalRuntime``.

    ``order`` is a topological order of the node ids (the plan order); ``roots`` the nodes with no incoming
    connection; ``rank`` each node's position in ``order``.
    """

    name: str
    nodes: Mapping[str, Node]
    connections: tuple[Connection, ...]
    order: tuple[str, ...]
    inbound: Mapping[str, tuple[Connection, ...]] = field(repr=False)
    successors: Mapping[str, tuple[str, ...]] = field(repr=False)
    predecessors: Mapping[str, tuple[str, ...]] = field(repr=False)
    roots: tuple[str, ...] = field(repr=False, default=())
    indegree: Mapping[str, int] = field(repr=False, default_factory=dict)
    rank: Mapping[str, int] = field(repr=False, default_factory=dict)

    @classmethod
    def create(cls, name: str, nodes: Mapping[str, Node], connections: tuple[Connection, ...],
               order: tuple[str, ...]) -> Workflow:
        inbound: dict[str, list[Connection]] = {node_id: [] for node_id in nodes}
        successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
        predecessors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
        for conn in connections:
            inbound[conn.target].append(conn)
            if conn.target not in successors[conn.source]:
                successors[conn.source].append(conn.target)
                predecessors[conn.target].append(conn.source)
        return cls(
            name=name,
            nodes=MappingProxyType(dict(nodes)),
            connections=connections,
            order=order,
            inbound=MappingProxyType({k: tuple(v) for k, v in inbound.items()}),
            successors=MappingProxyType({k: tuple(v) for k, v in successors.items()}),
            predecessors=MappingProxyType({k: tuple(v) for k, v in predecessors.items()}),
            roots=tuple(n for n in order if not predecessors[n]),
            indegree=MappingProxyType({k: len(v) for k, v in predecessors.items()}),
            rank=MappingProxyType({node_id: position for position, node_id in enumerate(order)}),
        )

    def __repr__(self) -> str:
        edges = ", ".join(f"{c.source}.{c.source_output}->{c.target}.{c.target_input}" for c in self.connections)
        return f"Workflow({self.name!r}, nodes=[{', '.join(self.order)}], connections=[{edges}])"
