"""The SQLite online store: `<root>/online.sqlite` in WAL mode, one wide table per entity key column.

Layout: the table for an entity column holds one row per entity key (`k`, the canonical key text) and, per view
version keyed by that column, two columns: `t_<view id>_v<version>` (event time, UTC microseconds) and
`b_<view id>_v<version>` (the msgpack fragment of its values). A lookup of any number of views on one entity is
then one primary-key probe returning one blob: the statement concatenates an array header and the views' fragments
(nils for a missing value, or - checked in SQL against a cutoff parameter - an expired one) into the msgpack array
the plan decodes. Views on several entities are one statement too (a scalar subquery per entity table).

Names: tables are `e_<uuid hex>`, recorded per entity column name in `lf_entity_tables`; columns are built from the
view's generated id and version. User text is only ever a bound parameter. A schema change makes a new version and
so new columns: old values are never served for it, and materializing the new version drops the old columns.

Connections: one for writing (materialize) and one for lookups (`PRAGMA query_only`), each used under its own
lock, so the store may be shared between threads. (No mmap: measured, its first-touch page faults cost more than
reads served from the OS cache.)
"""
from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.featurestore.online import LookupPlan, array_header, now_us, null_fragment
from engine.featurestore.registry import FeatureStoreError
from engine.i18n import tr

_CATALOGUE = "lf_entity_tables"
_TABLE = re.compile(r"^e_[0-9a-f]{32}$")
_VIEW_KEY = re.compile(r"^([0-9a-f]{32})_v([0-9]+)$")
_COLUMN = re.compile(r"^[tb]_([0-9a-f]{32})_v[0-9]+$")
_LEGACY = re.compile(r"^fv_([0-9a-f]{32})_v[0-9]+$")  # one table per view version, before the wide layout
_CHUNK = 500


def _parts(key: str) -> tuple[str, str]:
    """(t column, b column) of a view version, refusing a malformed key."""
    if not _VIEW_KEY.match(key):
        raise FeatureStoreError(tr("Malformed online column name {key!r}", key=key))
    return f"t_{key}", f"b_{key}"


def _table(name: object) -> str:
    if not isinstance(name, str) or not _TABLE.match(name):
        raise FeatureStoreError(tr("Malformed online table name {name!r}", name=name))
    return name


def _hex(data: bytes) -> str:
    """A blob literal."""
    return f"X'{data.hex()}'"


def _quote(name: str) -> str:
    return f'"{name}"'  # only ever applied to names matched by the patterns above


@dataclass(frozen=True)
class _Group:
    """The views of one entity in a plan: their null fragment and the batch SELECT (None: none materialized)."""

    entity: int
    nulls: bytes
    select: str | None  # "SELECT k, <fragment> FROM <table> WHERE k IN " - the caller appends the placeholders
    ttl: tuple[int, ...]  # ttl of each cutoff parameter of `select`, in parameter order


@dataclass(frozen=True)
class _Prepared:
    """A plan's SQL for this database's schema."""

    one: str | None  # a single entity row's msgpack array; None: nothing the plan reads was ever materialized
    ttl: tuple[int, ...]  # ttl of each cutoff parameter of `one`, which follow the key parameters
    groups: tuple[_Group, ...]
    header: bytes  # the msgpack array header for all the plan's values
    complete: bool  # every view's columns exist: no need to watch the schema
    schema_version: int


_NOTHING = _Prepared(None, (), (), b"", False, -1)


class SQLiteOnline:
    """The wide-table SQLite online store (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()

    # ---- writing -------------------------------------------------------------------------------------------
    def _write_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: materialize rewrites whole tables
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_CATALOGUE} (entity TEXT PRIMARY KEY, tbl TEXT NOT NULL)")
            self._writer = conn
        return self._writer

    def write(self, entity: str, frames: dict[str, pl.DataFrame]) -> None:
        """Replace the values of the given view versions in the entity's table, in one transaction.

        All views' rows are joined on the key first, so each row is written once: an UPSERT that sets the
        views' columns and stamps the row with this write's token; rows left unstamped that still hold one of
        these views get its columns cleared, and rows left with no value at all are deleted.
        """
        cols = {key: _parts(key) for key in frames}
        joined = None
        for key, frame in frames.items():
            t, b = cols[key]
            part = frame.select("k", pl.col("ts").alias(t), pl.col("v").alias(b))
            joined = part if joined is None else joined.join(part, on="k", how="full", coalesce=True)
        assert joined is not None
        names = [c for key in frames for c in cols[key]]
        token = secrets.randbits(62)
        with self._wlock:
            conn = self._write_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                table = self._ensure_table(conn, entity)
                self._ensure_columns(conn, table, cols)
                sets = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in ["m", *names])
                conn.executemany(
                    f"INSERT INTO {_quote(table)} (k, m, {', '.join(map(_quote, names))}) "
                    f"VALUES (?, {token}, {', '.join('?' * len(names))}) ON CONFLICT(k) DO UPDATE SET {sets}",
                    zip(*(joined[c].to_list() for c in ["k", *names])))  # faster than iter_rows
                held = " OR ".join(f"{_quote(cols[key][0])} IS NOT NULL" for key in frames)
                cleared = conn.execute(
                    f"UPDATE {_quote(table)} SET {', '.join(f'{_quote(c)} = NULL' for c in names)} "
                    f"WHERE m IS NOT {token} AND ({held})").rowcount
                if cleared:
                    self._delete_empty_rows(conn, table)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _ensure_table(conn: sqlite3.Connection, entity: str) -> str:
        row = conn.execute(f"SELECT tbl FROM {_CATALOGUE} WHERE entity = ?", (entity,)).fetchone()
        if row is not None:
            return _table(row[0])
        table = f"e_{uuid.uuid4().hex}"
        conn.execute(f"CREATE TABLE {_quote(table)} (k TEXT PRIMARY KEY, m INTEGER)")
        conn.execute(f"INSERT INTO {_CATALOGUE} (entity, tbl) VALUES (?, ?)", (entity, table))
        return table

    @staticmethod
    def _ensure_columns(conn: sqlite3.Connection, table: str, cols: dict[str, tuple[str, str]]) -> None:
        """Add the views' columns; drop other versions' columns of the same views (in any entity table) and the
        per-view tables of the layout before this one."""
        ids = {_VIEW_KEY.match(key).group(1) for key in cols}  # type: ignore[union-attr]
        current = {c for pair in cols.values() for c in pair}
        tables = [_table(t) for (t,) in conn.execute(f"SELECT tbl FROM {_CATALOGUE}")]
        for other in tables:
            for (name,) in conn.execute(f"SELECT name FROM pragma_table_info('{other}')").fetchall():
                found = _COLUMN.match(name)
                if found and found.group(1) in ids and (other != table or name not in current):
                    conn.execute(f"ALTER TABLE {_quote(other)} DROP COLUMN {_quote(name)}")
        have = {name for (name,) in conn.execute(f"SELECT name FROM pragma_table_info('{table}')")}
        for t, b in cols.values():
            if t not in have:
                conn.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(t)} INTEGER")
                conn.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(b)} BLOB")
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'fv\\_%' "
                                    "ESCAPE '\\'").fetchall():
            found = _LEGACY.match(name)
            if found and found.group(1) in ids:
                conn.execute(f"DROP TABLE {_quote(name)}")

    @staticmethod
    def _delete_empty_rows(conn: sqlite3.Connection, table: str) -> None:
        times = [name for (name,) in conn.execute(f"SELECT name FROM pragma_table_info('{table}')")
                 if name.startswith("t_") and _COLUMN.match(name)]
        empty = " AND ".join(f"{_quote(c)} IS NULL" for c in times) or "1"
        conn.execute(f"DELETE FROM {_quote(table)} WHERE {empty}")

    # ---- reading -------------------------------------------------------------------------------------------
    def _read_conn(self) -> sqlite3.Connection | None:
        """The lookup connection, or None while the database does not exist (nothing materialized yet)."""
        if self._reader is None:
            if not self.path.is_file():
                return None
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30,
                                   cached_statements=512)
            conn.execute("PRAGMA query_only=1")
            self._reader = conn
        return self._reader

    def _prepare(self, conn: sqlite3.Connection | None, plan: LookupPlan) -> _Prepared:
        """The plan's SQL against the current schema: views never materialized read as null fragments."""
        if conn is None:
            return _NOTHING
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        tables: dict[str, str] = {}
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_CATALOGUE,)).fetchone():
            tables = {e: _table(t) for e, t in conn.execute(f"SELECT entity, tbl FROM {_CATALOGUE}")}
        columns = {t: {n for (n,) in conn.execute(f"SELECT name FROM pragma_table_info('{t}')")}
                   for t in set(tables.values())}
        nkeys = len(plan.entities)
        head = array_header(sum(v.width for v in plan.views))
        header = _hex(head)
        ttl_one: list[int] = []
        pieces, groups, complete = [], [], True
        for ent in range(nkeys):  # the store orders a plan's views by entity
            views = [v for v in plan.views if v.entity == ent]
            table = tables.get(plan.entities[ent])
            have = columns.get(table, set()) if table is not None else set()
            nulls = b"".join(null_fragment(v.width) for v in views)
            present = [_parts(v.key)[0] in have for v in views]
            complete &= all(present)
            if not any(present):
                pieces.append(_hex(nulls))
                groups.append(_Group(ent, nulls, None, ()))
                continue
            ttl_many: list[int] = []
            frag_many = self._fragment(views, present, ttl_many, 1)
            groups.append(_Group(ent, nulls, f"SELECT k, CAST({frag_many} AS BLOB) FROM {_quote(table)} WHERE k IN ",
                                 tuple(ttl_many)))
            frag = self._fragment(views, present, ttl_one, nkeys + 1)
            if nkeys == 1:  # one probe of one table; no row means every value is null
                one = f"SELECT CAST({header} || {frag} AS BLOB) FROM {_quote(table)} WHERE k = ?1"
                return _Prepared(one, tuple(ttl_one), tuple(groups), head, complete, version)
            pieces.append(f"ifnull((SELECT {frag} FROM {_quote(table)} WHERE k = ?{ent + 1}), {_hex(nulls)})")
        if all(g.select is None for g in groups):
            return _Prepared(None, (), tuple(groups), head, complete, version)
        one = f"SELECT CAST({header} || " + " || ".join(pieces) + " AS BLOB)"
        return _Prepared(one, tuple(ttl_one), tuple(groups), head, complete, version)

    @staticmethod
    def _fragment(views: list, present: list[bool], ttl: list[int], first: int) -> str:
        """SQL for the views' fragments joined by commas; a ttl becomes a cutoff parameter numbered from `first`
        on (`ttl` collects them in order): a value older than now minus the ttl reads as nulls."""
        exprs = []
        for v, here in zip(views, present):
            t, b = _parts(v.key)
            nulls = null_fragment(v.width)
            if not here:
                exprs.append(_hex(nulls))
            elif v.ttl_us is None:
                exprs.append(f"ifnull({_quote(b)}, {_hex(nulls)})")
            else:
                ttl.append(v.ttl_us)
                exprs.append(f"CASE WHEN {_quote(t)} >= ?{first + len(ttl) - 1} THEN {_quote(b)} ELSE {_hex(nulls)} END")
        return " || ".join(exprs)

    def _prepared(self, conn: sqlite3.Connection | None, plan: LookupPlan) -> _Prepared:
        """The plan's prepared form, redone when the schema may have gained one of its views' columns."""
        prep = plan.prepared
        if prep is None or (not prep.complete and (
                conn is None or conn.execute("PRAGMA schema_version").fetchone()[0] != prep.schema_version)):
            prep = plan.prepared = self._prepare(conn, plan)
        return prep

    @staticmethod
    def _cutoffs(ttl: tuple[int, ...]) -> tuple[int, ...]:
        now = now_us()
        return tuple(now - t for t in ttl)

    def read_one(self, plan: LookupPlan, keys: tuple[str | None, ...]) -> bytes | None:
        prep, conn = plan.prepared, self._reader
        if prep is not None and prep.complete and conn is not None:  # the hot path: no schema checks
            with self._rlock:
                try:
                    row = conn.execute(prep.one, (*keys, *self._cutoffs(prep.ttl)) if prep.ttl else keys
                                       ).fetchone()
                    return None if row is None else row[0]
                except sqlite3.OperationalError:
                    plan.prepared = None  # a column dropped under us: prepare again below
        return self._read(plan, keys, None)

    def read_many(self, plan: LookupPlan, keys: list[tuple[str | None, ...]]) -> list[bytes | None]:
        return self._read(plan, None, keys)  # type: ignore[return-value]

    def _read(self, plan: LookupPlan, one: tuple | None, many: list[tuple] | None) -> bytes | None | list:
        """A lookup with the plan (re)prepared as needed; an error that a concurrent schema change can cause
        ("no such column/table") prepares once more."""
        with self._rlock:
            try:
                conn = self._reader or self._read_conn()
                for attempt in (0, 1):
                    try:
                        prep = self._prepared(conn, plan)
                        if one is not None:
                            return self._one(conn, prep, one)
                        return self._many(conn, prep, many)  # type: ignore[arg-type]
                    except sqlite3.OperationalError as exc:
                        if attempt or "no such" not in str(exc):
                            raise
                        plan.prepared = None
            except sqlite3.Error as exc:
                raise FeatureStoreError(tr("Online store {path}: {exc}", path=self.path, exc=exc)) from None
        raise AssertionError("unreachable")

    def _one(self, conn: sqlite3.Connection | None, prep: _Prepared, keys: tuple) -> bytes | None:
        if conn is None or prep.one is None:
            return None
        row = conn.execute(prep.one, (*keys, *self._cutoffs(prep.ttl))).fetchone()
        return None if row is None else row[0]

    def _many(self, conn: sqlite3.Connection | None, prep: _Prepared, keys: list[tuple]) -> list[bytes | None]:
        if conn is None or prep.one is None:
            return [None] * len(keys)
        found: list[dict[str, bytes]] = []
        for group in prep.groups:
            hits: dict[str, bytes] = {}
            if group.select is not None:
                wanted = list({k[group.entity] for k in keys} - {None})
                cutoffs = self._cutoffs(group.ttl)
                first = len(cutoffs) + 1
                for i in range(0, len(wanted), _CHUNK):
                    chunk = wanted[i:i + _CHUNK]
                    marks = ", ".join(f"?{first + j}" for j in range(len(chunk)))
                    hits.update(conn.execute(f"{group.select}({marks})", (*cutoffs, *chunk)).fetchall())
            found.append(hits)
        header = prep.header
        out: list[bytes | None] = []
        for k in keys:
            parts = [hits.get(k[g.entity]) for g, hits in zip(prep.groups, found)]
            if all(p is None for p in parts):
                out.append(None)
            else:
                out.append(header + b"".join(g.nulls if p is None else p for g, p in zip(prep.groups, parts)))
        return out

    def close(self) -> None:
        for lock, attr in ((self._wlock, "_writer"), (self._rlock, "_reader")):
            with lock:
                conn = getattr(self, attr)
                if conn is not None:
                    conn.close()
                    setattr(self, attr, None)
