"""What callers hand the engine: inputs and timeouts, checked before anything runs."""

import pytest

from kailash_nb.workflow import (
    RESERVED_NAMES,
    InvalidInputsError,
    InvalidTimeoutError,
    validate_inputs,
    validate_timeout,
)


def test_inputs_come_back_as_a_new_dict():
    inputs = {"n": 1, "_private": 2, "__leading": 3, "trailing__": 4}
    checked = validate_inputs(inputs)
    assert checked == inputs
    assert checked is not inputs


def test_no_inputs_are_an_empty_dict():
    assert validate_inputs(None) == {}


@pytest.mark.parametrize(("inputs", "message"), [
    ([("n", 1)], "workflow inputs must be a mapping of variable names to values, e.g. {'n': 3}; got a list"),
    ({1: "x"}, "workflow inputs: key 1 is not a Python variable name; node code reads each input as a variable"),
    ({"a b": 1}, "workflow inputs: key 'a b' is not a Python variable name; node code reads each input as a variable"),
    ({"lambda": 1}, "workflow inputs: key 'lambda' is a Python keyword, which cannot be a variable name; node code "
                    "reads each input as a variable"),
    ({"__name__": 1}, "workflow inputs: key '__name__' is a dunder name, which the runtime keeps for itself; node "
                      "code reads each input as a variable"),
    ({"print": 1}, "workflow inputs: key 'print' would hide the runtime's 'print' in node code (reserved: "
                   "get_resource, print, result); rename the input; node code reads each input as a variable"),
])
def test_bad_inputs_are_named_with_what_is_wrong(inputs, message):
    with pytest.raises(InvalidInputsError) as info:
        validate_inputs(inputs)
    assert str(info.value) == message


def test_the_source_of_the_inputs_is_named():
    with pytest.raises(InvalidInputsError, match=r"^%kailash run --inputs: key 'a-b' is not"):
        validate_inputs({"a-b": 1}, source="%kailash run --inputs")


def test_reserved_names_are_those_the_runtime_defines_in_node_code():
    assert frozenset({"result", "get_resource", "print"}) == RESERVED_NAMES


@pytest.mark.parametrize(("value", "seconds"), [(None, None), (1, 1.0), (0.25, 0.25)])
def test_a_timeout_is_seconds_as_a_float_or_none(value, seconds):
    checked = validate_timeout(value)
    assert checked == seconds
    assert type(checked) is type(seconds)


@pytest.mark.parametrize(("value", "message"), [
    ("1", "timeout must be a number of seconds or None, got str '1'"),
    (True, "timeout must be a number of seconds or None, got bool True"),
    (0, "timeout must be a positive, finite number of seconds (None for no limit), got 0"),
    (-2.5, "timeout must be a positive, finite number of seconds (None for no limit), got -2.5"),
    (float("nan"), "timeout must be a positive, finite number of seconds (None for no limit), got nan"),
    (float("-inf"), "timeout must be a positive, finite number of seconds (None for no limit), got -inf"),
])
def test_a_bad_timeout_names_the_value(value, message):
    with pytest.raises(InvalidTimeoutError) as info:
        validate_timeout(value)
    assert str(info.value) == message


def test_a_bad_timeout_names_the_option_it_was_given_for():
    with pytest.raises(InvalidTimeoutError, match=r"^node 'fetch': timeout must be"):
        validate_timeout(-1, what="node 'fetch': timeout")
