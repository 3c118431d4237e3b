"""The Profile node's statistics engine, checked against numpy/scipy on small frames and run once at 1M rows."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from nodes.explore.stats import (QUANTILES, ColumnProfile, correlations, duplicate_rows, profile_columns,
                                 sample_for_profile, target_analysis)


def by_name(df: pl.DataFrame) -> dict[str, ColumnProfile]:
    return {p.name: p for p in profile_columns(df)}


def as_json(items: list) -> str:
    """Every result must serialise as strict JSON (no NaN, no inf)."""
    return json.dumps([dataclasses.asdict(i) for i in items], allow_nan=False)


def matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.drop("column").to_numpy().astype(float)


# ---- per-column statistics -------------------------------------------------------------------------
def test_numeric_statistics_match_numpy_and_scipy():
    rng = np.random.default_rng(3)
    x = rng.lognormal(1.0, 0.8, 500)
    x[:7] = 0.0
    values = [None if i % 10 == 0 else float(v) for i, v in enumerate(x)]
    p = by_name(pl.DataFrame({"x": values}))["x"]
    present = np.array([v for v in values if v is not None])
    assert p.kind == "numeric" and p.dtype == "Float64"
    assert (p.count, p.missing, p.missing_share) == (450, 50, 0.1)
    assert p.distinct == len(np.unique(present)) and p.distinct_share == pytest.approx(p.distinct / 450)
    assert p.mean == pytest.approx(present.mean(), rel=1e-12)
    assert p.std == pytest.approx(present.std(ddof=1), rel=1e-12)
    assert p.skew == pytest.approx(sps.skew(present), rel=1e-9)
    assert (p.min, p.max) == (present.min(), present.max())
    assert p.zeros == 6  # x[0] is among the missing
    assert set(p.quantiles) == {"p1", "p5", "p25", "p50", "p75", "p95", "p99"}
    for label, q in QUANTILES.items():
        assert p.quantiles[label] == pytest.approx(np.quantile(present, q), rel=1e-12)
    assert p.top == [] and p.top_share == pytest.approx(6 / 450)
    counts, edges = np.histogram(present, bins=20)
    assert len(p.histogram) == 20
    assert [c for _, _, c in p.histogram] == counts.tolist()
    assert sum(c for _, _, c in p.histogram) == p.count
    assert [left for left, _, _ in p.histogram] == pytest.approx(edges[:-1].tolist())
    assert p.histogram[-1][1] == pytest.approx(edges[-1])


def test_integer_columns_keep_exact_ranges():
    big = 2 ** 60 + 1
    p = by_name(pl.DataFrame({"id": [big, 5, 7, big]}))["id"]
    assert (p.min, p.max) == (5, big) and isinstance(p.max, int)
    assert p.distinct == 3 and p.top_share == 0.5


def test_outliers_by_iqr_and_z_score():
    values = np.array([*range(1, 101), 10_000], dtype=float)
    p = by_name(pl.DataFrame({"x": values}))["x"]
    q1, q3 = np.quantile(values, [0.25, 0.75])
    iqr_expected = int(((values < q1 - 1.5 * (q3 - q1)) | (values > q3 + 1.5 * (q3 - q1))).sum())
    z_expected = int((np.abs(values - values.mean()) > 3 * values.std(ddof=1)).sum())
    assert p.outliers_iqr == iqr_expected == 1
    assert p.outliers_z == z_expected == 1
    assert by_name(pl.DataFrame({"x": np.arange(100.0)}))["x"].outliers_iqr == 0


def test_categorical_text_and_top_values():
    rows = 200
    cats = ["a"] * 120 + ["b"] * 50 + ["c"] * 20 + [None] * 10
    ids = [f"id{i}" for i in range(rows)]  # 200 distinct > max(50, 5% of 200): text
    df = pl.DataFrame({"cat": cats, "id": ids, "enum": pl.Series(cats, dtype=pl.Enum(["a", "b", "c"])),
                       "catg": pl.Series(cats, dtype=pl.Categorical)})
    profiles = by_name(df)
    p = profiles["cat"]
    assert p.kind == "categorical" and (p.count, p.missing, p.distinct) == (190, 10, 3)
    assert p.top == [("a", 120), ("b", 50), ("c", 20)]
    assert p.top_share == pytest.approx(120 / 190)
    assert p.mean is None and p.histogram is None and p.quantiles is None
    assert profiles["id"].kind == "text" and len(profiles["id"].top) == 10
    assert profiles["id"].top[0] == ("id0", 1)  # ties broken by value: deterministic
    assert profiles["enum"].kind == profiles["catg"].kind == "categorical"
    assert profiles["enum"].top == profiles["catg"].top == p.top


def test_categorical_threshold_scales_with_rows():
    labels = [f"v{i % 60}" for i in range(2000)]  # 60 distinct <= 5% of 2000 = 100
    assert by_name(pl.DataFrame({"c": labels}))["c"].kind == "categorical"
    assert by_name(pl.DataFrame({"c": labels[:600]}))["c"].kind == "text"  # 60 > max(50, 30)


def test_boolean_and_datetime_columns():
    df = pl.DataFrame({
        "flag": [True, True, False, None, True],
        "day": [dt.date(2024, 1, 5), dt.date(2023, 12, 31), None, dt.date(2024, 1, 5), dt.date(2024, 3, 1)],
        "at": [dt.datetime(2024, 1, 1, 9, 30), None, None, dt.datetime(2022, 6, 1, 0, 0, 1),
               dt.datetime(2024, 1, 1, 9, 30)],
    })
    p = by_name(df)
    flag = p["flag"]
    assert flag.kind == "boolean" and (flag.count, flag.missing, flag.distinct) == (4, 1, 2)
    assert flag.top == [("true", 3), ("false", 1)] and flag.top_share == 0.75
    assert flag.mean == 0.75 and (flag.min, flag.max) == (False, True)
    day = p["day"]
    assert day.kind == "datetime" and (day.count, day.missing, day.distinct) == (4, 1, 3)
    assert (day.min, day.max) == ("2023-12-31", "2024-03-01")
    assert day.histogram is None and day.quantiles is None and day.top_share == 0.5
    assert (p["at"].min, p["at"].max) == ("2022-06-01T00:00:01", "2024-01-01T09:30:00")
    as_json(list(p.values()))


def test_empty_table():
    df = pl.DataFrame(schema={"x": pl.Float64, "s": pl.String, "b": pl.Boolean, "d": pl.Date, "y": pl.Int64})
    profiles = profile_columns(df)
    assert [p.count for p in profiles] == [0] * 5
    assert all(p.missing_share == 0.0 and p.distinct == 0 and p.top_share == 0.0 for p in profiles)
    x = profiles[0]
    assert x.mean is None and x.std is None and x.quantiles is None and x.histogram is None
    as_json(profiles)
    matrices = correlations(df, profiles)
    assert matrices["pearson"]["column"].to_list() == ["x", "y"]
    assert matrices["pearson"].drop("column").null_count().row(0) == (2, 2)
    assert duplicate_rows(df) == 0
    assert profile_columns(pl.DataFrame()) == []


def test_all_null_constant_and_single_value_columns():
    df = pl.DataFrame({"none": pl.Series([None] * 4, dtype=pl.Float64), "null_type": [None] * 4,
                       "const": [7, 7, 7, 7], "one": [None, 2.5, None, None], "label": ["k"] * 4})
    p = by_name(df)
    assert p["none"].kind == "numeric" and (p["none"].count, p["none"].missing) == (0, 4)
    assert p["none"].mean is None and p["none"].histogram is None and p["none"].missing_share == 1.0
    assert p["null_type"].kind == "other" and p["null_type"].missing == 4
    const = p["const"]
    assert (const.distinct, const.std, const.skew, const.top_share) == (1, 0.0, None, 1.0)
    assert const.histogram == [(7.0, 7.0, 4)] and const.outliers_iqr == 0 and const.outliers_z == 0
    assert const.quantiles == {label: 7.0 for label in QUANTILES}
    one = p["one"]
    assert (one.count, one.mean, one.std, one.skew) == (1, 2.5, None, None)
    assert p["label"].kind == "categorical" and p["label"].top_share == 1.0
    as_json(list(p.values()))


def test_nan_and_infinity_never_leak():
    inf = float("inf")
    df = pl.DataFrame({"x": [1.0, float("nan"), inf, -inf, None, 3.0, 3.0]})
    p = by_name(df)["x"]
    assert (p.count, p.missing, p.infinite) == (5, 2, 2)  # NaN is missing; ±inf are values kept aside
    assert p.distinct == 4 and p.top_share == 0.4  # 1, 3, inf, -inf; 3 twice
    assert (p.min, p.max) == (1.0, 3.0)  # finite range
    assert p.mean == pytest.approx(7 / 3) and p.std == pytest.approx(np.std([1, 3, 3], ddof=1))
    assert sum(c for _, _, c in p.histogram) == 3
    as_json([p])
    only_inf = by_name(pl.DataFrame({"x": [inf, -inf, None]}))["x"]
    assert only_inf.count == 2 and only_inf.mean is None and only_inf.histogram is None
    as_json([only_inf])


def test_nested_and_object_columns_do_not_crash():
    df = pl.DataFrame({"l": [[1], [1], None, [2, 3]], "st": [{"a": 1}, {"a": 1}, None, {"a": 2}],
                       "t": [dt.time(1), dt.time(1), None, dt.time(2)], "n": [1, 1, 2, 3]})
    p = by_name(df)
    assert p["l"].kind == p["st"].kind == p["t"].kind == "other"
    assert (p["l"].count, p["l"].missing, p["l"].distinct, p["l"].top_share) == (3, 1, 2, pytest.approx(2 / 3))
    assert p["st"].distinct == 2
    as_json(list(p.values()))
    assert duplicate_rows(df) == 1
    correlations(df, list(p.values()))


def test_numbers_stored_as_python_objects_are_profiled_as_numbers():
    values = np.where(np.arange(6) % 3 == 0, None, np.arange(6) * 1.5)  # numpy object array, as pandas hands over
    df = pl.DataFrame({"income": values, "y": [0, 1, 0, 1, 0, 1]})
    assert df.schema["income"] == pl.Object
    p = by_name(df)["income"]
    assert p.kind == "numeric" and (p.count, p.missing) == (4, 2)
    stats = target_analysis(df, "y", profile_columns(df))
    assert [s.column for s in stats] == ["income"]


# ---- correlations ----------------------------------------------------------------------------------
def test_pearson_and_spearman_match_numpy_and_scipy():
    rng = np.random.default_rng(7)
    a = rng.normal(size=300)
    df = pl.DataFrame({"a": a, "b": 2 * a + rng.normal(size=300), "c": np.exp(a) + rng.normal(0, 0.1, 300),
                       "k": rng.integers(0, 5, 300), "const": np.ones(300), "s": rng.choice(["x", "y"], 300)})
    profiles = profile_columns(df)
    m = correlations(df, profiles)
    names = ["a", "b", "c", "k"]
    assert m["pearson"]["column"].to_list() == names + ["const"]
    values = np.column_stack([df[c].to_numpy().astype(float) for c in names])
    assert matrix(m["pearson"])[:4, :4] == pytest.approx(np.corrcoef(values, rowvar=False), abs=1e-12)
    rho = sps.spearmanr(values).statistic
    assert matrix(m["spearman"])[:4, :4] == pytest.approx(rho, abs=1e-12)
    assert m["pearson"]["const"].null_count() == 5 and m["spearman"].row(4)[1:] == (None,) * 5


def test_pearson_uses_pairwise_complete_rows():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=200), rng.normal(size=200)
    y[::4] = np.nan
    x[1::5] = np.inf  # treated like missing for correlations
    m = correlations(pl.DataFrame({"x": x, "y": y}), profile_columns(pl.DataFrame({"x": x, "y": y})))
    keep = np.isfinite(x) & np.isfinite(y)
    assert matrix(m["pearson"])[0, 1] == pytest.approx(np.corrcoef(x[keep], y[keep])[0, 1], abs=1e-12)


def test_cramers_v_perfect_and_independent_pairs():
    rng = np.random.default_rng(5)
    colour = rng.choice(["red", "green", "blue"], 5000)
    code = np.vectorize({"red": "R", "green": "G", "blue": "B"}.get)(colour)
    noise = rng.choice(["p", "q", "r", "s"], 5000)
    flag = rng.random(5000) < 0.5
    df = pl.DataFrame({"colour": colour, "code": code, "noise": noise, "flag": flag,
                       "many": [f"v{i % 300}" for i in range(5000)]})  # 300 > 200 distinct: left out
    v = correlations(df, profile_columns(df))["cramers_v"]
    assert v["column"].to_list() == ["colour", "code", "noise", "flag"]
    cells = matrix(v)
    assert cells[0, 1] == pytest.approx(1.0) and cells[0, 0] == pytest.approx(1.0)
    assert cells[0, 2] < 0.03 and cells[2, 3] < 0.03
    assert np.allclose(cells, cells.T)


def test_correlation_matrices_are_capped_by_completeness():
    rng = np.random.default_rng(2)
    df = pl.DataFrame({f"x{i}": [None if rng.random() < i / 10 else rng.normal() for _ in range(100)]
                       for i in range(6)})
    profiles = profile_columns(df)
    kept = correlations(df, profiles, max_columns=3)["pearson"]["column"].to_list()
    fewest = sorted(profiles, key=lambda p: p.missing)[:3]
    assert kept == [p.name for p in profiles if p in fewest]


# ---- target analysis -------------------------------------------------------------------------------
def credit_table(rows: int = 5000, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.normal(size=rows)
    default = rng.random(rows) < 1 / (1 + np.exp(-2.5 * score))
    region = np.where(default, rng.choice(["n", "s", "e", "w"], rows, p=[0.7, 0.1, 0.1, 0.1]),
                      rng.choice(["n", "s", "e", "w"], rows, p=[0.1, 0.3, 0.3, 0.3]))
    return pl.DataFrame({
        "score": np.where(rng.random(rows) < 0.1, np.nan, score),
        "noise": rng.normal(size=rows),
        "region": region,
        "perfect": default.astype(float) * 10 + rng.random(rows),
        "default": np.where(default, "yes", "no"),
    })


def test_information_value_auc_and_woe_direction():
    df = credit_table()
    stats = target_analysis(df, "default", profile_columns(df))
    by = {s.column: s for s in stats}
    assert set(by) == {"score", "noise", "region", "perfect"}  # the target itself is skipped
    assert [s.iv for s in stats] == sorted((s.iv for s in stats), reverse=True)
    assert by["score"].iv > 0.5 and by["region"].iv > 0.5
    assert by["noise"].iv < 0.05 and by["noise"].auc < 0.55
    assert by["perfect"].auc == 1.0
    assert by["score"].auc > 0.75
    bins = [b for b in by["score"].bins if b["bin"] != "missing"]
    assert len(bins) == 10 and sum(b["count"] for b in by["score"].bins) == df.height
    assert bins[0]["event_rate"] < bins[-1]["event_rate"]  # events ("yes") rise with the score
    for b in bins:  # WOE = ln(non-event share / event share): negative where events are over-represented
        overall = (df["default"] == "yes").mean()
        assert (b["woe"] < 0) == (b["event_rate"] > overall)
    assert by["score"].bins[-1]["bin"] == "missing" and by["score"].bins[-1]["count"] == df["score"].is_nan().sum()
    assert [b["bin"] for b in by["region"].bins][:1] == ["n"] and by["region"].bins[0]["woe"] < 0
    json.dumps([dataclasses.asdict(s) for s in stats], allow_nan=False)


def test_auc_matches_sklearn_with_median_imputation():
    from sklearn.metrics import roc_auc_score
    df = credit_table(800, seed=4)
    by = {s.column: s for s in target_analysis(df, "default", profile_columns(df))}
    x = df["score"].to_numpy()
    x = np.where(np.isnan(x), np.nanmedian(x), x)
    y = (df["default"] == "yes").to_numpy()
    auc = roc_auc_score(y, x)
    assert by["score"].auc == pytest.approx(max(auc, 1 - auc), abs=1e-12)


def test_categorical_bins_top_categories_other_and_missing():
    rng = np.random.default_rng(9)
    labels = np.array([f"c{i:02d}" for i in range(25)])
    cat = labels[rng.integers(0, 25, 3000)].astype(object)
    cat[:50] = None
    df = pl.DataFrame({"cat": cat.tolist(), "y": rng.integers(0, 2, 3000)})
    stat = target_analysis(df, "y", profile_columns(df))[0]
    names = [b["bin"] for b in stat.bins]
    assert len(names) == 22 and names[-2:] == ["other", "missing"]
    assert sum(b["count"] for b in stat.bins) == 3000
    assert stat.bins[-1]["count"] == 50
    assert stat.iv < 0.1 and 0.5 <= stat.auc < 0.6


@pytest.mark.parametrize("event, other", [(1, 0), (True, False), ("1", "0"), ("Yes", "no")])
def test_event_is_the_positive_label_even_as_the_majority(event, other):
    df = pl.DataFrame({"f": ["a", "a", "a", "b", "b"], "t": [event, event, event, other, other]})
    top = target_analysis(df, "t", profile_columns(df))[0].bins[0]
    assert (top["bin"], top["event_rate"]) == ("a", 1.0)


def test_event_is_the_minority_without_a_positive_label():
    df = pl.DataFrame({"f": [1.0, 2.0, 3.0, 4.0, 5.0], "t": ["good", "good", "good", "bad", "bad"]})
    stat = target_analysis(df, "t", profile_columns(df))[0]
    assert stat.auc == 1.0
    assert [b["event_rate"] for b in stat.bins] == [0.0, 0.0, 0.0, 1.0, 1.0]  # "bad" is the event


def test_rows_with_missing_target_are_left_out():
    df = pl.DataFrame({"f": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "t": [0.0, 1.0, None, 0.0, 1.0, float("nan")]})
    stat = target_analysis(df, "t", profile_columns(df))[0]
    assert sum(b["count"] for b in stat.bins) == 4


def test_non_binary_target_is_refused_with_the_column_name():
    df = pl.DataFrame({"f": [1.0, 2.0, 3.0], "branch": ["n", "s", "e"], "one": [1, 1, None]})
    profiles = profile_columns(df)
    with pytest.raises(ValueError, match="branch"):
        target_analysis(df, "branch", profiles)
    with pytest.raises(ValueError, match="'one'.*1 distinct"):
        target_analysis(df, "one", profiles)
    with pytest.raises(ValueError, match="missing_col"):
        target_analysis(df, "missing_col", profiles)


def test_target_analysis_with_empty_and_constant_features():
    df = pl.DataFrame({"none": pl.Series([None] * 6, dtype=pl.Float64), "const": [4.0] * 6,
                       "label": ["z"] * 6, "y": [0, 1, 0, 1, 1, 0]})
    by = {s.column: s for s in target_analysis(df, "y", profile_columns(df))}
    assert by["none"].iv == 0.0 and by["none"].auc is None and [b["bin"] for b in by["none"].bins] == ["missing"]
    assert by["const"].iv == 0.0 and by["const"].auc == 0.5
    assert by["label"].iv == 0.0 and by["label"].auc == 0.5


# ---- table level -----------------------------------------------------------------------------------
def test_duplicate_rows():
    df = pl.DataFrame({"a": [1, 2, 1, 1, None, None], "b": ["x", "y", "x", "z", None, None]})
    assert duplicate_rows(df) == 2  # row 2 repeats row 0, row 5 repeats row 4
    assert duplicate_rows(df.unique(maintain_order=True)) == 0
    assert duplicate_rows(pl.concat([df, df])) == 8


def test_sample_for_profile_on_more_rows_than_the_limit():
    df = pl.DataFrame({"i": np.arange(1_200_000)})
    same, sampled = sample_for_profile(df.head(1000))
    assert not sampled and same.height == 1000
    sample, sampled = sample_for_profile(df, seed=3)
    assert sampled and sample.height == 1_000_000
    rows = sample["i"]
    assert rows.n_unique() == 1_000_000 and rows.is_sorted()  # no repeats, original order kept
    again, _ = sample_for_profile(df, seed=3)
    other, _ = sample_for_profile(df, seed=4)
    assert again["i"].equals(rows) and not other["i"].equals(rows)


def test_profiles_a_million_rows_of_mixed_kinds():
    rows = 1_000_000
    rng = np.random.default_rng(0)
    columns: dict[str, object] = {}
    for i in range(9):
        x = rng.normal(i, 1 + i, rows)
        x[rng.random(rows) < 0.05 * (i % 3)] = np.nan
        columns[f"num{i}"] = x
    for i in range(3):
        columns[f"int{i}"] = rng.integers(0, 10 ** (i + 2), rows)
    for i in range(4):
        columns[f"cat{i}"] = rng.choice([f"v{k}" for k in range(3 + 10 * i)], rows)
    columns["text"] = pl.Series(rng.integers(0, 10 ** 9, rows)).cast(pl.String)
    columns["flag"] = rng.random(rows) < 0.2
    columns["day"] = pl.Series(rng.integers(0, 20_000, rows)).cast(pl.Date)
    columns["target"] = (rng.random(rows) < 1 / (1 + np.exp(-(columns["num1"] - 1)))).astype(np.int64)
    df = pl.DataFrame(columns)
    assert df.shape == (rows, 20)
    profiles = profile_columns(df)
    assert len(profiles) == 20 and {p.kind for p in profiles} == {"numeric", "categorical", "text", "boolean",
                                                                   "datetime"}
    matrices = correlations(df, profiles)
    assert matrices["pearson"].height == 13 and matrices["cramers_v"].height == 5
    stats = target_analysis(df, "target", profiles)
    assert stats[0].column == "num1" and not math.isnan(stats[0].iv)
    assert duplicate_rows(df) == 0
    as_json(profiles)


def test_duplicate_count_with_the_distinct_column_prefilter_is_exact():
    """The prefilter on the most distinct columns must not change the count: copies (with nulls in them) placed at
    random rows, plus rows that repeat on the key columns only."""
    rng = np.random.default_rng(5)
    n = 5000
    base = pl.DataFrame({"amount": rng.normal(size=n), "ts": rng.integers(0, 10**9, n),
                         "city": rng.choice(["上海", "北京", None], n), "flag": rng.integers(0, 2, n)})
    base = base.with_columns(pl.when(pl.col("flag") == 1).then(None).otherwise(pl.col("amount")).alias("amount"))
    copies = base.sample(300, seed=1)
    near = base.sample(200, seed=2).with_columns((pl.col("flag") + 5).alias("flag"))  # same keys, other flag
    df = pl.concat([base, copies, near]).sample(fraction=1.0, shuffle=True, seed=3)
    expected = df.height - df.n_unique()
    assert expected >= 300
    assert duplicate_rows(df, profile_columns(df)) == expected == duplicate_rows(df)
