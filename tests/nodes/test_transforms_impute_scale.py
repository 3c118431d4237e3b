"""Impute and Scale: statistics come from the training table only, travel as JSON, and apply unchanged elsewhere.

Data: the project's synthetic credit applications (planted missing values in employment_years, annual_income and
months_since_last_delinquency). Expected values come from numpy and scikit-learn, not from the code under test.
"""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import polars as pl
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from engine.errors import NodeInputError
from engine.executors.base import run_inline
from engine.ports import FittedTransformPort
from engine.testing import NodeFailed, run_node
from nodes.features.fitted import apply_transform, steps
from nodes.features.transforms.impute import Impute
from nodes.features.transforms.scale import Scale
from resources.sampledata.credit import generate_applications

NULLY = ["employment_years", "annual_income", "months_since_last_delinquency"]
NUMERIC = ["age", "annual_income", "debt_to_income", "credit_utilization", "loan_amount"]


@pytest.fixture(scope="module")
def parts() -> tuple[pl.DataFrame, pl.DataFrame]:
    df = generate_applications(3_000, seed=5)
    # a categorical column with missing values too
    df = df.with_columns(pl.when(pl.int_range(pl.len()) % 17 == 3).then(None).otherwise(pl.col("education"))
                         .alias("education"))
    # the test part drifts, so its own statistics clearly differ from the training ones
    return df.head(2_000), df.tail(1_000).with_columns(pl.col(NULLY) * 3, pl.col("age") + 10)


def _nan(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).to_numpy()


# ---- impute ----------------------------------------------------------------------------------------
def test_impute_uses_training_statistics_on_the_test_table(parts):
    train, test = parts
    out = run_node(Impute, {"table": train}, {"add_indicator": True})
    step = out["transform"]
    assert step.kind == "impute"
    assert set(step.columns) == {*NULLY, "education"}  # empty setting: exactly the columns with nulls
    for col in NULLY:
        expected = float(np.nanmedian(_nan(train[col])))
        assert step.params["numeric"][col] == pytest.approx(expected)
        assert expected != pytest.approx(float(np.nanmedian(_nan(test[col]))))  # train and test differ
    mode = Counter(v for v in train["education"].to_list() if v is not None).most_common(1)[0][0]
    assert step.params["categorical"]["education"] == mode

    applied = apply_transform(step, test)
    for col in NULLY:
        was = test[col].is_null()
        filled = applied[col]
        assert filled.null_count() == 0
        assert (filled.filter(was) == step.params["numeric"][col]).all()
        assert filled.filter(~was).to_list() == test[col].filter(~was).cast(filled.dtype).to_list()
        assert applied[f"{col}_was_missing"].to_list() == was.cast(pl.Int8).to_list()
    assert applied["education"].filter(test["education"].is_null()).unique().to_list() == [mode]
    # the training output is the same transform applied to the training table
    assert out["table"].equals(apply_transform(step, train))


def test_impute_mean_and_constants(parts):
    train, test = parts
    out = run_node(Impute, {"table": train}, {"columns": ["annual_income", "education"], "numeric_strategy": "mean",
                                              "categorical_strategy": "constant", "categorical_fill_value": "N/A"})
    params = out["transform"].params
    assert params["numeric"] == {"annual_income": pytest.approx(float(np.nanmean(_nan(train["annual_income"]))))}
    assert params["categorical"] == {"education": "N/A"}
    assert "employment_years" not in params["numeric"]  # only the configured columns
    const = run_node(Impute, {"table": train}, {"columns": ["employment_years"], "numeric_strategy": "constant",
                                                "numeric_fill_value": -1})
    filled = apply_transform(const["transform"], test)["employment_years"]
    assert filled.filter(test["employment_years"].is_null()).unique().to_list() == [-1.0]


def test_impute_integer_column_with_fractional_mean_becomes_float_and_nan_counts_as_missing():
    train = pl.DataFrame({"n": [1, 2, None, 2], "x": [1.0, float("nan"), 3.0, None]})
    out = run_node(Impute, {"table": train}, {"numeric_strategy": "mean", "add_indicator": True})
    table = out["table"]
    assert table["n"].to_list() == [1.0, 2.0, pytest.approx(5 / 3), 2.0]
    assert table["x"].to_list() == [1.0, 2.0, 3.0, 2.0]
    assert table["x_was_missing"].to_list() == [0, 1, 0, 1]
    # a table with no missing values still gets the same dtype (it does not depend on the data)
    assert apply_transform(out["transform"], pl.DataFrame({"n": [4, 5], "x": [0.5, 1.5]}))["n"].dtype == pl.Float64


def test_impute_all_null_column_is_a_clear_error_unless_constant(parts):
    train, _ = parts
    table = train.with_columns(pl.lit(None, pl.Float64).alias("empty"))
    with pytest.raises(NodeFailed, match="'empty'.*no finite values.*constant"):
        run_node(Impute, {"table": table}, {"columns": ["empty"]})
    out = run_node(Impute, {"table": table}, {"columns": ["empty"], "numeric_strategy": "constant",
                                              "numeric_fill_value": 7})
    assert out["table"]["empty"].unique().to_list() == [7.0]


def test_impute_round_trips_through_the_port(parts, tmp_path):
    train, test = parts
    step = run_node(Impute, {"table": train}, {"add_indicator": True})["transform"]
    FittedTransformPort.save(step, tmp_path)
    loaded = FittedTransformPort.load(tmp_path)
    assert loaded == step or (loaded.kind, loaded.params, loaded.columns) == (step.kind, step.params, step.columns)
    assert apply_transform(loaded, test).equals(apply_transform(step, test))


def test_impute_bad_input(parts):
    train, _ = parts
    with pytest.raises(NodeFailed, match="Columns: column 'nope' is not in the table"):
        run_node(Impute, {"table": train}, {"columns": ["nope"]})
    with pytest.raises(NodeFailed, match="no rows"):
        run_node(Impute, {"table": train.head(0)}, {})
    with pytest.raises(NodeFailed, match="application_date.*numeric or categorical"):
        run_node(Impute, {"table": train}, {"columns": ["application_date"]})
    with pytest.raises(NodeInputError, match="needs column 'annual_income'"):
        apply_transform(run_node(Impute, {"table": train}, {})["transform"], train.drop("annual_income"))


# ---- scale -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, scaler", [("standard", StandardScaler), ("minmax", MinMaxScaler),
                                            ("robust", RobustScaler)])
def test_scale_matches_scikit_learn_fitted_on_train(parts, method, scaler):
    train, test = parts
    out = run_node(Scale, {"table": train}, {"columns": NUMERIC, "method": method})
    reference = scaler().fit(train.select(NUMERIC).cast(pl.Float64).to_numpy())  # sklearn ignores NaN in fit
    expected_test = reference.transform(test.select(NUMERIC).cast(pl.Float64).to_numpy())
    got_test = apply_transform(out["transform"], test).select(NUMERIC).to_numpy()
    np.testing.assert_allclose(got_test, expected_test, rtol=1e-9, atol=1e-12, equal_nan=True)
    expected_train = reference.transform(train.select(NUMERIC).cast(pl.Float64).to_numpy())
    np.testing.assert_allclose(out["table"].select(NUMERIC).to_numpy(), expected_train, rtol=1e-9, atol=1e-12,
                               equal_nan=True)
    # nulls stay missing
    assert out["table"]["annual_income"].null_count() == train["annual_income"].null_count()


def test_scale_defaults_to_numeric_columns_except_those_left_out(parts):
    train, _ = parts
    step = run_node(Scale, {"table": train}, {"exclude": ["default"]})["transform"]
    numeric = [c for c, d in train.schema.items() if d.is_numeric() and c != "default"]
    assert list(step.columns) == numeric and step.params["outputs"] == numeric


def test_scale_constant_column_is_centred_not_divided_by_zero():
    table = pl.DataFrame({"c": [3.0, 3.0, 3.0], "x": [1.0, 2.0, 3.0]})
    logs: list[tuple[int, str]] = []
    outcome = run_inline(Scale, {"table": table}, {"method": "standard"},
                         emit=lambda kind, payload: logs.append(payload) if kind == "log" else None)
    assert outcome.error is None
    params = outcome.outputs["transform"].params
    assert params["scale"]["c"] == 1.0 and params["center"]["c"] == 3.0
    assert outcome.outputs["table"]["c"].to_list() == [0.0, 0.0, 0.0]
    assert any(level == logging.WARNING and "c is constant" in text for level, text in logs)


def test_scale_round_trip_and_chain_with_previous_impute(parts, tmp_path):
    train, test = parts
    imputed = run_node(Impute, {"table": train}, {"columns": ["annual_income"], "add_indicator": True})
    scaled = run_node(Scale, {"table": imputed["table"], "previous": imputed["transform"]},
                      {"columns": ["annual_income", "age"], "method": "robust"})
    chained = scaled["transform"]
    assert [s.kind for s in steps(chained)] == ["impute", "scale"]
    assert set(chained.columns) == {"annual_income", "age"}
    FittedTransformPort.save(chained, tmp_path)
    loaded = FittedTransformPort.load(tmp_path)
    one_by_one = apply_transform(steps(chained)[1], apply_transform(imputed["transform"], test))
    assert apply_transform(loaded, test).equals(one_by_one)
    assert apply_transform(chained, train).equals(scaled["table"])
    assert one_by_one["annual_income"].null_count() == 0


def test_scale_bad_input(parts):
    train, _ = parts
    with pytest.raises(NodeFailed, match="'gender' is String.*numeric"):
        run_node(Scale, {"table": train}, {"columns": ["gender"]})
    with pytest.raises(NodeFailed, match="Columns: column 'missing_col' is not in the table"):
        run_node(Scale, {"table": train}, {"columns": ["missing_col"]})
    with pytest.raises(NodeFailed, match="no rows"):
        run_node(Scale, {"table": train.head(0)}, {})
    with pytest.raises(NodeFailed, match="'blank' has no finite values"):
        run_node(Scale, {"table": train.with_columns(pl.lit(None, pl.Float64).alias("blank"))},
                 {"columns": ["blank"]})
