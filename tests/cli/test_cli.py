"""The `ledgerflow` command end to end: new → run --json on arbitrary (Chinese, GBK) data, and every bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from engine.graph import Edge
from engine.project import Project
from resources.sampledata.credit import generate_applications, write_gbk_csv

LEDGERFLOW = str(Path(sys.executable).parent / "ledgerflow")
FAST_AUTOML = {"included_model_types": ["GBM"], "time_limit_s": 300}


def lf(*args: str, check_rc: int | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([LEDGERFLOW, *args], capture_output=True, text=True, timeout=600)
    if check_rc is not None:
        assert out.returncode == check_rc, f"rc={out.returncode}\nstdout:{out.stdout}\nstderr:{out.stderr}"
    return out


def node_by_type(project: Project, type_id: str) -> str:
    return next(n.id for n in project.graph.nodes.values() if n.type_id == type_id)


def set_settings(path: Path, type_id: str, changes: dict) -> None:
    project = Project.load(path)
    nid = node_by_type(project, type_id)
    project.graph.replace_settings(nid, {**project.graph.nodes[nid].settings, **changes})
    project.save()


@pytest.fixture(scope="module")
def gbk_data(tmp_path_factory) -> Path:
    """Credit data exported the way Chinese core-banking systems do: GBK, Chinese headers."""
    path = tmp_path_factory.mktemp("data") / "贷款申请.csv"
    write_gbk_csv(generate_applications(1500, seed=7), path)
    return path


@pytest.mark.slow
def test_new_and_run_on_gbk_data_with_chinese_columns_matches_autogluon(tmp_path, gbk_data):
    proj = tmp_path / "p"
    lf("new", str(proj), "--template", "credit-risk", "--data", str(gbk_data), "--label", "是否违约", check_rc=0)
    set_settings(proj, "automl.autogluon", FAST_AUTOML)
    out = lf("run", str(proj), "--json", check_rc=0)
    doc = json.loads(out.stdout)
    assert doc["ok"] and {n["status"] for n in doc["nodes"]} == {"done"}
    assert all(set(n) == {"id", "title", "type", "status", "cached", "duration_s", "error"} for n in doc["nodes"])
    metrics = doc["metrics"]["Evaluate"]
    assert {"auc", "ks", "gini"} <= set(metrics) and 0.6 < metrics["auc"] < 0.95
    predictions = pl.read_csv(proj / "outputs" / "predictions.csv")
    assert {"prediction", "probability", "是否违约", "reason_1", "reason_1_impact"} <= set(predictions.columns)
    export = doc["metrics"]["Export ONNX"]  # the template's ONNX export reports its parity figure and package
    assert 0 <= export["max_abs_diff"] <= 1e-5 and Path(export["package"]) == proj / "outputs" / "credit-risk-gbm"
    from nodes.export.package import verify_package

    verify_package(Path(export["package"]))
    assert {"auc", "ks"} <= set(doc["metrics"]["Evaluate scorecard"])

    # AutoGluon called directly on the very same prepared training table, scoring the test part prepared with the
    # training-fitted transform, gives the same AUC.
    from autogluon.tabular import TabularPredictor
    from sklearn.metrics import roc_auc_score

    from engine.scheduler import Session
    from nodes.features.fitted import apply_transform

    project = Project.load(proj)
    with Session(project) as s:
        split, woe = node_by_type(project, "features.split"), node_by_type(project, "features.binning")
        test = s.output(split, "test")
        train, transform = s.output(woe, "table"), s.output(woe, "transform")
    direct = TabularPredictor(label="是否违约", problem_type="binary", eval_metric="roc_auc", verbosity=0,
                              path=str(tmp_path / "direct"), learner_kwargs={"random_state": 42})
    direct.fit(train.to_pandas(), time_limit=300, presets="medium_quality", included_model_types=["GBM"])
    proba = direct.predict_proba(apply_transform(transform, test).drop("是否违约").to_pandas())[1].to_numpy()
    assert metrics["auc"] == pytest.approx(roc_auc_score(test["是否违约"].to_numpy(), proba), abs=1e-9)

    again = json.loads(lf("run", str(proj), "--json", check_rc=0).stdout)
    assert all(n["cached"] for n in again["nodes"]) and again["metrics"] == doc["metrics"]
    runs = json.loads(lf("runs", str(proj), "--json", check_rc=0).stdout)["records"]
    assert len(runs) == len(project.graph.nodes) == 14 and {r["outcome"] for r in runs} == {"done"}


@pytest.mark.slow
def test_run_sends_heavy_nodes_to_dask(tmp_path, dask_cluster):
    proj = tmp_path / "p"
    lf("new", str(proj), check_rc=0)  # the bundled sample data
    set_settings(proj, "automl.autogluon", FAST_AUTOML)
    doc = json.loads(lf("run", str(proj), "--json", "--scheduler", dask_cluster, check_rc=0).stdout)
    assert doc["ok"] and doc["metrics"]["Evaluate"]["auc"] > 0.6
    runs = json.loads(lf("runs", str(proj), "--json", check_rc=0).stdout)["records"]
    automl = next(r for r in runs if r["type_id"] == "automl.autogluon")
    assert automl["executor"] == "dask" and "tcp://127.0.0.1" in automl["host"]


@pytest.fixture
def small_project(tmp_path) -> Path:
    """The template, bound to a small CSV, reduced to Read + Split: fast to run."""
    data = tmp_path / "data.csv"
    data.write_text("客户号,收入,bad\n1,10,0\n2,20,1\n3,30,0\n4,40,1\n5,50,0\n6,60,1\n", encoding="utf-8")
    proj = tmp_path / "p"
    lf("new", str(proj), "--data", str(data), "--label", "bad", check_rc=0)
    project = Project.load(proj)
    for nid in [n.id for n in project.graph.nodes.values() if n.type_id not in ("io.read_csv", "features.split")]:
        project.graph.remove_node(nid)
    project.save()
    return proj


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*.tmp") if ".ledgerflow" not in p.parts]


def test_run_until_and_validate(small_project):
    doc = json.loads(lf("run", str(small_project), "--until", "Read applications", "--json", check_rc=0).stdout)
    assert [n["title"] for n in doc["nodes"]] == ["Read applications"] and doc["metrics"] == {}
    assert "valid (2 nodes)" in lf("validate", str(small_project), check_rc=0).stdout


def read_node_file(proj: Path) -> Path:
    return Path(Project.load(proj).graph.nodes[node_by_type(Project.load(proj), "io.read_csv")].settings["path"])


@pytest.mark.parametrize("content,expected", [
    (None, "File not found"),
    (b"", "is empty"),
    (b"a,bad\n1,0\n2,1,9\n", "line 3: found 3 fields but the header has 2"),
    ("name,bad\n张三,0\n李四,1\n".encode("gbk"), "is not valid utf-8 text"),
])
def test_bad_data_files_fail_the_reader_with_a_specific_message(small_project, content, expected):
    data = read_node_file(small_project)
    if content is None:
        data.unlink()
    else:
        data.write_bytes(content)
    if "utf-8" in expected:
        set_settings(small_project, "io.read_csv", {"encoding": "utf-8"})
    out = lf("run", str(small_project), "--json", check_rc=1)
    doc = json.loads(out.stdout)
    reader = next(n for n in doc["nodes"] if n["type"] == "io.read_csv")
    assert reader["status"] == "failed" and expected in reader["error"]
    if "utf-8" in expected:
        assert "line 2" in reader["error"] and "gbk" in reader["error"]
    assert next(n for n in doc["nodes"] if n["type"] == "features.split")["status"] == "skipped"
    assert no_temp_files(small_project)


def test_label_column_that_does_not_exist(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x,y\n1,0\n")
    out = lf("new", str(tmp_path / "p"), "--data", str(data), "--label", "target", check_rc=2)
    assert "Label column 'target' is not in" in out.stderr and "Columns are: x, y" in out.stderr
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob(".p.*"))


def test_label_with_a_single_class_fails_at_the_first_node_that_needs_two(tmp_path):
    data = tmp_path / "d.csv"
    pl.DataFrame({"x": list(range(40)), "y": [0] * 40}).write_csv(data)
    proj = tmp_path / "p"
    lf("new", str(proj), "--data", str(data), "--label", "y", check_rc=0)
    set_settings(proj, "features.split", {"stratify_by": None})
    doc = json.loads(lf("run", str(proj), "--json", check_rc=1).stdout)
    by_type = {n["type"]: n for n in doc["nodes"]}
    assert by_type["features.auto"]["status"] == "failed" and "1 distinct" in by_type["features.auto"]["error"]
    assert by_type["explore.profile"]["status"] == "failed" and "binary" in by_type["explore.profile"]["error"]
    assert by_type["automl.autogluon"]["status"] == "skipped"


def test_settings_out_of_range_block_the_run_naming_the_field(small_project):
    set_settings(small_project, "features.split", {"test_fraction": 1.5})
    out = lf("run", str(small_project), check_rc=2)
    assert "Split [test_fraction]" in out.stderr and "less than 1" in out.stderr
    val = json.loads(lf("validate", str(small_project), "--json", check_rc=1).stdout)
    assert val["issues"][0]["field"] == "test_fraction" and val["issues"][0]["node"] == "Split"


def test_cycle_unknown_node_newer_format_and_truncated_file(small_project):
    file = small_project / "project.lflow"
    project = Project.load(small_project)
    a, b = node_by_type(project, "io.read_csv"), node_by_type(project, "features.split")
    extra = project.graph.add_node("features.split", title="Loop").id
    project.graph.add_edge(Edge(b, "train", extra, "table"))
    project.save()
    doc = json.loads(file.read_text())
    doc["edges"].append({"from": {"node": extra, "port": "train"}, "to": {"node": b, "port": "table"}})
    file.write_text(json.dumps(doc))
    assert "cycle" in lf("run", str(small_project), check_rc=2).stderr

    doc = json.loads(file.read_text())
    doc["edges"] = doc["edges"][:1]
    doc["nodes"].append({"id": "x1", "type_id": "acme.scorer", "type_version": 1, "title": "Acme",
                         "settings": {}, "plugin": {"distribution": "acme", "version": "3"}})
    file.write_text(json.dumps(doc))
    out = lf("run", str(small_project), check_rc=2)
    assert "'acme.scorer' is not installed" in out.stderr and "acme 3" in out.stderr
    assert "acme.scorer" in lf("validate", str(small_project), check_rc=1).stdout

    doc["format_version"] = 99
    file.write_text(json.dumps(doc))
    assert "format 99" in lf("run", str(small_project), check_rc=2).stderr

    text = json.dumps(doc, indent=2)[:-40]
    file.write_text(text)
    out = lf("run", str(small_project), check_rc=2)
    assert "not valid JSON at line" in out.stderr and "column" in out.stderr
    assert file.read_text() == text
    del a


def test_nodes_lists_types_ports_and_settings():
    doc = json.loads(lf("nodes", "--json", check_rc=0).stdout)
    by_id = {n["type_id"]: n for n in doc["nodes"]}
    assert by_id["automl.autogluon"]["heavy"]
    assert by_id["automl.autogluon"]["inputs"] == {"train": "Table", "valid": "Table", "transform": "FittedTransform"}
    assert by_id["evaluate.evaluate"]["outputs"] == {"report": "Report"}
    assert "test_fraction" in by_id["features.split"]["settings"]["properties"]
    text = lf("nodes", check_rc=0).stdout
    assert "io.read_csv" in text and "test_fraction: number = 0.25" in text


def test_missing_project_is_a_clear_error(tmp_path):
    assert "does not exist" in lf("run", str(tmp_path / "nope"), check_rc=2).stderr
