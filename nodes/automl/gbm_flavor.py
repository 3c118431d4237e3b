"""The `lightgbm` flavor: a folder with `model.txt` in LightGBM's own text format (auditable, no pickle).

`encode` turns a prepared feature table into the float64 matrix the booster was trained on, and is the one encoder
used for training, scoring, explaining and export, so they can never disagree: numbers as float64 (null -> NaN),
booleans as 0/1, text as its index in `info["categories"][col]` (unseen or null -> NaN, which LightGBM scores as
missing). Contributions come from LightGBM's built-in TreeSHAP (`pred_contrib=True`): exact, additive and with no
extra package.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import ModelRef
from nodes.automl.flavors import Scores

MODEL_FILE = "model.txt"
log = logging.getLogger("ledgerflow.model")


def encode_counting(info: dict, features: pl.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """The model matrix, plus how many values per text column were not seen in training (scored as missing)."""
    categories: dict[str, list[str]] = info.get("categories") or {}
    columns: list[pl.Series] = []
    unseen: dict[str, int] = {}
    for name in info["features"]:
        col = features[name]
        if name in categories:
            labels = categories[name]
            text = col.cast(pl.String)
            codes = text.replace_strict(labels, list(range(len(labels))), default=None, return_dtype=pl.Float64)
            n_unseen = int((text.is_not_null() & codes.is_null()).sum())
            if n_unseen:
                unseen[name] = n_unseen
            columns.append(codes)
        else:  # numeric or boolean (true -> 1.0); an all-null column arrives as the Null type
            columns.append(col.cast(pl.Float64))
    if not columns:
        return np.empty((features.height, 0), dtype=np.float64), unseen
    matrix = pl.DataFrame(columns).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)
    return np.ascontiguousarray(matrix), unseen


def encode(model: ModelRef, features: pl.DataFrame) -> np.ndarray:
    """(rows, features) float64 matrix in `info["features"]` order; warns how many unseen categories became NaN."""
    matrix, unseen = encode_counting(model.info, features)
    for name, n in unseen.items():
        log.warning(tr("column {col!r}: {n} value(s) not seen in training, scored as missing", col=name, n=n))
    return matrix


def booster(model: ModelRef) -> Any:
    """The loaded booster; cached per file and modification time, so scoring one row at a time stays fast."""
    path = os.path.abspath(os.path.join(model.path, MODEL_FILE))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NodeInputError(tr("The LightGBM model folder {path} has no {file}", path=str(model.path),
                                file=MODEL_FILE)) from None
    return _load(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> Any:  # mtime and size are part of the cache key only
    import lightgbm as lgb

    return lgb.Booster(model_file=path)


def score(model: ModelRef, features: pl.DataFrame) -> Scores:
    info = model.info
    raw = booster(model).predict(encode(model, features))
    problem_type = info["problem_type"]
    if problem_type == "regression":
        return Scores(np.asarray(raw, dtype=np.float64), None, [], problem_type, None)
    values = info["class_values"]
    if problem_type == "binary":  # the positive class (the second) from a probability of 0.5 up
        proba = np.column_stack([1.0 - raw, raw])
        picked = (raw >= 0.5).astype(np.int64)
    else:
        proba = np.asarray(raw, dtype=np.float64).reshape(len(features), len(values))
        picked = np.argmax(proba, axis=1)
    prediction = pl.Series(values).gather(picked).to_numpy()
    table = pl.DataFrame({str(c): proba[:, i] for i, c in enumerate(values)})
    positive = values[1] if problem_type == "binary" else None
    return Scores(prediction, table, list(values), problem_type, positive)


def contributions(model: ModelRef, features: pl.DataFrame) -> pl.DataFrame:
    """TreeSHAP contributions per feature: log-odds of the positive class (binary) or the prediction (regression).

    Each row's contributions plus `expected_value(model, features)` add up to the raw score exactly."""
    full = _contrib_matrix(model, features)
    return pl.DataFrame({name: full[:, i] for i, name in enumerate(model.info["features"])},
                        schema={name: pl.Float64 for name in model.info["features"]})


def expected_value(model: ModelRef, features: pl.DataFrame) -> np.ndarray:
    """The per-row base value (the column `pred_contrib` adds after the features; the same for every row)."""
    return _contrib_matrix(model, features)[:, -1]


def _contrib_matrix(model: ModelRef, features: pl.DataFrame) -> np.ndarray:
    if model.info["problem_type"] not in ("binary", "regression"):
        raise NodeInputError(tr("Per-row contributions are available for binary and regression models; this model "
                                "is {kind}", kind=model.info["problem_type"]))
    x = encode(model, features)
    if x.shape[0] == 0:  # LightGBM divides by the row count here
        return np.empty((0, x.shape[1] + 1), dtype=np.float64)
    return np.asarray(booster(model).predict(x, pred_contrib=True), dtype=np.float64)
