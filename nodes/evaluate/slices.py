"""Fairness slices: the evaluation metrics within each value of a segment column, and where they differ most.

A validator checks that a model ranks and approves comparably across groups (region, gender, channel). Rows with
no segment value form their own "(missing)" group rather than vanishing; a column with too many values is refused
because a table of hundreds of tiny slices hides gaps instead of showing them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from nodes.evaluate import metrics as m

MAX_SEGMENTS = 50
MISSING = "(missing)"
FOUR_FIFTHS = 0.8  # adverse impact ratio below which approval differences usually need a documented review


def segment_labels(table: pl.DataFrame, column: str) -> np.ndarray:
    """One string label per row; nulls become "(missing)". NodeInputError when there are too many groups."""
    try:
        labels = table[column].cast(pl.String).fill_null(MISSING)
    except pl.exceptions.PolarsError as exc:
        raise NodeInputError(tr("Segment column {col!r} has type {dtype}, which cannot form groups; choose a "
                                "text, number, boolean or date column", col=column, dtype=table[column].dtype)) from exc
    n = labels.n_unique()
    if n > MAX_SEGMENTS:
        raise NodeInputError(tr("Segment column {col!r} has {n} distinct values; fairness slices allow at most "
                                "{max}. Choose a column with fewer groups, or band it first (e.g. with Binning).",
                                col=column, n=n, max=MAX_SEGMENTS))
    return labels.to_numpy()


def _groups(labels: np.ndarray) -> list[str]:
    """Segment values in a stable order: sorted, "(missing)" last."""
    values = sorted(set(labels.tolist()) - {MISSING})
    return values + ([MISSING] if MISSING in set(labels.tolist()) else [])


def _table(labels: np.ndarray, one: Callable[[np.ndarray], dict[str, Any]]) -> pl.DataFrame:
    rows = [{"segment": g, **one(labels == g)} for g in _groups(labels)]
    table = pl.DataFrame(rows, infer_schema_length=None)
    # a metric undefined in every segment (AUC when each holds one class) is still a number column
    return table.with_columns(pl.col(c).cast(pl.Float64) for c, t in table.schema.items() if t == pl.Null)


def binary_segments(labels: np.ndarray, y: np.ndarray, score: np.ndarray, threshold: float) -> pl.DataFrame:
    return _table(labels, lambda mask: m.binary_slice_metrics(y[mask], score[mask], threshold))


def regression_segments(labels: np.ndarray, y: np.ndarray, prediction: np.ndarray) -> pl.DataFrame:
    return _table(labels, lambda mask: m.regression_slice_metrics(y[mask], prediction[mask]))


def multiclass_segments(labels: np.ndarray, y: np.ndarray, prediction: np.ndarray) -> pl.DataFrame:
    return _table(labels, lambda mask: m.multiclass_slice_metrics(y[mask], prediction[mask]))


def largest_gap(table: pl.DataFrame, metric: str) -> tuple[str, float, str, float] | None:
    """(lowest segment, its value, highest segment, its value) over segments where `metric` is defined."""
    values = pl.col(metric).cast(pl.Float64)
    defined = table.with_columns(values).filter(values.is_not_null() & values.is_not_nan())
    if defined.height < 2:
        return None
    low = defined.sort([metric, "segment"]).row(0, named=True)
    high = defined.sort([metric, "segment"], descending=[True, False]).row(0, named=True)
    return low["segment"], float(low[metric]), high["segment"], float(high[metric])


def gap_notes(table: pl.DataFrame, column: str, problem_type: str) -> list[str]:
    """Plain-language notes on the largest differences between segments."""
    notes: list[str] = []
    if problem_type == "binary":
        gap = largest_gap(table, "approval_rate")
        if gap is not None:
            low, lo, high, hi = gap
            air = lo / hi if hi > 0 else float("nan")
            note = tr("Across {col!r}, the approval rate at the threshold ranges from {lo:.1%} ({low}) to {hi:.1%} "
                      "({high}): a gap of {gap:.1%}; adverse impact ratio {air:.2f}.", col=column, lo=lo, low=low,
                      hi=hi, high=high, gap=hi - lo, air=air)
            if air < FOUR_FIFTHS:
                note += " " + tr("Below 0.80 (the four-fifths rule): review whether the difference is justified.")
            notes.append(note)
        gap = largest_gap(table, "auc")
        if gap is not None:
            low, lo, high, hi = gap
            notes.append(tr("AUC across {col!r} ranges from {lo:.3f} ({low}) to {hi:.3f} ({high}): a gap of "
                            "{gap:.3f}.", col=column, lo=lo, low=low, hi=hi, high=high, gap=hi - lo))
    else:
        metric = "rmse" if problem_type == "regression" else "accuracy"
        gap = largest_gap(table, metric)
        if gap is not None:
            low, lo, high, hi = gap
            notes.append(tr("{metric} across {col!r} ranges from {lo:.4g} ({low}) to {hi:.4g} ({high}).",
                            metric=metric.upper() if metric == "rmse" else tr("Accuracy"), col=column, lo=lo,
                            low=low, hi=hi, high=high))
    if (table["rows"] < 30).any():
        small = ", ".join(table.filter(pl.col("rows") < 30)["segment"].to_list())
        notes.append(tr("Segments with fewer than 30 rows give unstable metrics: {segments}.", segments=small))
    return notes
