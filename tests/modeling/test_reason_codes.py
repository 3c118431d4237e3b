"""Reason codes in Predict, from a LightGBM model's TreeSHAP contributions on the sample data."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from engine.ports import ModelRef
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl import flavors, gbm_flavor
from nodes.automl.gbm import LightGBM
from nodes.automl.predict import Predict, reason_columns
from nodes.features.split import Split
from nodes.io.csv_reader import ReadCSV

K = 3


@pytest.fixture(scope="module")
def split():
    table = run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"].drop("customer_id", "application_date")
    return run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})


@pytest.fixture(scope="module")
def model(split, tmp_path_factory):
    return run_node(LightGBM, {"train": split["train"]}, {"label": "default", "n_estimators": 60},
                    workdir=tmp_path_factory.mktemp("gbm"))["model"]


@pytest.fixture(scope="module")
def scored(split, model):
    return run_node(Predict, {"model": model, "table": split["test"]}, {"reason_codes": K})["table"]


@pytest.fixture(scope="module")
def shap(split, model):
    """LightGBM's own pred_contrib matrix (features then the expected value), straight from the booster."""
    booster = lgb.Booster(model_file=str(model.path / "model.txt"))
    x = gbm_flavor.encode(model, flavors.prepare(model, split["test"]))
    return booster.predict(x, pred_contrib=True), booster.predict(x, raw_score=True)


def test_reason_columns_follow_the_prediction(split, scored):
    extra = ["prediction", "probability"] + [c for k in range(1, K + 1) for c in (f"reason_{k}", f"reason_{k}_impact")]
    assert scored.columns == [*split["test"].columns, *extra]
    assert scored.schema["reason_1"] == pl.String and scored.schema["reason_1_impact"] == pl.Float64


def test_top_reason_is_the_largest_positive_contribution(model, scored, shap):
    contrib, _ = shap
    features = np.array(model.info["features"])
    best = contrib[:, :-1].max(axis=1)
    has_reason = best > 0
    assert has_reason.any() and scored["reason_1"].is_not_null().to_numpy().tolist() == has_reason.tolist()
    np.testing.assert_allclose(scored["reason_1_impact"].to_numpy()[has_reason], best[has_reason], rtol=0, atol=1e-12)
    argmax = features[contrib[:, :-1].argmax(axis=1)]
    assert scored["reason_1"].to_numpy()[has_reason].tolist() == argmax[has_reason].tolist()


def test_reasons_are_ranked_and_only_positive_contributions_count(model, scored, shap):
    contrib, _ = shap
    positives = (contrib[:, :-1] > 0).sum(axis=1)
    impacts = scored.select(f"reason_{k}_impact" for k in range(1, K + 1)).to_numpy()
    for k in range(K):
        present = ~np.isnan(impacts[:, k])
        assert present.tolist() == (positives > k).tolist()  # rows with fewer positive contributions get nulls
        assert (impacts[present, k] > 0).all()
        if k:
            assert (impacts[present, k] <= impacts[present, k - 1]).all()
    names = scored.select(f"reason_{k}" for k in range(1, K + 1)).rows()
    assert all(len({n for n in row if n}) == sum(n is not None for n in row) for row in names)  # distinct


def test_contributions_add_up_to_the_log_odds(split, model, shap):
    contrib, raw = shap
    ours = flavors.contributions(model, split["test"])
    assert ours.columns == model.info["features"] and set(ours.dtypes) == {pl.Float64}
    np.testing.assert_array_equal(ours.to_numpy(), contrib[:, :-1])
    expected = gbm_flavor.expected_value(model, flavors.prepare(model, split["test"]))
    np.testing.assert_allclose(ours.to_numpy().sum(axis=1) + expected, raw, rtol=0, atol=1e-9)
    proba = flavors.score(model, split["test"]).proba["1"].to_numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-(ours.to_numpy().sum(axis=1) + expected))), proba, atol=1e-12)


def test_ties_keep_the_feature_order_and_extra_reasons_are_null():
    contrib = pl.DataFrame({"a": [0.5, -1.0, 0.0], "b": [0.7, -2.0, 0.0], "c": [0.5, 3.0, 0.0]})
    cols = {s.name: s.to_list() for s in reason_columns(contrib, 4)}
    assert cols["reason_1"] == ["b", "c", None] and cols["reason_1_impact"] == [0.7, 3.0, None]
    assert cols["reason_2"] == ["a", None, None] and cols["reason_3"] == ["c", None, None]
    assert cols["reason_4"] == [None, None, None] and cols["reason_4_impact"] == [None, None, None]


def test_default_output_is_unchanged(split, model):
    out = run_node(Predict, {"model": model, "table": split["test"]})["table"]
    assert out.columns == [*split["test"].columns, "prediction", "probability"]


def test_reason_code_errors_are_specific(split, model, tmp_path):
    taken = split["test"].with_columns(pl.lit("x").alias("reason_2_impact"))
    with pytest.raises(NodeFailed, match="already has a column 'reason_2_impact'"):
        run_node(Predict, {"model": model, "table": taken}, {"reason_codes": 2})
    with pytest.raises(NodeFailed, match="'reason_1' is named twice"):
        run_node(Predict, {"model": model, "table": split["test"]},
                 {"reason_codes": 1, "prediction_column": "reason_1"})
    with pytest.raises(NodeFailed, match="'score' is named twice") as exc:  # not a raw polars error
        run_node(Predict, {"model": model, "table": split["test"]},
                 {"prediction_column": "score", "probability_column": "score"})
    assert exc.value.input_error
    multi = run_node(LightGBM, {"train": split["train"]}, {"label": "region", "n_estimators": 5},
                     workdir=tmp_path / "multi")["model"]
    with pytest.raises(NodeFailed, match="binary or regression models; this model is multiclass"):
        run_node(Predict, {"model": multi, "table": split["test"]}, {"reason_codes": 2})
    # An AutoGluon model cannot explain rows: refused before its folder is ever opened, so an empty one serves.
    autogluon = ModelRef("autogluon", tmp_path, {**model.info, "best_model": "WeightedEnsemble_L2"})
    with pytest.raises(NodeFailed, match="autogluon models do not"):
        run_node(Predict, {"model": autogluon, "table": split["test"]}, {"reason_codes": 2})


def test_regression_reasons_raise_the_prediction(split, tmp_path):
    reg = run_node(LightGBM, {"train": split["train"]}, {"label": "monthly_debt", "n_estimators": 20},
                   workdir=tmp_path)["model"]
    out = run_node(Predict, {"model": reg, "table": split["test"]}, {"reason_codes": 1})["table"]
    contrib = flavors.contributions(reg, split["test"]).to_numpy()
    np.testing.assert_allclose(out["reason_1_impact"].fill_null(0).to_numpy(), np.clip(contrib.max(axis=1), 0, None),
                               rtol=0, atol=1e-12)
