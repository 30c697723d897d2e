"""pytest plugin for kailash_nb, registered through the ``pytest11`` entry point."""

from __future__ import annotations

import pytest

MARKERS = {
    "unit": "Unit tests",
    "integration": "Integration tests",
    "e2e": "End-to-end tests",
    "slow": "Slow tests that may take time",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
