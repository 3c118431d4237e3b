"""The three feature store nodes, run as the engine runs them (engine.testing.run_node), on a project folder."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from engine.featurestore import FeatureStore
from engine.fileio import FileFingerprints
from engine.ports import Report
from engine.sdk import FingerprintContext
from engine.testing import NodeFailed, run_node
from nodes.featurestore import GetFeatures, Materialize, RegisterFeatureView

D = datetime(2024, 6, 1)


def _balances() -> pl.DataFrame:
    return pl.DataFrame({"customer_id": [1, 1, 2, 3], "as_of": [D, D + timedelta(days=10), D, D + timedelta(days=3)],
                         "balance": [5.0, 6.0, 7.0, 8.0], "overdue": [0, 1, 0, 2]})


def _register(project: Path, **extra) -> dict:
    settings = {"store": "fs", "name": "balances", "entity": "customer_id", "timestamp": "as_of", **extra}
    return run_node(RegisterFeatureView, {"table": _balances()}, settings, project_dir=project)


def test_register_reports_the_view_and_records_lineage(tmp_path: Path):
    report: Report = _register(tmp_path, ttl_days=30, description="Month-end balances")["report"]
    assert report.metrics["rows"] == 4 and report.metrics["entities"] == 3 and report.metrics["version"] == 1
    assert report.metrics["first event time"] == str(D)
    assert report.tables["Features"]["feature"].to_list() == ["balance", "overdue"]  # every other column
    view = FeatureStore(tmp_path / "fs").view("balances")  # a relative store folder is inside the project
    assert view.ttl_days == 30 and view.description == "Month-end balances"
    assert view.lineage["project_dir"] == str(tmp_path) and view.lineage["node_id"] == "inline"
    assert view.lineage["node_title"] == "Register feature view" and view.lineage["input_rows"] == 4


def test_materialize_then_get_features(tmp_path: Path):
    registered = _register(tmp_path)
    out = run_node(Materialize, {"report": registered["report"]},
                   {"store": "fs", "until": (D + timedelta(days=5)).isoformat()}, project_dir=tmp_path)
    table = out["report"].tables["Entities written"]
    assert table.rows() == [("balances", 3)]
    with FeatureStore(tmp_path / "fs") as fs:
        assert fs.online_features(["balances:balance"], [{"customer_id": 1}]) == [{"customer_id": 1,
                                                                                   "balance": 5.0}]
    labels = pl.DataFrame({"customer_id": [1, 1, 2, 4], "label_time": [D + timedelta(days=9), D + timedelta(days=10),
                                                                        D - timedelta(days=1), D]})
    got = run_node(GetFeatures, {"entities": labels},
                   {"store": "fs", "features": ["balances:overdue"], "timestamp": "label_time"},
                   project_dir=tmp_path)["table"]
    assert got.columns == ["customer_id", "label_time", "overdue"]
    assert got["overdue"].to_list() == [0, 1, None, None]


def test_materialize_runs_without_an_upstream_report(tmp_path: Path):
    _register(tmp_path)
    out = run_node(Materialize, {}, {"store": "fs", "views": ["balances"]}, project_dir=tmp_path)
    assert out["report"].metrics["entities"] == 3


def test_get_features_fingerprint_follows_the_store(tmp_path: Path):
    settings = GetFeatures.Settings(store="fs", features=["balances"], timestamp="t")
    fctx = FingerprintContext(tmp_path, FileFingerprints())
    empty = GetFeatures.fingerprint(settings, fctx)
    _register(tmp_path)
    first = GetFeatures.fingerprint(settings, fctx)
    assert first != empty and GetFeatures.fingerprint(settings, fctx) == first  # stable while nothing changes
    # another view does not matter; new data for this one does
    run_node(RegisterFeatureView, {"table": _balances()},
             {"store": "fs", "name": "other", "entity": "customer_id", "timestamp": "as_of"}, project_dir=tmp_path)
    assert GetFeatures.fingerprint(settings, fctx) == first
    _register(tmp_path)
    assert GetFeatures.fingerprint(settings, fctx) != first


def test_register_receipt_is_the_view_id(tmp_path: Path):
    settings = RegisterFeatureView.Settings(store="fs", name="balances", entity="customer_id", timestamp="as_of")
    fctx = FingerprintContext(tmp_path, FileFingerprints())
    assert RegisterFeatureView.receipt(settings, fctx) is None
    _register(tmp_path)
    receipt = RegisterFeatureView.receipt(settings, fctx)
    _register(tmp_path)  # more data: the same view, nothing to redo
    assert receipt is not None and RegisterFeatureView.receipt(settings, fctx) == receipt


def test_unknown_view_and_feature_are_input_errors(tmp_path: Path):
    _register(tmp_path)
    labels = pl.DataFrame({"customer_id": [1], "t": [D]})
    with pytest.raises(NodeFailed, match="Unknown feature view 'loans'. Known views: balances") as info:
        run_node(GetFeatures, {"entities": labels}, {"store": "fs", "features": ["loans"], "timestamp": "t"},
                 project_dir=tmp_path)
    assert info.value.input_error
    with pytest.raises(NodeFailed, match="has no feature 'income'"):
        run_node(GetFeatures, {"entities": labels}, {"store": "fs", "features": ["balances:income"],
                                                      "timestamp": "t"}, project_dir=tmp_path)
    with pytest.raises(NodeFailed, match="Unknown feature view 'loans'"):
        run_node(Materialize, {}, {"store": "fs", "views": ["loans"]}, project_dir=tmp_path)


def test_missing_columns_and_wrong_types_are_input_errors(tmp_path: Path):
    _register(tmp_path)
    with pytest.raises(NodeFailed, match="keyed by 'customer_id', but the entity table has no such column"):
        run_node(GetFeatures, {"entities": pl.DataFrame({"cid": [1], "t": [D]})},
                 {"store": "fs", "features": ["balances"], "timestamp": "t"}, project_dir=tmp_path)
    with pytest.raises(NodeFailed, match="Label time column: column 'when' is not in the table"):
        run_node(GetFeatures, {"entities": pl.DataFrame({"customer_id": [1], "t": [D]})},
                 {"store": "fs", "features": ["balances"], "timestamp": "when"}, project_dir=tmp_path)
    with pytest.raises(NodeFailed, match="'t' is String, not a date or datetime"):
        run_node(GetFeatures, {"entities": pl.DataFrame({"customer_id": [1], "t": ["2024-06-01"]})},
                 {"store": "fs", "features": ["balances"], "timestamp": "t"}, project_dir=tmp_path)
    with pytest.raises(NodeFailed, match="Event time column: column 'day' is not in the table"):
        _register(tmp_path, timestamp="day")
    with pytest.raises(NodeFailed, match="Event time column 'balance' is Float64, not a date or datetime"):
        _register(tmp_path, timestamp="balance")


@pytest.mark.parametrize("name", ["a/b", "..", "../etc", "x.y"])
def test_path_like_view_names_are_refused(tmp_path: Path, name: str):
    with pytest.raises(NodeFailed, match="is not allowed") as info:
        _register(tmp_path, name=name)
    assert info.value.input_error
    assert not (tmp_path / "fs").exists()


def test_redis_password_in_the_setting_is_refused():
    with pytest.raises(ValidationError, match="LEDGERFLOW_REDIS_PASSWORD"):
        Materialize.Settings(online="redis://:s3cret@127.0.0.1:6379/0")
    with pytest.raises(ValidationError, match="LEDGERFLOW_REDIS_PASSWORD"):
        GetFeatures.Settings(online="redis://user:s3cret@127.0.0.1:6379/0", features=["v"], timestamp="t")
    assert Materialize.Settings(online="redis://127.0.0.1:6379/0").online == "redis://127.0.0.1:6379/0"
    with pytest.raises(ValidationError, match="redis:// URL"):
        Materialize.Settings(online="http://127.0.0.1")


def test_materialize_into_redis_from_the_node(tmp_path: Path, redis_url: str):
    _register(tmp_path)
    run_node(Materialize, {}, {"store": "fs", "online": redis_url}, project_dir=tmp_path)
    with FeatureStore(tmp_path / "fs", online=redis_url) as fs:
        got = fs.online_features(["balances"], [{"customer_id": 1}, {"customer_id": 3}])
    assert got == [{"customer_id": 1, "balance": 6.0, "overdue": 1}, {"customer_id": 3, "balance": 8.0, "overdue": 2}]


def test_bad_until_is_refused():
    with pytest.raises(ValidationError, match="not an ISO date/time"):
        Materialize.Settings(until="last tuesday")
