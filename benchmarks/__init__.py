"""Benchmarks and evaluations of entity_linker (not part of the installed package).

Run from the repository root as modules, e.g. ``python -m benchmarks.bench_el``;
``benchmarks/results/`` holds the JSON results that BENCHMARKS.md reports and
``benchmarks.datasets`` the loaders of the external corpora (AIDA, geo).
"""
