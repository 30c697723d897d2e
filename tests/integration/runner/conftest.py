"""Fixtures of the runner's integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder that is also the current one: notebooks are named relative to it, as on a command line."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
