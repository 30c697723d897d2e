"""Import cost of the kit's entry points, from ``python -X importtime`` in fresh interpreters.

    python benchmarks/bench_imports.py        (or: python -m benchmarks imports)

The pytest plugin is loaded by every pytest run where kailash_nb is installed, so the kit's own modules
must cost it under 10 ms; ``kailash_nb.workflow`` is the engine's public import. Shown: the self time of
kailash_nb's own modules, and the whole import (with pytest, asyncio... when they are not loaded yet).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys

ROUNDS = 7
PLUGIN_TARGET_MS = 10.0
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def measure(module: str) -> tuple[float, float]:
    """(kailash_nb's own modules, the whole import) in ms for ``import module``, one fresh interpreter."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                         text=True, check=True)
    own = total = 0.0
    for match in _LINE.finditer(run.stderr):
        self_us, cumulative_us, indent, name = match.groups()
        if name.split(".")[0] == "kailash_nb":
            own += int(self_us) / 1000
        if name == module and len(indent) == 1:
            total = int(cumulative_us) / 1000
    return own, total


def main() -> int:
    print(f"Import time (python -X importtime, median of {ROUNDS} fresh interpreters)")
    print()
    print("| import                          | kailash_nb modules | whole import | target     |")
    print("|---------------------------------|-------------------:|-------------:|-----------:|")
    for module, target in (("kailash_nb.pytest_plugin", f"< {PLUGIN_TARGET_MS:g} ms"), ("kailash_nb.workflow", "")):
        samples = [measure(module) for _ in range(ROUNDS)]
        own = statistics.median(s[0] for s in samples)
        total = statistics.median(s[1] for s in samples)
        print(f"| import {module:<24} | {own:15.1f} ms | {total:9.1f} ms | {target:>10} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
