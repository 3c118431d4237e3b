"""Synthetic sample data with a known generating process, for demos, tests and benchmarks (see credit.py)."""
