"""Labeling work in the asset center's audit log: who labeled, changed or reviewed which item, and when.

The label store keeps the full trail (values, comments) in its own database; the audit log receives each event with
digests of the label before and after instead of the values, so the tamper-evident log proves what happened without
copying business data into it. Desktops send events in order with the label store's random id (`source`); the
center keeps, per project and source, the last event it recorded, so resending after a failure or from a second
desktop that shares the label database records nothing twice.
"""
from __future__ import annotations

import json
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import insert, select, update

from assetcenter import db
from assetcenter.rbac import Permission, Principal, require
from assetcenter.service import PROJECT_RE, AssetError, _check, now_iso
from engine.fileio import canonical_json
from engine.i18n import tr

if TYPE_CHECKING:
    from assetcenter.service import AssetCenter

MAX_EVENTS = 500  # per request
SOURCE_PATTERN = r"^[0-9a-f]{32}$"
_SHA = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
SUMMARY_LIMIT = 2000  # characters of canonical JSON


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=r"^[^\x00]*$")]


class LabelEvent(BaseModel):
    """One label store event as the audit log records it (values replaced by SHA-256 digests)."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=2**62, description="The event's id in its label store (increasing)")
    task: _text(255, 1)
    what: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] = Field(
        description="create_task, assign, save, skip, undo, accept, reject, rerank, add_items, update_schema, ...")
    by: _text(128) = Field(description="Who acted, as the label store recorded it")
    at: _text(40, 1)
    item: int | None = Field(None, ge=0, le=2**62, description="The item's position in the task")
    status: _text(16) | None = None
    before_sha256: _SHA | None = None
    after_sha256: _SHA | None = None
    reason: _text(1000) | None = Field(None, description="A reviewer's rejection or a labeler's skip reason")
    summary: dict[str, Any] | None = Field(None, description="Task-level events: what changed (small)")

    @field_validator("summary")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        text = canonical_json(value)  # as the sender measures it: a summary it sends is never refused for size
        if len(text) > SUMMARY_LIMIT:
            raise ValueError(tr("summary: at most {n} characters of JSON", n=SUMMARY_LIMIT))
        if "\\u0000" in json.dumps(value):  # a NUL in any key or string: no backend can store it
            raise ValueError(tr("text must not contain NUL characters"))
        return value


class LabelEventsIn(BaseModel):
    """A batch of events from one label store, oldest first; an empty batch asks where the center stopped."""

    model_config = ConfigDict(extra="forbid")

    source: Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]
    events: list[LabelEvent] = Field(default_factory=list, max_length=MAX_EVENTS)


class LabelEventsOut(BaseModel):
    recorded: int = Field(description="Events newly written to the audit log")
    last_id: int = Field(description="The newest event of this source the audit log holds (0: none)")


class LabelEventError(AssetError):
    """A batch the audit log cannot take as it is (bad shape, events out of order)."""


def parse_batch(source: str, events: list[dict[str, Any]]) -> LabelEventsIn:
    """The embedded front end's check of what the server's request model checks (one definition of both)."""
    try:
        return LabelEventsIn.model_validate({"source": source, "events": events})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise LabelEventError(tr("Label events cannot be recorded: {where}: {msg}", where=where,
                                 msg=first["msg"])) from None


def record(center: AssetCenter, who: Principal, project: str, batch: LabelEventsIn,
           remote: str | None = None) -> dict[str, int]:
    """Append the events newer than the center's cursor for (project, source) to the audit log, in one
    transaction with the cursor's move; returns how many were new and the cursor."""
    project = _check(PROJECT_RE, project, tr("project"))
    require(who, Permission.LABELING_RECORD, project)
    ids = [evt.id for evt in batch.events]
    if any(b <= a for a, b in pairwise(ids)):
        raise LabelEventError(tr("Label events must be sent oldest first, each id once (got ids {ids})",
                                 ids=", ".join(map(str, ids[:10]))))
    cursors = db.label_event_cursors
    key = (cursors.c.project == project, cursors.c.source == batch.source)
    recorded = 0
    with center.engine.begin() as conn:
        # take the audit chain's lock first: concurrent senders of one source then see each other's cursor
        conn.execute(update(db.audit_head).where(db.audit_head.c.id == 1).values(seq=db.audit_head.c.seq))
        last = conn.execute(select(cursors.c.last_id).where(*key)).scalar()
        cursor = int(last or 0)
        for evt in batch.events:
            if evt.id <= cursor:
                continue
            details = {"project": project, "task": evt.task, "item": evt.item, "by": evt.by, "at": evt.at,
                       "status": evt.status, "event": evt.id, "source": batch.source}
            if evt.reason:
                details["reason"] = evt.reason
            if evt.summary is not None:
                details["summary"] = evt.summary
            center.audit.append(conn, actor=who.name, action=f"label.{evt.what}", remote=remote,
                                before_hash=evt.before_sha256, after_hash=evt.after_sha256, details=details)
            cursor, recorded = evt.id, recorded + 1
        if recorded:
            values = {"last_id": cursor, "updated_at": now_iso()}
            if last is None:
                conn.execute(insert(cursors).values(project=project, source=batch.source, **values))
            else:
                conn.execute(update(cursors).where(*key).values(**values))
    if recorded:
        center.audit.checkpoint()
    return {"recorded": recorded, "last_id": cursor}


__all__ = ["MAX_EVENTS", "SUMMARY_LIMIT", "LabelEvent", "LabelEventError", "LabelEventsIn", "LabelEventsOut",
           "parse_batch", "record"]
