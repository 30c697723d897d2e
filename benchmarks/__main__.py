"""Run every benchmark script (``bench_*.py``), or those named: ``python -m benchmarks engine``."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
        if not scripts:
            known = ", ".join(s.stem.removeprefix("bench_") for s in sorted(HERE.glob("bench_*.py")))
            print(f"no benchmark named {', '.join(names)}; known: {known}", file=sys.stderr)
            return 2
    for script in scripts:
        runpy.run_path(str(script), run_name="__main__")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
