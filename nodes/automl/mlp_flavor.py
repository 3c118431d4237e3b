"""The `mlp` flavor: a small PyTorch network stored as plain data, never as pickle.

A model folder holds `model.json` (format version, architecture, the fitted input encoding, the problem type and
classes, the target scaling for regression) and `weights.npz` (one float32 array per parameter, named as in the
network's state_dict). Loading rebuilds the network from the JSON and reads the arrays with
`np.load(allow_pickle=False)`, so opening a model can never run code from the file (torch.save would be pickle).

The encoding lives here, not in the node, because training and scoring must prepare features identically:
- numbers (and booleans as 0/1) are standardised with the training mean and standard deviation; a missing value
  (null, NaN or infinite) becomes 0 after scaling, i.e. the training mean, and every column that had missing values
  in training gets an extra 0/1 `<column> missing` input so the network can still tell "missing" from "average";
- text columns are one-hot over the categories kept in training (the most frequent ones, see the node); a value not
  kept in training, and a missing value, gives all zeros.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.fileio import atomic_write_bytes, atomic_write_text
from engine.i18n import tr
from engine.ports import ModelRef
from nodes.automl.flavors import Scores

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
FORMAT = 1
_BATCH = 65_536  # rows scored at once: bounds memory on large tables


# ---- encoding -----------------------------------------------------------------------------------------------
def fit_numeric(name: str, col: pl.Series) -> dict[str, Any]:
    """Scaling parameters of one numeric or boolean column, from the training rows."""
    values = _as_float(col)
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if finite.size else 0.0
    std = float(finite.std()) if finite.size else 0.0
    return {"name": name, "kind": "numeric", "mean": mean, "std": std if std > 0 else 1.0,
            "missing_indicator": bool(finite.size < values.size)}


def fit_text(name: str, col: pl.Series, max_categories: int, min_rows: int) -> dict[str, Any]:
    """One-hot categories of one text column: those with at least `min_rows` training rows, the `max_categories`
    most frequent (ties by value, so the choice is deterministic)."""
    counts = (col.cast(pl.String).drop_nulls().alias("value").value_counts(name="count")
              .filter(pl.col("count") >= min_rows)
              .sort(["count", "value"], descending=[True, False]).head(max_categories))
    return {"name": name, "kind": "text", "categories": sorted(counts["value"].to_list())}


def width(encoding: list[dict[str, Any]]) -> int:
    """Number of network inputs the encoding produces."""
    return sum(len(c["categories"]) if c["kind"] == "text" else 1 + int(c["missing_indicator"]) for c in encoding)


def input_names(encoding: list[dict[str, Any]]) -> list[str]:
    """A readable name per network input, in order (for the report and for debugging a model file)."""
    names: list[str] = []
    for c in encoding:
        if c["kind"] == "text":
            names.extend(f"{c['name']}={v}" for v in c["categories"])
        else:
            names.append(c["name"])
            if c["missing_indicator"]:
                names.append(f"{c['name']} missing")
    return names


def encode(encoding: list[dict[str, Any]], features: pl.DataFrame) -> np.ndarray:
    """The float32 input matrix for `features` (already checked by flavors.prepare), as in training."""
    out = np.zeros((features.height, width(encoding)), dtype=np.float32)
    pos = 0
    for c in encoding:
        col = features[c["name"]]
        if c["kind"] == "text":
            cats = c["categories"]
            codes = col.cast(pl.String).replace_strict(cats, list(range(len(cats))), default=None,
                                                       return_dtype=pl.Int64).to_numpy()
            known = ~np.isnan(codes) if codes.dtype.kind == "f" else np.ones(codes.shape, bool)
            rows = np.flatnonzero(known)
            out[rows, pos + codes[known].astype(np.int64)] = 1.0
            pos += len(cats)
        else:
            values = _as_float(col)
            missing = ~np.isfinite(values)
            out[:, pos] = np.where(missing, 0.0, (values - c["mean"]) / c["std"])
            pos += 1
            if c["missing_indicator"]:
                out[:, pos] = missing
                pos += 1
    return out


def _as_float(col: pl.Series) -> np.ndarray:
    """float64 values with NaN for missing; booleans as 0/1, an all-null column as all NaN."""
    return col.cast(pl.Float64, strict=False).fill_null(float("nan")).to_numpy()


# ---- network ------------------------------------------------------------------------------------------------
def build_network(arch: dict[str, Any]) -> Any:
    """The torch module described by `arch` (inputs, hidden sizes, dropout, outputs); ReLU between layers."""
    import torch

    layers: list[Any] = []
    size = int(arch["inputs"])
    for hidden in arch["hidden"]:
        layers += [torch.nn.Linear(size, int(hidden)), torch.nn.ReLU(), torch.nn.Dropout(float(arch["dropout"]))]
        size = int(hidden)
    layers.append(torch.nn.Linear(size, int(arch["outputs"])))
    return torch.nn.Sequential(*layers)


# ---- storage ------------------------------------------------------------------------------------------------
def save(folder: Path, doc: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    """Write model.json and weights.npz atomically (weights first: a folder with model.json is complete)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()})
    atomic_write_bytes(Path(folder) / WEIGHTS_FILE, buf.getvalue())
    atomic_write_text(Path(folder) / MODEL_FILE, json.dumps({"format": FORMAT, **doc}, sort_keys=True,
                                                            ensure_ascii=False))


def read_doc(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((Path(folder) / MODEL_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise NodeInputError(tr("Cannot read the neural network model in {path}: {error}", path=str(folder),
                                error=str(exc))) from None
    if doc.get("format") != FORMAT:
        raise NodeInputError(tr("The neural network model in {path} has format {found}; this version reads format "
                                "{want}", path=str(folder), found=doc.get("format"), want=FORMAT))
    return doc


def load_weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(Path(folder) / WEIGHTS_FILE, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def load_network(folder: Path, doc: dict[str, Any]) -> Any:
    """The network in evaluation mode on the CPU, its weights checked name by name and shape by shape."""
    import torch

    net = build_network(doc["architecture"])
    weights = load_weights(folder)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        raise NodeInputError(tr("The weights in {path} do not match the network described in {doc}",
                                path=str(Path(folder) / WEIGHTS_FILE), doc=MODEL_FILE))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    return net.eval()


# ---- scoring ------------------------------------------------------------------------------------------------
def raw_outputs(net: Any, x: np.ndarray, device: Any = "cpu") -> np.ndarray:
    """The network's outputs (logits, or the scaled target) for the matrix `x`, in batches, without gradients."""
    import torch

    parts = []
    with torch.no_grad():
        for start in range(0, x.shape[0], _BATCH):
            batch = torch.from_numpy(x[start:start + _BATCH]).to(device)
            parts.append(net(batch).double().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, net[-1].out_features))


def scores_from_outputs(doc: dict[str, Any], out: np.ndarray) -> Scores:
    """Turn raw outputs into Scores: probabilities per class named str(class), labels in their own type."""
    problem_type = doc["problem_type"]
    if problem_type == "regression":
        target = doc["target"]
        return Scores(out[:, 0] * target["std"] + target["mean"], None, [], problem_type, None)
    values = doc["class_values"]
    if problem_type == "binary":
        p1 = np.exp(-np.logaddexp(0.0, -out[:, 0]))  # the logistic function, without overflow
        proba = np.column_stack([1.0 - p1, p1])
    else:
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        proba = shifted / shifted.sum(axis=1, keepdims=True)
    prediction = np.asarray(values)[np.argmax(proba, axis=1)] if len(out) else np.asarray(values)[:0]
    frame = pl.DataFrame({str(v): proba[:, i] for i, v in enumerate(values)})
    positive = values[1] if problem_type == "binary" else None
    return Scores(prediction, frame, list(values), problem_type, positive)


def score(model: ModelRef, features: pl.DataFrame) -> Scores:
    doc = read_doc(model.path)
    net = load_network(model.path, doc)
    return scores_from_outputs(doc, raw_outputs(net, encode(doc["encoding"], features)))


# ---- explaining -----------------------------------------------------------------------------------------------
IG_STEPS = 64  # points on the path from the baseline: enough that the attributions add up to within ~1%
_IG_BATCH = 4_096  # rows explained at once (each needs IG_STEPS forward and backward passes)


def contributions(model: ModelRef, features: pl.DataFrame) -> pl.DataFrame:
    """Integrated gradients (Sundararajan et al., 2017) per feature: its share of the row's raw score (log-odds of
    the positive class for binary models, the prediction for regression) relative to the all-zero input, which is
    the training means with no missing flag and no category set: an "average applicant".

    The shares add up to the row's score minus the baseline's (up to the path integral's discretisation), so
    reason codes rank the features that moved this row furthest from the average one. A feature's one-hot and
    missing-flag inputs are summed into it. The cost is IG_STEPS backward passes per row."""
    import torch

    doc = read_doc(model.path)
    if doc["problem_type"] not in ("binary", "regression"):
        raise NodeInputError(tr("Per-row contributions are available for binary and regression models; this model "
                                "is {kind}", kind=doc["problem_type"]))
    net = load_network(model.path, doc)
    x = encode(doc["encoding"], features)
    alphas = (np.arange(IG_STEPS, dtype=np.float32) + 0.5) / IG_STEPS  # midpoint rule along the straight path
    attributions = np.zeros(x.shape, dtype=np.float64)
    for start in range(0, x.shape[0], _IG_BATCH):
        rows = torch.from_numpy(x[start:start + _IG_BATCH])
        total = torch.zeros_like(rows)
        for alpha in alphas:
            point = (rows * float(alpha)).requires_grad_(True)
            (gradient,) = torch.autograd.grad(net(point)[:, 0].sum(), point)
            total += gradient
        attributions[start:start + _IG_BATCH] = (rows * total / IG_STEPS).double().numpy()
    if doc["problem_type"] == "regression":  # the network predicts the standardised target
        attributions *= doc["target"]["std"]
    per_feature: dict[str, np.ndarray] = {}
    pos = 0
    for c in doc["encoding"]:
        n = len(c["categories"]) if c["kind"] == "text" else 1 + int(c["missing_indicator"])
        per_feature[c["name"]] = attributions[:, pos:pos + n].sum(axis=1)
        pos += n
    names = model.info["features"]
    return pl.DataFrame({name: per_feature.get(name, np.zeros(x.shape[0])) for name in names},
                        schema={name: pl.Float64 for name in names})
