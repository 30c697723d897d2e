"""``AsyncWorkflowBuilder``: a fluent, validating way to define a workflow."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable

from .code import compile_node
from .errors import (
    CycleError,
    DuplicateInputError,
    DuplicateNodeError,
    EmptyWorkflowError,
    InvalidInputNameError,
    InvalidNodeIdError,
    InvalidPathError,
    SelfConnectionError,
    UnknownNodeError,
)
from .graph import Connection, Node, Workflow
from .validation import input_name_problem, validate_timeout


class AsyncWorkflowBuilder:
    """Define nodes of async code and the connections between them, then ``build()`` a ``Workflow``.

    >>> wf = (AsyncWorkflowBuilder("demo")
    ...       .add_async_code("producer", "result = {'items': [1, 2, 3]}")
    ...       .add_async_code("consumer", "result = {'total': sum(items)}")
    ...       .add_connection("producer", "items", "consumer", "items")
    ...       .build())
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidNodeIdError(f"workflow name must be a non-empty string, got {name!r}")
        self.name = name
        self._nodes: dict[str, Node] = {}
        self._connections: list[Connection] = []

    def add_async_code(self, node_id: str, code: str, *, timeout: float | None = None,
                       description: str | None = None) -> AsyncWorkflowBuilder:
        """Add a node whose async Python ``code`` assigns its output dict to ``result``.

        The code is compiled here, once: a syntax error is raised now, naming the node and the line.
        """
        _check_node_id(node_id)
        if node_id in self._nodes:
            raise DuplicateNodeError(
                f"workflow {self.name!r} already has a node {node_id!r}; node ids must be unique"
            )
        timeout = validate_timeout(timeout, what=f"node {node_id!r}: timeout")
        self._nodes[node_id] = Node(node_id, compile_node(node_id, code), timeout, description)
        return self

    def add_connection(self, source: str, source_output: str, target: str,
                       target_input: str) -> AsyncWorkflowBuilder:
        """Pass ``source``'s output at path ``source_output`` to ``target`` as variable ``target_input``."""
        label = f"{source}.{source_output} -> {target}.{target_input}"
        if source == target:
            raise SelfConnectionError(f"connection {label}: node {source!r} cannot be connected to itself")
        if not isinstance(source_output, str) or not source_output or any(
                not part for part in source_output.split(".")):
            raise InvalidPathError(
                f"connection {label}: source output must be a dotted path into {source!r}'s result "
                f"such as 'items' or 'data.field', got {source_output!r}"
            )
        problem = input_name_problem(target_input)
        if problem is not None:
            raise InvalidInputNameError(
                f"connection {label}: target input {target_input!r} {problem}; node {target!r} reads it as a variable"
            )
        for existing in self._connections:
            if existing.target == target and existing.target_input == target_input:
                raise DuplicateInputError(
                    f"connection {label}: input {target_input!r} of node {target!r} is already fed by "
                    f"{existing.source}.{existing.source_output}; an input takes one connection"
                )
        self._connections.append(Connection(source, source_output, target, target_input))
        return self

    def build(self) -> Workflow:
        """Check the whole graph (unknown nodes, cycles) and return an immutable ``Workflow``."""
        if not self._nodes:
            raise EmptyWorkflowError(f"workflow {self.name!r} has no nodes; add one with add_async_code()")
        for conn in self._connections:
            for role, node_id in (("source", conn.source), ("target", conn.target)):
                if node_id not in self._nodes:
                    raise UnknownNodeError(
                        f"connection {conn.source}.{conn.source_output} -> {conn.target}.{conn.target_input}: "
                        f"{role} node {node_id!r} does not exist{_did_you_mean(node_id, self._nodes)}; "
                        f"nodes: {', '.join(self._nodes)}"
                    )
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for node_id in self._nodes:
            sorter.add(node_id)
        for conn in self._connections:
            sorter.add(conn.target, conn.source)
        try:
            order = tuple(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = tuple(exc.args[1])
            raise CycleError(
                f"workflow {self.name!r} has a cycle: {' -> '.join(cycle)}; "
                f"remove one of these connections", cycle
            ) from None
        return Workflow.create(self.name, self._nodes, tuple(self._connections), order)


def _check_node_id(node_id: object) -> None:
    if not isinstance(node_id, str) or not node_id.strip():
        raise InvalidNodeIdError(f"node id must be a non-empty string, got {node_id!r}")
    if "." in node_id or node_id != node_id.strip() or any(c.isspace() for c in node_id):
        raise InvalidNodeIdError(
            f"node id {node_id!r} must not contain dots or whitespace (dots separate paths like node.key)"
        )


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    import difflib  # only on this error path: keeps the import of the engine light

    matches = difflib.get_close_matches(name, list(candidates))  # best first
    return f" (did you mean {matches[0]!r}?)" if matches else ""
