"""Check GPU training on a machine with a CUDA GPU: the MLP node and AutoML (AutoGluon) with num_gpus=1.

Run from the repository root:  python scripts/gpu_check.py
Prints torch/CUDA versions and the device; trains the MLP node on CUDA and on the CPU with the same seed and checks
the parameters lived on the GPU and both give the same scores within tolerance; trains AutoML with GPU-capable
model families and reports which models AutoGluon fitted with a GPU. Exits 1 when a check fails, 0 when all pass,
and 0 with "no CUDA device: skipped" on a machine without CUDA (so CI may run it anywhere).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# cuBLAS reads this once, at its first use: set before torch touches the GPU so CUDA training is deterministic.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROBA_TOLERANCE = 1e-3  # CPU and GPU float32 kernels sum in different orders; a few epochs stay well within this
MLP_SETTINGS = {"label": "y", "epochs": 5, "hidden_layers": "64,32", "dropout": 0.0, "batch_size": 256,
                "learning_rate": 1e-3, "seed": 7}  # no dropout: its masks come from the device's own RNG
AUTOML_FAMILIES = ["NN_TORCH", "CAT", "XGB"]  # families that train on a GPU with the stock wheels


def synthetic(rows: int = 6000, seed: int = 0) -> Any:
    """A binary problem with numbers (some missing) and a text column, like a small credit table."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    segment = rng.choice(["retail", "sme", "corporate"], size=rows)
    logit = 1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + (segment == "sme") * 0.8
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    table = pl.DataFrame({f"x{i}": x[:, i] for i in range(8)}).with_columns(
        pl.Series("segment", segment), pl.Series("y", y))
    return table.with_columns(pl.when(pl.int_range(rows) % 17 == 0).then(None).otherwise(pl.col("x4")).alias("x4"))


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            self.failed.append(what)


def versions() -> None:
    import torch

    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    props = torch.cuda.get_device_properties(0)
    print(f"device 0: {torch.cuda.get_device_name(0)}, compute capability {props.major}.{props.minor}, "
          f"{props.total_memory / 2**30:.1f} GiB, {torch.cuda.device_count()} device(s)")


def check_mlp(checks: Checks, work: Path) -> None:
    import numpy as np
    import torch

    from engine.testing import run_node
    from nodes.automl import mlp_flavor
    from nodes.automl.flavors import score
    from nodes.automl.mlp import MLP

    print("MLP node")
    table = synthetic()
    train, valid = table.head(5000), table.tail(1000)
    built: list[Any] = []
    original = mlp_flavor.build_network

    def spy(arch: dict) -> Any:  # keep the training network, to see where its parameters live afterwards
        net = original(arch)
        built.append(net)
        return net

    mlp_flavor.build_network = spy
    torch.cuda.reset_peak_memory_stats()
    try:
        start = time.perf_counter()
        gpu = run_node(MLP, {"train": train, "valid": valid}, {**MLP_SETTINGS, "device": "cuda"},
                       workdir=work / "mlp_cuda")["model"]
        print(f"  cuda: {time.perf_counter() - start:.1f}s, {gpu.info['epochs_run']} epochs, "
              f"validation AUC {gpu.info['metrics'].get('auc', float('nan')):.4f}")
    finally:
        mlp_flavor.build_network = original
    params = list(built[0].parameters()) if built else []
    checks.check(gpu.info["device"] == "cuda", "the model records device cuda")
    checks.check(bool(params) and all(p.device.type == "cuda" for p in params),
                 "the training network's parameters live on CUDA")
    checks.check(torch.cuda.max_memory_allocated() > 0, "torch allocated GPU memory while training")

    again = run_node(MLP, {"train": train, "valid": valid}, {**MLP_SETTINGS, "device": "cuda"},
                     workdir=work / "mlp_cuda_again")["model"]
    same = all(np.array_equal(a, b) for a, b in zip(mlp_flavor.load_weights(gpu.path).values(),
                                                      mlp_flavor.load_weights(again.path).values()))
    print(f"  cuda run twice with one seed gives identical weights: {same} (deterministic kernels, warn-only)")

    start = time.perf_counter()
    cpu = run_node(MLP, {"train": train, "valid": valid}, {**MLP_SETTINGS, "device": "cpu"},
                   workdir=work / "mlp_cpu")["model"]
    print(f"  cpu: {time.perf_counter() - start:.1f}s, {cpu.info['epochs_run']} epochs, "
          f"validation AUC {cpu.info['metrics'].get('auc', float('nan')):.4f}")
    p_gpu = score(gpu, valid).proba["1"].to_numpy()
    p_cpu = score(cpu, valid).proba["1"].to_numpy()
    diff = float(np.max(np.abs(p_gpu - p_cpu)))
    w_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(mlp_flavor.load_weights(gpu.path).values(),
                                                               mlp_flavor.load_weights(cpu.path).values()))
    print(f"  largest difference CPU vs CUDA: probability {diff:.2e}, weight {w_diff:.2e}")
    checks.check(cpu.info["epochs_run"] == gpu.info["epochs_run"], "CPU and CUDA ran the same epochs")
    checks.check(diff < PROBA_TOLERANCE, f"CPU and CUDA probabilities agree within {PROBA_TOLERANCE}")


def check_automl(checks: Checks, work: Path) -> None:
    from autogluon.tabular import TabularPredictor

    from engine.testing import run_node
    from nodes.automl.train import AutoML

    print(f"AutoML with {', '.join(AUTOML_FAMILIES)}")
    table = synthetic()
    start = time.perf_counter()
    out = run_node(AutoML, {"train": table.head(5000), "valid": table.tail(1000)},
                   {"label": "y", "time_limit_s": 180, "included_model_types": AUTOML_FAMILIES, "use_gpu": "yes"},
                   workdir=work / "automl")
    info = out["model"].info
    print(f"  {time.perf_counter() - start:.1f}s, best model {info['best_model']}")
    predictor = TabularPredictor.load(str(out["model"].path), verbosity=0)
    for name in predictor.model_names():
        meta = predictor.model_info(name)
        print(f"  {name:28s} num_gpus={meta.get('num_gpus')} num_cpus={meta.get('num_cpus')} "
              f"val_score={meta.get('val_score')}")
    print(f"  models on the GPU: {', '.join(info['models_on_gpu']) or 'none'}")
    checks.check(info["num_gpus"] == 1, "AutoML asked AutoGluon for one GPU")
    checks.check(info["used_gpu"], "AutoGluon fitted at least one model with the GPU")
    checks.check(out["feature_importance"].height > 0, "feature importance was measured on the validation rows")


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return 0
    versions()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for step in (check_mlp, check_automl):
            try:
                step(checks, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - report and go on to the next check: one run should show everything
                checks.check(False, f"{step.__name__} raised {type(exc).__name__}: {exc}")
    print("all checks passed" if not checks.failed else f"{len(checks.failed)} check(s) failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
