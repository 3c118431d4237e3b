"""FeatureStore: register feature views, point-in-time training sets, and fast online lookups.

The facade ties the registry (what exists), the offline Parquet parts (history) and an online backend (latest
values) together. It keeps the parsed registry and the resolved lookup plans in memory and re-reads registry.json
only when its stat stamp changes, which is what makes a one-row `online_features` call cost tens of microseconds.
"""
from __future__ import annotations

import getpass
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import polars as pl

from engine.featurestore.offline import (
    EVENT_TS,
    Pick,
    is_key_type,
    parts_layout,
    point_in_time,
    prepare_part,
    require_temporal,
    scan,
    write_part,
)
from engine.featurestore.online import (
    SKIP,
    LookupPlan,
    OnlineBackend,
    ReadView,
    decoder,
    mask_url,
    open_backend,
    pack_rows,
    stored_order,
    value_columns,
    view_key,
)
from engine.featurestore.registry import (
    INTERNAL_PREFIX,
    FeatureStoreError,
    FeatureView,
    Registry,
    checked_id,
    new_id,
    validate_view_name,
    view_from_entry,
)
from engine.i18n import tr
from engine.signing import ledgerflow_home

ROOT_ENV = "LEDGERFLOW_FEATURE_STORE"
_log = logging.getLogger("ledgerflow.featurestore")
# dtype names a FeatureView may declare to have a column cast on registration
_SIMPLE_DTYPES: dict[str, pl.DataType] = {
    "Int8": pl.Int8(), "Int16": pl.Int16(), "Int32": pl.Int32(), "Int64": pl.Int64(), "UInt8": pl.UInt8(),
    "UInt16": pl.UInt16(), "UInt32": pl.UInt32(), "UInt64": pl.UInt64(), "Float32": pl.Float32(),
    "Float64": pl.Float64(), "Boolean": pl.Boolean(), "String": pl.String(), "Utf8": pl.String(), "Date": pl.Date(),
    "Datetime": pl.Datetime("us"),
}
_UNSUPPORTED = (pl.Binary, pl.Object)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _naive_utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if not isinstance(moment, datetime):
        raise FeatureStoreError(tr("'until' must be a datetime, got {value!r}", value=moment))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class FeatureStore:
    """A feature store in a folder: registry.json, offline/<view id>/part-*.parquet and online.sqlite (or Redis)."""

    def __init__(self, root: str | Path, online: str | None = None) -> None:
        self.root = Path(root).expanduser()
        self._registry = Registry(self.root)
        self._online_spec = online
        self._backend: OnlineBackend | None = None
        self._plans: dict[tuple[str, ...], LookupPlan] = {}
        self._plans_generation = -1

    @classmethod
    def default_root(cls) -> Path:
        env = os.environ.get(ROOT_ENV)
        return Path(env).expanduser() if env else ledgerflow_home() / "featurestore"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # ---- registry ------------------------------------------------------------------------------------------
    def views(self) -> list[FeatureView]:
        return [view_from_entry(n, e) for n, e in sorted(self._registry.views().items())]

    def view(self, name: str) -> FeatureView:
        return view_from_entry(name, self._entry(name))

    def _entry(self, name: str) -> dict:
        views = self._registry.views()
        entry = views.get(name)
        if entry is None:
            known = ", ".join(sorted(views)) or tr("none registered yet")
            raise FeatureStoreError(tr("Unknown feature view {name!r}. Known views: {known}", name=name,
                                       known=known))
        return entry

    def register(self, view: FeatureView, data: pl.DataFrame) -> FeatureView:
        """Validate `data` against `view`, append it to the offline store and return the stored view.

        A re-registration with the same schema appends (newest write wins per entity and event time); a
        different schema starts a new version whose data replaces the old version's.
        """
        validate_view_name(view.name)
        frame, schema, dropped = _prepare(view, data)
        stored, layout = prepare_part(frame, view.entity, view.timestamp)  # outside the lock: the slow part
        with self._registry.update() as doc:
            old = doc["views"].get(view.name)
            vid = checked_id(old) if old else new_id()
            part, digest = write_part(self.root, vid, stored)
            stamp = _now_iso()
            lineage = {**view.lineage, "input_rows": data.height, "stored_rows": stored.height,
                       "dropped_null_key_or_time_rows": dropped,
                       "replaced_repeated_key_time_rows": frame.height - stored.height, "content_sha256": digest,
                       "part": part, "registered_at": stamp, "user": _user()}
            part_doc = {"file": part, "rows": stored.height, "sha256": digest, "registered_at": stamp, **layout}
            same = old is not None and _schema_key(old) == _schema_key(schema)
            parts = [*old["parts"], part_doc] if same else [part_doc]
            entry = {**schema, "id": vid, "ttl_days": view.ttl_days, "description": view.description,
                     "lineage": lineage, "created_at": old["created_at"] if old else stamp, "updated_at": stamp,
                     "version": int(old["version"]) + (0 if same else 1) if old else 1,
                     "parts": parts, "offline_layout": parts_layout(parts)}
            doc["views"][view.name] = entry
        _log.info("registered %d rows in feature view %s (version %d)", stored.height, view.name, entry["version"])
        return view_from_entry(view.name, entry)

    # ---- offline -------------------------------------------------------------------------------------------
    def offline(self, name: str) -> pl.LazyFrame:
        entry = self._entry(name)
        return scan(self.root, entry).select(entry["entity"], entry["timestamp"], *entry["features"])

    def _resolve(self, features: list[str], taken: set[str]) -> list[Pick]:
        """Parse "view" / "view:feature" into picks with output names: `feature`, or `view__feature` when the
        name is requested from several views or is already a column (an entity key, a label column)."""
        if isinstance(features, str) or not features:
            raise FeatureStoreError(tr("Ask for at least one feature, as a list of 'view' or 'view:feature'"))
        views = self._registry.views()
        wanted: dict[str, list[str]] = {}
        for spec in features:
            if not isinstance(spec, str):
                raise FeatureStoreError(tr("Feature {spec!r} must be text like 'view' or 'view:feature'", spec=spec))
            name, sep, feat = spec.partition(":")
            entry = self._entry(name)
            chosen = wanted.setdefault(name, [])
            if not sep:
                chosen.extend(f for f in entry["features"] if f not in chosen)
            elif feat not in entry["features"]:
                raise FeatureStoreError(tr("Feature view {view!r} has no feature {feat!r}. Its features are: {have}",
                                           view=name, feat=feat, have=", ".join(entry["features"])))
            elif feat not in chosen:
                chosen.append(feat)
        taken = taken | {views[n]["entity"] for n in wanted}
        counts: dict[str, int] = {}
        for feats in wanted.values():
            for f in feats:
                counts[f] = counts.get(f, 0) + 1
        used: set[str] = set()
        picks = []
        for name, feats in wanted.items():
            pairs = []
            for f in feats:
                out = f if counts[f] == 1 and f not in taken else f"{name}__{f}"
                if out in used or out in taken:
                    raise FeatureStoreError(tr("Two output columns would both be named {out!r}; rename a column",
                                               out=out))
                used.add(out)
                pairs.append((f, out))
            picks.append(Pick(view=name, entry=views[name], features=tuple(pairs)))
        return picks

    def historical_features(self, entity_df: pl.DataFrame, features: list[str], *, timestamp: str) -> pl.DataFrame:
        """The entity table with, per row and view, the latest feature values known at the row's label time."""
        if not isinstance(entity_df, pl.DataFrame):
            raise FeatureStoreError(tr("The entity table must be a polars DataFrame"))
        if timestamp not in entity_df.columns:
            raise FeatureStoreError(tr("The entity table has no label time column {col!r}. Columns are: {have}",
                                       col=timestamp, have=", ".join(entity_df.columns)))
        require_temporal(entity_df.schema[timestamp], timestamp, tr("Label time"))
        picks = self._resolve(features, set(entity_df.columns))
        for pick in picks:
            ent = pick.entry["entity"]
            if ent not in entity_df.columns:
                raise FeatureStoreError(tr("Feature view {view!r} is keyed by {col!r}, but the entity table has no "
                                           "such column. Columns are: {have}", view=pick.view, col=ent,
                                           have=", ".join(entity_df.columns)))
        return point_in_time(self.root, entity_df, timestamp, picks)

    # ---- online --------------------------------------------------------------------------------------------
    def _online(self) -> OnlineBackend:
        if self._backend is None:
            self._backend = open_backend(self.root, self._online_spec)
        return self._backend

    def materialize(self, names: list[str] | None = None, until: datetime | None = None) -> dict[str, int]:
        """Write each view's latest value per entity with event time <= `until` (default now) to the online store.

        Each view's online values are replaced as a whole, so the online store is exactly "as of `until`". The
        views' latest rows are computed in parallel; views sharing an entity column are written together.
        """
        views = self._registry.views()
        cutoff = _naive_utc(until)
        chosen = list(names) if names else sorted(views)
        entries = {n: self._entry(n) for n in chosen}
        backend = self._online()
        plans = []
        for entry in entries.values():
            ent = entry["entity"]
            lf = scan(self.root, entry)
            plans.append(lf.filter(pl.col(EVENT_TS) <= cutoff)
                           .unique(subset=[ent], keep="last")  # rows are in event-time order: the latest
                           .select(pl.col(ent).cast(pl.String).alias("k"),
                                   pl.col(EVENT_TS).dt.epoch("us").alias("ts"),
                                   *value_columns(lf.collect_schema(), entry["dtypes"],
                                                  stored_order(entry["features"]))))
        frames = {name: frame.select("k", "ts", pack_rows(frame, len(entry["features"])))
                  for (name, entry), frame in zip(entries.items(), pl.collect_all(plans))}
        by_entity: dict[str, dict[str, pl.DataFrame]] = {}
        for name, entry in entries.items():
            by_entity.setdefault(entry["entity"], {})[view_key(checked_id(entry), entry["version"])] = frames[name]
        for ent, group in by_entity.items():
            backend.write(ent, group)
        written = {name: frames[name].height for name in entries}
        for name, count in written.items():
            _log.info("materialized %d entities of %s into %s", count, name, mask_url(self._online_spec or "sqlite"))
        return written

    def _online_plan(self, features: list[str]) -> LookupPlan:
        """Resolve a feature list once: the views to read grouped by entity, and each stored value's output name."""
        picks = self._resolve(features, set())
        entities = tuple(dict.fromkeys(p.entry["entity"] for p in picks))
        views, names, decoders = [], [], []
        for index, ent in enumerate(entities):
            for pick in (p for p in picks if p.entry["entity"] == ent):
                e = pick.entry
                ttl = e.get("ttl_days")
                order = stored_order(e["features"])
                views.append(ReadView(entity=index, key=view_key(checked_id(e), e["version"]), width=len(order),
                                      ttl_us=None if ttl is None else int(float(ttl) * 86_400_000_000)))
                outs = dict(pick.features)
                names.extend(outs.get(f, SKIP) for f in order)
                for f, out in pick.features:
                    dec = decoder(e["dtypes"].get(f, ""))
                    if dec is not None:
                        decoders.append((out, dec))
        outputs = tuple(out for p in picks for _, out in p.features)
        return LookupPlan(entities, tuple(views), tuple(names), outputs, tuple(decoders))

    def online_features(self, features: list[str], entity_rows: list[dict]) -> list[dict]:
        """Latest materialized values for each entity row: its entity keys plus the requested features, None for
        an unknown entity or a value older than the view's ttl (measured from now)."""
        registry = self._registry
        registry.views()  # a stat; re-reads registry.json only when it changed
        if registry.generation != self._plans_generation:
            self._plans.clear()
            self._plans_generation = registry.generation
        fkey = tuple(features)
        plan = self._plans.get(fkey)
        if plan is None:
            plan = self._plans[fkey] = self._online_plan(features)
        return plan.run(self._backend or self._online(), entity_rows)


def _schema_key(entry: dict) -> tuple:
    return (entry["entity"], entry["timestamp"], entry["entity_dtype"], entry["timestamp_dtype"],
            tuple(sorted(entry["features"])), tuple(sorted(entry["dtypes"].items())))


def _prepare(view: FeatureView, data: pl.DataFrame) -> tuple[pl.DataFrame, dict, int]:
    """Check the data against the view and return (rows to store, schema part of the entry, rows dropped)."""
    if not isinstance(data, pl.DataFrame):
        raise FeatureStoreError(tr("Feature data must be a polars DataFrame"))
    ent, ts = view.entity, view.timestamp
    have = ", ".join(data.columns)
    for what, col in ((tr("Entity"), ent), (tr("Event time"), ts)):
        if not isinstance(col, str) or col not in data.columns:
            raise FeatureStoreError(tr("{what} column {col!r} is not in the table. Columns are: {have}", what=what,
                                       col=col, have=have))
    if ent == ts:
        raise FeatureStoreError(tr("The entity and event time columns must differ (both are {col!r})", col=ent))
    features = list(view.features) or [c for c in data.columns if c not in (ent, ts)]
    if not features:
        raise FeatureStoreError(tr("The table has no feature columns besides {ent!r} and {ts!r}", ent=ent, ts=ts))
    if len(set(features)) != len(features):
        raise FeatureStoreError(tr("A feature is listed twice: {feats}", feats=", ".join(features)))
    missing = [f for f in features if f not in data.columns]
    if missing:
        raise FeatureStoreError(tr("Feature column {cols} is not in the table. Columns are: {have}",
                                   cols=", ".join(repr(f) for f in missing), have=have))
    if ent in features:
        raise FeatureStoreError(tr("The entity column {col!r} cannot also be a feature", col=ent))
    internal = [f for f in features if f.startswith(INTERNAL_PREFIX)]
    if internal:
        raise FeatureStoreError(tr("Column names starting with {prefix!r} are reserved: {cols}",
                                   prefix=INTERNAL_PREFIX, cols=", ".join(internal)))
    require_temporal(data.schema[ts], ts, tr("Event time"))
    if not is_key_type(data.schema[ent]):
        raise FeatureStoreError(tr("Entity column {col!r} is {dtype}; entity keys must be integers or text",
                                   col=ent, dtype=data.schema[ent]))
    frame = data.select(ent, ts, *features)
    if data.schema[ent] != pl.String and not data.schema[ent].is_integer():
        frame = frame.with_columns(pl.col(ent).cast(pl.String))
    frame = _apply_dtypes(frame, view.dtypes, features)
    for f in features:
        if isinstance(frame.schema[f], _UNSUPPORTED):
            raise FeatureStoreError(tr("Feature {feat!r} is {dtype}, which a feature store cannot hold", feat=f,
                                       dtype=frame.schema[f]))
    kept = frame.filter(pl.col(ent).is_not_null() & pl.col(ts).is_not_null())
    schema = {"entity": ent, "timestamp": ts, "features": features, "entity_dtype": str(kept.schema[ent]),
              "timestamp_dtype": str(kept.schema[ts]), "dtypes": {f: str(kept.schema[f]) for f in features}}
    return kept, schema, frame.height - kept.height


def _apply_dtypes(frame: pl.DataFrame, dtypes: dict[str, str], features: list[str]) -> pl.DataFrame:
    """Declared dtypes must match the data or name a simple type the column converts to without loss."""
    for f, declared in dtypes.items():
        if f not in features:
            raise FeatureStoreError(tr("dtypes names {feat!r}, which is not a feature of the view", feat=f))
        actual = frame.schema[f]
        if str(actual) == declared:
            continue
        target = _SIMPLE_DTYPES.get(declared)
        if target is None:
            raise FeatureStoreError(tr("Feature {feat!r}: dtype {declared!r} is not understood; use one of {names}",
                                       feat=f, declared=declared, names=", ".join(_SIMPLE_DTYPES)))
        try:
            frame = frame.with_columns(pl.col(f).cast(target, strict=True))
        except pl.exceptions.PolarsError:
            raise FeatureStoreError(tr("Feature {feat!r} is {actual} and cannot be converted to {declared}",
                                       feat=f, actual=actual, declared=declared)) from None
    return frame
