"""Concurrent labelers as two real processes on one task, on SQLite (the project's labels.db, WAL) and on
PostgreSQL: no lost update, a conflict only for the same labeler's stale write, exact final counts.

The workers are this file run as a script (`python test_store_concurrency.py MODE ...`); they meet at file-based
barriers so that both really write at the same time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"kind": "text", "labels": [{"name": "fees", "hotkey": "1"}, {"name": "other", "hotkey": "2"}]}
ITEMS = 150
HOT_ITEMS, ROUNDS = 4, 30


def _open(target: str, project: str):
    from engine.labels.store import open_label_store

    if target.startswith("postgresql"):
        return open_label_store(url=target, project=project)
    return open_label_store(Path(target), project=project)


def _wait(*paths: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if time.monotonic() > end:
            raise TimeoutError(f"barrier not reached: {paths}")
        time.sleep(0.002)


def worker(mode: str, sync: Path, me: str, peer: str, project: str, labeler: str) -> dict:
    """One labeler process; `target` (a folder or a PostgreSQL URL with password) comes through the environment."""
    from engine.labels.store import LabelConflict

    store = _open(os.environ["LABELS_TARGET"], project)
    store.task_summary("t")  # connect and cache before the start line
    (sync / f"ready-{me}").touch()
    _wait(sync / "go")
    if mode == "sweep":  # label every item this labeler is offered, in order, as fast as possible
        saved, conflicts, after = [], 0, None
        while (item := store.next_item("t", labeler, after_position=after)) is not None:
            try:
                store.save("t", item["item_id"], labeler, {"labels": ["fees" if me == "a" else "other"]},
                           item["version"])
                saved.append(item["position"])
            except LabelConflict:
                conflicts += 1
            after = item["position"]
        return {"saved": saved, "conflicts": conflicts}
    # mode "same": the same labeler in two windows (processes)
    first = store.item("t", 0, labeler=labeler)  # both read version 0 of item 0 ...
    (sync / f"read-{me}").touch()
    _wait(sync / f"read-{me}", sync / f"read-{peer}")
    try:  # ... and both save it: exactly one may win
        store.save("t", first["item_id"], labeler, {"labels": ["fees"]}, first["version"])
        won = 1
    except LabelConflict as exc:
        won, message = 0, str(exc)
    ok, conflicts = [0] * HOT_ITEMS, 0
    for round_ in range(ROUNDS):
        for pos in range(HOT_ITEMS):
            item = store.item("t", pos, labeler=labeler)
            try:
                store.save("t", item["item_id"], labeler, {"labels": ["fees" if round_ % 2 else "other"]},
                           item["version"], comment=f"{me}{round_}")
                ok[pos] += 1
            except LabelConflict:
                conflicts += 1
    return {"won": won, "message": "" if won else message, "ok": ok, "conflicts": conflicts}


def run_pair(target: str, project: str, mode: str, labelers: tuple[str, str], tmp_path: Path) -> list[dict]:
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, "LABELS_TARGET": target, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, __file__, mode, str(sync), me, peer, project, who], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for me, peer, who in (("a", "b", labelers[0]), ("b", "a", labelers[1]))]
    try:
        _wait(sync / "ready-a", sync / "ready-b", timeout=60)
        (sync / "go").touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / ".ledgerflow")
    return request.getfixturevalue("fresh_pg_url")


@pytest.mark.parametrize("overlap", [1, 2])
def test_two_labelers_at_once_lose_nothing(target, tmp_path, overlap):
    from engine.labels.store import ann_t, item_t

    store = _open(target, "bank")
    store.create_task("t", SCHEMA, [{"text": f"complaint {i}"} for i in range(ITEMS)], overlap=overlap,
                      labelers=["ann", "bob"])
    a, b = run_pair(target, "bank", "sweep", ("ann", "bob"), tmp_path)

    assert a["conflicts"] == b["conflicts"] == 0  # different labelers never conflict
    summary = store.task_summary("t")
    assert summary["complete_items"] == ITEMS  # every item has its overlap
    assert summary["submitted"] == len(a["saved"]) + len(b["saved"])
    assert summary["per_labeler"]["ann"]["submitted"] == len(a["saved"])
    with store.engine.connect() as conn:
        done = dict(conn.execute(select(item_t.c.position, item_t.c.done_count)).all())
        per_item = dict(conn.execute(select(item_t.c.position, func.count(ann_t.c.id))
                                     .join(ann_t, ann_t.c.item_id == item_t.c.id).group_by(item_t.c.position)).all())
        versions = set(conn.scalars(select(ann_t.c.version)))
    assert done == per_item  # concurrent increments of the overlap count all landed
    assert versions == {1}  # nobody overwrote anybody
    if overlap == 2:
        assert sorted(a["saved"]) == sorted(b["saved"]) == list(range(ITEMS))
        assert set(done.values()) == {2}
    else:  # each item at least once; both only where they met on it at the same moment
        assert sorted(set(a["saved"]) | set(b["saved"])) == list(range(ITEMS))
    rows = store.labeled_rows("t")
    assert {(r["labeler"], r["value"]["labels"][0]) for r in rows} <= {("ann", "fees"), ("bob", "other")}
    store.close()


def test_same_labeler_in_two_processes_gets_conflicts_not_lost_updates(target, tmp_path):
    from engine.labels.store import ann_t

    store = _open(target, "bank")
    store.create_task("t", SCHEMA, [{"text": f"complaint {i}"} for i in range(HOT_ITEMS)], labelers=["ann"])
    a, b = run_pair(target, "bank", "same", ("ann", "ann"), tmp_path)

    assert a["won"] + b["won"] == 1  # both read version 0 of item 0; exactly one save went through
    loser = a if not a["won"] else b
    assert "changed by ann at" in loser["message"] and "this window had version 0" in loser["message"]
    with store.engine.connect() as conn:
        versions = dict(conn.execute(select(ann_t.c.item_id, ann_t.c.version)).all())
    items = [store.item("t", pos, labeler="ann") for pos in range(HOT_ITEMS)]
    for pos, item in enumerate(items):
        successes = a["ok"][pos] + b["ok"][pos] + (1 if pos == 0 else 0)
        assert versions[item["item_id"]] == item["version"] == successes  # every accepted save is one version
    total_ok = sum(a["ok"]) + sum(b["ok"]) + 1
    assert total_ok + a["conflicts"] + b["conflicts"] + 1 == 2 * HOT_ITEMS * ROUNDS + 2  # + the lost race
    saves = [e for e in store.events("t", limit=10_000) if e["what"] == "save"]
    assert len(saves) == total_ok  # the trail has exactly the writes that happened
    summary = store.task_summary("t")
    assert (summary["submitted"], summary["complete_items"]) == (HOT_ITEMS, HOT_ITEMS)
    store.close()


if __name__ == "__main__":
    mode_, sync_, me_, peer_, project_, labeler_ = sys.argv[1:7]
    print(json.dumps(worker(mode_, Path(sync_), me_, peer_, project_, labeler_)), flush=True)
