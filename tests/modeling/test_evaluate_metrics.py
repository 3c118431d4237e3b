"""Evaluate's lift, calibration, stability and slice metrics against hand counts and independent libraries."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from engine.errors import NodeInputError
from nodes.evaluate import metrics as m
from nodes.evaluate import slices

# 20 rows, distinct scores 1.00, 0.95, ..., 0.05; events at descending positions 0, 1, 2, 5 and 13 (5 of 20)
HAND_S = np.arange(20, 0, -1) / 20
HAND_Y = np.isin(np.arange(20), [0, 1, 2, 5, 13]).astype(int)


def shuffled(seed: int, *arrays: np.ndarray) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(arrays[0]))
    return [a[order] for a in arrays]


def test_lift_table_on_twenty_rows_equals_hand_counts():
    y, s = shuffled(7, HAND_Y, HAND_S)  # row order must not matter
    got = m.lift_table(y, s)
    overall = 5 / 20
    events = [2, 1, 1, 0, 0, 0, 1, 0, 0, 0]
    cum = np.cumsum(events)
    assert got["decile"].to_list() == list(range(1, 11))
    assert got["rows"].to_list() == [2] * 10
    assert got["events"].to_list() == events
    assert got["event_rate"].to_list() == pytest.approx([e / 2 for e in events])
    assert got["cumulative_rows_share"].to_list() == pytest.approx([0.1 * k for k in range(1, 11)])
    assert got["cumulative_events"].to_list() == cum.tolist()
    assert got["gains"].to_list() == pytest.approx([0.4, 0.6, 0.8, 0.8, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0])
    assert got["lift"].to_list() == pytest.approx([4.0, 2.0, 2.0, 0, 0, 0, 2.0, 0, 0, 0])
    cum_lift = [c / (2 * k) / overall for k, c in enumerate(cum, start=1)]
    assert got["cumulative_lift"].to_list() == pytest.approx(cum_lift)
    assert cum_lift[:3] == pytest.approx([4.0, 3.0, 8 / 3]) and cum_lift[-1] == pytest.approx(1.0)
    assert got["max_score"].to_list() == pytest.approx([1.0 - 0.1 * k for k in range(10)])
    assert got["min_score"].to_list() == pytest.approx([0.95 - 0.1 * k for k in range(10)])


def test_tied_scores_share_a_decile_whatever_the_row_order():
    s = HAND_S.copy()
    s[1:4] = 0.9  # positions 1-3 tie across the decile 1/2 boundary
    tables = [m.lift_table(*shuffled(seed, HAND_Y, s)) for seed in range(5)]
    first = tables[0]
    for other in tables[1:]:
        assert other.equals(first)
    # the tie starts at position 1, so all three join decile 1; decile 2 is then empty and left out
    assert first["decile"].to_list() == [1, 3, 4, 5, 6, 7, 8, 9, 10]
    assert first["rows"].to_list() == [4, 2, 2, 2, 2, 2, 2, 2, 2]
    assert first["events"].to_list()[:2] == [3, 1]
    assert first["gains"].to_list()[-1] == pytest.approx(1.0)
    assert m.rank_groups(np.full(7, 0.3)).tolist() == [1] * 7


def test_lift_is_decile_event_rate_over_overall_rate_on_random_data():
    rng = np.random.default_rng(3)
    y = (rng.random(5003) < 0.12).astype(int)
    s = rng.random(5003) + 0.3 * y
    got = m.lift_table(y, s)
    frame = pd.DataFrame({"y": y, "s": s})  # independent: pandas ranks into 10 equal-count groups
    frame["decile"] = (frame["s"].rank(ascending=False, method="first").astype(int) - 1) * 10 // len(frame) + 1
    by = frame.groupby("decile")["y"].agg(["size", "sum"])
    assert got["rows"].to_list() == by["size"].tolist()
    assert got["events"].to_list() == by["sum"].tolist()
    assert got["lift"].to_list() == pytest.approx((by["sum"] / by["size"] / y.mean()).tolist())
    assert got["gains"].to_list() == pytest.approx((by["sum"].cumsum() / y.sum()).tolist())


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_equals_sklearns_curve_and_counts_rows(strategy):
    rng = np.random.default_rng(1)
    p = rng.beta(1.2, 6, size=3000)
    y = (rng.random(3000) < p * 1.3).astype(int)
    got = m.calibration_table(y, p, n_bins=10, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    assert got["observed_rate"].to_list() == pytest.approx(prob_true.tolist(), abs=1e-12)
    assert got["mean_predicted"].to_list() == pytest.approx(prob_pred.tolist(), abs=1e-12)
    assert int(got["rows"].sum()) == 3000 and int(got["events"].sum()) == int(y.sum())
    for row in got.iter_rows(named=True):  # each bin's rows really lie in (lower, upper]
        inside = (p > row["lower"]) & (p <= row["upper"]) if row["bin"] > 1 else p <= row["upper"]
        assert int(inside.sum()) == row["rows"]


def test_calibration_by_hand_and_expected_calibration_error():
    p = np.array([0.05, 0.08, 0.15, 0.55, 0.58, 0.95])
    y = np.array([0, 0, 1, 1, 0, 1])
    got = m.calibration_table(y, p, n_bins=10)
    assert got["bin"].to_list() == [1, 2, 6, 10]  # empty bins left out
    assert got["rows"].to_list() == [2, 1, 2, 1]
    assert got["mean_predicted"].to_list() == pytest.approx([0.065, 0.15, 0.565, 0.95])
    assert got["observed_rate"].to_list() == pytest.approx([0.0, 1.0, 0.5, 1.0])
    ece = (2 * 0.065 + 1 * 0.85 + 2 * 0.065 + 1 * 0.05) / 6
    assert m.expected_calibration_error(got) == pytest.approx(ece)


def test_psi_of_identical_distributions_is_zero():
    rng = np.random.default_rng(0)
    s = rng.random(1000)
    table = m.psi_table(s, s.copy())
    assert table.height == 10
    assert table["reference_rows"].to_list() == [100] * 10
    assert m.psi(s, rng.permutation(s)) == 0.0


def test_psi_of_a_known_shift_by_hand():
    reference = np.arange(100, dtype=float)  # deciles cut at 9.9, 19.8, ...: 10 rows per bin
    actual = np.arange(50, 100, dtype=float)  # only the top half: 20% in bins 6-10, none in bins 1-5
    table = m.psi_table(reference, actual)
    assert table["evaluation_share"].to_list() == pytest.approx([0.0] * 5 + [0.2] * 5)
    eps = m.PSI_EPSILON
    expected = 5 * (0.2 - 0.1) * math.log(0.2 / 0.1) + 5 * (eps - 0.1) * math.log(eps / 0.1)
    assert float(table["psi"].sum()) == pytest.approx(expected)
    assert m.psi(reference, actual) > 0.25  # a material shift


def test_psi_equals_an_independent_pandas_computation():
    rng = np.random.default_rng(5)
    reference = rng.beta(2, 8, size=4000)
    actual = rng.beta(2.4, 8, size=2500)
    ordered = np.sort(reference)  # empirical deciles: the smallest score with at least k/10 of rows at or below
    edges = np.array([-np.inf, *(ordered[math.ceil(k * len(ordered) / 10) - 1] for k in range(1, 10)), np.inf])
    e = pd.Series(pd.cut(reference, edges)).value_counts(sort=False).to_numpy() / len(reference)
    a = pd.Series(pd.cut(actual, edges)).value_counts(sort=False).to_numpy() / len(actual)
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert m.psi(reference, actual) == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 0.25


def test_psi_merges_tied_cut_points():
    reference = np.array([0.1] * 60 + [0.2] * 20 + [0.3] * 20)
    table = m.psi_table(reference, np.array([0.1, 0.2, 0.3, 0.4]))
    assert table["bin"].to_list() == [1, 2, 3]  # cut points 0.1 and 0.2 only (0.3 is the maximum)
    assert table["reference_rows"].to_list() == [60, 20, 20]
    assert table["evaluation_rows"].to_list() == [1, 1, 2]
    assert table["lower"].to_list()[0] is None and table["upper"].to_list()[-1] is None


def test_threshold_rates_and_slice_metrics_by_hand_and_sklearn():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.5, 0.3, 0.5, 0.2, 0.7, 0.6, 0.1])
    got = m.threshold_rates(y, s, 0.5)
    tn, fp, fn, tp = confusion_matrix(y, (s >= 0.5).astype(int)).ravel()
    assert got == pytest.approx({"approval_rate": 3 / 8, "tpr": tp / (tp + fn), "fpr": fp / (fp + tn)})
    row = m.binary_slice_metrics(y, s, 0.5)
    fpr, tpr, _ = roc_curve(y, s)
    assert row["auc"] == pytest.approx(roc_auc_score(y, s)) and row["ks"] == pytest.approx(max(abs(tpr - fpr)))
    assert (row["rows"], row["events"], row["event_rate"]) == (8, 4, 0.5)
    one_class = m.binary_slice_metrics(np.zeros(3, int), np.array([0.1, 0.6, 0.2]), 0.5)
    assert one_class["auc"] is None and one_class["ks"] is None and one_class["tpr"] is None
    assert one_class["fpr"] == pytest.approx(1 / 3) and one_class["approval_rate"] == pytest.approx(2 / 3)


def test_segments_group_nulls_and_match_per_group_sklearn():
    rng = np.random.default_rng(2)
    n = 600
    region = rng.choice(["North", "South", None], size=n, p=[0.5, 0.4, 0.1])
    y = (rng.random(n) < 0.3).astype(int)
    s = np.clip(rng.random(n) * 0.7 + 0.3 * y, 0, 1)
    labels = slices.segment_labels(pl.DataFrame({"region": region.tolist()}), "region")
    table = slices.binary_segments(labels, y, s, 0.5)
    assert table["segment"].to_list() == ["North", "South", "(missing)"]
    assert int(table["rows"].sum()) == n
    for row in table.iter_rows(named=True):
        mask = labels == row["segment"]
        assert row["auc"] == pytest.approx(roc_auc_score(y[mask], s[mask]))
        assert row["approval_rate"] == pytest.approx(float(np.mean(s[mask] < 0.5)))
    notes = slices.gap_notes(table, "region", "binary")
    assert any("approval rate" in n and "adverse impact ratio" in n for n in notes)
    assert any(n.startswith("AUC across 'region'") for n in notes)


def test_a_segment_with_one_class_has_no_auc_and_is_skipped_in_the_gap_note():
    labels = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 3)
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4, 0.1, 0.2, 0.3])
    table = slices.binary_segments(labels, y, s, 0.5)
    # b: positives 0.3, 0.6 vs negatives 0.7, 0.4 -> one pair of four ranked right
    assert table["auc"].to_list() == [1.0, 0.25, None]
    assert slices.largest_gap(table, "auc") == ("b", 0.25, "a", 1.0)


def test_too_many_segments_is_a_clear_error():
    frame = pl.DataFrame({"customer": [f"C{i}" for i in range(51)]})
    with pytest.raises(NodeInputError, match="'customer' has 51 distinct values; fairness slices allow at most 50"):
        slices.segment_labels(frame, "customer")
    assert len(set(slices.segment_labels(frame.head(50), "customer"))) == 50
