"""AutoML's additions around AutoGluon's fit: feature importance, GPU choice and record, class values, and the
message when the time budget is too small to train anything. (test_automl.py checks the fit itself is untouched.)"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.sdk import Context
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl.train import (
    AutoML,
    AutoMLSettings,
    cuda_available,
    feature_importance,
    fit_kwargs,
    gpu_request,
)
from nodes.features.split import Split
from nodes.io.csv_reader import ReadCSV

pytestmark = pytest.mark.slow
SETTINGS = {"label": "default", "problem_type": "binary", "eval_metric": "roc_auc", "time_limit_s": 60,
            "presets": "medium_quality", "included_model_types": ["GBM"]}
FI_COLUMNS = ["feature", "importance", "stddev", "p_value"]


@pytest.fixture(scope="module")
def parts():
    table = run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"]
    first = run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})
    return {"train": first["train"], "valid": first["test"]}


@pytest.fixture(scope="module")
def trained(parts, tmp_path_factory):
    return run_node(AutoML, {"train": parts["train"], "valid": parts["valid"]}, SETTINGS,
                    workdir=tmp_path_factory.mktemp("ag"))


def test_feature_importance_on_the_validation_table(trained):
    fi = trained["feature_importance"]
    features = trained["model"].info["features"]
    assert fi.columns == FI_COLUMNS and fi.schema["importance"] == pl.Float64
    assert fi.height >= 10 and set(fi["feature"]) <= set(features)  # original column names
    assert fi["feature"].n_unique() == fi.height
    assert fi["importance"].to_list() == sorted(fi["importance"].to_list(), reverse=True)
    assert fi["importance"][0] > 0 and fi["stddev"].is_not_null().all()
    assert fi["p_value"].drop_nulls().is_between(0, 1).all()
    # the credit risk drivers of the sample data come first, ahead of the applicant's region
    top = set(fi["feature"].head(5))
    assert top & {"debt_to_income", "credit_utilization", "num_delinquencies_2y", "monthly_debt"}
    ranks = {f: i for i, f in enumerate(fi["feature"])}
    assert "region" not in ranks or ranks["region"] > min(ranks.get(f, 99) for f in top)


def test_without_a_validation_table_importance_uses_autogluons_tuning_rows(trained, tmp_path):
    from autogluon.tabular import TabularPredictor

    predictor = TabularPredictor.load(str(trained["model"].path), verbosity=0)
    ctx = Context(node_id="n", title="AutoML", seed=42, workdir=tmp_path)
    fi = feature_importance(predictor, None, ctx)
    assert fi.columns == FI_COLUMNS and fi.height >= 10
    assert fi["importance"][0] > 0
    # AutoGluon's own feature names: the date column is split into parts
    assert any(f.startswith("application_date") for f in fi["feature"])


def test_model_info_has_class_values_and_gpu_record(trained):
    info = trained["model"].info
    assert info["classes"] == ["0", "1"] and info["class_values"] == [0, 1]
    assert all(type(v) is int for v in info["class_values"])  # plain JSON ints, not numpy scalars
    assert info["positive_class"] == "1"
    if not cuda_available():
        assert info["used_gpu"] is False and info["models_on_gpu"] == [] and info["num_gpus"] is None


def test_feature_importance_can_be_switched_off(parts, tmp_path):
    out = run_node(AutoML, {"train": parts["train"].head(400), "valid": parts["valid"]},
                   {**SETTINGS, "feature_importance": False, "time_limit_s": 20}, workdir=tmp_path)
    assert out["feature_importance"].columns == FI_COLUMNS and out["feature_importance"].height == 0


def test_no_model_for_another_reason_is_not_blamed_on_time(parts, tmp_path):
    """The medium_quality preset has no linear model, so asking for LR alone trains nothing, whatever the budget."""
    with pytest.raises(NodeFailed, match="AutoGluon trained no model .*the node's log says why") as exc:
        run_node(AutoML, {"train": parts["train"]}, {**SETTINGS, "included_model_types": ["LR"]}, workdir=tmp_path)
    assert exc.value.input_error and "time budget" not in str(exc.value)


def test_a_validation_table_without_a_training_column_is_named(parts):
    with pytest.raises(NodeFailed, match="validation table lacks training columns: 'age'"):
        run_node(AutoML, {"train": parts["train"], "valid": parts["valid"].drop("age")}, SETTINGS)


def test_gpu_choice_leaves_the_default_fit_alone():
    default = AutoMLSettings(label="default")
    assert gpu_request(AutoMLSettings(label="default", use_gpu="no")) == 0
    if not cuda_available():
        assert gpu_request(default) is None
        assert "num_gpus" not in fit_kwargs(default, gpu_request(default))
    else:
        assert fit_kwargs(default, gpu_request(default))["num_gpus"] == 1


@pytest.mark.skipif(cuda_available(), reason="this worker has a CUDA GPU")
def test_use_gpu_yes_without_cuda_is_a_clear_error(parts):
    with pytest.raises(NodeFailed, match="Use a GPU is set to yes but this worker has no CUDA GPU") as exc:
        run_node(AutoML, {"train": parts["train"]}, {**SETTINGS, "use_gpu": "yes"})
    assert exc.value.input_error


def test_a_budget_too_small_to_train_anything_says_so(tmp_path):
    """1.5 million rows in 5 s: AutoGluon's preprocessing and the network's own take longer than that on a
    laptop-class CPU, and were they quicker the network could not fit one epoch (3000 batches) in what is left;
    either way no model is trained, on any machine this suite runs on."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_500_000, 12)).astype(np.float32)
    table = pl.DataFrame({f"x{i}": x[:, i] for i in range(12)}).with_columns(y=pl.Series(x[:, 0] > 0))
    with pytest.raises(NodeFailed, match=r"time budget of 5 s was too small to train any model; try at least 60 s") \
            as exc:
        run_node(AutoML, {"train": table}, {"label": "y", "time_limit_s": 5, "included_model_types": ["NN_TORCH"],
                                            "feature_importance": False}, workdir=tmp_path)
    assert exc.value.input_error
