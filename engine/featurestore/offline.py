"""The offline store: append-only Parquet parts per view, the newest-write-wins read, and the point-in-time join.

Why parts instead of rewriting one file: registering more data is an append (cheap, crash-safe, and a concurrent
reader of the old parts is never disturbed). The registry lists the parts in write order, so "newest write wins"
for a repeated (entity, event time) is "the last such row in the concatenated parts".

Each part is written deduplicated and sorted by event time, and the registry records each part's event-time range
and whether the view's parts overlap. The common cases (one part, or appends of ever newer data) are then already
"one row per (entity, event time), in time order" on disk, so a read needs neither a dedupe nor a sort; only
parts whose time ranges overlap are merged at read time.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from engine.featurestore.registry import (
    INTERNAL_PREFIX,
    FeatureStoreError,
    checked_id,
    checked_part,
    new_part_name,
)
from engine.fileio import atomic_output_path, sha256_file
from engine.i18n import tr

EVENT_TS = f"{INTERNAL_PREFIX}ts"  # the event time as naive UTC microseconds, whatever the stored type
_LABEL = f"{INTERNAL_PREFIX}label"
_ROW = f"{INTERNAL_PREFIX}row"
_STRINGY = (pl.String, pl.Categorical, pl.Enum)
# The view's parts concatenated in write order are unique per (entity, event time) and sorted by event time.
SORTED = "sorted"
# LZ4 decompresses several times faster than zstd: the point-in-time join reads every stored row.
_COMPRESSION = "lz4"


@dataclass(frozen=True)
class Pick:
    """The features one view contributes to a request, each with the name of its output column."""

    view: str
    entry: dict
    features: tuple[tuple[str, str], ...]


def is_temporal(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Datetime) or dtype == pl.Date


def utc_naive(column: str, dtype: pl.DataType) -> pl.Expr:
    """Dates become midnight, zoned datetimes UTC, and all microsecond precision: one comparable time axis.

    Naive datetimes are taken to be UTC already, so a zoned and a naive column compare as the user expects when
    the naive one was recorded in UTC. The mapping never reorders values, so data sorted by the stored column is
    sorted by this one too.
    """
    expr = pl.col(column)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return expr.cast(pl.Datetime("us"))


def require_temporal(dtype: pl.DataType, column: str, what: str) -> None:
    if not is_temporal(dtype):
        raise FeatureStoreError(tr("{what} column {col!r} is {dtype}, not a date or datetime; convert it first "
                                   "(Select columns, Change types)", what=what, col=column, dtype=dtype))


def is_key_type(dtype: pl.DataType) -> bool:
    """Entity keys are integers or text: both have one canonical string form for the online store."""
    return dtype.is_integer() or isinstance(dtype, _STRINGY)


def latest_rows(lf: pl.LazyFrame, ent: str, ts: str) -> pl.LazyFrame:
    """One row per (entity, event time), the last in input order, sorted by event time then entity.

    A stable sort puts the copies of one (entity, time) next to each other in input order, so keeping the rows
    whose successor differs keeps the last write: cheaper than a hash-based unique over all rows.
    """
    last = pl.col(ts).ne_missing(pl.col(ts).shift(-1)) | pl.col(ent).ne_missing(pl.col(ent).shift(-1))
    return lf.sort(ts, ent, maintain_order=True).filter(last)


def prepare_part(frame: pl.DataFrame, ent: str, ts: str) -> tuple[pl.DataFrame, dict]:
    """The rows a part stores (deduplicated, in event-time order) and the layout fields of its registry record:
    the event-time range in UTC microseconds, which tells whether later parts overlap it."""
    stored = latest_rows(frame.lazy(), ent, ts).collect()
    epoch = utc_naive(ts, stored.schema[ts]).dt.epoch("us")
    first, last = stored.select(epoch.first().alias("first"), epoch.last().alias("last")).row(0)
    return stored, {"layout": SORTED, "first_us": first, "last_us": last}


def write_part(root: Path, view_id: str, stored: pl.DataFrame) -> tuple[str, str]:
    """Write one Parquet part for a view (atomically); return its file name and content hash."""
    name = new_part_name()
    target = root / "offline" / view_id / name
    with atomic_output_path(target) as tmp:
        stored.write_parquet(tmp, compression=_COMPRESSION, statistics=True)
    return name, sha256_file(target)


def parts_layout(parts: list[dict]) -> str:
    """SORTED when the parts, read in write order, are unique per (entity, time) and in time order: every part is
    stored sorted and each starts strictly after the previous one ends. Otherwise "overlapping": a read merges."""
    end = None
    for part in parts:
        if part.get("layout") != SORTED:
            return "overlapping"
        first, last = part.get("first_us"), part.get("last_us")
        if first is None:  # an empty part adds nothing
            continue
        if not isinstance(first, int) or not isinstance(last, int) or (end is not None and first <= end):
            return "overlapping"
        end = last
    return SORTED


def part_paths(root: Path, entry: dict) -> list[Path]:
    folder = root / "offline" / checked_id(entry)
    return [folder / checked_part(p["file"]) for p in entry.get("parts", [])]


def scan(root: Path, entry: dict) -> pl.LazyFrame:
    """The view's rows, one per (entity, event time) - the last written - sorted by event time, plus EVENT_TS
    (flagged sorted); lazy, all columns."""
    paths = part_paths(root, entry)
    if not paths:
        raise FeatureStoreError(tr("Feature view data is missing from the registry entry {vid}", vid=entry["id"]))
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FeatureStoreError(tr("Feature store data files are missing: {files} (folder {folder})",
                                   files=", ".join(missing), folder=paths[0].parent))
    ent, ts = entry["entity"], entry["timestamp"]
    lf = pl.scan_parquet([str(p) for p in paths], glob=False)  # parts in write order, rows in file order
    dtype = lf.collect_schema()[ts]
    if entry.get("offline_layout") != SORTED or parts_layout(entry["parts"]) != SORTED:
        lf = latest_rows(lf, ent, ts)  # overlapping or legacy parts: merge them, newest write wins
    # (LazyFrame.set_sorted, not Expr.set_sorted: polars 2.1 pushes a filter on an Expr.set_sorted column into the scan)
    return lf.with_columns(utc_naive(ts, dtype).alias(EVENT_TS)).set_sorted(EVENT_TS)


def key_target(left: pl.DataType, right: pl.DataType, column: str) -> pl.DataType:
    """The type both sides of an entity key are cast to: only lossless widenings, else a clear error."""
    if left == right or left == pl.Null:  # an all-null key column: nothing to lose
        return right
    if left.is_integer() and right.is_integer():
        unsigned = not left.is_signed_integer() and not right.is_signed_integer()
        return pl.UInt64 if unsigned else pl.Int64
    if isinstance(left, _STRINGY) and isinstance(right, _STRINGY):
        return pl.String
    raise FeatureStoreError(tr("Entity column {col!r} is {left} in the entity table but {right} in the feature "
                               "view; convert it so both are the same kind", col=column, left=left, right=right))


def _cast_key(column: str, target: pl.DataType, source: pl.DataType) -> pl.Expr:
    return pl.col(column) if source == target else pl.col(column).cast(target, strict=True)


def _view_join(root: Path, entity_df: pl.DataFrame, left: pl.DataFrame, pick: Pick) -> pl.LazyFrame:
    """The pick's output columns, one row per row of `left` (which is sorted by label time) in the same order."""
    ent = pick.entry["entity"]
    right = scan(root, pick.entry)
    right_dtype = right.collect_schema()[ent]
    left_dtype = entity_df.schema[ent]
    target = key_target(left_dtype, right_dtype, ent)
    if left_dtype != target and not entity_df[ent].is_null().all():
        try:
            entity_df[ent].cast(target, strict=True)
        except pl.exceptions.PolarsError:
            raise FeatureStoreError(tr("Entity column {col!r}: values of type {left} do not fit the feature "
                                       "view's type {right}", col=ent, left=left_dtype, right=right_dtype)) from None
    feats = list(dict.fromkeys(f for f, _ in pick.features))
    wanted = left.select(_cast_key(ent, target, left_dtype).unique())[ent]
    # Only the history of entities that are asked about: the as-of join hashes every right row it is given, and a
    # training set usually names a fraction of the entities (the filter keeps the time order).
    right = (right.select(_cast_key(ent, target, right_dtype), EVENT_TS, *feats)
                  .filter(pl.col(ent).is_in(wanted.implode())))
    joined = left.lazy().select(_cast_key(ent, target, left_dtype), _LABEL).join_asof(
        right, left_on=_LABEL, right_on=EVENT_TS, by=ent, strategy="backward", check_sortedness=False)
    ttl = pick.entry.get("ttl_days")
    if ttl is None:
        return joined.select(pl.col(f).alias(o) for f, o in pick.features)
    fresh = (pl.col(_LABEL) - pl.col(EVENT_TS)) <= timedelta(days=float(ttl))
    return joined.select(pl.when(fresh).then(pl.col(f)).alias(o) for f, o in pick.features)


def point_in_time(root: Path, entity_df: pl.DataFrame, timestamp: str, picks: list[Pick]) -> pl.DataFrame:
    """For each entity row and view, the latest feature row with event time <= label time (and within the ttl).

    The entity rows are sorted by label time once; each view is as-of joined to that sorted frame (the views run in
    parallel, and an as-of join keeps the left order, so the results line up side by side), and one gather by the
    row number restores the entity table's order. Rows with a null label time are left out of the joins and get
    null features; a null key never matches.
    """
    label_dtype = entity_df.schema[timestamp]
    require_temporal(label_dtype, timestamp, tr("Label time"))
    keys = list(dict.fromkeys(p.entry["entity"] for p in picks))
    try:
        left = (entity_df.lazy()
                .select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW), *keys,
                        utc_naive(timestamp, label_dtype).alias(_LABEL))
                .filter(pl.col(_LABEL).is_not_null())
                .sort(_LABEL)
                .collect())
        parts = pl.collect_all([_view_join(root, entity_df, left, pick) for pick in picks])
    except pl.exceptions.PolarsError as exc:
        raise FeatureStoreError(tr("The point-in-time join failed: {exc}", exc=str(exc).splitlines()[0])) from None
    found = pl.concat([left.select(_ROW), *parts], how="horizontal")
    if found.height == entity_df.height:  # every label time present: a permutation of the rows
        return pl.concat([entity_df, found.sort(_ROW).drop(_ROW)], how="horizontal")
    return (entity_df.with_row_index(_ROW)
            .join(found, on=_ROW, how="left", maintain_order="left")
            .drop(_ROW))
