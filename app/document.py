"""One open project in the workbench: the engine project and session, the undo stack and the dirty flag.

Every edit goes through `Document.push`, the single entry to the engine's undoable commands, so the canvas, the
properties panel and scripts share one history.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from engine.commands import Command, UndoStack
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.project import Project, project_file
from engine.scheduler import Session
from engine.sdk import Node, resolve_project_path


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
        # Called after every completed edit, undo or redo (engine events fire while a command is still running,
        # before the undo stack has recorded it).
        self.after_change: list[Callable[[], None]] = []

    def push(self, command: Command) -> Command:
        """Execute an undoable edit; raises (leaving everything unchanged) when the engine refuses it."""
        self._check_editable(command)
        done = self.undo_stack.push(command)
        self.dirty = True
        self._changed()
        return done

    def undo(self) -> Command | None:
        if self.running:
            raise EditLocked(tr("Undo is paused while the workflow runs; cancel the run or wait for it to end."))
        done = self.undo_stack.undo()
        self.dirty = self.dirty or done is not None
        self._changed()
        return done

    def redo(self) -> Command | None:
        if self.running:
            raise EditLocked(tr("Redo is paused while the workflow runs; cancel the run or wait for it to end."))
        done = self.undo_stack.redo()
        self.dirty = self.dirty or done is not None
        self._changed()
        return done

    def save(self, path: Path | str | None = None) -> Path:
        """Write the project file atomically. Saving to another folder moves the project there: it gets its own
        state folder (results are recomputed there), and sources keep reading their data where it is."""
        if path is None or project_file(Path(path)).resolve() == self.project.path:
            written = self.project.save()
        else:
            if self.running:
                raise EditLocked(tr("Save as is not possible while the workflow runs; cancel the run or wait for "
                                    "it to end."))
            self._anchor_source_paths()
            self.session.close()
            written = self.project.save(path)
            self.session = Session(self.project, scheduler_address=self._scheduler_address)
        self.dirty = False
        return written

    def _anchor_source_paths(self) -> None:
        """Relative paths of source nodes become absolute, so a moved project still finds its input data (writers
        keep relative paths: their outputs belong to the project's new folder)."""
        for inst in self.graph.nodes.values():
            cls = self.graph.node_class(inst.id)
            path = inst.settings.get("path")
            if cls is None or not isinstance(path, str) or Path(path).is_absolute():
                continue
            if cls.fingerprint.__func__ is not Node.fingerprint.__func__:  # type: ignore[attr-defined]
                inst.settings["path"] = str(resolve_project_path(path, self.project.directory))

    def close(self) -> None:
        self.after_change.clear()
        self.session.close()

    def _changed(self) -> None:
        for listener in list(self.after_change):
            listener()

    def _check_editable(self, command: Command) -> None:
        if not self.running:
            return
        from engine.commands import Batch, UpdateNode

        commands = command.commands if isinstance(command, Batch) else [command]
        if all(isinstance(c, UpdateNode) and set(c.changes) <= _SAFE_WHILE_RUNNING for c in commands):
            return
        raise EditLocked(tr("The workflow is running: moving and renaming nodes is fine, other edits wait until the "
                            "run ends or is cancelled."))
