"""The LightGBM node and flavor on the sample data and on synthetic data with a known shape."""
from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from engine.executors.base import NodeTask, execute_task
from engine.ports import FittedTransform, ModelRef
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl import flavors, gbm_flavor
from nodes.automl.gbm import GBMSettings, LightGBM, lgb_params, threads
from nodes.automl.predict import Predict
from nodes.evaluate.evaluate import Evaluate
from nodes.features.split import Split
from nodes.io.csv_reader import ReadCSV

SETTINGS = {"label": "default", "n_estimators": 80, "learning_rate": 0.1, "early_stopping_rounds": 10}


@pytest.fixture(scope="module")
def split():
    table = run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"]
    table = table.drop("customer_id", "application_date")  # an identifier and a date are no features
    return run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})


@pytest.fixture(scope="module")
def trained(split, tmp_path_factory):
    return run_node(LightGBM, {"train": split["train"], "valid": split["test"]}, SETTINGS,
                    workdir=tmp_path_factory.mktemp("gbm"))


def test_model_follows_the_contract_and_the_report_matches_sklearn(split, trained):
    model = trained["model"]
    info = model.info
    assert model.flavor == "lightgbm" and (model.path / "model.txt").is_file()
    assert [p.name for p in model.path.iterdir()] == ["model.txt"]  # no temp file left behind
    assert info["problem_type"] == "binary" and info["classes"] == ["0", "1"] and info["class_values"] == [0, 1]
    assert info["positive_class"] == "1" and info["label"] == "default" and info["train_rows"] == 1400
    assert info["features"] == [c for c in split["train"].columns if c != "default"]
    assert info["categories"]["gender"] == sorted(split["train"]["gender"].unique().to_list())
    assert info["feature_kinds"]["gender"] == "text" and info["feature_kinds"]["age"] == "numeric"
    assert 1 <= info["trees"] < SETTINGS["n_estimators"]  # early stopping on the validation table kept fewer
    proba = flavors.score(model, split["test"]).proba["1"].to_numpy()
    auc = roc_auc_score(split["test"]["default"].to_numpy(), proba)
    report = trained["report"]
    assert report.metrics["auc"] == pytest.approx(auc, abs=1e-12) == info["metrics"]["auc"]
    assert 0.6 < auc < 0.95 and 0 < report.metrics["ks"] < 1
    assert report.metrics["trees"] == info["trees"] and set(report.figures) == {"Feature importance"}


def test_feature_importance_is_lightgbms_gain_sorted(trained):
    imp = trained["feature_importance"]
    assert imp.columns == ["feature", "gain", "split", "share_of_gain", "mean_abs_shap"]
    assert imp["gain"].to_list() == sorted(imp["gain"].to_list(), reverse=True)
    assert imp["share_of_gain"].sum() == pytest.approx(1.0)
    booster = lgb.Booster(model_file=str(trained["model"].path / "model.txt"))
    gains = dict(zip(trained["model"].info["features"], booster.feature_importance("gain")))
    assert all(gains[f] == pytest.approx(g) for f, g in imp.select("feature", "gain").iter_rows())


def test_global_shap_is_the_mean_absolute_contribution_on_the_validation_rows(split, trained):
    """The global explanation agrees with the per-row one (reason codes): same TreeSHAP, averaged."""
    model = trained["model"]
    contrib = flavors.contributions(model, split["test"])  # 600 validation rows: all of them are used
    expected = dict(zip(contrib.columns, np.abs(contrib.to_numpy()).mean(axis=0)))
    got = dict(trained["feature_importance"].select("feature", "mean_abs_shap").iter_rows())
    assert got == pytest.approx(expected, abs=1e-12)
    top = max(got, key=got.get)
    assert got[top] > 0 and any("mean_abs_shap" in note and "600" in note for note in trained["report"].notes)


def test_training_is_deterministic_and_the_seed_matters(split, tmp_path):
    bagged = {**SETTINGS, "subsample": 0.7, "colsample": 0.8, "seed": 7}
    texts = [(run_node(LightGBM, {"train": split["train"]}, s, workdir=tmp_path / str(i))["model"].path
              / "model.txt").read_text() for i, s in enumerate([bagged, bagged, {**bagged, "seed": 8}])]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_node_gives_lightgbms_own_result(split, trained):
    """Training directly with lgb_params on the flavor's encoding reproduces the node's model."""
    info = trained["model"].info
    settings = GBMSettings(**SETTINGS)
    params = lgb_params(settings, "binary", 2, [0] * len(info["features"]), 42, threads())
    assert params == info["params"]
    features = split["train"].drop("default")
    x, xv = gbm_flavor.encode(trained["model"], features), gbm_flavor.encode(trained["model"], split["test"])
    cats = [i for i, c in enumerate(info["features"]) if c in info["categories"]]
    train_set = lgb.Dataset(x, split["train"]["default"].to_numpy(), categorical_feature=cats)
    direct = lgb.train(params, train_set, SETTINGS["n_estimators"],
                       valid_sets=[lgb.Dataset(xv, split["test"]["default"].to_numpy(), reference=train_set)],
                       callbacks=[lgb.early_stopping(10, first_metric_only=True, verbose=False)])
    assert direct.best_iteration == info["trees"]
    ours = flavors.score(trained["model"], split["test"]).proba["1"].to_numpy()
    np.testing.assert_array_equal(ours, direct.predict(xv, num_iteration=direct.best_iteration))


def _synthetic(n: int = 3000, seed: int = 0) -> pl.DataFrame:
    """Risk rises with x1 except for a dip in the middle, falls with x2; x3 is noise."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.uniform(0, 10, n), rng.uniform(0, 10, n), rng.normal(size=n)
    logit = 0.6 * x1 - 3.0 * np.exp(-((x1 - 5) ** 2)) - 0.4 * x2 + 0.2 * x3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(logit - 1)))).astype(np.int64)
    return pl.DataFrame({"x1": x1, "x2": x2, "x3": x3, "y": y})


def _sweeps(model, data: pl.DataFrame, column: str) -> np.ndarray:
    """Probability along a grid of `column`, the other features fixed at those of 20 rows: (20, grid) array."""
    grid = np.linspace(-1, 11, 241)
    base = data.head(20).drop("y")
    rows = pl.concat([base.with_columns(pl.lit(v).alias(column)) for v in grid])
    proba = flavors.score(model, rows).proba["1"].to_numpy()
    return proba.reshape(len(grid), base.height).T


def test_monotone_constraints_hold_over_a_grid(tmp_path):
    data = _synthetic()
    settings = {"label": "y", "n_estimators": 150, "learning_rate": 0.1, "min_child_samples": 5}
    free = run_node(LightGBM, {"train": data}, settings, workdir=tmp_path / "free")["model"]
    tied = run_node(LightGBM, {"train": data}, {**settings, "monotone_constraints": {"x1": 1, "x2": -1}},
                    workdir=tmp_path / "tied")["model"]
    assert (np.diff(_sweeps(free, data, "x1"), axis=1) < -1e-6).any()  # the dip: unconstrained, it is learnt
    assert (np.diff(_sweeps(tied, data, "x1"), axis=1) >= 0).all()
    assert (np.diff(_sweeps(tied, data, "x2"), axis=1) <= 0).all()
    assert tied.info["monotone_constraints"] == {"x1": 1, "x2": -1}


def test_monotone_constraint_errors_are_specific(split):
    with pytest.raises(NodeFailed, match="not features: 'nope'"):
        run_node(LightGBM, {"train": split["train"]}, {**SETTINGS, "monotone_constraints": {"nope": 1}})
    with pytest.raises(NodeFailed, match="'region' hold text"):  # LightGBM itself would abort the process
        run_node(LightGBM, {"train": split["train"]}, {**SETTINGS, "monotone_constraints": {"region": 1}})
    with pytest.raises(NodeFailed, match="not multiclass"):
        run_node(LightGBM, {"train": split["train"]},
                 {**SETTINGS, "label": "region", "monotone_constraints": {"age": 1}})


def test_unseen_categories_score_as_missing_with_a_count(split, trained, caplog):
    test = split["test"].head(50)
    renamed = test.with_columns(pl.when(pl.int_range(pl.len()) < 7).then(pl.lit("Mars")).otherwise(pl.col("region"))
                                .alias("region"))
    nulled = test.with_columns(pl.when(pl.int_range(pl.len()) < 7).then(None).otherwise(pl.col("region"))
                               .alias("region"))
    with caplog.at_level(logging.WARNING, logger="ledgerflow.model"):
        unseen = flavors.score(trained["model"], renamed).proba["1"].to_numpy()
    assert "'region': 7 value(s) not seen in training" in caplog.text
    np.testing.assert_array_equal(unseen, flavors.score(trained["model"], nulled).proba["1"].to_numpy())
    assert not np.array_equal(unseen, flavors.score(trained["model"], test).proba["1"].to_numpy())
    logs: list[str] = []
    outcome = execute_task(NodeTask(Predict, {}, {"model": trained["model"], "table": renamed}, "p", "Predict", 1,
                                    None), lambda kind, payload: logs.append(payload[1]) if kind == "log" else None,
                           lambda: False)
    assert outcome.error is None and any("7 value(s) not seen" in line for line in logs)  # in Predict's own log
    assert sum("not seen" in line for line in logs) == 1  # prepared once: one warning, not one per output


def test_two_predict_nodes_in_one_process_keep_their_own_warnings(split, trained):
    """Dask and in-process workers run several nodes at once in one process: each Predict logs its own table's
    unseen categories, never the other's."""
    import threading

    test = split["test"].head(50)
    tables = {n: test.with_columns(pl.when(pl.int_range(pl.len()) < n).then(pl.lit("Mars"))
                                   .otherwise(pl.col("region")).alias("region")) for n in (3, 9)}
    logs: dict[int, list[str]] = {3: [], 9: []}
    start = threading.Barrier(2)

    def predict(n: int) -> None:
        start.wait()
        for _ in range(5):
            execute_task(NodeTask(Predict, {}, {"model": trained["model"], "table": tables[n]}, f"p{n}", "Predict",
                                  1, None), lambda kind, payload: logs[n].append(payload[1]) if kind == "log" else None,
                         lambda: False)

    threads = [threading.Thread(target=predict, args=(n,)) for n in (3, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, other in ((3, 9), (9, 3)):
        assert sum(f"{n} value(s) not seen" in line for line in logs[n]) == 5
        assert not any(f"{other} value(s) not seen" in line for line in logs[n])


def test_scoring_checks_columns_and_types(split, trained):
    with pytest.raises(NodeFailed, match="lacks columns the model was trained on: 'age', 'region'"):
        run_node(Predict, {"model": trained["model"], "table": split["test"].drop("age", "region")})
    wrong = split["test"].with_columns(pl.col("age").cast(pl.String), pl.col("region").is_null())
    with pytest.raises(NodeFailed, match=r"'age' \(expected numeric, got text\)"):
        run_node(Predict, {"model": trained["model"], "table": wrong})


def test_label_and_feature_errors_are_specific(split):
    with pytest.raises(NodeFailed, match="column 'nope' is not in the table"):
        run_node(LightGBM, {"train": split["train"]}, {**SETTINGS, "label": "nope"})
    with pytest.raises(NodeFailed, match="single class"):
        run_node(LightGBM, {"train": split["train"].filter(pl.col("default") == 0)}, SETTINGS)
    with pytest.raises(NodeFailed, match="Leave out columns: column 'nope' is not in the table") as exc:
        run_node(LightGBM, {"train": split["train"]}, {**SETTINGS, "exclude": ["nope"]})
    assert exc.value.input_error
    with pytest.raises(NodeFailed, match="No feature columns are left"):
        run_node(LightGBM, {"train": split["train"].select("age", "default")}, {**SETTINGS, "exclude": ["age"]})
    valid = split["test"].with_columns(pl.when(pl.int_range(pl.len()) < 3).then(2).otherwise(pl.col("default"))
                                       .alias("default"))
    with pytest.raises(NodeFailed, match="Validation table: label 'default' has classes the training data lacks: 2"):
        run_node(LightGBM, {"train": split["train"], "valid": valid}, SETTINGS)
    with pytest.raises(NodeFailed, match="Validation table: The table lacks columns .*'age'"):
        run_node(LightGBM, {"train": split["train"], "valid": split["test"].drop("age")}, SETTINGS)


def test_multiclass_and_regression(split, tmp_path):
    small = {"n_estimators": 20, "learning_rate": 0.2}
    multi = run_node(LightGBM, {"train": split["train"]}, {**small, "label": "education"}, workdir=tmp_path / "m")
    model = multi["model"]
    assert model.info["problem_type"] == "multiclass" and model.info["classes"] == model.info["class_values"]
    scores = flavors.score(model, split["test"])
    assert scores.proba.columns == model.info["classes"]
    np.testing.assert_allclose(scores.proba.sum_horizontal().to_numpy(), 1.0)
    assert set(scores.prediction.tolist()) <= set(model.info["classes"])
    reg = run_node(LightGBM, {"train": split["train"], "valid": split["test"]},
                   {**small, "label": "monthly_debt"}, workdir=tmp_path / "r")
    assert reg["model"].info["problem_type"] == "regression" and reg["model"].info["classes"] == []
    assert reg["report"].metrics["r2"] > 0.5
    out = run_node(Evaluate, {"model": reg["model"], "table": split["test"]})["report"]
    assert out.metrics["rmse"] == pytest.approx(reg["report"].metrics["rmse"])


def test_transform_travels_with_the_model(split, tmp_path):
    transform = FittedTransform("impute", {"numeric": {"age": 40.0}, "categorical": {}, "indicators": [],
                                           "outputs": ["age"]}, ("age",))
    out = run_node(LightGBM, {"train": split["train"], "transform": transform}, {**SETTINGS, "n_estimators": 5},
                   workdir=tmp_path)
    assert out["model"].info["transform"] == {"kind": "impute", "params": transform.params, "columns": ["age"]}
    with_gap = split["test"].with_columns(pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("age"))
                                          .alias("age"))
    filled = with_gap.with_columns(pl.col("age").fill_null(40))
    scored = flavors.score(out["model"], with_gap).proba["1"].to_numpy()
    np.testing.assert_array_equal(scored, flavors.score(out["model"], filled).proba["1"].to_numpy())


def test_progress_is_reported_and_cancel_stops_training(split, tmp_path):
    events: list[tuple[float, str]] = []
    task = NodeTask(LightGBM, {**SETTINGS, "n_estimators": 40}, {"train": split["train"]}, "g", "LightGBM", 1, None,
                    workdir=str(tmp_path / "a"))
    outcome = execute_task(task, lambda kind, p: events.append(p) if kind == "progress" else None, lambda: False)
    assert outcome.error is None
    assert ("tree 40 of 40" in [msg for _, msg in events]) and events[-1][0] == 1.0
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions)
    calls = []
    task.workdir = str(tmp_path / "b")
    outcome = execute_task(task, lambda kind, p: calls.append(p) if kind == "progress" else None,
                           lambda: len(calls) >= 3)
    assert outcome.cancelled and len(calls) == 3


def test_booster_cache_reuses_a_loaded_model_until_the_file_changes(trained, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(trained["model"].path, folder)
    model = ModelRef("lightgbm", folder, trained["model"].info)
    first = gbm_flavor.booster(model)
    assert gbm_flavor.booster(model) is first
    text = (folder / "model.txt").read_text()
    (folder / "model.txt").write_text(text + "\n")
    assert gbm_flavor.booster(model) is not first


def test_boolean_label_and_features_and_an_empty_table(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    data = pl.DataFrame({"x": x, "flag": rng.uniform(size=400) < 0.5, "bad": (x + rng.normal(size=400)) > 0})
    out = run_node(LightGBM, {"train": data, "valid": data.tail(100)}, {"label": "bad", "n_estimators": 10},
                   workdir=tmp_path)
    model = out["model"]
    assert model.info["class_values"] == [False, True] and model.info["positive_class"] == "True"
    assert model.info["feature_kinds"]["flag"] == "boolean" and out["report"].metrics["auc"] > 0.7
    scores = flavors.score(model, data.head(5))
    assert scores.prediction.dtype == np.bool_ and scores.proba.columns == ["False", "True"]
    assert flavors.score(model, data.head(0)).proba.height == 0
    assert flavors.contributions(model, data.head(0)).columns == ["x", "flag"]


def test_dates_identifiers_and_excluded_columns_are_left_out_with_the_reason(split):
    """A bank table straight from the source: its id and date columns never become features, nor do columns the
    analyst leaves out (e.g. a protected attribute)."""
    raw = split["train"].with_columns(pl.date(2024, 1, 1).alias("opened"),
                                      pl.format("C{}", pl.int_range(pl.len())).alias("customer_id"))
    out = run_node(LightGBM, {"train": raw}, {**SETTINGS, "n_estimators": 20, "exclude": ["gender"]})
    info = out["model"].info
    assert set(info["left_out"]) == {"opened", "customer_id", "gender"}
    assert "Date parts" in info["left_out"]["opened"] and "identifier-like" in info["left_out"]["customer_id"]
    assert not {"opened", "customer_id", "gender", "default"} & set(info["features"])
    assert set(out["feature_importance"]["feature"]) == set(info["features"])
    scored = run_node(Predict, {"model": out["model"], "table": split["test"].drop("gender")})["table"]
    assert scored["probability"].is_between(0, 1).all()  # a left-out column is not needed to score
