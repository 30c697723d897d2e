"""Run every benchmark script (``bench_*.py``), or those named: ``python -m benchmarks engine notebooks``."""

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
    failed = 0
    for script in scripts:
        sys.argv = [str(script)]  # each script runs with its defaults (run one directly to pass options)
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit:
            failed += exit.code not in (None, 0)
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
