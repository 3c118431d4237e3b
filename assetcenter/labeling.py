"""Labeling connected to an asset center: where a project's labels live, and their trail in the audit log.

Where labels live. By default in the project's own `labels.db` (SQLite). When the desktop is connected to an
asset center server and a shared label database is configured (LEDGERFLOW_LABELS_URL, or "labels_url" saved by
the connection dialog: a PostgreSQL URL without a password), every labeler's window, the Label node and the reviewer
use that database, so a team labels one task together. The password never sits in a Ledgerflow file: PostgreSQL's
own client reads it from PGPASSWORD, ~/.pgpass (PGPASSFILE) or a service file, and the database role should be
granted the label tables only (least privilege). In the shared database the project's tasks are kept under the
project's asset center name (project meta "assetcenter_project", else its name made into a valid project name).

The trail. The label store writes every change as an event row in the same transaction as the change. When
connected to a server, `LabelAuditForwarder` sends those rows to the center's audit log in the background, from
the last event the center acknowledged for this store (its random `source` id), so nothing is lost while the
server is unreachable and nothing is recorded twice when several desktops share the database.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from assetcenter.connection import (
    AssetConnectionError,
    Assets,
    ConnectionSettings,
    connect,
    load_settings,
)
from assetcenter.label_events import MAX_EVENTS, SUMMARY_LIMIT
from engine.fileio import canonical_json, sha256_text
from engine.i18n import tr
from engine.labels.store import LabelStore, LabelStoreError, open_label_store
from engine.project import STATE_DIR, project_file

log = logging.getLogger("ledgerflow.assetcenter.labeling")

_PROJECT_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
LOCAL_PROJECT = "default"  # a project's own labels.db holds only its tasks
CONNECT_TIMEOUT_S = 5
EMPTY_DIGEST = sha256_text("labels", "0", "0", "")  # LabelStore.annotation_digest of a task without labels

_identity = MetaData()
identity_t = Table(
    "label_store_identity", _identity,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("source", String(32), nullable=False),  # random hex: how the asset center knows this label store
)


# ---- where the labels live ----------------------------------------------------------------------------------
def project_key(project_dir: Path) -> str:
    """The project's name in the asset center (its tasks' key in a shared label database)."""
    try:
        doc = json.loads(project_file(project_dir).read_text("utf-8"))
    except (OSError, ValueError):
        doc = {}
    meta = doc.get("meta") if isinstance(doc, dict) else None
    chosen = meta.get("assetcenter_project") if isinstance(meta, dict) else None
    name = chosen if isinstance(chosen, str) and chosen.strip() else doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(name, str) or not name.strip():
        name = Path(project_dir).name
    key = _PROJECT_CHARS.sub("-", name.strip()).strip("-._")[:128]
    return key or LOCAL_PROJECT


def shared_labels(settings: ConnectionSettings | None = None) -> str | None:
    """The shared label database URL when connected to a server and one is configured, else None."""
    if settings is None:
        try:
            settings = load_settings()
        except AssetConnectionError as exc:  # a damaged settings file: say so where labels are opened
            raise LabelStoreError(str(exc)) from None
    if settings.embedded or not settings.labels_url:
        return None
    return settings.labels_url


def open_project_labels(project_dir: Path, settings: ConnectionSettings | None = None) -> LabelStore:
    """The label store the project's labelers, reviewers and Label nodes share (see the module docstring)."""
    url = shared_labels(settings)
    if url is None:
        return open_label_store(Path(project_dir) / STATE_DIR)
    parsed = make_url(url)
    if "connect_timeout" not in parsed.query:  # an unreachable server must not hang a window for minutes
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    try:
        return open_label_store(url=parsed.render_as_string(hide_password=False), project=project_key(Path(project_dir)))
    except DBAPIError as exc:
        where = make_url(url)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        raise LabelStoreError(tr("Cannot open the shared label database {db} on {host}: {reason}",
                                 db=where.database or "", host=where.host or "localhost", reason=reason)) from None


def labels_exist(project_dir: Path, settings: ConnectionSettings | None = None) -> bool:
    """False only when the project's labels would be in a local labels.db that does not exist yet."""
    return shared_labels(settings) is not None or (Path(project_dir) / STATE_DIR / "labels.db").is_file()


def annotation_digest(project_dir: Path, task: str, settings: ConnectionSettings | None = None) -> str:
    """The task's label digest (the Label node's cache fingerprint) without creating a label database where none
    exists yet. An unreachable shared database gives a digest that matches nothing, so the node runs and says why
    instead of passing on labels that may be stale."""
    try:
        if not labels_exist(project_dir, settings):
            return EMPTY_DIGEST
        store = open_project_labels(project_dir, settings)
    except LabelStoreError:
        return sha256_text("labels-unreachable", uuid.uuid4().hex)
    try:
        return store.annotation_digest(task)
    except DBAPIError:
        return sha256_text("labels-unreachable", uuid.uuid4().hex)
    finally:
        store.close()


def store_source_id(store: LabelStore) -> str:
    """The label store's random id, created once with the store and the same for every process using it."""
    for _ in range(3):
        try:
            _identity.create_all(store.engine)
            with store.engine.begin() as conn:
                found = conn.scalar(select(identity_t.c.source).where(identity_t.c.id == 1))
                if found:
                    return str(found)
                conn.execute(insert(identity_t).values(id=1, source=uuid.uuid4().hex))
        except IntegrityError:
            continue  # another process created it at the same moment: read theirs
    with store.engine.connect() as conn:
        return str(conn.scalar(select(identity_t.c.source).where(identity_t.c.id == 1)))


# ---- the trail in the audit log ----------------------------------------------------------------------------
def _digest(value: Any) -> str | None:
    return None if value is None else hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def audit_event(evt: dict[str, Any]) -> dict[str, Any]:
    """A label store event as the audit log takes it: labels, comments and payloads become SHA-256 digests."""
    before, after = evt.get("before"), evt.get("after")
    out: dict[str, Any] = {"id": int(evt["id"]), "task": evt["task"], "what": evt["what"],
                           "by": (evt.get("who") or "")[:128], "at": evt["at"], "item": evt.get("position"),
                           "before_sha256": _digest(before), "after_sha256": _digest(after)}
    if evt.get("annotation_id") is not None and isinstance(after, dict):
        out["status"] = after.get("status")
        reason = after.get("reason") or (after.get("skip_reason") if after.get("status") == "skipped" else None)
        if reason:
            out["reason"] = str(reason)[:1000]
    elif isinstance(after, dict) and len(canonical_json(after)) <= SUMMARY_LIMIT:
        out["summary"] = after
    return out


class LabelAuditForwarder:
    """Sends a label store's events to the asset center audit log on a background thread, woken by each change
    and retried every `retry_s` while the server cannot be reached."""

    def __init__(self, store: LabelStore, project: str, *, connect_fn: Callable[[], Assets] = connect,
                 retry_s: float = 60.0) -> None:
        self.store, self.project, self.retry_s = store, project, retry_s
        self._connect = connect_fn
        self.source = store_source_id(store)
        self._assets: Assets | None = None
        self._cursor: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.sent = 0

    def start(self) -> LabelAuditForwarder:
        self.store.on_event(lambda _evt: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="label-audit", daemon=True)
        self._thread.start()
        self._wake.set()  # events recorded while no window was open (or the server was down) go first
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.retry_s)
            self._wake.clear()
            self._attempt()
        self._attempt()  # what the last moments changed

    def _attempt(self) -> None:
        try:
            self.send_pending()
        except Exception as exc:  # noqa: BLE001 - the events stay in the label store and are sent on the next try
            self.last_error = str(exc)[:500]
            self._drop_connection()
            log.warning("labeling events not sent to the asset center yet (%s); retrying in %.0f s",
                        type(exc).__name__, self.retry_s)

    def send_pending(self) -> int:
        """Send every event the center has not recorded; returns how many were new to it."""
        with self._lock:
            if self._assets is None:
                self._assets = self._connect()
                self._cursor = None
            if self._cursor is None:
                self._cursor = int(self._assets.record_label_events(self.project, self.source, [])["last_id"])
            recorded = 0
            while True:
                events = self.store.project_events(after_id=self._cursor, limit=MAX_EVENTS)
                if not events:
                    break
                reply = self._assets.record_label_events(self.project, self.source,
                                                         [audit_event(evt) for evt in events])
                recorded += int(reply["recorded"])
                advanced = int(reply["last_id"])
                if advanced <= self._cursor:  # the center did not move on: do not spin
                    break
                self._cursor = advanced
            self.sent += recorded
            self.last_error = None
            return recorded

    def _drop_connection(self) -> None:
        with self._lock:
            if self._assets is not None:
                with contextlib.suppress(Exception):  # a broken connection may fail to close too
                    self._assets.close()
            self._assets, self._cursor = None, None

    def close(self, timeout: float = 10.0) -> None:
        """Stop after one last send (bounded by `timeout`); unsent events wait in the label store."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._drop_connection()


def audit_forwarder(store: LabelStore, project_dir: Path,
                    settings: ConnectionSettings | None = None) -> LabelAuditForwarder | None:
    """A started forwarder when connected to an asset center server, else None (no server: no shared log)."""
    settings = settings or load_settings()
    if settings.embedded:
        return None
    return LabelAuditForwarder(store, project_key(Path(project_dir)),
                               connect_fn=lambda: connect(settings)).start()


def send_label_events(store: LabelStore, project_dir: Path, settings: ConnectionSettings | None = None) -> int:
    """Send the store's unsent events now (the Label node, after it created or re-ranked a task); 0 when not
    connected to a server. Connection errors propagate: the caller decides whether they matter."""
    settings = settings or load_settings()
    if settings.embedded:
        return 0
    forwarder = LabelAuditForwarder(store, project_key(Path(project_dir)), connect_fn=lambda: connect(settings))
    try:
        return forwarder.send_pending()
    finally:
        forwarder.close()


__all__ = [
    "EMPTY_DIGEST",
    "LOCAL_PROJECT",
    "LabelAuditForwarder",
    "annotation_digest",
    "audit_event",
    "audit_forwarder",
    "labels_exist",
    "open_project_labels",
    "project_key",
    "send_label_events",
    "shared_labels",
    "store_source_id",
]
