"""Notebook regression tests, side by side on this machine: ``kailash-nb check -n 2`` against serial nbval.

    python benchmarks/bench_notebooks.py [--repeat N] [PATH ...]     (or: python -m benchmarks notebooks)

Runs, one after the other in this one process and on the same notebooks (default notebooks/): serial
``pytest --nbval`` (the baseline), ``pytest --nbval -n 2`` (pytest-xdist), and ``kailash-nb check -n 2``;
prints each command's wall time (the median of N rounds) and its ratio to the baseline. The target for
``check -n 2`` is at most 0.6x; on two cores the floor is about 0.45x (the notebooks are CPU-bound).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from time import perf_counter

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.6


def commands(paths: list[str], sanitize: str) -> dict[str, list[str]]:
    nbval = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", f"--nbval-sanitize-with={sanitize}",
             "-p", "no:cacheprovider", "-q", *paths]
    return {
        "pytest --nbval (serial)": nbval,
        "pytest --nbval -n 2": [*nbval, "-n", "2"],
        "kailash-nb check -n 2": [sys.executable, "-m", "kailash_nb.cli", "check", "-n", "2", "--no-report", *paths],
    }


def timed(command: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "NO_COLOR")}
    started = perf_counter()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = perf_counter() - started
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-20:])
        raise SystemExit(f"{' '.join(command[2:5])}... failed (exit {run.returncode}):\n{tail}")
    return seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every command (median shown)")
    parser.add_argument("paths", nargs="*", default=["notebooks"])
    args = parser.parse_args(argv)
    from kailash_nb.notebook import sanitize_file_path

    runs = commands(args.paths, sanitize_file_path())
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, command in runs.items():
            seconds[name].append(timed(command))
    baseline = statistics.median(seconds["pytest --nbval (serial)"])
    notebooks = sum(1 for p in args.paths for _ in (Path(ROOT, p).rglob("*.ipynb") if Path(ROOT, p).is_dir() else [p]))
    print(f"Notebooks as regression tests: {notebooks} notebook(s), {os.cpu_count()} cores, "
          f"median of {args.repeat} round(s)")
    print()
    print("| command                  |  wall time | vs serial nbval | target |")
    print("|--------------------------|-----------:|----------------:|-------:|")
    for name, values in seconds.items():
        median = statistics.median(values)
        target = f"<= {TARGET}x" if name.startswith("kailash-nb") else ""
        print(f"| {name:<24} | {median:8.1f} s | {median / baseline:14.2f}x | {target:>6} |")
    ratio = statistics.median(seconds["kailash-nb check -n 2"]) / baseline
    print()
    print(f"check -n 2 takes {ratio:.2f}x the time of serial nbval: target {'met' if ratio <= TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
