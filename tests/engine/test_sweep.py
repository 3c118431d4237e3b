"""Sweeps over real projects: grid × datasets, failing members, the comparison table, the cache, cancel, Dask."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import Field
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from engine import db
from engine.errors import NodeInputError
from engine.graph import Edge
from engine.ports import Report, ReportPort, Table
from engine.project import Project
from engine.registry import Provenance
from engine.runlog import RunLog
from engine.sdk import Node, NodeSettings, node
from engine.sweep import Sweep, SweepSpec, SweepSpecError, parse_target, plan_sweep, run_sweep
from engine.templates import SAMPLE_DATA
from engine.testing import run_node
from nodes.features.split import Split

COLUMNS = ["debt_to_income", "credit_utilization", "num_delinquencies_2y", "age"]


class ScoreSettings(NodeSettings):
    column: str = Field("debt_to_income", min_length=1)
    label: str = "default"


@node("sweeptest.score", title="Score", category="Test")
class Score(Node):
    """How well one column ranks the label: an evaluation report with AUC and Gini (a fast stand-in for a model)."""

    inputs = {"table": Table}
    outputs = {"report": ReportPort}
    Settings = ScoreSettings

    def compute(self, inputs, settings, ctx):
        table = inputs["table"]
        if settings.column not in table.columns:
            raise NodeInputError(f"column {settings.column!r} is not in the table")
        auc = float(roc_auc_score(table[settings.label].to_numpy(), table[settings.column].to_numpy()))
        return {"report": Report(title="score", kind="evaluation",
                                 metrics={"auc": auc, "gini": 2 * auc - 1, "rows": table.height, "note": "x"})}


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> list[Path]:
    """Five datasets: disjoint 400-row slices of the sample credit data, without the id and date columns."""
    folder = tmp_path_factory.mktemp("parts")
    data = pl.read_csv(SAMPLE_DATA).drop("customer_id", "application_date")  # model-ready columns
    paths = []
    for i in range(5):
        path = folder / f"part{i}.csv"
        data.slice(i * 400, 400).write_csv(path)
        paths.append(path)
    return paths


@pytest.fixture
def credit(project, registry, parts) -> Project:
    """Read CSV → Split → Score (on the test part), saved."""
    registry.register(Score, Provenance("sweep-tests", "1.0"))
    g = project.graph
    read = g.add_node("io.read_csv", {"path": str(parts[0])}, title="Read CSV").id
    split = g.add_node("features.split", {"test_fraction": 0.3}, title="Split").id
    score = g.add_node("sweeptest.score", {}, title="Score").id
    g.add_edge(Edge(read, "table", split, "table"))
    g.add_edge(Edge(split, "test", score, "table"))
    project.save()
    return project


def _records(project: Project, title: str) -> list[dict]:
    engine = db.open_db(project.state_dir)
    try:
        return [r for r in RunLog(engine).records() if r["node_title"] == title]
    finally:
        engine.dispose()


def _targets(project: Project) -> dict[str, str]:
    engine = db.open_db(project.state_dir)
    try:
        with engine.connect() as conn:
            return {r.run_id: r.target for r in conn.execute(select(db.runs)).all()}
    finally:
        engine.dispose()


def test_grid_times_datasets_runs_every_member_and_shares_the_upstream(credit, parts):
    spec = SweepSpec(grid={"Score.column": COLUMNS}, datasets={"Read CSV.path": [str(p) for p in parts]},
                     primary_metric="auc", max_parallel=4)
    seen: list[str] = []
    result = Sweep(credit, spec, on_member=lambda m: seen.append(m.member_id)).run()

    assert result.ok, result.table.filter(pl.col("status") != "ok")["error"].to_list()
    assert len(result.members) == 20 and sorted(seen) == [f"m{i:03d}" for i in range(1, 21)]
    table = result.table
    assert table.columns == ["member", "Score.column", "dataset", "status", "error", "duration_s", "run_id", "auc",
                             "gini", "rows"]  # numeric metrics only: the text "note" is left out
    assert table.height == 20 and set(table["status"]) == {"ok"} and table["error"].null_count() == 20
    assert table["auc"].to_list() == sorted(table["auc"].to_list(), reverse=True)  # best first
    assert {(r["Score.column"], r["dataset"]) for r in table.iter_rows(named=True)} == \
        {(c, str(p)) for p in parts for c in COLUMNS}

    # One row checked against the nodes run by hand: the same split (project seed), the same AUC.
    row = table.filter((pl.col("dataset") == str(parts[2])) & (pl.col("Score.column") == "age")).row(0, named=True)
    test = run_node(Split, {"table": pl.read_csv(parts[2])}, {"test_fraction": 0.3}, seed=credit.seed)["test"]
    assert row["auc"] == pytest.approx(roc_auc_score(test["default"].to_numpy(), test["age"].to_numpy()))
    assert row["rows"] == test.height and row["gini"] == pytest.approx(2 * row["auc"] - 1)

    # The shared part (read + split of each dataset) ran once per dataset, not once per member.
    assert len([r for r in _records(credit, "Read CSV") if r["outcome"] == "done"]) == 5
    assert len([r for r in _records(credit, "Split") if r["outcome"] == "done"]) == 5
    scores = [r for r in _records(credit, "Score") if r["outcome"] == "done"]
    assert len(scores) == 20
    # Every member is an ordinary run, tagged with the sweep: the member's run holds its Score record.
    targets = _targets(credit)
    assert {parse_target(targets[r]) for r in table["run_id"]} == {(result.sweep_id, m) for m in table["member"]}
    assert {parse_target(t) for t in targets.values()} - {parse_target(targets[r]) for r in table["run_id"]} == \
        {(result.sweep_id, f"shared:{d}") for d in range(1, 6)}  # each dataset's read and split, once
    assert parse_target("all") is None
    by_run = {r["run_id"]: r for r in scores}
    assert by_run[row["run_id"]]["settings"]["column"] == "age"
    assert by_run[row["run_id"]]["metrics"]  # summarised for the Experiments view like any evaluation
    # The project itself is unchanged.
    assert Project.load(credit.path, credit.graph.registry).graph.find("Score").settings["column"] == "debt_to_income"

    again = run_sweep(credit, spec)  # everything is cached now: same numbers, nothing recomputed
    assert again.table.drop("duration_s", "run_id").equals(table.drop("duration_s", "run_id"))
    assert len([r for r in _records(credit, "Score") if r["outcome"] == "done"]) == 20


def test_failing_members_are_reported_and_the_others_finish(credit, parts, tmp_path):
    missing = tmp_path / "no-such-file.csv"
    spec = SweepSpec(grid={"Split.test_fraction": [0.3, 1.5], "Score.column": ["debt_to_income", "nope"]},
                     datasets={"Read CSV.path": [str(parts[1]), str(missing)]})
    result = run_sweep(credit, spec)
    assert not result.ok and not result.cancelled
    rows = {(r["dataset"], r["Split.test_fraction"], r["Score.column"]): r for r in result.table.iter_rows(named=True)}
    assert len(rows) == 8
    good = rows[(str(parts[1]), 0.3, "debt_to_income")]
    assert good["status"] == "ok" and 0.5 < good["auc"] < 1
    bad_column = rows[(str(parts[1]), 0.3, "nope")]
    assert bad_column["status"] == "failed" and "'nope' is not in the table" in bad_column["error"]
    assert bad_column["auc"] is None
    for dataset in (str(parts[1]), str(missing)):
        for column in ("debt_to_income", "nope"):
            invalid = rows[(dataset, 1.5, column)]
            assert invalid["status"] == "invalid" and invalid["run_id"] is None
            assert "Split.test_fraction" in invalid["error"] and "1.5" in invalid["error"]
    for column in ("debt_to_income", "nope"):
        gone = rows[(str(missing), 0.3, column)]
        assert gone["status"] == "failed" and "Read CSV" in gone["error"] and "no-such-file.csv" in gone["error"]
    # The missing file was tried once for its dataset, not once per member.
    failed_reads = [r for r in _records(credit, "Read CSV") if r["outcome"] == "failed"]
    assert len(failed_reads) == 1


def test_the_table_is_written_atomically_as_csv_or_parquet(credit, parts, tmp_path):
    result = run_sweep(credit, SweepSpec(grid={"Score.column": COLUMNS[:2]}, primary_metric="auc"))
    out = tmp_path / "tables"
    result.write(out / "new" / "table.csv")
    result.write(out / "table.parquet")
    assert pl.read_csv(out / "new" / "table.csv")["auc"].to_list() == result.table["auc"].to_list()
    assert pl.read_parquet(out / "table.parquet").equals(result.table)
    assert "dataset" not in result.table.columns  # no datasets: no dataset column
    with pytest.raises(SweepSpecError, match=r"\.csv or \.parquet"):
        result.write(out / "table.xlsx")
    assert sorted(p.name for p in out.iterdir()) == ["new", "table.parquet"]  # no temp files left


def test_bad_specs_are_refused_before_anything_runs(credit, tmp_path):
    cases = [
        ({"grid": {"Nope.column": [1]}}, "No node 'Nope'"),
        ({"grid": {"Score.colour": ["a"]}}, "has no setting 'colour'"),
        ({"grid": {"Score": ["a"]}}, "must be <node>.<setting>"),
        ({"grid": {"Score.column": []}}, "lists no values"),
        ({"grid": {"Score.column": ["a", "a"]}}, "the same value twice"),
        ({}, "needs a 'grid' or 'datasets'"),
        ({"grid": {"Score.column": ["a"]}, "metrics_from": ["Split"]}, "no varied setting reaches"),
        ({"grid": {"Split.test_fraction": [0.2]}, "metrics_from": ["Score"], "datasets": {"Read CSV.path": ["a"]}},
         None),  # fine: both feed Score
        ({"datasets": {"Read CSV.path": ["a", "b"], "Split.test_fraction": [0.2]}}, "same number of values"),
        ({"grid": {"Score.column": ["a"]}, "max_parallel": 0}, "max_parallel"),
        ({"grid": {"Score.column": ["a"]}, "colour": 1}, "colour"),
    ]
    for doc, message in cases:
        if message is None:
            assert len(plan_sweep(credit, SweepSpec.parse(doc)).members) == 1
            continue
        with pytest.raises(SweepSpecError, match=message):
            plan_sweep(credit, SweepSpec.parse(doc))
    credit.graph.update_node(credit.graph.find("Split").id, disabled=True)
    with pytest.raises(SweepSpecError, match="'Score' would not run"):  # behind the disabled Split
        plan_sweep(credit, SweepSpec.parse({"grid": {"Score.column": ["a"]}, "datasets": {"Read CSV.path": ["a"]}}))
    with pytest.raises(SweepSpecError, match="'Split' is disabled, but the sweep needs it"):
        plan_sweep(credit, SweepSpec.parse({"grid": {"Score.column": ["a"]}}))
    path = tmp_path / "spec.json"
    path.write_text("{not json", "utf-8")
    with pytest.raises(SweepSpecError, match="not valid JSON"):
        SweepSpec.load(path)
    path.write_text(json.dumps({"grid": {"Score.column": ["age"]}, "max_parallel": 3}), "utf-8")
    assert SweepSpec.load(path).max_parallel == 3


def test_metrics_from_restricts_what_runs_and_what_is_measured(project, registry):
    """A varied node feeds two reports; metrics_from keeps one, and the other branch is not run at all."""
    registry.register(Score, Provenance("sweep-tests", "1.0"))
    g = project.graph
    src = g.add_node("toy.const", {"value": 1, "rows": 4}).id
    add = g.add_node("toy.add", {"n": 0}, title="Add").id
    wanted = g.add_node("toy.report", title="Wanted").id
    other = g.add_node("toy.report", title="Other").id
    for dst in (wanted, other):
        g.add_edge(Edge(add, "table", dst, "table"))
    g.add_edge(Edge(src, "table", add, "table"))
    result = run_sweep(project, SweepSpec(grid={"Add.n": [1, 2]}, metrics_from=["Wanted"]))
    assert result.ok and result.table["auc"].to_list() == [0.5, 0.5]
    assert result.table.columns[-3:] == ["auc", "gini", "ks"]
    assert _records(project, "Other") == [] and len(_records(project, "Wanted")) == 2


def test_cancel_stops_the_running_member_and_skips_the_rest(project):
    g = project.graph
    src = g.add_node("toy.const", {"value": 1}).id
    sleep = g.add_node("toy.sleep", {"seconds": 0, "cooperative": True}, title="Sleep").id
    rep = g.add_node("toy.report", title="Report").id
    g.add_edge(Edge(src, "table", sleep, "table"))
    g.add_edge(Edge(sleep, "table", rep, "table"))
    sweep: Sweep | None = None

    def on_member(m):
        if m.member_id == "m001":
            sweep.cancel()

    sweep = Sweep(project, SweepSpec(grid={"Sleep.seconds": [0, 60, 61, 62]}, max_parallel=1), on_member=on_member)
    result = sweep.run()
    assert result.cancelled and not result.ok
    assert [m.status for m in result.members] == ["ok", "cancelled", "cancelled", "cancelled"]


def add_lightgbm_workflow(project: Project, data_path: str) -> None:
    """Read CSV → Split → LightGBM (10 trees) → Evaluate: a real, quick training workflow to sweep."""
    g = project.graph
    read = g.add_node("io.read_csv", {"path": data_path}, title="Read CSV").id
    split = g.add_node("features.split", {"test_fraction": 0.3, "stratify_by": "default"}, title="Split").id
    gbm = g.add_node("automl.lightgbm", {"label": "default", "n_estimators": 10, "early_stopping_rounds": 0},
                     title="LightGBM").id
    ev = g.add_node("evaluate.evaluate", {}, title="Evaluate").id
    g.add_edge(Edge(read, "table", split, "table"))
    g.add_edge(Edge(split, "train", gbm, "train"))
    g.add_edge(Edge(gbm, "model", ev, "model"))
    g.add_edge(Edge(split, "test", ev, "table"))


def test_members_run_on_a_real_dask_cluster(project, parts, dask_cluster):
    """Real LightGBM training and evaluation on the loopback Dask workers, one member per grid point."""
    add_lightgbm_workflow(project, str(parts[0]))
    spec = SweepSpec(grid={"LightGBM.num_leaves": [4, 8]}, primary_metric="auc")
    result = run_sweep(project, spec, scheduler_address=dask_cluster)
    assert result.ok, result.table.to_dicts()
    assert {"auc", "ks", "gini"} <= set(result.table.columns)
    assert all(0.5 < v <= 1 for v in result.table["auc"])
    trained = [r for r in _records(project, "LightGBM") if r["outcome"] == "done"]
    assert len(trained) == 2 and {r["executor"] for r in trained} == {"dask"}
    assert {r["settings"]["num_leaves"] for r in trained} == {4, 8}
    assert all("tcp://127.0.0.1" in r["host"] for r in trained)
    assert len([r for r in _records(project, "Split") if r["outcome"] == "done"]) == 1


def test_two_evaluations_with_one_title_keep_their_own_metric_columns(credit, parts):
    """A second "Score" node on the training part: its AUC must not overwrite the first one's."""
    g = credit.graph
    split = next(n.id for n in g.nodes.values() if n.title == "Split")
    first = next(n.id for n in g.nodes.values() if n.title == "Score")
    second = g.add_node("sweeptest.score", {}, title="Score").id
    g.add_edge(Edge(split, "train", second, "table"))
    credit.save()
    result = run_sweep(credit, SweepSpec(grid={"Read CSV.path": [str(parts[0]), str(parts[1])]}))
    assert result.ok
    columns = {c for c in result.table.columns if c.endswith(".auc")}
    assert columns == {f"Score [{first[:6]}].auc", f"Score [{second[:6]}].auc"}
    row = result.table.row(0, named=True)
    assert row[f"Score [{first[:6]}].auc"] != row[f"Score [{second[:6]}].auc"]  # test part vs training part
