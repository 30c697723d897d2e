"""The checks of kailash_nb.testing.assertions on workflow results and recorded calls: what passes, what
fails, and the exact message of each failure."""

from __future__ import annotations

import asyncio
import re

import pytest

from kailash_nb.errors import WorkflowAssertionError
from kailash_nb.testing import CallRecord
from kailash_nb.testing.assertions import (
    assert_calls,
    assert_no_calls,
    assert_node_output,
    assert_workflow_failed,
    assert_workflow_success,
)
from kailash_nb.workflow import AsyncLocalRuntime, AsyncWorkflowBuilder, WorkflowResult


def run_workflow(builder: AsyncWorkflowBuilder) -> WorkflowResult:
    return asyncio.run(AsyncLocalRuntime().execute_workflow_async(builder.build()))


def two_failures() -> WorkflowResult:
    """'ok' succeeds, 'bad' and 'worse' raise, 'after' is skipped."""
    return run_workflow(
        AsyncWorkflowBuilder("pipeline")
        .add_async_code("ok", "result = {'value': 1, 'data': {'items': [1, 2]}}")
        .add_async_code("bad", "raise ValueError('value 1 is too small')")
        .add_async_code("worse", "raise KeyError('k')")
        .add_async_code("after", "result = {}")
        .add_connection("bad", "value", "after", "value")
    )


def success() -> WorkflowResult:
    return run_workflow(AsyncWorkflowBuilder("fine").add_async_code("ok", "result = {'value': 1, 'none': None}"))


# -- workflow results ------------------------------------------------------------------------------------

def test_assert_workflow_success_passes_a_successful_run():
    assert_workflow_success(success())


def test_assert_workflow_success_lists_every_node_that_did_not_succeed_with_its_error():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_workflow_success(two_failures())
    assert str(info.value) == (
        "workflow 'pipeline' failed (2 node(s) raised):\n"
        "  - bad failed: ValueError: value 1 is too small\n"
        "  - worse failed: KeyError: 'k'\n"
        "  - after skipped"
    )


def test_assert_workflow_failed_passes_a_failed_run_and_checks_node_and_error_type():
    result = two_failures()
    assert_workflow_failed(result)
    assert_workflow_failed(result, "bad")
    assert_workflow_failed(result, "bad", ValueError)
    assert_workflow_failed(result, "worse", LookupError)  # a subclass instance counts


def test_assert_workflow_failed_on_a_successful_run_says_every_node_succeeded():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_workflow_failed(success())
    assert str(info.value) == "expected workflow 'fine' to fail, but every node succeeded"


@pytest.mark.parametrize(("node", "status"), [("ok", "'success'"), ("after", "'skipped'"), ("nope", "None")])
def test_assert_workflow_failed_names_the_status_of_a_node_that_did_not_fail(node, status):
    with pytest.raises(WorkflowAssertionError) as info:
        assert_workflow_failed(two_failures(), node)
    assert str(info.value) == f"expected node {node!r} to fail, but its status is {status}; failed: bad, worse"


def test_assert_workflow_failed_names_the_error_a_node_raised_instead():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_workflow_failed(two_failures(), "bad", KeyError)
    assert str(info.value) == "expected node 'bad' to raise KeyError, it raised ValueError: value 1 is too small"


def test_assert_node_output_compares_the_whole_output_or_a_dotted_key():
    result = two_failures()
    assert_node_output(result, "ok", {"value": 1, "data": {"items": [1, 2]}})
    assert_node_output(result, "ok", [1, 2], "data.items")
    assert_node_output(result, "ok", 2, "data.items.1")


def test_assert_node_output_compares_a_none_value_rather_than_skipping_it():
    assert_node_output(success(), "ok", None, "none")
    with pytest.raises(WorkflowAssertionError, match=r"^node 'ok' output 'none': expected 0, got None$"):
        assert_node_output(success(), "ok", 0, "none")


def test_assert_node_output_shows_expected_and_actual():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_node_output(two_failures(), "ok", 2, "value")
    assert str(info.value) == "node 'ok' output 'value': expected 2, got 1"
    with pytest.raises(WorkflowAssertionError) as info:
        assert_node_output(success(), "ok", {})
    assert str(info.value) == "node 'ok' output: expected {}, got {'value': 1, 'none': None}"


def test_assert_node_output_explains_a_missing_node_or_key():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_node_output(two_failures(), "ok", 1, "data.size")
    assert str(info.value).startswith("node 'ok' output 'data.size': expected 1, but node 'ok' produced no "
                                      "'data.size'")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(WorkflowAssertionError, match=r"^node 'bad' output: expected 1, but .*'bad'"):
        assert_node_output(two_failures(), "bad", 1)


# -- recorded calls ---------------------------------------------------------------------------------------

def call(method: str = "save", *args: object, awaited: bool = True, node: str | None = "store",
         **kwargs: object) -> CallRecord:
    return CallRecord("db", method, args, kwargs, result=None if not awaited else "ok", node=node,
                      awaited=awaited)


TWO_SAVES = (call("save", 1), call("save", 2))


def test_times_counts_exactly():
    assert_calls("db", "save", TWO_SAVES, times=2)
    for wrong in (0, 1, 3):
        with pytest.raises(WorkflowAssertionError,
                           match=rf"^expected db\.save\(\) to be called {wrong} time\(s\), it was called 2 time\(s\);"):
            assert_calls("db", "save", TWO_SAVES, times=wrong)


def test_times_one_fails_for_two_calls_and_lists_them():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_calls("db", "save", TWO_SAVES, times=1)
    assert str(info.value) == (
        "expected db.save() to be called 1 time(s), it was called 2 time(s); calls to 'db':\n"
        "  save(1) -> 'ok' [node 'store']\n"
        "  save(2) -> 'ok' [node 'store']"
    )


def test_times_zero_passes_when_the_method_was_not_called():
    assert_calls("db", "load", TWO_SAVES, times=0)


def test_without_times_one_call_is_enough_and_none_fails():
    assert_calls("db", "save", TWO_SAVES[:1])
    with pytest.raises(WorkflowAssertionError) as info:
        assert_calls("db", "load", TWO_SAVES)
    assert str(info.value).startswith("expected db.load() to be called at least once, it was called 0 time(s);")
    with pytest.raises(WorkflowAssertionError) as info:
        assert_calls("db", "save", ())
    assert str(info.value) == ("expected db.save() to be called at least once, it was called 0 time(s); "
                               "no calls were made to 'db'")


@pytest.mark.parametrize("with_args", [(1,), (1, 2, 3), (), (2, 1), [1, 2, 4]])
def test_with_args_matches_the_whole_argument_list_not_a_prefix_or_an_extension(with_args):
    calls = (call("save", 1, 2),)
    expected = re.escape(f"with args {tuple(with_args)!r}, it was called 0 time")
    with pytest.raises(WorkflowAssertionError, match=expected):
        assert_calls("db", "save", calls, with_args=with_args)


def test_with_args_accepts_any_sequence_and_counts_only_matching_calls():
    calls = (call("save", 1, 2), call("save", 1), call("save", 1, 2))
    assert_calls("db", "save", calls, times=2, with_args=[1, 2])
    assert_calls("db", "save", calls, times=1, with_args=(1,))
    assert_calls("db", "save", (call("save"),), times=1, with_args=())


def test_with_kwargs_needs_each_given_keyword_with_an_equal_value():
    calls = (call("save", 1, table="t", retry=True), call("save", 2, table="u"))
    assert_calls("db", "save", calls, times=1, with_kwargs={"table": "t"})
    assert_calls("db", "save", calls, times=1, with_kwargs={"table": "t", "retry": True})
    assert_calls("db", "save", calls, times=2, with_kwargs={})
    assert_calls("db", "save", calls, times=1, with_args=(2,), with_kwargs={"table": "u"})
    for wanted in ({"table": "v"}, {"retry": False}, {"table": "u", "retry": True}, {"other": None}):
        expected = re.escape(f"with kwargs including {wanted!r}, it was called 0")
        with pytest.raises(WorkflowAssertionError, match=expected):
            assert_calls("db", "save", calls, with_kwargs=wanted)


def test_with_args_and_kwargs_both_appear_in_the_message():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_calls("db", "save", TWO_SAVES, times=1, with_args=(3,), with_kwargs={"a": 1})
    assert str(info.value).startswith("expected db.save() to be called 1 time(s) with args (3,) and kwargs "
                                      "including {'a': 1}, it was called 0 time(s); calls to 'db':\n")


def test_calls_of_other_methods_do_not_count_but_are_listed():
    calls = (call("load", 1), call("save", 2, node=None))
    with pytest.raises(WorkflowAssertionError) as info:
        assert_calls("db", "save", calls, times=2)
    assert str(info.value) == (
        "expected db.save() to be called 2 time(s), it was called 1 time(s); calls to 'db':\n"
        "  load(1) -> 'ok' [node 'store']\n"
        "  save(2) -> 'ok' [test]"
    )


def test_a_call_never_awaited_is_not_counted_and_the_message_says_add_await():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_calls("db", "save", (call("save", 1, awaited=False),), times=1)
    assert str(info.value) == (
        "expected db.save() to be called 1 time(s), it was called once but never awaited: add await; "
        "calls to 'db':\n  save(1) never awaited: add await [node 'store']"
    )
    with pytest.raises(WorkflowAssertionError, match=r"at least once, it was called 2 times but never awaited"):
        assert_calls("db", "save", (call("save", awaited=False), call("save", awaited=False)))


def test_a_call_never_awaited_fails_the_check_even_beside_awaited_ones():
    calls = (call("save", 1), call("save", 2, awaited=False))
    with pytest.raises(WorkflowAssertionError, match=r"called 1 time\(s\), it was called 1 time\(s\), and once "
                                                     r"more but never awaited: add await;"):
        assert_calls("db", "save", calls, times=1)
    with pytest.raises(WorkflowAssertionError, match=r"and once more but never awaited"):
        assert_calls("db", "save", calls)
    assert_calls("db", "save", calls, times=1, with_args=(1,))  # the filter leaves the dropped call out


def test_assert_no_calls_passes_without_calls_of_the_method():
    assert_no_calls("db", ())
    assert_no_calls("db", TWO_SAVES, "load")


def test_assert_no_calls_lists_the_calls_made():
    with pytest.raises(WorkflowAssertionError) as info:
        assert_no_calls("db", (call("load"), call("save", 1)), "save")
    assert str(info.value) == ("expected db.save() not to be called, it was called 1 time(s); calls to 'db':\n"
                               "  load() -> 'ok' [node 'store']\n"
                               "  save(1) -> 'ok' [node 'store']")
    with pytest.raises(WorkflowAssertionError, match=r"^expected resource 'db' not to be called, it was called "
                                                     r"2 time\(s\);"):
        assert_no_calls("db", TWO_SAVES)


def test_assert_no_calls_fails_on_a_call_never_awaited_too():
    with pytest.raises(WorkflowAssertionError, match=r"^expected db\.save\(\) not to be called, it was called "
                                                     r"once but never awaited: add await;"):
        assert_no_calls("db", (call("save", awaited=False),), "save")
    with pytest.raises(WorkflowAssertionError, match=r"it was called 1 time\(s\), and 2 times more but never "
                                                     r"awaited: add await;"):
        assert_no_calls("db", (call("save"), call("save", awaited=False), call("load", awaited=False)))


def test_call_record_describes_result_exception_and_caller():
    assert call("fetch", "q", limit=2).describe() == "fetch('q', limit=2) -> 'ok' [node 'store']"
    failed = CallRecord("db", "fetch", (), {}, exception=ValueError("bad"))
    assert failed.failed and failed.describe() == "fetch() raised ValueError('bad') [test]"
    long = CallRecord("db", "fetch", (), {}, result="x" * 100).describe()
    assert long == f"fetch() -> '{'x' * 76}... [test]" and len(long.split(" -> ")[1].split(" [")[0]) == 80


def test_assert_workflow_failed_says_none_failed_when_the_run_failed_without_a_failed_node():
    workflow = AsyncWorkflowBuilder("stopped").add_async_code("slow", "result = {}").build()
    stopped = WorkflowResult(workflow, {}, status="failed", node_status={"slow": "cancelled"})
    assert_workflow_failed(stopped)
    with pytest.raises(WorkflowAssertionError) as info:
        assert_workflow_failed(stopped, "slow")
    assert str(info.value) == "expected node 'slow' to fail, but its status is 'cancelled'; failed: none"
