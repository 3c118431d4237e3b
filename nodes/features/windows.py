"""Time-window aggregates per entity, point in time: "sum of card spend in the 30 days before the application".

Leakage is the classic failure of such features, so the rule is strict: a row's features only ever see events of
its entity that happened before its as-of time (by default strictly before, so an event stamped at the as-of
instant itself, e.g. a same-day transaction, cannot leak). Windows are [as_of - N days, as_of), or
(as_of - N days, as_of] with `include_as_of_instant`.

How: events and the distinct (entity, as-of) query points go into one frame sorted by (entity, time), and polars'
rolling group-by computes every window for every row in one pass per window length (rolling kernels, so a window
costs O(rows), not O(rows x events)). Query rows carry null values and a 0 event flag, so they never change an
aggregate. Features depend only on (entity, as-of), so they are joined back onto the caller's rows by that pair,
which keeps the rows and their order exactly. 1M events x 100k entity rows take about a second on 2 cores.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, Node, NodeSettings, PortSpec, node
from nodes.columns import require_columns

AGGS = ("sum", "count", "mean", "min", "max", "std")
Agg = Literal["sum", "count", "mean", "min", "max", "std"]
_KEY, _TIME, _EVENT = "__lf_key", "__lf_time", "__lf_event"
_STRINGY = (pl.String, pl.Categorical, pl.Enum)


def feature_names(values: Sequence[str], windows_days: Sequence[int], aggs: Sequence[str]) -> list[str]:
    """The output columns in order: per window, `events_count_<N>d` then `<value>_<agg>_<N>d`."""
    names: list[str] = []
    for days in dict.fromkeys(windows_days):
        names.append(f"events_count_{days}d")
        names.extend(f"{v}_{a}_{days}d" for v in dict.fromkeys(values) for a in dict.fromkeys(aggs))
    return names


def window_aggregates(events: pl.DataFrame, *, entity: str, timestamp: str, values: list[str],
                      windows_days: list[int], aggs: list[str], at: pl.DataFrame | None = None,
                      at_timestamp: str | None = None, include_as_of_instant: bool = False) -> pl.DataFrame:
    """`at` (or, without it, `events` as of each event's own time) plus one column per window feature.

    Counts and sums over an empty window are 0; mean/min/max/std are null (std is the sample std, ddof=1, so a
    single event gives null). Rows whose entity or as-of time is null get null features: their window is unknown.
    Null event values are skipped (NaN counts as null); events with a null entity or time are ignored.
    Raises NodeInputError for bad input (missing or mistyped columns, incompatible keys).
    """
    values, windows_days, aggs = (list(dict.fromkeys(x)) for x in (values, windows_days, aggs))
    _check_options(windows_days, aggs)
    source = events if at is None else at
    as_of = timestamp if at is None else (at_timestamp or timestamp)
    require_columns(events, [entity, timestamp, *values], tr("Events"))
    if at is not None:
        require_columns(at, [entity, as_of], tr("Entities"))
    _check_values(events, values)
    names = feature_names(values, windows_days, aggs)
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:  # e.g. a value column called "events" with the count aggregate
        raise NodeInputError(tr("Values: the features would have the same name twice ({names}); rename the value "
                                "column first", names=", ".join(clash)))
    key_type = _common_key(events.schema[entity], source.schema[entity], entity)
    time_type = _common_time(events.schema[timestamp], timestamp, source.schema[as_of], as_of)

    slot = {v: f"__lf_v{i}" for i, v in enumerate(values)}
    ev = events.select(
        _cast_key(events, entity, key_type),
        _cast_time(timestamp, events.schema[timestamp], time_type).alias(_TIME),
        *[pl.col(v).cast(pl.Float64).fill_nan(None).alias(slot[v]) for v in values],
        pl.lit(1, pl.Int64).alias(_EVENT),
    ).drop_nulls([_KEY, _TIME])
    queries = source.select(_cast_key(source, entity, key_type),
                            _cast_time(as_of, source.schema[as_of], time_type).alias(_TIME))
    frame = ev
    if at is not None:
        points = queries.drop_nulls().unique()
        frame = pl.concat([ev, points.with_columns(pl.lit(0, pl.Int64).alias(_EVENT))], how="diagonal")
    frame = frame.sort([_KEY, _TIME])

    features = queries
    for days in windows_days:
        per_point = _rolling(frame, days, values, slot, aggs, include_as_of_instant)
        features = features.join(per_point, on=[_KEY, _TIME], how="left", maintain_order="left")
    return source.with_columns(features.select(names).get_columns())


def _rolling(frame: pl.DataFrame, days: int, values: list[str], slot: dict[str, str], aggs: list[str],
             include_instant: bool) -> pl.DataFrame:
    """One row per distinct (entity, time) point of `frame` with the window's aggregates (ties share a window)."""
    exprs = [pl.col(_EVENT).sum().cast(pl.Int64).alias(f"events_count_{days}d")]
    for v in values:
        col = pl.col(slot[v])
        built = {"sum": col.sum(), "count": col.count().cast(pl.Int64), "mean": col.mean(), "min": col.min(),
                 "max": col.max(), "std": col.std().fill_nan(None)}
        exprs.extend(built[a].alias(f"{v}_{a}_{days}d") for a in aggs)
    closed = "right" if include_instant else "left"
    rolled = frame.rolling(_TIME, period=f"{days}d", closed=closed, group_by=_KEY).agg(exprs)
    return rolled.unique([_KEY, _TIME], keep="any")


# ---- the node -------------------------------------------------------------------------------------------------
class WindowSettings(NodeSettings):
    entity: str = Field(min_length=1, title=N_("Entity column"), description=N_(
        "The key (customer, account) found in both the events and the entities"),
        json_schema_extra={"widget": "column", "port": "events"})
    timestamp: str = Field(min_length=1, title=N_("Event time column"),
                           description=N_("When each event happened (a date or datetime column of the events)"),
                           json_schema_extra={"widget": "column", "port": "events"})
    as_of: str | None = Field(None, title=N_("As-of column"), description=N_(
        "The time in the entities up to which events count (e.g. the application time); empty: the same name "
        "as the event time column"), json_schema_extra={"widget": "column", "port": "entities"})
    values: list[str] = Field(default_factory=list, title=N_("Value columns"), description=N_(
        "Numeric event columns to aggregate (e.g. amount); empty: only the event counts"))
    windows_days: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [30, 90], min_length=1,
                                                            title=N_("Window lengths (days)"))
    aggs: list[Agg] = Field(default_factory=lambda: ["sum", "count", "mean"], title=N_("Aggregates"),
                            description=N_("Per value column and window; std is the sample standard deviation"))
    include_as_of_instant: bool = Field(False, title=N_("Include events at the as-of instant"), description=N_(
        "Off: the window is [as-of − N days, as-of), so an event at exactly the as-of time (a same-day "
        "transaction) cannot leak into the features. On: (as-of − N days, as-of]"))


@node("features.window_aggregates", version=1, title=N_("Time-window aggregates"), category=N_("Features"),
      icon="window")
class WindowAggregates(Node):
    """Per entity, aggregate the events in the N days before each row's as-of time, never after it."""

    inputs: ClassVar[dict[str, Any]] = {"events": Table,
        "entities": PortSpec(name="entities", type=Table, required=False, description=N_(
            "Rows to compute features for (entity + as-of time, e.g. applications); without it every event row "
            "gets the features as of its own time"))}
    outputs: ClassVar[dict[str, Any]] = {"table": Table}
    Settings = WindowSettings

    def compute(self, inputs: dict, settings: WindowSettings, ctx: Context) -> dict:
        events: pl.DataFrame = inputs["events"]
        at: pl.DataFrame | None = inputs.get("entities")
        if events.height == 0:
            ctx.log.warning("the events table is empty: every count is 0")
        out = window_aggregates(events, entity=settings.entity, timestamp=settings.timestamp,
                                values=settings.values, windows_days=settings.windows_days, aggs=settings.aggs,
                                at=at, at_timestamp=settings.as_of or settings.timestamp,
                                include_as_of_instant=settings.include_as_of_instant)
        added = feature_names(settings.values, settings.windows_days, settings.aggs)
        ctx.log.info("added %d window feature(s) to %d row(s) from %d event(s)", len(added), out.height,
                     events.height)
        return {"table": out}


# ---- checks --------------------------------------------------------------------------------------------------
def _check_options(windows_days: list[int], aggs: list[str]) -> None:
    if not windows_days:
        raise NodeInputError(tr("Window lengths (days): give at least one, e.g. 30, 90"))
    bad = [d for d in windows_days if not isinstance(d, int) or d < 1]
    if bad:
        raise NodeInputError(tr("Window lengths (days): {bad} is not a whole number of days of 1 or more",
                                bad=bad[0]))
    unknown = [a for a in aggs if a not in AGGS]
    if unknown:
        raise NodeInputError(tr("Aggregates: {bad!r} is unknown; choose from {known}", bad=unknown[0],
                                known=", ".join(AGGS)))


def _check_values(events: pl.DataFrame, values: list[str]) -> None:
    for v in values:
        dtype = events.schema[v]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise NodeInputError(tr("Values: column {col!r} is {dtype}, not numeric; change its type first "
                                    "(Select columns → Change types)", col=v, dtype=dtype))


def _is_stringy(dtype: pl.DataType) -> bool:
    return isinstance(dtype, _STRINGY)


def _common_key(ev: pl.DataType, at: pl.DataType, entity: str) -> pl.DataType:
    """The type both key columns are compared in: equal types as they are, else a lossless common type."""
    if _is_stringy(ev) and _is_stringy(at):
        return pl.String()
    if ev == at:
        return ev
    if ev.is_numeric() and at.is_numeric() and not (ev.is_decimal() or at.is_decimal()):
        if ev.is_float() and at.is_float():
            return pl.Float64()
        return pl.Int64()  # checked in _cast_key: whole-valued floats only, no overflowing UInt64
    raise NodeInputError(tr("Entity: column {col!r} is {ev} in the events but {at} in the entities; the keys "
                            "cannot be matched without changing values. Give both the same type first "
                            "(Select columns → Change types)", col=entity, ev=ev, at=at))


def _cast_key(table: pl.DataFrame, entity: str, dtype: pl.DataType) -> pl.Expr:
    """The key column as `dtype`, refusing casts that would change a value (fractional or overflowing ids)."""
    col = table.get_column(entity)
    if col.dtype == dtype:
        return pl.col(entity).alias(_KEY)
    if col.dtype.is_float() and dtype.is_integer():
        known = col.drop_nulls()
        if known.len() and not bool((known.is_finite() & (known == known.round(0))).all()):
            raise NodeInputError(tr("Entity: column {col!r} holds fractional numbers ({dtype}); it cannot be "
                                    "matched with whole-number keys", col=entity, dtype=col.dtype))
    try:
        col.cast(dtype, strict=True)
    except pl.exceptions.PolarsError:
        raise NodeInputError(tr("Entity: column {col!r} ({dtype}) has values that do not fit {target}",
                                col=entity, dtype=col.dtype, target=dtype)) from None
    return pl.col(entity).cast(dtype).alias(_KEY)


def _is_instant(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.Date, pl.Datetime))


def _not_temporal(column: str, dtype: pl.DataType, setting: str) -> NodeInputError:
    return NodeInputError(tr("{setting}: column {col!r} is {dtype}, not a date or datetime. Parse it first: read "
                             "the file with this column's type set to date/datetime, or use the Date parts node "
                             "(part 'datetime')", setting=setting, col=column, dtype=dtype))


def _common_time(ev: pl.DataType, ev_col: str, at: pl.DataType, at_col: str) -> pl.Datetime:
    """One Datetime type for event and as-of times: dates become midnight, units become microseconds."""
    if not _is_instant(ev):
        raise _not_temporal(ev_col, ev, tr("Event time"))
    if not _is_instant(at):
        raise _not_temporal(at_col, at, tr("As-of time"))
    zones = {d.time_zone for d in (ev, at) if isinstance(d, pl.Datetime)}
    if len(zones) > 1 and None in zones:
        raise NodeInputError(tr("As-of time: {at_col!r} is {at} but the event time {ev_col!r} is {ev}; one has a "
                                "time zone and the other not, so they cannot be compared. Give both a time zone "
                                "or neither", at_col=at_col, at=at, ev_col=ev_col, ev=ev))
    zone = ev.time_zone if isinstance(ev, pl.Datetime) else (at.time_zone if isinstance(at, pl.Datetime) else None)
    return pl.Datetime("us", zone)


def _cast_time(column: str, source: pl.DataType, target: pl.Datetime) -> pl.Expr:
    """`column` in the `target` type: a date is midnight in the target's zone; an aware time keeps its instant."""
    col = pl.col(column)
    if isinstance(source, pl.Date):
        as_dt = col.cast(pl.Datetime("us"))
        return as_dt.dt.replace_time_zone(target.time_zone) if target.time_zone else as_dt
    col = col.dt.cast_time_unit("us")
    if target.time_zone and source.time_zone != target.time_zone:
        col = col.dt.convert_time_zone(target.time_zone)
    return col
