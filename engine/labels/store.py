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
  asset center's audit log receives through `on_event` (or reads with `project_events`) when connected.
- A task grows and changes while people label it: `add_items` appends new input rows, `update_schema` changes
  colours, hotkeys, instructions and adds labels. So no call trusts a cached task: each reads the task row (one
  indexed lookup) and only the parsed schema is cached, keyed by its stored text. Those two, and re-ranking, lock the
  task row; a save share-locks it while it checks its value, so a label removed meanwhile cannot slip in.

Beside it in engine/labels/: tables.py (the tables), ordering.py (order keys), item_rows.py (checked item rows),
schema_change.py (what a schema update may change) and errors.py; this module re-exports what callers import.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    exists,
    false,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from engine.fileio import canonical_json, sha256_text
from engine.i18n import tr
from engine.labels.errors import LabelConflict, LabelPermissionError, LabelStoreError
from engine.labels.item_rows import dumps, item_rows, number
from engine.labels.ordering import appended_keys, order_keys
from engine.labels.schema import (
    LabelSchema,
    check_value,
)
from engine.labels.schema_change import (
    in_use_message,
    label_uses,
    removed_labels,
    shape_change,
)
from engine.labels.tables import (
    ann_t,
    assign_t,
    event_t,
    item_t,
    metadata,
    review_t,
    task_t,
)
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

# the tables live in engine/labels/tables.py; imported here because callers know them as store.item_t etc.


class _Stale(Exception):
    """Internal: the conditional write found another version; turned into LabelConflict after the rollback."""


@dataclass(frozen=True)
class _TaskInfo:
    """A task row as read at the start of a call (item_count and schema may move on in other processes)."""

    id: int
    name: str
    kind: str
    schema: LabelSchema
    schema_json: str  # the stored text the schema was parsed from: what a write compares to notice a change
    overlap: int
    ordering: str
    seed: int
    item_count: int


_TASK_COLUMNS = (task_t.c.id, task_t.c.name, task_t.c.kind, task_t.c.schema_json, task_t.c.overlap,
                 task_t.c.ordering, task_t.c.seed, task_t.c.item_count)

EventHook = Callable[[dict[str, Any]], None]


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def open_label_store(project_state_dir: Path | None = None, url: str | None = None,
                     project: str = "default") -> LabelStore:
    """The label store of a project: `labels.db` in its state folder (WAL), or a PostgreSQL URL when connected.

    Engines hide bound parameters from their error messages: those carry labels and comments, which must not reach
    a log."""
    if url:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
        return LabelStore(engine, project=project)
    if project_state_dir is None:
        raise LabelStoreError(tr("A label store needs a project folder or a database URL."))
    state_dir = Path(project_state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{state_dir / 'labels.db'}", hide_parameters=True,
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
        self._schemas: dict[int, tuple[str, LabelSchema]] = {}  # task id -> (schema_json, parsed)
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
               "action": action, "before_json": dumps(before), "after_json": dumps(after), "ref_event_id": ref,
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

    def project_events(self, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Events of every task of this store's project after `after_id`, oldest first, shaped like events(): the
        asset center's audit forwarder reads from here and remembers the last id it sent."""
        tasks = select(task_t.c.id).where(task_t.c.project == self.project)
        query = (select(event_t, item_t.c.position, task_t.c.name.label("task_name"))
                 .select_from(event_t.join(task_t, task_t.c.id == event_t.c.task_id)
                              .outerjoin(item_t, item_t.c.id == event_t.c.item_id))
                 .where(event_t.c.task_id.in_(tasks), event_t.c.id > after_id)
                 .order_by(event_t.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [{"id": r.id, "project": self.project, "task": r.task_name, "item_id": r.item_id,
                     "position": r.position, "annotation_id": r.annotation_id, "who": r.actor, "what": r.action,
                     "before": _loads(r.before_json), "after": _loads(r.after_json), "at": r.at}
                    for r in conn.execute(query)]

    def annotation_digest(self, task: str) -> str:
        """A digest that changes whenever any label of the task is saved, skipped, undone or reviewed (each of
        those bumps its row's version, so the sum of versions grows). A task that does not exist yet has the digest
        of a task without labels, so creating it changes nothing. The Label node's cache fingerprint: new labels
        re-run it and what follows, while adding items or changing colours does not."""
        query = (select(func.count(ann_t.c.id), func.coalesce(func.sum(ann_t.c.version), 0),
                        func.max(ann_t.c.updated_at))
                 .select_from(ann_t.join(task_t, task_t.c.id == ann_t.c.task_id))
                 .where(task_t.c.project == self.project, task_t.c.name == task))
        with self.engine.connect() as conn:
            count, versions, latest = conn.execute(query).one()
        return sha256_text("labels", str(int(count or 0)), str(int(versions or 0)), latest or "")

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
        rows, uncert = item_rows(schema, payloads, 0, prelabels=prelabels, confidences=confidences,
                                  uncertainties=uncertainties, external_ids=external_ids)
        for row, key in zip(rows, order_keys(ordering, uncert, seed), strict=True):
            row["order_key"] = int(key)
        now = now_iso()
        schema_json = canonical_json(schema.to_json())
        try:
            with self.engine.begin() as conn:
                task_id = conn.execute(insert(task_t), {
                    "project": self.project, "name": name, "kind": schema.kind, "schema_json": schema_json,
                    "overlap": overlap, "ordering": ordering, "seed": int(seed), "item_count": n,
                    "created_by": created_by, "created_at": now,
                }).inserted_primary_key[0]
                for row in rows:
                    row["task_id"] = task_id
                for start in range(0, n, _CHUNK):
                    conn.execute(insert(item_t), rows[start:start + _CHUNK])
                info = _TaskInfo(task_id, name, schema.kind, schema, schema_json, overlap, ordering, int(seed), n)
                evt = self._event(conn, info, created_by, "create_task", after={
                    "kind": schema.kind, "items": n, "overlap": overlap, "ordering": ordering})
                assigned = self._assign(conn, info, labelers, created_by)
        except IntegrityError:
            raise LabelStoreError(tr("A labeling task named '{name}' already exists in project '{project}'.",
                                     name=name, project=self.project)) from None
        self._emit(evt)
        self._emit(assigned)
        return self.task_summary(name)

    def add_items(self, task: str, payloads: Iterable[dict[str, Any]], *,
                  external_ids: Sequence[str | None] | None = None,
                  prelabels: Sequence[dict[str, Any] | None] | None = None,
                  confidences: Sequence[float | None] | None = None,
                  uncertainties: Sequence[float | None] | None = None, added_by: str = "") -> int:
        """Append items to a task (new rows arriving in its input); returns how many were added.

        They are checked like create_task's and take their place in the task's ordering (after the others; ranked
        by uncertainty with the rest; shuffled in among the open items). Labels are untouched. External ids already
        in the task are refused: they name items it has. Safe while others label: the task row is locked first, so
        two processes appending at once get consecutive positions.
        """
        payloads = list(payloads)
        if not payloads:
            return 0
        m = len(payloads)
        info = self._task(task)

        def checked(schema: LabelSchema) -> tuple[list[dict[str, Any]], np.ndarray]:
            return item_rows(schema, payloads, 0, prelabels=prelabels, confidences=confidences,
                              uncertainties=uncertainties, external_ids=external_ids, new=True)

        new_rows, new_unc = checked(info.schema)  # before taking the lock: checking 100k payloads takes a while
        new_ids = [r["external_id"] for r in new_rows if r["external_id"] is not None]
        if len(set(new_ids)) != len(new_ids):
            dup = next(x for x, count in Counter(new_ids).items() if count > 1)
            raise LabelStoreError(tr("external_ids: '{id}' is given twice; each item needs its own id", id=dup))
        with self.engine.begin() as conn:
            checked_with = info.schema_json
            info = self._lock_task(conn, info)
            if info.schema_json != checked_with:  # someone changed the labels meanwhile: check the pre-labels again
                new_rows, new_unc = checked(info.schema)
            if new_ids:
                taken = set(conn.scalars(select(item_t.c.external_id).where(
                    item_t.c.task_id == info.id, item_t.c.external_id.is_not(None))))
                clash = next((x for x in new_ids if x in taken), None)
                if clash is not None:
                    raise LabelStoreError(tr("Task '{task}' already has an item with id '{id}'.", task=info.name,
                                             id=clash))
            first = info.item_count
            old = conn.execute(select(item_t.c.id, item_t.c.order_key, item_t.c.complete, item_t.c.uncertainty)
                               .where(item_t.c.task_id == info.id).order_by(item_t.c.position)).all()
            keys = appended_keys(info.ordering, np.array([r.order_key for r in old], dtype=np.int64),
                                 np.array([not r.complete for r in old], dtype=bool),
                                 np.array([r.uncertainty if r.uncertainty is not None else 0.0 for r in old]),
                                 new_unc, info.seed)
            moved = [{"b_id": r.id, "b_key": int(k)} for r, k in zip(old, keys[:len(old)], strict=True)
                     if int(k) != r.order_key]
            for i, (row, key) in enumerate(zip(new_rows, keys[len(old):], strict=True)):
                row.update(task_id=info.id, position=first + i, order_key=int(key))
            if moved:
                stmt = update(item_t).where(item_t.c.id == bindparam("b_id")).values(order_key=bindparam("b_key"))
                for start in range(0, len(moved), _CHUNK):
                    conn.execute(stmt, moved[start:start + _CHUNK])
            for start in range(0, m, _CHUNK):
                conn.execute(insert(item_t), new_rows[start:start + _CHUNK])
            conn.execute(update(task_t).where(task_t.c.id == info.id).values(item_count=first + m))
            evt = self._event(conn, info, added_by, "add_items", after={
                "items": m, "first_position": first, "last_position": first + m - 1, "item_count": first + m})
        self._emit(evt)
        return m

    def update_schema(self, task: str, schema: LabelSchema | dict[str, Any], by: str = "") -> dict[str, Any]:
        """Change how a task looks and which labels it offers while people label it; returns the new schema JSON.

        Colours, hotkeys, instructions and label order may change and labels may be added. The kind and multi-label
        may not; a label may be removed (or renamed) only when no stored label or pre-label uses it. Every process
        sees the new schema on its next call (each call reads the task row; the schema text tells whether to parse
        it again).
        """
        new = LabelSchema.parse(schema)
        info = self._task(task)
        problem = shape_change(info.schema, new, info.name)
        if problem:
            raise LabelStoreError(problem)
        new_json = canonical_json(new.to_json())
        with self.engine.begin() as conn:
            info = self._lock_task(conn, info)  # saves wait for this (see _guard_schema), so no label slips in
            if new_json == info.schema_json:
                return new.to_json()
            gone = removed_labels(info.schema, new)
            if gone:
                used = label_uses(conn.scalars(select(ann_t.c.value_json).where(ann_t.c.task_id == info.id)), gone)
                suggested = label_uses(conn.scalars(select(item_t.c.prelabel_json).where(
                    item_t.c.task_id == info.id, item_t.c.prelabel_json.is_not(None))), gone)
                for name in gone:
                    if used[name] or suggested[name]:
                        raise LabelStoreError(in_use_message(info.name, name, used[name], suggested[name]))
            conn.execute(update(task_t).where(task_t.c.id == info.id).values(schema_json=new_json))
            evt = self._event(conn, info, by, "update_schema", before=info.schema.to_json(), after=new.to_json())
        self._emit(evt)
        return new.to_json()

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

    def _task(self, name: str, conn: Connection | None = None) -> _TaskInfo:
        """The task as stored now. Every call reads its row (one indexed lookup): another process may have added
        items or changed the schema since. Only the schema's parsing is cached, keyed by its stored text."""
        if conn is None:
            with self.engine.connect() as own:
                return self._task(name, own)
        row = conn.execute(select(*_TASK_COLUMNS)
                           .where(task_t.c.project == self.project, task_t.c.name == name)).first()
        if row is None:
            raise LabelStoreError(tr("There is no labeling task named '{name}' in project '{project}'.", name=name,
                                     project=self.project))
        return self._info(row)

    def _info(self, row: Any) -> _TaskInfo:
        return _TaskInfo(row.id, row.name, row.kind, self._parsed(row.id, row.schema_json), row.schema_json,
                         row.overlap, row.ordering, row.seed, row.item_count)

    def _parsed(self, task_id: int, schema_json: str) -> LabelSchema:
        cached = self._schemas.get(task_id)
        if cached is None or cached[0] != schema_json:
            cached = (schema_json, LabelSchema.model_validate_json(schema_json))
            self._schemas[task_id] = cached
        return cached[1]

    def _lock_task(self, conn: Connection, info: _TaskInfo) -> _TaskInfo:
        """Lock the task row for this transaction (appending items, re-ranking, changing the schema take turns) and
        return it as it is now. A no-op UPDATE: SQLite then holds its write lock, PostgreSQL a row lock that saves'
        FOR SHARE reads wait on, while the event rows' foreign-key checks do not."""
        conn.execute(update(task_t).where(task_t.c.id == info.id).values(item_count=task_t.c.item_count))
        row = conn.execute(select(*_TASK_COLUMNS)
                           .where(task_t.c.id == info.id)).one()
        return self._info(row)

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
        with self.engine.connect() as conn:
            info = self._task(task, conn)
            n = info.item_count
            start = int(sha256_text(str(info.seed), labeler)[:12], 16) % n if info.ordering == "random" else 0
            self._check_labeler(conn, info, labeler)
            if after_position is None:
                found = self._first_rejected(conn, info, labeler, 0, None)
                if found is not None:
                    return self._item_dict(conn, info, found, labeler)
                begin = start
            else:
                key = conn.scalar(select(item_t.c.order_key).where(item_t.c.task_id == info.id,
                                                                   item_t.c.position == after_position))
                if key is None:
                    raise LabelStoreError(tr("Task '{task}' has no item at position {position}.", task=info.name,
                                             position=after_position))
                begin = key + 1
            # from `begin` to the end, then from the start: no upper bound, as items may be appended meanwhile
            for lo, hi in ((begin, None), (0, begin)):
                found = self._first_candidate(conn, info, labeler, lo, hi)
                if found is not None:
                    return self._item_dict(conn, info, found, labeler)
            # the two reads above may straddle an append that re-ranked the items: ask once more in one statement
            found = self._first_candidate(conn, info, labeler, 0, None)
            return None if found is None else self._item_dict(conn, info, found, labeler)

    def _first_candidate(self, conn: Connection, info: _TaskInfo, labeler: str, lo: int, hi: int | None):
        if hi is not None and lo >= hi:
            return None
        candidates = [row for row in (self._first_open(conn, info, labeler, lo, hi),
                                      self._first_rejected(conn, info, labeler, lo, hi)) if row is not None]
        return min(candidates, key=lambda r: r.order_key) if candidates else None

    def _first_open(self, conn: Connection, info: _TaskInfo, labeler: str, lo: int, hi: int | None):
        mine = ann_t.alias("mine")
        done = exists().where(mine.c.item_id == item_t.c.id, mine.c.labeler == labeler,
                              mine.c.status.in_(_DONE_BY_ME))
        query = select(item_t).where(item_t.c.task_id == info.id, item_t.c.complete == false(),
                                     item_t.c.order_key >= lo, ~done)
        if hi is not None:
            query = query.where(item_t.c.order_key < hi)
        return conn.execute(query.order_by(item_t.c.order_key).limit(1)).first()

    def _first_rejected(self, conn: Connection, info: _TaskInfo, labeler: str, lo: int, hi: int | None):
        query = (select(item_t).select_from(item_t.join(ann_t, ann_t.c.item_id == item_t.c.id))
                 .where(ann_t.c.task_id == info.id, ann_t.c.labeler == labeler, ann_t.c.status == "rejected",
                        item_t.c.order_key >= lo))
        if hi is not None:
            query = query.where(item_t.c.order_key < hi)
        return conn.execute(query.order_by(item_t.c.order_key).limit(1)).first()

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
        guarded = state.get("value") is not None
        # PostgreSQL: share-lock the task row before any other lock (update_schema / add_items lock it first too)
        postgres = conn.dialect.name == "postgresql"
        if guarded and postgres:
            self._guard_schema(conn, info, state["value"], item, always=action == "undo")
        current = conn.execute(select(ann_t).where(ann_t.c.item_id == item.id,
                                                   ann_t.c.labeler == labeler)).first()
        now = now_iso()
        before = _state(current) if current is not None else None
        after = {**(before or {"value": None, "comment": None, "skip_reason": None, "status": "draft"}), **state}
        after["version"] = expected_version + 1
        columns = {"value_json": dumps(after["value"]), "comment": after["comment"],
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
        if guarded and not postgres:  # SQLite: after our first write, holding the database's write lock
            self._guard_schema(conn, info, state["value"], item, always=action == "undo")
        old_status = before["status"] if before else "draft"
        self._count(conn, info, item.id, (after["status"] in _COUNTED) - (old_status in _COUNTED))
        evt = self._event(conn, info, actor, action, item_id=item.id, position=item.position,
                          annotation_id=annotation_id, before=before, after=after, ref=ref)
        return after["version"], evt

    def _guard_schema(self, conn: Connection, info: _TaskInfo, value: dict[str, Any], item: Any,
                      always: bool) -> None:
        """Check a value being written against the schema as stored at this moment, under a lock that update_schema
        waits for: a label removed meanwhile (unused when it was removed) cannot be saved after all. Undo always
        checks: the value it restores may predate the removal."""
        stored = conn.scalar(select(task_t.c.schema_json).where(task_t.c.id == info.id).with_for_update(read=True))
        if stored == info.schema_json and not always:
            return
        schema = self._parsed(info.id, stored)
        payload = getattr(item, "payload_json", None)
        check_value(schema, value, _loads(payload), where=tr("label of item {position}", position=item.position))

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
                item = conn.execute(select(item_t.c.id, item_t.c.position, item_t.c.payload_json)
                                    .where(item_t.c.id == last.item_id)).first()
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

    def review_queue(self, task: str, *, payloads: bool = True) -> list[dict[str, Any]]:
        """Items with labels awaiting review, the most disagreeing first (then by position).

        Each entry carries every labeler's current label of the item, so the reviewer can compare and resolve.
        With `payloads=False` entries leave out the item's payload, pre-label and confidence (the review page reads
        them with `item()` as it shows each one): at 100,000 waiting items that halves the time to open the queue.
        """
        info = self._task(task)
        pending = select(ann_t.c.item_id).where(ann_t.c.task_id == info.id,
                                                ann_t.c.status == "submitted")
        columns = [ann_t, item_t.c.position]
        if payloads:
            columns += [item_t.c.payload_json, item_t.c.prelabel_json, item_t.c.confidence]
        query = (select(*columns)
                 .select_from(ann_t.join(item_t, item_t.c.id == ann_t.c.item_id))
                 .where(ann_t.c.task_id == info.id, ann_t.c.item_id.in_(pending),
                        ann_t.c.status.in_(("submitted", "accepted", "rejected")))
                 .order_by(item_t.c.position, ann_t.c.labeler))
        grouped: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                entry = grouped.get(r.item_id)
                if entry is None:  # an item's payload once, not once per labeler
                    entry = grouped[r.item_id] = {"task": info.name, "item_id": r.item_id, "position": r.position,
                                                  "annotations": []}
                    if payloads:
                        entry.update(payload=_loads(r.payload_json), prelabel=_loads(r.prelabel_json),
                                     confidence=r.confidence)
                entry["annotations"].append(_annotation_dict(r))
        scores = disagreements(info.schema, [(e["item_id"], a["labeler"], a["value"]) for e in grouped.values()
                                             for a in e["annotations"] if a["status"] in ("submitted", "accepted")])
        for entry in grouped.values():
            entry["disagreement"] = scores.get(entry["item_id"], 0.0)
        return sorted(grouped.values(), key=lambda e: (-e["disagreement"], e["position"]))

    def accept(self, annotation_id: int, reviewer: str, reason: str | None = None, *,
               expected_version: int | None = None) -> int:
        """Accept a label; with `expected_version` (what the reviewer's screen showed), only that version of it."""
        return self._review(annotation_id, reviewer, "accepted", reason, expected_version)

    def reject(self, annotation_id: int, reviewer: str, reason: str, *, expected_version: int | None = None) -> int:
        """Send a label back to its labeler with the reason; next_item offers it to them again."""
        if not (reason or "").strip():
            raise LabelStoreError(tr("Say why the label is rejected: the labeler sees the reason."))
        return self._review(annotation_id, reviewer, "rejected", reason.strip(), expected_version)

    def _review(self, annotation_id: int, reviewer: str, decision: str, reason: str | None,
                expected_version: int | None = None) -> int:
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
        expected = row.version if expected_version is None else expected_version
        try:
            with self.engine.begin() as conn:
                version, evt = self._apply(conn, info, item, row.labeler, expected,
                                           {"status": decision, "reason": reason}, reviewer,
                                           "accept" if decision == "accepted" else "reject")
                conn.execute(insert(review_t), {"annotation_id": annotation_id, "reviewer": reviewer,
                                                "decision": decision, "reason": reason, "at": evt["at"]})
        except (_Stale, IntegrityError):
            raise self._conflict(info, item, row.labeler, expected) from None
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
            info = self._lock_task(conn, info)  # one re-ranking or append at a time
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
                    change["prelabel_json"] = dumps(None if pre is None else check_value(
                        info.schema, pre, _loads(row.payload_json), where=tr("pre-label of item {position}",
                                                                             position=pos)))
                if "confidence" in pred:
                    change["confidence"] = number(pred["confidence"], "confidence", pos)
                if "uncertainty" in pred or "confidence" in pred:
                    unc = pred.get("uncertainty")
                    if unc is None and change.get("confidence") is not None:
                        unc = 1.0 - change["confidence"]
                    change["uncertainty"] = number(unc, "uncertainty", pos)
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
                keys = order_keys("uncertainty", unc, info.seed)
                conn.execute(update(item_t).where(item_t.c.id == bindparam("b_id"))
                             .values(order_key=bindparam("b_key")),
                             [{"b_id": r.id, "b_key": int(k)} for r, k in zip(ordered, keys, strict=True)])
            evt = self._event(conn, info, by, "rerank", after={"items": len(changes)})
        self._emit(evt)
        return len(changes)

    # ---- export ------------------------------------------------------------------------------------------------

    def label_values(self, task: str, statuses: Sequence[str] = ("submitted", "accepted"),
                     ) -> list[tuple[int, str, Any]]:
        """(position, labeler, value) of every label in `statuses`: what agreement needs, without the payloads
        (reading 200,000 labels this way takes a fraction of labeled_rows' time)."""
        info = self._task(task)
        query = (select(item_t.c.position, ann_t.c.labeler, ann_t.c.value_json)
                 .select_from(ann_t.join(item_t, item_t.c.id == ann_t.c.item_id))
                 .where(ann_t.c.task_id == info.id, ann_t.c.status.in_(tuple(statuses)))
                 .order_by(item_t.c.position, ann_t.c.labeler))
        with self.engine.connect() as conn:
            return [(r.position, r.labeler, _loads(r.value_json)) for r in conn.execute(query)]

    def labeled_rows(self, task: str, *, statuses: Sequence[str] = ("submitted", "accepted"),
                     include_unlabeled: bool = False) -> list[dict[str, Any]]:
        """One dict per label in `statuses` (one per labeler with overlap), by position then labeler; with
        `include_unlabeled`, items without such a label appear once with labeler and value None.

        "reviewer" and "decision" ("accepted" | "rejected") are the label's latest review, None if never reviewed;
        the labeler may have changed the label since (then "status" is no longer that decision).
        """
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
            latest = {r.annotation_id: (r.reviewer, r.decision) for r in conn.execute(  # ids grow with time
                select(review_t.c.annotation_id, review_t.c.reviewer, review_t.c.decision)
                .select_from(review_t.join(ann_t, ann_t.c.id == review_t.c.annotation_id))
                .where(ann_t.c.task_id == info.id).order_by(review_t.c.id))}
            for r in conn.execute(labeled):
                out.append({"position": r.position, "external_id": r.external_id,
                            "payload": json.loads(r.payload_json), "prelabel": _loads(r.prelabel_json),
                            "confidence": r.confidence, "annotation_id": r.annotation_id, "labeler": r.labeler,
                            "reviewer": latest.get(r.annotation_id, (None, None))[0],
                            "decision": latest.get(r.annotation_id, (None, None))[1], "value": _loads(r.value_json),
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
                                "reviewer": None, "decision": None, "value": None,
                                "status": None, "comment": None, "version": 0, "updated_at": None})
                out.sort(key=lambda row: (row["position"], row["labeler"] is None, row["labeler"] or ""))
        return out


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
    from engine.labels.agreement import item_disagreements  # scipy-heavy import; only reviews need it

    return item_disagreements(triples, schema.kind, multi=schema.multi)


__all__ = ["ORDERINGS", "STATUSES", "LabelConflict", "LabelPermissionError", "LabelStore", "LabelStoreError",
           "ann_t", "assign_t", "disagreements", "event_t", "item_t", "metadata", "open_label_store", "review_t",
           "task_t"]
