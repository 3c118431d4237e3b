"""Property tests: the point-in-time join equals a brute-force reference and never looks into the future."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.featurestore import FeatureStore, FeatureView

T0 = datetime(2024, 1, 1)
ENTITIES = [1, 2, 3]


@dataclass(frozen=True)
class Row:
    cid: int | None
    ts: datetime | None
    val: int


def _hours(n: int) -> datetime:
    return T0 + timedelta(hours=n)


# Few entities and hours, so repeated keys, repeated (entity, time) rewrites and exact ties with labels are common.
row_st = st.tuples(st.one_of(st.none(), st.sampled_from(ENTITIES)), st.one_of(st.none(), st.integers(0, 30)))
writes_st = st.lists(st.lists(row_st, min_size=0, max_size=8), min_size=1, max_size=3)
label_st = st.lists(st.tuples(st.one_of(st.none(), st.sampled_from([*ENTITIES, 4])),
                              st.one_of(st.none(), st.integers(-2, 34)), st.sampled_from([0, 30])),
                    min_size=1, max_size=12)
ttl_st = st.one_of(st.none(), st.sampled_from([0.25, 0.5, 1.0, 1.5]))


def _history(writes: list[list[tuple]], base: int) -> list[list[Row]]:
    """Give each written row a unique value so the reference can say exactly which row must be returned."""
    return [[Row(cid, None if h is None else _hours(h), base + 100 * w + i) for i, (cid, h) in enumerate(batch)]
            for w, batch in enumerate(writes)]


def _frame(batch: list[Row]) -> pl.DataFrame:
    return pl.DataFrame({"cid": [r.cid for r in batch], "ts": [r.ts for r in batch], "val": [r.val for r in batch],
                         "ev": [r.ts for r in batch]},
                        schema={"cid": pl.Int64, "ts": pl.Datetime("us"), "val": pl.Int64, "ev": pl.Datetime("us")})


def reference(history: list[list[Row]], cid: int | None, label: datetime | None, ttl: float | None) -> Row | None:
    """Plain loop: the latest row of this entity with ts <= label (last written on ties), if within the ttl."""
    if cid is None or label is None:
        return None
    best: Row | None = None
    for batch in history:  # write order: a later write of the same (entity, ts) replaces the earlier one
        for row in batch:
            if row.cid == cid and row.ts is not None and row.ts <= label and (best is None or row.ts >= best.ts):
                best = row
    if best is not None and ttl is not None and label - best.ts > timedelta(days=ttl):
        return None
    return best


def _register_all(fs: FeatureStore, name: str, history: list[list[Row]], ttl: float | None) -> None:
    for batch in history:
        fs.register(FeatureView(name, "cid", "ts", ("val", "ev"), ttl_days=ttl), _frame(batch))


@settings(max_examples=60, deadline=None)
@given(writes_a=writes_st, writes_b=writes_st, labels=label_st, ttl_b=ttl_st)
def test_historical_features_match_brute_force(writes_a, writes_b, labels, ttl_b):
    hist_a, hist_b = _history(writes_a, 0), _history(writes_b, 10_000)
    entity_df = pl.DataFrame(
        {"cid": [c for c, _, _ in labels],
         "label_ts": [None if h is None else _hours(h) + timedelta(minutes=m) for _, h, m in labels]},
        schema={"cid": pl.Int32, "label_ts": pl.Datetime("ms")})  # other widths than the store: cast on the fly
    with tempfile.TemporaryDirectory() as folder, FeatureStore(Path(folder)) as fs:
        _register_all(fs, "a", hist_a, None)
        _register_all(fs, "b", hist_b, ttl_b)
        out = fs.historical_features(entity_df, ["a", "b:val", "b:ev"], timestamp="label_ts")

    # the entity table comes back unchanged, in order, with both views' clashing names prefixed
    assert out.columns == ["cid", "label_ts", "a__val", "a__ev", "b__val", "b__ev"]
    assert out.select("cid", "label_ts").equals(entity_df)
    for i, row in enumerate(out.iter_rows(named=True)):
        label = row["label_ts"]
        for view, hist, ttl in (("a", hist_a, None), ("b", hist_b, ttl_b)):
            want = reference(hist, row["cid"], label, ttl)
            assert row[f"{view}__val"] == (want.val if want else None), (i, view, row)
            assert row[f"{view}__ev"] == (want.ts if want else None), (i, view, row)
            if row[f"{view}__ev"] is not None:  # never a value from after the label time
                assert row[f"{view}__ev"] <= label


@settings(max_examples=60, deadline=None)
@given(writes=writes_st, until_h=st.integers(-1, 32), ttl=ttl_st)
def test_offline_and_online_follow_newest_write_and_until(writes, until_h, ttl):
    hist = _history(writes, 0)
    until = _hours(until_h)
    with tempfile.TemporaryDirectory() as folder, FeatureStore(Path(folder)) as fs:
        _register_all(fs, "a", hist, ttl)
        offline = fs.offline("a").collect()
        written = fs.materialize(["a"], until=until)
        online = fs.online_features(["a:val", "a:ev"], [{"cid": c} for c in [*ENTITIES, 4, None]])

    # offline: one row per (entity, ts), the last written, rows with a null key or time dropped
    latest: dict[tuple, int] = {}
    for batch in hist:
        for r in batch:
            if r.cid is not None and r.ts is not None:
                latest[(r.cid, r.ts)] = r.val
    assert {(c, t): v for c, t, v, _ in offline.iter_rows()} == latest
    assert offline.height == len(latest)

    # online as of `until`: the reference at label = until; any ttl has expired long ago (data from 2024)
    expected = {c: reference(hist, c, until, None) for c in [*ENTITIES, 4]}
    assert written == {"a": sum(1 for v in expected.values() if v is not None)}
    for got in online:
        want = expected.get(got["cid"]) if ttl is None else None
        assert got == {"cid": got["cid"], "val": want.val if want else None, "ev": want.ts if want else None}
