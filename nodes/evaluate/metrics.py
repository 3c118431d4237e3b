"""Model metrics as plain functions of arrays (scikit-learn underneath), shared by Evaluate and benchmarks.

KS is the maximum distance between the score distributions of positives and negatives, which equals
max|TPR - FPR| over the ROC curve (two-sided, so scorecards where a high score means safe work too);
Gini is 2·AUC - 1. These are the definitions bank model validators use.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn import metrics as skm

    fpr, tpr, _ = skm.roc_curve(y_true, score)
    auc = float(skm.roc_auc_score(y_true, score))
    pred = (score >= threshold).astype(int)
    return {
        "auc": auc,
        "ks": float(np.max(np.abs(tpr - fpr))),
        "gini": 2.0 * auc - 1.0,
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "precision": float(skm.precision_score(y_true, pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, pred, zero_division=0)),
        "brier": float(skm.brier_score_loss(y_true, score)),
        "log_loss": float(skm.log_loss(y_true, np.clip(score, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "threshold": float(threshold),
        "positives": int(y_true.sum()),
        "rows": int(len(y_true)),
    }


def confusion_table(y_true: np.ndarray, pred: np.ndarray, labels: list[Any]) -> pl.DataFrame:
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, pred, labels=labels)
    data: dict[str, Any] = {"actual": [str(x) for x in labels]}
    for j, lab in enumerate(labels):
        data[f"predicted {lab}"] = cm[:, j].tolist()
    return pl.DataFrame(data)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
        "rows": int(len(y_true)),
    }


def multiclass_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "rows": int(len(y_true)),
    }


# --- Rank ordering: lift and gains by decile -------------------------------------------------------------------

def rank_groups(score: np.ndarray, n_groups: int = 10) -> np.ndarray:
    """Group number per row (1 = highest scores) for `n_groups` near-equal groups by descending score.

    Tied scores always share a group (the group of the tie's first position in descending order), so the table
    depends only on the scores, never on row order; a large tie can leave the following group(s) empty.
    """
    n = len(score)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-score, kind="stable")
    ascending_neg = -score[order]
    first = np.searchsorted(ascending_neg, ascending_neg, side="left")  # first position of each tie group
    groups = np.empty(n, dtype=np.int64)
    groups[order] = first * n_groups // n + 1
    return groups


def lift_table(y_true: np.ndarray, score: np.ndarray, n_groups: int = 10) -> pl.DataFrame:
    """Lift and gains by decile of descending score (decile 1 = riskiest when the score is the event probability).

    gains = cumulative share of all events captured down to the decile; lift = the decile's event rate over the
    overall rate; cumulative_lift = the event rate down to the decile over the overall rate. Empty deciles
    (possible only behind a large tie) are left out.
    """
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    total_rows, total_events = len(y), int(y.sum())
    overall = total_events / total_rows if total_rows else float("nan")
    frame = (pl.DataFrame({"decile": rank_groups(s, n_groups), "y": y, "s": s})
             .group_by("decile")
             .agg(rows=pl.len(), events=pl.col("y").sum(), min_score=pl.col("s").min(), max_score=pl.col("s").max())
             .sort("decile"))
    cum_rows = pl.col("rows").cum_sum()
    cum_events = pl.col("events").cum_sum()
    return frame.select(
        "decile",
        pl.col("rows").cast(pl.Int64),
        pl.col("events").cast(pl.Int64),
        event_rate=pl.col("events") / pl.col("rows"),
        cumulative_rows_share=cum_rows / total_rows,
        cumulative_events=cum_events.cast(pl.Int64),
        gains=cum_events / total_events if total_events else pl.lit(None, pl.Float64),
        lift=pl.col("events") / pl.col("rows") / overall if total_events else pl.lit(None, pl.Float64),
        cumulative_lift=cum_events / cum_rows / overall if total_events else pl.lit(None, pl.Float64),
        min_score="min_score",
        max_score="max_score",
    )


# --- Calibration -----------------------------------------------------------------------------------------------

def calibration_table(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10,
                      strategy: str = "uniform") -> pl.DataFrame:
    """Reliability curve: per probability bin, rows, mean predicted probability and observed event rate.

    Bins are those of `sklearn.calibration.calibration_curve` (equal-width on [0, 1] for "uniform", score
    quantiles for "quantile"; right-closed), so the curve equals sklearn's; this adds the row counts a validator
    needs to judge each point. Empty bins are left out, as sklearn does.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"unknown calibration strategy {strategy!r}")
    ids = np.searchsorted(edges[1:-1], p)
    rows = np.bincount(ids, minlength=n_bins)
    events = np.bincount(ids, weights=y, minlength=n_bins)
    sums = np.bincount(ids, weights=p, minlength=n_bins)
    keep = rows > 0
    return pl.DataFrame({
        "bin": np.arange(1, n_bins + 1)[keep],
        "lower": edges[:-1][keep],
        "upper": edges[1:][keep],
        "rows": rows[keep].astype(np.int64),
        "events": events[keep].round().astype(np.int64),
        "mean_predicted": sums[keep] / rows[keep],
        "observed_rate": events[keep] / rows[keep],
    })


def expected_calibration_error(calibration: pl.DataFrame) -> float:
    """Row-weighted mean |observed rate - mean predicted| over the bins of a `calibration_table`."""
    rows = calibration["rows"].to_numpy()
    gap = np.abs(calibration["observed_rate"].to_numpy() - calibration["mean_predicted"].to_numpy())
    return float((rows * gap).sum() / rows.sum())


# --- Stability: population stability index ---------------------------------------------------------------------

PSI_EPSILON = 1e-4  # share used in place of an empty bin's 0, so ln(share) stays finite


def psi_table(reference: np.ndarray, actual: np.ndarray, n_bins: int = 10,
              epsilon: float = PSI_EPSILON) -> pl.DataFrame:
    """Population stability index per bin, bins cut at the reference scores' deciles.

    Bins are right-closed, (lower, upper], with open ends (null bounds). Cut points are reference scores (the
    empirical deciles, no interpolation), so no bin is empty on the reference side; equal cut points (many tied
    scores) are merged, so there can be fewer than `n_bins` bins. Each bin contributes
    (actual share - reference share) · ln(actual share / reference share), shares floored at `epsilon`.
    """
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    ordered = np.sort(ref)
    # the k-th cut is the smallest score with at least k/n_bins of the reference at or below it (integer
    # arithmetic: np.quantile's float levels such as 0.30000000000000004 would move a cut by one row)
    positions = [-(-k * len(ref) // n_bins) - 1 for k in range(1, n_bins)]
    cuts = np.unique(ordered[positions])
    cuts = cuts[cuts < ref.max()]  # a cut at the maximum would leave the top bin empty
    k = len(cuts) + 1
    ref_rows = np.bincount(np.searchsorted(cuts, ref, side="left"), minlength=k)
    act_rows = np.bincount(np.searchsorted(cuts, act, side="left"), minlength=k)
    ref_share = ref_rows / len(ref)
    act_share = act_rows / len(act)
    r = np.maximum(ref_share, epsilon)
    a = np.maximum(act_share, epsilon)
    return pl.DataFrame({
        "bin": np.arange(1, k + 1),
        "lower": [None, *cuts.tolist()],
        "upper": [*cuts.tolist(), None],
        "reference_rows": ref_rows.astype(np.int64),
        "reference_share": ref_share,
        "evaluation_rows": act_rows.astype(np.int64),
        "evaluation_share": act_share,
        "psi": (a - r) * np.log(a / r),
    }, schema_overrides={"lower": pl.Float64, "upper": pl.Float64})


def psi(reference: np.ndarray, actual: np.ndarray, n_bins: int = 10, epsilon: float = PSI_EPSILON) -> float:
    """Total PSI: < 0.1 stable, 0.1 to 0.25 worth watching, > 0.25 a material shift (the usual reading)."""
    return float(psi_table(reference, actual, n_bins, epsilon)["psi"].sum())


# --- Slices: the same metrics within one segment ----------------------------------------------------------------

def auc_ks(y_true: np.ndarray, score: np.ndarray) -> tuple[float | None, float | None]:
    """AUC and KS, or (None, None) when the rows hold a single class (both are undefined there)."""
    from sklearn import metrics as skm

    y = np.asarray(y_true)
    if len(y) == 0 or y.min() == y.max():
        return None, None
    fpr, tpr, _ = skm.roc_curve(y, score)
    return float(skm.roc_auc_score(y, score)), float(np.max(np.abs(tpr - fpr)))


def threshold_rates(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float | None]:
    """At `threshold` (score at or above = predicted event): approval rate (share predicted non-event), TPR and
    FPR; a rate whose denominator is empty is None."""
    y = np.asarray(y_true).astype(bool)
    flagged = np.asarray(score) >= threshold
    positives, negatives = int(y.sum()), int((~y).sum())
    return {
        "approval_rate": float((~flagged).mean()) if len(y) else None,
        "tpr": float((flagged & y).sum() / positives) if positives else None,
        "fpr": float((flagged & ~y).sum() / negatives) if negatives else None,
    }


def binary_slice_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, Any]:
    """One row of the fairness table: size, event rate, ranking power and outcomes at the threshold."""
    y = np.asarray(y_true, dtype=np.int64)
    auc, ks = auc_ks(y, score)
    return {"rows": len(y), "events": int(y.sum()), "event_rate": float(y.mean()),
            "mean_score": float(np.mean(score)), "auc": auc, "ks": ks, **threshold_rates(y, score, threshold)}


def regression_slice_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {"rows": len(err), "mean_actual": float(np.mean(y_true)), "mean_predicted": float(np.mean(y_pred)),
            "rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err)))}


def multiclass_slice_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    return {"rows": len(y_true), "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))}
