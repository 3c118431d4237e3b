"""Binning: edges against numpy, optimal bins against optbinning's own table, WOE by hand, missing and unseen
values, categorical grouping, and chaining after another fitted step.

Data: the project's synthetic credit applications, plus small synthetic tables with a known monotone relation.
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.ports import FittedTransformPort, ReportPort
from engine.testing import NodeFailed, run_node
from nodes.features.fitted import apply_transform, steps
from nodes.features.transforms.binning import Binning, apply, fit_binning
from nodes.features.transforms.impute import Impute
from resources.sampledata.credit import generate_applications


@pytest.fixture(scope="module")
def parts() -> tuple[pl.DataFrame, pl.DataFrame]:
    df = generate_applications(3_000, seed=21)
    return df.head(2_000), df.tail(1_000)


def _as_bins(params: dict) -> dict:
    """The same fitted bins with label output (what output="bin" stores), to read each row's bin."""
    entries = [{**e, "output": f"{e['column']}_bin"} for e in params["entries"]]
    return {**params, "output": "bin", "entries": entries, "outputs": [e["output"] for e in entries]}


def _monotone(n: int, seed: int, slope: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-slope * (x - 50) / 15))).astype(np.int64)
    return pl.DataFrame({"x": x, "y": y})


# ---- unsupervised edges ----------------------------------------------------------------------------
def test_equal_width_edges_and_counts_match_numpy(parts):
    train, _ = parts
    step, table = fit_binning(train, ["debt_to_income"], target=None, method="equal_width", max_bins=8,
                              min_bin_share=0.0, output="bin")
    x = train["debt_to_income"].to_numpy()
    counts, edges = np.histogram(x, bins=8)
    entry = step.params["entries"][0]
    np.testing.assert_allclose(entry["splits"], edges[1:-1], rtol=1e-12)
    assert table["count"].to_list() == counts.tolist()  # left-closed bins; numpy's last bin holds the maximum
    assert table["share"].sum() == pytest.approx(1.0)
    assert table["woe"].null_count() == table.height  # no target, no WOE
    labels = apply(step.params, train)["debt_to_income_bin"]
    assert labels.value_counts().sort("debt_to_income_bin")["count"].sum() == train.height
    assert labels[int(np.argmax(x))] == entry["labels"][-1] and entry["labels"][-1].endswith(", inf)")


def test_quantile_edges_match_numpy_and_small_bins_merge(parts):
    train, _ = parts
    step, table = fit_binning(train, ["credit_utilization"], target=None, method="quantile", max_bins=5,
                              min_bin_share=0.0, output="bin")
    x = train["credit_utilization"].to_numpy()
    np.testing.assert_allclose(step.params["entries"][0]["splits"], np.quantile(x, [0.2, 0.4, 0.6, 0.8]))
    assert table["count"].to_list() == np.bincount(np.searchsorted(np.quantile(x, [0.2, 0.4, 0.6, 0.8]), x,
                                                                   side="right")).tolist()
    # income is heavily skewed: equal-width bins are mostly tiny; with a 10% minimum they merge
    raw, _ = fit_binning(train, ["loan_amount"], target=None, method="equal_width", max_bins=10, min_bin_share=0,
                         output="bin")
    merged, merged_table = fit_binning(train, ["loan_amount"], target=None, method="equal_width", max_bins=10,
                                       min_bin_share=0.1, output="bin")
    raw_splits, merged_splits = raw.params["entries"][0]["splits"], merged.params["entries"][0]["splits"]
    assert set(merged_splits) < set(raw_splits)
    assert merged_table.filter(pl.col("bin") != "missing")["share"].min() >= 0.1


# ---- optimal ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("slope, trend", [(1.0, "auto"), (-1.0, "descending")])
def test_optimal_bins_are_monotonic_and_agree_with_optbinning(slope, trend):
    from optbinning import OptimalBinning

    data = _monotone(3_000, seed=4, slope=slope)
    step, table = fit_binning(data, ["x"], target="y", method="optimal", max_bins=6, min_bin_share=0.05,
                              monotonic=trend)
    rates = table["event_rate"].to_numpy()
    assert 3 <= len(rates) <= 6
    diffs = np.diff(rates)
    assert (diffs > 0).all() if slope > 0 else (diffs < 0).all()
    # the same fit by optbinning directly: same splits, same WOE per bin (same sign convention)
    ob = OptimalBinning(name="x", dtype="numerical", solver="cp", max_n_bins=6, min_bin_size=0.05,
                        min_prebin_size=0.05, monotonic_trend="auto_asc_desc" if trend == "auto" else trend)
    ob.fit(data["x"].to_numpy(), data["y"].to_numpy())
    np.testing.assert_allclose(step.params["entries"][0]["splits"], ob.splits)
    bt = ob.binning_table.build()
    np.testing.assert_allclose(table["woe"].to_numpy(), bt["WoE"].to_numpy()[:len(rates)].astype(float), rtol=1e-9)
    assert table["iv"].sum() == pytest.approx(float(bt.loc["Totals", "IV"]), rel=1e-9)
    assert table["count"].to_list() == bt["Count"].to_numpy()[:len(rates)].astype(int).tolist()


def test_apply_on_train_gives_the_fitted_woe_per_bin_and_nulls_go_to_missing():
    data = _monotone(2_000, seed=8, slope=1.0)
    data = data.with_columns(pl.when(pl.int_range(pl.len()) % 10 == 0).then(None).otherwise(pl.col("x")).alias("x"))
    step, table = fit_binning(data, ["x"], target="y", method="optimal", max_bins=5)
    woe = apply(step.params, data)["x_woe"]
    bins = apply(_as_bins(step.params), data)["x_bin"]
    joined = pl.DataFrame({"bin": bins, "woe": woe}).group_by("bin").agg(pl.col("woe").unique())
    for row in table.iter_rows(named=True):
        got = joined.filter(pl.col("bin") == row["bin"])["woe"].item().to_list()
        assert got == [pytest.approx(row["woe"])]
    # the missing bin, by hand: ln(share of non-events / share of events)
    y, missing = data["y"].to_numpy(), data["x"].is_null().to_numpy()
    e, ne = y[missing].sum(), (1 - y[missing]).sum()
    expected = math.log((ne / (1 - y).sum()) / (e / y.sum()))
    assert table.filter(pl.col("bin") == "missing")["woe"].item() == pytest.approx(expected)
    assert bins.filter(data["x"].is_null()).unique().to_list() == ["missing"]
    # outside the training range: the open-ended first and last bins
    beyond = apply(_as_bins(step.params), pl.DataFrame({"x": [-1e9, 1e9, None]}))["x_bin"].to_list()
    labels = step.params["entries"][0]["labels"]
    assert beyond == [labels[0], labels[-1], "missing"]
    assert labels[0].startswith("(-inf, ") and labels[-1].endswith(", inf)")


def test_missing_gets_neutral_woe_when_training_had_none(parts):
    train, test = parts
    step, table = fit_binning(train, ["age"], target="default", method="quantile", max_bins=4, min_bin_share=0.0)
    assert "missing" not in table["bin"].to_list()
    out = apply(step.params, test.with_columns(pl.lit(None, pl.Int64).alias("age")))
    assert out["age_woe"].unique().to_list() == [0.0]


def test_categorical_optimal_binning(parts):
    train, test = parts
    step, table = fit_binning(train, ["employment_type"], target="default", method="optimal", max_bins=4,
                              min_bin_share=0.05)
    entry = step.params["entries"][0]
    assert entry["type"] == "categorical"
    assert sorted(c for g in entry["groups"] for c in g) == sorted(train["employment_type"].unique().to_list())
    y = train["default"].to_numpy()
    total_e, total_ne = y.sum(), len(y) - y.sum()
    for group, label, woe in zip(entry["groups"], entry["labels"], entry["woe"]):
        mask = train["employment_type"].is_in(group).to_numpy()
        e, ne = y[mask].sum(), (1 - y[mask]).sum()
        assert woe == pytest.approx(math.log((ne / total_ne) / (e / total_e)))
        assert table.filter(pl.col("bin") == label)["count"].item() == mask.sum()
    odd = test.head(3).with_columns(pl.Series("employment_type", ["Astronaut", None, entry["groups"][0][0]]))
    woe = apply(step.params, odd)["employment_type_woe"].to_list()
    assert woe == [0.0, 0.0, pytest.approx(entry["woe"][0])]
    labels = apply(_as_bins(step.params), odd)["employment_type_bin"].to_list()
    assert labels == ["unseen", "missing", entry["labels"][0]]


# ---- the node --------------------------------------------------------------------------------------
def test_node_report_and_chain_with_previous(parts, tmp_path):
    train, test = parts
    imputed = run_node(Impute, {"table": train}, {"columns": ["annual_income", "employment_years"]})
    out = run_node(Binning, {"table": imputed["table"], "previous": imputed["transform"]},
                   {"columns": ["annual_income", "employment_years", "debt_to_income"], "target": "default",
                    "max_bins": 5, "keep_original": False})
    chain = out["transform"]
    assert [s.kind for s in steps(chain)] == ["impute", "binning"]
    assert {"annual_income_woe", "employment_years_woe", "debt_to_income_woe"} <= set(out["table"].columns)
    assert "annual_income" not in out["table"].columns
    (tmp_path / "t").mkdir()
    FittedTransformPort.save(chain, tmp_path / "t")
    loaded = FittedTransformPort.load(tmp_path / "t")
    one_by_one = apply_transform(steps(chain)[1], apply_transform(imputed["transform"], test))
    assert apply_transform(loaded, test).equals(one_by_one)
    assert apply_transform(chain, train).equals(out["table"])

    report = out["report"]
    bins = report.tables["Binning table"]
    assert bins.columns == ["column", "bin", "count", "share", "events", "event_rate", "woe", "iv"]
    ivs = report.tables["Information value"]
    assert ivs["iv"].to_list() == sorted(ivs["iv"].to_list(), reverse=True)
    for column, iv in ivs.iter_rows():
        assert iv == pytest.approx(bins.filter(pl.col("column") == column)["iv"].sum())
    assert report.figures
    ReportPort.save(report, tmp_path)
    assert ReportPort.load(tmp_path).tables["Binning table"].equals(bins)


def test_default_columns_are_numeric_except_target(parts):
    train, _ = parts
    small = train.select("age", "gender", "loan_term_months", "default")
    step, _ = fit_binning(small, [], target="default", method="quantile", max_bins=3)
    assert list(step.columns) == ["age", "loan_term_months"]


def test_bad_input(parts):
    train, _ = parts
    with pytest.raises(NodeFailed, match="Target column: the optimal method needs"):
        run_node(Binning, {"table": train}, {"columns": ["age"]})
    with pytest.raises(NodeFailed, match="Target column: column 'bad' is not in the table"):
        run_node(Binning, {"table": train}, {"columns": ["age"], "target": "bad"})
    with pytest.raises(NodeFailed, match="target column 'region' must be binary"):
        run_node(Binning, {"table": train}, {"columns": ["age"], "target": "region"})
    with pytest.raises(NodeFailed, match="Columns: column 'height' is not in the table"):
        run_node(Binning, {"table": train}, {"columns": ["height"], "target": "default"})
    with pytest.raises(NodeFailed, match="no rows"):
        run_node(Binning, {"table": train.head(0)}, {"target": "default"})
    with pytest.raises(NodeFailed, match="'region' is categorical.*optimal"):
        run_node(Binning, {"table": train}, {"columns": ["region"], "method": "quantile", "output": "bin"})
    with pytest.raises(NodeFailed, match="WOE output needs a binary target"):
        run_node(Binning, {"table": train}, {"columns": ["age"], "method": "quantile"})
    with pytest.raises(NodeFailed, match="'application_date' is Date"):
        run_node(Binning, {"table": train}, {"columns": ["application_date"], "target": "default"})
