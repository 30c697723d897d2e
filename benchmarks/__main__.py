"""Run every benchmark script (``bench_*.py``), or those named: ``python -m benchmarks engine notebooks``.

``soak`` runs only when named (``python -m benchmarks soak``): with its defaults it takes about 20 minutes. Options
after one name go to that script: ``python -m benchmarks soak --starts 100 --checks 3 --nbval 3``.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
ON_REQUEST = frozenset({"soak"})


def main(argv: list[str]) -> int:
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    names, options = [name.replace("-", "_") for name in argv[:split]], argv[split:]  # virtual-time
    if options and len(names) != 1:
        print("options go to one benchmark: python -m benchmarks NAME [OPTION ...]", file=sys.stderr)
        return 2
    scripts = sorted(HERE.glob("bench_*.py"))
    if not names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") not in ON_REQUEST]
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
        if not scripts:
            known = ", ".join(s.stem.removeprefix("bench_") for s in sorted(HERE.glob("bench_*.py")))
            print(f"no benchmark named {', '.join(names)}; known: {known}", file=sys.stderr)
            return 2
    failed = 0
    for script in scripts:
        sys.argv = [str(script), *options]  # with no options, each script runs with its defaults
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit:
            failed += exit.code not in (None, 0)
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
