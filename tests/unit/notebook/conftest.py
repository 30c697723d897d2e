"""An IPython ``InteractiveShell`` with the extension loaded, static output unless a test sets widgets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


def new_shell() -> InteractiveShell:
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


@pytest.fixture
def bare_shell(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A shell without the extension (a test loads it)."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
    monkeypatch.setenv("KAILASH_NB_WIDGETS", "0")
    ip = new_shell()
    try:
        yield ip
    finally:
        for module in sorted(ip.extension_manager.loaded):
            if module.startswith("kailash_nb"):
                ip.run_line_magic("unload_ext", module)
        InteractiveShell.clear_instance()


@pytest.fixture
def shell(bare_shell: InteractiveShell) -> InteractiveShell:
    bare_shell.run_line_magic("load_ext", "kailash_nb.notebook")
    return bare_shell
