"""The feature store's registry: which views exist, their schema, their data parts and where they came from.

One JSON file (`<root>/registry.json`) so an auditor can read it. Writers take an exclusive `flock` on
`<root>/.lock`, re-read the file, change it and replace it atomically, so two processes registering at once never
lose each other's update. Readers never lock: the atomic rename means they see either the old or the new file, and
they re-read it only when its stat stamp changes (the online lookup path must not parse JSON per call).

User-supplied names are only ever dictionary keys here. Folders, Parquet parts, SQLite tables and Redis keys are
named from a generated uuid4 hex id, which is re-checked whenever it is read back from disk.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import LedgerflowError
from engine.fileio import atomic_write_text
from engine.i18n import tr

FORMAT = 1
# Letters, digits and underscore, plus CJK ideographs, kana and hangul: names analysts type in Chinese work, while
# separators, dots and whitespace (anything path-like) are refused.
_NAME = re.compile("^[A-Za-z0-9_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]{1,64}$")
_ID = re.compile(r"^[0-9a-f]{32}$")
_PART = re.compile(r"^part-[0-9a-f]{32}\.parquet$")
INTERNAL_PREFIX = "__lf_"


class FeatureStoreError(LedgerflowError):
    """Bad use of the feature store (unknown view, bad name, wrong column type); the message says what to fix."""


@dataclass(frozen=True)
class FeatureView:
    """A named set of features keyed by one entity column and stamped by an event-time column."""

    name: str
    entity: str
    timestamp: str
    features: tuple[str, ...]
    dtypes: dict[str, str] = field(default_factory=dict)
    ttl_days: float | None = None
    description: str = ""
    version: int = 1
    lineage: dict = field(default_factory=dict)


def validate_view_name(name: str) -> str:
    """Return `name` when it is a valid view name, else raise FeatureStoreError saying what is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureStoreError(tr(
            "Feature view name {name!r} is not allowed: use 1 to 64 letters, digits or underscores "
            "(Chinese characters are fine), without spaces, dots or slashes", name=name))
    return name


def new_id() -> str:
    return uuid.uuid4().hex


def new_part_name() -> str:
    return f"part-{uuid.uuid4().hex}.parquet"


def checked_id(entry: dict) -> str:
    """The view's storage id, refusing anything but 32 hex digits (the registry file could have been edited)."""
    vid = entry.get("id")
    if not isinstance(vid, str) or not _ID.match(vid):
        raise FeatureStoreError(tr("The feature store registry has a malformed view id {vid!r}", vid=vid))
    return vid


def checked_part(name: Any) -> str:
    if not isinstance(name, str) or not _PART.match(name):
        raise FeatureStoreError(tr("The feature store registry has a malformed part name {name!r}", name=name))
    return name


def view_from_entry(name: str, entry: dict) -> FeatureView:
    return FeatureView(name=name, entity=entry["entity"], timestamp=entry["timestamp"],
                       features=tuple(entry["features"]), dtypes=dict(entry.get("dtypes", {})),
                       ttl_days=entry.get("ttl_days"), description=entry.get("description", ""),
                       version=int(entry.get("version", 1)), lineage=dict(entry.get("lineage", {})))


def _empty() -> dict:
    return {"format": FORMAT, "views": {}}


class Registry:
    """registry.json with a stat-stamped in-memory copy and a locked read-modify-write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "registry.json"
        self._lock_path = root / ".lock"
        self._stamp: tuple[int, int, int] | None = None
        self._doc: dict = _empty()
        self.generation = 0  # bumped on every reload, so callers can drop caches derived from the views

    def views(self) -> dict[str, dict]:
        """name -> entry, re-read only when the file's (mtime, size, inode) changed since the last read."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._doc = self._read() if stamp is not None else _empty()
            self._stamp = stamp
            self.generation += 1
        return self._doc["views"]

    def _read(self) -> dict:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return _empty()
        except (OSError, ValueError) as exc:
            raise FeatureStoreError(tr("The feature store registry {path} cannot be read: {exc}",
                                       path=self.path, exc=exc)) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("views"), dict):
            raise FeatureStoreError(tr("The feature store registry {path} is not a registry file", path=self.path))
        if int(doc.get("format", 0)) > FORMAT:
            raise FeatureStoreError(tr("The feature store registry {path} was written by a newer Ledgerflow",
                                       path=self.path))
        return doc

    @contextmanager
    def update(self) -> Iterator[dict]:
        """Yield the current document under an exclusive lock; what the caller changed in it is written back."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                doc = self._read()
                yield doc
                atomic_write_text(self.path, json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1))
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        self.views()  # refresh the cached copy from what was just written
