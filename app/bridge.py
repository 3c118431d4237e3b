"""The one bridge from engine events to Qt (ARCHITECTURE.md §4).

The engine emits plain-Python events from whatever thread does the work: the GUI thread for edits, the scheduler's
thread for run progress. `EngineBridge` re-emits each as a Qt signal. Qt's automatic connection type makes a signal
emitted on another thread *queued* into the GUI thread's event loop, while edits made on the GUI thread reach the
canvas at once (so a refused connection is undone before the next paint). Payloads are copied into plain values
before crossing, because the scheduler keeps mutating its status objects.
"""
from __future__ import annotations

from typing import Any, Callable

from PySide6 import QtCore

from engine import events as ev
from engine.graph import Graph


class EngineBridge(QtCore.QObject):
    node_added = QtCore.Signal(object)  # NodeInstance
    node_removed = QtCore.Signal(object)  # NodeInstance
    edge_added = QtCore.Signal(object)  # Edge
    edge_removed = QtCore.Signal(object)
    settings_changed = QtCore.Signal(str)  # node id
    node_changed = QtCore.Signal(str, dict)  # node id, changes
    state_changed = QtCore.Signal(str, dict)  # node id, status snapshot
    progress = QtCore.Signal(str, object, str)  # node id, fraction or None, message
    log = QtCore.Signal(str, int, str)  # node id, level, message

    def __init__(self, graph: Graph, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        handlers: dict[str, Callable[..., None]] = {
            ev.NODE_ADDED: lambda node: self.node_added.emit(node),
            ev.NODE_REMOVED: lambda node: self.node_removed.emit(node),
            ev.EDGE_ADDED: lambda edge: self.edge_added.emit(edge),
            ev.EDGE_REMOVED: lambda edge: self.edge_removed.emit(edge),
            ev.SETTINGS_CHANGED: lambda node: self.settings_changed.emit(node.id),
            ev.NODE_CHANGED: lambda node, changes: self.node_changed.emit(node.id, dict(changes)),
            ev.STATE_CHANGED: self._on_state,
            ev.PROGRESS: lambda node_id, fraction, message: self.progress.emit(node_id, fraction, message),
            ev.LOG: lambda node_id, level, message: self.log.emit(node_id, int(level), str(message)),
        }
        self._unsubscribe = [graph.events.subscribe(name, fn) for name, fn in handlers.items()]

    def _on_state(self, node_id: str, status: Any) -> None:
        self.state_changed.emit(node_id, snapshot(status))

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []


def snapshot(status: Any) -> dict[str, Any]:
    """The parts of a NodeStatus the GUI shows, as plain values."""
    return {"state": status.state.value, "cached": bool(status.cached), "progress": status.progress,
            "message": status.message, "error": status.error, "traceback": status.traceback,
            "duration_s": status.duration_s}
