"""`ledgerflow features views|online` against a real feature store folder."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl

from engine.featurestore import FeatureStore, FeatureView
from tests.cli.test_cli import lf


def _store(root: Path) -> None:
    data = pl.DataFrame({"customer_id": ["C1", "C1", "C2"],
                         "ts": [datetime(2024, 1, 1), datetime(2024, 3, 1), datetime(2024, 2, 1)],
                         "spend_30d": [10.0, 30.0, 5.5], "城市": ["上海", "北京", "深圳"]})
    with FeatureStore(root) as fs:
        fs.register(FeatureView(name="客户消费", entity="customer_id", timestamp="ts",
                                features=("spend_30d", "城市")), data)
        fs.materialize(until=datetime(2024, 12, 31))


def test_views_and_online_lookup(tmp_path: Path):
    _store(tmp_path / "fs")
    views = json.loads(lf("features", "views", "--store", str(tmp_path / "fs"), "--json", check_rc=0).stdout)
    assert [v["name"] for v in views] == ["客户消费"] and views[0]["features"] == ["spend_30d", "城市"]
    text = lf("features", "views", "--store", str(tmp_path / "fs"), check_rc=0).stdout
    assert "客户消费" in text and "customer_id" in text
    got = json.loads(lf("features", "online", "客户消费", "--entity", "customer_id=C1", "--store",
                        str(tmp_path / "fs"), "--json", check_rc=0).stdout)
    assert got["spend_30d"] == 30.0 and got["城市"] == "北京"  # the latest value as of materialization


def test_errors_are_messages(tmp_path: Path):
    _store(tmp_path / "fs")
    out = lf("features", "online", "nope", "--entity", "customer_id=C1", "--store", str(tmp_path / "fs"), check_rc=2)
    assert "nope" in out.stderr and "Traceback" not in out.stderr
    out = lf("features", "online", "客户消费", "--entity", "C1", "--store", str(tmp_path / "fs"), check_rc=2)
    assert "COLUMN=VALUE" in out.stderr
