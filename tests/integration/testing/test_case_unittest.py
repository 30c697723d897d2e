"""``python -m unittest`` runs AsyncWorkflowTestCase classes, in a child process as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

TEST_MODULE = textwrap.dedent('''
    from kailash_nb.testing import AsyncWorkflowTestCase
    from kailash_nb.workflow import AsyncWorkflowBuilder


    class Example(AsyncWorkflowTestCase):
        async def setUp(self):
            await super().setUp()
            self.svc = await self.create_test_resource("svc", None, mock=True)
            self.svc.get.return_value = 41

        async def test_runs(self):
            wf = AsyncWorkflowBuilder("w").add_async_code(
                "n", 's = await get_resource("svc"); result = {"v": await s.get() + 1}').build()
            result = await self.execute_workflow(wf)
            self.assert_node_output(result, "n", 42, "v")

        async def test_fails(self):
            self.assert_resource_called("svc", "get")
''')


def test_python_m_unittest_runs_the_case(tmp_path: Path) -> None:
    (tmp_path / "test_unittest_style.py").write_text(TEST_MODULE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    proc = subprocess.run([sys.executable, "-m", "unittest", "-v", "test_unittest_style"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert "test_runs (test_unittest_style.Example.test_runs) ... ok" in proc.stderr, proc.stderr
    assert "expected svc.get() to be called at least once, it was called 0 time(s)" in proc.stderr
    assert "FAILED (failures=1)" in proc.stderr and proc.returncode == 1
