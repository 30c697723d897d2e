"""Fixtures of the browser smoke test: Debian's chromium, and JupyterLab on loopback in throwaway dirs.

Locally a missing browser or Playwright skips the test; under CI (``CI`` set) it fails instead, so the
smoke test cannot silently stop running there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_BROWSER = REPO / ".ci" / "install-browser"
SERVER_START_LIMIT = 90.0
SERVER_STOP_LIMIT = 30.0
OFFLINE_CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # whatever else happens, no name resolves to the network
]
LOCAL = ("file:", "data:", "about:")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI runs the browser smoke test: run .ci/install-browser and install .[test])")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, installed by .ci/install-browser when missing and we are root."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["bash", str(INSTALL_BROWSER)], check=False, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        _missing("Debian's chromium is not installed (bash .ci/install-browser)")
    return found


@pytest.fixture(scope="session")
def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; no browser download is needed)")
    return sync_playwright


@dataclass
class OfflinePage:
    """A Chromium page whose requests off this machine are refused, and what it asked and printed."""

    page: Any = None
    reached_network: list[str] = field(default_factory=list)  # requests refused: they would have left
    responses: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture
def offline_page(chromium_path: str,
                 sync_playwright: Any) -> Callable[..., contextlib.AbstractContextManager[OfflinePage]]:
    """``with offline_page(viewport=...) as seen: seen.page.goto(...)``: a page in Debian's Chromium whose
    every request to anything but a local file is refused and recorded in ``seen.reached_network``."""

    @contextlib.contextmanager
    def open_page(**context_options: Any) -> Iterator[OfflinePage]:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                 args=OFFLINE_CHROMIUM_ARGS)
            try:
                context = browser.new_context(**context_options)
                seen = OfflinePage()

                def local_only(route: Any) -> None:
                    if route.request.url.startswith(LOCAL):
                        route.continue_()
                    else:
                        seen.reached_network.append(route.request.url)
                        route.abort()

                context.route("**/*", local_only)
                seen.page = context.new_page()
                seen.page.on("response", lambda response: seen.responses.append(response.url))
                seen.page.on("console", lambda message: seen.console.append(message.text))
                yield seen
            finally:
                browser.close()

    return open_page


@dataclass(frozen=True)
class JupyterLab:
    url: str
    token: str
    root_dir: Path
    log: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LAB_SETTINGS = {
    # every cell attached to the DOM, so that the test sees all outputs without scrolling
    "notebook-extension/tracker": {"windowingMode": "none"},
    # no news or update toasts (and no requests for them)
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@pytest.fixture
def jupyter_lab() -> Iterator[JupyterLab]:
    """JupyterLab of this interpreter on 127.0.0.1 (random port, own token), in temp dirs removed after."""
    with tempfile.TemporaryDirectory(prefix="kailash-nb-lab-", ignore_cleanup_errors=True) as temp:
        home = Path(temp)
        root_dir = home / "root"
        root_dir.mkdir()
        config_dir = home / "config"
        config_dir.mkdir()
        # LabApp options that have no command-line form (None) stay in this throwaway config dir.
        (config_dir / "jupyter_lab_config.json").write_text(
            json.dumps({"LabApp": {"news_url": None}}), encoding="utf-8"
        )
        _lab_settings(home / "lab-settings")
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"KAILASH_NB_WIDGETS", "JPY_SESSION_NAME", "MPLBACKEND"}
        }
        env.update(
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
            IPYTHONDIR=str(home / "ipython"),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        port, token = _free_port(), secrets.token_hex(16)
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log = home / "jupyterlab.log"
        with open(log, "wb") as sink:
            server = subprocess.Popen(command, env=env, cwd=root_dir, stdout=sink, stderr=subprocess.STDOUT)
        lab = JupyterLab(f"http://127.0.0.1:{port}", token, root_dir, log)
        try:
            _wait_until_up(lab, server)
            yield lab
        finally:
            _shut_down(lab, server)


def _wait_until_up(lab: JupyterLab, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_LIMIT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_LIMIT:g} s:\n{lab.log_tail()}")


def _shut_down(lab: JupyterLab, server: subprocess.Popen) -> None:
    """Stop the kernels and the server through the API (kernels run in their own sessions), then make sure."""
    if server.poll() is None:
        try:
            for kernel in lab.api("GET", "/api/kernels") or []:
                lab.api("DELETE", f"/api/kernels/{kernel['id']}")
            lab.api("POST", "/api/shutdown")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            server.terminate()
    try:
        server.wait(timeout=SERVER_STOP_LIMIT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=SERVER_STOP_LIMIT)
