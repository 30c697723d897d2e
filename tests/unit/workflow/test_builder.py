import itertools
import re
from typing import Any, cast

import pytest

from kailash_nb.workflow import (
    AsyncWorkflowBuilder,
    CycleError,
    DuplicateInputError,
    DuplicateNodeError,
    EmptyWorkflowError,
    InvalidInputNameError,
    InvalidNodeIdError,
    InvalidPathError,
    InvalidTimeoutError,
    NodeSyntaxError,
    SelfConnectionError,
    UnknownNodeError,
    WorkflowValidationError,
    input_name_problem,
)


def builder(*nodes: str) -> AsyncWorkflowBuilder:
    b = AsyncWorkflowBuilder("wf")
    for node in nodes:
        b.add_async_code(node, "result = {}")
    return b


def test_build_returns_immutable_workflow_with_plan():
    wf = (builder("a", "b", "c")
          .add_connection("a", "x", "b", "x")
          .add_connection("b", "y", "c", "y")
          .build())
    assert wf.name == "wf"
    assert list(wf.nodes) == ["a", "b", "c"]
    assert wf.order == ("a", "b", "c")
    assert wf.roots == ("a",)
    assert [c.target_input for c in wf.connections] == ["x", "y"]
    with pytest.raises(TypeError):
        cast(Any, wf.nodes)["d"] = wf.nodes["a"]
    with pytest.raises(AttributeError):
        cast(Any, wf).name = "other"


def test_builder_changes_after_build_do_not_touch_the_workflow():
    b = builder("a")
    wf = b.build()
    b.add_async_code("b", "result = {}")
    assert list(wf.nodes) == ["a"]


def test_all_validation_errors_are_value_errors():
    assert issubclass(WorkflowValidationError, ValueError)
    for cls in (CycleError, DuplicateInputError, DuplicateNodeError, InvalidInputNameError,
                NodeSyntaxError, SelfConnectionError, UnknownNodeError):
        assert issubclass(cls, WorkflowValidationError)


def test_duplicate_node_id_names_the_node():
    with pytest.raises(DuplicateNodeError, match="workflow 'wf' already has a node 'a'"):
        builder("a").add_async_code("a", "result = {}")


@pytest.mark.parametrize("bad", ["", "  ", "a.b", "a b", 3])
def test_invalid_node_id_is_rejected(bad):
    with pytest.raises(InvalidNodeIdError, match="node id"):
        AsyncWorkflowBuilder("wf").add_async_code(bad, "result = {}")


def test_unknown_node_in_connection_suggests_the_close_name():
    b = builder("producer", "consumer").add_connection("produce", "items", "consumer", "items")
    with pytest.raises(UnknownNodeError) as info:
        b.build()
    message = str(info.value)
    assert "source node 'produce' does not exist" in message
    assert "did you mean 'producer'?" in message
    assert "nodes: producer, consumer" in message


def test_unknown_target_without_close_match_lists_nodes():
    with pytest.raises(UnknownNodeError, match=r"target node 'zzz' does not exist; nodes: a"):
        builder("a").add_connection("a", "x", "zzz", "x").build()


def test_self_connection_is_rejected_at_add_time():
    with pytest.raises(SelfConnectionError, match=r"a\.x -> a\.y: node 'a' cannot be connected to itself"):
        builder("a").add_connection("a", "x", "a", "y")


def test_cycle_names_its_nodes_in_order():
    b = (builder("a", "b", "c", "d")
         .add_connection("a", "x", "b", "x")
         .add_connection("b", "x", "c", "x")
         .add_connection("c", "x", "a", "x")
         .add_connection("c", "x", "d", "x"))
    with pytest.raises(CycleError) as info:
        b.build()
    cycle = info.value.nodes
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    # each node feeds the next one
    edges = {("a", "b"), ("b", "c"), ("c", "a")}
    assert all(pair in edges for pair in itertools.pairwise(cycle))
    assert "has a cycle: " + " -> ".join(cycle) in str(info.value)


def test_two_connections_into_one_input_are_rejected():
    b = builder("a", "b", "c").add_connection("a", "x", "c", "v")
    with pytest.raises(DuplicateInputError, match=r"input 'v' of node 'c' is already fed by a\.x"):
        b.add_connection("b", "y", "c", "v")


@pytest.mark.parametrize("name", ["1x", "my-var", "", "a.b"])
def test_target_input_must_be_a_variable_name(name):
    with pytest.raises(InvalidInputNameError, match="is not a Python variable name"):
        builder("a", "b").add_connection("a", "x", "b", name)


def test_target_input_cannot_be_a_keyword():
    with pytest.raises(InvalidInputNameError, match="'class' is a Python keyword"):
        builder("a", "b").add_connection("a", "x", "b", "class")


@pytest.mark.parametrize("name", ["__builtins__", "__name__"])
def test_target_input_cannot_be_a_dunder_name(name):
    with pytest.raises(InvalidInputNameError) as info:
        builder("a", "b").add_connection("a", "x", "b", name)
    assert str(info.value) == (f"connection a.x -> b.{name}: target input {name!r} is a dunder name, which the "
                               "runtime keeps for itself; node 'b' reads it as a variable")


def test_the_builder_and_workflow_inputs_share_one_rule_for_names():
    for name in ("1x", "class", "__builtins__", "result", "ok"):
        problem = input_name_problem(name)
        if problem is None:
            builder("a", "b").add_connection("a", "x", "b", name)
        else:
            with pytest.raises(InvalidInputNameError, match=re.escape(problem)):
                builder("a", "b").add_connection("a", "x", "b", name)


@pytest.mark.parametrize("name", ["result", "get_resource"])
def test_target_input_cannot_hide_runtime_names(name):
    with pytest.raises(InvalidInputNameError, match="would hide the runtime's"):
        builder("a", "b").add_connection("a", "x", "b", name)


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a."])
def test_source_output_must_be_a_dotted_path(path):
    with pytest.raises(InvalidPathError, match="dotted path"):
        builder("a", "b").add_connection("a", path, "b", "v")


def test_syntax_error_names_node_line_and_code():
    code = """
        x = 1
        y = [1, 2
        z = 3
        result = {}
    """
    with pytest.raises(NodeSyntaxError) as info:
        AsyncWorkflowBuilder("wf").add_async_code("parser", code)
    err = info.value
    assert err.node_id == "parser"
    assert err.lineno in (2, 3)  # CPython points at the unclosed bracket or the line after
    assert str(err).startswith(f"node 'parser' has a syntax error, line {err.lineno}:")
    assert err.line.strip() in {"y = [1, 2", "z = 3"}
    assert err.line.strip() in str(err)


def test_await_inside_a_plain_function_is_a_syntax_error():
    with pytest.raises(NodeSyntaxError, match="line 2"):
        AsyncWorkflowBuilder("wf").add_async_code("n", "def f():\n    await g()\nresult = {}")


def test_empty_workflow_cannot_be_built():
    with pytest.raises(EmptyWorkflowError, match="has no nodes"):
        AsyncWorkflowBuilder("wf").build()


@pytest.mark.parametrize("timeout", [0, -1, "1", True, float("nan"), float("inf"), -float("inf")])
def test_node_timeout_must_be_positive_finite_seconds(timeout):
    with pytest.raises(InvalidTimeoutError, match=r"node 'a': timeout must be a (positive, finite )?number of seconds"):
        AsyncWorkflowBuilder("wf").add_async_code("a", "result = {}", timeout=timeout)


def test_node_code_must_be_a_string():
    with pytest.raises(TypeError, match="node 'a': code must be a str"):
        AsyncWorkflowBuilder("wf").add_async_code("a", cast(Any, None))


def test_node_keeps_dedented_source_and_description():
    wf = AsyncWorkflowBuilder("wf").add_async_code("described_node", """
        x = 1
        result = {"x": x}
    """, description="makes x", timeout=2).build()
    node = wf.nodes["described_node"]
    assert node.source == 'x = 1\nresult = {"x": x}\n'
    assert node.description == "makes x"
    assert node.timeout == 2
    assert node.filename == "<node described_node>"


def test_a_syntax_error_without_a_line_is_still_a_node_syntax_error():
    with pytest.raises(NodeSyntaxError) as info:
        AsyncWorkflowBuilder("wf").add_async_code("n", "x = 1\0")
    assert str(info.value) == "node 'n' has a syntax error: source code string cannot contain null bytes"
    assert (info.value.lineno, info.value.line) == (None, None)


def test_a_syntax_error_on_the_last_line_shows_that_line():
    with pytest.raises(NodeSyntaxError) as info:
        AsyncWorkflowBuilder("wf").add_async_code("n", "x = 1\n    return x")
    assert str(info.value) == "node 'n' has a syntax error, line 2: unexpected indent\n    return x"
    assert (info.value.lineno, info.value.line) == (2, "    return x")


def test_a_compile_time_error_without_source_text_shows_the_line_from_the_node():
    with pytest.raises(NodeSyntaxError) as info:
        AsyncWorkflowBuilder("wf").add_async_code("n", "x = 1\nreturn x")
    assert str(info.value) == "node 'n' has a syntax error, line 2: 'return' outside function\n    return x"


def test_node_code_must_be_a_string_naming_the_type():
    with pytest.raises(TypeError) as info:
        AsyncWorkflowBuilder("wf").add_async_code("a", cast(Any, b"result = {}"))
    assert str(info.value) == "node 'a': code must be a str of Python source, got bytes"


def test_node_source_drops_leading_and_trailing_blank_lines_but_keeps_indentation_inside():
    wf = AsyncWorkflowBuilder("wf").add_async_code("n", "\n\n  \nif True:\n    result = {}\n\n\n   \n").build()
    assert wf.nodes["n"].source == "if True:\n    result = {}\n"


def test_node_lines_are_in_the_line_cache_for_tracebacks():
    import linecache

    wf = AsyncWorkflowBuilder("wf").add_async_code("cached_lines", "x = 1\nresult = {'x': x}").build()
    filename = wf.nodes["cached_lines"].filename
    assert linecache.getline(filename, 1) == "x = 1\n"
    assert linecache.getlines(filename) == ["x = 1\n", "result = {'x': x}\n"]


def test_a_node_id_reused_with_other_code_gets_its_own_file_name():
    import zlib

    first = AsyncWorkflowBuilder("wf").add_async_code("reused_id", "result = {'v': 1}").build().nodes["reused_id"]
    other = AsyncWorkflowBuilder("wf").add_async_code("reused_id", "result = {'v': 2}").build().nodes["reused_id"]
    again = AsyncWorkflowBuilder("wf").add_async_code("reused_id", "result = {'v': 1}").build().nodes["reused_id"]
    assert first.filename == again.filename == "<node reused_id>"
    assert other.filename == f"<node reused_id {zlib.crc32(other.source.encode()):08x}>"


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_a_workflow_name_must_be_a_non_empty_string(name):
    with pytest.raises(InvalidNodeIdError) as info:
        AsyncWorkflowBuilder(name)
    assert str(info.value) == f"workflow name must be a non-empty string, got {name!r}"


@pytest.mark.parametrize("path", [None, 3])
def test_a_source_output_that_is_not_a_string_is_an_invalid_path(path):
    with pytest.raises(InvalidPathError, match=r"source output must be a dotted path"):
        builder("a", "b").add_connection("a", path, "b", "v")
