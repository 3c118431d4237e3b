"""Artifact store housekeeping, the cache signing key, and upgrades of older project databases."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from engine import signing
from engine.db import SCHEMA_VERSION, open_db
from engine.errors import LedgerflowError
from engine.store import ArtifactStore


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    signing._load_key.cache_clear()
    yield tmp_path / "home"
    signing._load_key.cache_clear()


def test_the_key_is_created_private_and_checked(home):
    mac = signing.sign({"a": 1})
    key = home / "cache-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert signing.verify({"a": 1}, mac) and not signing.verify({"a": 2}, mac)
    for forged in (None, "", "zz", "é" * 64, 12):
        assert not signing.verify({"a": 1}, forged)
    key.chmod(0o644)
    signing._load_key.cache_clear()
    with pytest.raises(LedgerflowError, match="readable by you only"):
        signing.sign({"a": 1})
    key.chmod(0o600)
    key.write_bytes(b"")
    signing._load_key.cache_clear()
    with pytest.raises(LedgerflowError, match="damaged"):
        signing.sign({"a": 1})


def test_an_unwritable_home_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LEDGERFLOW_HOME", str(blocker / "sub"))
    signing._load_key.cache_clear()
    try:
        with pytest.raises(LedgerflowError, match="LEDGERFLOW_HOME"):
            signing.sign({})
    finally:
        signing._load_key.cache_clear()


def test_an_older_database_is_upgraded_and_its_cache_dropped(tmp_path):
    import sqlite3

    state = tmp_path / ".ledgerflow"
    state.mkdir()
    con = sqlite3.connect(state / "ledgerflow.db")
    con.execute("CREATE TABLE cache_entries (cache_key TEXT PRIMARY KEY, type_id TEXT, receipt TEXT, "
                "duration_s REAL, created_at TEXT)")
    con.execute("INSERT INTO cache_entries VALUES ('k', 't', NULL, 1.0, 'now')")
    con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY)")
    con.commit()
    con.close()
    engine = open_db(state)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION
        cols = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(cache_entries)")}
        assert "mac" in cols
        assert conn.exec_driver_sql("SELECT count(*) FROM cache_entries").scalar() == 0
    engine.dispose()


def test_scratch_of_a_live_session_survives_and_of_a_dead_one_is_swept(tmp_path):
    state = tmp_path / ".ledgerflow"
    engine = open_db(state)
    live = ArtifactStore(state, engine)
    work = live.scratch_dir()
    (work / "model.bin").write_bytes(b"x")
    os.utime(work, (0, 0))  # old, but its session holds the lock
    dead = state / "tmp" / "deadbeef"
    dead.mkdir()
    (dead / ".lock").write_text("")
    other = ArtifactStore(state, engine)
    assert work.exists() and not dead.exists()
    other.close()
    live.close()
    assert not work.exists()
    engine.dispose()


def test_pool_workers_stop_when_their_parent_dies(tmp_path):
    code = ("from engine.executors.process import LocalProcessExecutor\n"
            "import os\np = LocalProcessExecutor(max_workers=1)\np.warm(1)\n"
            "print(p._idle[0].proc.pid, flush=True)\nos._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "orphaned worker kept running"
        time.sleep(0.2)
