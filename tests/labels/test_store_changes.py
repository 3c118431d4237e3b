"""A task that changes while people label it: items appended (each ordering), the schema updated, the label digest
the Label node caches on, the latest review decision in the export rows and the project-wide event trail; on SQLite
and PostgreSQL."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from engine.labels.schema import LabelSchemaError
from engine.labels.store import LabelStore, LabelStoreError, item_t, open_label_store

SCHEMA = {"kind": "text", "instructions": "Is the complaint about fees?",
          "labels": [{"name": "fees", "color": "#d62728", "hotkey": "1"},
                     {"name": "other", "color": "#1f77b4", "hotkey": "2"}]}




def texts(n: int, start: int = 0) -> list[dict]:
    return [{"text": f"complaint number {i}"} for i in range(start, start + n)]


def save(store: LabelStore, task: str, labeler: str, position: int, name: str) -> int:
    item = store.item(task, position, labeler)
    return store.save(task, item["item_id"], labeler, {"labels": [name]}, item["version"])


def sweep(store: LabelStore, task: str, labeler: str) -> list[int]:
    """Positions in the order next_item offers them, labeling each (what a labeler pressing keys does)."""
    seen, after = [], None
    while (item := store.next_item(task, labeler, after_position=after)) is not None:
        store.save(task, item["item_id"], labeler, {"labels": ["fees"]}, item["version"])
        seen.append(item["position"])
        after = item["position"]
    return seen


def keys_by_position(store: LabelStore, task: str) -> list[int]:
    with store.engine.connect() as conn:
        task_id = store._task(task).id
        return list(conn.scalars(select(item_t.c.order_key).where(item_t.c.task_id == task_id)
                                 .order_by(item_t.c.position)))


# ---- the label digest and the review decision -------------------------------------------------------------

def test_digest_moves_with_every_kind_of_label_change(store):
    empty = store.annotation_digest("t")  # no such task yet
    store.create_task("t", SCHEMA, texts(4), labelers=["ann", "bob"])
    assert store.annotation_digest("t") == empty  # creating it changes nothing
    seen = [empty]

    def changed() -> None:
        digest = store.annotation_digest("t")
        assert digest not in seen
        seen.append(digest)

    save(store, "t", "ann", 0, "fees")
    changed()
    save(store, "t", "ann", 0, "other")  # the same row again: count and time may not move, the version does
    changed()
    item = store.item("t", 1, "ann")
    store.skip("t", item["item_id"], "ann", "unreadable")
    changed()
    store.undo("t", "ann")
    changed()
    ann_id = store.item("t", 0, "ann")["annotation"]["annotation_id"]
    store.reject(ann_id, "bob", "read it again")
    changed()
    save(store, "t", "ann", 0, "fees")
    store.accept(ann_id, "bob")
    changed()
    store.add_items("t", texts(2, start=4))  # the task grows, the labels do not
    store.update_schema("t", {**SCHEMA, "instructions": "Fees?"})
    assert store.annotation_digest("t") == seen[-1]
    assert store.annotation_digest("other task") == empty


def test_labeled_rows_carry_the_latest_review_decision(store):
    store.create_task("t", SCHEMA, texts(3), labelers=["ann"])
    for pos in range(3):
        save(store, "t", "ann", pos, "fees")
    ids = {r["position"]: r["annotation_id"] for r in store.labeled_rows("t")}
    store.accept(ids[0], "carol")
    store.reject(ids[1], "carol", "that is not about fees")
    store.accept(ids[2], "carol")
    store.reject(ids[2], "dave", "looked again")  # the latest decision counts
    rows = store.labeled_rows("t", statuses=("submitted", "accepted", "rejected"))
    assert [(r["position"], r["reviewer"], r["decision"], r["status"]) for r in rows] == [
        (0, "carol", "accepted", "accepted"), (1, "carol", "rejected", "rejected"), (2, "dave", "rejected", "rejected")]
    save(store, "t", "ann", 1, "other")  # relabeled: the decision stays the latest review, the status moves on
    row = next(r for r in store.labeled_rows("t") if r["position"] == 1)
    assert (row["decision"], row["status"]) == ("rejected", "submitted")
    unlabeled = store.labeled_rows("t", statuses=("skipped",), include_unlabeled=True)
    assert {(r["reviewer"], r["decision"]) for r in unlabeled} == {(None, None)}


# ---- appending items ---------------------------------------------------------------------------------------

def test_add_items_in_given_order_come_after_the_others(store):
    store.create_task("t", SCHEMA, texts(5), overlap=2, labelers=["ann", "bob"], external_ids=list("abcde"))
    for pos in range(5):
        save(store, "t", "bob", pos, "fees")
    save(store, "t", "ann", 0, "fees")
    assert store.add_items("t", texts(3, start=5), external_ids=["f", "g", "h"], added_by="etl") == 3
    summary = store.task_summary("t")
    assert (summary["items"], summary["complete_items"]) == (8, 1)
    assert summary["per_labeler"]["bob"]["progress"] == pytest.approx(5 / 8)
    assert keys_by_position(store, "t") == list(range(8))
    assert store.item("t", 6)["payload"] == {"text": "complaint number 6"}
    assert store.item("t", 6)["external_id"] == "g" and store.item("t", 6)["of"] == 8
    assert store.next_item("t", "bob")["position"] == 5  # bob did the old ones: the new ones are next
    assert sweep(store, "t", "ann") == [1, 2, 3, 4, 5, 6, 7]  # ann: the rest of the old ones, then the new ones
    assert sweep(store, "t", "bob") == [5, 6, 7]
    summary = store.task_summary("t")
    assert summary["complete_items"] == 8 and summary["submitted"] == 16  # each item by exactly two people
    assert sweep(store, "t", "ann") == []
    evt = next(e for e in store.events("t") if e["what"] == "add_items")
    assert (evt["who"], evt["after"]) == ("etl", {
        "items": 3, "first_position": 5, "last_position": 7, "item_count": 8})


def test_add_items_ranked_with_the_rest_by_uncertainty(store):
    conf = [0.9, 0.6, 0.95, 0.7]  # uncertainties 0.1, 0.4, 0.05, 0.3
    store.create_task("t", SCHEMA, texts(4), ordering="uncertainty", confidences=conf,
                      prelabels=[{"labels": ["fees"]}] * 4)
    save(store, "t", "ann", 1, "fees")  # the least sure one is done
    store.add_items("t", texts(3, start=4), confidences=[0.8, 0.55, None], uncertainties=[None, None, 0.35],
                    prelabels=[{"labels": ["other"]}, None, None])
    assert store.item("t", 4)["prelabel"] == {"labels": ["other"]} and store.item("t", 4)["uncertainty"] == \
        pytest.approx(0.2)
    unc = np.array([0.1, 0.4, 0.05, 0.3, 0.2, 0.45, 0.35])
    assert keys_by_position(store, "t") == list(np.argsort(np.argsort(-unc, kind="stable"), kind="stable"))
    assert sweep(store, "t", "ann") == [5, 6, 3, 4, 0, 2]  # the rest, least sure first, new and old together


def test_add_items_shuffled_in_among_the_open_items(store):
    store.create_task("t", SCHEMA, texts(30), ordering="random", seed=7)
    done, after = [], None  # label the first 10 items offered
    for _ in range(10):
        item = store.next_item("t", "ann", after_position=after)
        store.save("t", item["item_id"], "ann", {"labels": ["fees"]}, item["version"])
        done.append(item["position"])
        after = item["position"]
    before = keys_by_position(store, "t")
    store.add_items("t", texts(20, start=30))
    keys = keys_by_position(store, "t")
    assert sorted(keys) == list(range(50))  # still one rank per item
    old_order = sorted(range(30), key=lambda p: before[p])
    assert sorted(range(30), key=lambda p: keys[p]) == old_order  # the old items keep their order
    # each new item sits just before an open item or at the end: never before a done one
    by_rank = sorted(range(50), key=lambda p: keys[p])
    for i, p in enumerate(by_rank[:-1]):
        if p >= 30:
            assert by_rank[i + 1] >= 30 or by_rank[i + 1] not in done
    new_ranks = sorted(keys[p] for p in range(30, 50))
    open_ranks = sorted(keys[p] for p in range(30) if p not in done)
    assert new_ranks[0] < open_ranks[-1]  # interleaved, not all appended after the old ones
    rest = sweep(store, "t", "ann")
    assert sorted(rest + done) == list(range(50)) and len(rest) == 40
    assert store.task_summary("t")["complete_items"] == 50
    # seeded: the same task appended the same way gives the same order
    twin = LabelStore(store.engine, project=store.project + "_twin")
    twin.create_task("t", SCHEMA, texts(30), ordering="random", seed=7)
    for pos in done:
        save(twin, "t", "ann", pos, "fees")
    twin.add_items("t", texts(20, start=30))
    assert keys_by_position(twin, "t") == keys


def test_add_items_is_checked_like_create_task(store):
    store.create_task("t", SCHEMA, texts(3), external_ids=["a", "b", "c"])
    with pytest.raises(LabelSchemaError, match="new item 1: a 'text' item needs a payload like"):
        store.add_items("t", [{"text": "ok"}, {"image": "x.png"}])
    with pytest.raises(LabelSchemaError, match="pre-label of new item 0: 'maybe' is not one of this task's labels"):
        store.add_items("t", texts(1), prelabels=[{"labels": ["maybe"]}])
    with pytest.raises(LabelStoreError, match="external_ids: 1 values given for 2 items"):
        store.add_items("t", texts(2), external_ids=["x"])
    with pytest.raises(LabelStoreError, match="Task 't' already has an item with id 'b'"):
        store.add_items("t", texts(2), external_ids=["x", "b"])
    with pytest.raises(LabelStoreError, match="external_ids: 'x' is given twice"):
        store.add_items("t", texts(2), external_ids=["x", "x"])
    with pytest.raises(LabelSchemaError, match="confidences: item 0 has 'high', not a number"):
        store.add_items("t", texts(1), confidences=["high"])
    with pytest.raises(LabelStoreError, match="no labeling task named 'nope'"):
        store.add_items("nope", texts(1))
    assert store.add_items("t", []) == 0
    assert store.task_summary("t")["items"] == 3  # nothing of the refused calls landed


def test_many_items_are_appended_in_bulk(tmp_path):
    store = open_label_store(tmp_path / ".ledgerflow")
    store.create_task("t", SCHEMA, texts(1000), ordering="random")
    assert store.add_items("t", texts(25_000, start=1000)) == 25_000
    keys = keys_by_position(store, "t")
    assert sorted(keys) == list(range(26_000))
    assert store.item("t", 25_999)["payload"] == {"text": "complaint number 25999"}
    store.close()


# ---- changing the schema -----------------------------------------------------------------------------------

def test_update_schema_restyles_and_adds_labels_for_every_window(store):
    store.create_task("t", SCHEMA, texts(3), prelabels=[{"labels": ["other"]}, None, None])
    window = LabelStore(store.engine, project=store.project)  # another window that opened the task earlier
    assert window.schema("t").labels[0].color == "#d62728"
    save(store, "t", "ann", 0, "fees")
    new = {**SCHEMA, "instructions": "Fees, fraud or other?",
           "labels": [{"name": "fees", "color": "#000000", "hotkey": "f"}, {"name": "fraud", "hotkey": "1"},
                      {"name": "other", "color": "#1f77b4", "hotkey": "2"}]}
    store.update_schema("t", new, by="lead")
    seen = window.schema("t")  # the other window sees it on its next call
    assert seen.names == ["fees", "fraud", "other"] and seen.labels[0].color == "#000000"
    assert seen.instructions == "Fees, fraud or other?"
    save(window, "t", "bob", 1, "fraud")  # the new label can be used at once
    evt = store.events("t")[-2]
    assert (evt["what"], evt["who"]) == ("update_schema", "lead")
    assert evt["before"]["labels"][0]["color"] == "#d62728" and evt["after"]["labels"][1]["name"] == "fraud"
    assert store.update_schema("t", new)["instructions"] == new["instructions"]  # unchanged: no new event
    assert store.events("t")[-1]["what"] == "save"


def test_update_schema_refuses_what_stored_labels_depend_on(store):
    store.create_task("t", SCHEMA, texts(4), prelabels=[None, {"labels": ["other"]}, {"labels": ["other"]}, None])
    save(store, "t", "ann", 0, "fees")
    save(store, "t", "bob", 3, "fees")
    with pytest.raises(LabelStoreError, match="Label 'fees' of task 't' is used by 2 stored labels and 0 pre-labels"):
        store.update_schema("t", {**SCHEMA, "labels": SCHEMA["labels"][1:]})
    renamed = [{**SCHEMA["labels"][0], "name": "charges"}, SCHEMA["labels"][1]]
    with pytest.raises(LabelStoreError, match="Label 'fees' of task 't' is used by 2 stored labels"):
        store.update_schema("t", {**SCHEMA, "labels": renamed})
    with pytest.raises(LabelStoreError, match="Label 'other' of task 't' is used by 0 stored labels and 2 pre-labels"):
        store.update_schema("t", {**SCHEMA, "labels": SCHEMA["labels"][:1]})
    with pytest.raises(LabelStoreError, match="is a text task; its kind cannot change to spans"):
        store.update_schema("t", {**SCHEMA, "kind": "spans"})
    with pytest.raises(LabelStoreError, match="is not multi-label; that cannot change"):
        store.update_schema("t", {**SCHEMA, "multi": True})
    with pytest.raises(LabelSchemaError, match="the name 'FEES' is used twice"):
        store.update_schema("t", {**SCHEMA, "labels": [*SCHEMA["labels"], {"name": "FEES"}]})
    assert store.schema("t").names == ["fees", "other"]
    # an unused label may go
    store.update_schema("t", {**SCHEMA, "labels": [*SCHEMA["labels"], {"name": "spare"}]})
    store.update_schema("t", SCHEMA)
    assert store.schema("t").names == ["fees", "other"]


def test_a_removed_label_cannot_come_back_through_a_stale_window_or_undo(store):
    store.create_task("t", {**SCHEMA, "labels": [*SCHEMA["labels"], {"name": "spare"}]}, texts(3))
    stale = LabelStore(store.engine, project=store.project)
    item = stale.next_item("t", "ann")  # the window checked its schema here ...
    save(store, "t", "bob", 1, "spare")
    save(store, "t", "bob", 1, "fees")  # ... bob used "spare" and changed his mind: undo would bring it back
    store.update_schema("t", SCHEMA)  # nobody uses "spare" now
    with pytest.raises(LabelSchemaError, match="'spare' is not one of this task's labels"):
        stale.save("t", item["item_id"], "ann", {"labels": ["spare"]}, item["version"])
    with pytest.raises(LabelSchemaError, match="label of item 1: 'spare' is not one of this task's labels"):
        store.undo("t", "bob")
    assert store.item("t", 1, "bob")["annotation"]["value"] == {"labels": ["fees"]}
    assert store.item("t", 0, "ann")["annotation"] is None


# ---- the project's trail -----------------------------------------------------------------------------------

def test_project_events_span_all_tasks_of_the_project(store):
    store.create_task("a", SCHEMA, texts(2), created_by="lead")
    store.create_task("b", SCHEMA, texts(2), created_by="lead")
    save(store, "b", "ann", 1, "fees")
    save(store, "a", "ann", 0, "other")
    neighbour = LabelStore(store.engine, project=store.project + "_other")
    neighbour.create_task("a", SCHEMA, texts(1))
    events = store.project_events()
    assert [(e["task"], e["what"]) for e in events] == [("a", "create_task"), ("b", "create_task"), ("b", "save"),
                                                      ("a", "save")]
    assert events[2]["position"] == 1 and events[2]["after"]["value"] == {"labels": ["fees"]}
    assert events == store.events("a")[:1] + store.events("b") + store.events("a")[1:]
    assert [e["id"] for e in store.project_events(after_id=events[1]["id"], limit=1)] == [events[2]["id"]]
    assert store.project_events(after_id=events[-1]["id"]) == []


def test_a_review_names_the_version_it_saw(tmp_path, text_schema):
    """A reviewer's decision on a label that changed since their screen showed it is refused, not applied."""
    from engine.labels.store import LabelConflict, open_label_store

    store = open_label_store(tmp_path)
    store.create_task("t", text_schema, [{"text": "fee charged twice"}])
    item = store.next_item("t", "ann")
    version = store.save("t", item["item_id"], "ann", {"labels": ["fees"]}, 0)
    shown = store.review_queue("t")[0]["annotations"][0]
    store.save("t", item["item_id"], "ann", {"labels": ["other"]}, version)  # ann changes her mind meanwhile
    with pytest.raises(LabelConflict, match="changed by ann"):
        store.accept(shown["annotation_id"], "rev", expected_version=shown["version"])
    with pytest.raises(LabelConflict, match="changed by ann"):
        store.reject(shown["annotation_id"], "rev", "wrong", expected_version=shown["version"])
    current = store.review_queue("t")[0]["annotations"][0]
    store.accept(current["annotation_id"], "rev", expected_version=current["version"])
    assert store.labeled_rows("t")[0]["status"] == "accepted"
    store.close()
