"""The label store's tables (SQLAlchemy Core), shared by the store and the tools that read it (benchmarks, the
asset center's audit forwarder).

Invariants the store keeps: an item's `position` is its place in the input (0..item_count-1, new items appended
after the last), and `order_key` is its rank in the task's ordering, a permutation of 0..item_count-1, so the next
open item is one index range read. A task's `schema_json` is the canonical JSON of its LabelSchema: comparing that
text is how a store notices that another process changed the schema.
"""
from __future__ import annotations

from sqlalchemy import (
                        Boolean,
                        Column,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
)

metadata = MetaData()
# table objects end in _t (item_t, ann_t, ...): the plain words are the API's argument and method names

task_t = Table(
    "label_tasks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("overlap", Integer, nullable=False),
    Column("ordering", String(16), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("project", "name", name="uq_label_tasks_project_name"),
)

item_t = Table(
    "label_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("label_tasks.id"), nullable=False),
    Column("position", Integer, nullable=False),  # 0-based place in the input
    Column("external_id", String(255)),
    Column("payload_json", Text, nullable=False),
    Column("prelabel_json", Text),  # a model's suggested value, same shape as an annotation value
    Column("confidence", Float),
    Column("uncertainty", Float),
    Column("order_key", Integer, nullable=False),  # rank in the task's ordering: a permutation of 0..n-1
    Column("done_count", Integer, nullable=False, default=0),
    Column("complete", Boolean, nullable=False, default=False),  # done_count >= overlap
    UniqueConstraint("task_id", "position", name="uq_label_items_task_position"),
    Index("ix_label_items_open", "task_id", "complete", "order_key"),
    Index("ix_label_items_order", "task_id", "order_key"),
)

assign_t = Table(
    "label_assignments", metadata,
    Column("task_id", Integer, ForeignKey("label_tasks.id"), primary_key=True),
    Column("labeler", String(128), primary_key=True),
    Column("added_by", String(128), nullable=False),
    Column("added_at", String(32), nullable=False),
)

ann_t = Table(
    "label_annotations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("label_tasks.id"), nullable=False),
    Column("item_id", Integer, ForeignKey("label_items.id"), nullable=False),
    Column("labeler", String(128), nullable=False),
    Column("value_json", Text),
    Column("comment", Text),
    Column("skip_reason", Text),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("updated_by", String(128), nullable=False),
    UniqueConstraint("item_id", "labeler", name="uq_label_annotations_item_labeler"),
    Index("ix_label_annotations_task_labeler_status", "task_id", "labeler", "status"),
    Index("ix_label_annotations_task_status", "task_id", "status"),
)

review_t = Table(
    "label_reviews", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("annotation_id", Integer, ForeignKey("label_annotations.id"), nullable=False, index=True),
    Column("reviewer", String(128), nullable=False),
    Column("decision", String(16), nullable=False),  # "accepted" | "rejected"
    Column("reason", Text),
    Column("at", String(32), nullable=False),
)

event_t = Table(
    "label_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("label_tasks.id"), nullable=False),
    Column("item_id", Integer),
    Column("annotation_id", Integer, index=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),  # create_task, assign, save, skip, undo, accept, reject, rerank,
    # add_items, update_schema
    Column("before_json", Text),
    Column("after_json", Text),
    Column("ref_event_id", Integer),  # the event an undo reverted
    Column("at", String(32), nullable=False),
    Index("ix_label_events_task_actor", "task_id", "actor", "id"),
)


__all__ = ["ann_t", "assign_t", "event_t", "item_t", "metadata", "review_t", "task_t"]
