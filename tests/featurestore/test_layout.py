"""Storage layout details behind the fast paths: sorted deduplicated parts, the overlap flag, legacy data, and the
online store's one-probe lookups (ttl in SQL, subsets of a view, several entities, schema changes, old layouts)."""
from __future__ import annotations

import json
import math
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from engine.featurestore import FeatureStore, FeatureView
from engine.featurestore.offline import part_paths

D = datetime(2024, 3, 1)


def _batch(cids: list[int], days: list[float], xs: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"cid": cids, "ts": [D + timedelta(days=d) for d in days], "x": xs})


def _entry(fs: FeatureStore, name: str) -> dict:
    return json.loads((fs.root / "registry.json").read_text("utf-8"))["views"][name]


# ---- offline ----------------------------------------------------------------------------------------------------
def test_parts_are_stored_sorted_and_deduplicated(sqlite_store: FeatureStore):
    # unsorted input with a repeated (entity, time): the later row of the input wins
    data = _batch([2, 1, 2, 1], [3, 1, 3, 0], [20.0, 10.0, 21.0, 9.0])
    view = sqlite_store.register(FeatureView("v", "cid", "ts", ("x",)), data)
    assert view.lineage["stored_rows"] == 3 and view.lineage["replaced_repeated_key_time_rows"] == 1
    (path,) = part_paths(sqlite_store.root, _entry(sqlite_store, "v"))
    stored = pl.read_parquet(path)
    assert stored["ts"].is_sorted() and stored.rows() == [(1, D, 9.0), (1, D + timedelta(days=1), 10.0),
                                                          (2, D + timedelta(days=3), 21.0)]
    part = _entry(sqlite_store, "v")["parts"][0]
    assert part["first_us"] == int(D.replace(tzinfo=UTC).timestamp() * 1_000_000)
    assert part["last_us"] - part["first_us"] == 3 * 86_400_000_000


def test_newer_appends_keep_the_sorted_layout_and_an_overlap_switches_to_merging(sqlite_store: FeatureStore):
    view = FeatureView("v", "cid", "ts", ("x",))
    sqlite_store.register(view, _batch([1, 2], [0, 1], [1.0, 2.0]))
    sqlite_store.register(view, _batch([1, 2], [2, 3], [3.0, 4.0]))  # strictly later: still one sorted sequence
    assert _entry(sqlite_store, "v")["offline_layout"] == "sorted"
    labels = pl.DataFrame({"cid": [1, 2, 1], "at": [D + timedelta(days=1), D + timedelta(days=5), D]})
    assert sqlite_store.historical_features(labels, ["v"], timestamp="at")["x"].to_list() == [1.0, 4.0, 1.0]

    # a rewrite of an existing (entity, time) overlaps the earlier parts: reads merge, the newest write wins
    sqlite_store.register(view, _batch([1, 2], [0, 3], [100.0, 400.0]))
    assert _entry(sqlite_store, "v")["offline_layout"] == "overlapping"
    assert sqlite_store.historical_features(labels, ["v"], timestamp="at")["x"].to_list() == [100.0, 400.0, 100.0]
    offline = sqlite_store.offline("v").collect()
    assert offline.height == 4 and offline["ts"].is_sorted()
    assert sorted(offline.rows()) == sorted([(1, D, 100.0), (2, D + timedelta(days=1), 2.0),
                                             (1, D + timedelta(days=2), 3.0), (2, D + timedelta(days=3), 400.0)])


def test_a_part_that_touches_the_previous_end_counts_as_overlapping(sqlite_store: FeatureStore):
    view = FeatureView("v", "cid", "ts", ("x",))
    sqlite_store.register(view, _batch([1], [0], [1.0]))
    sqlite_store.register(view, _batch([1], [0], [2.0]))  # same instant: may rewrite the same key
    assert _entry(sqlite_store, "v")["offline_layout"] == "overlapping"
    assert sqlite_store.offline("v").collect()["x"].to_list() == [2.0]


def test_legacy_unsorted_parts_with_repeats_are_still_read_newest_write_wins(sqlite_store: FeatureStore):
    """A store written before the layout fields existed: unsorted zstd parts with repeated keys, no flags."""
    sqlite_store.register(FeatureView("v", "cid", "ts", ("x",)), _batch([1], [0], [0.0]))
    path = sqlite_store.root / "registry.json"
    doc = json.loads(path.read_text("utf-8"))
    entry = doc["views"]["v"]
    del entry["offline_layout"]
    for key in ("layout", "first_us", "last_us"):
        del entry["parts"][0][key]
    (part,) = part_paths(sqlite_store.root, entry)
    _batch([2, 1, 1, 2], [5, 1, 1, 0], [5.0, 1.0, 1.5, 0.5]).write_parquet(part, compression="zstd")
    path.write_text(json.dumps(doc), "utf-8")

    offline = sqlite_store.offline("v").collect()
    assert offline.rows() == [(2, D, 0.5), (1, D + timedelta(days=1), 1.5), (2, D + timedelta(days=5), 5.0)]
    labels = pl.DataFrame({"cid": [1, 2, 2], "at": [D + timedelta(days=2), D + timedelta(days=2), D]})
    assert sqlite_store.historical_features(labels, ["v"], timestamp="at")["x"].to_list() == [1.5, 0.5, 0.5]


def test_null_label_times_keep_their_rows_and_order(sqlite_store: FeatureStore):
    sqlite_store.register(FeatureView("v", "cid", "ts", ("x",)), _batch([1, 2], [0, 0], [1.0, 2.0]))
    labels = pl.DataFrame({"cid": [2, 1, 2, 1], "at": [D, None, D + timedelta(days=1), D - timedelta(days=1)],
                           "tag": ["a", "b", "c", "d"]})
    out = sqlite_store.historical_features(labels, ["v"], timestamp="at")
    assert out.select("cid", "at", "tag").equals(labels)
    assert out["x"].to_list() == [2.0, None, 2.0, None]


# ---- online -----------------------------------------------------------------------------------------------------
def _two_views(fs: FeatureStore, ttl: float | None = None) -> None:
    fs.register(FeatureView("a", "cid", "ts", ("z", "y", "x"), ttl_days=ttl),
                pl.DataFrame({"cid": [1, 2], "ts": [D, D], "x": [1.0, 2.0], "y": ["p", "q"], "z": [10, 20]}))
    fs.register(FeatureView("b", "cid", "ts", ("w",)), pl.DataFrame({"cid": [2, 3], "ts": [D, D], "w": [0.5, 0.7]}))


def test_a_subset_of_a_view_comes_back_in_the_requested_order(store: FeatureStore):
    _two_views(store)
    store.materialize()
    rows = store.online_features(["b", "a:x", "a:z"], [{"cid": 2}, {"cid": 1}])
    assert [list(r) for r in rows] == [["cid", "w", "x", "z"]] * 2
    assert rows == [{"cid": 2, "w": 0.5, "x": 2.0, "z": 20}, {"cid": 1, "w": None, "x": 1.0, "z": 10}]
    assert store.online_features(["a:y", "b"], [{"cid": 3}]) == [{"cid": 3, "y": None, "w": 0.7}]
    assert store.online_features(["a:y"], [{"cid": None}]) == [{"cid": None, "y": None}]
    assert store.online_features(["a:y"], []) == []


def test_materializing_one_view_leaves_the_others_of_its_entity_alone(store: FeatureStore):
    _two_views(store)
    store.materialize()
    store.register(FeatureView("b", "cid", "ts", ("w",)),
                   pl.DataFrame({"cid": [1], "ts": [D + timedelta(days=1)], "w": [0.9]}))
    assert store.materialize(["b"], until=D + timedelta(days=2)) == {"b": 3}
    assert store.materialize(["b"], until=D + timedelta(hours=1)) == {"b": 2}  # back in time: cid 1 goes
    got = store.online_features(["a:x", "b"], [{"cid": 1}, {"cid": 2}, {"cid": 3}])
    assert got == [{"cid": 1, "x": 1.0, "w": None}, {"cid": 2, "x": 2.0, "w": 0.5}, {"cid": 3, "x": None, "w": 0.7}]
    assert store.online_features(["b"], [{"cid": 1}]) == [{"cid": 1, "w": None}]


def test_ttl_applies_per_view_for_one_row_and_for_many(store: FeatureStore):
    now = datetime.now(UTC).replace(tzinfo=None)
    store.register(FeatureView("fresh", "cid", "ts", ("f",), ttl_days=1.0),
                   pl.DataFrame({"cid": [1, 2], "ts": [now - timedelta(days=2), now - timedelta(hours=2)],
                                 "f": [1, 2]}))
    store.register(FeatureView("slow", "cid", "ts", ("s",), ttl_days=30.0),
                   pl.DataFrame({"cid": [1, 2], "ts": [now - timedelta(days=2), now - timedelta(days=40)],
                                 "s": [3, 4]}))
    store.materialize()
    want = [{"cid": 1, "f": None, "s": 3}, {"cid": 2, "f": 2, "s": None}]
    assert store.online_features(["fresh", "slow"], [{"cid": 1}, {"cid": 2}]) == want
    assert [store.online_features(["fresh", "slow"], [{"cid": c}])[0] for c in (1, 2)] == want


def test_views_on_two_entities_in_one_lookup(store: FeatureStore):
    store.register(FeatureView("cust", "cid", "ts", ("score",)),
                   pl.DataFrame({"cid": [1, 2], "ts": [D, D], "score": [0.1, 0.2]}))
    store.register(FeatureView("acct", "acct", "ts", ("limit",)),
                   pl.DataFrame({"acct": ["A", "B"], "ts": [D, D], "limit": [100, 200]}))
    store.materialize()
    rows = [{"cid": 2, "acct": "A"}, {"cid": 9, "acct": "B"}, {"cid": 9, "acct": "Z"}]
    want = [{"cid": 2, "acct": "A", "score": 0.2, "limit": 100}, {"cid": 9, "acct": "B", "score": None, "limit": 200},
            {"cid": 9, "acct": "Z", "score": None, "limit": None}]
    assert store.online_features(["cust", "acct"], rows) == want
    assert [store.online_features(["cust", "acct"], [r])[0] for r in rows] == want


def test_floats_keep_nan_and_infinities_and_nested_dates_survive(store: FeatureStore):
    data = pl.DataFrame({"cid": [1], "ts": [D], "r": [float("nan")], "hi": [float("inf")], "lo": [float("-inf")],
                         "days": [[date(2024, 1, 2)]], "big": [2**62 + 1], "n": [None]},
                        schema_overrides={"n": pl.Float64})
    store.register(FeatureView("t", "cid", "ts", ("r", "hi", "lo", "days", "big", "n")), data)
    store.materialize()
    (got,) = store.online_features(["t"], [{"cid": 1}])
    assert math.isnan(got["r"]) and got["hi"] == math.inf and got["lo"] == -math.inf
    assert got["days"] == ["2024-01-02"] and got["big"] == 2**62 + 1 and got["n"] is None


def test_a_lookup_before_materialize_then_after_it_elsewhere(store: FeatureStore, online: str | None):
    _two_views(store)
    reader = FeatureStore(store.root, online=online)
    try:
        assert reader.online_features(["a:x", "b"], [{"cid": 2}]) == [{"cid": 2, "x": None, "w": None}]
        store.materialize(["a"])
        assert reader.online_features(["a:x", "b"], [{"cid": 2}]) == [{"cid": 2, "x": 2.0, "w": None}]
        store.materialize(["b"])  # a new column of the same table: the reader's plan must notice
        assert reader.online_features(["a:x", "b"], [{"cid": 2}]) == [{"cid": 2, "x": 2.0, "w": 0.5}]
        store.register(FeatureView("b", "cid", "ts", ("w", "v")),  # a new version: its old values never served
                       pl.DataFrame({"cid": [2], "ts": [D], "w": [5.0], "v": [6.0]}))
        assert reader.online_features(["a:x", "b"], [{"cid": 2}]) == [{"cid": 2, "x": 2.0, "w": None, "v": None}]
        store.materialize(["b"])
        assert reader.online_features(["a:x", "b"], [{"cid": 2}]) == [{"cid": 2, "x": 2.0, "w": 5.0, "v": 6.0}]
    finally:
        reader.close()


def test_sqlite_schema_change_drops_the_old_columns_and_old_layout_tables(sqlite_store: FeatureStore):
    _two_views(sqlite_store)
    sqlite_store.materialize()
    vid = _entry(sqlite_store, "b")["id"]
    db = sqlite_store.root / "online.sqlite"
    with sqlite3.connect(db) as conn:  # a per-view table as the layout before this one wrote it
        conn.execute(f'CREATE TABLE "fv_{vid}_v1" (k TEXT PRIMARY KEY, ts INTEGER, v TEXT)')
    sqlite_store.register(FeatureView("b", "cid", "ts", ("w", "v")),
                          pl.DataFrame({"cid": [2], "ts": [D], "w": [5.0], "v": [6.0]}))
    sqlite_store.materialize(["b"])
    with sqlite3.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        (table,) = [t for t in tables if t.startswith("e_")]
        columns = [c for (c,) in conn.execute(f"SELECT name FROM pragma_table_info('{table}')")]
        # user text never names a table or column
        assert conn.execute("SELECT entity FROM lf_entity_tables").fetchall() == [("cid",)]
    assert f"fv_{vid}_v1" not in tables and not any("cid" in c for c in columns)
    assert [c for c in columns if vid in c] == [f"t_{vid}_v2", f"b_{vid}_v2"]
    assert sqlite_store.online_features(["b", "a:x"], [{"cid": 2}]) == [{"cid": 2, "w": 5.0, "v": 6.0, "x": 2.0}]


def test_sqlite_rows_with_no_value_left_are_deleted(sqlite_store: FeatureStore):
    _two_views(sqlite_store)
    sqlite_store.materialize()
    sqlite_store.materialize(until=D - timedelta(days=1))  # nothing is known yet then
    with sqlite3.connect(sqlite_store.root / "online.sqlite") as conn:
        (table,) = [t for (t,) in conn.execute("SELECT tbl FROM lf_entity_tables")]
        assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,)


def test_lookups_from_several_threads(sqlite_store: FeatureStore):
    n = 300
    sqlite_store.register(FeatureView("v", "cid", "ts", ("x",)),
                          pl.DataFrame({"cid": list(range(n)), "ts": [D] * n, "x": [float(i) for i in range(n)]}))
    sqlite_store.materialize()
    wrong: list[int] = []

    def look(offset: int) -> None:
        for i in range(offset, n, 4):
            if sqlite_store.online_features(["v"], [{"cid": i}]) != [{"cid": i, "x": float(i)}]:
                wrong.append(i)

    threads = [threading.Thread(target=look, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert wrong == []


def test_reading_an_empty_store_creates_nothing(tmp_path: Path):
    with FeatureStore(tmp_path / "fs") as fs:
        fs.register(FeatureView("v", "cid", "ts", ("x",)), _batch([1], [0], [1.0]))
        assert fs.online_features(["v"], [{"cid": 1}]) == [{"cid": 1, "x": None}]
        assert not (tmp_path / "fs" / "online.sqlite").exists()
