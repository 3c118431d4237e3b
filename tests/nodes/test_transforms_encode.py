"""Encode categories: one-hot with rare/unseen values, out-of-fold target encoding, WOE and IV by hand.

Expected values are computed independently (Counter, pandas group-bys, scikit-learn KFold, math.log), on the
project's synthetic credit applications and on tiny hand-made tables.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.model_selection import KFold

from engine.ports import FittedTransformPort, ReportPort
from engine.testing import NodeFailed, run_node
from nodes.explore.stats import _woe_bins
from nodes.features.fitted import apply_transform, steps
from nodes.features.transforms.encode import Encode
from nodes.features.transforms.impute import Impute
from resources.sampledata.credit import generate_applications

SEED = 42  # run_node's default seed, which out-of-fold encoding draws its folds from


@pytest.fixture(scope="module")
def parts() -> tuple[pl.DataFrame, pl.DataFrame]:
    df = generate_applications(2_400, seed=9)
    return df.head(1_600), df.tail(800)


# ---- one-hot ---------------------------------------------------------------------------------------
def test_onehot_keeps_most_frequent_and_sends_rare_and_unseen_to_other(parts):
    train, test = parts
    out = run_node(Encode, {"table": train}, {"method": "onehot", "columns": ["region"], "max_categories": 3})
    top3 = [v for v, _ in sorted(Counter(train["region"].to_list()).items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    made = [f"region_{v}" for v in top3] + ["region_other"]
    assert out["transform"].params["outputs"] == made
    assert "region" not in out["table"].columns  # drop_original defaults to true
    assert out["table"].columns[-4:] == made

    test = test.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("Atlantis"))
                             .when(pl.int_range(pl.len()) == 1).then(None)
                             .otherwise(pl.col("region")).alias("region"))
    applied = apply_transform(out["transform"], test)
    region = test["region"].to_list()
    for v in top3:
        assert applied[f"region_{v}"].to_list() == [int(r == v) for r in region]
    assert applied["region_other"].to_list() == [int(r is not None and r not in top3) for r in region]
    assert applied.row(0, named=True)["region_other"] == 1  # unseen -> other
    assert sum(applied.select(made).row(1)) == 0  # missing -> all zeros


def test_onehot_without_rare_values_gives_unseen_all_zeros_and_keeps_original(parts):
    train, _ = parts
    out = run_node(Encode, {"table": train}, {"columns": ["gender"], "drop_original": False})
    step = out["transform"]
    assert step.params["outputs"] == ["gender_Male", "gender_Female"] or \
        step.params["outputs"] == ["gender_Female", "gender_Male"]
    other = pl.DataFrame({"gender": ["Male", "Unknown", None]})
    applied = apply_transform(step, other)
    assert applied["gender"].to_list() == ["Male", "Unknown", None]
    assert applied.select(step.params["outputs"]).sum_horizontal().to_list() == [1, 0, 0]


# ---- target encoding -------------------------------------------------------------------------------
def _full_encoding(train: pd.DataFrame, column: str, m: float) -> tuple[float, dict[str, float]]:
    prior = train["default"].mean()
    g = train.groupby(column)["default"].agg(["sum", "count"])
    return prior, {k: (r["sum"] + m * prior) / (r["count"] + m) for k, r in g.iterrows()}


def test_target_encoding_stores_full_training_statistics(parts):
    train, test = parts
    m = 5.0
    out = run_node(Encode, {"table": train}, {"method": "target", "columns": ["education", "region"],
                                              "target": "default", "smoothing": m})
    step = out["transform"]
    test = test.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("Moon")).otherwise(pl.col("region"))
                             .alias("region"))
    applied = apply_transform(step, test)
    for col in ("education", "region"):
        prior, mapping = _full_encoding(train.to_pandas(), col, m)
        expected = [mapping.get(v, prior) for v in test[col].to_list()]
        np.testing.assert_allclose(applied[f"{col}_te"].to_numpy(), expected, rtol=1e-12)
    assert applied["region_te"][0] == pytest.approx(train["default"].mean())  # unseen -> prior


def test_target_encoding_of_training_rows_is_out_of_fold(parts):
    train, _ = parts
    train = train.select("region", "default").with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("Lonely")).otherwise(pl.col("region")).alias("region"))
    m, folds = 3.0, 4
    settings = {"method": "target", "columns": ["region"], "target": "default", "smoothing": m, "folds": folds}
    enc = run_node(Encode, {"table": train}, settings)["table"]["region_te"].to_numpy()

    # independent computation with scikit-learn's folds (the node draws them from the run seed)
    y = train["default"].to_numpy().astype(float)
    region = np.array(train["region"].to_list(), dtype=object)
    expected = np.empty(len(y))
    for fit_idx, enc_idx in KFold(n_splits=folds, shuffle=True, random_state=SEED).split(y):
        prior = y[fit_idx].mean()
        frame = pd.DataFrame({"k": region[fit_idx], "y": y[fit_idx]}).groupby("k")["y"].agg(["sum", "count"])
        for i in enc_idx:
            row = frame.loc[region[i]] if region[i] in frame.index else None
            expected[i] = prior if row is None else (row["sum"] + m * prior) / (row["count"] + m)
    np.testing.assert_allclose(enc, expected, rtol=1e-12)
    # the category seen once gets its fold's prior: the mean label of the other folds, never its own label
    fold_of_7 = next(f for f, (_, idx) in enumerate(KFold(folds, shuffle=True, random_state=SEED).split(y)) if 7 in idx)
    others = np.concatenate([idx for f, (_, idx) in enumerate(KFold(folds, shuffle=True, random_state=SEED).split(y))
                             if f != fold_of_7])
    assert enc[7] == pytest.approx(y[others].mean())

    # flipping a row's own label never changes its own encoding, but does change the full-train statistics
    full_before = apply_transform(run_node(Encode, {"table": train}, settings)["transform"], train)["region_te"]
    for row in (3, 555):
        flipped = train.with_columns(pl.when(pl.int_range(pl.len()) == row).then(1 - pl.col("default"))
                                     .otherwise(pl.col("default")).alias("default"))
        again = run_node(Encode, {"table": flipped}, settings)
        changed = again["table"]["region_te"].to_numpy()
        assert changed[row] == pytest.approx(enc[row], rel=1e-12)
        assert not np.allclose(changed, enc)  # rows in other folds did see the flipped label
        full_after = apply_transform(again["transform"], train)["region_te"]
        assert full_after[row] != pytest.approx(full_before[row], rel=1e-9)


def test_target_encoding_missing_category_and_numeric_target():
    table = pl.DataFrame({"c": ["a", "a", None, None, "b", "b", "b", "a"],
                          "amount": [10.0, 20.0, 30.0, 50.0, 5.0, 6.0, 7.0, 30.0]})
    out = run_node(Encode, {"table": table}, {"method": "target", "columns": ["c"], "target": "amount",
                                              "smoothing": 0.0, "folds": 2})
    applied = apply_transform(out["transform"], pl.DataFrame({"c": ["a", None, "b", "z"]}))
    assert applied["c_te"].to_list() == pytest.approx([20.0, 40.0, 6.0, table["amount"].mean()])


# ---- WOE -------------------------------------------------------------------------------------------
def test_woe_matches_hand_computation_and_profile_convention(tmp_path):
    table = pl.DataFrame({"c": ["A", "A", "A", "B", "B", None, "C", "C"],
                          "bad": ["no", "yes", "no", "yes", "yes", "no", "no", "no"]})
    out = run_node(Encode, {"table": table}, {"method": "woe", "columns": ["c"], "target": "bad"})
    # events ("yes") = 3, non-events = 5; a zero cell counts as 0.5
    ne, e = 5.0, 3.0
    woe = {"A": math.log((2 / ne) / (1 / e)), "B": math.log((0.5 / ne) / (2 / e)),
           "C": math.log((2 / ne) / (0.5 / e)), None: math.log((1 / ne) / (0.5 / e))}
    iv = sum((n / ne - v / e) * math.log((n / ne) / (v / e)) for n, v in [(2, 1), (0.5, 2), (2, 0.5), (1, 0.5)])
    applied = apply_transform(out["transform"], pl.DataFrame({"c": ["A", "B", "C", None, "D"]}))
    assert applied["c_woe"].to_list() == pytest.approx([woe["A"], woe["B"], woe["C"], woe[None], 0.0])
    assert out["table"]["c_woe"].to_list() == pytest.approx([woe[v] for v in table["c"].to_list()])
    report = out["report"]
    ivs = report.tables["Information value"]
    assert ivs.row(0) == ("c", pytest.approx(iv))
    detail = report.tables["Weight of evidence"]
    assert detail["iv"].sum() == pytest.approx(iv)
    assert detail.filter(pl.col("category") == "B")["event_rate"].item() == 1.0
    # Profile's WOE helper gives the same numbers (same sign convention and smoothing)
    profile_iv, profile_bins = _woe_bins(["A", "B", "C", "missing"], np.array([[2, 1], [0, 2], [2, 0], [1, 0]]))
    assert profile_iv == pytest.approx(iv)
    assert [b["woe"] for b in profile_bins] == pytest.approx([woe["A"], woe["B"], woe["C"], woe[None]])
    assert report.figures  # the IV chart
    ReportPort.save(report, tmp_path)
    assert ReportPort.load(tmp_path).tables["Information value"].equals(ivs)


def test_woe_on_credit_data_without_missing_values_gives_neutral_missing(parts, tmp_path):
    train, test = parts
    out = run_node(Encode, {"table": train}, {"method": "woe", "target": "default", "exclude": ["customer_id"]})
    step = out["transform"]
    assert set(step.columns) == {"gender", "education", "marital_status", "region", "employment_type",
                                 "loan_purpose"}
    FittedTransformPort.save(step, tmp_path)
    loaded = FittedTransformPort.load(tmp_path)
    with_null = test.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("region"))
                                  .alias("region"))
    applied = apply_transform(loaded, with_null)
    assert applied["region_woe"][0] == 0.0
    pdf = train.to_pandas()
    total_e = pdf["default"].sum()
    total_ne = len(pdf) - total_e
    for v, g in pdf.groupby("education"):
        expected = math.log(max(len(g) - g["default"].sum(), 0.5) / total_ne / (max(g["default"].sum(), 0.5) / total_e))
        got = applied.filter(pl.col("education_woe").is_not_null() & (test["education"] == v))["education_woe"]
        assert got.len() and (got - expected).abs().max() < 1e-12
    ivs = out["report"].tables["Information value"]
    assert ivs["iv"].to_list() == sorted(ivs["iv"].to_list(), reverse=True)


# ---- chaining and bad input ------------------------------------------------------------------------
def test_encode_chains_with_previous(parts):
    train, test = parts
    train = train.with_columns(pl.when(pl.int_range(pl.len()) % 9 == 0).then(None).otherwise(pl.col("region"))
                               .alias("region"))
    imputed = run_node(Impute, {"table": train}, {"columns": ["region"], "categorical_strategy": "constant"})
    encoded = run_node(Encode, {"table": imputed["table"], "previous": imputed["transform"]},
                       {"columns": ["region"], "max_categories": 8})
    chain = encoded["transform"]
    assert [s.kind for s in steps(chain)] == ["impute", "encode_onehot"]
    raw = test.with_columns(pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise(pl.col("region"))
                            .alias("region"))
    step_by_step = apply_transform(steps(chain)[1], apply_transform(imputed["transform"], raw))
    assert apply_transform(chain, raw).equals(step_by_step)
    assert "region_missing" in encoded["table"].columns  # the imputed constant is a kept category


def test_encode_bad_input(parts):
    train, _ = parts
    with pytest.raises(NodeFailed, match="Target column: target encoding needs a target column"):
        run_node(Encode, {"table": train}, {"method": "target", "columns": ["region"]})
    with pytest.raises(NodeFailed, match="Target column: column 'outcome' is not in the table"):
        run_node(Encode, {"table": train}, {"method": "woe", "columns": ["region"], "target": "outcome"})
    with pytest.raises(NodeFailed, match="target column 'region' must be binary.*7 distinct"):
        run_node(Encode, {"table": train}, {"method": "woe", "columns": ["gender"], "target": "region"})
    with pytest.raises(NodeFailed, match="Columns: column 'colour' is not in the table"):
        run_node(Encode, {"table": train}, {"columns": ["colour"]})
    with pytest.raises(NodeFailed, match="no rows"):
        run_node(Encode, {"table": train.head(0)}, {"method": "woe", "target": "default"})
    with pytest.raises(NodeFailed, match="target column 'default' cannot also be a feature"):
        run_node(Encode, {"table": train}, {"method": "woe", "columns": ["default"], "target": "default"})
    with pytest.raises(NodeFailed, match="'annual_income' is Float64"):
        run_node(Encode, {"table": train}, {"columns": ["annual_income"]})
