"""One open project in the workbench: the engine project and session, the undo stack and the dirty flag.

Every edit goes through `Document.push`, the single entry to the engine's undoable commands, so the canvas, the
properties panel and scripts share one history.
"""
from __future__ import annotations

from pathlib import Path

from engine.commands import Command, UndoStack
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.project import Project
from engine.scheduler import Session


class EditLocked(LedgerflowError):
    """An edit that would change what a running workflow computes."""


# Edits that cannot change results may go on while a run is in progress.
_SAFE_WHILE_RUNNING = {"position", "title"}


class Document:
    def __init__(self, project: Project, *, scheduler_address: str | None = None) -> None:
        self.project = project
        self.graph = project.graph
        self._scheduler_address = scheduler_address or None
        self.session = Session(project, scheduler_address=self._scheduler_address)
        self.undo_stack = UndoStack(self.graph)
        self.dirty = False
        self.running = False  # set by the run controller; structural edits wait until the run ends

    @classmethod
    def open(cls, path: Path | str, *, scheduler_address: str | None = None) -> "Document":
        return cls(Project.load(path), scheduler_address=scheduler_address)

    @property
    def title(self) -> str:
        return f"{self.project.name} — {self.project.path.parent.name}"

    def push(self, command: Command) -> Command:
        """Execute an undoable edit; raises (leaving everything unchanged) when the engine refuses it."""
        self._check_editable(command)
        done = self.undo_stack.push(command)
        self.dirty = True
        return done

    def undo(self) -> Command | None:
        if self.running:
            raise EditLocked(tr("Undo is paused while the workflow runs; cancel the run or wait for it to end."))
        done = self.undo_stack.undo()
        self.dirty = self.dirty or done is not None
        return done

    def redo(self) -> Command | None:
        if self.running:
            raise EditLocked(tr("Redo is paused while the workflow runs; cancel the run or wait for it to end."))
        done = self.undo_stack.redo()
        self.dirty = self.dirty or done is not None
        return done

    def save(self, path: Path | str | None = None) -> Path:
        """Write the project file atomically (a save-as to another folder moves the project there)."""
        if path is not None and Path(path).resolve() != self.project.path and self.project.path.exists():
            target = Path(path)
            # the new folder gets its own state; results are recomputed there (or found in its own cache)
            self.session.close()
            written = self.project.save(target)
            self.session = Session(self.project, scheduler_address=self._scheduler_address)
        else:
            written = self.project.save(path)
        self.dirty = False
        return written

    def close(self) -> None:
        self.session.close()

    def _check_editable(self, command: Command) -> None:
        if not self.running:
            return
        from engine.commands import Batch, UpdateNode

        commands = command.commands if isinstance(command, Batch) else [command]
        if all(isinstance(c, UpdateNode) and set(c.changes) <= _SAFE_WHILE_RUNNING for c in commands):
            return
        raise EditLocked(tr("The workflow is running: moving and renaming nodes is fine, other edits wait until the "
                            "run ends or is cancelled."))
