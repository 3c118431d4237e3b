"""Two processes registering different views at the same time: the registry lock keeps both."""
from __future__ import annotations

import multiprocessing
from datetime import datetime
from pathlib import Path

import polars as pl

from engine.featurestore import FeatureStore, FeatureView

ROUNDS = 8


def _register_many(root: str, name: str, start: multiprocessing.synchronize.Event) -> None:
    """Child process: wait for the common start signal, then register the same view several times."""
    data = pl.DataFrame({"cid": [1, 2], "ts": [datetime(2024, 1, 1)] * 2, "x": [1.0, 2.0]})
    start.wait(60)
    with FeatureStore(root) as fs:
        for i in range(ROUNDS):
            fs.register(FeatureView(name, "cid", "ts", ("x",)), data.with_columns(pl.col("x") + i))


def test_two_processes_registering_at_once_both_survive(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path), name, start)) for name in ("left", "right")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with FeatureStore(tmp_path) as fs:
        assert sorted(v.name for v in fs.views()) == ["left", "right"]
        for name in ("left", "right"):
            entry = fs._registry.views()[name]
            assert len(entry["parts"]) == ROUNDS  # no registration was lost to the other process
            assert fs.offline(name).collect().sort("cid")["x"].to_list() == [1.0 + ROUNDS - 1, 2.0 + ROUNDS - 1]
