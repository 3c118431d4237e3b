"""Overview rendering for big workflows: when zoomed far out, the canvas shows one snapshot instead of thousands
of items.

A 500-node flow has ~6,000 graphics items (nodes, ports, labels, pipes, arrows); painting them all at overview
scale costs 25-100 ms a frame in Qt's software rasteriser, most of it in NodeGraphQt's Python `paint` methods.
Below `OVERVIEW_SCALE` nothing is readable anyway, so the scene is rendered once into a pixmap, the items are
marked `ItemHasNoContents` (Qt skips painting them but still hit-tests them, so clicks and rubber-band selection
keep working), and panning or zooming draws a single pixmap. The canvas controller invalidates the snapshot on every engine change, selection and state
change, and it is re-rendered at most every 150 ms;
pressing the mouse switches back to live items until the button is released, so drags show live feedback.
"""
from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

OVERVIEW_SCALE = 0.6  # node titles are 5 px or less below this zoom: nothing readable is lost
MIN_NODES = 150  # smaller flows paint fast enough item by item
SNAPSHOT_SCALE = OVERVIEW_SCALE  # the snapshot is as sharp as the largest zoom it is shown at
_NO_CONTENTS = QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


class Overview(QtCore.QObject):
    def __init__(self, view: QtWidgets.QGraphicsView, node_count: Any) -> None:
        super().__init__(view)
        self.view = view
        self._node_count = node_count  # callable: how many nodes the canvas holds
        self.active = False
        self._suspended = False
        self._stale = True
        self._pixmap: QtWidgets.QGraphicsPixmapItem | None = None
        self._flagged: list[QtWidgets.QGraphicsItem] = []
        self.renders = 0  # how many snapshots were rendered (tests and the frame-time benchmark read it)
        self._timer = QtCore.QTimer(self, singleShot=True, interval=150, timeout=self._refresh)

    # ---- state changes --------------------------------------------------------------------------
    def update_for_scale(self, scale: float) -> None:
        want = scale < OVERVIEW_SCALE and self._node_count() >= MIN_NODES and not self._suspended
        if want and not self.active:
            self._enter()
        elif not want and self.active:
            self._leave()

    def invalidate(self) -> None:
        """Something on the canvas changed: re-render the snapshot soon (if it is showing)."""
        self._stale = True
        if self.active and not self._timer.isActive():  # at most one re-render per interval, even under a stream
            self._timer.start()

    def suspend(self) -> None:
        """Live items while the user presses the mouse (dragging nodes, drawing pipes, rubber-band selecting)."""
        self._suspended = True
        if self.active:
            self._leave()

    def resume(self) -> None:
        self._suspended = False
        self.invalidate()
        self.update_for_scale(self.view.transform().m11())

    # ---- mechanics -------------------------------------------------------------------------------
    def _content(self) -> list[QtWidgets.QGraphicsItem]:
        return [i for i in self.view.scene().items() if i is not self._pixmap and i.isVisible()]

    @property
    def showing_snapshot(self) -> bool:
        return self.active and self._pixmap is not None and self._pixmap.isVisible()

    @property
    def snapshot_rect(self) -> QtCore.QRectF:
        """The scene area the current snapshot covers (empty before the first render)."""
        if self._pixmap is None:
            return QtCore.QRectF()
        return self._pixmap.sceneBoundingRect()

    def _render(self) -> None:
        scene = self.view.scene()
        self._set_flags(False)
        if self._pixmap is not None:
            self._pixmap.setVisible(False)
        rect = QtCore.QRectF()
        for item in self._content():  # not the previous snapshot: it would grow the next one each time
            if item.parentItem() is None:
                rect = rect.united(item.sceneBoundingRect())
        rect = rect.adjusted(-20, -20, 20, 20)
        size = QtCore.QSize(max(1, int(rect.width() * SNAPSHOT_SCALE)), max(1, int(rect.height() * SNAPSHOT_SCALE)))
        image = QtGui.QImage(size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(QtCore.Qt.GlobalColor.transparent)
        painter = QtGui.QPainter(image)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform)
        scene.render(painter, QtCore.QRectF(image.rect()), rect)
        painter.end()
        if self._pixmap is None:
            self._pixmap = QtWidgets.QGraphicsPixmapItem()
            self._pixmap.setTransformationMode(QtCore.Qt.TransformationMode.SmoothTransformation)
            self._pixmap.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
            self._pixmap.setAcceptHoverEvents(False)
            self._pixmap.setZValue(1e9)
            scene.addItem(self._pixmap)
        self._pixmap.setPixmap(QtGui.QPixmap.fromImage(image))
        self._pixmap.setPos(rect.topLeft())
        self._pixmap.setScale(1.0 / SNAPSHOT_SCALE)
        self._stale = False
        self.renders += 1

    def _set_flags(self, on: bool) -> None:
        if on:
            self._flagged = [i for i in self._content() if not i.flags() & _NO_CONTENTS]
            for item in self._flagged:
                item.setFlag(_NO_CONTENTS, True)
        else:
            for item in self._flagged:
                item.setFlag(_NO_CONTENTS, False)
            self._flagged = []

    def _enter(self) -> None:
        self.active = True
        if self._stale or self._pixmap is None:
            self._timer.start()  # render when the event loop is idle; live items are drawn meanwhile
            return
        self._set_flags(True)
        self._pixmap.setVisible(True)

    def _leave(self) -> None:
        self._set_flags(False)
        if self._pixmap is not None:
            self._pixmap.setVisible(False)
        self.active = False

    def _refresh(self) -> None:
        if self.active and not self._suspended:
            self._render()
            self._set_flags(True)
            self._pixmap.setVisible(True)  # type: ignore[union-attr]
