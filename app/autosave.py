"""Autosave and crash recovery.

While a project is open the workbench keeps a marker file in the project's state folder and, when there are
unsaved edits, an autosaved copy of the project document. A clean close removes both. A marker left behind by a
process that no longer runs means the last session crashed: if its autosave differs from the saved project,
reopening offers it. Writes are atomic, so a crash during autosave never leaves a half-written copy.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from engine.fileio import atomic_write_text
from engine.project import STATE_DIR, Project
from engine.registry import Registry

log = logging.getLogger("ledgerflow.app")
AUTOSAVE_FILE = "autosave.lflow"
MARKER_FILE = "workbench.open"


@dataclass(frozen=True)
class Recovery:
    path: Path
    saved_at: float


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Autosaver:
    def __init__(self, project: Project) -> None:
        self.project = project

    @property
    def autosave_path(self) -> Path:
        return self.project.state_dir / AUTOSAVE_FILE

    @property
    def marker_path(self) -> Path:
        return self.project.state_dir / MARKER_FILE

    def mark_open(self) -> None:
        try:
            atomic_write_text(self.marker_path, json.dumps({"pid": os.getpid(), "opened_at": time.time()}))
        except OSError as exc:
            log.warning("cannot write %s: %s", self.marker_path, exc)

    def save(self) -> Path | None:
        """Write the current document beside the project (not over it); None if the folder is not writable."""
        try:
            atomic_write_text(self.autosave_path, self.project.to_json())
            return self.autosave_path
        except OSError as exc:
            log.warning("autosave to %s failed: %s", self.autosave_path, exc)
            return None

    def discard(self) -> None:
        """After a save or a clean close: the autosave holds nothing the project file lacks."""
        self.autosave_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.discard()
        self.marker_path.unlink(missing_ok=True)


def find_recovery(project_file: Path) -> Recovery | None:
    """An autosave left by a session that did not close cleanly and that differs from the saved project."""
    state = project_file.parent / STATE_DIR
    autosave, marker = state / AUTOSAVE_FILE, state / MARKER_FILE
    if not autosave.exists() or not marker.exists():
        return None
    try:
        pid = int(json.loads(marker.read_text("utf-8")).get("pid", 0))
    except (OSError, ValueError, AttributeError):
        pid = 0
    if pid and pid != os.getpid() and _pid_alive(pid):
        return None  # another workbench has it open right now
    try:
        current = json.loads(project_file.read_text("utf-8")) if project_file.exists() else None
        saved = json.loads(autosave.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if saved == current:
        return None
    return Recovery(autosave, autosave.stat().st_mtime)


def load_recovered(project_file: Path, recovery: Recovery, registry: Registry | None = None) -> Project:
    """The autosaved document, as the project at its real location (relative data paths keep working)."""
    project = Project.load(recovery.path, registry)
    project.path = project_file.resolve()
    return project
