"""Experiment runs from real project runs: metrics and curves recorded with the node runs, evaluations linked to the
model they scored, filters, comparison, audited candidate marks, and the database upgrade.

The training and evaluation nodes here are small but real (scikit-learn logistic regression stored as JSON, real
metrics); they stand for any node with a Model output and any evaluation report. The real AutoML + Evaluate template
is covered by the slow test at the end.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import Field
from sklearn.metrics import roc_auc_score

import nodes
from engine import db
from engine.errors import LedgerflowError, NodeInputError
from engine.experiments import (KS_TABLE, ROC_TABLE, CandidateConflict, Experiments, MetricCondition, RunFilter,
                                UnknownRun, curve_tables, open_experiments)
from engine.graph import Edge
from engine.ports import Model, ModelRef, Report, ReportPort, Table
from engine.project import Project
from engine.registry import Provenance, Registry
from engine.runlog import os_user
from engine.scheduler import Session
from engine.sdk import Node, NodeSettings, node
from engine.templates import SAMPLE_DATA

FEATURES = ["age", "employment_years", "annual_income", "monthly_debt", "debt_to_income", "credit_utilization",
            "num_credit_lines", "num_delinquencies_2y", "loan_amount", "loan_term_months"]


class LogitSettings(NodeSettings):
    label: str = Field("default", title="Label")
    C: float = Field(1.0, gt=0, title="Inverse regularisation")
    features: list[str] = Field(default_factory=lambda: list(FEATURES), title="Features")


def _matrix(table: pl.DataFrame, features: list[str], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardised features; a missing value is imputed with the training mean (0 after standardising)."""
    return np.nan_to_num((table.select(features).to_numpy().astype(float) - mean) / std, nan=0.0)


@node("exptest.logit", title="Logistic regression", category="Test")
class Logit(Node):
    """A training node: fits on 80% of its input, reports the AUC on the other 20% as validation metric."""

    inputs = {"train": Table}
    outputs = {"model": Model}
    Settings = LogitSettings

    def compute(self, inputs, settings, ctx):
        from sklearn.linear_model import LogisticRegression

        table = inputs["train"]
        missing = [c for c in [settings.label, *settings.features] if c not in table.columns]
        if missing:
            raise NodeInputError(f"column {missing[0]!r} is not in the table")
        fit, hold = table.head(int(table.height * 0.8)), table.tail(table.height - int(table.height * 0.8))
        x = fit.select(settings.features).to_numpy().astype(float)
        mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0) + 1e-12
        clf = LogisticRegression(C=settings.C, max_iter=500).fit(_matrix(fit, settings.features, mean, std),
                                                                 fit[settings.label].to_numpy())
        val = roc_auc_score(hold[settings.label].to_numpy(),
                            clf.predict_proba(_matrix(hold, settings.features, mean, std))[:, 1])
        folder = ctx.workdir / "logit"
        folder.mkdir(parents=True)
        (folder / "coef.json").write_text(json.dumps({"coef": clf.coef_[0].tolist(),
                                                      "intercept": float(clf.intercept_[0]),
                                                      "mean": mean.tolist(), "std": std.tolist()}))
        info = {"label": settings.label, "problem_type": "binary", "features": settings.features,
                "best_model": f"Logit C={settings.C:g}", "train_rows": fit.height, "metrics": {"auc": val}}
        return {"model": ModelRef("logit-json", folder, info)}


def logit_scores(model: ModelRef, table: pl.DataFrame) -> np.ndarray:
    doc = json.loads((Path(model.path) / "coef.json").read_text())
    z = _matrix(table, model.info["features"], np.array(doc["mean"]), np.array(doc["std"])) @ np.array(doc["coef"])
    return 1 / (1 + np.exp(-(z + doc["intercept"])))


class ScoreSettings(NodeSettings):
    curves: bool = Field(True, title="Record curves")


@node("exptest.score", title="Score", category="Test")
class Score(Node):
    """An evaluation node: real metrics and, when asked, the compact curves for the experiments view."""

    inputs = {"model": Model, "table": Table}
    outputs = {"report": ReportPort}
    Settings = ScoreSettings

    def compute(self, inputs, settings, ctx):
        from nodes.evaluate.metrics import binary_metrics

        model, table = inputs["model"], inputs["table"]
        y, s = table[model.info["label"]].to_numpy(), logit_scores(model, table)
        report = Report(title=f"Evaluation of {model.info['best_model']}", kind="evaluation",
                        metrics={"problem_type": "binary", **binary_metrics(y, s, 0.5)})
        if settings.curves:
            report.tables.update(curve_tables(y, s))
        return {"report": report}


def registry() -> Registry:
    reg = Registry()
    for cls in nodes.NODES:
        reg.register(cls, Provenance("ledgerflow", "0.1.0"))
    for cls in (Logit, Score):
        reg.register(cls, Provenance("exptest", "1.0"))
    return reg


def build_project(folder: Path) -> dict[str, str]:
    """read → split → logit → {Evaluate (test), Check (train, no curves)}; run with C=1, C=0.01, then a bad label.

    Returns node ids and the three training record ids ("good", "weak", "failed")."""
    project = Project.new(folder, "Experiments test", registry())
    g = project.graph
    read = g.add_node("io.read_csv", {"path": str(SAMPLE_DATA)}, title="Read").id
    split = g.add_node("features.split", {"test_fraction": 0.3, "stratify_by": "default"}, title="Split").id
    train = g.add_node("exptest.logit", {"C": 1.0}, title="Logit").id
    evaluate = g.add_node("exptest.score", {}, title="Evaluate").id
    check = g.add_node("exptest.score", {"curves": False}, title="Check").id
    g.add_edge(Edge(read, "table", split, "table"))
    g.add_edge(Edge(split, "train", train, "train"))
    g.add_edge(Edge(train, "model", evaluate, "model"))
    g.add_edge(Edge(split, "test", evaluate, "table"))
    g.add_edge(Edge(train, "model", check, "model"))
    g.add_edge(Edge(split, "train", check, "table"))
    project.save()
    with Session(project) as s:
        assert s.run().ok
        g.replace_settings(train, {"C": 0.0005})
        assert s.run().ok
        g.replace_settings(train, {"C": 1.0, "label": "nope"})
        assert not s.run().ok
        records = [r for r in s.runlog.records(node_id=train)]
    project.save()
    failed, weak, good = (r["id"] for r in records)
    return {"read": read, "split": split, "train": train, "evaluate": evaluate, "check": check,
            "good": good, "weak": weak, "failed": failed}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("exp") / "proj"
    ids = build_project(folder)
    return folder, ids


@pytest.fixture
def exps(built, tmp_path):
    """A private copy of the built project (candidate tests write to it)."""
    folder = tmp_path / "proj"
    shutil.copytree(built[0], folder, ignore=shutil.ignore_patterns("tmp"))
    project = Project.load(folder, registry())
    experiments, engine = open_experiments(project)
    yield experiments, built[1], project
    engine.dispose()


def test_metrics_curves_and_lineage_are_recorded_and_linked(exps):
    experiments, ids, project = exps
    runs = experiments.runs()
    assert [r.id for r in runs] == [ids["failed"], ids["weak"], ids["good"]]  # newest first
    good = experiments.get(ids["good"])
    assert good.model["flavor"] == "logit-json" and good.model_name == "Logit C=1"
    assert good.model["problem_type"] == "binary" and good.model["n_features"] == len(FEATURES)
    assert good.settings["C"] == 1.0 and good.seed == 42 and good.user == os_user() and good.outcome == "done"
    assert good.packages["scikit-learn"] and set(good.inputs) == {"train"} and good.inputs["train"]
    by_node = {e.node_title: e for e in good.evaluations}
    assert set(by_node) == {"Evaluate", "Check"}
    metrics = good.metrics
    assert metrics["validation.auc"] == pytest.approx(good.model["metrics"]["auc"])
    assert 0.6 < metrics["Evaluate.auc"] < 0.95
    assert metrics["Evaluate.gini"] == pytest.approx(2 * metrics["Evaluate.auc"] - 1)
    # curves: compact, and consistent with the recorded metrics
    roc, ks = by_node["Evaluate"].curves["roc"], by_node["Evaluate"].curves["ks"]
    assert 10 < len(roc["fpr"]) <= 200 and len(ks["score"]) <= 200
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(metrics["Evaluate.auc"], abs=0.01)
    assert max(abs(a - b) for a, b in zip(ks["cum_neg"], ks["cum_pos"])) == pytest.approx(metrics["Evaluate.ks"],
                                                                                        abs=1e-6)
    assert by_node["Check"].curves == {} and "auc" in by_node["Check"].metrics  # a report without curves
    # Check scored the training data itself: flagged, and listed after the held-out evaluation
    assert by_node["Check"].in_sample and not by_node["Evaluate"].in_sample
    assert [e.node_title for e in good.evaluations] == ["Evaluate", "Check"]
    # the run log carries the same summary (no second store of it)
    rec = next(r for r in experiments_records(experiments) if r["id"] == ids["good"])
    assert rec["metrics"]["models"]["model"]["best_model"] == "Logit C=1"
    ev_rec = next(r for r in experiments_records(experiments) if r["id"] == by_node["Evaluate"].record_id)
    assert ev_rec["metrics"]["evaluations"]["report"]["models"] == [rec["outputs"]["model"]]
    # each run is linked to its own model's evaluation: back at C=0.0005 the model comes from the cache (no new
    # run), and sklearn on the test part gives exactly the AUC linked to the weak run
    project.graph.replace_settings(ids["train"], {"C": 0.0005})
    with Session(project) as s:
        assert all(r.cached for r in s.run(until=ids["train"]).nodes.values())
        test, model = s.output(ids["split"], "test"), s.output(ids["train"], "model")
    assert len(experiments.runs()) == 3
    weak = experiments.get(ids["weak"])
    assert model.info["best_model"] == weak.model_name == "Logit C=0.0005"
    auc = roc_auc_score(test["default"].to_numpy(), logit_scores(model, test))
    assert weak.metrics["Evaluate.auc"] == pytest.approx(auc, abs=1e-12) and auc != metrics["Evaluate.auc"]


def experiments_records(experiments: Experiments) -> list[dict]:
    from engine.runlog import RunLog

    return RunLog(experiments.db).records()


def test_a_failed_training_is_an_experiment_run_without_metrics(exps):
    experiments, ids, _ = exps
    failed = experiments.get(ids["failed"])
    assert failed.outcome == "failed" and "'nope'" in failed.error
    assert failed.models == {} and failed.evaluations == [] and failed.metrics == {}
    assert failed.settings["label"] == "nope"


def test_filters(exps):
    experiments, ids, _ = exps

    def found(**kw) -> list[int]:
        return [r.id for r in experiments.runs(RunFilter(**kw))]

    assert found(outcome="failed") == [ids["failed"]]
    assert found(outcome="done") == [ids["weak"], ids["good"]]
    assert found(node="Logit") == found(node=ids["train"]) == found() and found(node="Evaluate") == []
    assert found(type_id="exptest.logit") == found() and found(type_id="automl.autogluon") == []
    assert found(user=os_user()) == found() and found(user="somebody-else") == []
    today = dt.datetime.now(dt.timezone.utc).date()
    assert found(since=str(today), until=str(today)) == found()
    assert found(since=str(today + dt.timedelta(days=1))) == []
    assert found(until=str(today - dt.timedelta(days=1))) == []
    good_auc = experiments.get(ids["good"]).metrics["Evaluate.auc"]
    weak_auc = experiments.get(ids["weak"]).metrics["Evaluate.auc"]
    assert good_auc > weak_auc
    middle = (good_auc + weak_auc) / 2
    assert found(metrics=[MetricCondition.parse(f"Evaluate.auc>={middle}")]) == [ids["good"]]
    # a bare name matches that metric from any source: the weak model predicts no defaults at 0.5 anywhere
    assert found(metrics=[MetricCondition.parse("recall > 0")]) == [ids["good"]]
    assert found(metrics=[MetricCondition.parse("f1=0")]) == [ids["weak"]]
    assert found(metrics=[MetricCondition.parse("validation.auc>0"), MetricCondition.parse("Check.ks>0")]) == \
        [ids["weak"], ids["good"]]
    assert found(text="c=0.0005") == [ids["weak"]] and found(text="NOPE") == [ids["failed"]]
    assert found(candidates_only=True) == []
    with pytest.raises(LedgerflowError, match="auc>=0.7"):
        MetricCondition.parse("auc is high")
    with pytest.raises(LedgerflowError, match="2024-05-31"):
        experiments.runs(RunFilter(since="last tuesday"))


def test_compare_shows_metrics_side_by_side_and_only_differing_settings(exps):
    experiments, ids, _ = exps
    cmp = experiments.compare([ids["good"], str(ids["weak"])])
    metrics = dict(cmp.metrics)
    assert [n for n, _ in cmp.metrics][:1] != ["validation.auc"]  # evaluation metrics first
    assert metrics["Evaluate.auc"] == [experiments.get(ids["good"]).metrics["Evaluate.auc"],
                                       experiments.get(ids["weak"]).metrics["Evaluate.auc"]]
    assert [p.name for p in cmp.param_diff] == ["C"] and cmp.param_diff[0].values == [1.0, 0.0005]
    assert {p.name for p in cmp.params} >= {"C", "label", "features", "seed"}
    assert not any(p.differs for p in cmp.data)  # same training data fingerprint
    doc = cmp.to_json()
    assert doc["parameters"] == {"C": [1.0, 0.0005]} and doc["data"] == {} and doc["packages"] == {}
    json.dumps(doc)  # JSON-serialisable as is
    with_failed = experiments.compare([ids["good"], ids["failed"]])
    assert {p.name for p in with_failed.param_diff} == {"label"}
    assert dict(with_failed.metrics)["Evaluate.auc"][1] is None


def test_unknown_and_malformed_run_ids_are_named(exps):
    experiments, ids, _ = exps
    with pytest.raises(UnknownRun, match=r"No training run with id 9999 in project 'Experiments test'"):
        experiments.compare([ids["good"], 9999])
    read_record = next(r["id"] for r in experiments_records(experiments) if r["node_id"] == ids["read"])
    with pytest.raises(UnknownRun, match=str(read_record)):  # a record, but not of a training node
        experiments.get(read_record)
    with pytest.raises(UnknownRun, match="'abc' is not a run id"):
        experiments.get("abc")


def test_candidate_marks_are_audited_and_never_silently_replaced(exps):
    experiments, ids, _ = exps
    first = experiments.mark_candidate(ids["good"], note="best AUC on test")
    assert first.user == os_user() and first.at and first.project == "Experiments test"
    assert experiments.candidates() == {ids["train"]: ids["good"]}
    assert [r.id for r in experiments.runs(RunFilter(candidates_only=True))] == [ids["good"]]
    assert experiments.get(ids["good"]).candidate and not experiments.get(ids["weak"]).candidate
    with pytest.raises(LedgerflowError, match="already the candidate"):
        experiments.mark_candidate(ids["good"])
    with pytest.raises(CandidateConflict, match=f"Run {ids['good']} is the candidate of 'Logit'"):
        experiments.mark_candidate(ids["weak"])
    assert experiments.candidates() == {ids["train"]: ids["good"]}
    experiments.mark_candidate(ids["weak"], note="simpler model", replace=True)
    assert experiments.candidates() == {ids["train"]: ids["weak"]}
    with pytest.raises(LedgerflowError, match="only a successful run"):
        experiments.mark_candidate(ids["failed"], replace=True)
    with pytest.raises(LedgerflowError, match="is not the candidate"):
        experiments.unmark_candidate(ids["good"])
    experiments.unmark_candidate(ids["weak"], note="revoked")
    assert experiments.candidates() == {}
    history = experiments.history(ids["train"])
    assert [(e.action, e.record_id, e.note) for e in history] == [
        ("mark", ids["good"], "best AUC on test"), ("mark", ids["weak"], "simpler model"),
        ("unmark", ids["weak"], "revoked")]
    assert all(e.at >= history[0].at and e.user == os_user() for e in history)


def test_curve_tables_are_compact_and_exact_at_the_ks_point():
    from nodes.evaluate.metrics import binary_metrics

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 20_000)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    tables = curve_tables(y, s)
    roc, ks = tables[ROC_TABLE], tables[KS_TABLE]
    assert roc.height <= 200 and ks.height <= 200
    assert roc.row(0) == (0.0, 0.0) and roc.row(-1) == (1.0, 1.0)
    exact = binary_metrics(y, s, 0.5)
    assert float((ks["cum_neg"] - ks["cum_pos"]).abs().max()) == pytest.approx(exact["ks"], abs=1e-9)
    assert np.trapezoid(roc["tpr"].to_numpy(), roc["fpr"].to_numpy()) == pytest.approx(exact["auc"], abs=0.005)


def test_a_malformed_artifact_never_costs_the_run_record(tmp_path, caplog):
    from engine.runlog import NodeExecution, RunLog

    state = tmp_path / ".ledgerflow"
    engine = db.open_db(state)
    digest = "ab" * 32
    folder = state / "artifacts" / digest[:2] / digest
    folder.mkdir(parents=True)
    (folder / "report.json").write_text("{not json")
    runlog = RunLog(engine)
    run_id = runlog.start_run("all", "test")
    with engine.begin() as conn:
        runlog.record(conn, NodeExecution(
            run_id=run_id, node_id="n1", node_title="Plugin report", type_id="x.report", type_version=1,
            plugin="x 1", executor="in-process", started_at="2024-01-01", ended_at="2024-01-01", duration_s=0.1,
            settings={}, cache_key="k", inputs={}, outputs={"report": digest}, seed=1, outcome="done"))
    (rec,) = runlog.records()
    assert rec["metrics"] == {} and rec["outputs"] == {"report": digest} and rec["outcome"] == "done"
    assert "could not summarise the outputs of node n1" in caplog.text
    engine.dispose()


def test_an_older_database_gains_the_metrics_column_and_keeps_its_records(tmp_path):
    state = tmp_path / ".ledgerflow"
    engine = db.open_db(state)
    with engine.begin() as conn:
        conn.execute(db.run_records.insert().values(
            run_id="r", node_id="n", node_title="Old", type_id="t", type_version=1, plugin="p 1", user="u", host="h",
            executor="x", started_at="2020-01-01", ended_at="2020-01-01", duration_s=0.0, settings_json="{}",
            cache_key="", inputs_json="{}", outputs_json="{}", packages_json="{}", environment="e", seed=1,
            outcome="done"))
        conn.exec_driver_sql("ALTER TABLE run_records DROP COLUMN metrics_json")
        conn.exec_driver_sql("DROP TABLE candidate_events")
        conn.exec_driver_sql("PRAGMA user_version = 1")
    engine.dispose()
    engine = db.open_db(state)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == db.SCHEMA_VERSION == 2
        assert conn.exec_driver_sql("SELECT node_title, metrics_json FROM run_records").all() == [("Old", "{}")]
        assert conn.exec_driver_sql("SELECT count(*) FROM candidate_events").scalar() == 0
    assert Experiments(engine).runs() == []  # an old record of an unknown type is not an experiment run
    engine.dispose()


@pytest.mark.slow
def test_the_credit_risk_template_records_automl_and_its_evaluation(tmp_path):
    from engine.templates import create_project

    project = create_project(tmp_path / "p", "credit-risk", time_limit_s=10)
    automl = next(n.id for n in project.graph.nodes.values() if n.type_id == "automl.autogluon")
    project.graph.replace_settings(automl, {**project.graph.nodes[automl].settings,
                                            "included_model_types": ["GBM"]})
    project.save()
    with Session(project) as s:
        report = s.run()
        assert report.ok
        evaluation = s.output(next(n.id for n in project.graph.nodes.values() if n.title == "Evaluate"), "report")
        experiments = Experiments.for_project(project, s.db)
        runs = experiments.runs()
    assert sorted(r.type_id for r in runs) == ["automl.autogluon", "automl.lightgbm", "automl.scorecard"]
    run = next(r for r in runs if r.type_id == "automl.autogluon")
    assert run.type_id == "automl.autogluon" and run.model["flavor"] == "autogluon" and run.model_name
    assert run.model["label"] == "default" and run.model["train_rows"] > 1000
    assert run.metrics["Evaluate.auc"] == pytest.approx(evaluation.metrics["auc"])
    # Evaluate's optional reference input is the training table (for PSI): the evaluation is still held-out
    assert [e.in_sample for e in run.evaluations if e.node_title == "Evaluate"] == [False]
    assert run.metrics["Evaluate.ks"] == pytest.approx(evaluation.metrics["ks"])
    assert "transform" not in run.model  # summaries are small: metadata, not the fitted preparation


def test_two_reviewers_marking_at_once_cannot_both_win(exps):
    """Check-then-append is one step: of two simultaneous marks of the same node, one wins and the other is asked
    to replace it."""
    import threading

    experiments, ids, _ = exps
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def mark(run: int) -> None:
        start.wait()
        try:
            experiments.mark_candidate(run)
            outcomes.append("marked")
        except CandidateConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=mark, args=(ids[k],)) for k in ("good", "weak")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "marked"]
    assert [e.action for e in experiments.history()] == ["mark"]
