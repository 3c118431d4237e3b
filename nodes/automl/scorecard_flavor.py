"""The `scorecard` flavor: a points scorecard stored as one plain JSON file (`scorecard.json`), no pickle.

The file holds, per feature, the bins (numeric split points or category groups) with their WOE and points, the
logistic regression's coefficient and intercept, and the points scaling (see nodes/automl/scorecard.py).

Bin rules, the same as optbinning's transform so a row lands in the bin the model was fitted with:
- numeric bins are closed on the left, (-inf, s1), [s1, s2), ..., [sk, inf) (numpy.digitize(right=False));
- null and NaN go to the Missing bin (last in the list): its WOE was fitted on the training rows that had missing
  values, and is 0 (neutral) when there were none;
- a category not seen in training also goes to the Missing bin. optbinning's Scorecard.score does the same (its
  bin index -1 for unknown categories picks the last row, Missing); one rule keeps a row's points and probability
  consistent, and treats a new code as conservatively as an absent one.

Everything is vectorised: polars maps each feature column to bin numbers, numpy gathers the per-bin values.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import ModelRef
from nodes.automl.flavors import Scores
from nodes.features.transforms.common import as_key, float_values

FILE = "scorecard.json"
FORMAT = "ledgerflow.scorecard"
MISSING = "Missing"
log = logging.getLogger("ledgerflow.model")  # Predict shows these scoring warnings in its node log


def load(model: ModelRef) -> dict:
    """The scorecard document; a clear error for a folder that does not hold one."""
    path = Path(model.path) / FILE
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise NodeInputError(tr("The scorecard model file {path} cannot be read: {error}", path=str(path),
                                error=str(exc))) from None
    if doc.get("format") != FORMAT:
        raise NodeInputError(tr("{path} is not a scorecard model file", path=str(path)))
    return doc


# ---- bins ------------------------------------------------------------------------------------------------------
def bin_index(feature: dict, dtype: pl.DataType) -> pl.Expr:
    """Each row's bin number for one stored feature: 0..k-1 for the bins, k for Missing (also unseen categories)."""
    name = feature["name"]
    missing = len(feature["bins"]) - 1
    if feature["type"] == "numeric":
        x = float_values(name, dtype)
        idx = pl.lit(pl.Series(feature["splits"], dtype=pl.Float64)).search_sorted(x, side="right").cast(pl.Int64)
        return pl.when(x.is_null()).then(pl.lit(missing, pl.Int64)).otherwise(idx).alias(name)
    key = _category_key(feature, dtype)
    cats = [c for group in feature["groups"] for c in group]
    codes = [i for i, group in enumerate(feature["groups"]) for _ in group]
    known = key.replace_strict(cats, codes, default=missing, return_dtype=pl.Int64) if cats \
        else pl.lit(missing, pl.Int64)
    return pl.when(key.is_null()).then(pl.lit(missing, pl.Int64)).otherwise(known).alias(name)


def _category_key(feature: dict, dtype: pl.DataType) -> pl.Expr:
    # booleans were fitted as "true"/"false"; the same column may arrive as 0/1 numbers (flavors.prepare allows it)
    name = feature["name"]
    return pl.col(name).cast(pl.Boolean).cast(pl.String) if feature.get("boolean") and dtype.is_numeric() \
        else as_key(name)


def warn_unseen(doc_features: list[dict], frame: pl.DataFrame) -> None:
    """Log how many rows of each categorical feature hold a category not seen in training (scored as Missing)."""
    cat = [f for f in doc_features if f["type"] == "categorical"]
    if not cat or frame.height == 0:
        return
    schema = frame.schema
    counts = frame.select([(key.is_not_null() & ~key.is_in([c for g in f["groups"] for c in g])).sum()
                           .alias(f["name"]) for f in cat for key in [_category_key(f, schema[f["name"]])]]).row(0)
    for f, n in zip(cat, counts):
        if n:
            log.warning(tr("column {col!r}: {n} value(s) not seen in training, scored as missing", col=f["name"],
                           n=n))


def bin_codes(doc_features: list[dict], frame: pl.DataFrame) -> np.ndarray:
    """The bin numbers of every row (rows x features, int64), for the stored features in order."""
    if not doc_features:
        return np.zeros((frame.height, 0), dtype=np.int64)
    schema = frame.schema
    codes = frame.select([bin_index(f, schema[f["name"]]) for f in doc_features])
    return codes.to_numpy().astype(np.int64, copy=False).reshape(frame.height, len(doc_features))


def _gather(doc_features: list[dict], codes: np.ndarray, key: str) -> np.ndarray:
    """Per-bin values (`woe` or `points`) looked up for each row's bin: rows x features, float64."""
    out = np.empty(codes.shape, dtype=np.float64)
    for j, f in enumerate(doc_features):  # a loop over features; rows are gathered at once
        out[:, j] = np.asarray([b[key] for b in f["bins"]], dtype=np.float64)[codes[:, j]]
    return out


def woe_matrix(doc_features: list[dict], frame: pl.DataFrame) -> np.ndarray:
    """The WOE inputs of the logistic regression (rows x features); training fits on exactly this."""
    return _gather(doc_features, bin_codes(doc_features, frame), "woe")


def _log_odds(doc: dict, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature terms beta_j * WOE_ij and the event's log-odds (intercept + their sum, as sklearn adds them)."""
    woe = woe_matrix(doc["features"], features)
    beta = np.asarray([f["coefficient"] for f in doc["features"]], dtype=np.float64)
    return woe * beta, woe @ beta + float(doc["intercept"])


# ---- the flavor interface --------------------------------------------------------------------------------------
def score(model: ModelRef, features: pl.DataFrame) -> Scores:
    """Event probability from the logistic regression on the bins' WOE; prediction at probability 0.5."""
    from scipy.special import expit

    doc = load(model)
    warn_unseen(doc["features"], features)
    _, z = _log_odds(doc, features)
    p = expit(z)
    non_event, event = model.info["class_values"]
    proba = pl.DataFrame({str(non_event): 1.0 - p, str(event): p})
    prediction = np.asarray([non_event, event])[(p >= 0.5).astype(np.int64)]
    return Scores(prediction, proba, [non_event, event], "binary", event)


def points(model: ModelRef, features: pl.DataFrame) -> pl.Series:
    """Each row's total points (higher = safer): Int64 when the scorecard's points are rounded, else Float64."""
    doc = load(model)
    total = _gather(doc["features"], bin_codes(doc["features"], features), "points").sum(axis=1)
    if doc["scaling"].get("rounded"):
        return pl.Series("points", np.rint(total).astype(np.int64))
    return pl.Series("points", total)


def contributions(model: ModelRef, features: pl.DataFrame) -> pl.DataFrame:
    """beta_j * WOE_ij per feature: additive terms of the event's log-odds (the intercept is left out)."""
    doc = load(model)
    terms, _ = _log_odds(doc, features)
    return pl.DataFrame({f["name"]: terms[:, j] for j, f in enumerate(doc["features"])},
                        schema={f["name"]: pl.Float64 for f in doc["features"]})


def bins(model: ModelRef, features: pl.DataFrame) -> pl.DataFrame:
    """Each row's bin label per feature (String), e.g. for reason codes or an audit of a decision."""
    doc = load(model)
    codes = bin_codes(doc["features"], features)
    return pl.DataFrame({f["name"]: np.asarray([b["label"] for b in f["bins"]], dtype=object)[codes[:, j]]
                         for j, f in enumerate(doc["features"])},
                        schema={f["name"]: pl.String for f in doc["features"]})

