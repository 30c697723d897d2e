"""The README's complete Python examples run as written."""

import ast
import asyncio
import re
import unittest
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_engine_example_runs_with_top_level_await():
    code = compile(BLOCKS[0], "<README engine example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict = {}
    asyncio.run(eval(code, namespace))
    assert namespace["result"].get_output("processor", "doubled") == [2, 4, 6]


def test_testing_example_passes_under_unittest():
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(BLOCKS[1], "<README testing example>", "exec"), namespace)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(namespace["CheckoutTest"])
    outcome = unittest.TestResult()
    suite.run(outcome)
    assert outcome.testsRun == 1
    assert outcome.wasSuccessful(), outcome.failures + outcome.errors


def test_virtual_time_example_runs_as_written():
    block = next(b for b in BLOCKS if "async with virtual_time() as clock" in b)
    code = compile(block, "<README virtual time example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict = {}
    asyncio.run(eval(code, namespace))
    assert abs(namespace["elapsed"] - 630) < 1e-6
