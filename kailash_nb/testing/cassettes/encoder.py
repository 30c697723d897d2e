"""How a cassette writes values as JSON, and reads them back as equal values.

JSON's own values (``None``, ``bool``, ``int``, ``str``, finite ``float``, lists, dicts with string keys)
are written as themselves. Every other value the encoder knows is written as an object tagged with
``"$type"``, and read back to an equal value::

    tuple      {"$type": "tuple", "items": [...]}
    bytes      {"$type": "bytes", "value": {"text": "..."}}   UTF-8 text as text, anything else as
               {"$type": "bytes", "value": {"base64": "..."}}  base64 (a streamed line stays readable)
    datetime   {"$type": "datetime", "value": "2024-01-02T03:04:05+00:00"}   also date, time, timedelta
    Decimal    {"$type": "decimal", "value": "1.10"}          also UUID, set, frozenset, ipaddress types
    record     {"$type": "record", "fields": [["id", 1], ...]}    an asyncpg Record: read back as a
                                                                    ReplayedRecord (r["id"], r[0], dict(r))
    exception  {"$type": "exception", "class": "builtins.ValueError", "args": [...], "message": "...",
                "attributes": {"detail": "...", ...}}    its public attributes that can be written
                                                         (asyncpg's detail, constraint_name...), when it has any
    dict       {"$type": "dict", "items": [[key, value], ...]}    keys that are not strings, or "$type"

A namedtuple whose class can be imported by its name (asyncpg's ``ServerVersion`` and ``Attribute``) is
written as ``{"$type": "namedtuple", "class": "asyncpg.types.ServerVersion", "items": [...]}`` and read back
as itself (``v.major``); when the class cannot be imported, as the plain tuple it equals. Another subclass of
``dict``, ``list``, ``tuple``, ``str``, ``int`` or ``float`` without a registration of its own (an
``OrderedDict``, an ``IntEnum``, multidict's ``istr``) is written as that base type, and read back as one, which
it equals.

Arguments of a call are written only to match calls by, never read back: one of a type the encoder does
not know is written by its class and ``repr`` (``timeout=aiohttp.ClientTimeout(total=5)``, a ``yarl.URL``)
when that repr is stable, a mapping that is not a dict (``CIMultiDict`` headers) by its items::

    {"$type": "object", "class": "aiohttp.client.ClientTimeout", "repr": "ClientTimeout(total=5, ...)"}
    {"$type": "mapping", "class": "multidict._multidict.CIMultiDict", "items": [["Accept", "*/*"]]}

Add a type with :meth:`Encoder.register` (a name, a function to a JSON-able value, and one back)::

    encoder = Encoder().register(Money, "money", lambda m: [m.amount, m.currency],
                                 lambda v: Money(*v))
    Cassette(path, encoder=encoder)

Values under a key (a keyword argument, a dict field, a record's field, a ``(name, value)`` pair as in
``headers=[("Authorization", ...)]``) whose name matches a secret pattern are written as :data:`SECRET`
instead, whatever they are. Secrets are found by name only: a positional argument, a secret inside a string
(a URL's ``user:password@``, a query's text) or under a name no pattern matches is written as it is.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import datetime as dt
import importlib
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from kailash_nb.errors import KailashNbError

__all__ = ["DEFAULT_SECRETS", "SECRET", "Encoder", "RecordedError", "ReplayedRecord", "UnencodableValueError"]

#: What a secret value is written as, and compared as on replay.
SECRET = "<secret>"
#: Argument and field names (regular expressions, matched case-insensitively anywhere in the name) whose
#: values are written as :data:`SECRET`.
DEFAULT_SECRETS = ("password", "passwd", "secret", "token", "authorization", "api_key", "apikey", "api-key",
                   "dsn", "cookie", "(^|[-_])auth$")  # auth=: httpx's (user, password), aiohttp's BasicAuth

_TAG = "$type"


class UnencodableValueError(KailashNbError, TypeError):
    """A value that a cassette's encoder cannot write: register its type with ``Encoder.register``."""


class RecordedError(KailashNbError):
    """Stands in, on replay, for a recorded exception whose class cannot be imported or rebuilt: its
    message is ``ClassName: message``, and ``recorded_class`` names the original class."""

    def __init__(self, recorded_class: str, message: str) -> None:
        super().__init__(f"{recorded_class.rpartition('.')[2]}: {message}")
        self.recorded_class = recorded_class


class ReplayedRecord(Mapping[str, Any]):
    """A database row read back from a cassette, used as an asyncpg ``Record`` is: ``r["col"]``, ``r[0]``,
    ``r.get("col")``, ``dict(r)``, ``r.keys()``/``values()``/``items()``, ``len(r)``, ``"col" in r``, and
    iterating it (``tuple(r)``, ``a, b = r``) gives its values, as a ``Record``'s does; it equals another
    row (a ``Record`` too) with the same fields, and a tuple of its values."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, Any]]) -> None:
        self._fields = tuple(fields)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            values = tuple(value for _, value in self._fields)
            return values[key]
        for name, value in self._fields:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        # as an asyncpg Record: its values (``tuple(r)``, ``a, b = r``); ``dict(r)`` uses keys()
        return (value for _, value in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, key: object) -> bool:
        return any(name == key for name, _ in self._fields)

    def keys(self) -> Any:
        return [name for name, _ in self._fields]

    def values(self) -> Any:
        return [value for _, value in self._fields]

    def items(self) -> Any:
        return list(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):
            return tuple(self.values()) == other
        if _is_record(other) or isinstance(other, ReplayedRecord):
            return list(self.items()) == list(other.items())  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return "<Record " + " ".join(f"{name}={value!r}" for name, value in self._fields) + ">"


def _is_record(value: Any) -> bool:
    kind = type(value)
    known = _RECORD_TYPES.get(kind)
    if known is None:
        known = _RECORD_TYPES[kind] = kind.__name__ == "Record" and kind.__module__.startswith("asyncpg")
    return known


_RECORD_TYPES: dict[type, bool] = {}  # asyncpg is not imported: its Record type is recognised by name


def _named_tuple_class(kind: type) -> str | None:
    """``module.Name`` of a namedtuple class that can be imported back by that name, else None (a class
    made in a function: written as a plain tuple, which it equals)."""
    if kind not in _NAMED_TUPLES:
        qualified = f"{kind.__module__}.{kind.__qualname__}"
        _NAMED_TUPLES[kind] = qualified if hasattr(kind, "_fields") and _import(qualified) is kind else None
    return _NAMED_TUPLES[kind]


_NAMED_TUPLES: dict[type, str | None] = {}


_Encode = Callable[[Any], Any]
_Decode = Callable[[Any], Any]


class Encoder:
    """Writes values as JSON-able data and reads them back; see the module's documentation for the forms.

    ``secrets`` are extra name patterns (regular expressions) to :data:`DEFAULT_SECRETS`.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._by_type: dict[type, tuple[str, _Encode]] = {}
        self._by_name: dict[str, _Decode] = {}
        self._secret = re.compile("|".join(f"(?:{p})" for p in (*DEFAULT_SECRETS, *secrets)), re.IGNORECASE)
        self._secret_names: dict[str, bool] = {}
        for kind, name, encode, decode in _BUILT_IN:
            self.register(kind, name, encode, decode)

    def register(self, kind: type, name: str, encode: _Encode, decode: _Decode) -> Encoder:
        """Write values of ``kind`` (and its subclasses) as ``{"$type": name, "value": encode(v)}``, read back
        with ``decode(value)``. Returns the encoder, so that registrations chain."""
        if not isinstance(kind, type) or not isinstance(name, str) or not name:
            raise TypeError(f"Encoder.register(kind, name, encode, decode) takes a type and a name, got "
                            f"{kind!r}, {name!r}")
        self._by_type[kind] = (name, encode)
        self._by_name[name] = decode
        return self

    def with_secrets(self, patterns: Iterable[str]) -> Encoder:
        """A copy that also treats names matching ``patterns`` as secret."""
        copy = Encoder.__new__(Encoder)
        copy._by_type, copy._by_name = dict(self._by_type), dict(self._by_name)
        copy._secret = re.compile("|".join(f"(?:{p})" for p in (self._secret.pattern, *patterns)), re.IGNORECASE)
        copy._secret_names = {}
        return copy

    def is_secret(self, name: str) -> bool:
        known = self._secret_names.get(name)
        if known is None:
            known = self._secret_names[name] = bool(self._secret.search(name))
        return known

    def _pair(self, item: Any, where: str) -> Any:
        """An item of a list of (name, value) pairs: the value is a secret when the name is."""
        if type(item) in _PAIRS and len(item) == 2 and isinstance(item[0], _NAME_TYPES) and self._secret_name(item[0]):
            name = self.encode(item[0], where)
            return [name, SECRET] if type(item) is list else {_TAG: "tuple", "items": [name, SECRET]}
        return self.encode(item, where)

    def _secret_name(self, name: str | bytes) -> bool:
        """Whether a field name is secret: a str, or bytes (a Redis hash's field, a raw HTTP header's name)."""
        return self.is_secret(str.__str__(name) if isinstance(name, str) else name.decode("utf-8", "replace"))

    def knows(self, value: Any) -> bool:
        """True when ``value`` is data the encoder writes (rather than an object to wrap as a handle)."""
        return (value is None or type(value) in _PLAIN or isinstance(value, _DATA)
                or _is_record(value) or self._find(type(value)) is not None)

    # -- writing -------------------------------------------------------------------------------------------
    def encode(self, value: Any, where: str = "value") -> Any:
        """``value`` as JSON-able data; :class:`UnencodableValueError` names ``where`` and the type."""
        kind = type(value)
        if value is None or kind is str or kind is bool or kind is int:
            return value
        if kind is float:
            return value if math.isfinite(value) else {_TAG: "float", "value": repr(value)}
        if kind is list:
            # perhaps (name, value) pairs, as headers=[("Authorization", ...)]
            encode = self._pair if value and type(value[0]) in _PAIRS else self.encode
            try:
                return [encode(item, where) for item in value]
            except UnencodableValueError:
                return [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if kind is dict:
            if _TAG not in value:
                encoded: dict[str, Any] = {}
                for key, item in value.items():
                    if type(key) is not str:
                        break
                    try:
                        encoded[key] = SECRET if self.is_secret(key) else self.encode(item, where)
                    except UnencodableValueError:  # again, to name the place: built only when needed
                        encoded[key] = self.encode(item, f"{where}[{key!r}]")
                else:
                    return encoded
            return {_TAG: "dict", "items": [[self.encode(k, f"{where} key"), self._field(k, v, where)]
                                            for k, v in value.items()]}
        if kind is tuple:
            encode = self._pair if value and type(value[0]) in _PAIRS else self.encode
            return {_TAG: "tuple", "items": [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
        if _is_record(value):
            is_secret, encode_item = self.is_secret, self.encode
            return {_TAG: "record", "fields": [[key, SECRET if is_secret(key) else encode_item(item, where)]
                                               for key, item in value.items()]}
        if isinstance(value, ReplayedRecord):
            return {_TAG: "record", "fields": [[key, self._field(key, item, where)] for key, item in value.items()]}
        if isinstance(value, BaseException):
            return self._exception(value, where)
        found = self._find(kind)
        if found is not None:
            name, to_data = found
            return {_TAG: name, "value": self.encode(to_data(value), where and f"{where} ({name})")}
        # subclasses of the containers (a namedtuple, an OrderedDict) and of str, int and float (a StrEnum,
        # multidict's istr header name) come back as the base type, which they equal
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, float):
            return self.encode(float.__float__(value), where)
        if isinstance(value, dict):
            return self.encode(dict(value), where)
        if isinstance(value, list):
            return self.encode(list(value), where)
        if isinstance(value, tuple):
            named = _named_tuple_class(kind)
            if named is not None:  # asyncpg's ServerVersion, Attribute: read back as themselves (.major, .name)
                return {_TAG: "namedtuple", "class": named,
                        "items": [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
            return self.encode(tuple(value), where)
        raise UnencodableValueError(f"{where} is a {kind.__module__}.{kind.__qualname__}, which the cassette's "
                                    "encoder cannot write; register it: Encoder().register(its type, name, "
                                    "encode, decode)")

    def encode_argument(self, value: Any, where: str) -> Any:
        """An argument of a call, written only to match calls by (never read back): a value of a type the
        encoder cannot write is written by its class and ``repr`` when that is stable (no memory address),
        as ``timeout=aiohttp.ClientTimeout(total=5)`` or a ``yarl.URL``; a mapping (``CIMultiDict`` headers)
        by its items, secrets hidden; a ``repr`` that names a secret (``password=...``) as :data:`SECRET`."""
        try:
            return self.encode(value, where)
        except UnencodableValueError:
            kind = type(value)
            qualified = f"{kind.__module__}.{kind.__qualname__}"
            if isinstance(value, Mapping):
                return {_TAG: "mapping", "class": qualified, "items": [
                    [self.encode_argument(key, where), SECRET if isinstance(key, _NAME_TYPES) and self._secret_name(key)
                     else self.encode_argument(item, where)] for key, item in value.items()]}
            text = repr(value)
            if " at 0x" in text:  # object's own repr: a memory address, different on every run
                raise
            return {_TAG: "object", "class": qualified, "repr": SECRET if self._secret.search(text) else text}

    def _field(self, key: Any, value: Any, where: str) -> Any:
        if isinstance(key, _NAME_TYPES) and self._secret_name(key):
            return SECRET
        return self.encode(value, f"{where}[{key!r}]")

    def _exception(self, error: BaseException, where: str) -> dict[str, Any]:
        kind = type(error)
        try:
            args = self.encode(list(error.args), f"{where} ({kind.__name__} arguments)")
        except UnencodableValueError:
            args = None  # rebuilt from the message alone
        data = {_TAG: "exception", "class": f"{kind.__module__}.{kind.__qualname__}", "args": args,
                "message": str(error)}
        attributes = self._exception_attributes(error, where)
        if attributes:
            data["attributes"] = attributes
        return data

    def _exception_attributes(self, error: BaseException, where: str) -> dict[str, Any]:
        """The exception's own public attributes (asyncpg sets ``detail``, ``constraint_name``... on the
        instance), those the encoder can write; the others (an HTTP error's ``response``) are left out."""
        kept: dict[str, Any] = {}
        for name, value in getattr(error, "__dict__", {}).items():
            if name.startswith("_") or isinstance(value, BaseException) or not self.knows(value):
                continue
            try:
                kept[name] = self._field(name, value, where)
            except UnencodableValueError:
                continue
        return kept

    def _find(self, kind: type) -> tuple[str, _Encode] | None:
        found = self._by_type.get(kind)
        if found is None:
            for base in kind.__mro__[1:]:
                found = self._by_type.get(base)
                if found is not None:
                    break
        return found

    # -- reading -------------------------------------------------------------------------------------------
    def decode(self, data: Any) -> Any:
        """The value ``data`` was written from (a fresh copy on every call)."""
        if type(data) is list:
            return [self.decode(item) for item in data]
        if type(data) is not dict:
            return data
        tag = data.get(_TAG)
        if tag is None:
            return {key: self.decode(item) for key, item in data.items()}
        if tag == "tuple":
            return tuple(self.decode(item) for item in data["items"])
        if tag == "namedtuple":
            items = [self.decode(item) for item in data["items"]]
            kind = _import(str(data["class"]))
            if isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields"):
                with contextlib.suppress(Exception):
                    return kind(*items)
            return tuple(items)  # the class is gone or changed: the plain tuple, which it equalled
        if tag == "dict":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in data["items"]}
        if tag == "record":
            return ReplayedRecord((name, self.decode(value)) for name, value in data["fields"])
        if tag == "exception":
            return self.decode_exception(data)
        if tag == "float":
            return float(data["value"])
        decode = self._by_name.get(tag)
        if decode is None:
            raise ValueError(f"unknown value type {tag!r}: register it with Encoder().register(...)")
        return decode(self.decode(data["value"]))

    def decode_exception(self, data: Mapping[str, Any]) -> BaseException:
        """The recorded exception as its own class when it can be imported and rebuilt, else a
        :class:`RecordedError` with the same message; with its recorded attributes either way."""
        qualified, message = str(data["class"]), str(data["message"])
        args = data.get("args")
        attributes = data.get("attributes")
        fields = {name: self.decode(value) for name, value in attributes.items()} \
            if isinstance(attributes, dict) else {}

        def with_fields(error: BaseException) -> BaseException:
            for name, value in fields.items():
                with contextlib.suppress(AttributeError):  # read-only: the rebuilt exception keeps its own
                    setattr(error, name, value)
            return error

        kind = _import(qualified)
        if kind is not None and isinstance(kind, type) and issubclass(kind, BaseException):
            for attempt in ((self.decode(args),) if args is not None else ()) + ([message],):
                try:
                    error = with_fields(kind(*attempt))  # before str(): asyncpg's message shows its detail
                except Exception:
                    continue
                if str(error) == message:
                    return error
            try:  # a class whose __init__ wants other arguments: build it without calling __init__
                error = kind.__new__(kind)
                error.args = (message,)
                if str(error) == message:
                    return with_fields(error)
            except Exception:
                pass
        return with_fields(RecordedError(qualified, message))

    # -- canonical text, for matching calls ------------------------------------------------------------------
    @staticmethod
    def key(data: Any) -> str:
        """One string per encoded value, equal for equal values: what replay matches calls by."""
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _import(qualified: str) -> Any:
    module, _, name = qualified.rpartition(".")
    if module == "builtins":
        return getattr(builtins, name, None)
    try:
        target: Any = importlib.import_module(module)
    except Exception:
        return None
    return getattr(target, name, None)


_PLAIN = frozenset({str, bool, int, float})
_NAME_TYPES = (str, bytes)  # field names that are checked for secrets (subclasses too: multidict's istr)
_PAIRS = frozenset({tuple, list})  # what a (name, value) pair in a list of them is
_DATA = (str, int, float, list, dict, tuple, BaseException)  # and their subclasses
# Characters that keep bytes from being written as text: controls other than tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _bytes_data(value: bytes) -> dict[str, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not _CONTROL.search(text):
        return {"text": text}
    return {"base64": base64.b64encode(value).decode("ascii")}


def _bytes_value(data: Any) -> bytes:
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        return data["text"].encode("utf-8")
    if isinstance(data, dict) and isinstance(data.get("base64"), str):
        return base64.b64decode(data["base64"], validate=True)
    raise ValueError("bytes must be {'text': str} or {'base64': str}")


_BUILT_IN: tuple[tuple[type, str, _Encode, _Decode], ...] = (
    (bytes, "bytes", lambda v: _bytes_data(v), lambda v: _bytes_value(v)),
    (bytearray, "bytearray", lambda v: _bytes_data(bytes(v)), lambda v: bytearray(_bytes_value(v))),
    (dt.datetime, "datetime", dt.datetime.isoformat, dt.datetime.fromisoformat),
    (dt.date, "date", dt.date.isoformat, dt.date.fromisoformat),
    (dt.time, "time", dt.time.isoformat, dt.time.fromisoformat),
    (dt.timedelta, "timedelta", lambda v: [v.days, v.seconds, v.microseconds], lambda v: dt.timedelta(*v)),
    (Decimal, "decimal", str, Decimal),
    (uuid.UUID, "uuid", str, uuid.UUID),
    # PostgreSQL's inet and cidr, as asyncpg returns them
    (ipaddress.IPv4Address, "ipv4_address", str, ipaddress.IPv4Address),
    (ipaddress.IPv6Address, "ipv6_address", str, ipaddress.IPv6Address),
    (ipaddress.IPv4Interface, "ipv4_interface", str, ipaddress.IPv4Interface),
    (ipaddress.IPv6Interface, "ipv6_interface", str, ipaddress.IPv6Interface),
    (ipaddress.IPv4Network, "ipv4_network", str, ipaddress.IPv4Network),
    (ipaddress.IPv6Network, "ipv6_network", str, ipaddress.IPv6Network),
    # sets are written sorted by each item's JSON text, so that the file is the same from run to run
    (set, "set", lambda v: sorted(v, key=repr), lambda v: set(map(_hashable, v))),
    (frozenset, "frozenset", lambda v: sorted(v, key=repr), lambda v: frozenset(map(_hashable, v))),
)
