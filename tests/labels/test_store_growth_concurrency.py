"""Items appended while someone labels, as two real processes, on SQLite (labels.db, WAL) and on PostgreSQL: the
adder's appends re-rank a randomly ordered task under the labeler's feet, and still every item ends up labeled
exactly once, with consecutive positions and one order key per item.

The workers are this file run as a script (`python test_store_growth_concurrency.py ROLE SYNC PROJECT`).
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
START, BATCHES, BATCH = 60, 10, 15


def _open(target: str, project: str):
    from engine.labels.store import open_label_store

    if target.startswith("postgresql"):
        return open_label_store(url=target, project=project)
    return open_label_store(Path(target), project=project)


def _wait(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"barrier not reached: {path}")
        time.sleep(0.002)


def worker(role: str, sync: Path, project: str) -> dict:
    store = _open(os.environ["LABELS_TARGET"], project)
    store.task_summary("t")
    (sync / f"ready-{role}").touch()
    _wait(sync / "go")
    if role == "add":
        for batch in range(BATCHES):
            first = START + batch * BATCH
            store.add_items("t", [{"text": f"complaint {i}"} for i in range(first, first + BATCH)],
                            external_ids=[f"c{i}" for i in range(first, first + BATCH)], added_by="etl")
            time.sleep(0.01)
        (sync / "added-all").touch()
        return {"added": BATCHES * BATCH}
    saved, after, finished = [], None, False
    while True:
        item = store.next_item("t", "ann", after_position=after)
        if item is None:
            if finished:  # nothing left after the last append: done
                break
            finished = (sync / "added-all").exists()  # look once more after the adder is through
            after = None
            time.sleep(0.005)
            continue
        store.save("t", item["item_id"], "ann", {"labels": ["fees"]}, item["version"])
        saved.append(item["position"])
        after = item["position"]
    return {"saved": saved}


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / ".ledgerflow")
    return request.getfixturevalue("fresh_pg_url")


def test_items_appended_while_someone_labels(target, tmp_path):
    from engine.labels.store import ann_t, item_t

    store = _open(target, "bank")
    store.create_task("t", SCHEMA, [{"text": f"complaint {i}"} for i in range(START)], ordering="random", seed=3,
                      labelers=["ann"], external_ids=[f"c{i}" for i in range(START)])
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, "LABELS_TARGET": target, "PYTHONPATH": str(ROOT)}
    procs = {role: subprocess.Popen([sys.executable, __file__, role, str(sync), "bank"], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ("add", "label")}
    try:
        for role in procs:
            _wait(sync / f"ready-{role}")
        (sync / "go").touch()
        outs = {role: p.communicate(timeout=180) for role, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for role, p in procs.items():
        assert p.returncode == 0, outs[role][1][-3000:]
    saved = json.loads(outs["label"][0].strip().splitlines()[-1])["saved"]

    total = START + BATCHES * BATCH
    assert sorted(saved) == list(range(total))  # every item, old and appended, labeled exactly once
    summary = store.task_summary("t")
    assert (summary["items"], summary["complete_items"], summary["submitted"]) == (total, total, total)
    with store.engine.connect() as conn:
        rows = conn.execute(select(item_t.c.position, item_t.c.order_key, item_t.c.external_id,
                                   item_t.c.done_count, item_t.c.payload_json).order_by(item_t.c.position)).all()
        per_item = conn.scalar(select(func.count(func.distinct(ann_t.c.item_id))))
    assert [r.position for r in rows] == list(range(total))
    assert sorted(r.order_key for r in rows) == list(range(total))
    assert all(r.external_id == f"c{r.position}" for r in rows)  # appends landed whole, in order
    assert all(json.loads(r.payload_json)["text"] == f"complaint {r.position}" for r in rows)
    assert {r.done_count for r in rows} == {1} and per_item == total
    assert sum(e["what"] == "add_items" for e in store.events("t", limit=10_000)) == BATCHES
    store.close()


if __name__ == "__main__":
    role_, sync_, project_ = sys.argv[1:4]
    print(json.dumps(worker(role_, Path(sync_), project_)), flush=True)
