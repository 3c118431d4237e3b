"""Point-in-time details and bad input on the FeatureStore API (SQLite only: the backend plays no part here)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from engine.featurestore import FeatureStore, FeatureStoreError, FeatureView

D = datetime(2024, 3, 1)


def _data() -> pl.DataFrame:
    return pl.DataFrame({"cid": [1, 1, 2], "ts": [D, D + timedelta(days=2), D], "amount": [10.0, 20.0, 30.0]})


@pytest.fixture
def fs(sqlite_store: FeatureStore) -> FeatureStore:
    sqlite_store.register(FeatureView("txn", "cid", "ts", ("amount",)), _data())
    return sqlite_store


def test_ttl_boundary_is_inclusive(sqlite_store: FeatureStore):
    sqlite_store.register(FeatureView("txn", "cid", "ts", ("amount",), ttl_days=1.0), _data())
    labels = pl.DataFrame({"cid": [1, 1, 1], "at": [D + timedelta(days=1), D + timedelta(days=1, microseconds=1),
                                                     D + timedelta(days=3)]})
    out = sqlite_store.historical_features(labels, ["txn"], timestamp="at")
    assert out["amount"].to_list() == [10.0, None, 20.0]


def test_dates_are_midnight_and_zoned_times_are_compared_in_utc(sqlite_store: FeatureStore):
    data = pl.DataFrame({"cid": ["a", "a"], "day": [date(2024, 1, 1), date(2024, 1, 2)], "x": [1, 2]})
    sqlite_store.register(FeatureView("daily", "cid", "day", ("x",)), data)
    # 2024-01-02 07:59 in Shanghai is 2024-01-01 23:59 UTC: still before the second day's midnight
    labels = pl.DataFrame({"cid": ["a", "a", "a"],
                           "at": [datetime(2024, 1, 2, 7, 59), datetime(2024, 1, 2, 8, 0), datetime(2023, 12, 31)]})
    labels = labels.with_columns(pl.col("at").dt.replace_time_zone("Asia/Shanghai"))
    assert sqlite_store.historical_features(labels, ["daily"], timestamp="at")["x"].to_list() == [1, 2, None]
    day_labels = pl.DataFrame({"cid": ["a"], "at": [date(2024, 1, 2)]})  # a date label: midnight, inclusive
    assert sqlite_store.historical_features(day_labels, ["daily"], timestamp="at")["x"].to_list() == [2]


def test_feature_name_clashing_with_an_entity_table_column_is_prefixed(fs: FeatureStore):
    labels = pl.DataFrame({"cid": [1], "at": [D + timedelta(days=5)], "amount": [0.0]})
    out = fs.historical_features(labels, ["txn"], timestamp="at")
    assert out.columns == ["cid", "at", "amount", "txn__amount"]
    assert out["txn__amount"].to_list() == [20.0]


def test_string_keys_against_categorical_and_int_widths_are_cast(fs: FeatureStore):
    labels = pl.DataFrame({"cid": [2, 1], "at": [D, D + timedelta(days=2)]}, schema={"cid": pl.UInt8,
                                                                                     "at": pl.Datetime})
    assert fs.historical_features(labels, ["txn"], timestamp="at")["amount"].to_list() == [30.0, 20.0]
    fs.register(FeatureView("named", "who", "ts", ("v",)), pl.DataFrame({"who": ["x"], "ts": [D], "v": [1]}))
    cat = pl.DataFrame({"who": ["x", "y"], "at": [D, D]}, schema={"who": pl.Categorical, "at": pl.Datetime})
    assert fs.historical_features(cat, ["named"], timestamp="at")["v"].to_list() == [1, None]


def test_all_null_keys_and_an_empty_entity_table(fs: FeatureStore):
    nulls = pl.DataFrame({"cid": [None, None], "at": [D, None]})
    assert fs.historical_features(nulls, ["txn"], timestamp="at")["amount"].to_list() == [None, None]
    empty = pl.DataFrame({"cid": [], "at": []}, schema={"cid": pl.Int64, "at": pl.Datetime})
    out = fs.historical_features(empty, ["txn"], timestamp="at")
    assert out.height == 0 and out.columns == ["cid", "at", "amount"]


def test_key_type_mismatch_names_both_types(fs: FeatureStore):
    labels = pl.DataFrame({"cid": ["1"], "at": [D]})
    with pytest.raises(FeatureStoreError, match="'cid' is String in the entity table but Int64 in the feature view"):
        fs.historical_features(labels, ["txn"], timestamp="at")


def test_unknown_view_lists_known_ones(fs: FeatureStore):
    labels = pl.DataFrame({"cid": [1], "at": [D]})
    with pytest.raises(FeatureStoreError, match="Unknown feature view 'nope'. Known views: txn"):
        fs.historical_features(labels, ["nope"], timestamp="at")
    with pytest.raises(FeatureStoreError, match="Unknown feature view 'nope'"):
        fs.online_features(["nope:x"], [{"cid": 1}])
    with pytest.raises(FeatureStoreError, match="Unknown feature view"):
        fs.view("nope")


def test_feature_not_in_view_lists_its_features(fs: FeatureStore):
    with pytest.raises(FeatureStoreError, match="has no feature 'income'. Its features are: amount"):
        fs.historical_features(pl.DataFrame({"cid": [1], "at": [D]}), ["txn:income"], timestamp="at")


def test_entity_table_without_the_entity_column(fs: FeatureStore):
    with pytest.raises(FeatureStoreError, match="keyed by 'cid', but the entity table has no such column"):
        fs.historical_features(pl.DataFrame({"customer": [1], "at": [D]}), ["txn"], timestamp="at")


def test_label_time_must_be_a_date_or_datetime(fs: FeatureStore):
    with pytest.raises(FeatureStoreError, match="'at' is String, not a date or datetime"):
        fs.historical_features(pl.DataFrame({"cid": [1], "at": ["2024-03-01"]}), ["txn"], timestamp="at")
    with pytest.raises(FeatureStoreError, match="no label time column 'when'"):
        fs.historical_features(pl.DataFrame({"cid": [1], "at": [D]}), ["txn"], timestamp="when")


@pytest.mark.parametrize("name", ["a/b", "..", "../x", "a.b", "", "x" * 65, "has space", "a\\b"])
def test_view_names_that_could_be_paths_are_refused(sqlite_store: FeatureStore, name: str):
    with pytest.raises(FeatureStoreError, match="is not allowed"):
        sqlite_store.register(FeatureView(name, "cid", "ts", ("amount",)), _data())
    assert not (sqlite_store.root / "registry.json").exists()


def test_cjk_view_names_work_and_never_become_paths(sqlite_store: FeatureStore):
    view = sqlite_store.register(FeatureView("客户_余额", "cid", "ts", ("amount",)), _data())
    assert view.name == "客户_余额"
    entry = json.loads((sqlite_store.root / "registry.json").read_text("utf-8"))["views"]["客户_余额"]
    folders = [p.name for p in (sqlite_store.root / "offline").iterdir()]
    assert folders == [entry["id"]] and len(entry["id"]) == 32


def test_event_time_column_must_be_temporal_and_keys_int_or_text(sqlite_store: FeatureStore):
    bad_ts = _data().with_columns(pl.col("ts").cast(pl.String))
    with pytest.raises(FeatureStoreError, match="Event time column 'ts' is String"):
        sqlite_store.register(FeatureView("txn", "cid", "ts", ("amount",)), bad_ts)
    bad_key = _data().with_columns(pl.col("cid").cast(pl.Float64))
    with pytest.raises(FeatureStoreError, match="entity keys must be integers or text"):
        sqlite_store.register(FeatureView("txn", "cid", "ts", ("amount",)), bad_key)
    with pytest.raises(FeatureStoreError, match="Feature column 'income' is not in the table"):
        sqlite_store.register(FeatureView("txn", "cid", "ts", ("income",)), _data())


def test_declared_dtypes_cast_or_refuse(sqlite_store: FeatureStore):
    data = pl.DataFrame({"cid": [1], "ts": [D], "n": [3], "s": ["x"]})
    view = sqlite_store.register(FeatureView("t", "cid", "ts", ("n", "s"), dtypes={"n": "Float32"}), data)
    assert view.dtypes == {"n": "Float32", "s": "String"}
    assert sqlite_store.offline("t").collect()["n"].dtype == pl.Float32
    with pytest.raises(FeatureStoreError, match="cannot be converted to Int64"):
        sqlite_store.register(FeatureView("t", "cid", "ts", ("n", "s"), dtypes={"s": "Int64"}), data)


def test_rows_with_null_key_or_time_are_dropped_and_counted(sqlite_store: FeatureStore):
    data = pl.DataFrame({"cid": [1, None, 2], "ts": [D, D, None], "x": [1, 2, 3]})
    view = sqlite_store.register(FeatureView("t", "cid", "ts", ("x",)), data)
    assert view.lineage["dropped_null_key_or_time_rows"] == 2
    assert sqlite_store.offline("t").collect()["x"].to_list() == [1]


def test_empty_feature_list_means_every_other_column(sqlite_store: FeatureStore):
    view = sqlite_store.register(FeatureView("t", "cid", "ts", ()), _data().with_columns(y=pl.lit(1)))
    assert view.features == ("amount", "y")


def test_unknown_online_setting_is_refused(tmp_path):
    fs = FeatureStore(tmp_path, online="postgres://x")
    fs.register(FeatureView("t", "cid", "ts", ("amount",)), _data())
    with pytest.raises(FeatureStoreError, match="use empty or 'sqlite'"):
        fs.materialize()


def test_default_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_FEATURE_STORE", str(tmp_path / "shared"))
    assert FeatureStore.default_root() == tmp_path / "shared"
    monkeypatch.delenv("LEDGERFLOW_FEATURE_STORE")
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    assert FeatureStore.default_root() == tmp_path / "home" / "featurestore"


def test_a_tampered_registry_id_is_never_used_as_a_path(fs: FeatureStore):
    path = fs.root / "registry.json"
    doc = json.loads(path.read_text("utf-8"))
    doc["views"]["txn"]["id"] = "../../etc"
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(FeatureStoreError, match="malformed view id"):
        fs.offline("txn")
