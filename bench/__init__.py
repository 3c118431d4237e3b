"""Benchmarks for the issue targets. Each prints our figure beside its anchor, measured in the same run."""
