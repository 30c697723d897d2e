"""Kernels that start and stop cleanly every time, on real kernels: a start that loses the port race is
retried on fresh ports, a notebook that kills its own kernel is not, a kernel's own output stays out of the
command's output, and "could not run" is told apart from "changed" (exit 3 and a JUnit ``<error>``).

A lost port race is made on purpose: the test holds a listening socket and hands its port to the first
kernel (or to every kernel) as its shell port, so that kernel's bind fails as it would if another process
had taken the port between jupyter_client choosing it and the kernel binding it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import kailash_nb.runner.kernel as kernel_module
from kailash_nb.cli import main
from kailash_nb.notebook import sanitize_file_path

pytestmark = pytest.mark.integration

pytest_plugins = ["pytester"]

RETRY = re.compile(r"^kailash-nb: (\S+): the kernel (.*); starting it again on fresh ports \(try (\d) of 3\)$")


def write(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test listens on: a kernel told to bind it fails with EADDRINUSE."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def kernels_on_port(monkeypatch: pytest.MonkeyPatch, port: int, first: int) -> list[Any]:
    """The first ``first`` kernels started from now on get ``port`` as their shell port; returns every
    kernel manager made, so a test can count the starts."""
    made: list[Any] = []
    real = kernel_module.kernel_manager

    def manager(*args: Any, **kwargs: Any) -> Any:
        km = real(*args, **kwargs)
        if len(made) < first:
            km.cache_ports = False  # else jupyter_client picks all five ports itself
            km.shell_port = port
        made.append(km)
        return km

    monkeypatch.setattr(kernel_module, "kernel_manager", manager)
    return made


def retries(err: str) -> list[tuple[str, ...]]:
    return [match.groups() for line in err.splitlines() if (match := RETRY.match(line))]


def kernel_children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid()
                    and b"ipykernel_launcher" in (entry / "cmdline").read_bytes()):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.parametrize("command", [
    ["check", "--no-report", "nb.ipynb"],
    ["update", "nb.ipynb"],
    ["run", "nb.ipynb", "--html", "out/nb.html"],
    ["tour", "--notebook", "nb.ipynb", "--html", "out/nb.html"],
], ids=lambda command: command[0])
def test_a_start_that_loses_the_port_race_is_retried_on_fresh_ports(
        workdir: Path, held_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: list[str]) -> None:
    write(workdir / "nb.ipynb", "print(6 * 7)")
    made = kernels_on_port(monkeypatch, held_port, first=1)

    assert main(command) == 0
    captured = capsys.readouterr()

    assert len(made) == 2
    assert retries(captured.err) == [("nb.ipynb", "could not bind its port (Address already in use)", "2")]
    assert len(captured.err.splitlines()) == 1  # the retry line, and nothing of the failed kernel's traceback
    assert "Address already in use" not in captured.out
    assert kernel_children() == []


def test_a_kernel_that_lost_the_port_race_but_has_not_exited_yet_is_retried_too(
        workdir: Path, held_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Under load a kernel whose bind failed may still be exiting when the start's failure is seen: the
    # first liveness check after that failure answers "alive", as it then may in earnest.
    write(workdir / "nb.ipynb", "print(6 * 7)")
    made = kernels_on_port(monkeypatch, held_port, first=1)
    real_alive = kernel_module._alive
    lied: list[bool] = []

    async def alive_once_more(manager: Any) -> bool:
        if manager is made[0] and not lied:
            lied.append(True)
            return True
        return await real_alive(manager)

    monkeypatch.setattr(kernel_module, "_alive", alive_once_more)
    assert main(["check", "--no-report", "nb.ipynb"]) == 0
    captured = capsys.readouterr()
    assert lied and len(made) == 2
    assert retries(captured.err) == [("nb.ipynb", "could not bind its port (Address already in use)", "2")]
    assert kernel_children() == []


def test_a_kernel_that_never_gets_a_port_could_not_run_exit_3_and_a_junit_error(
        workdir: Path, held_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    write(workdir / "nb.ipynb", "print(6 * 7)")
    made = kernels_on_port(monkeypatch, held_port, first=99)

    assert main(["check", "--junitxml", "out/junit.xml", "--report", "out/report", "nb.ipynb"]) == 3
    captured = capsys.readouterr()

    assert len(made) == 3  # bounded
    assert [attempt for _, _, attempt in retries(captured.err)] == ["2", "3"]
    assert ("ERROR nb.ipynb  could not run: the kernel could not bind its port (Address already in use) (3 tries)"
            in captured.out)
    assert "COULD NOT RUN nb.ipynb\n" in captured.out
    kernel_said = captured.out.split("  kernel output of nb.ipynb:\n", 1)[1]
    assert "    | zmq.error.ZMQError: Address already in use" in kernel_said
    assert "1 notebook(s) could not run (not a regression)" in captured.out
    error = ET.parse("out/junit.xml").getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "could not run"
    assert "Address already in use" in (error.text or "")
    assert "Address already in use" in Path("out/report/index.html").read_text(encoding="utf-8")
    assert kernel_children() == []

    assert main(["run", "nb.ipynb", "--html", "out/nb.html"]) == 3
    err = capsys.readouterr().err
    assert "kailash-nb: could not run: nb.ipynb: the kernel could not bind its port" in err
    assert kernel_children() == []


def test_a_notebook_that_kills_its_own_kernel_is_kernel_died_and_never_retried(
        workdir: Path, held_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    write(workdir / "dies.ipynb", "import os\nos._exit(1)", "print('after')")
    made = kernels_on_port(monkeypatch, held_port, first=0)  # count the starts, hold no port

    assert main(["check", "--junitxml", "out/junit.xml", "--no-report", "dies.ipynb"]) == 1
    captured = capsys.readouterr()

    assert len(made) == 1
    assert retries(captured.err) == []
    assert "FAILED dies.ipynb::cell 1: import os\n  kernel died: the kernel died while the cell ran" in captured.out
    cases = {case.get("name"): case for case in ET.parse("out/junit.xml").getroot().iter("testcase")}
    failure = cases["cell 1: import os"].find("failure")
    assert failure is not None and failure.get("type") == "kernel died"
    assert ET.parse("out/junit.xml").getroot().get("errors") == "0"

    assert main(["run", "dies.ipynb", "--html", "out/dies.html"]) == 1
    captured = capsys.readouterr()
    assert len(made) == 2 and retries(captured.err) == []
    assert "FAILED cell 1, In [1]: DeadKernelError" in captured.out or "DeadKernelError" in captured.out


NOISY_AT_EXIT = (
    "import atexit, os, sys\n"
    "def goodbye():\n"
    "    print('NOISE WHILE THE KERNEL SHUTS DOWN', file=sys.__stderr__, flush=True)\n"
    "    open('stopped-politely', 'w').close()\n"
    "atexit.register(goodbye)\n"
    "os.write(2, b'NOISE WHILE A CELL RUNS\\n')\n"
    "print('hello')"
)


@pytest.mark.parametrize("command", [
    ["check", "--no-report", "-n", "2", "a.ipynb", "b.ipynb"],
    ["update", "a.ipynb", "b.ipynb"],
    ["run", "a.ipynb", "--html", "out/a.html"],
], ids=lambda command: command[0])
def test_a_kernel_that_writes_to_stderr_while_shutting_down_adds_nothing_to_the_cli_output(
        workdir: Path, command: list[str]) -> None:
    write(workdir / "a.ipynb", NOISY_AT_EXIT)
    write(workdir / "b.ipynb", NOISY_AT_EXIT)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "JPY_"))}

    run = subprocess.run([sys.executable, "-m", "kailash_nb.cli", *command], env=env, capture_output=True,
                         text=True, timeout=300)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr == ""
    assert "NOISE" not in run.stdout
    assert Path("stopped-politely").exists()  # a shutdown request, not a kill: its atexit handlers ran


def test_a_failing_notebook_shows_what_its_kernel_printed_and_a_passing_one_does_not(workdir: Path) -> None:
    write(workdir / "quiet.ipynb", "import os\nos.write(2, b'NOISE OF A PASSING NOTEBOOK\\n')")
    write(workdir / "fails.ipynb", "import os\nos.write(2, b'WHAT THE KERNEL SAID\\n')\nraise ValueError('no')")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "JPY_"))}

    run = subprocess.run([sys.executable, "-m", "kailash_nb.cli", "check", "--no-report", "quiet.ipynb",
                          "fails.ipynb"], env=env, capture_output=True, text=True, timeout=300)

    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr == ""
    assert "  kernel output of fails.ipynb:\n    | WHAT THE KERNEL SAID\n" in run.stdout
    assert "NOISE OF A PASSING NOTEBOOK" not in run.stdout


def test_pytest_nbval_retries_a_kernel_that_dies_before_answering(pytester: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JPY_SESSION_NAME", "FORCE_COLOR", "PY_COLORS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest('''
        import socket

        import nbval.kernel

        HELD = socket.socket()
        HELD.bind(("127.0.0.1", 0))
        HELD.listen()
        MADE = []


        class FirstOnAHeldPort(nbval.kernel.KernelManager):
            """nbval's first kernel gets a shell port that this process listens on: its bind fails."""

            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                if not MADE:
                    self.cache_ports = False
                    self.shell_port = HELD.getsockname()[1]
                MADE.append(self)


        nbval.kernel.KernelManager = FirstOnAHeldPort
    ''')
    notebook = write(pytester.path / "nb.ipynb", "print(6 * 7)")
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[0].execution_count = 1
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    nbformat.write(nb, notebook)

    result = pytester.runpytest_subprocess("--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
                                           f"--nbval-sanitize-with={sanitize_file_path()}", timeout=300)

    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines(["kailash-nb: nb.ipynb: the kernel died before answering; starting it again on "
                                 "fresh ports (try 2 of 3)"])


def test_a_kernel_that_dies_at_start_for_a_reason_outside_the_notebook_is_retried_then_could_not_run(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    write(workdir / "nb.ipynb", "print(6 * 7)")
    real = kernel_module.kernel_manager
    made: list[Any] = []

    def broken_python(*args: Any, **kwargs: Any) -> Any:
        made.append(real({"PYTHONHOME": str(workdir / "no-such-python")}))  # the interpreter cannot start
        return made[-1]

    monkeypatch.setattr(kernel_module, "kernel_manager", broken_python)

    assert main(["check", "--no-report", "nb.ipynb"]) == 3
    captured = capsys.readouterr()

    assert len(made) == 3
    assert [attempt for _, _, attempt in retries(captured.err)] == ["2", "3"]
    assert "ERROR nb.ipynb  could not run: the kernel died before answering (" in captured.out
    assert "    | Fatal Python error" in captured.out
    assert kernel_children() == []


def test_exit_3_when_notebooks_only_could_not_run_and_1_when_a_cell_also_failed(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    write(workdir / "fine.ipynb", "print(1)")
    write(workdir / "raises.ipynb", "raise ValueError('no')")

    assert main(["update", "broken.ipynb", "fine.ipynb"]) == 3
    assert main(["update", "broken.ipynb", "raises.ipynb"]) == 1
    assert main(["check", "--no-report", "broken.ipynb", "fine.ipynb"]) == 3
    assert main(["check", "--no-report", "broken.ipynb", "raises.ipynb"]) == 1
    assert main(["run", "broken.ipynb", "--html", "out/broken.html"]) == 3
    assert main(["run", "missing.ipynb", "--html", "out/missing.html"]) == 2  # a usage error, as before
    out = capsys.readouterr().out
    assert "not updated: broken.ipynb: could not run: cannot read broken.ipynb as a notebook" in out
