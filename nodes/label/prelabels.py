"""Pre-labels from a model: a Predict output's predicted class and probabilities, turned into each item's suggested
label, the model's confidence in it, and the uncertainty that "uncertainty" ordering shows first (active learning).

Predict writes the prediction column and, for a binary model, one probability column (of the positive class; the
predicted class is the positive one from 0.5 up, so its probability is max(p, 1 - p)), or for a multiclass model one
`<probability>_<class>` column per class. Uncertainty is 1 - confidence ("least confidence") or 1 - the margin
between the two most likely classes ("margin").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from nodes.columns import require_columns


@dataclass
class Prelabels:
    """Per item (input order): suggested value or None, confidence and uncertainty (None when unknown)."""

    values: list[dict[str, Any] | None]
    confidences: list[float | None]
    uncertainties: list[float | None]

    def of(self, i: int) -> dict[str, Any]:
        return {"prelabel": self.values[i], "confidence": self.confidences[i], "uncertainty": self.uncertainties[i]}


def _aligned(predictions: pl.DataFrame, keys: list[str], id_column: str) -> pl.DataFrame:
    """The prediction rows in item order: joined on the id column when both sides have it, else row by row."""
    if id_column and id_column in predictions.columns:
        ids = predictions.get_column(id_column).cast(pl.String)
        dup = ids.filter(ids.is_not_null() & ids.is_duplicated())
        if len(dup):
            raise NodeInputError(tr("Predictions: the id {value!r} of column {col!r} appears more than once",
                                    value=dup[0], col=id_column))
        frame = predictions.with_columns(ids.alias("__key"))
        return pl.DataFrame({"__key": keys}).join(frame, on="__key", how="left", maintain_order="left")
    if predictions.height != len(keys):
        raise NodeInputError(tr("Predictions have {rows} rows but the task has {items} items; connect a Predict output "
                                "of the same table, or set the ID column (present in both) to match them by id",
                                rows=predictions.height, items=len(keys)))
    return predictions


def _label_names(values: list[Any], labels: list[str], column: str) -> list[str | None]:
    """Each predicted class as one of the task's labels (exact text, else ignoring case)."""
    exact = {name: name for name in labels}
    folded = {name.casefold(): name for name in labels}
    out: list[str | None] = []
    unknown: list[str] = []
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
            continue
        text = str(value)
        name = exact.get(text) or folded.get(text.casefold())
        if name is None and text not in unknown:
            unknown.append(text)
        out.append(name)
    if unknown:
        raise NodeInputError(tr("Prediction column {col!r} has classes that are not labels of this task: {classes}. "
                                "Name the labels after the model's classes (labels: {labels})", col=column,
                                classes=", ".join(unknown[:10]), labels=", ".join(labels)))
    return out


def _probabilities(frame: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(confidence, top-2 margin) per row from the probability column(s), or None when there are none."""
    if column in frame.columns:  # binary: probability of the positive class
        p = frame.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
        return np.maximum(p, 1.0 - p), np.abs(2.0 * p - 1.0)
    prefix = f"{column}_"
    per_class = [c for c in frame.columns if c.startswith(prefix)]
    if not per_class:
        return None
    matrix = frame.select(pl.col(c).cast(pl.Float64) for c in per_class).fill_null(np.nan).to_numpy()
    ranked = -np.sort(-matrix, axis=1)
    top = ranked[:, 0]
    second = ranked[:, 1] if matrix.shape[1] > 1 else np.zeros(len(top))
    return top, top - second


def prelabels(predictions: pl.DataFrame, keys: list[str], labels: list[str], *, kind: str, id_column: str,
              prediction_column: str, probability_column: str, uncertainty: str) -> Prelabels:
    """Pre-labels for the items with `keys`, from a Predict output."""
    if kind not in ("record", "text", "image"):
        raise NodeInputError(tr("Predictions give pre-labels for classification tasks (record, text, image), not for "
                                "{kind} tasks; disconnect the predictions input", kind=kind))
    require_columns(predictions, [prediction_column], tr("Prediction column"))
    frame = _aligned(predictions, keys, id_column)
    names = _label_names(frame.get_column(prediction_column).to_list(), labels, prediction_column)
    values = [None if n is None else {"labels": [n]} for n in names]
    probs = _probabilities(frame, probability_column)
    if probs is None:
        none: list[float | None] = [None] * len(keys)
        return Prelabels(values, none, list(none))
    confidence, margin = probs
    unc = 1.0 - confidence if uncertainty == "least_confidence" else 1.0 - margin

    def listed(a: np.ndarray) -> list[float | None]:
        return [None if (math.isnan(x) or names[i] is None) else float(x) for i, x in enumerate(a.tolist())]

    return Prelabels(values, listed(confidence), listed(unc))
