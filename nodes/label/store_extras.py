"""Two read-only questions the Label node asks the label store that its public API does not answer yet: a digest
of a task's labels (for the node's cache fingerprint) and who accepted each label. Written against the store's
table objects; they belong in `LabelStore` (`annotation_digest(task)`, a reviewer in `labeled_rows`).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from engine.fileio import sha256_text
from engine.labels.store import LabelStore, ann_t, open_label_store, review_t, task_t
from engine.project import STATE_DIR

LABELS_DB = "labels.db"
_EMPTY = sha256_text("labels", "0", "0", "")


def project_label_store(project_dir: Path) -> LabelStore:
    """The project's own label store (labels.db in its state folder), as the labeling window opens it."""
    return open_label_store(Path(project_dir) / STATE_DIR)


def annotation_digest(store: LabelStore, task: str) -> str:
    """Changes whenever any label of the task is saved, skipped, undone or reviewed (each bumps its row's version);
    a task that does not exist yet has the digest of a task without labels, so creating it changes nothing."""
    query = (select(func.count(ann_t.c.id), func.coalesce(func.sum(ann_t.c.version), 0), func.max(ann_t.c.updated_at))
             .select_from(ann_t.join(task_t, task_t.c.id == ann_t.c.task_id))
             .where(task_t.c.project == store.project, task_t.c.name == task))
    with store.engine.connect() as conn:
        count, versions, latest = conn.execute(query).one()
    return sha256_text("labels", str(int(count or 0)), str(int(versions or 0)), latest or "")


def project_annotation_digest(project_dir: Path, task: str) -> str:
    """The digest without creating a label database where none exists yet."""
    if not (Path(project_dir) / STATE_DIR / LABELS_DB).is_file():
        return _EMPTY
    store = project_label_store(project_dir)
    try:
        return annotation_digest(store, task)
    finally:
        store.close()


def accepted_by(store: LabelStore, task: str) -> dict[int, str]:
    """annotation id -> the reviewer whose latest decision on it was to accept it."""
    query = (select(review_t.c.annotation_id, review_t.c.reviewer, review_t.c.decision)
             .select_from(review_t.join(ann_t, ann_t.c.id == review_t.c.annotation_id)
                          .join(task_t, task_t.c.id == ann_t.c.task_id))
             .where(task_t.c.project == store.project, task_t.c.name == task)
             .order_by(review_t.c.id))
    latest: dict[int, tuple[str, str]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            latest[row.annotation_id] = (row.reviewer, row.decision)
    return {ann: who for ann, (who, decision) in latest.items() if decision == "accepted"}
