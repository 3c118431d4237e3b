"""Labeling connected to an asset center: a real label store (SQLite, and a shared PostgreSQL), a real asset center
behind a real uvicorn server on 127.0.0.1, and its audit log. Who labeled, changed or reviewed what, and when, ends
up in the tamper-evident log exactly once, with digests instead of the labels' values."""
from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from assetcenter.auth import Accounts
from assetcenter.connection import (
    LABELS_URL_ENV,
    AssetConnectionError,
    ConnectionSettings,
    RemoteAssets,
    check_labels_url,
    load_settings,
    save_settings,
    settings_path,
)
from assetcenter.home import AssetHome
from assetcenter.keys import EnvKeyProvider
from assetcenter.label_events import LabelEventError
from assetcenter.labeling import (
    LabelAuditForwarder,
    audit_event,
    labels_exist,
    open_project_labels,
    project_key,
    store_source_id,
)
from assetcenter.rbac import Forbidden
from assetcenter.server import create_app
from assetcenter.server_thread import ServerThread
from assetcenter.service import AssetCenter
from engine.labels.store import open_label_store
from engine.runlog import os_user

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
KEK = "k1:" + "B" * 43 + "="
SCHEMA = {"kind": "record", "labels": [{"name": "approve", "color": "#59a14f", "hotkey": "1"},
                                       {"name": "decline", "color": "#e15759", "hotkey": "2"}]}
ITEMS = [{"fields": {"income": 1000 * i, "purpose": f"car {i}"}} for i in range(6)]


class Site:
    """An asset center with users ann (labeler on 'risk'), rev (analyst on 'risk'), vic (viewer) and root."""

    def __init__(self, home: Path) -> None:
        self.center = AssetCenter(AssetHome(home), keys=EnvKeyProvider(KEK))
        self.center.accounts = Accounts(self.center.engine, hasher=FAST)
        self.tokens: dict[str, str] = {}
        with self.center.engine.begin() as conn:
            for name, (project, role) in {"ann": ("risk", "labeler"), "rev": ("risk", "analyst"),
                                          "vic": ("risk", "viewer"), "root": ("*", "admin")}.items():
                uid = self.center.accounts.create_user(conn, name)
                self.center.accounts.grant(conn, uid, role, project)
                self.tokens[name] = self.center.accounts.issue_token(conn, uid, label="test")
        self.server = ServerThread(create_app(self.center)).start()

    def client(self, who: str) -> RemoteAssets:
        return RemoteAssets(self.server.url, self.tokens[who])

    def principal(self, who: str):
        return self.center.authenticate(self.tokens[who])

    def label_entries(self) -> list[dict]:
        return [e for e in self.center.audit_entries(self.principal("root"), limit=5000)
                if e["action"].startswith("label.")]

    def close(self) -> None:
        self.server.stop()
        self.center.close()


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path / "center")
    yield s
    s.close()


def _project(folder: Path, name: str = "Credit risk", meta: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "project.lflow").write_text(json.dumps({"format_version": 1, "name": name, "nodes": [], "edges": [],
                                                      "meta": meta or {}}), "utf-8")
    return folder


def _work(store, labeler: str = "ann", reviewer: str = "rev") -> None:
    """A little labeling: a task, two labels, a skip, an undo, a rejection and an acceptance."""
    store.create_task("loans", SCHEMA, ITEMS, labelers=[labeler], created_by="analyst")
    first = store.next_item("loans", labeler)
    store.save("loans", first["item_id"], labeler, {"labels": ["approve"]}, 0, comment="salary slip checked")
    second = store.next_item("loans", labeler, after_position=first["position"])
    store.save("loans", second["item_id"], labeler, {"labels": ["decline"]}, 0)
    third = store.next_item("loans", labeler, after_position=second["position"])
    store.skip("loans", third["item_id"], labeler, "scan unreadable")
    store.undo("loans", labeler)
    queue = {e["position"]: e["annotations"][0]["annotation_id"] for e in store.review_queue("loans")}
    store.reject(queue[first["position"]], reviewer, "income does not match the slip")
    store.accept(queue[second["position"]], reviewer)


def test_forwarder_records_every_event_once_with_digests_not_values(site, tmp_path):
    store = open_label_store(tmp_path / "state")
    _work(store)
    trail = store.project_events()
    forwarder = LabelAuditForwarder(store, "risk", connect_fn=lambda: site.client("ann"))
    assert forwarder.send_pending() == len(trail)
    entries = site.label_entries()
    assert [e["action"] for e in entries] == [f"label.{evt['what']}" for evt in trail]
    assert {e["actor"] for e in entries} == {"ann"}  # who sent it, as the center authenticated them
    by_event = {e["details"]["event"]: e for e in entries}
    for evt in trail:
        entry = by_event[evt["id"]]
        assert entry["details"]["by"] == evt["who"] and entry["details"]["task"] == "loans"
        assert entry["details"]["at"] == evt["at"] and entry["details"]["item"] == evt["position"]
        assert entry["after_hash"] == audit_event(evt)["after_sha256"]
    reject = next(e for e in entries if e["action"] == "label.reject")
    assert reject["details"]["by"] == "rev" and reject["details"]["reason"] == "income does not match the slip"
    assert reject["details"]["status"] == "rejected"
    skip = next(e for e in entries if e["action"] == "label.skip")
    assert skip["details"]["reason"] == "scan unreadable"
    created = next(e for e in entries if e["action"] == "label.create_task")
    assert created["details"]["summary"]["items"] == len(ITEMS)
    text = json.dumps(entries)
    assert "salary slip checked" not in text and "approve" not in text  # values stay in the label store

    # a second desktop on the same label database, and a resend after a lost reply: nothing twice
    again = LabelAuditForwarder(store, "risk", connect_fn=lambda: site.client("rev"))
    assert again.source == forwarder.source == store_source_id(store)
    assert again.send_pending() == 0
    first = store.next_item("loans", "ann")
    store.save("loans", first["item_id"], "ann", {"labels": ["approve"]}, first["version"])
    assert again.send_pending() == 1 and forwarder.send_pending() == 0
    assert len(site.label_entries()) == len(trail) + 1
    assert site.center.verify() == []  # the chain and its signed checkpoints still verify


def test_the_center_refuses_what_it_should(site, tmp_path):
    store = open_label_store(tmp_path / "state")
    _work(store)
    events = [audit_event(evt) for evt in store.project_events()]
    source = store_source_id(store)
    viewer = site.client("vic")
    with pytest.raises(Exception, match="labeling.record"):
        viewer.record_label_events("risk", source, events)
    with pytest.raises(Exception, match="labeling.record"):  # a labeler on 'risk' only
        site.client("ann").record_label_events("cards", source, events)
    with pytest.raises(Forbidden):
        site.center.record_label_events(site.principal("vic"), "risk", source, events)
    with pytest.raises(LabelEventError, match="oldest first"):
        site.center.record_label_events(site.principal("ann"), "risk", source, events[::-1])
    with pytest.raises(LabelEventError, match="source"):
        site.center.record_label_events(site.principal("ann"), "risk", "../../etc", events)
    bad = dict(events[0], what="DROP TABLE")
    with pytest.raises(LabelEventError, match="what"):
        site.center.record_label_events(site.principal("ann"), "risk", source, [bad])
    reply = httpx.post(f"{site.server.url}/v1/projects/risk/label-events",
                       headers={"Authorization": f"Bearer {site.tokens['ann']}"},
                       json={"source": source, "events": [dict(events[0], extra="x")]})
    assert reply.status_code == 422
    assert site.label_entries() == []
    assert site.client("ann").record_label_events("risk", source, [])["last_id"] == 0


def test_events_wait_while_the_server_is_down_then_go_in_order(site, tmp_path):
    store = open_label_store(tmp_path / "state")
    target = {"url": "http://127.0.0.1:9"}  # nothing listens there

    def connect_fn() -> RemoteAssets:
        return RemoteAssets(target["url"], site.tokens["ann"], timeout=5)

    forwarder = LabelAuditForwarder(store, "risk", connect_fn=connect_fn, retry_s=0.2).start()
    try:
        _work(store)
        deadline = time.monotonic() + 30
        while forwarder.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert forwarder.last_error and site.label_entries() == []
        target["url"] = site.server.url  # the server is back
        count = len(store.project_events())
        while len(site.label_entries()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        forwarder.close()
    assert [e["details"]["event"] for e in site.label_entries()] == [e["id"] for e in store.project_events()]
    assert forwarder.last_error is None


def test_shared_label_database_when_connected(site, tmp_path, fresh_pg_url, monkeypatch):
    """Two desktops with their own copy of the project label one task in the shared PostgreSQL database."""
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    for name in ("LEDGERFLOW_ASSETCENTER_URL", "LEDGERFLOW_ASSETCENTER_HOME", LABELS_URL_ENV):
        monkeypatch.delenv(name, raising=False)
    mine = _project(tmp_path / "alice" / "credit")
    theirs = _project(tmp_path / "bob" / "credit-copy")
    local = ConnectionSettings()
    assert not labels_exist(mine, local)
    connected = ConnectionSettings(url=site.server.url, labels_url=fresh_pg_url)
    assert labels_exist(mine, connected)
    assert project_key(mine) == project_key(theirs) == "Credit-risk"
    a, b = open_project_labels(mine, connected), open_project_labels(theirs, connected)
    try:
        assert a.engine.dialect.name == "postgresql" and a.project == "Credit-risk"
        a.create_task("loans", SCHEMA, ITEMS, overlap=2, labelers=["ann", "bob"], created_by="analyst")
        item = b.next_item("loans", "bob")
        b.save("loans", item["item_id"], "bob", {"labels": ["decline"]}, 0)
        assert a.task_summary("loans")["per_labeler"]["bob"]["submitted"] == 1
        assert store_source_id(a) == store_source_id(b)
        other = open_project_labels(_project(tmp_path / "x", "Cards", {"assetcenter_project": "cards"}), connected)
        assert other.project == "cards" and other.task_names() == []  # projects do not see each other's tasks
        other.close()
    finally:
        a.close()
        b.close()
    # without a server the project keeps its own labels.db, even with a shared database configured
    solo = open_project_labels(mine, ConnectionSettings(labels_url=fresh_pg_url))
    assert solo.engine.dialect.name == "sqlite" and solo.task_names() == []
    solo.close()


def test_the_shared_database_url_is_saved_without_a_password(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    for name in ("LEDGERFLOW_ASSETCENTER_URL", "LEDGERFLOW_ASSETCENTER_HOME", LABELS_URL_ENV):
        monkeypatch.delenv(name, raising=False)
    url = "postgresql+psycopg://labeler@db.bank.internal:5432/labels"
    save_settings(ConnectionSettings(url="https://assets.bank.internal", labels_url=url))
    assert load_settings().labels_url == url
    assert json.loads(settings_path().read_text("utf-8"))["labels_url"] == url
    with pytest.raises(AssetConnectionError, match="password"):
        save_settings(ConnectionSettings(url="https://assets.bank.internal",
                                         labels_url="postgresql://labeler:s3cret@db/labels"))
    assert "s3cret" not in settings_path().read_text("utf-8")
    with pytest.raises(AssetConnectionError, match="PostgreSQL"):
        check_labels_url("sqlite:///labels.db")
    with pytest.raises(AssetConnectionError, match="URL"):
        check_labels_url("not a url")
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "https://assets.bank.internal")
    monkeypatch.setenv(LABELS_URL_ENV, "postgresql+psycopg://ci@127.0.0.1/labels")
    assert load_settings().labels_url == "postgresql+psycopg://ci@127.0.0.1/labels"


def test_an_unreachable_shared_database_says_where(tmp_path):
    from engine.labels.store import LabelStoreError
    from postgres_server import free_port

    url = f"postgresql+psycopg://labeler@127.0.0.1:{free_port()}/labels"
    with pytest.raises(LabelStoreError, match=r"labels on 127\.0\.0\.1"):
        open_project_labels(_project(tmp_path / "p"), ConnectionSettings(url="https://a.example", labels_url=url))


def test_label_node_on_the_shared_database_sends_its_trail(site, tmp_path, fresh_pg_url, monkeypatch):
    """The canvas side: a Label node run while connected creates its task in the shared database, and the task's
    creation reaches the audit log; a labeler's work then changes the node's cache fingerprint."""
    import polars as pl

    from engine.fileio import FileFingerprints
    from engine.sdk import FingerprintContext
    from engine.testing import run_node
    from nodes.label.label_node import Label, LabelSettings

    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", site.server.url)
    monkeypatch.setenv("LEDGERFLOW_TOKEN", site.tokens["rev"])
    monkeypatch.setenv(LABELS_URL_ENV, fresh_pg_url)
    project = _project(tmp_path / "proj", "risk")
    table = pl.DataFrame({"app": ["A1", "A2", "A3"], "income": [1200, 5400, 800]})
    settings = {"task": "loans", "kind": "record", "id_column": "app", "labels": SCHEMA["labels"],
                "labelers": ["ann"]}
    fingerprint = lambda: Label.fingerprint(LabelSettings(**settings),  # noqa: E731
                                            FingerprintContext(project_dir=project, files=FileFingerprints()))
    before = fingerprint()
    run_node(Label, {"table": table}, settings, project_dir=project, workdir=tmp_path / "work")
    assert fingerprint() == before  # creating the task labels nothing
    store = open_project_labels(project)
    try:
        assert store.engine.dialect.name == "postgresql" and store.task_names() == ["loans"]
        item = store.next_item("loans", "ann")
        store.save("loans", item["item_id"], "ann", {"labels": ["approve"]}, 0)
    finally:
        store.close()
    assert fingerprint() != before
    actions = [(e["actor"], e["action"], e["details"]["by"]) for e in site.label_entries()]
    assert actions[:2] == [("rev", "label.create_task", os_user()), ("rev", "label.assign", os_user())]


def test_the_labeling_window_sends_its_trail_and_says_when_it_cannot(site, tmp_path, monkeypatch, qtbot):
    """The window of a labeler connected to a server: their saves reach the audit log; with the server
    unreachable the status bar says the trail is waiting, and labeling goes on."""
    from app.labeling.window import LabelingWindow

    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", site.server.url)
    monkeypatch.setenv("LEDGERFLOW_TOKEN", site.tokens["ann"])
    monkeypatch.delenv(LABELS_URL_ENV, raising=False)
    project = _project(tmp_path / "proj", "risk")
    store = open_project_labels(project)
    store.create_task("loans", SCHEMA, ITEMS, labelers=["ann"], created_by="analyst")
    store.close()

    window = LabelingWindow(project, labeler="ann")
    qtbot.addWidget(window)
    assert window.forwarder is not None and window.open_task("loans")
    window.page.pick("approve")
    assert window.page.save_and_next()
    window.close()
    assert [e["action"] for e in site.label_entries()] == ["label.create_task", "label.assign", "label.save"]

    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_URL", "http://127.0.0.1:9")  # nothing listens there
    window = LabelingWindow(project, labeler="ann")
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.forwarder.last_error is not None, timeout=30_000)
    window._show_trail_state()
    assert window.trail.isVisibleTo(window) and "waiting" in window.trail.text()
    assert window.open_task("loans")
    window.page.pick("decline")
    assert window.page.save_and_next()  # labeling is not held up by the audit log
    window.close()
    assert len(site.label_entries()) == 3
