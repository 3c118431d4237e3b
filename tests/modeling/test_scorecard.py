"""Scorecard node and flavor on the sample data: bins as optbinning's, probabilities as sklearn's, textbook points."""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy.special import logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from engine.ports import FittedTransform, Model
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl import flavors
from nodes.automl import scorecard_flavor as flavor
from nodes.automl.predict import Predict
from nodes.automl.scorecard import Scorecard
from nodes.evaluate.evaluate import Evaluate
from nodes.features.split import Split
from nodes.features.transforms.impute import Impute
from nodes.io.csv_reader import ReadCSV

SEED = 42  # run_node's default project seed
FACTOR = 20 / math.log(2)  # the defaults: PDO 20, 600 points at good:bad odds 50
OFFSET = 600 - FACTOR * math.log(50)
# strong features of the sample, numeric (with and without missing values) and categorical
FEW = ["credit_utilization", "debt_to_income", "annual_income", "months_since_last_delinquency", "region"]


@pytest.fixture(scope="module")
def split():
    table = run_node(ReadCSV, settings={"path": str(SAMPLE_DATA)})["table"]
    return run_node(Split, {"table": table}, {"test_fraction": 0.3, "stratify_by": "default"})


@pytest.fixture(scope="module")
def fitted(split, tmp_path_factory):
    return run_node(Scorecard, {"train": split["train"]}, {"label": "default"},
                    workdir=tmp_path_factory.mktemp("scorecard"))


@pytest.fixture(scope="module")
def doc(fitted):
    return json.loads((fitted["model"].path / "scorecard.json").read_text("utf-8"))


def reference_binning(feature: dict, frame: pl.DataFrame, y: np.ndarray):
    """optbinning's own OptimalBinning with the node's default settings, fitted independently of the node."""
    from optbinning import OptimalBinning

    numeric = feature["type"] == "numeric"
    x = _raw(frame, feature["name"], numeric)
    optb = OptimalBinning(name=feature["name"], dtype="numerical" if numeric else "categorical", solver="cp",
                          max_n_bins=6, min_bin_size=0.05, min_prebin_size=0.05, monotonic_trend="auto_asc_desc",
                          random_state=SEED)
    return optb.fit(x, y)


def _raw(frame: pl.DataFrame, name: str, numeric: bool) -> np.ndarray:
    col = frame[name]
    return col.cast(pl.Float64).to_numpy() if numeric else col.cast(pl.String).to_numpy().astype(object)


def _events(frame: pl.DataFrame) -> np.ndarray:
    return frame["default"].to_numpy().astype(np.int64)


# ---- the model ------------------------------------------------------------------------------------------------
def test_model_is_plain_json_with_the_shared_contract(fitted, doc, split):
    model = fitted["model"]
    assert model.flavor == "scorecard"
    assert sorted(p.name for p in model.path.iterdir()) == ["scorecard.json"]
    info = model.info
    assert info["problem_type"] == "binary" and info["label"] == "default"
    assert info["classes"] == ["0", "1"] and info["class_values"] == [0, 1] and info["positive_class"] == "1"
    assert info["train_rows"] == split["train"].height
    assert info["features"] == [f["name"] for f in doc["features"]]
    assert set(info["feature_kinds"]) == set(info["features"]) and info["feature_kinds"]["region"] == "text"
    assert all(f["coefficient"] < 0 for f in doc["features"])
    assert json.loads(json.dumps(info)) == info
    # the identifier and the date are never binned; weak features are dropped for their IV
    report = fitted["report"]
    dropped = dict(zip(report.tables["Dropped features"]["feature"], report.tables["Dropped features"]["reason"]))
    assert "identifier-like" in dropped["customer_id"] and "Date" in dropped["application_date"]
    assert "below the minimum" in dropped["gender"]
    assert not set(dropped) & set(info["features"])
    assert report.metrics["auc"] == pytest.approx(info["train_metrics"]["auc"]) and report.metrics["auc"] > 0.7
    assert report.figures and report.to_html()


def test_scorecard_table_lists_every_bin_with_its_points(fitted, doc):
    table = fitted["scorecard"]
    assert table.columns == ["feature", "bin", "count", "event_rate", "woe", "iv", "coefficient", "points"]
    assert table.schema["points"] == pl.Int64
    assert table.height == sum(len(f["bins"]) for f in doc["features"])
    region = table.filter(pl.col("feature") == "region")
    assert region["bin"][-1] == "Missing" and all(b.startswith("[") for b in region["bin"][:-1])
    assert any(b.startswith("(-inf, ") for b in table["bin"]) and any(b.endswith(", inf)") for b in table["bin"])
    months = table.filter((pl.col("feature") == "months_since_last_delinquency") & (pl.col("bin") == "Missing"))
    assert months["count"][0] > 0 and months["woe"][0] != 0  # the missing bin is fitted when training has gaps


# ---- parity ---------------------------------------------------------------------------------------------------
def test_bins_and_woe_are_optbinnings(split, doc):
    train = split["train"]
    y = _events(train)
    woe = flavor.woe_matrix(doc["features"], train)
    for j, feature in enumerate(doc["features"]):
        optb = reference_binning(feature, train, y)
        if feature["type"] == "numeric":
            assert feature["splits"] == [float(s) for s in optb.splits]
        else:
            assert feature["groups"] == [[str(c) for c in g] for g in optb.splits]
        expected = optb.transform(_raw(train, feature["name"], feature["type"] == "numeric"), metric="woe",
                                  metric_missing="empirical")
        np.testing.assert_allclose(woe[:, j], expected, rtol=0, atol=1e-12, err_msg=feature["name"])


def test_new_rows_fall_in_optbinnings_bins_including_edges(split, doc):
    train, test = split["train"], split["test"]
    y = _events(train)
    for feature in doc["features"]:
        name, numeric = feature["name"], feature["type"] == "numeric"
        optb = reference_binning(feature, train, y)
        if numeric:
            splits = np.asarray(feature["splits"])
            edges = [*splits, *np.nextafter(splits, -np.inf), *np.nextafter(splits, np.inf), -np.inf, np.inf, np.nan]
            values = pl.Series(name, [*test[name].cast(pl.Float64).to_list(), *edges, None], dtype=pl.Float64)
        else:
            values = pl.Series(name, [*test[name].to_list(), None], dtype=pl.String)
        ours = flavor.bin_codes([feature], values.to_frame())[:, 0]
        ref = optb.transform(_raw(values.to_frame(), name, numeric), metric="indices", metric_missing="empirical")
        missing = len(feature["bins"]) - 1
        ref = np.where(ref == optb.binning_table.build(add_totals=False).shape[0] - 1, missing, ref)
        np.testing.assert_array_equal(ours, ref, err_msg=name)
    # a category never seen in training is scored as Missing (optbinning's index -1 = the last row, Missing)
    region = next(f for f in doc["features"] if f["name"] == "region")
    codes = flavor.bin_codes([region], pl.DataFrame({"region": ["Atlantis", None, "East"]}))[:, 0]
    assert codes.tolist()[:2] == [len(region["bins"]) - 1] * 2 and codes[2] < len(region["bins"]) - 1


def test_unseen_categories_are_logged_when_scoring(fitted, split, caplog):
    one = split["test"].head(1)
    rows = pl.concat([one] * 4).with_columns(pl.Series("region", ["Atlantis", "Atlantis", None, "East"]))
    with caplog.at_level("WARNING", logger="ledgerflow.model"):
        p = flavors.score(fitted["model"], rows).proba["1"].to_list()
    assert "'region': 2 value(s) not seen in training" in caplog.text
    assert p[0] == p[1] == p[2] != p[3]  # unseen scores as missing


def test_probabilities_are_sklearns_on_the_training_woe(fitted, doc, split):
    train, test = split["train"], split["test"]
    y = _events(train)
    woe = flavor.woe_matrix(doc["features"], train)
    lr = LogisticRegression(C=1.0, max_iter=1000, random_state=SEED).fit(woe, y)
    np.testing.assert_allclose(lr.coef_[0], [f["coefficient"] for f in doc["features"]], rtol=0, atol=1e-12)
    assert lr.intercept_[0] == pytest.approx(doc["intercept"], abs=1e-12)
    model = fitted["model"]
    for frame in (train, test):
        scores = flavors.score(model, frame)
        expected = lr.predict_proba(flavor.woe_matrix(doc["features"], frame))
        np.testing.assert_allclose(scores.proba["1"].to_numpy(), expected[:, 1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(scores.proba["0"].to_numpy(), expected[:, 0], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(scores.prediction, np.where(expected[:, 1] >= 0.5, 1, 0))
    # contributions are the log-odds terms: with the intercept they add up to the logit of the probability
    terms = flavors.contributions(model, test)
    assert terms.columns == model.info["features"] and all(t == pl.Float64 for t in terms.dtypes)
    p = flavors.score(model, test).proba["1"].to_numpy()
    np.testing.assert_allclose(terms.to_numpy().sum(axis=1) + doc["intercept"], logit(p), rtol=0, atol=1e-9)


def test_points_follow_the_textbook_formula(fitted, doc, split):
    test = split["test"]
    n = len(doc["features"])
    assert doc["scaling"]["factor"] == pytest.approx(FACTOR) and doc["scaling"]["offset"] == pytest.approx(OFFSET)
    for f in doc["features"]:
        for b in f["bins"]:
            raw = -FACTOR * (f["coefficient"] * b["woe"] + doc["intercept"] / n) + OFFSET / n
            assert b["points"] == round(raw), (f["name"], b["label"])
    totals = flavor.points(fitted["model"], flavors.prepare(fitted["model"], test))
    assert totals.dtype == pl.Int64
    codes = flavor.bin_codes(doc["features"], test)
    by_hand = sum(np.asarray([b["points"] for b in f["bins"]])[codes[:, j]] for j, f in enumerate(doc["features"]))
    np.testing.assert_array_equal(totals.to_numpy(), by_hand)
    # higher = safer: defaulters score fewer points on unseen rows
    y = _events(test)
    assert totals.to_numpy()[y == 1].mean() < totals.to_numpy()[y == 0].mean()


def test_unrounded_points_equal_optbinnings_scorecard(split, tmp_path):
    from optbinning import BinningProcess
    from optbinning import Scorecard as OptbScorecard

    train, test = split["train"], split["test"]
    out = run_node(Scorecard, {"train": train}, {"label": "default", "features": FEW, "round_points": False},
                   workdir=tmp_path)
    model = out["model"]
    assert model.info["features"] == FEW
    assert out["scorecard"].schema["points"] == pl.Float64
    # the score is offset - factor * log-odds(bad), row by row
    totals = flavor.points(model, test.select(FEW)).to_numpy()
    p = flavors.score(model, test).proba["1"].to_numpy()
    np.testing.assert_allclose(totals, OFFSET - FACTOR * logit(p), rtol=0, atol=1e-9)
    # optbinning's Scorecard with pdo_odds scaling gives the same points
    fit_params = {v: {"monotonic_trend": "auto_asc_desc"} for v in FEW}  # one-feature CART: no randomness
    process = BinningProcess(FEW, categorical_variables=["region"], max_n_bins=6, min_bin_size=0.05,
                             min_prebin_size=0.05, binning_fit_params=fit_params)
    reference = OptbScorecard(process, LogisticRegression(C=1.0, max_iter=1000, random_state=SEED),
                              scaling_method="pdo_odds",
                              scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600})
    reference.fit(train.select(FEW).to_pandas(), _events(train), metric_missing="empirical")
    table = reference.table(style="detailed")
    for f in json.loads((model.path / "scorecard.json").read_text("utf-8"))["features"]:
        ref = table[table["Variable"] == f["name"]]["Points"].to_numpy()
        ref = np.delete(ref, -2)  # rows: the bins, Special (no special codes here), Missing
        np.testing.assert_allclose([b["points"] for b in f["bins"]], ref, rtol=0, atol=1e-9, err_msg=f["name"])
    np.testing.assert_allclose(totals, reference.score(test.select(FEW).to_pandas()), rtol=0, atol=1e-9)


# ---- the model in the rest of the workbench -------------------------------------------------------------------
def test_predict_and_evaluate_use_the_scorecard(fitted, split):
    test = split["test"]
    scored = run_node(Predict, {"model": fitted["model"], "table": test})["table"]
    assert scored.columns == [*test.columns, "prediction", "probability", "points"]
    assert set(scored["prediction"].unique().to_list()) <= {0, 1}
    report = run_node(Evaluate, {"model": fitted["model"], "table": test})["report"]
    auc = roc_auc_score(test["default"].to_numpy(), scored["probability"].to_numpy())
    assert report.metrics["auc"] == pytest.approx(auc, abs=1e-12)


def test_model_survives_the_artifact_round_trip(fitted, split, tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    Model.save(fitted["model"], folder)
    loaded = Model.from_transport(Model.to_transport(Model.load(folder)), tmp_path)
    a = flavors.score(fitted["model"], split["test"]).proba["1"].to_numpy()
    np.testing.assert_array_equal(flavors.score(loaded, split["test"]).proba["1"].to_numpy(), a)


def test_the_fitted_transform_travels_with_the_model(split, tmp_path):
    train, test = split["train"], split["test"]
    imputed = run_node(Impute, {"table": train}, {"columns": ["annual_income", "employment_years"]})
    feats = ["annual_income", "employment_years", "credit_utilization"]
    out = run_node(Scorecard, {"train": imputed["table"], "transform": imputed["transform"]},
                   {"label": "default", "features": feats}, workdir=tmp_path)
    model = out["model"]
    spec = model.info["transform"]
    assert spec["kind"] == imputed["transform"].kind
    step = FittedTransform(spec["kind"], spec["params"], tuple(spec["columns"]))
    from nodes.features.fitted import apply_transform

    direct = flavor.score(model, apply_transform(step, test).select(model.info["features"]))
    raw = flavors.score(model, test)  # raw rows, with gaps: the model imputes them as in training
    assert test["annual_income"].null_count() > 0
    np.testing.assert_array_equal(raw.proba["1"].to_numpy(), direct.proba["1"].to_numpy())


def test_event_rate_trend_is_imposed(split, tmp_path):
    out = run_node(Scorecard, {"train": split["train"]},
                   {"label": "default", "features": ["age", "debt_to_income"], "monotonic_trend": "descending",
                    "min_iv": 0.0}, workdir=tmp_path)
    assert out["model"].info["features"] == ["age"]
    rates = out["scorecard"].filter((pl.col("feature") == "age") & (pl.col("bin") != "Missing"))["event_rate"]
    assert len(rates) > 2 and (rates.diff().drop_nulls() <= 0).all()
    dropped = out["report"].tables["Dropped features"]  # debt_to_income rises with risk: no descending split
    assert dropped.filter(pl.col("feature") == "debt_to_income")["reason"][0].startswith("a single bin")


def test_text_label_and_boolean_feature(split, tmp_path):
    def recode(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.when(pl.col("default") == 1).then(pl.lit("bad")).otherwise(pl.lit("good"))
                                  .alias("default"), (pl.col("num_delinquencies_2y") > 0).alias("delinquent"))

    train, test = recode(split["train"]), recode(split["test"])
    out = run_node(Scorecard, {"train": train}, {"label": "default", "features": ["delinquent", "debt_to_income"]},
                   workdir=tmp_path)
    model = out["model"]
    assert model.info["class_values"] == ["good", "bad"] and model.info["positive_class"] == "bad"
    assert model.info["feature_kinds"]["delinquent"] == "boolean"
    assert out["scorecard"].filter(pl.col("feature") == "delinquent")["bin"].to_list() == ["[false]", "[true]",
                                                                                           "Missing"]
    scores = flavors.score(model, test)
    assert scores.proba.columns == ["good", "bad"] and set(scores.prediction.tolist()) <= {"good", "bad"}
    # the same flag as 0/1 numbers scores the same (Predict accepts numbers for a boolean feature)
    as_numbers = flavors.score(model, test.with_columns(pl.col("delinquent").cast(pl.Int64)))
    np.testing.assert_array_equal(as_numbers.proba["bad"].to_numpy(), scores.proba["bad"].to_numpy())
    y = (test["default"] == "bad").to_numpy()
    assert roc_auc_score(y, scores.proba["bad"].to_numpy()) > 0.6


# ---- bad input ------------------------------------------------------------------------------------------------
def test_single_class_label_is_refused(split):
    only_good = split["train"].filter(pl.col("default") == 0)
    with pytest.raises(NodeFailed, match="single class"):
        run_node(Scorecard, {"train": only_good}, {"label": "default", "features": ["age"]})


def test_label_with_three_classes_is_refused(split):
    three = split["train"].with_columns((pl.col("default") + (pl.col("age") > 60).cast(pl.Int64)).alias("default"))
    with pytest.raises(NodeFailed, match="3 classes.*binary"):
        run_node(Scorecard, {"train": three}, {"label": "default", "features": ["age"]})


def test_no_feature_above_the_minimum_iv_lists_the_best(split):
    with pytest.raises(NodeFailed, match=r"minimum IV of 0\.9 with at least two bins.*gender \(0\.0") as err:
        run_node(Scorecard, {"train": split["train"]},
                 {"label": "default", "features": ["gender", "loan_term_months"], "min_iv": 0.9})
    assert "loan_term_months (" in str(err.value)


def test_all_null_feature(split, tmp_path):
    train = split["train"].select("age", "debt_to_income", "default").with_columns(
        pl.lit(None, dtype=pl.Float64).alias("empty"))
    with pytest.raises(NodeFailed, match="'empty' cannot be used: no values"):
        run_node(Scorecard, {"train": train}, {"label": "default", "features": ["empty", "age"]})
    out = run_node(Scorecard, {"train": train}, {"label": "default"}, workdir=tmp_path)  # all columns: left out
    dropped = out["report"].tables["Dropped features"]
    assert dropped.filter(pl.col("feature") == "empty")["reason"][0].startswith("no values")
    assert out["model"].info["features"] == ["age", "debt_to_income"]


def test_label_as_feature_and_unknown_columns_are_refused(split):
    with pytest.raises(NodeFailed, match="label column 'default' cannot also be a feature"):
        run_node(Scorecard, {"train": split["train"]}, {"label": "default", "features": ["age", "default"]})
    with pytest.raises(NodeFailed, match="'nope' is not in the table"):
        run_node(Scorecard, {"train": split["train"]}, {"label": "nope"})


def test_predict_appends_total_points_for_a_scorecard(split, fitted):
    from nodes.automl import scorecard_flavor
    from nodes.automl.flavors import prepare
    from nodes.automl.predict import Predict

    model = fitted["model"]
    out = run_node(Predict, {"model": model, "table": split["test"]})["table"]
    assert out.columns[-3:] == ["prediction", "probability", "points"]
    expected = scorecard_flavor.points(model, prepare(model, split["test"]))
    assert out["points"].to_list() == expected.to_list()
    # higher points = safer: the mean probability falls from the lowest-points quartile to the highest
    q = out.select(pl.col("points").qcut(4, labels=["q1", "q2", "q3", "q4"]).alias("q"), "probability")
    by = q.group_by("q").agg(pl.col("probability").mean()).sort("q")
    assert by["probability"][0] > by["probability"][-1]
