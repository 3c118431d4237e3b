"""Metric functions checked against independent computations (scikit-learn, scipy, hand counts)."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp, mannwhitneyu
from sklearn.metrics import roc_auc_score

from nodes.evaluate.metrics import binary_metrics, confusion_table, multiclass_metrics, regression_metrics


def scored_sample(seed: int, n: int = 2000, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels (about 20% positives) and scores in [0, 1] where positives tend to score higher."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 1)))
    if ties:
        s = np.round(s, 1)
    return y, s


def ks_reference(y: np.ndarray, s: np.ndarray) -> float:
    return float(ks_2samp(s[y == 1], s[y == 0]).statistic)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_ks_gini_against_sklearn_and_scipy(seed, ties):
    y, s = scored_sample(seed, ties=ties)
    got = binary_metrics(y, s, 0.5)
    assert got["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    u = mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert got["auc"] == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), abs=1e-12)
    assert got["ks"] == pytest.approx(ks_reference(y, s), abs=1e-9)
    assert got["gini"] == pytest.approx(2 * got["auc"] - 1, abs=1e-15)


def test_ks_is_the_distance_even_when_positives_score_lower():
    y, s = scored_sample(3)
    inverted = 1 - s
    assert binary_metrics(y, inverted, 0.5)["ks"] == pytest.approx(ks_reference(y, inverted), abs=1e-9)


HAND_Y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
HAND_S = np.array([0.9, 0.5, 0.3, 0.5, 0.2, 0.7, 0.6, 0.1])


def test_threshold_metrics_equal_hand_counts():
    # score >= 0.5 is positive: predicted [1, 1, 0, 1, 0, 1, 1, 0] -> TP 3, FP 2, FN 1, TN 2
    got = binary_metrics(HAND_Y, HAND_S, 0.5)
    tp, fp, fn, tn = 3, 2, 1, 2
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert got["precision"] == pytest.approx(precision)
    assert got["recall"] == pytest.approx(recall)
    assert got["accuracy"] == pytest.approx((tp + tn) / 8)
    assert got["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert got["threshold"] == 0.5
    assert got["positives"] == 4
    assert got["rows"] == 8


def test_probability_metrics_equal_hand_computations():
    got = binary_metrics(HAND_Y, HAND_S, 0.5)
    assert got["brier"] == pytest.approx(float(np.mean((HAND_S - HAND_Y) ** 2)))
    expected_log_loss = -np.mean([math.log(p) if t else math.log(1 - p) for t, p in zip(HAND_Y, HAND_S)])
    assert got["log_loss"] == pytest.approx(expected_log_loss)
    # 16 positive/negative pairs: 11 ranked right, 1 tie (0.5 vs 0.5) counts half, 4 ranked wrong
    assert got["auc"] == pytest.approx(11.5 / 16)
    assert got["gini"] == pytest.approx(2 * 11.5 / 16 - 1)


@pytest.mark.parametrize(("threshold", "precision", "recall"), [
    (0.0, 4 / 8, 1.0),  # everything positive
    (0.55, 2 / 3, 2 / 4),  # 0.9, 0.7, 0.6 at or above; 0.7 is a negative
    (0.95, 0.0, 0.0),  # nothing positive: zero_division gives 0, not a warning or crash
])
def test_precision_recall_at_other_thresholds(threshold, precision, recall):
    got = binary_metrics(HAND_Y, HAND_S, threshold)
    assert got["precision"] == pytest.approx(precision)
    assert got["recall"] == pytest.approx(recall)


def test_perfect_separation():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    got = binary_metrics(y, s, 0.5)
    assert got["auc"] == 1.0
    assert got["ks"] == 1.0
    assert got["gini"] == 1.0
    assert got["accuracy"] == got["precision"] == got["recall"] == got["f1"] == 1.0


def test_uninformative_scores():
    y = np.array([0, 1, 0, 1])
    s = np.full(4, 0.5)
    got = binary_metrics(y, s, 0.5)
    assert got["auc"] == 0.5
    assert got["ks"] == 0.0
    assert got["gini"] == 0.0


def test_metric_values_are_plain_python_numbers():
    """Reports store metrics as JSON; numpy scalars (np.int64 in particular) would not serialise."""
    got = binary_metrics(HAND_Y, HAND_S, 0.5)
    assert all(type(v) in (float, int) for v in got.values()), {k: type(v) for k, v in got.items()}


def test_regression_metrics_equal_hand_computations():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.0, 5.0])
    # errors 0.5, 0, -1, 1: MSE 2.25 / 4, MAE 2.5 / 4; total sum of squares around the mean 2.5 is 5
    got = regression_metrics(y, pred)
    assert got["rmse"] == pytest.approx(math.sqrt(2.25 / 4))
    assert got["mae"] == pytest.approx(2.5 / 4)
    assert got["r2"] == pytest.approx(1 - 2.25 / 5)
    assert got["rows"] == 4


def test_regression_perfect_prediction():
    y = np.array([3.0, -1.0, 7.5])
    assert regression_metrics(y, y.copy()) == {"rmse": 0.0, "mae": 0.0, "r2": 1.0, "rows": 3}


def test_multiclass_metrics_equal_hand_computations():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    pred = np.array(["a", "b", "b", "b", "c", "a"])
    got = multiclass_metrics(y, pred)
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    # per-class F1: a (p 1/2, r 1/2) 0.5; b (p 2/3, r 1) 0.8; c (p 1, r 1/2) 2/3
    assert got["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert got["rows"] == 6


def test_confusion_table_layout():
    y = np.array(["good", "bad", "good", "good", "bad"])
    pred = np.array(["good", "good", "bad", "good", "bad"])
    got = confusion_table(y, pred, ["good", "bad"])
    assert got.columns == ["actual", "predicted good", "predicted bad"]
    expected = pl.DataFrame({"actual": ["good", "bad"], "predicted good": [2, 1], "predicted bad": [1, 1]})
    assert got.cast(expected.schema).equals(expected)
    assert got.select(pl.exclude("actual")).sum_horizontal().sum() == len(y)


def test_confusion_table_keeps_label_order_and_empty_classes():
    y = np.array([1, 1, 0])
    pred = np.array([1, 1, 1])
    got = confusion_table(y, pred, [0, 1, 2])
    assert got["actual"].to_list() == ["0", "1", "2"]
    assert got.columns == ["actual", "predicted 0", "predicted 1", "predicted 2"]
    assert got.rows() == [("0", 0, 1, 0), ("1", 0, 2, 0), ("2", 0, 0, 0)]
