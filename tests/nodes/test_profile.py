"""The Profile node end to end: statistics, target analysis, alerts (incl. personal data) and the report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.ports import Report
from engine.testing import NodeFailed, run_node
from nodes.explore.profile import Profile

BIN = Path(sys.executable).parent


def _id_number(base17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(base17, weights)) % 11]
    return base17 + check


def bank_table(rows: int = 3000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(9000, 2500, rows)
    default = (rng.random(rows) < 1 / (1 + np.exp((income - 7000) / 900))).astype(int)
    ids = [_id_number(f"110105{1960 + i % 40}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}") for i in range(rows)]
    return pl.DataFrame({
        "customer_id": ids,
        "mobile": [f"+86 138-{i % 10000:04d}-{(i * 7) % 10000:04d}" for i in range(rows)],
        "income": pl.Series(np.where(rng.random(rows) < 0.4, np.nan, income)).fill_nan(None),
        "noise": rng.normal(size=rows),
        "branch": rng.choice(["north", "south", "east"], rows),
        "country": ["CN"] * rows,
        "leak": default * 100 + rng.integers(0, 5, rows),  # the outcome itself, barely disguised
        "default": default,
    })


def test_profile_reports_statistics_target_power_and_alerts():
    out = run_node(Profile, {"table": bank_table()}, {"target": "default"})
    report: Report = out["report"]
    alerts = out["alerts"]
    kinds = {(r["kind"], r["column"]) for r in alerts.iter_rows(named=True)}
    assert ("constant", "country") in kinds
    assert ("missing", "income") in kinds
    assert ("leakage", "leak") in kinds
    assert ("pii", "customer_id") in kinds and ("pii", "mobile") in kinds
    sens = {r["column"]: r["sensitivity"] for r in alerts.iter_rows(named=True) if r["kind"] == "pii"}
    assert sens == {"customer_id": "C3", "mobile": "C2"}
    assert not any(_id_number("11010519600101000") in m for m in alerts["message"])  # examples are masked
    target = report.tables["Against the target"]
    ivs = dict(zip(target["column"], target["iv"]))
    assert ivs["income"] > 0.3 > ivs["noise"]
    assert "default" not in ivs
    assert {"Missing values", "Distributions", "Information value"} <= set(report.figures)
    assert report.metrics["rows"] == 3000
    html = report.to_html()
    assert "customer_id" in html and "data:image/png;base64" in html


def test_duplicates_and_sampling_are_reported():
    df = pl.concat([bank_table(1500), bank_table(1500)])  # every row twice
    out = run_node(Profile, {"table": df}, {"max_rows": 1000})
    report: Report = out["report"]
    assert any("sample of 1,000 of the 3,000 rows" in n for n in report.notes)
    assert "duplicates" in set(out["alerts"]["kind"])


def test_bad_input_gets_a_clear_message():
    with pytest.raises(NodeFailed, match="no columns"):
        run_node(Profile, {"table": pl.DataFrame()}, {})
    with pytest.raises(NodeFailed, match="missing_col"):
        run_node(Profile, {"table": bank_table(50)}, {"target": "missing_col"})
    with pytest.raises(NodeFailed, match="branch"):
        run_node(Profile, {"table": bank_table(50)}, {"target": "branch"})  # three classes: not binary
    empty = bank_table(10).head(0)
    out = run_node(Profile, {"table": empty}, {})  # an empty table profiles without crashing
    assert out["report"].metrics["rows"] == 0


def test_profile_command_prints_alerts_json_and_html(tmp_path):
    csv = tmp_path / "bank.csv"
    bank_table(800).write_csv(csv)
    html = tmp_path / "profile.html"
    proc = subprocess.run([str(BIN / "ledgerflow"), "profile", str(csv), "--target", "default", "--json",
                           "--html", str(html)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["rows"] == 800 and doc["target"] == "default"
    assert {c["name"] for c in doc["column_stats"]} >= {"income", "branch", "customer_id"}
    pii = [a for a in doc["alerts"] if a["kind"] == "pii"]
    assert {a["column"]: a["sensitivity"] for a in pii} == {"customer_id": "C3", "mobile": "C2"}
    assert all({"kind", "column", "sensitivity", "message"} <= set(a) for a in doc["alerts"])
    assert html.read_text("utf-8").startswith("<!doctype html>")
    text = subprocess.run([str(BIN / "ledgerflow"), "profile", str(csv)], capture_output=True, text=True,
                          timeout=300)
    assert text.returncode == 0 and "pii" in text.stdout and "800 rows" in text.stdout


def test_profile_command_reports_a_missing_file(tmp_path):
    proc = subprocess.run([str(BIN / "ledgerflow"), "profile", str(tmp_path / "nope.csv")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "nope.csv" in proc.stderr
