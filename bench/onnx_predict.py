"""Scoring with the exported ONNX package against LightGBM's own `Booster.predict`.

A LightGBM binary model with 500 trees on 50 numeric features (synthetic data), exported with our converter and
written as a model package; the package is then scored as a service would score it, through
`nodes.export.scoring.PackageScorer` (one call per applicant; a large batch split into one shard per core). Batch 1 (an online credit
decision: p50 and p99 over many calls; target ONNX >= 3x faster) and batch 10,000 (a nightly portfolio rescore:
median of several calls; target >= 1.5x faster). Both sides get the same float64 rows, prepared before the clock
starts (LightGBM's float64 matrix, the package's input tensors), so only the scoring call is timed; LightGBM
uses every core through OpenMP, the package through its shards. The largest probability difference is printed too.

Run: `PYTHONPATH=. .venv/bin/python -m bench.onnx_predict`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.common import best_of, report

N_FEATURES = 50
N_TREES = 500
TRAIN_ROWS = 20_000
ONLINE_CALLS = 3_000
BATCH = 10_000


def synthetic(rows: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Numeric features with a non-linear, interacting signal, so 500 trees of 31 leaves are really grown."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    x[rng.random(x.shape) < 0.02] = np.nan  # a few missing values, as in bank data
    z = np.nan_to_num(x)
    logit = z[:, :10] @ rng.normal(size=10) + np.sin(z[:, 10] * 2) + z[:, 11] * z[:, 12] - 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pl.DataFrame({f"f{i}": x[:, i] for i in range(N_FEATURES)}), y


def train(folder: Path):
    """The booster and its lightgbm-flavor ModelRef (the storage contract of nodes/automl/gbm_flavor.py)."""
    import lightgbm as lgb

    from engine.ports import ModelRef
    from nodes.automl.flavors import feature_kinds

    frame, y = synthetic(TRAIN_ROWS, seed=1)
    booster = lgb.train({"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "verbose": -1, "seed": 1},
                        lgb.Dataset(frame.to_numpy(), y), N_TREES)
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "model.txt"))
    info = {"label": "y", "problem_type": "binary", "features": frame.columns, "feature_kinds": feature_kinds(frame),
            "categories": {}, "classes": ["0", "1"], "class_values": [0, 1], "positive_class": "1",
            "train_rows": TRAIN_ROWS, "best_model": "LightGBM"}
    return booster, ModelRef("lightgbm", folder, info)


def export(model, holdout: pl.DataFrame, folder: Path) -> Path:
    """Our package, written by the Export ONNX node itself (conversion, parity check, manifest, signing)."""
    from engine.testing import run_node
    from nodes.export.onnx_export import ExportONNX

    run_node(ExportONNX, {"model": model, "holdout": holdout}, {"folder": str(folder), "package_name": "bench"})
    return folder / "bench"


def _percentiles(fn, calls: list) -> tuple[float, float]:
    """p50 and p99 in microseconds of `fn(arg)` over `calls` (after a warm-up)."""
    for arg in calls[:200]:
        fn(arg)
    times = np.empty(len(calls))
    for i, arg in enumerate(calls):
        t0 = time.perf_counter()
        fn(arg)
        times[i] = time.perf_counter() - t0
    return float(np.percentile(times, 50) * 1e6), float(np.percentile(times, 99) * 1e6)


def main() -> dict:
    from nodes.export.scoring import PackageScorer

    folder = Path(tempfile.mkdtemp(prefix="lf-bench-onnx-"))
    try:
        booster, model = train(folder / "gbm")
        holdout, _ = synthetic(BATCH, seed=2)
        package = export(model, holdout, folder / "packages")
        matrix = holdout.to_numpy().astype(np.float64)
        with PackageScorer(package) as scorer:
            rows = [i % 500 for i in range(ONLINE_CALLS)]
            native_rows = [matrix[i:i + 1] for i in range(500)]
            onnx_rows = [scorer.feeds(holdout.slice(i, 1)) for i in range(500)]
            n50, n99 = _percentiles(lambda i: booster.predict(native_rows[i]), rows)
            o50, o99 = _percentiles(lambda i: scorer.run(onnx_rows[i], ["probability"]), rows)

            batch_feed = scorer.feeds(holdout)
            booster.predict(matrix), scorer.run(batch_feed)  # warm-up: first calls allocate
            native_s = best_of(lambda: booster.predict(matrix), repeat=7)
            onnx_s = best_of(lambda: scorer.run(batch_feed, ["probability"]), repeat=7)
            diff = float(np.abs(scorer.run(batch_feed)["probability"] - booster.predict(matrix)).max())
        report("onnx batch 1 p50 vs Booster.predict (us)", o50, n50, "us", ">= 3x faster", o50 * 3 <= n50)
        report("onnx batch 1 p99 vs Booster.predict (us)", o99, n99, "us", ">= 3x faster", o99 * 3 <= n99)
        report("onnx batch 10k vs Booster.predict (ms)", onnx_s * 1e3, native_s * 1e3, "ms", ">= 1.5x faster",
               onnx_s * 1.5 <= native_s)
        print(f"{'':<44} {N_TREES} trees x {N_FEATURES} features, {os.cpu_count()} cores; max |p_native - p_onnx| "
              f"= {diff:.2e} over {BATCH} rows", flush=True)
        return {"batch1_p50_us": (o50, n50), "batch1_p99_us": (o99, n99), "batch10k_ms": (onnx_s * 1e3,
                native_s * 1e3), "max_abs_diff": diff}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
