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
