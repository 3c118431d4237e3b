"""Online stores: the latest feature values per entity, for lookups at serving time (SQLite or Redis).

What both backends hold, per view version and canonical entity key (the key's text form): the event time in UTC
microseconds and the view's features as one msgpack *fragment* - the elements of an array without its header, in
the view's sorted feature order. A lookup asks the backend for one msgpack array per entity row - a header, then
every requested view's fragment or as many nils - and turns it into the output dict with one `msgpack.unpackb` and
one `dict.update(zip(...))`: no per-feature Python work except for the few types msgpack lacks (dates, times,
decimals), which get a precomputed decoder. (msgpack rather than JSON: it decodes 50 floats ~15x faster, keeps
NaN and infinities, and fragments concatenate.)

A `LookupPlan` is resolved once per feature list (and registry change) and holds everything a call needs; the
backend keeps its prepared form (SQL text, key prefixes) on the plan.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from numbers import Integral
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import msgpack
import polars as pl

from engine.featurestore.registry import INTERNAL_PREFIX, FeatureStoreError
from engine.i18n import tr

PASSWORD_ENV = "LEDGERFLOW_REDIS_PASSWORD"
VALUE = f"{INTERNAL_PREFIX}value"  # materialize's feature columns, VALUE0, VALUE1, ... in the stored order
SKIP = "\x00skip"  # output name for a stored value the request does not ask for (removed from the result)


def view_key(view_id: str, version: int) -> str:
    """Online storage name of one view version: a new schema version never reads the old version's values."""
    return f"{view_id}_v{int(version)}"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def null_fragment(width: int) -> bytes:
    """The fragment of a view with no value: `width` msgpack nils."""
    return b"\xc0" * width


# ---- encoding -------------------------------------------------------------------------------------------------
# Leaf types msgpack cannot carry: such values travel as text (or, nested, as JSON text) and are decoded back.
_FOREIGN = ("Date", "Time", "Duration", "Decimal", "Categorical", "Enum", "Int128", "UInt128", "Object", "Binary")
_NESTED = ("List", "Array", "Struct")


def _as_json(dtype: str) -> bool:
    """A nested column holding a leaf msgpack lacks is stored as JSON text. Decided from the dtype *name* (what the
    registry records), so materialize and lookup always agree."""
    return dtype.startswith(_NESTED) and any(word in dtype for word in _FOREIGN)


def _plain(expr: pl.Expr, dtype: pl.DataType, name: str) -> pl.Expr:
    """One feature column with msgpack-ready values; types msgpack lacks become strings or integers first."""
    if _as_json(name):
        return pl.struct(expr.alias("a")).struct.json_encode().str.strip_prefix('{"a":').str.strip_suffix("}")
    if isinstance(dtype, pl.Datetime):
        zoned = dtype.time_zone is not None
        if zoned:
            expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return expr.dt.cast_time_unit("us").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f" + ("+00:00" if zoned else ""))
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    if dtype == pl.Time:
        return expr.dt.to_string("%H:%M:%S%.6f")
    if isinstance(dtype, pl.Duration):
        return expr.dt.total_microseconds()
    if isinstance(dtype, (pl.Categorical, pl.Enum, pl.Decimal)) or dtype in (pl.Int128, pl.UInt128):
        return expr.cast(pl.String)
    return expr


def value_columns(schema: pl.Schema, dtypes: dict[str, str], features: list[str]) -> list[pl.Expr]:
    """The features, msgpack-ready, as columns VALUE0, VALUE1, ... in the order given (the stored order)."""
    return [_plain(pl.col(f), schema[f], dtypes.get(f, str(schema[f]))).alias(f"{VALUE}{i}")
            for i, f in enumerate(features)]


def pack_rows(frame: pl.DataFrame, width: int) -> pl.Series:
    """Each row's VALUE columns as one msgpack fragment: the array's elements without the array header, so the
    fragments of several views concatenate into one array under a header for their total count."""
    pack = msgpack.Packer().pack
    skip = len(pack((None,) * width)) - width  # the header's length (each nil is one byte)
    columns = [frame[f"{VALUE}{i}"].to_list() for i in range(width)]
    return pl.Series("v", [pack(row)[skip:] for row in zip(*columns)], dtype=pl.Binary)


def array_header(count: int) -> bytes:
    """The msgpack header of an array of `count` elements."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def stored_order(features: list[str] | tuple[str, ...]) -> list[str]:
    """The order of a view's values in the online store: sorted, so a re-registration that lists the same features
    in another order (same schema, same version) still reads values written before."""
    return sorted(features)


def _maybe(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else fn(v)


def decoder(dtype: str) -> Callable[[Any], Any] | None:
    """How to turn a stored value back into the Python value of a dtype (None: msgpack already gives it)."""
    if _as_json(dtype):
        return _maybe(json.loads)
    if dtype.startswith("Datetime"):
        return _maybe(datetime.fromisoformat)
    if dtype == "Date":
        return _maybe(date.fromisoformat)
    if dtype == "Time":
        return _maybe(dtime.fromisoformat)
    if dtype.startswith("Duration"):
        return _maybe(lambda v: timedelta(microseconds=v))
    if dtype.startswith("Decimal"):
        return _maybe(Decimal)
    if dtype in ("Int128", "UInt128"):
        return _maybe(int)
    return None


def canonical_key(value: Any) -> str | None:
    """The text form of an entity key, as materialize stores it (polars' cast of the key column to String)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---- lookup plans ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadView:
    """One stored view version a lookup reads: its entity (index into the plan's entities), storage key, number of
    stored values and ttl."""

    entity: int
    key: str
    width: int
    ttl_us: int | None


class LookupPlan:
    """A resolved online request. The backend returns, per entity row, the msgpack array of every view's fragment in
    `views` order; `names` gives each array position its output name (SKIP for values nobody asked for).

    Each result starts as a copy of `template` (entity keys, then the outputs in request order, all None), so the
    output order is the request's whatever the stored order, and an entity with no values needs no further work.
    """

    __slots__ = ("decoders", "entities", "names", "prepared", "skips", "template", "views")

    def __init__(self, entities: tuple[str, ...], views: tuple[ReadView, ...], names: tuple[str, ...],
                 outputs: tuple[str, ...], decoders: tuple[tuple[str, Callable[[Any], Any]], ...]) -> None:
        self.entities = entities
        self.views = views
        self.names = names
        self.skips = SKIP in names
        self.decoders = decoders
        self.template = dict.fromkeys((*entities, *outputs))
        self.prepared: Any = None  # the backend's own form of the plan, made on first use

    def run(self, backend: OnlineBackend, rows: list[dict]) -> list[dict]:
        """The output dicts for `rows` (the hot path of a lookup: keep it lean)."""
        if not rows:
            return []
        entities, template = self.entities, self.template
        results, keys = [], []
        try:
            if len(entities) == 1:
                ent = entities[0]
                for row in rows:
                    res = template.copy()
                    res[ent] = value = row[ent]
                    results.append(res)
                    keys.append((canonical_key(value),))
            else:
                for row in rows:
                    res = template.copy()
                    values = tuple(row[e] for e in entities)
                    res.update(zip(entities, values))
                    results.append(res)
                    keys.append(tuple(canonical_key(v) for v in values))
        except (KeyError, TypeError):
            raise FeatureStoreError(missing_key_message(rows, entities)) from None
        names, unpack = self.names, msgpack.unpackb
        if len(keys) == 1:
            packed = backend.read_one(self, keys[0])
            if packed is not None:
                results[0].update(zip(names, unpack(packed)))
        else:
            for res, packed in zip(results, backend.read_many(self, keys)):
                if packed is not None:
                    res.update(zip(names, unpack(packed)))
        if self.skips:
            for res in results:
                res.pop(SKIP, None)
        for out, dec in self.decoders:
            for res in results:
                res[out] = dec(res[out])
        return results


def now_us() -> int:
    return time.time_ns() // 1000


def missing_key_message(rows: list, entities: tuple[str, ...]) -> str:
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            return tr("Entity row {n} must be a dict of entity keys, got {kind}", n=i + 1, kind=type(row).__name__)
        for e in entities:
            if e not in row:
                return tr("Entity row {n} has no key {col!r}; the requested views need: {need}", n=i + 1, col=e,
                          need=", ".join(entities))
    return tr("Entity rows must be dicts holding: {need}", need=", ".join(entities))


# ---- backends -------------------------------------------------------------------------------------------------
class OnlineBackend(Protocol):
    """What materialize writes to and lookups read from.

    `write` replaces the values of the given view versions (all keyed by one entity column) as a whole: each frame
    has columns k (canonical key), ts (event time, UTC microseconds) and v (msgpack fragment). The read methods
    return, per entity row (a tuple of canonical keys in `plan.entities` order), the msgpack array or None (no value
    at all).
    """

    def write(self, entity: str, frames: dict[str, pl.DataFrame]) -> None: ...
    def read_one(self, plan: LookupPlan, keys: tuple[str | None, ...]) -> bytes | None: ...
    def read_many(self, plan: LookupPlan, keys: list[tuple[str | None, ...]]) -> list[bytes | None]: ...
    def close(self) -> None: ...


def open_backend(root: Path, online: str | None) -> OnlineBackend:
    """None/"sqlite" -> SQLite in the store folder; redis:// or rediss:// -> Redis; anything else is an error."""
    if online in (None, "", "sqlite"):
        from engine.featurestore.online_sqlite import SQLiteOnline

        return SQLiteOnline(root / "online.sqlite")
    if online.startswith(("redis://", "rediss://")):
        from engine.featurestore.online_redis import RedisOnline

        return RedisOnline(online)
    raise FeatureStoreError(tr("Online store {url!r}: use empty or 'sqlite' for SQLite, or a redis:// URL",
                               url=mask_url(online)))
