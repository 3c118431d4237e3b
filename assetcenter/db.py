"""The asset center's database schema and engines: SQLite (embedded) or PostgreSQL (shared), one schema for both.

Blobs never live in the database, only their hashes: the blob folder is content-addressed (assetcenter/blobs.py).
Names and ids stored here are never used to build a file path.

Embedded SQLite runs in WAL mode with synchronous=FULL: an acknowledged publish survives a power cut, and the app
can read while a CLI publishes. PostgreSQL is used as configured (fsync on by default).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import (Boolean, Column, Engine, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, create_engine, event)

metadata = MetaData()

KINDS = ("dataset", "feature_view", "model_package", "workflow", "plugin", "report")
STAGES = ("candidate", "validated", "production", "retired")  # model packages only
ROLES = ("viewer", "labeler", "analyst", "approver", "admin")
ALL_PROJECTS = "*"  # a role binding for every project

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("password_hash", Text),  # argon2; NULL: token login only
    Column("created_at", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

# API tokens are "<id>.<secret>": the id finds the row, the secret is checked against its argon2 hash.
tokens = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("secret_hash", Text, nullable=False),
    Column("label", String(255), nullable=False, default=""),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32)),  # NULL: no expiry
    Column("revoked_at", String(32)),
    Column("one_time", Boolean, nullable=False, default=False),  # the init token: exchanged once for a real one
    Column("used_at", String(32)),
)

role_bindings = Table(
    "role_bindings", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("project", String(128), primary_key=True),  # ALL_PROJECTS for every project
    Column("role", String(32), primary_key=True),
)

assets = Table(
    "assets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", String(32), nullable=False),
    # the newest version's number, kept by publish: "latest versions only" is then an indexed equality instead of
    # a per-row MAX() subquery (which took seconds at 100k versions)
    Column("latest_number", Integer, nullable=False, default=0),
    UniqueConstraint("project", "name", name="uq_asset_project_name"),
    Index("ix_assets_kind_name", "kind", "name"),
    Index("ix_assets_project", "project"),
)

# One immutable row per published version. `manifest_json` is the canonical JSON that is signed: it holds the
# asset's identity, the version number, the content and stored hashes, size, metadata, tags, lineage and owner,
# so any later edit of a row (or a rollback to another version's blob) no longer matches the signature.
versions = Table(
    "versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", Integer, ForeignKey("assets.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("content_sha256", String(64), nullable=False, index=True),  # of the plaintext bytes
    Column("stored_sha256", String(64), nullable=False),  # of the bytes on disk (ciphertext when encrypted)
    Column("size", Integer, nullable=False),
    Column("sensitive", Boolean, nullable=False, default=False),
    Column("encryption_json", Text),  # NULL, or {"alg", "wrapped_key": {...}} (assetcenter/crypto.py)
    Column("metadata_json", Text, nullable=False, default="{}"),
    Column("description", Text, nullable=False, default=""),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", String(32), nullable=False, index=True),
    Column("manifest_json", Text, nullable=False),
    Column("signature_json", Text, nullable=False),  # {"alg", "key_id", "signature"}
    Column("stage", String(16)),  # model packages: STAGES; NULL for other kinds
    UniqueConstraint("asset_id", "number", name="uq_version_number"),
    Index("ix_versions_stage", "stage"),
    Index("ix_versions_owner", "owner_id"),
)

version_tags = Table(
    "version_tags", metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("tag", String(128), primary_key=True, index=True),
)

# model ← dataset(s) ← workflow ← run: relation is e.g. "trained_on", "produced_by_run", "from_workflow";
# target_kind is "version" (target = versions.id as text), "run" (an engine run id) or "fingerprint" (a digest).
lineage = Table(
    "lineage", metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("relation", String(32), primary_key=True),
    Column("target_kind", String(16), primary_key=True),
    Column("target", String(128), primary_key=True),
)

stage_events = Table(
    "stage_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False, index=True),
    Column("from_stage", String(16)),
    Column("to_stage", String(16), nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", String(32), nullable=False),
)

# The tamper-evident trail: hash = SHA-256(prev_hash + canonical JSON of the entry's other fields).
audit = Table(
    "audit", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("asset", String(255)),
    Column("version", Integer),
    Column("remote", String(128)),
    Column("before_hash", String(64)),
    Column("after_hash", String(64)),
    Column("details_json", Text, nullable=False, default="{}"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row (id = 1): the chain's head. Updating it in the appending transaction serialises appends on both backends.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# How far each label store's event trail has been recorded in the audit log (assetcenter/service.py
# record_label_events): desktops resend from their last acknowledged event, so an event is audited exactly once even
# when several desktops share one label database or a send was interrupted.
label_event_cursors = Table(
    "label_event_cursors", metadata,
    Column("project", String(128), primary_key=True),
    Column("source", String(32), primary_key=True),  # the label store's random id (hex), never a path
    Column("last_id", Integer, nullable=False),
    Column("updated_at", String(32), nullable=False),
)

GENESIS = "0" * 64  # prev_hash of the first entry


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{Path(home) / 'assetcenter.db'}"


def make_engine(url: str) -> Engine:
    """An engine for `url` (sqlite:///… or postgresql+psycopg://…) with the schema created."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               hide_parameters=True)  # hashes stay out of logs and error messages

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA optimize=0x10002")  # statistics for the query planner, refreshed when stale
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    metadata.create_all(engine)
    with engine.begin() as conn:
        if conn.execute(audit_head.select()).first() is None:
            conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
    return engine
