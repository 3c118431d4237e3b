"""The project's SQLite database (via SQLAlchemy): cache index, run log and experiment candidates.

One file per project, `.ledgerflow/ledgerflow.db`. Tables are created on first use; WAL mode lets the app read
while a run writes.
"""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock
from sqlalchemy import Column, Engine, Float, Integer, MetaData, String, Table, Text, create_engine, event

metadata = MetaData()

# cache_key -> one row per output port
cache_outputs = Table(
    "cache_outputs", metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("port", String(128), primary_key=True),
    Column("digest", String(64), nullable=False),
)

# one row per cache_key that completed (a node with no outputs still completes)
cache_entries = Table(
    "cache_entries", metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("type_id", String(128), nullable=False),
    Column("receipt", String(64)),
    Column("duration_s", Float),
    Column("mac", String(64), nullable=False),  # HMAC over key, outputs and receipt (engine/signing.py)
    Column("created_at", String(32), nullable=False),
)

# the last successful cache key of each node, to tell "stale" from "idle"
node_results = Table(
    "node_results", metadata,
    Column("node_id", String(64), primary_key=True),
    Column("cache_key", String(64), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(36), primary_key=True),
    Column("started_at", String(32), nullable=False),
    Column("ended_at", String(32)),
    Column("user", String(128), nullable=False),
    Column("host", String(255), nullable=False),
    Column("target", String(255), nullable=False),
    Column("executor", String(255), nullable=False),
    Column("outcome", String(16)),
    Column("environment", String(64), nullable=False),
)

environments = Table(
    "environments", metadata,
    Column("digest", String(64), primary_key=True),
    Column("python", String(64), nullable=False),
    Column("packages_json", Text, nullable=False),
)

run_records = Table(
    "run_records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False, index=True),
    Column("node_id", String(64), nullable=False, index=True),
    Column("node_title", String(255), nullable=False),
    Column("type_id", String(128), nullable=False),
    Column("type_version", Integer, nullable=False),
    Column("plugin", String(255), nullable=False),
    Column("user", String(128), nullable=False),
    Column("host", String(255), nullable=False),
    Column("executor", String(64), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("ended_at", String(32), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("settings_json", Text, nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("inputs_json", Text, nullable=False),
    Column("outputs_json", Text, nullable=False),
    Column("packages_json", Text, nullable=False),
    Column("environment", String(64), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("traceback", Text),
    # what the outputs measured (model metadata and metrics, evaluation metrics and curves): engine/experiments.py
    Column("metrics_json", Text, nullable=False, server_default="{}"),
)

# Candidate marks: an append-only audit trail. The current candidate of a training node is its latest "mark"
# event not followed by an "unmark"; earlier marks stay as history.
candidate_events = Table(
    "candidate_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(255), nullable=False),
    Column("node_id", String(64), nullable=False, index=True),
    Column("record_id", Integer, nullable=False),  # run_records.id of the training execution
    Column("action", String(16), nullable=False),  # "mark" | "unmark"
    Column("user", String(128), nullable=False),
    Column("host", String(255), nullable=False),
    Column("at", String(32), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
)


def open_db(state_dir: Path) -> Engine:
    state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{state_dir / 'ledgerflow.db'}",
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    # Two sessions may open a new project at the same moment (a sweep's members): the check-then-create of the
    # schema and the migration must not interleave across processes or threads.
    with FileLock(str(state_dir / "ledgerflow.db.lock")):
        _migrate(engine)
        metadata.create_all(engine)
    return engine


def state_dir_of(engine: Engine) -> Path | None:
    """The project state folder of a database opened by `open_db` (None for an in-memory database)."""
    database = engine.url.database
    return Path(database).parent if database and database != ":memory:" else None


SCHEMA_VERSION = 2
_REBUILDABLE = ("cache_outputs", "cache_entries", "node_results")  # the cache: safe to drop, it is recomputed


def _migrate(engine: Engine) -> None:
    """Bring an older project database up to SCHEMA_VERSION (PRAGMA user_version).

    Cache tables are rebuildable, so a schema change there drops them (the nodes simply re-run); run records are
    history and are only ever extended, never dropped.
    """
    with engine.begin() as conn:
        version = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
        if version >= SCHEMA_VERSION:
            return
        existing = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
        if existing and version < 1:  # before signed cache entries
            for name in _REBUILDABLE:
                if name in existing:
                    conn.exec_driver_sql(f"DROP TABLE {name}")
        if "run_records" in existing and version < 2:  # metrics recorded with each execution (experiments)
            columns = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(run_records)")}
            if "metrics_json" not in columns:
                conn.exec_driver_sql("ALTER TABLE run_records ADD COLUMN metrics_json TEXT NOT NULL DEFAULT '{}'")
        conn.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
