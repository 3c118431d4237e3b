"""LabelStore behaviour: schema validation, overlap, orderings, optimistic concurrency, skip, undo, review
(reject -> relabel -> accept, maker-checker), the audit trail and the export rows; on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.labels.schema import LabelSchema, LabelSchemaError, check_value
from engine.labels.store import (
    LabelConflict,
    LabelPermissionError,
    LabelStore,
    LabelStoreError,
    item_t,
    open_label_store,
)


def texts(n: int) -> list[dict]:
    return [{"text": f"complaint number {i}"} for i in range(n)]


def label(store: LabelStore, task: str, labeler: str, name: str, after: int | None = None) -> dict:
    """What the workspace does on a hotkey: take the next item, save the label; returns the item."""
    item = store.next_item(task, labeler, after_position=after)
    assert item is not None
    store.save(task, item["item_id"], labeler, {"labels": [name]}, item["version"])
    return item


# ---- schema ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("schema", "fragment"), [
    ({"kind": "text", "labels": [{"name": "a", "color": "red"}]}, "labels[0].color: 'red' is not a colour"),
    ({"kind": "text", "labels": [{"name": "a"}, {"name": "A"}]}, "the name 'A' is used twice"),
    ({"kind": "text", "labels": [{"name": "a", "hotkey": "1"}, {"name": "b", "hotkey": "1"}]},
     "hotkey: '1' is used by both 'a' and 'b'"),
    ({"kind": "text", "labels": [{"name": "a", "hotkey": "F1"}]}, "labels[0].hotkey: 'F1' must be one digit"),
    ({"kind": "record", "multi": True, "labels": [{"name": "a"}]}, "multi: multi-label applies to text"),
    ({"kind": "boxes", "labels": []}, "labels: a task needs at least one label"),
    ({"kind": "text", "labels": [{"name": "  "}]}, "labels[0].name: labels: a label name is empty"),
    ({"kind": "video", "labels": [{"name": "a"}]}, "kind:"),
])
def test_schema_errors_name_the_field(schema, fragment):
    with pytest.raises(LabelSchemaError) as exc:
        LabelSchema.parse(schema)
    assert fragment in str(exc.value)


def test_schema_normalises_colours_and_hotkeys():
    schema = LabelSchema.parse({"kind": "spans", "labels": [{"name": "person", "color": "#AABBCC", "hotkey": "P"}]})
    assert (schema.labels[0].color, schema.labels[0].hotkey) == ("#aabbcc", "p")
    assert LabelSchema.parse(schema.to_json()) == schema


def test_values_are_checked_against_the_schema():
    single = LabelSchema.parse({"kind": "record", "labels": [{"name": "approve"}, {"name": "decline"}]})
    multi = LabelSchema.parse({"kind": "text", "multi": True, "labels": [{"name": "fees"}, {"name": "fraud"}]})
    spans = LabelSchema.parse({"kind": "spans", "labels": [{"name": "amount"}]})
    boxes = LabelSchema.parse({"kind": "boxes", "labels": [{"name": "stamp"}]})
    assert check_value(multi, {"labels": ["fees", "fraud"]}) == {"labels": ["fees", "fraud"]}
    with pytest.raises(LabelSchemaError, match="exactly one label"):
        check_value(single, {"labels": ["approve", "decline"]})
    with pytest.raises(LabelSchemaError, match="'maybe' is not one of this task's labels"):
        check_value(single, {"labels": ["maybe"]})
    with pytest.raises(LabelSchemaError, match=r"span 0 \(3-40\) is not a range inside the text"):
        check_value(spans, {"spans": [{"start": 3, "end": 40, "label": "amount"}]}, {"text": "paid 300 USD"})
    assert check_value(spans, {"spans": [{"start": 5, "end": 8, "label": "amount"}]}, {"text": "paid 300 USD"})
    with pytest.raises(LabelSchemaError, match="positive width and height"):
        check_value(boxes, {"boxes": [{"x": 1, "y": 1, "w": 0, "h": 5, "label": "stamp"}]})


# ---- tasks -----------------------------------------------------------------------------------------------------

def test_create_task_refuses_duplicates_and_bad_items(store, text_schema):
    store.create_task("fees", text_schema, texts(3))
    with pytest.raises(LabelStoreError, match="named 'fees' already exists"):
        store.create_task("fees", text_schema, texts(3))
    with pytest.raises(LabelSchemaError, match=r"item 1: a 'text' item needs a payload like \{\"text\""):
        store.create_task("bad", text_schema, [{"text": "ok"}, {"image": "a.png"}])
    with pytest.raises(LabelSchemaError, match="pre-label of item 0: 'x' is not one of"):
        store.create_task("bad", text_schema, texts(1), prelabels=[{"labels": ["x"]}])
    with pytest.raises(LabelStoreError, match="ordering: 'smart' is not one of"):
        store.create_task("bad", text_schema, texts(1), ordering="smart")
    assert store.task_names() == ["fees"]
    with pytest.raises(LabelStoreError, match="no labeling task named 'nope'"):
        store.task_summary("nope")


def test_overlap_offers_an_item_until_n_labelers_submitted_it(store, text_schema):
    store.create_task("t", text_schema, texts(3), overlap=2, labelers=["ann", "bob", "cy"])
    assert label(store, "t", "ann", "fees")["position"] == 0
    assert label(store, "t", "bob", "other")["position"] == 0  # a second opinion on the same item
    assert store.next_item("t", "cy")["position"] == 1  # item 0 has its two labels
    assert store.next_item("t", "ann")["position"] == 1  # ann is done with 0
    summary = store.task_summary("t")
    assert (summary["complete_items"], summary["submitted"]) == (1, 2)
    assert summary["per_labeler"]["ann"]["submitted"] == 1 and summary["per_labeler"]["cy"]["done"] == 0
    # a draft holds no overlap slot
    item = store.next_item("t", "cy")
    store.save("t", item["item_id"], "cy", {"labels": ["fees"]}, 0, submit=False)
    assert store.next_item("t", "cy")["position"] == 1
    assert store.task_summary("t")["draft"] == 1


def test_labelers_outside_the_assignment_are_refused(store, text_schema):
    store.create_task("t", text_schema, texts(2), labelers=["ann"])
    with pytest.raises(LabelPermissionError, match="mallory is not assigned to task 't'"):
        store.next_item("t", "mallory")
    store.add_labelers("t", ["mallory"])
    assert store.next_item("t", "mallory")["position"] == 0
    assert store.labelers("t") == ["ann", "mallory"]


def test_given_order_with_cursor_wraps_around(store, text_schema):
    store.create_task("t", text_schema, texts(5))
    assert [store.next_item("t", "ann", after_position=p)["position"] for p in (0, 3, 4)] == [1, 4, 0]
    label(store, "t", "ann", "fees", after=3)  # labels item 4
    assert store.next_item("t", "ann", after_position=3)["position"] == 0
    assert store.item("t", 4, labeler="ann")["annotation"]["value"] == {"labels": ["fees"]}


def test_uncertainty_order_puts_the_least_confident_first(store, text_schema):
    confidences = [0.9, 0.55, 0.99, 0.6, 0.51]
    pre = [{"labels": ["fees"]}] * 5
    store.create_task("t", text_schema, texts(5), ordering="uncertainty", prelabels=pre, confidences=confidences)
    seen, after = [], None
    for _ in range(5):
        item = label(store, "t", "ann", "fees", after)
        seen.append(item["position"])
        after = item["position"]
    assert seen == [4, 1, 3, 0, 2]
    assert store.next_item("t", "ann") is None
    assert store.item("t", 4)["prelabel"] == {"labels": ["fees"]}
    assert store.item("t", 4)["confidence"] == pytest.approx(0.51)


def test_retrained_model_reranks_the_rest(store, text_schema):
    store.create_task("t", text_schema, texts(4), ordering="uncertainty", uncertainties=[0.4, 0.3, 0.2, 0.1])
    assert store.next_item("t", "ann")["position"] == 0
    store.update_predictions("t", {3: {"prelabel": {"labels": ["other"]}, "confidence": 0.05}})
    item = store.next_item("t", "ann")
    assert (item["position"], item["prelabel"], item["uncertainty"]) == (3, {"labels": ["other"]},
                                                                          pytest.approx(0.95))


def test_random_order_is_seeded_and_stable_per_labeler(store, text_schema):
    store.create_task("t", text_schema, texts(40), ordering="random", seed=7)

    def walk(labeler: str) -> list[int]:
        order, after = [], None
        for _ in range(40):
            item = store.next_item("t", labeler, after_position=after)
            order.append(item["position"])
            after = item["position"]
        return order

    ann, bob = walk("ann"), walk("bob")
    assert sorted(ann) == list(range(40)) and sorted(bob) == list(range(40))  # every item, once
    assert ann != list(range(40))  # shuffled
    assert walk("ann") == ann  # stable for a labeler
    assert ann[0] != bob[0]  # colleagues start at different places
    other = LabelStore(store.engine, project=store.project)  # another window sees the same order
    assert other.next_item("t", "ann")["position"] == ann[0]


# ---- saving ----------------------------------------------------------------------------------------------------

def test_two_windows_of_one_labeler_conflict_with_a_clear_message(store, text_schema):
    store.create_task("t", text_schema, texts(2))
    first = store.next_item("t", "ann")
    second = store.item("t", first["position"], labeler="ann")  # the same item open in another window
    assert store.save("t", first["item_id"], "ann", {"labels": ["fees"]}, first["version"]) == 1
    with pytest.raises(LabelConflict) as exc:
        store.save("t", second["item_id"], "ann", {"labels": ["other"]}, second["version"])
    message = str(exc.value)
    assert "changed by ann at" in message and "version 1" in message and "this window had version 0" in message
    stored = store.item("t", first["position"], labeler="ann")["annotation"]
    assert (stored["value"], stored["version"]) == ({"labels": ["fees"]}, 1)
    assert store.save("t", first["item_id"], "ann", {"labels": ["other"]}, 1, comment="fee waiver") == 2
    with pytest.raises(LabelConflict):
        store.save("t", first["item_id"], "ann", {"labels": ["fees"]}, 1)


def test_two_labelers_never_overwrite_each_other(store, text_schema):
    store.create_task("t", text_schema, texts(1), overlap=2)
    a, b = store.next_item("t", "ann"), store.next_item("t", "bob")
    assert store.save("t", a["item_id"], "ann", {"labels": ["fees"]}, 0) == 1
    assert store.save("t", b["item_id"], "bob", {"labels": ["other"]}, 0) == 1
    rows = store.labeled_rows("t")
    assert [(r["labeler"], r["value"]) for r in rows] == [("ann", {"labels": ["fees"]}),
                                                          ("bob", {"labels": ["other"]})]


def test_save_rejects_values_outside_the_schema(store, text_schema):
    store.create_task("t", text_schema, texts(1))
    item = store.next_item("t", "ann")
    with pytest.raises(LabelSchemaError, match="'spam' is not one of this task's labels"):
        store.save("t", item["item_id"], "ann", {"labels": ["spam"]}, 0)
    with pytest.raises(LabelStoreError, match="no item with id"):
        store.save("t", 10**9, "ann", {"labels": ["fees"]}, 0)


def test_skip_needs_a_reason_and_passes_the_item_on(store, text_schema):
    store.create_task("t", text_schema, texts(2), overlap=1)
    item = store.next_item("t", "ann")
    with pytest.raises(LabelStoreError, match="reason is required"):
        store.skip("t", item["item_id"], "ann", "  ")
    store.skip("t", item["item_id"], "ann", "unreadable scan")
    assert store.next_item("t", "ann")["position"] == 1
    assert store.next_item("t", "bob")["position"] == 0  # a skip fills no slot
    stored = store.item("t", 0, labeler="ann")["annotation"]
    assert (stored["status"], stored["skip_reason"]) == ("skipped", "unreadable scan")
    assert store.task_summary("t")["per_labeler"]["ann"]["skipped"] == 1


def test_undo_reverts_the_labelers_last_changes_in_turn(store, text_schema):
    store.create_task("t", text_schema, texts(3))
    first = label(store, "t", "ann", "fees")
    second = store.next_item("t", "ann", after_position=first["position"])
    store.save("t", second["item_id"], "ann", {"labels": ["other"]}, 0)
    store.save("t", second["item_id"], "ann", {"labels": ["fees"]}, 1)
    label(store, "t", "bob", "other", after=1)  # bob's work is not ann's to undo

    assert store.undo("t", "ann") == {"item_id": second["item_id"], "position": 1, "version": 3}
    assert store.item("t", 1, labeler="ann")["annotation"]["value"] == {"labels": ["other"]}
    store.undo("t", "ann")
    back = store.item("t", 1, labeler="ann")
    assert (back["annotation"]["status"], back["annotation"]["value"], back["version"]) == ("draft", None, 4)
    assert store.next_item("t", "ann", after_position=0)["position"] == 1  # offered again
    store.undo("t", "ann")
    assert store.item("t", 0, labeler="ann")["annotation"]["status"] == "draft"
    assert store.task_summary("t")["per_labeler"]["ann"]["submitted"] == 0
    with pytest.raises(LabelStoreError, match="Nothing to undo for ann"):
        store.undo("t", "ann")
    assert [e["what"] for e in store.events("t") if e["who"] == "ann"] == [
        "save", "save", "save", "undo", "undo", "undo"]
    assert store.task_summary("t")["per_labeler"]["bob"]["submitted"] == 1


# ---- review ----------------------------------------------------------------------------------------------------

def test_reject_relabel_accept(store, text_schema):
    store.create_task("t", text_schema, texts(3), labelers=["ann", "cy"])
    first = label(store, "t", "ann", "other")
    label(store, "t", "ann", "fees", after=first["position"])
    queue = store.review_queue("t")
    assert [e["position"] for e in queue] == [0, 1]
    annotation_id = queue[0]["annotations"][0]["annotation_id"]

    with pytest.raises(LabelPermissionError, match="Maker-checker: ann made this label"):
        store.reject(annotation_id, "ann", "looks wrong")
    with pytest.raises(LabelStoreError, match="Say why the label is rejected"):
        store.reject(annotation_id, "rita", "")
    store.reject(annotation_id, "rita", "the customer disputes a fee")

    again = store.next_item("t", "ann")  # the rejected item comes back first
    assert again["position"] == 0
    assert again["annotation"]["review"] == {"reviewer": "rita", "decision": "rejected",
                                             "reason": "the customer disputes a fee",
                                             "at": again["annotation"]["review"]["at"]}
    assert store.next_item("t", "cy")["position"] == 2  # item 0 stays ann's to correct
    with pytest.raises(LabelStoreError, match="is 'rejected' and cannot be accepted"):
        store.accept(annotation_id, "rita")
    store.save("t", again["item_id"], "ann", {"labels": ["fees"]}, again["version"])
    assert store.accept(annotation_id, "rita") == 4

    rows = store.labeled_rows("t", statuses=("accepted",))
    assert [(r["position"], r["value"], r["status"], r["reviewer"]) for r in rows] == [
        (0, {"labels": ["fees"]}, "accepted", "rita")]
    assert [e["what"] for e in store.events("t") if e["position"] == 0] == ["save", "reject", "save", "accept"]
    with pytest.raises(LabelConflict, match="rita acted on this label \\(accept\\)"):
        store.undo("t", "ann")  # ann's last save was accepted since


def test_undo_refuses_to_erase_a_review(store, text_schema):
    store.create_task("t", text_schema, texts(1))
    label(store, "t", "ann", "fees")
    annotation_id = store.review_queue("t")[0]["annotations"][0]["annotation_id"]
    store.accept(annotation_id, "rita")
    with pytest.raises(LabelConflict, match="rita acted on this label \\(accept\\)"):
        store.undo("t", "ann")


def test_review_queue_shows_disagreeing_items_first(store, text_schema):
    store.create_task("t", text_schema, texts(3), overlap=2)
    for labeler, names in (("ann", ["fees", "fees", "other"]), ("bob", ["fees", "other", "other"])):
        after = None
        for name in names:
            after = label(store, "t", labeler, name, after)["position"]
    queue = store.review_queue("t")
    assert [(e["position"], e["disagreement"]) for e in queue] == [(1, 1.0), (0, 0.0), (2, 0.0)]
    assert {a["labeler"] for a in queue[0]["annotations"]} == {"ann", "bob"}
    # resolving: accept one, reject the other; a decided item leaves the queue
    ann, bob = sorted(queue[0]["annotations"], key=lambda a: a["labeler"])
    store.accept(ann["annotation_id"], "rita")
    store.reject(bob["annotation_id"], "rita", "fees are mentioned in line 2")
    assert [e["position"] for e in store.review_queue("t")] == [0, 2]


def test_review_queue_ranks_span_disagreement_by_degree(store):
    schema = {"kind": "spans", "labels": [{"name": "amount"}, {"name": "person"}]}
    store.create_task("t", schema, [{"text": "Li Wei paid 300 USD twice"}] * 3, overlap=2)
    marks = {0: ([(0, 6, "person"), (12, 15, "amount")], [(0, 6, "person"), (12, 19, "amount")]),  # half agree
             1: ([(0, 6, "person")], [(12, 15, "amount")]),  # nothing in common
             2: ([(12, 15, "amount")], [(12, 15, "amount")])}
    for pos, (ann, bob) in marks.items():
        for who, spans in (("ann", ann), ("bob", bob)):
            item = store.item("t", pos, labeler=who)
            store.save("t", item["item_id"], who, {"spans": [{"start": a, "end": b, "label": lab}
                                                           for a, b, lab in spans]}, 0)
    queue = store.review_queue("t")
    assert [(e["position"], e["disagreement"]) for e in queue] == [(1, 1.0), (0, 0.5), (2, 0.0)]


# ---- trail and export ------------------------------------------------------------------------------------------

def test_events_reach_listeners_and_a_failing_listener_does_not_lose_the_label(store, text_schema):
    received: list[dict] = []
    store.on_event(received.append)
    store.on_event(lambda evt: 1 / 0)
    store.create_task("t", text_schema, texts(1), labelers=["ann"], created_by="lead")
    item = label(store, "t", "ann", "fees")
    assert [e["what"] for e in received] == ["create_task", "assign", "save"]
    saved = received[-1]
    assert (saved["who"], saved["task"], saved["position"], saved["before"]) == ("ann", "t", item["position"], None)
    assert saved["after"]["value"] == {"labels": ["fees"]} and saved["after"]["version"] == 1
    assert store.item("t", 0, labeler="ann")["version"] == 1
    assert [e["what"] for e in store.events("t")] == ["create_task", "assign", "save"]


def test_labeled_rows_for_exports(store):
    schema = {"kind": "record", "labels": [{"name": "approve"}, {"name": "decline"}]}
    store.create_task("loans", schema, [{"fields": {"amount": 1000 * i, "purpose": "car"}} for i in range(3)],
                      external_ids=["A1", "A2", "A3"])
    label(store, "loans", "ann", "decline", after=0)  # item 1
    rows = store.labeled_rows("loans")
    assert [(r["external_id"], r["labeler"], r["value"]) for r in rows] == [("A2", "ann", {"labels": ["decline"]})]
    every = store.labeled_rows("loans", include_unlabeled=True)
    assert [(r["position"], r["labeler"]) for r in every] == [(0, None), (1, "ann"), (2, None)]
    assert every[2]["payload"] == {"fields": {"amount": 2000, "purpose": "car"}}


def test_project_database_is_wal_and_persists(tmp_path, text_schema):
    state = tmp_path / ".ledgerflow"
    first = open_label_store(state)
    first.create_task("t", text_schema, texts(2))
    label(first, "t", "ann", "fees")
    first.close()
    assert (state / "labels.db").exists()
    again = open_label_store(state)
    with again.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.execute(select(item_t.c.done_count).order_by(item_t.c.position)).scalars().all() == [1, 0]
    assert again.next_item("t", "ann")["position"] == 1
    again.close()
