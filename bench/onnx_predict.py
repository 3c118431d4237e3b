"""Scoring with the exported ONNX package against LightGBM's own `Booster.predict`.

A LightGBM binary model with 500 trees on 50 numeric features (synthetic data), exported with our converter and
written as a model package; the package's model.onnx is then scored with onnxruntime. Batch 1 (an online credit
decision: p50 and p99 over many calls; target ONNX >= 3x faster) and batch 10,000 (a nightly portfolio rescore:
median of several calls; target >= 1.5x faster). Both sides get the same float64 rows, prepared before the clock
starts, so only the scoring call is timed. The largest probability difference is printed too.

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
    """Our package, written as the Export ONNX node writes it (conversion, manifest, atomic write)."""
    from nodes.export.onnx_convert import convert, input_specs
    from nodes.export.package import write_package

    converted = convert(model, input_specs(model, holdout))
    package = write_package(folder, "bench", {"model.onnx": converted.model.SerializeToString()},
                            {"package_name": "bench"})
    return package / "model.onnx"


def trees_only(booster, path: Path) -> Path:
    """onnxmltools' bare conversion (one float32 matrix in, no preparation, no named columns): what the package's
    one-input-per-column layout costs per call is the difference to the package's own figure."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    onx = convert_lightgbm(booster, initial_types=[("features", FloatTensorType([None, N_FEATURES]))], zipmap=False,
                           target_opset=15)
    path.write_bytes(onx.SerializeToString())
    return path


def session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # One row is microseconds of work: handing it to a thread pool costs more than it saves, so online scoring
    # uses one intra-op thread; a 10,000-row batch splits its rows over every core.
    opts.intra_op_num_threads = threads
    # The graph is a chain (prepare, concatenate, trees): sequential execution avoids the parallel executor's
    # scheduling overhead, and there are no independent branches for it to overlap anyway.
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


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
    from nodes.export.onnx_convert import feeds, input_specs

    folder = Path(tempfile.mkdtemp(prefix="lf-bench-onnx-"))
    try:
        booster, model = train(folder / "gbm")
        holdout, _ = synthetic(BATCH, seed=2)
        path = export(model, holdout, folder / "packages")
        specs = input_specs(model, holdout)
        matrix = holdout.to_numpy().astype(np.float64)

        online, batch = session(path, 1), session(path, os.cpu_count() or 1)
        rows = [i % 500 for i in range(ONLINE_CALLS)]
        native_rows = [matrix[i:i + 1] for i in range(500)]
        onnx_rows = [feeds(specs, holdout.slice(i, 1)) for i in range(500)]
        n50, n99 = _percentiles(lambda i: booster.predict(native_rows[i]), rows)
        o50, o99 = _percentiles(lambda i: online.run(["probability"], onnx_rows[i]), rows)

        batch_feed = feeds(specs, holdout)
        booster.predict(matrix), batch.run(["probability"], batch_feed)  # warm-up: first calls allocate
        native_s = best_of(lambda: booster.predict(matrix), repeat=7)
        onnx_s = best_of(lambda: batch.run(["probability"], batch_feed), repeat=7)

        trees = session(trees_only(booster, folder / "trees.onnx"), 1)
        f32 = matrix.astype(np.float32)
        t50, _ = _percentiles(lambda i: trees.run(None, {"features": f32[i:i + 1]}), rows)

        diff = float(np.abs(batch.run(["probability"], batch_feed)[0] - booster.predict(matrix)).max())
        report("onnx batch 1 p50 vs Booster.predict (us)", o50, n50, "us", ">= 3x faster", o50 * 3 <= n50)
        report("onnx batch 1 p99 vs Booster.predict (us)", o99, n99, "us", ">= 3x faster", o99 * 3 <= n99)
        report("onnx batch 10k vs Booster.predict (ms)", onnx_s * 1e3, native_s * 1e3, "ms", ">= 1.5x faster",
               onnx_s * 1.5 <= native_s)
        report("  for scale: trees only, one matrix input", t50, n50, "us", "(input layout cost)", True)
        print(f"{'':<44} {N_TREES} trees x {N_FEATURES} features, {os.cpu_count()} cores; max |p_native - p_onnx| "
              f"= {diff:.2e} over {BATCH} rows", flush=True)
        return {"batch1_p50_us": (o50, n50), "batch1_p99_us": (o99, n99), "batch10k_ms": (onnx_s * 1e3,
                native_s * 1e3), "max_abs_diff": diff}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
