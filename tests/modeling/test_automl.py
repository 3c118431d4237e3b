"""AutoML, Predict and Evaluate on the bundled sample data; the wrapper must reproduce AutoGluon exactly."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from engine.testing import NodeFailed, run_node
from engine.templates import SAMPLE_DATA
from nodes.automl.predict import Predict
from nodes.automl.train import AutoML
from nodes.evaluate.evaluate import Evaluate
from nodes.features.split import Split
from nodes.io.csv_reader import ReadCSV

pytestmark = pytest.mark.slow
SETTINGS = {"label": "default", "problem_type": "binary", "eval_metric": "roc_auc", "time_limit_s": 120,
            "presets": "medium_quality", "included_model_types": ["GBM"]}


@pytest.fixture(scope="module")
def split():
    table = run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"]
    return run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})


@pytest.fixture(scope="module")
def trained(split, tmp_path_factory):
    return run_node(AutoML, {"train": split["train"]}, SETTINGS, workdir=tmp_path_factory.mktemp("ag"))


def test_wrapper_gives_autogluons_own_result(split, trained, tmp_path):
    from autogluon.tabular import TabularPredictor

    direct = TabularPredictor(label="default", problem_type="binary", eval_metric="roc_auc", path=str(tmp_path),
                              verbosity=0, learner_kwargs={"random_state": 42})
    direct.fit(split["train"].to_pandas(), time_limit=120, presets="medium_quality", included_model_types=["GBM"])
    test_pd = split["test"].drop("default").to_pandas()
    ours = TabularPredictor.load(str(trained["model"].path), verbosity=0)
    np.testing.assert_allclose(ours.predict_proba(test_pd)[1].to_numpy(), direct.predict_proba(test_pd)[1].to_numpy(),
                               rtol=0, atol=1e-9)
    board = trained["leaderboard"]
    assert {"model", "score_val"} <= set(board.columns) and board.height >= 2
    assert trained["model"].info["best_model"] == direct.model_best


def test_predict_appends_prediction_and_probability(split, trained):
    out = run_node(Predict, {"model": trained["model"], "table": split["test"]})["table"]
    assert out.columns == [*split["test"].columns, "prediction", "probability"]
    assert out["probability"].is_between(0, 1).all()
    assert set(out["prediction"].unique().to_list()) <= {0, 1}


def test_evaluate_reports_auc_ks_gini_matching_sklearn(split, trained):
    report = run_node(Evaluate, {"model": trained["model"], "table": split["test"]})["report"]
    scored = run_node(Predict, {"model": trained["model"], "table": split["test"]})["table"]
    auc = roc_auc_score(scored["default"].to_numpy(), scored["probability"].to_numpy())
    assert report.metrics["auc"] == pytest.approx(auc, abs=1e-12)
    assert report.metrics["gini"] == pytest.approx(2 * auc - 1)
    assert 0.6 < report.metrics["auc"] < 0.95 and 0 < report.metrics["ks"] < 1
    assert {"ROC curve", "KS curve"} <= set(report.figures)
    cm = report.tables["Confusion matrix"]
    assert int(cm.select(pl.exclude("actual")).sum_horizontal().sum()) == split["test"].height


def test_label_errors_are_specific(split):
    with pytest.raises(NodeFailed, match="column 'nope' is not in the table") as exc:
        run_node(AutoML, {"train": split["train"]}, {**SETTINGS, "label": "nope"})
    assert exc.value.input_error
    one_class = split["train"].filter(pl.col("default") == 0)
    with pytest.raises(NodeFailed, match="single class"):
        run_node(AutoML, {"train": one_class}, SETTINGS)


def test_scoring_a_table_without_a_training_column_names_it(split, trained):
    with pytest.raises(NodeFailed, match="lacks columns the model was trained on: 'age'"):
        run_node(Predict, {"model": trained["model"], "table": split["test"].drop("age")})


def test_a_fitted_transform_travels_with_the_model(split, tmp_path):
    """WOE binning fitted on train feeds AutoML; Evaluate and Predict get the raw test part and prepare it with
    the training bins (never refitted on test data)."""
    from nodes.features.fitted import apply_transform
    from nodes.features.transforms.binning import Binning

    binned = run_node(Binning, {"table": split["train"]},
                      {"target": "default", "method": "optimal", "columns": ["debt_to_income", "credit_utilization",
                                                                             "num_delinquencies_2y"],
                       "output": "woe", "keep_original": False})
    model = run_node(AutoML, {"train": binned["table"], "transform": binned["transform"]},
                     {**SETTINGS, "time_limit_s": 60}, workdir=tmp_path / "ag")["model"]
    assert "debt_to_income_woe" in model.info["features"] and "debt_to_income" not in model.info["features"]
    assert model.info["transform"]["kind"] == "binning"
    raw_test = split["test"]
    scored = run_node(Predict, {"model": model, "table": raw_test})["table"]
    assert scored.columns == [*raw_test.columns, "prediction", "probability"]  # raw columns kept, nothing added
    by_hand = run_node(Predict, {"model": trained_without_transform(model), "table":
                                 apply_transform(binned["transform"], raw_test)})["table"]
    assert scored["probability"].to_list() == pytest.approx(by_hand["probability"].to_list())
    report = run_node(Evaluate, {"model": model, "table": raw_test})["report"]
    assert 0.5 < report.metrics["auc"] <= 1.0


def trained_without_transform(model):  # noqa: ANN001, ANN201 - the same fitted predictor, preparation stripped
    from engine.ports import ModelRef

    return ModelRef(model.flavor, model.path, {k: v for k, v in model.info.items() if k != "transform"})
