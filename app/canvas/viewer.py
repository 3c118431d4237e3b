"""NodeGraphQt's viewer with Ledgerflow's context menu and palette drops.

Subclassed (rather than patched) so the context menu shows our node actions and drops of a node type from the
palette reach the controller, which turns them into engine commands.
"""
from __future__ import annotations

from typing import Any, Callable

from NodeGraphQt.qgraphics.node_abstract import AbstractNodeItem
from NodeGraphQt.qgraphics.pipe import PipeItem
from NodeGraphQt.widgets.viewer import NodeViewer
from PySide6 import QtCore, QtGui, QtWidgets

from app.canvas.overview import Overview

NODE_MIME = "application/x-ledgerflow-node-type"
LOD_SCALE = 0.55  # below this on-screen scale a pipe is drawn as a hairline without antialiasing


class LodPipeItem(PipeItem):
    """A pipe that draws itself cheaply when it is small on screen (level of detail).

    Not cached: NodeGraphQt caches every pipe as a device pixmap as large as its bounding box, and blitting 750
    of those cost four times more than drawing the curves (measured by bench/gui_frames.py).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.NoCache)

    def paint(self, painter: QtGui.QPainter, option: QtWidgets.QStyleOptionGraphicsItem, widget: Any) -> None:
        if option.levelOfDetailFromTransform(painter.worldTransform()) >= LOD_SCALE:
            super().paint(painter, option, widget)
            return
        painter.save()
        pen = QtGui.QPen(self.pen().color(), 0)  # cosmetic: one device pixel whatever the zoom
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        painter.setPen(pen)
        painter.drawPath(self.path())
        painter.restore()


class CanvasViewer(NodeViewer):
    context_requested = QtCore.Signal(str, QtCore.QPoint, QtCore.QPointF)  # canvas node id or "", global, scene
    frame_painted = QtCore.Signal(float)  # seconds spent painting the last frame (for the frame-time benchmark)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.overview: Overview | None = None
        super().__init__(*args, **kwargs)
        self.setOptimizationFlag(QtWidgets.QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.node_count: Callable[[], int] = lambda: 0  # set by the controller
        self.overview = Overview(self, lambda: self.node_count())

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        if self.overview:
            self.overview.suspend()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if self.overview:
            self.overview.resume()

    def establish_connection(self, start_port: Any, end_port: Any) -> None:
        """NodeGraphQt's pipe, as a level-of-detail pipe."""
        pipe = LodPipeItem()
        self.scene().addItem(pipe)
        pipe.set_connections(start_port, end_port)
        pipe.draw_path(pipe.input_port, pipe.output_port)
        if start_port.node.selected or end_port.node.selected:
            pipe.highlight()
        if not start_port.node.visible or not end_port.node.visible:
            pipe.hide()

    def _update_scene(self) -> None:
        """NodeGraphQt refits the view on every pan step; that changes the scale by rounding errors, which
        throws away every item's device-coordinate cache. A pan keeps the exact scale, so caches are reused."""
        vp = self.viewport().rect()
        rng = self._scene_range
        scale = self.transform().m11()
        wanted = min(vp.width() / rng.width(), vp.height() / rng.height()) if rng.width() and rng.height() else 0
        if scale and wanted and abs(wanted - scale) / scale < 0.01 and self.transform().m22() == scale:
            self.setSceneRect(rng)
            self.centerOn(rng.center())
        else:
            super()._update_scene()
        if self.overview:
            self.overview.update_for_scale(self.transform().m11())

    def contextMenuEvent(self, event: QtGui.QContextMenuEvent) -> None:
        self.RMB_state = False
        scene_pos = self.mapToScene(event.pos())
        node_id = ""
        for item in self.scene().items(scene_pos):
            if isinstance(item, AbstractNodeItem):
                node_id = item.id
                break
        self.context_requested.emit(node_id, event.globalPos(), scene_pos)
        event.accept()

    def _combined_rect(self, nodes: list[Any]) -> QtCore.QRectF:
        """Union of the items' scene rects. NodeGraphQt groups and ungroups the items instead, which takes over a
        second at 500 nodes (every item is reparented twice)."""
        rect = QtCore.QRectF()
        for item in nodes:
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def _accepts(self, event: Any) -> bool:
        return event.mimeData().hasFormat(NODE_MIME)

    # Only node types from the palette may be dropped. NodeGraphQt would also take files and import them as its own
    # sessions, creating canvas nodes the engine does not know.
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QtGui.QDragMoveEvent) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        timer = QtCore.QElapsedTimer()
        timer.start()
        super().paintEvent(event)
        self.frame_painted.emit(timer.nsecsElapsed() / 1e9)
