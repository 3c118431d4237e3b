"""`ledgerflow sweep` end to end on a real LightGBM project: the table as JSON, text and CSV; failures; bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from engine.project import Project
from engine.templates import SAMPLE_DATA
from tests.engine.test_sweep import add_lightgbm_workflow

ROOT = Path(__file__).resolve().parents[2]


def sweep(*args: str, check_rc: int) -> subprocess.CompletedProcess:
    """`ledgerflow sweep …` in its own process."""
    out = subprocess.run([sys.executable, "-m", "engine.cli", "sweep", *args], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == check_rc, f"rc={out.returncode}\nstdout:{out.stdout}\nstderr:{out.stderr}"
    return out


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory) -> Path:
    """Read CSV → Split → LightGBM → Evaluate on the sample credit data, saved as a project folder."""
    folder = tmp_path_factory.mktemp("sweep") / "credit"
    (folder / "data").mkdir(parents=True)
    pl.read_csv(SAMPLE_DATA).drop("customer_id", "application_date").head(1200).write_csv(folder / "data" / "c.csv")
    project = Project.new(folder, "Sweep CLI")
    add_lightgbm_workflow(project, "data/c.csv")
    project.save()
    return folder


def _spec(path: Path, doc: dict) -> str:
    path.write_text(json.dumps(doc), "utf-8")
    return str(path)


def test_sweep_prints_and_writes_one_comparison_table(project_dir, tmp_path):
    spec = _spec(tmp_path / "s.json", {"grid": {"LightGBM.num_leaves": [4, 8], "LightGBM.learning_rate": [0.1, 0.3]},
                                        "primary_metric": "auc", "max_parallel": 1})
    out = sweep(str(project_dir), "--spec", spec, "--max-parallel", "2", "--out", str(tmp_path / "t.csv"), "--json",
                check_rc=0)
    doc = json.loads(out.stdout)
    assert doc["ok"] and not doc["cancelled"] and doc["out"] == str(tmp_path / "t.csv")
    rows = doc["members"]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert {(r["LightGBM.num_leaves"], r["LightGBM.learning_rate"]) for r in rows} == \
        {(4, 0.1), (4, 0.3), (8, 0.1), (8, 0.3)}
    assert all(0.5 < r["auc"] <= 1 and r["gini"] == pytest.approx(2 * r["auc"] - 1, abs=1e-6) for r in rows)
    assert [r["auc"] for r in rows] == sorted((r["auc"] for r in rows), reverse=True)
    written = pl.read_csv(tmp_path / "t.csv")
    assert written["member"].to_list() == [r["member"] for r in rows] and "ks" in written.columns
    assert "Sweep" in out.stderr and "m001" in out.stderr  # progress on stderr, stdout is only the JSON

    text = sweep(str(project_dir), "--spec", spec, check_rc=0)  # all cached now: the same table, as text
    assert "member" in text.stdout and "auc" in text.stdout and rows[0]["member"] in text.stdout

    runs = subprocess.run([sys.executable, "-m", "engine.cli", "runs", str(project_dir), "--json", "--limit", "500"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    trained = [r for r in json.loads(runs.stdout)["records"] if r["node_title"] == "LightGBM"]
    assert len(trained) == 4  # the second sweep trained nothing: its members were cache hits


def test_a_failing_member_fails_the_command_but_not_the_others(project_dir, tmp_path):
    spec = _spec(tmp_path / "s.json", {"grid": {"LightGBM.num_leaves": [4, 1]},
                                        "datasets": {"Read CSV.path": ["data/c.csv", "data/missing.csv"]}})
    doc = json.loads(sweep(str(project_dir), "--spec", spec, "--json", "-q", check_rc=1).stdout)
    by = {(r["dataset"], r["LightGBM.num_leaves"]): r for r in doc["members"]}
    assert by[("data/c.csv", 4)]["status"] == "ok" and by[("data/c.csv", 4)]["auc"] > 0.5
    assert by[("data/c.csv", 1)]["status"] == "invalid" and "num_leaves" in by[("data/c.csv", 1)]["error"]
    assert by[("data/missing.csv", 4)]["status"] == "failed" and "missing.csv" in by[("data/missing.csv", 4)]["error"]


def test_bad_input_is_a_message_not_a_traceback(project_dir, tmp_path):
    cases = [
        (["--spec", _spec(tmp_path / "a.json", {"grid": {"Nope.x": [1]}})], "No node 'Nope'"),
        (["--spec", str(tmp_path / "absent.json")], "Cannot read the sweep spec"),
        (["--spec", _spec(tmp_path / "b.json", {"grid": {"LightGBM.num_leaves": [4]}}), "--executor", "dask"],
         "--executor dask needs --scheduler"),
        (["--spec", _spec(tmp_path / "c.json", {"grid": {"LightGBM.num_leaves": [4]}}), "--out",
          str(tmp_path / "t.xlsx")], ".csv or .parquet"),
    ]
    for args, message in cases:
        out = sweep(str(project_dir), *args, check_rc=2)
        assert message in out.stderr and "Traceback" not in out.stderr
    out = sweep(str(project_dir), "--spec", str(tmp_path / "a.json"), "--max-parallel", "0", check_rc=2)
    assert "at least 1" in out.stderr
