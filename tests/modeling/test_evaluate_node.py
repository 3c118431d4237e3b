"""Evaluate end to end on the sample credit data with real AutoGluon models (small time budgets)."""
from __future__ import annotations

import base64
import re

import numpy as np
import polars as pl
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import mean_absolute_error, roc_auc_score

from engine.ports import ReportPort
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl.predict import Predict
from nodes.automl.train import AutoML
from nodes.evaluate import metrics as m
from nodes.evaluate.evaluate import Evaluate
from nodes.features.split import Split
from nodes.io.csv_reader import ReadCSV

pytestmark = pytest.mark.slow
FAST = {"presets": "medium_quality", "included_model_types": ["GBM"], "time_limit_s": 10}
QUICK = {"presets": "medium_quality", "included_model_types": ["XT"], "time_limit_s": 10}  # extra trees: seconds
FIGURES = {"ROC curve", "KS curve", "Gains and lift", "Calibration", "Score stability"}


@pytest.fixture(scope="module")
def split():
    table = run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"].drop("customer_id", "application_date")
    return run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})


@pytest.fixture(scope="module")
def binary(split, tmp_path_factory):
    return run_node(AutoML, {"train": split["train"]}, {"label": "default", "problem_type": "binary", **FAST},
                    workdir=tmp_path_factory.mktemp("binary"))["model"]


@pytest.fixture(scope="module")
def report(split, binary):
    return run_node(Evaluate, {"model": binary, "table": split["test"], "reference": split["train"]},
                    {"segment": "region", "calibration_bins": "quantile"})["report"]


@pytest.fixture(scope="module")
def probability(split, binary):
    """The positive-class probability as the Predict node gives it, an independent path to the same scores."""
    return run_node(Predict, {"model": binary, "table": split["test"]})["table"]["probability"].to_numpy()


def test_binary_report_holds_every_table_figure_and_metric(split, report, probability):
    y = split["test"]["default"].to_numpy()
    assert report.metrics["auc"] == pytest.approx(roc_auc_score(y, probability), abs=1e-12)
    assert set(report.figures) == FIGURES
    assert {"Confusion matrix", "Lift and gains by decile", "Calibration", "Population stability (PSI)",
            "Metrics by region"} == set(report.visible_tables())
    assert {"_roc_curve", "_ks_curve"} <= set(report.tables)  # for the Experiments view's overlays, not shown
    assert "_roc_curve" not in report.to_html()
    assert {"auc", "ks", "gini", "brier", "ece", "psi", "reference_rows"} <= set(report.metrics)
    assert report.metrics["reference_rows"] == split["train"].height


def test_lift_table_covers_every_row_in_descending_score_order(split, report, probability):
    lift = report.tables["Lift and gains by decile"]
    y = split["test"]["default"].to_numpy()
    assert int(lift["rows"].sum()) == len(y) and int(lift["events"].sum()) == int(y.sum())
    assert lift["gains"][-1] == pytest.approx(1.0) and lift["cumulative_lift"][-1] == pytest.approx(1.0)
    assert (lift["min_score"][:-1] > lift["max_score"][1:]).all()  # deciles never overlap
    top = lift.row(0, named=True)
    in_top = probability >= top["min_score"]
    assert int(in_top.sum()) == top["rows"] and int(y[in_top].sum()) == top["events"]
    assert top["lift"] > 1.5  # a working model concentrates defaults in the riskiest decile


def test_calibration_matches_sklearn_on_the_predicted_probabilities(split, report, probability):
    table = report.tables["Calibration"]
    prob_true, prob_pred = calibration_curve(split["test"]["default"].to_numpy(), probability, n_bins=10,
                                             strategy="quantile")
    assert table["observed_rate"].to_list() == pytest.approx(prob_true.tolist(), abs=1e-9)
    assert table["mean_predicted"].to_list() == pytest.approx(prob_pred.tolist(), abs=1e-9)


def test_psi_against_the_training_scores(split, binary, report, probability):
    train_prob = run_node(Predict, {"model": binary, "table": split["train"]})["table"]["probability"].to_numpy()
    assert report.metrics["psi"] == pytest.approx(m.psi(train_prob, probability), abs=1e-12)
    table = report.tables["Population stability (PSI)"]
    assert int(table["reference_rows"].sum()) == split["train"].height
    assert int(table["evaluation_rows"].sum()) == split["test"].height
    note = next(n for n in report.notes if n.startswith("Population stability index"))
    reading = "stable" if report.metrics["psi"] < 0.1 else "worth watching" if report.metrics["psi"] <= 0.25 else \
        "a material shift"
    assert f"{report.metrics['psi']:.3f}, {reading}" in note


def test_psi_of_the_table_against_itself_is_zero(split, binary):
    got = run_node(Evaluate, {"model": binary, "table": split["test"], "reference": split["test"]})["report"]
    assert got.metrics["psi"] == 0.0
    assert any("0.000, stable" in n for n in got.notes)


def test_fairness_slices_per_region_match_sklearn(split, report, probability):
    table = report.tables["Metrics by region"]
    region = split["test"]["region"].to_numpy()
    y = split["test"]["default"].to_numpy()
    assert table["segment"].to_list() == sorted(set(region.tolist()))
    assert int(table["rows"].sum()) == len(y)
    for row in table.iter_rows(named=True):
        mask = region == row["segment"]
        assert row["auc"] == pytest.approx(roc_auc_score(y[mask], probability[mask]), abs=1e-12)
        assert row["approval_rate"] == pytest.approx(float(np.mean(probability[mask] < 0.5)))
    assert any(n.startswith("Across 'region', the approval rate") for n in report.notes)


def test_missing_segment_values_form_their_own_group(split, binary):
    test = split["test"].with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("gender")).alias("gender"))
    table = run_node(Evaluate, {"model": binary, "table": test}, {"segment": "gender"})["report"].tables[
        "Metrics by gender"]
    assert table["segment"].to_list() == ["Female", "Male", "(missing)"]
    assert table.filter(pl.col("segment") == "(missing)")["rows"].item() == test["gender"].null_count()


def test_report_survives_storage_and_renders_self_contained_html(report, tmp_path):
    ReportPort.save(report, tmp_path)
    loaded = ReportPort.load(tmp_path)
    assert loaded.metrics == report.metrics and set(loaded.tables) == set(report.tables)
    page = loaded.to_html()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert "src='http" not in page and "<link" not in page


def test_bad_inputs_are_named(split, binary):
    with pytest.raises(NodeFailed, match="Segment column: column 'nope' is not in the table") as exc:
        run_node(Evaluate, {"model": binary, "table": split["test"]}, {"segment": "nope"})
    assert exc.value.input_error
    many = split["test"].with_row_index("row_id")
    with pytest.raises(NodeFailed, match=r"'row_id' has \d+ distinct values; fairness slices allow at most 50"):
        run_node(Evaluate, {"model": binary, "table": many}, {"segment": "row_id"})
    unseen = split["test"].with_columns(pl.when(pl.int_range(pl.len()) < 3).then(2).otherwise(pl.col("default"))
                                        .alias("default"))
    with pytest.raises(NodeFailed, match="'default' has values the model was not trained on: 2. The model's classes "
                                         "are: 0, 1"):
        run_node(Evaluate, {"model": binary, "table": unseen})
    with pytest.raises(NodeFailed, match="Reference table: The table lacks columns the model was trained on: 'age'"):
        run_node(Evaluate, {"model": binary, "table": split["test"], "reference": split["train"].drop("age")})
    with pytest.raises(NodeFailed, match="only one class in 'default'"):
        run_node(Evaluate, {"model": binary, "table": split["test"].filter(pl.col("default") == 0)})


def test_float_labels_still_match_integer_classes(split, binary, report):
    as_float = split["test"].with_columns(pl.col("default").cast(pl.Float64))
    got = run_node(Evaluate, {"model": binary, "table": as_float})["report"]
    assert got.metrics["auc"] == report.metrics["auc"]


def test_regression_with_slices_and_reference(split, tmp_path):
    model = run_node(AutoML, {"train": split["train"].drop("default")},
                     {"label": "loan_amount", "problem_type": "regression", **QUICK}, workdir=tmp_path)["model"]
    got = run_node(Evaluate, {"model": model, "table": split["test"], "reference": split["train"]},
                   {"segment": "gender"})["report"]
    predicted = run_node(Predict, {"model": model, "table": split["test"]})["table"]["prediction"].to_numpy()
    actual = split["test"]["loan_amount"].to_numpy()
    assert got.metrics["mae"] == pytest.approx(mean_absolute_error(actual, predicted))
    assert set(got.tables) == {"Metrics by gender", "Population stability (PSI)"}
    assert got.tables["Metrics by gender"]["segment"].to_list() == ["Female", "Male"]
    assert got.metrics["psi"] >= 0.0 and set(got.figures) == {"Score stability"}
    as_text = split["test"].with_columns(pl.col("loan_amount").cast(pl.String))
    with pytest.raises(NodeFailed, match="Label 'loan_amount' is String; a regression model needs a numeric label"):
        run_node(Evaluate, {"model": model, "table": as_text})


def test_multiclass_with_slices(split, tmp_path):
    model = run_node(AutoML, {"train": split["train"]},
                     {"label": "marital_status", "problem_type": "multiclass", **QUICK}, workdir=tmp_path)["model"]
    got = run_node(Evaluate, {"model": model, "table": split["test"], "reference": split["train"]},
                   {"segment": "gender"})["report"]
    predicted = run_node(Predict, {"model": model, "table": split["test"]})["table"]["prediction"].to_numpy()
    assert got.metrics["accuracy"] == pytest.approx(float(np.mean(predicted == split["test"]["marital_status"]
                                                                  .to_numpy())))
    assert int(got.tables["Confusion matrix"].select(pl.exclude("actual")).sum_horizontal().sum()) == \
        split["test"].height
    assert got.tables["Metrics by gender"]["rows"].sum() == split["test"].height
    assert any("not computed for multiclass" in n for n in got.notes)
