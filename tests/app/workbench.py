"""Helpers for driving the workbench the way a user does: palette drops, pipe drags, toolbar actions."""
from __future__ import annotations

import shutil
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.canvas.viewer import NODE_MIME
from app.main_window import MainWindow
from app.preferences import Preferences
from engine.project import Project
from engine.registry import Registry
from engine.templates import SAMPLE_DATA

RUN_TIMEOUT_MS = 300_000


def empty_project(folder: Path, name: str = "Workbench test") -> Path:
    """An empty project with the sample credit data beside it (data/credit_applications.csv)."""
    (folder / "data").mkdir(parents=True)
    shutil.copy2(SAMPLE_DATA, folder / "data" / SAMPLE_DATA.name)
    return Project.new(folder, name).save()


def drop_node(window: MainWindow, type_id: str, scene_xy: tuple[float, float]) -> str:
    """Drop a node type from the palette onto the canvas at a scene position; returns the new engine id."""
    viewer = window.canvas.viewer
    item = next(i for i in window.palette.items() if i.data(0, QtCore.Qt.ItemDataRole.UserRole + 1) == type_id)
    mime = window.palette.tree.mimeData([item])
    before = set(window.document.graph.nodes)
    pos = viewer.mapFromScene(QtCore.QPointF(*scene_xy))
    event = QtGui.QDropEvent(QtCore.QPointF(pos), QtCore.Qt.DropAction.CopyAction, mime,
                             QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    assert mime.hasFormat(NODE_MIME)
    viewer.dropEvent(event)
    (new,) = set(window.document.graph.nodes) - before
    return new


def port_point(window: MainWindow, node_id: str, port: str, output: bool) -> QtCore.QPoint:
    node = window.canvas.canvas_node(node_id)
    p = node.get_output(port) if output else node.get_input(port)
    center = p.view.sceneBoundingRect().center()
    return window.canvas.viewer.mapFromScene(center)


def drag_pipe(qtbot, window: MainWindow, src: str, src_port: str, dst: str, dst_port: str) -> None:  # noqa: ANN001
    """Press on an output port and release on an input port, as a user drags a pipe."""
    mouse_drag(qtbot, window, port_point(window, src, src_port, True), port_point(window, dst, dst_port, False))


def mouse_drag(qtbot, window: MainWindow, a: QtCore.QPoint, b: QtCore.QPoint) -> None:  # noqa: ANN001
    viewport = window.canvas.viewer.viewport()
    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(viewport, pos=(a + b) / 2)
    qtbot.mouseMove(viewport, pos=b)
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=b)


def wait_run(qtbot, window: MainWindow, timeout: int = RUN_TIMEOUT_MS) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.running, timeout=timeout)


def make_window(qtbot, prefs: Preferences | None = None, registry: Registry | None = None) -> MainWindow:  # noqa: ANN001
    """A shown main window whose questions are answered without a modal dialog (none can be clicked offscreen)."""
    window = MainWindow(prefs or Preferences(), registry)
    window.ask_save_changes = lambda: QtWidgets.QMessageBox.StandardButton.Discard
    window.ask_recover = lambda _recovery: False
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    return window


def close(window: MainWindow) -> None:
    window.close()
