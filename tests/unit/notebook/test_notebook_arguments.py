"""Parsing of ``%%kailash`` lines and ``%kailash`` subcommands: options, connections and specific errors."""

from __future__ import annotations

import pytest

from kailash_nb.notebook.arguments import InputConnection, help_text, parse_cell_line, parse_line
from kailash_nb.notebook.errors import MagicUsageError


def test_cell_line_gives_node_connections_and_options() -> None:
    args, connections = parse_cell_line("consumer items=producer.items meta=producer.data.meta -w etl --timeout 2.5")
    assert (args.node, args.workflow, args.timeout, args.no_run) == ("consumer", "etl", 2.5, False)
    assert connections == (
        InputConnection("items", "producer", "items"),
        InputConnection("meta", "producer", "data.meta"),
    )


def test_cell_line_defaults_to_the_notebook_workflow() -> None:
    args, connections = parse_cell_line("producer --no-run")
    assert (args.workflow, args.no_run, connections) == ("notebook", True, ())


@pytest.mark.parametrize(("text", "message"), [
    ("c items", "must be INPUT=SOURCE.PATH"),
    ("c items=producer", "must be INPUT=SOURCE.PATH"),
    ("c 1x=producer.items", "must be a Python variable name"),
    ("c --timeout soon", "invalid float value"),
    ("", "the following arguments are required: node"),
    ("c --bogus", "unrecognized arguments: --bogus"),
])
def test_bad_cell_lines_raise_a_usage_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(MagicUsageError, match=message.replace("-", r"\-")):
        parse_cell_line(text)


@pytest.mark.parametrize("value", ["nan", "inf", "--timeout=-inf", "0", "-1", "-0.5"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused_naming_the_option_and_node(value: str) -> None:
    from kailash_nb.workflow import InvalidTimeoutError

    option = value if value.startswith("--") else f"--timeout {value}"
    with pytest.raises(InvalidTimeoutError) as raised:
        parse_cell_line(f"slow {option}")
    assert str(raised.value).startswith("%%kailash slow: --timeout must be a positive, finite number of seconds")
    assert isinstance(raised.value, ValueError)


def test_a_positive_timeout_is_kept_as_seconds() -> None:
    assert parse_cell_line("slow --timeout 2")[0].timeout == 2.0


def test_mock_takes_a_force_option() -> None:
    assert parse_line("mock db")[1].force is False
    assert parse_line("mock db --force")[1].force is True


def test_inputs_takes_the_rest_of_the_line_verbatim() -> None:
    name, args = parse_line("run etl --inputs {'n': 3, 'tags': ['a b']}")
    assert (name, args.workflow, args.inputs) == ("run", "etl", "{'n': 3, 'tags': ['a b']}")


def test_bench_needs_a_positive_number_of_runs() -> None:
    name, args = parse_line("bench etl -n 20 --concurrency 4")
    assert (name, args.workflow, args.runs, args.concurrency) == ("bench", "etl", 20, 4)
    with pytest.raises(MagicUsageError, match="required: -n/--runs"):
        parse_line("bench")
    with pytest.raises(MagicUsageError, match="--concurrency must be at least 1"):
        parse_line("bench -n 2 --concurrency 0")


@pytest.mark.parametrize(("line", "message"), [
    ("", "needs a subcommand"),
    ("frobnicate", "unknown %kailash subcommand 'frobnicate'"),
    ("run a b", "unrecognized arguments: b"),
    ("run --inputs", "--inputs needs an expression"),
    ("mock", "required: NAME"),
    ("calls 'unbalanced", "cannot split"),
])
def test_bad_lines_raise_usage_errors_with_the_usage(line: str, message: str) -> None:
    with pytest.raises(MagicUsageError) as raised:
        parse_line(line)
    assert message in str(raised.value)


def test_usage_errors_are_value_errors_not_ipython_usage_errors() -> None:
    from IPython.core.error import UsageError

    with pytest.raises(MagicUsageError) as raised:
        parse_line("run --bogus")
    assert isinstance(raised.value, ValueError) and not isinstance(raised.value, UsageError)
    assert "usage: %kailash run [--inputs EXPR] [--virtual-time] [NAME]" in str(raised.value)


def test_help_documents_the_cell_magic_and_every_subcommand() -> None:
    text = help_text()
    for usage in ("%%kailash [-w NAME]", "%kailash run", "%kailash workflow", "%kailash show", "%kailash mock",
                  "%kailash calls", "%kailash test", "%kailash bench", "%kailash explore", "%kailash reset"):
        assert usage in text
    assert "KAILASH_NB_WIDGETS" in text


@pytest.mark.parametrize("line", ["run  # again", "run #again", "run\t# a comment with --inputs {'n': 1}"])
def test_a_trailing_comment_is_ignored(line: str) -> None:
    name, args = parse_line(line)
    assert (name, args.workflow, args.inputs) == ("run", "notebook", None)


def test_a_comment_after_a_workflow_name_and_on_a_cell_line_is_ignored() -> None:
    assert parse_line("run etl  # nightly")[1].workflow == "etl"
    args, connections = parse_cell_line("consumer items=producer.items --no-run  # later")
    assert (args.node, args.no_run, connections) == ("consumer", True, (InputConnection("items", "producer", "items"),))


def test_a_hash_inside_quotes_or_inside_a_word_is_not_a_comment() -> None:
    args, _ = parse_cell_line('n --description "issue #3 # and more"  # comment')
    assert "issue #3 # and more" in args.description  # IPython's arg_split keeps the quotes
    assert parse_line("run etl#2")[1].workflow == "etl#2"


@pytest.mark.parametrize(("line", "expr"), [
    ("run --inputs {'tag': '#1', 'n': 2}  # the usual", "{'tag': '#1', 'n': 2}"),
    ("run --inputs {'tag': \"a # b\"}#c", "{'tag': \"a # b\"}"),
    ("run etl --inputs={'n': 1}  # x", "{'n': 1}"),
    ("bench -n 2 --inputs {'n': len('#')}  # c", "{'n': len('#')}"),
    ("run --inputs {'s': '''#'''}", "{'s': '''#'''}"),
])
def test_inputs_keep_hashes_in_string_literals_and_drop_the_comment(line: str, expr: str) -> None:
    assert parse_line(line)[1].inputs == expr


def test_inputs_that_are_only_a_comment_need_an_expression() -> None:
    with pytest.raises(MagicUsageError, match="--inputs needs an expression"):
        parse_line("run --inputs  # todo")


def test_a_malformed_inputs_expression_is_kept_for_eval_to_report() -> None:
    assert parse_line("run --inputs {'n': 'x}  # c")[1].inputs.startswith("{'n': 'x}")
