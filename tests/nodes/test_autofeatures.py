"""Automatic features: the planted debt-to-income ratio is found, ranked first and recorded correctly; collinear
candidates, the cap and the minimum score drop what they should; the transform replays the kept features on other
tables with training statistics only and survives a save/load; the target never leaks; bad input is named.

Expected values are computed independently: IV with Profile's statistics (nodes/explore/stats.py), mutual
information with scikit-learn directly, ratios and correlations with numpy.
"""
from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl
import pytest
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from engine.errors import NodeInputError
from engine.executors.base import run_inline
from engine.ports import FittedTransform, FittedTransformPort, ReportPort
from engine.testing import NodeFailed, run_node
from nodes.explore.stats import _numeric_target
from nodes.features.autofeatures import AutoFeatures, apply_derive
from nodes.features.fitted import apply_transform, steps

SEED = 42  # run_node's default seed


def _credit(n: int, seed: int) -> pl.DataFrame:
    """Default driven by the debt-to-income ratio only; some applicants have no debt (so income is the natural
    denominator); debt_reported is debt rounded to the nearest 500 (a near-duplicate source)."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(9.0, 0.7, n)
    debt = income * rng.uniform(0.0, 1.2, n) * (rng.random(n) > 0.1)
    p = 1.0 / (1.0 + np.exp(-(6.0 * debt / income - 4.0)))
    return pl.DataFrame({
        "customer_id": np.arange(1, n + 1) + 1000 * seed,
        "income": income, "debt": debt, "debt_reported": np.round(debt / 500.0) * 500.0,
        "age": rng.integers(20, 70, n), "noise": rng.normal(0.0, 1.0, n), "branch": rng.choice(["A", "B"], n),
        "flat": np.full(n, 3.0), "default": (rng.random(n) < p).astype(np.int64)})


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return _credit(1500, seed=1)


@pytest.fixture(scope="module")
def test_part() -> pl.DataFrame:
    return _credit(600, seed=2)


@pytest.fixture(scope="module")
def result(train) -> dict:
    return run_node(AutoFeatures, {"table": train}, {"target": "default", "max_features": 6})


def _ratio(table: pl.DataFrame, a: str, b: str) -> np.ndarray:
    num, den = table[a].to_numpy().astype(float), table[b].to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / den)


def _record(records: pl.DataFrame, feature: str) -> dict:
    rows = records.filter(pl.col("feature") == feature)
    assert rows.height == 1, feature
    return rows.row(0, named=True)


# ---- generation, scoring, ranking -------------------------------------------------------------------
def test_planted_ratio_is_generated_kept_and_ranked_first_with_a_correct_record(result, train):
    records = result["records"]
    top = records.row(0, named=True)
    assert top["feature"] == "debt_per_income"
    assert top["kept"] is True
    assert top["kind"] == "ratio"
    assert top["formula"] == "ratio of debt to income"
    assert top["expression"] == "if(income == 0, null, debt / income)"
    assert top["sources"] == "debt,income"
    assert top["score_kind"] == "IV"
    expected_iv = _numeric_target(pl.Series("r", _ratio(train, "debt", "income")),
                                  train["default"].to_numpy(), 10).iv
    assert top["score"] == pytest.approx(expected_iv, rel=1e-9)
    assert top["reason"] == f"kept: rank 1 by IV {expected_iv:.3g}"
    # the ratio beats each of its sources' own WOE and every other candidate
    assert top["score"] > records["score"][1:].max()
    np.testing.assert_allclose(result["table"]["debt_per_income"].to_numpy(), _ratio(train, "debt", "income"))
    assert not result["table"]["debt_per_income"].is_infinite().any()


def test_every_candidate_is_recorded_once_with_its_iv_and_the_records_are_ranked(result, train):
    records = result["records"]
    assert records.columns == ["feature", "kept", "score", "score_kind", "reason", "formula", "expression",
                               "sources", "kind"]
    assert records["feature"].n_unique() == records.height
    scores = records["score"].to_list()
    assert scores == sorted(scores, reverse=True)
    y = train["default"].to_numpy()
    difference = _record(records, "income_minus_debt")
    assert difference["formula"] == "difference income minus debt"
    assert difference["expression"] == "income - debt"
    expected = _numeric_target(pl.Series("d", train["income"].to_numpy() - train["debt"].to_numpy()), y, 10).iv
    assert difference["score"] == pytest.approx(expected, rel=1e-9)
    woe = _record(records, "debt_woe")
    assert woe["kind"] == "woe_bin" and woe["sources"] == "debt"
    assert woe["formula"].startswith("weight of evidence of debt in ") and "optimal monotonic bins" in woe["formula"]
    assert "-> WOE" in woe["expression"] and "missing -> WOE" in woe["expression"]
    # identifiers, constants, text and the target are never combined
    used = {s for src in records["sources"].to_list() for s in src.split(",")}
    assert used == {"income", "debt", "debt_reported", "age", "noise"}
    kept = records.filter(pl.col("kept"))
    assert kept["reason"].to_list() == [f"kept: rank {i} by IV {s:.3g}"
                                        for i, s in enumerate(kept["score"].to_list(), start=1)]


def test_near_duplicate_is_dropped_for_its_correlation_with_the_kept_ratio(result, train):
    dup = _record(result["records"], "debt_reported_per_income")
    assert dup["kept"] is False
    r = np.corrcoef(_ratio(train, "debt", "income"), _ratio(train, "debt_reported", "income"))[0, 1]
    assert abs(r) >= 0.9
    assert dup["reason"] == f"dropped: correlation {abs(r):.2f} with debt_per_income"
    # and no two kept features are correlated beyond the limit
    kept = result["records"].filter(pl.col("kept"))["feature"].to_list()
    values = result["table"].select(kept).to_numpy()
    corr = pl.DataFrame(values).fill_nan(None).select(
        [pl.corr(pl.col(f"column_{i}"), pl.col(f"column_{j}")).abs().alias(f"{i}-{j}")
         for i in range(len(kept)) for j in range(i + 1, len(kept))]).row(0)
    assert max(c for c in corr if c is not None) < 0.9


def test_cap_and_minimum_score_are_honoured(train):
    out = run_node(AutoFeatures, {"table": train}, {"target": "default", "max_features": 2, "min_score": 0.05})
    records = out["records"]
    kept = records.filter(pl.col("kept"))
    assert kept.height == 2
    assert out["table"].columns == [*train.columns, *kept["feature"].to_list()]
    capped = records.filter(pl.col("reason") == "dropped: over the cap of 2 features")
    assert capped.height >= 1
    assert capped["score"].max() <= kept["score"].min()
    low = records.filter(pl.col("reason").str.starts_with("dropped: IV "))
    assert low.height >= 1
    for row in low.iter_rows(named=True):
        assert row["score"] < 0.05
        assert row["reason"] == f"dropped: IV {row['score']:.3g} below minimum 0.05"
    assert (records.filter(pl.col("score") < 0.05)["kept"].not_()).all()


def test_kinds_and_top_k_limit_the_candidates(train):
    out = run_node(AutoFeatures, {"table": train}, {"target": "default", "kinds": ["ratio"], "top_k_pairs": 2})
    records = out["records"]
    assert set(records["kind"]) == {"ratio"}
    assert records.height == 1  # one pair of the two strongest columns, one direction
    own = {c: _numeric_target(train[c], train["default"].to_numpy(), 10).iv
           for c in ("income", "debt", "debt_reported", "age", "noise")}
    best_two = sorted(own, key=lambda c: -own[c])[:2]
    assert set(records["sources"][0].split(",")) == set(best_two)


# ---- the transform ----------------------------------------------------------------------------------
def test_transform_reproduces_the_training_features_and_uses_only_training_statistics(result, train, test_part):
    transform = result["transform"]
    kept = result["records"].filter(pl.col("kept"))["feature"].to_list()
    assert [s.kind for s in steps(transform)] == ["derive", "binning"]
    assert apply_transform(transform, train).select(kept).equals(result["table"].select(kept))
    # a few training rows alone, in another order, get exactly the values they got in the full training table
    picked = [1499, 7, 300, 42]
    alone = apply_transform(transform, train[picked]).select(kept)
    assert alone.equals(result["table"].select(kept)[picked])
    # applied to test + train, the training rows are unchanged: nothing is refitted on the new table
    both = apply_transform(transform, pl.concat([test_part, train])).select(kept)
    assert both.tail(train.height).equals(result["table"].select(kept))
    np.testing.assert_allclose(both.head(test_part.height)["debt_per_income"].to_numpy(),
                               _ratio(test_part, "debt", "income"))
    # WOE of the test part comes from the training bins: each value is one of the training WOE values
    for name in (k for k in kept if k.endswith("_woe")):
        assert set(both.head(test_part.height)[name].unique().to_list()) <= set(result["table"][name].unique())


def test_transform_round_trips_through_the_port_and_needs_no_target(result, test_part, tmp_path):
    transform = result["transform"]
    FittedTransformPort.save(transform, tmp_path)
    loaded = FittedTransformPort.load(tmp_path)
    assert loaded == transform
    assert "default" not in loaded.columns
    no_target = test_part.drop("default")
    assert apply_transform(loaded, no_target).equals(apply_transform(transform, no_target))


def test_apply_derive_is_null_safe_and_never_evaluates_python():
    params = {"features": [{"name": "r", "expression": "if(b == 0, null, a / b)"},
                           {"name": "d", "expression": "a - b"}], "outputs": ["r", "d"]}
    table = pl.DataFrame({"a": [1.0, 2.0, 3.0, None], "b": [0.0, None, 2.0, 1.0]})
    out = apply_derive(params, table)
    assert out["r"].to_list() == [None, None, 1.5, None]
    assert out["d"].to_list() == [1.0, None, 1.0, None]
    evil = {"features": [{"name": "x", "expression": "__import__('os').system('true')"}], "outputs": ["x"]}
    with pytest.raises(NodeInputError, match="cannot be computed"):
        apply_derive(evil, table)


def test_previous_transform_is_chained_first(train):
    previous = FittedTransform(kind="derive", params={"features": [{"name": "income_k", "expression":
                                                                    "income / 1000"}], "outputs": ["income_k"]},
                               columns=("income",))
    prepared = apply_transform(previous, train)
    out = run_node(AutoFeatures, {"table": prepared, "previous": previous},
                   {"target": "default", "kinds": ["ratio"], "top_k_pairs": 3})
    chained = steps(out["transform"])
    assert chained[0] == previous and [s.kind for s in chained] == ["derive", "derive"]
    kept = out["records"].filter(pl.col("kept"))["feature"].to_list()
    assert apply_transform(out["transform"], train).select(kept).equals(out["table"].select(kept))


# ---- the report -------------------------------------------------------------------------------------
def test_report_lists_the_kept_features_and_draws_the_scores(result, tmp_path):
    report = result["report"]
    kept = result["records"].filter(pl.col("kept"))
    assert report.tables["Kept features"].equals(kept)
    assert report.metrics["kept"] == kept.height and report.metrics["candidates"] == result["records"].height
    assert report.figures["Candidate scores"].startswith(b"\x89PNG")
    ReportPort.save(report, tmp_path)
    assert ReportPort.load(tmp_path).tables["Kept features"].equals(kept)


# ---- other targets and bad input --------------------------------------------------------------------
def test_multiclass_target_falls_back_to_mutual_information(train):
    grade = np.digitize(_ratio(train, "debt", "income"), [0.3, 0.7])  # three classes
    table = train.drop("default").with_columns(pl.Series("grade", grade))
    out = run_node(AutoFeatures, {"table": table}, {"target": "grade", "min_score": 0.0})
    records = out["records"]
    assert set(records["score_kind"]) == {"MI"}
    assert "woe_bin" not in set(records["kind"])  # WOE needs a binary target
    assert any("mutual information" in note for note in out["report"].notes)
    x = _ratio(train, "debt", "income")
    ok = np.isfinite(x)
    expected = mutual_info_classif(x[ok].reshape(-1, 1), grade[ok], discrete_features=False, n_neighbors=3,
                                   random_state=SEED)[0]
    assert _record(records, "debt_per_income")["score"] == pytest.approx(expected, rel=1e-9)
    assert records.row(0, named=True)["reason"].startswith("kept: rank 1 by MI ")


def test_continuous_target_uses_mutual_information_for_regression(train):
    table = train.drop("default").with_columns(loss=pl.col("debt") / pl.col("income") * 100.0 + pl.col("noise"))
    out = run_node(AutoFeatures, {"table": table}, {"target": "loss", "kinds": ["difference"], "min_score": 0.0})
    row = _record(out["records"], "age_minus_noise")
    x = (train["age"].cast(pl.Float64) - train["noise"]).to_numpy()
    expected = mutual_info_regression(x.reshape(-1, 1), table["loss"].to_numpy(), discrete_features=False,
                                      n_neighbors=3, random_state=SEED)[0]
    assert row["score"] == pytest.approx(expected, rel=1e-9) and row["score_kind"] == "MI"


@pytest.mark.parametrize("settings, message", [
    ({}, "Target column: choose the column"),
    ({"target": "defualt"}, "Target column: column 'defualt' is not in the table"),
])
def test_missing_target_is_named(train, settings, message):
    with pytest.raises(NodeFailed, match=message) as info:
        run_node(AutoFeatures, {"table": train}, settings)
    assert info.value.input_error


def test_single_valued_target_empty_table_and_no_numeric_columns_are_clear(train):
    with pytest.raises(NodeFailed, match="'flat' has 1 distinct non-missing value"):
        run_node(AutoFeatures, {"table": train}, {"target": "flat"})
    with pytest.raises(NodeFailed, match="The input table has no rows"):
        run_node(AutoFeatures, {"table": train.head(0)}, {"target": "default"})
    text_only = train.select("customer_id", "branch", "flat", "default")
    with pytest.raises(NodeFailed, match="no numeric columns to build features from") as info:
        run_node(AutoFeatures, {"table": text_only}, {"target": "default"})
    assert info.value.input_error
    with pytest.raises(NodeFailed, match="Kinds of features: no candidate could be built"):
        run_node(AutoFeatures, {"table": train.select("income", "default")}, {"target": "default",
                                                                              "kinds": ["ratio"]})


# ---- time windows -----------------------------------------------------------------------------------
def _applications_and_events(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Default driven by card spend in the 30 days before the application (events at the application instant
    itself are large and would leak the label if counted)."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1)
    apps = pl.DataFrame({"customer": np.arange(n), "income": rng.lognormal(9.0, 0.5, n),
                         "age": rng.integers(20, 70, n)}).with_columns(
        applied=pl.lit(start) + pl.duration(days=pl.Series(rng.integers(100, 200, n))))
    k = 12 * n
    who = rng.integers(0, n, k)
    back = rng.integers(0, 120, k)
    events = pl.DataFrame({"customer": who, "amount": rng.gamma(2.0, 50.0, k), "txn_id": np.arange(k)}).with_columns(
        ts=apps["applied"].gather(who) - pl.duration(days=pl.Series(back), hours=1))
    spend30 = (events.join(apps.select("customer", "applied"), on="customer")
               .filter((pl.col("ts") >= pl.col("applied") - pl.duration(days=30)) & (pl.col("ts") < pl.col("applied")))
               .group_by("customer").agg(pl.col("amount").sum().alias("s")))
    s = apps.join(spend30, on="customer", how="left").sort("customer")["s"].fill_null(0.0).to_numpy()
    p = 1.0 / (1.0 + np.exp(-(s - np.median(s)) / 60.0))
    apps = apps.with_columns(default=pl.Series((rng.random(n) < p).astype(np.int64)))
    leak = pl.DataFrame({"customer": np.arange(n), "amount": apps["default"].cast(pl.Float64) * 1e6,
                         "txn_id": np.arange(k, k + n), "ts": apps["applied"]})  # at the as-of instant
    return apps, pl.concat([events, leak.select(events.columns)])


def test_window_candidates_are_scored_recorded_and_left_out_of_the_transform(tmp_path):
    apps, events = _applications_and_events(600, seed=5)
    logs: list[tuple[int, str]] = []
    outcome = run_inline(AutoFeatures, {"table": apps, "events": events},
                         {"target": "default", "entity": "customer", "event_timestamp": "ts", "as_of": "applied",
                          "windows_days": [30, 90], "kinds": ["window", "ratio"]},
                         emit=lambda kind, payload: logs.append(payload) if kind == "log" else None)
    assert outcome.error is None, outcome.error
    out = outcome.outputs
    records = out["records"]
    top = records.row(0, named=True)
    assert top["feature"] == "amount_sum_30d" and top["kind"] == "window" and top["kept"]
    assert top["formula"] == "sum of amount in the 30 days before applied"
    assert top["sources"] == "amount,customer,ts,applied"
    assert "rebuild it on new data with the Time-window aggregates node" in top["reason"]
    # the value is the 30-day spend strictly before the application (the label-carrying event at the instant is
    # not counted), computed here with a plain join and filter
    expected = (events.join(apps.select("customer", "applied"), on="customer")
                .filter((pl.col("ts") >= pl.col("applied") - pl.duration(days=30)) & (pl.col("ts") < pl.col("applied")))
                .group_by("customer").agg(pl.col("amount").sum().alias("e")))
    got = out["table"].join(expected, on="customer", how="left").with_columns(pl.col("e").fill_null(0.0))
    np.testing.assert_allclose(got["amount_sum_30d"].to_numpy(), got["e"].to_numpy(), rtol=1e-9)
    assert top["score"] == pytest.approx(_numeric_target(out["table"]["amount_sum_30d"],
                                                         apps["default"].to_numpy(), 10).iv, rel=1e-9)
    assert not any(s.startswith("txn_id") for s in records["feature"].to_list())  # identifiers are not summed
    kept_windows = records.filter(pl.col("kept") & (pl.col("kind") == "window"))["feature"].to_list()
    made = {o for s in steps(out["transform"]) for o in s.params.get("outputs", [])}
    assert kept_windows and not made & set(kept_windows)
    assert any(level == logging.WARNING and "Time-window aggregates" in text for level, text in logs)
    assert any("Time-window aggregates" in note for note in out["report"].notes)


def test_window_kind_needs_its_settings(train):
    apps, events = _applications_and_events(50, seed=6)
    with pytest.raises(NodeFailed, match="As-of column: window features need this setting"):
        run_node(AutoFeatures, {"table": apps, "events": events},
                 {"target": "default", "entity": "customer", "event_timestamp": "ts"})
