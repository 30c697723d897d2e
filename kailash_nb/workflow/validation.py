"""The rules for what a caller hands the engine: workflow inputs and timeouts, checked before anything runs.

One implementation, used by the builder, the runtime and the notebook session, so that every entry point
refuses the same values with the same message.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInputsError, InvalidTimeoutError

#: Names the runtime defines in every node's namespace; an input of that name would hide them.
RESERVED_NAMES = frozenset({"result", "get_resource", "print"})


def validate_inputs(inputs: object, *, source: str = "workflow inputs") -> dict[str, Any]:
    """``inputs`` as a new dict of variables for node code, or ``InvalidInputsError`` naming ``source`` and the key.

    ``None`` means no inputs. Keys must be Python variable names that are not keywords, not dunder names
    (``__builtins__`` would replace the builtins of node code) and not one of :data:`RESERVED_NAMES`.
    """
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        raise InvalidInputsError(
            f"{source} must be a mapping of variable names to values, e.g. {{'n': 3}}; got a {type(inputs).__name__}"
        )
    for key in inputs:
        problem = input_name_problem(key)
        if problem is not None:
            raise InvalidInputsError(f"{source}: key {key!r} {problem}; node code reads each input as a variable")
    return dict(inputs)


def input_name_problem(key: object) -> str | None:
    """What makes ``key`` unusable as a variable of node code (``"is a Python keyword, ..."``, to follow the
    name in a message), or ``None`` when it is fine: the one rule for workflow inputs, connection targets
    and every other name handed to node code."""
    if not isinstance(key, str) or not key.isidentifier():
        return "is not a Python variable name"
    if keyword.iskeyword(key):
        return "is a Python keyword, which cannot be a variable name"
    if key.startswith("__") and key.endswith("__"):
        return "is a dunder name, which the runtime keeps for itself"
    if key in RESERVED_NAMES:
        return (f"would hide the runtime's {key!r} in node code (reserved: {', '.join(sorted(RESERVED_NAMES))}); "
                "rename the input")
    return None


def validate_timeout(value: object, *, what: str = "timeout") -> float | None:
    """``value`` as a positive, finite number of seconds (``None``: no limit), else ``InvalidTimeoutError``
    naming ``what`` (the option or node it was given for). NaN and infinities are refused: ``None`` is the
    way to say "no limit"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTimeoutError(f"{what} must be a number of seconds or None, got {type(value).__name__} {value!r}")
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise InvalidTimeoutError(
            f"{what} must be a positive, finite number of seconds (None for no limit), got {value!r}"
        )
    return float(value)
