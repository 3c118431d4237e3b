"""Export ONNX of an AutoGluon model: its best exportable LightGBM member, scoring exactly like AutoGluon's own.

Real AutoGluon fits on the sample credit data, through the AutoML node where the node can express the setting;
the bagged case fits AutoGluon directly (the node has no bagging setting of its own).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest
from sklearn.metrics import r2_score, roc_auc_score

from engine.errors import NodeInputError
from engine.ports import ModelRef
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl.flavors import feature_kinds
from nodes.automl.train import AutoML
from nodes.export.autogluon_member import export_member
from nodes.export.onnx_convert import feeds, input_specs
from nodes.export.onnx_export import ExportONNX
from nodes.export.package import verify_package

pytestmark = pytest.mark.slow
LABEL = "default"
SETTINGS = {"label": LABEL, "problem_type": "binary", "eval_metric": "roc_auc", "time_limit_s": 60,
            "presets": "medium_quality", "included_model_types": ["GBM", "XT"], "feature_importance": False}


@pytest.fixture(scope="module")
def data():
    table = pl.read_csv(SAMPLE_DATA)
    return table.head(1400), table.tail(600)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """LightGBM members and extra trees (no ONNX form here) on the raw columns a scoring service holds. Some
    regions are missing: AutoGluon reads missing text as "", which becomes a category of its own."""
    train = data[0].drop("customer_id", "application_date")
    train = train.with_columns(pl.when(pl.int_range(pl.len()) % 20 == 0).then(None).otherwise(pl.col("region"))
                               .alias("region"))
    return run_node(AutoML, {"train": train}, SETTINGS, workdir=tmp_path_factory.mktemp("ag"))


@pytest.fixture(scope="module")
def exported(data, trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("packages")
    report = run_node(ExportONNX, {"model": trained["model"], "holdout": data[1]},
                      {"folder": str(folder), "package_name": "credit"},
                      workdir=tmp_path_factory.mktemp("work"))["report"]
    return folder / "credit", report


def _predictor(model: ModelRef):
    from autogluon.tabular import TabularPredictor

    return TabularPredictor.load(str(model.path), verbosity=0)


def _onnx_p1(package: Path, model: ModelRef, table: pl.DataFrame) -> np.ndarray:
    sess = ort.InferenceSession(str(package / "model.onnx"), providers=["CPUExecutionProvider"])
    return sess.run(["probability"], feeds(input_specs(model, table), table))[0].astype(np.float64)


def test_exports_the_best_lightgbm_member_and_says_so(data, trained, exported):
    package, report = exported
    predictor = _predictor(trained["model"])
    board = predictor.leaderboard(silent=True)
    lightgbm = [m for m in board["model"] if m.startswith("LightGBM")]
    manifest = verify_package(package)
    member = manifest["member"]
    assert member["exported"] == lightgbm[0] == report.metrics["exported_member"]
    assert member["ensemble_best"] == predictor.model_best == trained["model"].info["best_model"]
    assert member["ensemble_best"] != member["exported"]  # the weighted ensemble with extra trees ranks first
    assert manifest["model"]["best_model"] == member["exported"]
    assert member["eval_metric"] == "roc_auc" and member["holdout_metric"] == "auc"
    scores = dict(zip(board["model"], board["score_val"]))
    assert member["score_val_exported"] == pytest.approx(scores[member["exported"]])
    assert member["score_val_best"] == pytest.approx(scores[member["ensemble_best"]])
    # the holdout AUCs, from AutoGluon's own predictions
    holdout = data[1]
    frame = holdout.drop(LABEL).to_pandas()
    y = holdout[LABEL].to_numpy()
    auc_member = roc_auc_score(y, predictor.predict_proba(frame, model=member["exported"])[1])
    auc_best = roc_auc_score(y, predictor.predict_proba(frame)[1])
    assert member["holdout_exported"] == pytest.approx(auc_member, abs=1e-9)
    assert member["holdout_best"] == pytest.approx(auc_best, abs=1e-9)
    assert member["difference"] == pytest.approx(auc_member - auc_best, abs=1e-9)
    assert report.metrics["member_score_difference"] == member["difference"]
    # every member ranked above it is listed with its reason
    above = list(board["model"][:list(board["model"]).index(member["exported"])])
    assert [s["member"] for s in member["skipped"]] == above
    assert all("not a LightGBM model" in s["reason"] for s in member["skipped"])
    note = report.notes[0]
    assert note.startswith(f"Exported AutoGluon member {member['exported']}, not the ensemble "
                           f"{member['ensemble_best']}: on the holdout rows its AUC is {auc_member:.3f} against the "
                           f"ensemble's {auc_best:.3f}")
    card = (package / "model_card.html").read_text("utf-8")
    assert f"Exported AutoGluon member {member['exported']}" in card and "AutoGluon member" in card
    assert report.metrics["max_abs_diff"] < 1e-5 and member["adapter_check"]["max_diff"] <= 1e-6
    # the two-valued gender column arrives raw and is made 0/1 inside the graph
    assert "gender" in [i["name"] for i in manifest["inputs"]]


def test_onnx_scores_equal_autogluons_member(data, trained, exported, tmp_path):
    package, _ = exported
    holdout = data[1]
    chosen = export_member(trained["model"], holdout, tmp_path)
    ours = _onnx_p1(package, chosen.model, holdout)
    theirs = _predictor(trained["model"]).predict_proba(holdout.to_pandas(), model=chosen.member)[1].to_numpy()
    assert np.abs(ours - theirs).max() < 1e-5


def test_unseen_categories_and_missing_values_score_like_autogluon(data, trained, exported, tmp_path):
    """AutoGluon's own rules: an unseen or missing category is missing, an unseen value of a two-valued column
    is its 'false' value, a missing integer is 0; the package must agree row by row."""
    package, _ = exported
    rows = data[1].head(12)
    odd = rows.with_columns(
        pl.Series("region", ["Atlantis", None, "East"] * 4),
        pl.Series("gender", ["Other", None, "Male"] * 4),
        pl.Series("education", [None, "Doctorate", "Bachelor"] * 4),
        pl.Series("age", [None, 40, None] * 4, dtype=pl.Int64),
        pl.Series("annual_income", [None, 1e9, 5e4] * 4))
    chosen = export_member(trained["model"], data[1], tmp_path)
    assert "" in chosen.model.info["categories"]["region"]
    steps = {s["kind"]: s["params"] for s in chosen.model.info["transform"]["params"]["steps"]}
    assert steps["impute"]["categorical"] == {"region": ""} and steps["impute"]["numeric"]["age"] == 0.0
    assert steps["encode_onehot"]["entries"][0]["column"] == "gender"
    ours = _onnx_p1(package, chosen.model, odd)
    theirs = _predictor(trained["model"]).predict_proba(odd.to_pandas(), model=chosen.member)[1].to_numpy()
    assert np.abs(ours - theirs).max() < 1e-5
    assert len(set(np.round(ours, 6))) > 1  # the rows did not all collapse to one score


def test_no_exportable_member_lists_every_member_and_why(data, tmp_path):
    """With the application date in the data every LightGBM member reads AutoGluon's date parts, and extra trees
    and the ensemble are no LightGBM models at all."""
    trained = run_node(AutoML, {"train": data[0].drop("customer_id")}, SETTINGS, workdir=tmp_path / "ag")
    names = list(_predictor(trained["model"]).leaderboard(silent=True)["model"])
    with pytest.raises(NodeFailed, match="No member of this AutoGluon model can be exported") as exc:
        run_node(ExportONNX, {"model": trained["model"], "holdout": data[1]},
                 {"folder": str(tmp_path / "out"), "package_name": "x"}, workdir=tmp_path / "w")
    assert exc.value.input_error
    message = str(exc.value)
    for name in names:
        assert f"{name}: " in message
    assert "DatetimeFeatureGenerator from 'application_date'" in message
    assert "not a LightGBM model (" in message
    assert not (tmp_path / "out" / "x").exists()


def test_bagged_members_export_only_their_single_refit_model(data, tmp_path):
    """The good/high quality presets bag: a bag of fold models averages probabilities and cannot be one booster,
    but its refit on all rows (`_FULL`) is a single LightGBM model and is exported, exactly."""
    from autogluon.tabular import TabularPredictor

    train = data[0].drop("customer_id", "application_date")
    path = tmp_path / "ag"
    predictor = TabularPredictor(label=LABEL, problem_type="binary", eval_metric="roc_auc", path=str(path),
                                 verbosity=0, learner_kwargs={"random_state": 1})
    predictor.fit(train.to_pandas(), hyperparameters={"GBM": {"num_boost_round": 40}}, num_bag_folds=2,
                  num_stack_levels=0, time_limit=60)
    info = {"label": LABEL, "problem_type": "binary", "eval_metric": "roc_auc", "best_model": predictor.model_best,
            "features": [c for c in train.columns if c != LABEL], "feature_kinds": feature_kinds(train.drop(LABEL)),
            "classes": ["0", "1"], "class_values": [0, 1], "positive_class": "1", "train_rows": train.height}
    model = ModelRef("autogluon", path, info)
    with pytest.raises(NodeInputError, match=r"LightGBM_BAG_L1: a bag of 2 LightGBM fold models whose "
                                             r"probabilities AutoGluon averages"):
        export_member(model, data[1], tmp_path / "w")
    predictor.refit_full()
    chosen = export_member(model, data[1], tmp_path / "w")
    assert chosen.member == "LightGBM_BAG_L1_FULL"  # ranked with its bag's score, ahead of the bag
    report = run_node(ExportONNX, {"model": model, "holdout": data[1]},
                      {"folder": str(tmp_path / "out"), "package_name": "bag"}, workdir=tmp_path / "w2")["report"]
    assert report.metrics["exported_member"] == "LightGBM_BAG_L1_FULL"
    ours = _onnx_p1(tmp_path / "out" / "bag", chosen.model, data[1])
    theirs = predictor.predict_proba(data[1].to_pandas(), model=chosen.member)[1].to_numpy()
    assert np.abs(ours - theirs).max() < 1e-5
    member = json.loads((tmp_path / "out" / "bag" / "manifest.json").read_text())["member"]
    assert member["score_val_exported"] == pytest.approx(
        float(predictor.leaderboard(silent=True).set_index("model").loc["LightGBM_BAG_L1", "score_val"]))


@pytest.mark.parametrize("label", ["marital_status", "debt_to_income"])
def test_multiclass_and_regression_members(data, label, tmp_path):
    train, holdout = (t.drop("customer_id", "application_date", LABEL) for t in data)
    settings = {**SETTINGS, "label": label, "problem_type": "auto", "eval_metric": "auto",
                "included_model_types": ["GBM"]}
    model = run_node(AutoML, {"train": train}, settings, workdir=tmp_path / "ag")["model"]
    report = run_node(ExportONNX, {"model": model, "holdout": holdout},
                      {"folder": str(tmp_path / "out"), "package_name": "m"}, workdir=tmp_path / "w")["report"]
    assert report.metrics["max_abs_diff"] < 1e-5
    member = verify_package(tmp_path / "out" / "m")["member"]
    predictor = _predictor(model)
    frame = holdout.drop(label).to_pandas()
    sess = ort.InferenceSession(str(tmp_path / "out" / "m" / "model.onnx"), providers=["CPUExecutionProvider"])
    chosen = export_member(model, holdout, tmp_path / "again")
    x = feeds(input_specs(chosen.model, holdout), holdout)
    if label == "debt_to_income":
        assert member["holdout_metric"] == "r2"
        (ours,) = sess.run(["prediction"], x)
        theirs = predictor.predict(frame, model=member["exported"]).to_numpy()
        assert np.abs(ours - theirs).max() < 1e-5
        assert member["holdout_exported"] == pytest.approx(float(r2_score(holdout[label].to_numpy(), theirs)))
    else:
        assert member["holdout_metric"] == "accuracy"
        labels, proba = sess.run(["label", "probabilities"], x)
        theirs = predictor.predict_proba(frame, model=member["exported"])
        np.testing.assert_allclose(proba, theirs[chosen.model.info["class_values"]].to_numpy(), atol=1e-5)
        assert (labels == predictor.predict(frame, model=member["exported"]).to_numpy()).mean() > 0.99
        assert member["holdout_exported"] == pytest.approx(
            float((predictor.predict(frame, model=member["exported"]) == holdout[label].to_pandas()).mean()))
