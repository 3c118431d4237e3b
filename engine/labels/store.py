"""Where labeling tasks, items, annotations, reviews and their audit trail live: SQLAlchemy Core tables in the
project's own `labels.db` (SQLite, beside ledgerflow.db) or in the shared PostgreSQL of an asset center.

Why it is shaped this way:
- Each labeler has their own annotation row per item, so two labelers never write the same row. Every row carries a
  version; a write names the version it started from and is refused with `LabelConflict` when the row moved on
  (the same labeler in two windows, or a reviewer deciding meanwhile). Writes are single conditional statements
  (UPDATE ... WHERE version = :expected, INSERT under a unique key), so this holds on SQLite and PostgreSQL alike
  without relying on read isolation.
- `next_item` must stay fast with 100,000 items: each item keeps `done_count` (annotations that fill an overlap
  slot) and `complete`, and an `order_key` (its rank in the task's ordering), all indexed together, so the next open
  item is one index range read instead of a scan.
- Every change is an event row (who, what, before, after, when): the trail the review screen shows and what the
  asset center's audit log receives through `on_event` when connected.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock
from sqlalchemy import (Boolean, Column, Connection, Engine, Float, ForeignKey, Index, Integer, MetaData, String,
                        Table, Text, UniqueConstraint, and_, bindparam, create_engine, event, exists, false, func,
                        insert, select, true, update)
from sqlalchemy.exc import IntegrityError

from engine.errors import LedgerflowError
from engine.fileio import canonical_json, sha256_text
from engine.i18n import tr
from engine.labels.schema import LabelSchema, LabelSchemaError, check_payload, check_value
from engine.store import now_iso

log = logging.getLogger("ledgerflow.labels")

ORDERINGS = ("given", "random", "uncertainty")
Ordering = Literal["given", "random", "uncertainty"]
STATUSES = ("draft", "submitted", "accepted", "rejected", "skipped")
# statuses that fill one of an item's overlap slots; a rejected label keeps its slot: the item goes back to its
# labeler, not to someone else
_COUNTED = frozenset({"submitted", "accepted", "rejected"})
# statuses after which the labeler is done with the item (a rejected one is offered to them again)
_DONE_BY_ME = ("submitted", "accepted", "skipped", "rejected")
_CHUNK = 10_000

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
    Column("order_key", Integer, nullable=False),  # rank in the task's ordering, 0..n-1
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
    Column("action", String(32), nullable=False),  # create_task, assign, save, skip, undo, accept, reject, rerank
    Column("before_json", Text),
    Column("after_json", Text),
    Column("ref_event_id", Integer),  # the event an undo reverted
    Column("at", String(32), nullable=False),
    Index("ix_label_events_task_actor", "task_id", "actor", "id"),
)


class LabelStoreError(LedgerflowError):
    """A labeling request that cannot be carried out (unknown task, duplicate name, nothing to undo)."""


class LabelConflict(LabelStoreError):
    """A write based on a version that is no longer the stored one; the message says who changed it and when."""


class LabelPermissionError(LabelStoreError):
    """Someone acting outside their role: a labeler not assigned to the task, a reviewer checking their own work."""


class _Stale(Exception):
    """Internal: the conditional write found another version; turned into LabelConflict after the rollback."""


@dataclass(frozen=True)
class _TaskInfo:
    id: int
    name: str
    kind: str
    schema: LabelSchema
    overlap: int
    ordering: str
    seed: int
    item_count: int


EventHook = Callable[[dict[str, Any]], None]


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def open_label_store(project_state_dir: Path | None = None, url: str | None = None,
                     project: str = "default") -> LabelStore:
    """The label store of a project: `labels.db` in its state folder (WAL), or a PostgreSQL URL when connected."""
    if url:
        engine = create_engine(url, pool_pre_ping=True)
        return LabelStore(engine, project=project)
    if project_state_dir is None:
        raise LabelStoreError(tr("A label store needs a project folder or a database URL."))
    state_dir = Path(project_state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{state_dir / 'labels.db'}",
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    with FileLock(str(state_dir / "labels.db.lock")):  # two windows may open a new project at once
        return LabelStore(engine, project=project)


class LabelStore:
    """Labeling tasks of one project in a SQLAlchemy Engine; safe to use from several processes at once."""

    def __init__(self, engine: Engine, project: str = "default") -> None:
        self.engine = engine
        self.project = project
        self._hooks: list[EventHook] = []
        self._tasks: dict[str, _TaskInfo] = {}
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # labelers' processes may create the tables at the same moment
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7461201)")
            metadata.create_all(conn)

    def close(self) -> None:
        self.engine.dispose()

    # ---- events ------------------------------------------------------------------------------------------------

    def on_event(self, hook: EventHook) -> EventHook:
        """Call `hook(event_dict)` after each committed change (the asset center audit log subscribes here)."""
        self._hooks.append(hook)
        return hook

    def _emit(self, evt: dict[str, Any] | None) -> None:
        if evt is None:
            return
        for hook in list(self._hooks):
            try:
                hook(evt)
            except Exception:  # the change is committed and in label_events; a failing listener must not undo it
                log.exception("label event listener failed for event %s", evt.get("id"))

    def _event(self, conn: Connection, info: _TaskInfo, actor: str, action: str, *, item_id: int | None = None,
               position: int | None = None, annotation_id: int | None = None, before: Any = None,
               after: Any = None, ref: int | None = None) -> dict[str, Any]:
        at = now_iso()
        row = {"task_id": info.id, "item_id": item_id, "annotation_id": annotation_id, "actor": actor,
               "action": action, "before_json": _dumps(before), "after_json": _dumps(after), "ref_event_id": ref,
               "at": at}
        event_id = conn.execute(insert(event_t), row).inserted_primary_key[0]
        return {"id": event_id, "project": self.project, "task": info.name, "item_id": item_id, "position": position,
                "annotation_id": annotation_id, "who": actor, "what": action, "before": before, "after": after,
                "at": at}

    def events(self, task: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The task's trail, oldest first: who did what to which item, with the values before and after."""
        info = self._task(task)
        query = (select(event_t, item_t.c.position)
                 .select_from(event_t.outerjoin(item_t, item_t.c.id == event_t.c.item_id))
                 .where(event_t.c.task_id == info.id, event_t.c.id > after_id).order_by(event_t.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [{"id": r.id, "project": self.project, "task": info.name, "item_id": r.item_id,
                     "position": r.position, "annotation_id": r.annotation_id, "who": r.actor, "what": r.action,
                     "before": _loads(r.before_json), "after": _loads(r.after_json), "at": r.at}
                    for r in conn.execute(query)]

    # ---- tasks -------------------------------------------------------------------------------------------------

    def create_task(self, name: str, schema: LabelSchema | dict[str, Any], items: Iterable[dict[str, Any]], *,
                    overlap: int = 1, ordering: Ordering = "given", labelers: Sequence[str] = (),
                    prelabels: Sequence[dict[str, Any] | None] | None = None,
                    confidences: Sequence[float | None] | None = None,
                    uncertainties: Sequence[float | None] | None = None,
                    external_ids: Sequence[str | None] | None = None,
                    created_by: str = "", seed: int = 0) -> dict[str, Any]:
        """Create a task from item payloads (in the order given) and optional model pre-labels.

        Without explicit uncertainties, an item's uncertainty is 1 - confidence of its pre-label, so "uncertainty"
        ordering shows the model's least sure items first. Items are bulk-inserted; returns task_summary.
        """
        schema = LabelSchema.parse(schema)
        name = (name or "").strip()
        if not name:
            raise LabelStoreError(tr("A labeling task needs a name."))
        if ordering not in ORDERINGS:
            raise LabelStoreError(tr("ordering: '{value}' is not one of {choices}", value=ordering,
                                     choices=", ".join(ORDERINGS)))
        if not isinstance(overlap, int) or overlap < 1:
            raise LabelStoreError(tr("overlap: each item must be labeled by at least 1 person (got {value})",
                                     value=overlap))
        payloads = list(items)
        if not payloads:
            raise LabelStoreError(tr("Task '{name}' has no items to label.", name=name))
        n = len(payloads)
        for label, seq in (("prelabels", prelabels), ("confidences", confidences), ("uncertainties", uncertainties),
                           ("external_ids", external_ids)):
            if seq is not None and len(seq) != n:
                raise LabelStoreError(tr("{what}: {count} values given for {n} items", what=label, count=len(seq),
                                         n=n))
        rows: list[dict[str, Any]] = []
        uncert = np.zeros(n, dtype=float)
        for pos, payload in enumerate(payloads):
            check_payload(schema.kind, payload, where=tr("item {position}", position=pos))
            pre = prelabels[pos] if prelabels is not None else None
            if pre is not None:
                pre = check_value(schema, pre, payload, where=tr("pre-label of item {position}", position=pos))
            conf = _number(confidences[pos], "confidences", pos) if confidences is not None else None
            unc = _number(uncertainties[pos], "uncertainties", pos) if uncertainties is not None else None
            if unc is None and conf is not None:
                unc = 1.0 - conf
            uncert[pos] = unc if unc is not None else 0.0
            ext = external_ids[pos] if external_ids is not None else None
            rows.append({"position": pos, "external_id": None if ext is None else str(ext),
                         "payload_json": _dumps(payload), "prelabel_json": _dumps(pre), "confidence": conf,
                         "uncertainty": unc, "done_count": 0, "complete": False})
        for row, key in zip(rows, _order_keys(ordering, uncert, seed), strict=True):
            row["order_key"] = int(key)
        now = now_iso()
        try:
            with self.engine.begin() as conn:
                task_id = conn.execute(insert(task_t), {
                    "project": self.project, "name": name, "kind": schema.kind,
                    "schema_json": canonical_json(schema.to_json()), "overlap": overlap, "ordering": ordering,
                    "seed": int(seed), "item_count": n, "created_by": created_by, "created_at": now,
                }).inserted_primary_key[0]
                for row in rows:
                    row["task_id"] = task_id
                for start in range(0, n, _CHUNK):
                    conn.execute(insert(item_t), rows[start:start + _CHUNK])
                info = _TaskInfo(task_id, name, schema.kind, schema, overlap, ordering, int(seed), n)
                evt = self._event(conn, info, created_by, "create_task", after={
                    "kind": schema.kind, "items": n, "overlap": overlap, "ordering": ordering})
                assigned = self._assign(conn, info, labelers, created_by)
        except IntegrityError:
            raise LabelStoreError(tr("A labeling task named '{name}' already exists in project '{project}'.",
                                     name=name, project=self.project)) from None
        self._tasks[name] = info
        self._emit(evt)
        self._emit(assigned)
        return self.task_summary(name)

    def add_labelers(self, task: str, labelers: Sequence[str], added_by: str = "") -> None:
        info = self._task(task)
        with self.engine.begin() as conn:
            evt = self._assign(conn, info, labelers, added_by)
        self._emit(evt)

    def _assign(self, conn: Connection, info: _TaskInfo, labelers: Sequence[str], by: str,
                ) -> dict[str, Any] | None:
        have = set(conn.scalars(select(assign_t.c.labeler).where(assign_t.c.task_id == info.id)))
        names = dict.fromkeys(name.strip() for name in labelers if name and name.strip())
        new = [name for name in names if name not in have]
        if new:
            now = now_iso()
            conn.execute(insert(assign_t), [{"task_id": info.id, "labeler": who, "added_by": by, "added_at": now}
                                            for who in new])
            return self._event(conn, info, by, "assign", after={"labelers": new})
        return None

    def labelers(self, task: str) -> list[str]:
        info = self._task(task)
        with self.engine.connect() as conn:
            return list(conn.scalars(select(assign_t.c.labeler).where(assign_t.c.task_id == info.id)
                                     .order_by(assign_t.c.labeler)))

    def task_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(select(task_t.c.name).where(task_t.c.project == self.project)
                                     .order_by(task_t.c.created_at, task_t.c.id)))

    def schema(self, task: str) -> LabelSchema:
        return self._task(task).schema

    def task_summary(self, task: str) -> dict[str, Any]:
        """Counts for the task list and progress bar: items, complete items, and per-labeler status counts."""
        info = self._task(task)
        with self.engine.connect() as conn:
            complete = conn.scalar(select(func.count()).select_from(item_t).where(
                item_t.c.task_id == info.id, item_t.c.complete == true()))
            counts = conn.execute(select(ann_t.c.labeler, ann_t.c.status, func.count())
                                  .where(ann_t.c.task_id == info.id)
                                  .group_by(ann_t.c.labeler, ann_t.c.status)).all()
            assigned = list(conn.scalars(select(assign_t.c.labeler).where(assign_t.c.task_id == info.id)))
        per: dict[str, dict[str, int]] = {who: dict.fromkeys(STATUSES, 0) for who in assigned}
        totals = dict.fromkeys(STATUSES, 0)
        for who, status, count in counts:
            per.setdefault(who, dict.fromkeys(STATUSES, 0))[status] = count
            totals[status] += count
        for who, row in per.items():
            # what this labeler has finished, out of what they could (every item, at most once)
            row["done"] = row["submitted"] + row["accepted"] + row["skipped"]
            row["progress"] = row["done"] / info.item_count
        return {"name": info.name, "project": self.project, "kind": info.kind, "items": info.item_count,
                "overlap": info.overlap, "ordering": info.ordering, "labelers": sorted(assigned),
                "complete_items": int(complete or 0), "progress": (complete or 0) / info.item_count,
                **totals, "per_labeler": per}

    def _task(self, name: str) -> _TaskInfo:
        info = self._tasks.get(name)
        if info is not None:
            return info
        with self.engine.connect() as conn:
            row = conn.execute(select(task_t).where(task_t.c.project == self.project, task_t.c.name == name)).first()
        if row is None:
            raise LabelStoreError(tr("There is no labeling task named '{name}' in project '{project}'.", name=name,
                                     project=self.project))
        info = _TaskInfo(row.id, row.name, row.kind, LabelSchema.model_validate_json(row.schema_json), row.overlap,
                         row.ordering, row.seed, row.item_count)
        self._tasks[name] = info
        return info

    def _check_labeler(self, conn: Connection, info: _TaskInfo, labeler: str) -> None:
        """A task with assigned labelers is theirs alone; a task with none is open to everyone in the project."""
        if not labeler:
            raise LabelPermissionError(tr("A labeler name is needed to label task '{task}'.", task=info.name))
        names = list(conn.scalars(select(assign_t.c.labeler).where(assign_t.c.task_id == info.id)))
        if names and labeler not in names:
            raise LabelPermissionError(tr("{labeler} is not assigned to task '{task}' (assigned: {names}).",
                                          labeler=labeler, task=info.name, names=", ".join(sorted(names))))

    # ---- items -------------------------------------------------------------------------------------------------

    def next_item(self, task: str, labeler: str, after_position: int | None = None) -> dict[str, Any] | None:
        """The next item this labeler should label, or None when they have nothing left.

        Items rejected by a reviewer come back to their labeler first; then items in the task's order that fewer
        than `overlap` labelers have filled and this labeler has not done. With `after_position` (the item on
        screen) the search continues after it in the labeler's order and wraps around. Random order is one seeded
        shuffle; each labeler starts it at their own point, so colleagues rarely meet on the same item.
        """
        info = self._task(task)
        n = info.item_count
        start = int(sha256_text(str(info.seed), labeler)[:12], 16) % n if info.ordering == "random" else 0
        with self.engine.connect() as conn:
            self._check_labeler(conn, info, labeler)
            if after_position is None:
                found = self._first_rejected(conn, info, labeler, 0, n)
                if found is not None:
                    return self._item_dict(conn, info, found, labeler)
                begin = start
            else:
                key = conn.scalar(select(item_t.c.order_key).where(item_t.c.task_id == info.id,
                                                                   item_t.c.position == after_position))
                if key is None:
                    raise LabelStoreError(tr("Task '{task}' has no item at position {position}.", task=info.name,
                                             position=after_position))
                begin = (key + 1) % n
            for lo, hi in ((begin, n), (0, begin)):
                if lo >= hi:
                    continue
                candidates = [row for row in (self._first_open(conn, info, labeler, lo, hi),
                                              self._first_rejected(conn, info, labeler, lo, hi)) if row is not None]
                if candidates:
                    return self._item_dict(conn, info, min(candidates, key=lambda r: r.order_key), labeler)
        return None

    def _first_open(self, conn: Connection, info: _TaskInfo, labeler: str, lo: int, hi: int):
        mine = ann_t.alias("mine")
        done = exists().where(mine.c.item_id == item_t.c.id, mine.c.labeler == labeler,
                              mine.c.status.in_(_DONE_BY_ME))
        return conn.execute(select(item_t).where(
            item_t.c.task_id == info.id, item_t.c.complete == false(),
            item_t.c.order_key >= lo, item_t.c.order_key < hi, ~done).order_by(item_t.c.order_key).limit(1)).first()

    def _first_rejected(self, conn: Connection, info: _TaskInfo, labeler: str, lo: int, hi: int):
        return conn.execute(select(item_t).select_from(item_t.join(ann_t, ann_t.c.item_id == item_t.c.id))
                            .where(ann_t.c.task_id == info.id, ann_t.c.labeler == labeler,
                                   ann_t.c.status == "rejected", item_t.c.order_key >= lo,
                                   item_t.c.order_key < hi)
                            .order_by(item_t.c.order_key).limit(1)).first()

    def item(self, task: str, position: int, labeler: str | None = None) -> dict[str, Any]:
        """One item by position, with `labeler`'s own annotation (and version) when a labeler is given."""
        info = self._task(task)
        with self.engine.connect() as conn:
            row = conn.execute(select(item_t).where(item_t.c.task_id == info.id, item_t.c.position == position)).first()
            if row is None:
                raise LabelStoreError(tr("Task '{task}' has no item at position {position}.", task=info.name,
                                         position=position))
            return self._item_dict(conn, info, row, labeler)

    def _item_dict(self, conn: Connection, info: _TaskInfo, row: Any, labeler: str | None) -> dict[str, Any]:
        ann = None
        if labeler is not None:
            a = conn.execute(select(ann_t).where(ann_t.c.item_id == row.id,
                                                 ann_t.c.labeler == labeler)).first()
            if a is not None:
                ann = _annotation_dict(a)
                if a.status == "rejected":
                    review = conn.execute(select(review_t).where(review_t.c.annotation_id == a.id)
                                          .order_by(review_t.c.id.desc()).limit(1)).first()
                    if review is not None:
                        ann["review"] = {"reviewer": review.reviewer, "decision": review.decision,
                                         "reason": review.reason, "at": review.at}
        return {"task": info.name, "item_id": row.id, "position": row.position, "of": info.item_count,
                "external_id": row.external_id, "payload": _loads(row.payload_json),
                "prelabel": _loads(row.prelabel_json), "confidence": row.confidence, "uncertainty": row.uncertainty,
                "done_count": row.done_count, "annotation": ann, "version": ann["version"] if ann else 0}

    def _item_row(self, conn: Connection, info: _TaskInfo, item_id: int) -> Any:
        row = conn.execute(select(item_t.c.id, item_t.c.position, item_t.c.payload_json)
                           .where(item_t.c.id == item_id, item_t.c.task_id == info.id)).first()
        if row is None:
            raise LabelStoreError(tr("Task '{task}' has no item with id {item_id}.", task=info.name, item_id=item_id))
        return row

    # ---- labeling ----------------------------------------------------------------------------------------------

    def save(self, task: str, item_id: int, labeler: str, value: dict[str, Any], expected_version: int,
             comment: str | None = None, *, submit: bool = True) -> int:
        """Store `labeler`'s label for an item; returns the new version.

        `expected_version` is the version the labeler's screen showed (0 = no label yet). When the stored row has
        moved on since, nothing is written and LabelConflict says who changed it and when. `submit=False` keeps a
        draft that does not count towards the overlap.
        """
        info = self._task(task)
        with self.engine.connect() as conn:
            self._check_labeler(conn, info, labeler)
            item = self._item_row(conn, info, item_id)
        value = check_value(info.schema, value, _loads(item.payload_json))
        state = {"value": value, "comment": comment or None, "skip_reason": None,
                 "status": "submitted" if submit else "draft"}
        return self._write(info, item, labeler, expected_version, state, action="save")

    def skip(self, task: str, item_id: int, labeler: str, reason: str,
             expected_version: int | None = None) -> int:
        """Skip an item with a reason (unreadable scan, not sure); it is not offered to this labeler again."""
        info = self._task(task)
        reason = (reason or "").strip()
        if not reason:
            raise LabelStoreError(tr("Say why the item is skipped (a reason is required)."))
        with self.engine.connect() as conn:
            self._check_labeler(conn, info, labeler)
            item = self._item_row(conn, info, item_id)
            if expected_version is None:  # no screen version to protect: skip whatever is stored
                expected_version = conn.scalar(select(ann_t.c.version).where(
                    ann_t.c.item_id == item_id, ann_t.c.labeler == labeler)) or 0
        return self._write(info, item, labeler, expected_version, {"skip_reason": reason, "status": "skipped"},
                           action="skip")

    def _write(self, info: _TaskInfo, item: Any, labeler: str, expected_version: int, state: dict[str, Any],
               action: str) -> int:
        try:
            with self.engine.begin() as conn:
                version, evt = self._apply(conn, info, item, labeler, expected_version, state, labeler, action)
        except (_Stale, IntegrityError):
            raise self._conflict(info, item, labeler, expected_version) from None
        self._emit(evt)
        return version

    def _apply(self, conn: Connection, info: _TaskInfo, item: Any, labeler: str, expected_version: int,
               state: dict[str, Any], actor: str, action: str, ref: int | None = None,
               ) -> tuple[int, dict[str, Any]]:
        """Write `state` over the labeler's annotation iff it is still at `expected_version`; one conditional
        statement, so two processes can never both succeed from the same version."""
        current = conn.execute(select(ann_t).where(ann_t.c.item_id == item.id,
                                                   ann_t.c.labeler == labeler)).first()
        now = now_iso()
        before = _state(current) if current is not None else None
        after = {**(before or {"value": None, "comment": None, "skip_reason": None, "status": "draft"}), **state}
        after["version"] = expected_version + 1
        columns = {"value_json": _dumps(after["value"]), "comment": after["comment"],
                   "skip_reason": after["skip_reason"], "status": after["status"], "version": after["version"],
                   "updated_at": now, "updated_by": actor}
        if expected_version == 0:
            if current is not None:
                raise _Stale
            annotation_id = conn.execute(insert(ann_t), {
                "task_id": info.id, "item_id": item.id, "labeler": labeler, "created_at": now, **columns,
            }).inserted_primary_key[0]
        else:
            if current is None or current.version != expected_version:
                raise _Stale
            done = conn.execute(update(ann_t).where(ann_t.c.id == current.id,
                                                    ann_t.c.version == expected_version)
                                .values(**columns))
            if done.rowcount != 1:
                raise _Stale
            annotation_id = current.id
        old_status = before["status"] if before else "draft"
        self._count(conn, info, item.id, (after["status"] in _COUNTED) - (old_status in _COUNTED))
        evt = self._event(conn, info, actor, action, item_id=item.id, position=item.position,
                          annotation_id=annotation_id, before=before, after=after, ref=ref)
        return after["version"], evt

    @staticmethod
    def _count(conn: Connection, info: _TaskInfo, item_id: int, delta: int) -> None:
        """Move an item's filled-slot count (atomically, in SQL: concurrent labelers add to it at once)."""
        if delta:
            conn.execute(update(item_t).where(item_t.c.id == item_id).values(
                done_count=item_t.c.done_count + delta, complete=(item_t.c.done_count + delta) >= info.overlap))

    def _conflict(self, info: _TaskInfo, item: Any, labeler: str, expected_version: int) -> LabelConflict:
        with self.engine.connect() as conn:
            row = conn.execute(select(ann_t.c.version, ann_t.c.updated_by, ann_t.c.updated_at,
                                      ann_t.c.status)
                               .where(ann_t.c.item_id == item.id, ann_t.c.labeler == labeler)).first()
        if row is None:
            return LabelConflict(tr("The label of item {position} in task '{task}' was removed since you opened it "
                                    "(you had version {mine}); reload the item.", position=item.position,
                                    task=info.name, mine=expected_version))
        return LabelConflict(tr(
            "Not saved: {labeler}'s label of item {position} in task '{task}' was changed by {who} at {when} "
            "(now '{status}', version {theirs}; this window had version {mine}). Reload the item to see the change, "
            "then save again.", labeler=labeler, position=item.position, task=info.name, who=row.updated_by,
            when=row.updated_at, status=row.status, theirs=row.version, mine=expected_version))

    def undo(self, task: str, labeler: str) -> dict[str, Any]:
        """Revert this labeler's last save or skip in the task (repeatable); returns {item_id, position, version}.

        Refused when someone else (a reviewer) acted on that label since: undo must not erase a decision.
        """
        info = self._task(task)
        actions = ("save", "skip")
        try:
            with self.engine.begin() as conn:
                undone = select(event_t.c.ref_event_id).where(event_t.c.task_id == info.id, event_t.c.actor == labeler,
                                                              event_t.c.action == "undo",
                                                              event_t.c.ref_event_id.is_not(None))
                last = conn.execute(select(event_t).where(
                    event_t.c.task_id == info.id, event_t.c.actor == labeler, event_t.c.action.in_(actions),
                    event_t.c.id.not_in(undone)).order_by(event_t.c.id.desc()).limit(1)).first()
                if last is None:
                    raise LabelStoreError(tr("Nothing to undo for {labeler} in task '{task}'.", labeler=labeler,
                                             task=info.name))
                latest = conn.execute(select(event_t.c.id, event_t.c.actor, event_t.c.action, event_t.c.at)
                                      .where(event_t.c.annotation_id == last.annotation_id)
                                      .order_by(event_t.c.id.desc()).limit(1)).first()
                if latest.id != last.id and not (latest.action == "undo" and latest.actor == labeler):
                    raise LabelConflict(tr("Cannot undo: {who} acted on this label ({what}) at {when} after your "
                                           "change.", who=latest.actor, what=latest.action, when=latest.at))
                item = conn.execute(select(item_t.c.id, item_t.c.position).where(item_t.c.id == last.item_id)).first()
                current = conn.scalar(select(ann_t.c.version).where(ann_t.c.id == last.annotation_id))
                before = _loads(last.before_json) or {"value": None, "comment": None, "skip_reason": None,
                                                      "status": "draft"}
                restore = {k: before[k] for k in ("value", "comment", "skip_reason", "status")}
                version, evt = self._apply(conn, info, item, labeler, current, restore, labeler, "undo",
                                           ref=last.id)
        except (_Stale, IntegrityError):
            raise LabelConflict(tr("Cannot undo: the label changed at the same moment; try again.")) from None
        self._emit(evt)
        return {"item_id": item.id, "position": item.position, "version": version}

    # ---- review ------------------------------------------------------------------------------------------------

    def review_queue(self, task: str) -> list[dict[str, Any]]:
        """Items with labels awaiting review, the most disagreeing first (then by position).

        Each entry carries every labeler's current label of the item, so the reviewer can compare and resolve.
        """
        info = self._task(task)
        pending = select(ann_t.c.item_id).where(ann_t.c.task_id == info.id,
                                                ann_t.c.status == "submitted")
        query = (select(ann_t, item_t.c.position, item_t.c.payload_json, item_t.c.prelabel_json,
                        item_t.c.confidence)
                 .select_from(ann_t.join(item_t, item_t.c.id == ann_t.c.item_id))
                 .where(ann_t.c.task_id == info.id, ann_t.c.item_id.in_(pending),
                        ann_t.c.status.in_(("submitted", "accepted", "rejected")))
                 .order_by(item_t.c.position, ann_t.c.labeler))
        grouped: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                entry = grouped.setdefault(r.item_id, {
                    "task": info.name, "item_id": r.item_id, "position": r.position,
                    "payload": _loads(r.payload_json), "prelabel": _loads(r.prelabel_json),
                    "confidence": r.confidence, "annotations": []})
                entry["annotations"].append(_annotation_dict(r))
        scores = disagreements(info.schema, [(e["item_id"], a["labeler"], a["value"]) for e in grouped.values()
                                             for a in e["annotations"] if a["status"] in ("submitted", "accepted")])
        for entry in grouped.values():
            entry["disagreement"] = scores.get(entry["item_id"], 0.0)
        return sorted(grouped.values(), key=lambda e: (-e["disagreement"], e["position"]))

    def accept(self, annotation_id: int, reviewer: str, reason: str | None = None) -> int:
        return self._review(annotation_id, reviewer, "accepted", reason)

    def reject(self, annotation_id: int, reviewer: str, reason: str) -> int:
        """Send a label back to its labeler with the reason; next_item offers it to them again."""
        if not (reason or "").strip():
            raise LabelStoreError(tr("Say why the label is rejected: the labeler sees the reason."))
        return self._review(annotation_id, reviewer, "rejected", reason.strip())

    def _review(self, annotation_id: int, reviewer: str, decision: str, reason: str | None) -> int:
        allowed = {"accepted": ("submitted",), "rejected": ("submitted", "accepted")}[decision]
        with self.engine.connect() as conn:
            row = conn.execute(select(ann_t, task_t.c.name)
                               .select_from(ann_t.join(task_t, task_t.c.id == ann_t.c.task_id))
                               .where(ann_t.c.id == annotation_id, task_t.c.project == self.project)).first()
            if row is None:
                raise LabelStoreError(tr("There is no label with id {id} in project '{project}'.", id=annotation_id,
                                         project=self.project))
            info = self._task(row.name)
            item = conn.execute(select(item_t.c.id, item_t.c.position).where(item_t.c.id == row.item_id)).first()
        if not reviewer:
            raise LabelPermissionError(tr("A reviewer name is needed to review labels."))
        if reviewer == row.labeler:
            raise LabelPermissionError(tr(
                "Maker-checker: {reviewer} made this label (item {position} of task '{task}') and cannot review it; "
                "another reviewer must.", reviewer=reviewer, position=item.position, task=info.name))
        if row.status not in allowed:
            raise LabelStoreError(tr("The label of item {position} by {labeler} is '{status}' and cannot be "
                                     "{decision} now.", position=item.position, labeler=row.labeler,
                                     status=row.status, decision=decision))
        reason = (reason or "").strip() or None
        try:
            with self.engine.begin() as conn:
                version, evt = self._apply(conn, info, item, row.labeler, row.version,
                                           {"status": decision, "reason": reason}, reviewer,
                                           "accept" if decision == "accepted" else "reject")
                conn.execute(insert(review_t), {"annotation_id": annotation_id, "reviewer": reviewer,
                                                "decision": decision, "reason": reason, "at": evt["at"]})
        except (_Stale, IntegrityError):
            raise self._conflict(info, item, row.labeler, row.version) from None
        self._emit(evt)
        return version

    # ---- model-assisted ordering -------------------------------------------------------------------------------

    def update_predictions(self, task: str, predictions: Mapping[int, Mapping[str, Any]], by: str = "") -> int:
        """Refresh pre-labels, confidences and uncertainties by position (a retrained model re-ranks the rest).

        Each value may hold "prelabel", "confidence", "uncertainty"; with "uncertainty" ordering the order keys are
        recomputed so that next_item follows the new ranking. Returns the number of items updated.
        """
        info = self._task(task)
        with self.engine.begin() as conn:
            rows = {r.position: r for r in conn.execute(
                select(item_t.c.id, item_t.c.position, item_t.c.payload_json, item_t.c.uncertainty)
                .where(item_t.c.task_id == info.id))}
            changes = []
            for pos, pred in predictions.items():
                if pos not in rows:
                    raise LabelStoreError(tr("Task '{task}' has no item at position {position}.", task=info.name,
                                             position=pos))
                row = rows[pos]
                change: dict[str, Any] = {"b_id": row.id}
                if "prelabel" in pred:
                    pre = pred["prelabel"]
                    change["prelabel_json"] = _dumps(None if pre is None else check_value(
                        info.schema, pre, _loads(row.payload_json), where=tr("pre-label of item {position}",
                                                                             position=pos)))
                if "confidence" in pred:
                    change["confidence"] = _number(pred["confidence"], "confidence", pos)
                if "uncertainty" in pred or "confidence" in pred:
                    unc = pred.get("uncertainty")
                    if unc is None and change.get("confidence") is not None:
                        unc = 1.0 - change["confidence"]
                    change["uncertainty"] = _number(unc, "uncertainty", pos)
                changes.append(change)
            for keys in {tuple(sorted(c)) for c in changes}:  # one executemany per shape of change
                batch = [c for c in changes if tuple(sorted(c)) == keys]
                stmt = update(item_t).where(item_t.c.id == bindparam("b_id")).values(
                    **{k: bindparam(k) for k in keys if k != "b_id"})
                conn.execute(stmt, batch)
            if info.ordering == "uncertainty":
                ordered = conn.execute(select(item_t.c.id, item_t.c.uncertainty).where(item_t.c.task_id == info.id)
                                       .order_by(item_t.c.position)).all()
                unc = np.array([r.uncertainty if r.uncertainty is not None else 0.0 for r in ordered])
                keys = _order_keys("uncertainty", unc, info.seed)
                conn.execute(update(item_t).where(item_t.c.id == bindparam("b_id"))
                             .values(order_key=bindparam("b_key")),
                             [{"b_id": r.id, "b_key": int(k)} for r, k in zip(ordered, keys, strict=True)])
            evt = self._event(conn, info, by, "rerank", after={"items": len(changes)})
        self._emit(evt)
        return len(changes)

    # ---- export ------------------------------------------------------------------------------------------------

    def labeled_rows(self, task: str, *, statuses: Sequence[str] = ("submitted", "accepted"),
                     include_unlabeled: bool = False) -> list[dict[str, Any]]:
        """One dict per label in `statuses` (one per labeler with overlap), by position then labeler; with
        `include_unlabeled`, items without such a label appear once with labeler and value None."""
        info = self._task(task)
        labeled = (select(item_t.c.position, item_t.c.external_id, item_t.c.payload_json, item_t.c.prelabel_json,
                          item_t.c.confidence, ann_t.c.id.label("annotation_id"), ann_t.c.labeler,
                          ann_t.c.value_json, ann_t.c.status, ann_t.c.comment,
                          ann_t.c.version, ann_t.c.updated_at)
                   .select_from(item_t.join(ann_t, and_(ann_t.c.item_id == item_t.c.id,
                                                        ann_t.c.status.in_(tuple(statuses)))))
                   .where(item_t.c.task_id == info.id).order_by(item_t.c.position, ann_t.c.labeler))
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            reviewer = dict(conn.execute(  # the latest decision on each label (ids grow with time)
                select(review_t.c.annotation_id, review_t.c.reviewer)
                .select_from(review_t.join(ann_t, ann_t.c.id == review_t.c.annotation_id))
                .where(ann_t.c.task_id == info.id).order_by(review_t.c.id)).all())
            for r in conn.execute(labeled):
                out.append({"position": r.position, "external_id": r.external_id,
                            "payload": json.loads(r.payload_json), "prelabel": _loads(r.prelabel_json),
                            "confidence": r.confidence, "annotation_id": r.annotation_id, "labeler": r.labeler,
                            "reviewer": reviewer.get(r.annotation_id), "value": _loads(r.value_json),
                            "status": r.status, "comment": r.comment,
                            "version": r.version, "updated_at": r.updated_at})
            if include_unlabeled:
                has = exists().where(ann_t.c.item_id == item_t.c.id, ann_t.c.status.in_(tuple(statuses)))
                for r in conn.execute(select(item_t.c.position, item_t.c.external_id, item_t.c.payload_json,
                                             item_t.c.prelabel_json, item_t.c.confidence)
                                      .where(item_t.c.task_id == info.id, ~has)):
                    out.append({"position": r.position, "external_id": r.external_id,
                                "payload": json.loads(r.payload_json), "prelabel": _loads(r.prelabel_json),
                                "confidence": r.confidence, "annotation_id": None, "labeler": None,
                                "reviewer": None, "value": None,
                                "status": None, "comment": None, "version": 0, "updated_at": None})
                out.sort(key=lambda row: (row["position"], row["labeler"] is None, row["labeler"] or ""))
        return out


def _number(value: Any, what: str, position: int) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LabelSchemaError(tr("{what}: item {position} has '{value}', not a number", what=what,
                                  position=position, value=value)) from None
    if math.isnan(number):  # a model gave no score: unknown
        return None
    return number


def _order_keys(ordering: str, uncertainty: np.ndarray, seed: int) -> np.ndarray:
    """Each item's rank (0..n-1) in the task order: as given, highest uncertainty first (ties as given), or one
    seeded shuffle."""
    n = len(uncertainty)
    if ordering == "given":
        return np.arange(n)
    if ordering == "uncertainty":
        order = np.argsort(-uncertainty, kind="stable")
    else:
        order = np.random.default_rng(seed).permutation(n)
    keys = np.empty(n, dtype=np.int64)
    keys[order] = np.arange(n)
    return keys


def _state(row: Any) -> dict[str, Any]:
    return {"value": _loads(row.value_json), "comment": row.comment, "skip_reason": row.skip_reason,
            "status": row.status, "version": row.version}


def _annotation_dict(row: Any) -> dict[str, Any]:
    return {"annotation_id": row.id, "item_id": row.item_id, "labeler": row.labeler, "value": _loads(row.value_json),
            "comment": row.comment, "skip_reason": row.skip_reason, "status": row.status, "version": row.version,
            "updated_at": row.updated_at, "updated_by": row.updated_by}


def disagreements(schema: LabelSchema, triples: list[tuple[int, str, Any]]) -> dict[int, float]:
    """item id -> how much its labelers disagree, in [0, 1] (absent = they agree), as the task's agreement view
    measures it (engine/labels/agreement.py: label-set Jaccard, span F1 or box match F1 between labeler pairs)."""
    from engine.labels.agreement import compute_agreement  # numpy-heavy; only the review screen needs it

    report = compute_agreement(triples, schema.kind, multi=schema.multi, labels=schema.names)
    return {conflict.item_id: float(conflict.disagreement) for conflict in report.conflicts}


__all__ = ["ORDERINGS", "STATUSES", "LabelConflict", "LabelPermissionError", "LabelStore", "LabelStoreError",
           "disagreements", "open_label_store"]
