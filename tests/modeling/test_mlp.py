"""The MLP node and the `mlp` flavor on the bundled sample data: learning, determinism, pickle-free storage, and
scoring tables that differ from the training table (unseen categories, missing values, missing columns)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl import mlp_flavor
from nodes.automl.flavors import score
from nodes.automl.mlp import MLP
from nodes.automl.predict import Predict
from nodes.automl.train import cuda_available
from nodes.evaluate.evaluate import Evaluate
from nodes.features.split import Split
from nodes.io.csv_reader import ReadCSV

SETTINGS = {"label": "default", "epochs": 20, "hidden_layers": "32,16", "batch_size": 128}


@pytest.fixture(scope="module")
def raw():
    return run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"]


@pytest.fixture(scope="module")
def parts(raw):
    """train / valid / test, without the date column (the MLP takes numbers, text and booleans)."""
    table = raw.drop("application_date")
    first = run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})
    second = run_node(Split, {"table": first["train"]}, {"test_fraction": 0.25, "stratify_by": "default"})
    return {"train": second["train"], "valid": second["test"], "test": first["test"]}


@pytest.fixture(scope="module")
def trained(parts, tmp_path_factory):
    return run_node(MLP, {"train": parts["train"], "valid": parts["valid"]}, SETTINGS,
                    workdir=tmp_path_factory.mktemp("mlp"))


def weights(model) -> dict[str, np.ndarray]:
    return mlp_flavor.load_weights(model.path)


def test_learns_the_sample_data(parts, trained):
    model = trained["model"]
    scores = score(model, parts["test"])
    auc = roc_auc_score(parts["test"]["default"].to_numpy(), scores.proba["1"].to_numpy())
    assert auc > 0.68
    assert model.info["metrics"]["auc"] > 0.6  # validation AUC, measured by the node
    report = run_node(Evaluate, {"model": model, "table": parts["test"]})["report"]
    assert report.metrics["auc"] == pytest.approx(auc, abs=1e-9)


def test_model_info_follows_the_contract(parts, trained):
    info = trained["model"].info
    assert trained["model"].flavor == "mlp"
    assert info["problem_type"] == "binary" and info["classes"] == ["0", "1"] and info["class_values"] == [0, 1]
    assert info["positive_class"] == "1" and info["label"] == "default"
    assert info["train_rows"] == parts["train"].height
    assert "default" not in info["features"] and "age" in info["features"]
    assert "customer_id" not in info["features"]  # an identifier: no category has enough rows to learn from
    assert info["feature_kinds"]["gender"] == "text" and info["feature_kinds"]["age"] == "numeric"
    json.dumps(info)  # plain JSON


def test_report_has_the_loss_curve_and_history(trained):
    report = trained["report"]
    history = report.tables["Training history"]
    assert history.height == trained["model"].info["epochs_run"] <= SETTINGS["epochs"]
    assert history["valid_loss"].null_count() == 0
    assert report.metrics["valid_loss"] == pytest.approx(history["valid_loss"].min())
    assert "Loss curve" in report.figures and report.figures["Loss curve"][:4] == b"\x89PNG"


def test_predict_appends_labels_of_the_labels_type(parts, trained):
    out = run_node(Predict, {"model": trained["model"], "table": parts["test"]})["table"]
    assert out["probability"].is_between(0, 1).all()
    assert out["prediction"].dtype == pl.Int64 and set(out["prediction"].unique()) <= {0, 1}


def test_same_seed_gives_identical_weights_and_another_seed_does_not(parts, tmp_path):
    quick = {**SETTINGS, "epochs": 3, "dropout": 0.2}
    a = run_node(MLP, {"train": parts["train"]}, {**quick, "seed": 7}, workdir=tmp_path / "a")["model"]
    b = run_node(MLP, {"train": parts["train"]}, {**quick, "seed": 7}, workdir=tmp_path / "b")["model"]
    c = run_node(MLP, {"train": parts["train"]}, {**quick, "seed": 8}, workdir=tmp_path / "c")["model"]
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not all(np.array_equal(wa[k], wc[k]) for k in wa)
    assert (a.path / "model.json").read_bytes() == (b.path / "model.json").read_bytes()


def test_progress_reports_each_epoch_and_its_loss(parts, tmp_path):
    from engine.executors.base import run_inline

    events: list[tuple[str, object]] = []
    outcome = run_inline(MLP, {"train": parts["train"], "valid": parts["valid"]}, {**SETTINGS, "epochs": 3},
                         workdir=tmp_path, emit=lambda kind, payload: events.append((kind, payload)))
    assert outcome.error is None
    messages = [payload[1] for kind, payload in events if kind == "progress"]
    assert [msg.split(",")[0] for msg in messages if msg.startswith("epoch")] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("validation loss" in msg for msg in messages if msg.startswith("epoch"))


def test_training_leaves_torch_global_state_alone(parts, tmp_path):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_node(MLP, {"train": parts["train"]}, {**SETTINGS, "epochs": 1}, workdir=tmp_path)
    assert torch.equal(torch.rand(3), expected)
    assert not torch.are_deterministic_algorithms_enabled()


def test_storage_is_json_and_npz_without_pickle(trained):
    folder = trained["model"].path
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.npz"]
    doc = json.loads((folder / "model.json").read_text("utf-8"))
    assert doc["architecture"]["hidden"] == [32, 16] and doc["format"] == mlp_flavor.FORMAT
    with np.load(folder / "weights.npz", allow_pickle=False) as npz:  # raises on any pickled (object) array
        arrays = {k: npz[k] for k in npz.files}
    assert arrays and all(a.dtype == np.float32 for a in arrays.values())
    with zipfile.ZipFile(folder / "weights.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    # the flavor rebuilds the network from the JSON alone: the first layer takes every encoded input
    assert arrays["0.weight"].shape == (32, len(doc["inputs"]))


def test_weights_that_do_not_match_the_architecture_are_refused(trained, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained["model"].path, folder)
    doc = json.loads((folder / "model.json").read_text("utf-8"))
    doc["architecture"]["hidden"] = [8]
    (folder / "model.json").write_text(json.dumps(doc), "utf-8")
    bad = type(trained["model"])("mlp", folder, trained["model"].info)
    with pytest.raises(NodeFailed, match="do not match the network"):
        run_node(Predict, {"model": bad, "table": trained_rows(trained)})


def trained_rows(trained) -> pl.DataFrame:
    info = trained["model"].info
    return pl.DataFrame({c: [None] * 3 for c in info["features"]},
                        schema={c: pl.String if k == "text" else pl.Float64 for c, k in info["feature_kinds"].items()})


def test_unseen_categories_score_like_missing_ones(parts, trained):
    model = trained["model"]
    rows = parts["test"].head(20)
    unseen = rows.with_columns(pl.lit("Atlantis").alias("region"))
    missing = rows.with_columns(pl.lit(None, dtype=pl.String).alias("region"))
    a, b = score(model, unseen), score(model, missing)
    assert np.isfinite(a.proba["1"].to_numpy()).all()
    np.testing.assert_array_equal(a.proba["1"].to_numpy(), b.proba["1"].to_numpy())
    doc = mlp_flavor.read_doc(model.path)
    x = mlp_flavor.encode(doc["encoding"], unseen.select(model.info["features"]))
    region = [i for i, name in enumerate(doc["inputs"]) if name.startswith("region=")]
    assert region and not x[:, region].any()  # no region input is on


def test_missing_numbers_become_the_mean_with_an_indicator(parts, trained):
    model = trained["model"]
    doc = mlp_flavor.read_doc(model.path)
    assert parts["train"]["months_since_last_delinquency"].null_count() > 0
    col = doc["inputs"].index("months_since_last_delinquency")
    assert doc["inputs"][col + 1] == "months_since_last_delinquency missing"
    rows = parts["test"].head(4).with_columns(
        pl.Series("months_since_last_delinquency", [None, 5, None, 12], dtype=pl.Int64))
    x = mlp_flavor.encode(doc["encoding"], rows.select(model.info["features"]))
    assert x[:, col].tolist()[0] == 0.0 and x[:, col].tolist()[2] == 0.0 and x[1, col] != 0.0
    assert x[:, col + 1].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert np.isfinite(score(model, rows).proba["1"].to_numpy()).all()


def test_scoring_without_a_training_column_names_it(parts, trained):
    with pytest.raises(NodeFailed, match="lacks columns the model was trained on: 'age'"):
        run_node(Predict, {"model": trained["model"], "table": parts["test"].drop("age")})


def test_dates_identifiers_and_excluded_columns_are_left_out_with_the_reason(raw):
    out = run_node(MLP, {"train": raw.head(200)}, {**SETTINGS, "epochs": 1, "exclude": ["gender"]})
    left = out["model"].info["left_out"]
    assert "Date parts" in left["application_date"] and "identifier-like" in left["customer_id"]
    assert "gender" in left and not set(left) & set(out["model"].info["features"])
    with pytest.raises(NodeFailed, match="Leave out columns: column 'nope' is not in the table") as exc:
        run_node(MLP, {"train": raw.head(200)}, {**SETTINGS, "epochs": 1, "exclude": ["nope"]})
    assert exc.value.input_error


def test_validation_label_with_unseen_classes_is_named(parts):
    valid = parts["valid"].with_columns(pl.lit(7, dtype=pl.Int64).alias("default"))
    with pytest.raises(NodeFailed, match="Validation table: label 'default' has classes the training data lacks: 7"):
        run_node(MLP, {"train": parts["train"], "valid": valid}, {**SETTINGS, "epochs": 1})


def test_validation_table_missing_a_feature_is_named(parts):
    with pytest.raises(NodeFailed, match="Validation table: .*'age'"):
        run_node(MLP, {"train": parts["train"], "valid": parts["valid"].drop("age")}, {**SETTINGS, "epochs": 1})


@pytest.mark.skipif(cuda_available(), reason="this worker has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error(parts):
    with pytest.raises(NodeFailed, match="no CUDA GPU") as exc:
        run_node(MLP, {"train": parts["train"]}, {**SETTINGS, "device": "cuda"})
    assert exc.value.input_error


def test_hidden_layers_setting_is_validated(parts):
    with pytest.raises(NodeFailed, match="128,64"):
        run_node(MLP, {"train": parts["train"]}, {**SETTINGS, "hidden_layers": "128;x"})


def test_multiclass_text_label(parts, tmp_path):
    train = parts["train"].drop("default")
    out = run_node(MLP, {"train": train}, {"label": "region", "epochs": 2, "hidden_layers": ""}, workdir=tmp_path)
    model = out["model"]
    assert model.info["problem_type"] == "multiclass" and model.info["best_model"] == "MLP linear"
    scores = score(model, parts["test"])
    assert scores.proba.columns == model.info["classes"]
    np.testing.assert_allclose(scores.proba.to_numpy().sum(axis=1), 1.0, rtol=1e-9)
    assert set(scores.prediction.tolist()) <= set(model.info["class_values"])


def test_regression_learns_a_linear_target(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 3))
    table = pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                          "y": 1000.0 + 50.0 * x[:, 0] - 20.0 * x[:, 1] + rng.normal(scale=1.0, size=800)})
    settings = {"label": "y", "epochs": 40, "hidden_layers": "16", "batch_size": 64, "learning_rate": 0.01,
                "dropout": 0.0}
    model = run_node(MLP, {"train": table}, settings, workdir=tmp_path)["model"]
    assert model.info["problem_type"] == "regression" and model.info["classes"] == []
    pred = score(model, table).prediction
    r2 = 1 - np.sum((pred - table["y"].to_numpy()) ** 2) / np.sum((table["y"] - table["y"].mean()).to_numpy() ** 2)
    assert r2 > 0.95


def test_boolean_label_and_an_empty_table(parts, tmp_path):
    train = parts["train"].with_columns(pl.col("default").cast(pl.Boolean))
    model = run_node(MLP, {"train": train, "valid": train.tail(100)}, {**SETTINGS, "epochs": 2},
                     workdir=tmp_path)["model"]
    assert model.info["class_values"] == [False, True] and model.info["positive_class"] == "True"
    out = run_node(Predict, {"model": model, "table": parts["test"]})["table"]
    assert out["prediction"].dtype == pl.Boolean
    empty = run_node(Predict, {"model": model, "table": parts["test"].head(0)})["table"]
    assert empty.height == 0 and "probability" in empty.columns


def test_a_fitted_transform_travels_with_the_model(parts, tmp_path):
    """Min-max scaling fitted on train feeds the MLP; Predict gets the raw test rows and prepares them itself."""
    from nodes.features.fitted import apply_transform
    from nodes.features.transforms.scale import Scale

    scaled = run_node(Scale, {"table": parts["train"]}, {"columns": ["annual_income", "loan_amount"],
                                                         "method": "minmax"})
    model = run_node(MLP, {"train": scaled["table"], "transform": scaled["transform"]}, {**SETTINGS, "epochs": 2},
                     workdir=tmp_path)["model"]
    assert model.info["transform"]["kind"] == scaled["transform"].kind
    raw = run_node(Predict, {"model": model, "table": parts["test"]})["table"]
    stripped = type(model)("mlp", model.path, {k: v for k, v in model.info.items() if k != "transform"})
    by_hand = score(stripped, apply_transform(scaled["transform"], parts["test"]))
    np.testing.assert_array_equal(raw["probability"].to_numpy(), by_hand.proba["1"].to_numpy())
    unprepared = score(stripped, parts["test"]).proba["1"].to_numpy()
    assert not np.array_equal(raw["probability"].to_numpy(), unprepared)  # the transform did change the inputs


def test_reason_codes_come_from_integrated_gradients_that_add_up_to_the_score(parts, trained):
    """Completeness: each row's contributions sum to its log-odds minus the average applicant's (the all-zero
    input), so the reasons explain the score; Predict ranks them like any other model's."""
    from nodes.automl.flavors import contributions, prepare

    model = trained["model"]
    rows = parts["test"].head(200)
    contrib = contributions(model, rows)
    assert contrib.columns == model.info["features"]
    doc = mlp_flavor.read_doc(model.path)
    net = mlp_flavor.load_network(model.path, doc)
    x = mlp_flavor.encode(doc["encoding"], prepare(model, rows))
    logit = mlp_flavor.raw_outputs(net, x)[:, 0]
    base = mlp_flavor.raw_outputs(net, np.zeros((1, x.shape[1]), dtype=np.float32))[0, 0]
    gap = contrib.to_numpy().sum(axis=1) - (logit - base)
    assert np.abs(gap).max() < 0.01 * max(1.0, np.abs(logit - base).max())
    out = run_node(Predict, {"model": model, "table": rows}, {"reason_codes": 2})["table"]
    top = contrib.to_numpy().argmax(axis=1)
    positive = contrib.to_numpy().max(axis=1) > 0
    expected = [model.info["features"][i] if ok else None for i, ok in zip(top, positive)]
    assert out["reason_1"].to_list() == expected
