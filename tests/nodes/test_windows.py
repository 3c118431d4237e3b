"""Time-window aggregates: point-in-time correctness against a brute-force reference, and the input checks."""
from __future__ import annotations

import math
import random
import statistics
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.errors import NodeInputError
from engine.testing import NodeFailed, run_node
from nodes.features.windows import (
    AGGS,
    WindowAggregates,
    feature_names,
    window_aggregates,
)

START = datetime(2024, 1, 1)


def brute_force(events: list[tuple], queries: list[tuple], windows: list[int], aggs: list[str],
                include_instant: bool) -> dict[str, list]:
    """Features per query (entity, as_of) by looking at every event: the obviously correct definition."""
    out: dict[str, list] = {}
    for days in windows:
        out[f"events_count_{days}d"] = []
        for agg in aggs:
            out[f"amount_{agg}_{days}d"] = []
        for key, as_of in queries:
            if key is None or as_of is None:
                out[f"events_count_{days}d"].append(None)
                for agg in aggs:
                    out[f"amount_{agg}_{days}d"].append(None)
                continue
            start = as_of - timedelta(days=days)
            if include_instant:
                inside = [e for e in events if e[0] == key and e[1] is not None and start < e[1] <= as_of]
            else:
                inside = [e for e in events if e[0] == key and e[1] is not None and start <= e[1] < as_of]
            vals = [e[2] for e in inside if e[2] is not None]
            out[f"events_count_{days}d"].append(len(inside))
            stats = {"sum": math.fsum(vals), "count": len(vals), "mean": statistics.fmean(vals) if vals else None,
                     "min": min(vals, default=None), "max": max(vals, default=None),
                     "std": statistics.stdev(vals) if len(vals) > 1 else None}
            for agg in aggs:
                out[f"amount_{agg}_{days}d"].append(stats[agg])
    return out


def assert_close(got: list, want: list, name: str) -> None:
    assert len(got) == len(want), name
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None, f"{name} row {i}: {g} != None"
        else:
            assert g is not None and g == pytest.approx(w, rel=1e-9, abs=1e-9), f"{name} row {i}: {g} != {w}"


# Times on a coarse 12-hour grid over 8 days, with windows of whole days, so equal timestamps, events exactly on a
# window's start and events at the as-of instant are common. Sizes are drawn first: plain st.lists stay too short
# to put several events in one window.
times = st.integers(min_value=0, max_value=16).map(lambda h: START + timedelta(hours=12 * h))
maybe_time = st.one_of(times, times, times, times, st.none())
amount = st.one_of(*[st.integers(-50, 50).map(float)] * 4, st.none())
event = st.tuples(st.sampled_from(["a", "b", "b", None]), maybe_time, amount)
query = st.tuples(st.sampled_from(["a", "b", "z", None]), maybe_time)
event_lists = st.integers(0, 40).flatmap(lambda n: st.lists(event, min_size=n, max_size=n))
query_lists = st.integers(1, 15).flatmap(lambda n: st.lists(query, min_size=n, max_size=n))
window_lists = st.lists(st.sampled_from([1, 2, 3, 7]), min_size=1, max_size=3)
EVENTS_SCHEMA = {"cust": pl.String, "ts": pl.Datetime("us"), "amount": pl.Float64}


def check_with_entities(events: list[tuple], queries: list[tuple], windows: list[int], include_instant: bool) -> None:
    ev = pl.DataFrame(events, schema=EVENTS_SCHEMA, orient="row")
    at = pl.DataFrame(queries, schema={"cust": pl.String, "applied": pl.Datetime("us")}, orient="row")
    at = at.with_row_index("row_id")
    out = window_aggregates(ev, entity="cust", timestamp="ts", values=["amount"], windows_days=windows,
                            aggs=list(AGGS), at=at, at_timestamp="applied", include_as_of_instant=include_instant)
    assert_frame_equal(out.select(at.columns), at)  # same rows, same order
    want = brute_force(events, queries, list(dict.fromkeys(windows)), list(AGGS), include_instant)
    assert [c for c in out.columns if c not in at.columns] == list(want)
    for name, values in want.items():
        assert_close(out[name].to_list(), values, name)


@settings(max_examples=50, deadline=None)
@given(events=event_lists, queries=query_lists, include_instant=st.booleans(), windows=window_lists)
def test_matches_brute_force_with_entities(events, queries, include_instant, windows):
    check_with_entities(events, queries, windows, include_instant)


@settings(max_examples=50, deadline=None)
@given(events=event_lists, include_instant=st.booleans(), windows=window_lists)
def test_matches_brute_force_as_of_each_event(events, include_instant, windows):
    ev = pl.DataFrame(events, schema=EVENTS_SCHEMA, orient="row")
    out = window_aggregates(ev, entity="cust", timestamp="ts", values=["amount"], windows_days=windows,
                            aggs=list(AGGS), include_as_of_instant=include_instant)
    assert_frame_equal(out.select(ev.columns), ev)
    want = brute_force(events, [(e[0], e[1]) for e in events], list(dict.fromkeys(windows)), list(AGGS),
                       include_instant)
    for name, values in want.items():
        assert_close(out[name].to_list(), values, name)


@pytest.mark.parametrize("include_instant", [False, True])
def test_matches_brute_force_on_a_larger_random_history(include_instant):
    rng = random.Random(7)
    def moment() -> datetime | None:
        return None if rng.random() < 0.05 else START + timedelta(hours=6 * rng.randrange(0, 200))
    events = [(rng.choice("abcde"), moment(), None if rng.random() < 0.1 else float(rng.randrange(-1000, 1000)))
              for _ in range(400)]
    queries = [(rng.choice("abcdef"), moment()) for _ in range(120)]
    queries += [(k, t) for k, t, _ in events[:40]]  # as-of instants that are exactly event times
    check_with_entities(events, queries, [1, 3, 10], include_instant)


def small_events() -> pl.DataFrame:
    return pl.DataFrame({
        "cust": [1, 1, 1, 1, 2, 2],
        "ts": [datetime(2024, 1, 1), datetime(2024, 1, 20), datetime(2024, 2, 1), datetime(2024, 2, 1, 12),
               datetime(2024, 1, 15), datetime(2024, 1, 31)],
        "amount": [10.0, 20.0, 40.0, 80.0, 5.0, 7.0],
    })


def apps() -> pl.DataFrame:
    return pl.DataFrame({"cust": [2, 1, 3, 1], "ts": [datetime(2024, 1, 31), datetime(2024, 2, 1),
                                                       datetime(2024, 2, 1), datetime(2024, 2, 1)]})


def test_events_after_the_as_of_time_never_count():
    base = window_aggregates(small_events(), entity="cust", timestamp="ts", values=["amount"],
                             windows_days=[30, 3650], aggs=list(AGGS), at=apps())
    future = pl.DataFrame({"cust": [1, 2, 3], "ts": [datetime(2024, 2, 1, 0, 0, 1), datetime(2024, 1, 31, 1),
                                                     datetime(2030, 1, 1)], "amount": [1e12] * 3})
    with_future = window_aggregates(pl.concat([small_events(), future]), entity="cust", timestamp="ts",
                                    values=["amount"], windows_days=[30, 3650], aggs=list(AGGS), at=apps())
    assert_frame_equal(with_future, base)
    # and the values themselves: as of 2024-02-01 00:00 the 30-day window [01-02, 02-01) of customer 1 holds only
    # the 01-20 event (the 02-01 event at the as-of instant is excluded by default); 3650 days also hold 01-01
    assert base["amount_sum_30d"].to_list() == [5.0, 20.0, 0.0, 20.0]
    assert base["events_count_30d"].to_list() == [1, 1, 0, 1]
    assert base["amount_mean_3650d"].to_list() == [5.0, 15.0, None, 15.0]
    assert base["amount_std_3650d"].to_list()[2:] == [None, pytest.approx(statistics.stdev([10.0, 20.0]))]
    assert base["amount_min_3650d"].to_list() == [5.0, 10.0, None, 10.0]


def test_the_as_of_instant_is_included_only_when_asked():
    out = window_aggregates(small_events(), entity="cust", timestamp="ts", values=["amount"], windows_days=[31],
                            aggs=["sum"], at=apps(), include_as_of_instant=True)
    # (2024-01-01, 2024-02-01]: the 01-01 event is on the open edge, the 02-01 00:00 event is at the instant
    assert out["amount_sum_31d"].to_list() == [12.0, 60.0, 0.0, 60.0]


def test_no_events_at_all_gives_zero_counts():
    empty = small_events().clear()
    out = window_aggregates(empty, entity="cust", timestamp="ts", values=["amount"], windows_days=[30],
                            aggs=list(AGGS), at=apps())
    assert out["events_count_30d"].to_list() == [0] * 4 and out["amount_sum_30d"].to_list() == [0.0] * 4
    assert out["amount_count_30d"].to_list() == [0] * 4
    assert out["amount_max_30d"].to_list() == [None] * 4
    alone = window_aggregates(empty, entity="cust", timestamp="ts", values=["amount"], windows_days=[30],
                              aggs=["sum"])
    assert alone.height == 0 and alone.columns == ["cust", "ts", "amount", "events_count_30d", "amount_sum_30d"]


def test_dates_keys_of_other_integer_types_and_column_names():
    events = small_events().with_columns(pl.col("ts").dt.date(), pl.col("cust").cast(pl.Int16))
    at = apps().with_columns(pl.col("cust").cast(pl.UInt8)).rename({"ts": "applied"})
    out = window_aggregates(events, entity="cust", timestamp="ts", values=["amount"], windows_days=[30],
                            aggs=["max"], at=at, at_timestamp="applied")
    assert out.columns == ["cust", "applied", "events_count_30d", "amount_max_30d"]
    assert out["cust"].dtype == pl.UInt8  # the entities come back unchanged
    assert out["amount_max_30d"].to_list() == [5.0, 20.0, None, 20.0]
    assert feature_names(["a", "b"], [7, 30], ["sum"]) == [
        "events_count_7d", "a_sum_7d", "b_sum_7d", "events_count_30d", "a_sum_30d", "b_sum_30d"]


def test_time_zones_compare_instants():
    events = small_events().with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    at = apps().with_columns(pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Shanghai"))
    out = window_aggregates(events, entity="cust", timestamp="ts", values=["amount"], windows_days=[30],
                            aggs=["sum"], at=at)
    assert out["amount_sum_30d"].to_list() == [5.0, 20.0, 0.0, 20.0]
    with pytest.raises(NodeInputError, match="time zone"):
        window_aggregates(events, entity="cust", timestamp="ts", values=["amount"], windows_days=[30],
                          aggs=["sum"], at=apps())


@pytest.mark.parametrize(("change", "match"), [
    (lambda ev, at: (ev, at.with_columns(pl.col("cust").cast(pl.String))), "Int64 in the events but String"),
    (lambda ev, at: (ev, at.with_columns(pl.col("cust") + 0.5)), "fractional"),
    (lambda ev, at: (ev.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d")), at), "Date parts"),
    (lambda ev, at: (ev, at.with_columns(pl.col("ts").dt.hour())), "not a date or datetime"),
    (lambda ev, at: (ev.with_columns(pl.col("amount").cast(pl.String)), at), "not numeric"),
    (lambda ev, at: (ev.drop("amount"), at), "'amount' is not in the table"),
    (lambda ev, at: (ev, at.drop("cust")), "'cust' is not in the table"),
    (lambda ev, at: (ev.rename({"amount": "events"}).with_columns(amount=0.0), at), "same name twice"),
])
def test_bad_input_is_explained(change, match):
    events, at = change(small_events(), apps())
    values = ["events"] if "events" in events.columns else ["amount"]
    with pytest.raises(NodeInputError, match=match):
        window_aggregates(events, entity="cust", timestamp="ts", values=values, windows_days=[30],
                          aggs=["sum", "count"], at=at)


def test_whole_valued_float_keys_are_matched():
    at = apps().with_columns(pl.col("cust").cast(pl.Float64))
    out = window_aggregates(small_events(), entity="cust", timestamp="ts", values=[], windows_days=[60],
                            aggs=[], at=at)
    assert out["events_count_60d"].to_list() == [1, 2, 0, 2]
    assert out.columns == ["cust", "ts", "events_count_60d"]


def test_node_with_and_without_entities():
    events = small_events().with_columns(pl.col("ts").dt.date().alias("day"))
    entities = pl.DataFrame({"cust": [1, 2], "day": [date(2024, 2, 2), date(2024, 2, 2)]})
    settings = {"entity": "cust", "timestamp": "day", "values": ["amount"], "windows_days": [30],
                "aggs": ["sum", "count"]}
    out = run_node(WindowAggregates, {"events": events, "entities": entities}, settings)["table"]
    # as of 2024-02-02: [01-03, 02-02) holds 01-20, 02-01 and 02-01 for customer 1, 01-15 and 01-31 for 2
    assert out["amount_sum_30d"].to_list() == [140.0, 12.0] and out["amount_count_30d"].to_list() == [3, 2]
    per_event = run_node(WindowAggregates, {"events": events}, settings)["table"]
    assert per_event.height == events.height
    assert per_event["amount_sum_30d"].to_list() == [0.0, 10.0, 20.0, 20.0, 0.0, 5.0]  # same-day events excluded
    with pytest.raises(NodeFailed) as info:
        run_node(WindowAggregates, {"events": events, "entities": entities}, {**settings, "as_of": "when"})
    assert info.value.input_error and "'when'" in str(info.value)
