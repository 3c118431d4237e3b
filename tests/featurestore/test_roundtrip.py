"""Register, read back, materialize and look up, against SQLite and a real Redis server (same tests for both)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from engine.featurestore import FeatureStore, FeatureStoreError, FeatureView

D = datetime(2024, 3, 1)


def _txns() -> pl.DataFrame:
    return pl.DataFrame({
        "customer_id": [1, 1, 2, 2, 3, 1],
        "ts": [D, D + timedelta(days=2), D + timedelta(days=1), D + timedelta(days=5), D + timedelta(days=9),
               D + timedelta(days=4)],
        "balance": [100.0, 150.0, 20.0, 25.0, 7.5, 175.0],
        "segment": ["a", "a", "b", "c", "b", "d"],
    })


def test_register_then_offline_reads_the_input_back(store: FeatureStore):
    data = _txns()
    view = store.register(FeatureView("balances", "customer_id", "ts", ("balance", "segment")), data)
    assert view.version == 1
    assert view.dtypes == {"balance": "Float64", "segment": "String"}
    assert view.lineage["input_rows"] == 6 and len(view.lineage["content_sha256"]) == 64
    back = store.offline("balances").collect()
    assert back.sort("customer_id", "ts").equals(data.sort("customer_id", "ts"))
    assert [v.name for v in store.views()] == ["balances"]


def test_materialize_serves_the_latest_value_as_of_until(store: FeatureStore):
    store.register(FeatureView("balances", "customer_id", "ts", ("balance", "segment")), _txns())
    written = store.materialize(until=D + timedelta(days=3))
    assert written == {"balances": 2}  # customer 3's only row is later than `until`
    rows = store.online_features(["balances"], [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3},
                                                {"customer_id": 99}])
    assert rows == [{"customer_id": 1, "balance": 150.0, "segment": "a"},
                    {"customer_id": 2, "balance": 20.0, "segment": "b"},
                    {"customer_id": 3, "balance": None, "segment": None},
                    {"customer_id": 99, "balance": None, "segment": None}]
    # one row, one feature: the fast path returns the same value
    assert store.online_features(["balances:balance"], [{"customer_id": 1}]) == [{"customer_id": 1,
                                                                                  "balance": 150.0}]


def test_newer_data_and_rematerialize_update_the_online_value(store: FeatureStore):
    view = FeatureView("balances", "customer_id", "ts", ("balance", "segment"))
    store.register(view, _txns())
    store.materialize()
    assert store.online_features(["balances:balance"], [{"customer_id": 1}])[0]["balance"] == 175.0
    newer = pl.DataFrame({"customer_id": [1, 2], "ts": [D + timedelta(days=30), D + timedelta(days=5)],
                          "balance": [999.0, 26.0], "segment": ["z", "c"]})
    assert store.register(view, newer).version == 1  # same schema: an append
    # the online store only changes on materialize
    assert store.online_features(["balances:balance"], [{"customer_id": 1}])[0]["balance"] == 175.0
    assert store.materialize(["balances"]) == {"balances": 3}
    got = store.online_features(["balances:balance"], [{"customer_id": 1}, {"customer_id": 2}])
    assert [r["balance"] for r in got] == [999.0, 26.0]  # customer 2: a rewrite of the same (entity, ts) wins
    offline = store.offline("balances").collect()
    assert offline.height == 7 and offline.filter(pl.col("customer_id") == 2)["balance"].sort().to_list() == [20.0,
                                                                                                             26.0]


def test_rematerialize_with_an_earlier_until_goes_back(store: FeatureStore):
    store.register(FeatureView("balances", "customer_id", "ts", ("balance",)), _txns())
    store.materialize(until=D + timedelta(days=10))
    assert store.materialize(until=D + timedelta(hours=12)) == {"balances": 1}
    got = store.online_features(["balances"], [{"customer_id": 1}, {"customer_id": 2}])
    assert [r["balance"] for r in got] == [100.0, None]


def test_online_ttl_is_measured_from_now(store: FeatureStore):
    now = datetime.now(UTC).replace(tzinfo=None)
    data = pl.DataFrame({"cid": ["old", "new"], "ts": [now - timedelta(days=3), now - timedelta(hours=1)],
                         "score": [1, 2]})
    store.register(FeatureView("scores", "cid", "ts", ("score",), ttl_days=1.0), data)
    store.materialize()
    got = store.online_features(["scores"], [{"cid": "old"}, {"cid": "new"}])
    assert got == [{"cid": "old", "score": None}, {"cid": "new", "score": 2}]
    assert store.online_features(["scores"], [{"cid": "old"}]) == [{"cid": "old", "score": None}]


def test_many_keys_and_two_views_in_one_lookup(store: FeatureStore):
    n = 1200  # more than one read chunk
    ids = list(range(n))
    store.register(FeatureView("v1", "cid", "ts", ("x",)),
                   pl.DataFrame({"cid": ids, "ts": [D] * n, "x": [i * 2 for i in ids]}))
    store.register(FeatureView("v2", "acct", "ts", ("x", "y")),
                   pl.DataFrame({"acct": [f"A{i}" for i in ids], "ts": [D] * n, "x": ids, "y": [str(i) for i in ids]}))
    assert store.materialize() == {"v1": n, "v2": n}
    rows = [{"cid": i, "acct": f"A{i + 1}"} for i in ids]
    got = store.online_features(["v1", "v2"], rows)
    assert len(got) == n
    for i, r in enumerate(got):
        last = i + 1 == n  # A{n} does not exist
        assert r == {"cid": i, "acct": f"A{i + 1}", "v1__x": 2 * i, "v2__x": None if last else i + 1,
                     "y": None if last else str(i + 1)}


def test_typed_values_come_back_typed(store: FeatureStore):
    data = pl.DataFrame({
        "cid": [7], "ts": [D],
        "opened": [date(2019, 5, 4)], "seen": [datetime(2024, 2, 29, 13, 45, 1, 123456)],
        "limit": [Decimal("1234.50")], "tags": [["x", "y"]], "flag": [True], "name": ["王五"],
    }, schema_overrides={"limit": pl.Decimal(10, 2)})
    store.register(FeatureView("typed", "cid", "ts", ("opened", "seen", "limit", "tags", "flag", "name")), data)
    store.materialize()
    (got,) = store.online_features(["typed"], [{"cid": 7}])
    assert got == {"cid": 7, "opened": date(2019, 5, 4), "seen": datetime(2024, 2, 29, 13, 45, 1, 123456),
                   "limit": Decimal("1234.50"), "tags": ["x", "y"], "flag": True, "name": "王五"}


def test_schema_change_bumps_the_version_and_replaces_the_data(store: FeatureStore):
    store.register(FeatureView("balances", "customer_id", "ts", ("balance",)), _txns())
    store.materialize()
    changed = store.register(FeatureView("balances", "customer_id", "ts", ("balance", "segment")),
                             _txns().head(2))
    assert changed.version == 2
    assert store.offline("balances").collect().height == 2
    # the online values of version 1 are not served for version 2 before it is materialized
    assert store.online_features(["balances:segment"], [{"customer_id": 1}]) == [{"customer_id": 1,
                                                                                  "segment": None}]
    store.materialize()
    assert store.online_features(["balances"], [{"customer_id": 1}]) == [{"customer_id": 1, "balance": 150.0,
                                                                          "segment": "a"}]


def test_a_second_store_object_sees_registrations_made_elsewhere(store: FeatureStore, online: str | None):
    other = FeatureStore(store.root, online=online)
    try:
        assert other.views() == []
        store.register(FeatureView("balances", "customer_id", "ts", ("balance",)), _txns())
        store.materialize()
        assert other.online_features(["balances"], [{"customer_id": 3}]) == [{"customer_id": 3, "balance": 7.5}]
        assert [v.name for v in other.views()] == ["balances"]
    finally:
        other.close()


def test_missing_entity_key_in_a_lookup_row_is_an_error(store: FeatureStore):
    store.register(FeatureView("balances", "customer_id", "ts", ("balance",)), _txns())
    store.materialize()
    with pytest.raises(FeatureStoreError, match="row 2 has no key 'customer_id'"):
        store.online_features(["balances"], [{"customer_id": 1}, {"cust": 2}])


def test_redis_password_never_appears_in_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGERFLOW_REDIS_PASSWORD", raising=False)
    fs = FeatureStore(tmp_path, online="redis://:hunter2secret@127.0.0.1:1/0")  # nothing listens on port 1
    fs.register(FeatureView("balances", "customer_id", "ts", ("balance",)), _txns())
    with pytest.raises(FeatureStoreError) as info:
        fs.materialize()
    assert "hunter2secret" not in str(info.value) and "redis://:***@127.0.0.1:1/0" in str(info.value)


def test_redis_wrong_password_from_the_environment_is_refused(tmp_path, redis_url, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_REDIS_PASSWORD", "not-the-password")
    fs = FeatureStore(tmp_path, online=redis_url)
    fs.register(FeatureView("balances", "customer_id", "ts", ("balance",)), _txns())
    with pytest.raises(FeatureStoreError, match="Cannot reach the Redis online store") as info:
        fs.materialize()
    assert "not-the-password" not in str(info.value)
