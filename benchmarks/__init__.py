"""Benchmarks: ``python -m benchmarks`` runs every ``bench_*.py`` here and prints their tables."""
