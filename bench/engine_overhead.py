"""Engine overhead: a 200-node chain of trivial in-process nodes vs a plain Python loop over the same functions.

Target: at most 2 ms added per node. "Ours" includes everything a real run does per node: cache-key hashing,
storing the output as a content-addressed Parquet artifact, the cache index and the run record in SQLite.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import polars as pl

from bench.benchnodes import step
from bench.common import bench_registry, best_of, report
from engine.graph import Edge
from engine.project import Project
from engine.scheduler import Session

N = 200


def build(folder: Path) -> Project:
    project = Project.new(folder, "overhead", bench_registry())
    g = project.graph
    prev = g.add_node("bench.source", {"n": 0}).id
    for _ in range(N - 1):
        nid = g.add_node("bench.step", {"n": 1}).id
        g.add_edge(Edge(prev, "table", nid, "table"))
        prev = nid
    return project


def plain_loop() -> pl.DataFrame:
    t = pl.DataFrame({"x": [0]})
    for _ in range(N - 1):
        t = step(t, 1)
    return t


def main() -> dict:
    anchor = best_of(plain_loop, repeat=7)
    runs = []
    for _ in range(3):
        folder = Path(tempfile.mkdtemp(prefix="lf-bench-"))
        project = build(folder / "p")
        with Session(project) as s:
            runs.append(best_of(lambda: s.run(), repeat=1))
            cached = best_of(lambda: s.run(), repeat=3)
        shutil.rmtree(folder)
    ours = sorted(runs)[1]
    per_node_ms = (ours - anchor) / N * 1000
    report(f"engine: {N}-node chain, first run (s)", ours, anchor, "s", "<= 2 ms/node added", per_node_ms <= 2)
    print(f"{'':<44} added per node: {per_node_ms:.3f} ms; unchanged re-run of the chain: {cached * 1000:.1f} ms")
    return {"per_node_ms": per_node_ms, "ours_s": ours, "anchor_s": anchor, "cached_rerun_s": cached}


if __name__ == "__main__":
    main()
