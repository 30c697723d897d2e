"""The cassette file: what it holds, how it is read (every problem named) and written (the same bytes for the
same calls).

::

    {
      "kailash_nb_cassette": 1,
      "resources": {
        "db": {                                     resource
          "extract": [                              node (calls made outside any node: "<test>")
            {"method": "acquire", "kind": "call", "args": [], "kwargs": {}, "returns": "handle"},
            {"on": "extract#0", "method": "fetch", "kind": "await",
             "args": ["select 1"], "kwargs": {}, "result": [...]},
            {"on": "extract#0", "method": "status", "kind": "get", "result": 200}
          ]
        }
      }
    }

Each node's calls are in the order the node made them, so parallel nodes give the same file whatever order
they ran in. ``kind`` is ``call`` (a plain result), ``await`` (the call's awaited result) or ``get`` (an
attribute read). A call has one outcome: ``result`` (a value), ``raised`` (an exception) or ``returns``:
``handle`` (an object whose own calls follow with ``"on": "<node>#<index of this call>"``), ``self``, or
``nothing``: the call never completed (its coroutine was never awaited, or it was cancelled).
Such an object passed back as an argument (``pool.release(conn)``) is written as
``{"$type": "handle", "value": "<node>#<index>"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kailash_nb.errors import KailashNbError

from .encoder import Encoder

__all__ = ["FORMAT_VERSION", "NO_NODE", "CassetteFileError", "CassetteVersionError", "Entry", "Tape", "dump",
           "load"]

#: The version of the file format this kit writes, and the newest it reads.
FORMAT_VERSION = 1
#: The node name under which calls made outside any workflow node (by the test itself) are kept.
NO_NODE = "<test>"
_KINDS = ("call", "await", "get")
_RETURNS = ("handle", "self", "nothing")


class CassetteFileError(KailashNbError, ValueError):
    """A cassette file that cannot be read: not JSON, or not the shape a cassette has. The message names the
    file and the place (line and column, or the record) that is wrong."""


class CassetteVersionError(CassetteFileError):
    """A cassette written by a newer version of kailash_nb, whose format this one does not know."""


@dataclass(slots=True)
class Entry:
    """One recorded call (or attribute read) on a resource or on an object one of its calls returned."""

    on: str | None
    method: str
    kind: str
    args: list[Any]
    kwargs: dict[str, Any]
    key: str
    result: Any = None
    outcome: str = "nothing"  # "result", "raised", "handle", "self"; "nothing" until the call completes
    handle: str = ""  # the id that calls on the object this call returned refer to: "<node>#<index>"
    type: str = ""  # the class of the object the call returned ("returns": "handle"), for reprs and readers

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "kind": self.kind}
        if self.on is not None:
            data["on"] = self.on
        if self.kind != "get":
            data["args"], data["kwargs"] = self.args, self.kwargs
        if self.outcome in _RETURNS:
            data["returns"] = self.outcome
            if self.outcome == "handle" and self.type:
                data["type"] = self.type
        else:
            data[self.outcome] = self.result
        return data


def call_key(on: str | None, method: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """What replay matches a call by: its object, method and encoded arguments."""
    return Encoder.key([on, method, args, kwargs])


#: resource -> node -> the node's calls on it, in order
Tape = dict[str, dict[str, list[Entry]]]


def load(path: Path, raw: bytes | None = None) -> Tape:
    """Read the cassette at ``path`` (or parse ``raw``, its bytes, already read); :class:`CassetteFileError`
    names the file and what is wrong."""
    try:
        text = (path.read_bytes() if raw is None else raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise CassetteFileError(f"cassette {path} is not UTF-8 text ({error.reason} at byte {error.start}); "
                                "re-record it with mode='all'") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CassetteFileError(f"cassette {path} is not valid JSON: {error.msg} at line {error.lineno}, column "
                                f"{error.colno}; fix it, or delete it and record again") from None
    return _read(path, data)


def _read(path: Path, data: Any) -> Tape:
    def wrong(where: str, problem: str) -> CassetteFileError:
        return CassetteFileError(f"cassette {path}: {where} {problem}; fix it, or delete the file and record "
                                 "again")

    if not isinstance(data, dict):
        raise wrong("the file", f"holds a JSON {type(data).__name__}, not an object with "
                    "'kailash_nb_cassette' and 'resources'")
    version = data.get("kailash_nb_cassette")
    if type(version) is not int:
        raise wrong("the file", "has no format version ('kailash_nb_cassette': an integer)")
    if version > FORMAT_VERSION:
        raise CassetteVersionError(f"cassette {path} was written in format version {version}, but this "
                                   f"kailash_nb reads versions up to {FORMAT_VERSION}: upgrade kailash_nb, or "
                                   "re-record the cassette with mode='all'")
    resources = data.get("resources")
    if not isinstance(resources, dict):
        raise wrong("the file", "has no 'resources' object")
    tape: Tape = {}
    for resource, nodes in resources.items():
        if not isinstance(nodes, dict):
            raise wrong(f"resources.{resource}", "must be an object of nodes")
        tape[resource] = {}
        for node, calls in nodes.items():
            where = f"resources.{resource}.{node}"
            if not isinstance(calls, list):
                raise wrong(where, "must be a list of calls")
            tape[resource][node] = [_entry(record, f"{where}[{i}]", f"{node}#{i}", wrong)
                                    for i, record in enumerate(calls)]
    return tape


def _entry(record: Any, where: str, handle: str, wrong: Any) -> Entry:
    if not isinstance(record, dict):
        raise wrong(where, "must be an object")
    method, kind, on = record.get("method"), record.get("kind"), record.get("on")
    if not isinstance(method, str):
        raise wrong(where, "has no 'method' (a string)")
    if kind not in _KINDS:
        raise wrong(where, f"has 'kind' {kind!r}; expected one of {', '.join(_KINDS)}")
    if on is not None and not isinstance(on, str):
        raise wrong(where, "has an 'on' that is not a string")
    args, kwargs = record.get("args", []), record.get("kwargs", {})
    if not isinstance(args, list):
        raise wrong(where, "has 'args' that is not a list")
    if not isinstance(kwargs, dict):
        raise wrong(where, "has 'kwargs' that is not an object")
    outcomes = [name for name in ("result", "raised", "returns") if name in record]
    if len(outcomes) != 1:
        raise wrong(where, "must have exactly one of 'result', 'raised' or 'returns'")
    entry = Entry(on, method, kind, args, kwargs, call_key(on, method, args, kwargs), handle=handle)
    if outcomes[0] == "returns":
        if record["returns"] not in _RETURNS:
            raise wrong(where, f"has 'returns' {record['returns']!r}; expected 'handle', 'self' or 'nothing'")
        entry.outcome = record["returns"]
        returned = record.get("type", "")
        if not isinstance(returned, str):
            raise wrong(where, "has a 'type' that is not a string")
        entry.type = returned
    else:
        entry.outcome, entry.result = outcomes[0], record[outcomes[0]]
        if entry.outcome == "raised" and not (isinstance(entry.result, dict) and entry.result.get("$type") ==
                                              "exception" and "class" in entry.result and "message" in entry.result):
            raise wrong(where, "has a 'raised' that is not an exception ({'$type': 'exception', 'class', "
                        "'message'})")
    return entry


def dump(tape: Tape) -> str:
    """The file's text: resources and nodes sorted (so that parallel nodes give the same file whatever order
    they ran in), two-space indent, a newline at the end; recorded values keep their own field order, which
    replay gives back."""
    resources = {resource: {node: [entry.to_json() for entry in nodes[node]] for node in sorted(nodes)
                            if nodes[node]}
                 for resource, nodes in sorted(tape.items())}
    document = {"kailash_nb_cassette": FORMAT_VERSION, "resources": resources}
    return _pretty(document, 0) + "\n"


#: A list or object whose one-line form fits in this many characters (its indent included) stays on one line.
_LINE = 110


def _pretty(value: Any, indent: int) -> str:
    """JSON as ``json.dumps(indent=2)`` writes it, except that a container short enough stays on one line,
    so that a recorded row or argument list reads as one line of the file (and of its diff)."""
    return _render(value, indent)[1]


def _render(value: Any, indent: int) -> tuple[str, str]:
    """``value`` as one line (``json.dumps``'s own spacing) and as laid out at ``indent``; each part is
    encoded once, the one-line forms of the containers built from their items'."""
    if not isinstance(value, (dict, list)) or not value:
        flat = json.dumps(value, ensure_ascii=False)
        return flat, flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        keys = [json.dumps(key, ensure_ascii=False) for key in value]
        items = [_render(item, indent + 2) for item in value.values()]
        flat = "{" + ", ".join(f"{key}: {item[0]}" for key, item in zip(keys, items, strict=True)) + "}"
        if indent + len(flat) <= _LINE:
            return flat, flat
        lines = [f"{inner}{key}: {item[1]}" for key, item in zip(keys, items, strict=True)]
        return flat, "{\n" + ",\n".join(lines) + "\n" + " " * indent + "}"
    items = [_render(item, indent + 2) for item in value]
    flat = "[" + ", ".join(item[0] for item in items) + "]"
    if indent + len(flat) <= _LINE:
        return flat, flat
    return flat, "[\n" + ",\n".join(inner + item[1] for item in items) + "\n" + " " * indent + "]"
