"""The input transformer: which cells become a top-level await of the magic's coroutine, and which not."""

from __future__ import annotations

import ast

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from kailash_nb.notebook.transform import rewrite_cell, transform_lines

MODULE = "__import__('kailash_nb.notebook.magics', fromlist=['magics'])"


def ipython_then_ours(cell: str) -> str:
    """What the shell runs: IPython's static transformations, then ours (as input_transformers_post)."""
    return "".join(transform_lines(TransformerManager().transform_cell(cell).splitlines(keepends=True)))


def test_cell_magic_becomes_an_await_of_the_cell_coroutine() -> None:
    out = ipython_then_ours("%%kailash consumer items=producer.items -w 'my flow'\nx = await f()\nresult = {'x': x}\n")
    assert out == (
        f"await {MODULE}.cell_magic_async(get_ipython(), \"consumer items=producer.items -w 'my flow'\", "
        "\"x = await f()\\nresult = {'x': x}\\n\")\n"
    )


def test_cell_body_with_quotes_and_backslashes_survives_the_round_trip() -> None:
    body = "s = 'it\\'s'\nt = \"\\\\n\"\nresult = {'s': s, 't': t}\n"
    out = ipython_then_ours("%%kailash n\n" + body)
    call = ast.parse(out).body[0].value.value  # Expr(Await(Call))
    assert ast.literal_eval(call.args[2]) == body


def test_assigned_line_magic_that_awaits_keeps_the_assignment() -> None:
    out = ipython_then_ours("r = %kailash run")
    assert out == f"r = (await {MODULE}.line_magic_async(get_ipython(), 'run'))\n"


@pytest.mark.parametrize("subcommand", ["run", "test x", "bench -n 3", "reset"])
def test_awaiting_subcommands_are_rewritten(subcommand: str) -> None:
    assert "line_magic_async" in ipython_then_ours(f"%kailash {subcommand}")


@pytest.mark.parametrize("subcommand", ["workflow", "show", "mock db", "calls", "explore wf"])
def test_synchronous_subcommands_are_left_to_the_magic(subcommand: str) -> None:
    assert ipython_then_ours(f"%kailash {subcommand}") == f"get_ipython().run_line_magic('kailash', {subcommand!r})\n"


def test_line_magic_inside_a_function_is_left_alone_since_it_cannot_await() -> None:
    cell = "def f():\n    return %kailash run\n"
    assert ipython_then_ours(cell) == TransformerManager().transform_cell(cell)


def test_unload_of_the_extension_awaits_the_session_cleanup() -> None:
    expected = f"(await {MODULE}.unload_async(get_ipython(), 'kailash_nb'))\n"
    assert ipython_then_ours("%unload_ext kailash_nb") == expected
    assert "unload_async" in ipython_then_ours("%unload_ext kailash_nb.notebook")
    assert "unload_async" not in ipython_then_ours("%unload_ext other_ext")


def test_other_cells_are_returned_unchanged() -> None:
    lines = ["x = 1\n", "print('kailash')\n"]
    assert transform_lines(lines) is lines
    assert rewrite_cell("get_ipython().run_line_magic('timeit', 'kailash run')\n") == (
        "get_ipython().run_line_magic('timeit', 'kailash run')\n"
    )


def test_top_level_magic_is_rewritten_even_when_a_function_in_the_cell_uses_one() -> None:
    cell = ("def f():\n    s = %kailash run\n    return s\nr = %kailash run\n"
            "g = lambda: get_ipython().run_line_magic('kailash', 'reset')\n"
            "class C:\n    %kailash reset\n")
    out = ipython_then_ours(cell)
    assert out.count("line_magic_async") == 1
    assert f"r = (await {MODULE}.line_magic_async(get_ipython(), 'run'))" in out
    assert "    s = get_ipython().run_line_magic('kailash', 'run')" in out
    assert "g = lambda: get_ipython().run_line_magic('kailash', 'reset')" in out
    assert "    get_ipython().run_line_magic('kailash', 'reset')" in out


def test_magic_in_a_top_level_block_is_rewritten() -> None:
    out = ipython_then_ours("if True:\n    r = %kailash run  # comment\n")
    assert "line_magic_async" in out
