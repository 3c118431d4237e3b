"""Profiling a synthetic bank table of 1,000,000 rows × 50 columns: the Profile node's analysis against polars'
`describe()`, each in its own process so peak memory is comparable.

The table: 30 numeric, 15 categorical (one with 100,000 distinct values), 5 date columns, 5% nulls everywhere.
The issue's main anchor is ydata-profiling in minimal mode (to a finished HTML report). It needs numpy, matplotlib
and scipy older than this project's lock, so it runs from its own environment, `.venv-anchors` (`make
bench-anchors`); without it the ydata rows say so. Target: at least 20x faster at no more than half its peak memory.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.common import report


def bank_table(rows: int = 1_000_000, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(30):
        cols[f"num_{i}"] = rng.lognormal(8, 1, rows) if i % 3 == 0 else rng.normal(i, 1 + i, rows)
    for i in range(14):
        cols[f"cat_{i}"] = rng.choice([f"c{k}" for k in range(3 + i * 3)], rows)
    cols["merchant_id"] = rng.integers(0, 100_000, rows).astype(str)  # high cardinality
    base = np.datetime64("2020-01-01")
    for i in range(5):
        cols[f"date_{i}"] = base + rng.integers(0, 2000, rows).astype("timedelta64[D]")
    df = pl.DataFrame(cols)
    mask = rng.random((rows, df.width)) < 0.05
    return df.with_columns([pl.when(pl.lit(pl.Series(mask[:, j]))).then(None).otherwise(pl.col(c)).alias(c)
                            for j, c in enumerate(df.columns)])


def _run(kind: str, path: str, out: mp.Queue) -> None:  # runs in a fresh process
    df = pl.read_parquet(path)
    if kind == "ours":
        # Libraries load before the clock starts, as for the anchor: its timer starts after `from ydata_profiling
        # import ProfileReport`, which has already loaded pandas, scipy and matplotlib (about 3 s).
        import matplotlib.figure  # noqa: F401

        from nodes.explore.profile import ProfileSettings, build_report, profile_table
    t0 = time.perf_counter()
    if kind == "ours":
        result = profile_table(df, ProfileSettings())
        build_report(result)
        detail = len(result.alerts)
    else:
        detail = df.describe().height
    out.put(json.dumps({"s": time.perf_counter() - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                        / 1024, "detail": detail}))


def _write(path: str) -> None:  # in its own process: the parent's peak memory is inherited by its children
    bank_table().write_parquet(path)


def in_process(target, *args) -> None:  # noqa: ANN001
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=target, args=args)
    proc.start()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"{target.__name__} failed with exit code {proc.exitcode}")


def measure(kind: str, path: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(kind, str(path), queue))
    proc.start()
    result = json.loads(queue.get(timeout=1800))
    proc.join()
    return result


ANCHORS_PYTHON = Path(__file__).resolve().parent.parent / ".venv-anchors" / "bin" / "python"


def ydata(path: Path) -> dict | None:
    if not ANCHORS_PYTHON.exists():
        return None
    script = Path(__file__).resolve().parent / "anchors" / "ydata_profile.py"
    out = subprocess.run([str(ANCHORS_PYTHON), str(script), str(path)], capture_output=True, text=True,
                         timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="lf-bench-profile-"))
    try:
        path = folder / "bank.parquet"
        in_process(_write, str(path))
        ours, describe, anchor = measure("ours", path), measure("describe", path), ydata(path)
        if anchor is None:
            print(f"{'profile vs ydata-profiling':<44} anchor not installed: run 'make bench-anchors'")
        else:
            report("profile 1M x 50 vs ydata minimal (s)", ours["s"], anchor["s"], "s", ">= 20x faster",
                   ours["s"] * 20 <= anchor["s"])
            report("profile 1M x 50 vs ydata, peak RSS (MB)", ours["peak_mb"], anchor["peak_mb"], "MB",
                   "<= 0.5x its memory", ours["peak_mb"] <= 0.5 * anchor["peak_mb"])
        report("profile 1M x 50 vs polars describe (s)", ours["s"], describe["s"], "s", "(for scale)", True)
        report("profile 1M x 50 vs describe, peak RSS (MB)", ours["peak_mb"], describe["peak_mb"], "MB",
               "(for scale)", True)
        print(f"{'':<44} ours: full profile with correlations, histograms, alerts and report figures "
              f"({ours['detail']} alerts); describe: {describe['detail']} summary rows per column")
        return {"ours": ours, "describe": describe, "ydata": anchor}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
