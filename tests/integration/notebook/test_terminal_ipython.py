"""The extension in terminal IPython: started with ``--ext kailash_nb``, as the README says, for cells typed
at the prompt and for ``.ipy`` scripts; loaded inside a script, the awaiting magic names that cause."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.integration


def ipython(*args: str, cwd: Path) -> str:
    """Run terminal IPython of this interpreter; return what it printed, without colours."""
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "KAILASH_NB_WIDGETS")}
    env.update(PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
               IPYTHONDIR=str(cwd / "ipython"), KAILASH_NB_WIDGETS="0")
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "--HistoryManager.enabled=False",
         *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)


SCRIPT = """\
get_ipython().run_cell_magic('kailash', 'double --no-run', 'result = {"twice": n * 2}')
r = %kailash run --inputs {"n": 21}
print("twice:", r.get_output("double", "twice"))
"""


def test_a_script_run_by_ipython_with_the_extension_awaits_its_magics(tmp_path: Path) -> None:
    (tmp_path / "flow.ipy").write_text(SCRIPT, encoding="utf-8")
    assert "twice: 42" in ipython("--ext", "kailash_nb", "flow.ipy", cwd=tmp_path)


def test_cells_typed_in_terminal_ipython_share_one_loop(tmp_path: Path) -> None:
    cells = [
        "import asyncio",
        "loop = await asyncio.sleep(0, asyncio.get_running_loop())",
        "%%kailash same\nresult = {'same_loop': asyncio.get_running_loop() is loop}",
        "r = %kailash run",
        "print('same loop:', r.get_output('same', 'same_loop'))",
    ]
    exec_lines = "[" + ", ".join(repr(cell) for cell in cells) + "]"
    out = ipython("--ext", "kailash_nb", f"--InteractiveShellApp.exec_lines={exec_lines}", "-c", "pass",
                  cwd=tmp_path)
    assert "same loop: True" in out, out


def test_loading_the_extension_inside_the_script_says_to_load_it_earlier(tmp_path: Path) -> None:
    (tmp_path / "flow.ipy").write_text("%load_ext kailash_nb\n" + SCRIPT, encoding="utf-8")
    out = ipython("flow.ipy", cwd=tmp_path)
    assert "NotAwaitedError: %kailash run was not awaited because the kailash_nb extension was loaded in this " \
           "same cell" in out, out
    assert "`ipython --ext kailash_nb script.ipy`" in out and "twice: 42" not in out
