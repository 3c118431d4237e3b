"""Shared benchmark plumbing: a registry with the bench nodes, timing, and the one output format."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import nodes
from bench.benchnodes import BENCH_NODES
from engine.registry import Provenance, Registry


def bench_registry() -> Registry:
    reg = Registry()
    for cls in [*nodes.NODES, *BENCH_NODES]:
        reg.register(cls, Provenance("ledgerflow-bench", "0"))
    return reg


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of `repeat` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(name: str, ours: float, anchor: float, unit: str, target: str, verdict: bool) -> None:
    ratio = ours / anchor if anchor else float("inf")
    print(f"{name:<44} ours {ours:>10.3f} {unit:<5} anchor {anchor:>10.3f} {unit:<5} ratio {ratio:>7.3f}  "
          f"target {target:<28} {'MET' if verdict else 'MISSED'}", flush=True)
