"""A scanned document or photo with zoom and pan; in a boxes task, boxes are drawn, selected, moved and resized on it.

Boxes live in image pixels (top-left origin, as stored). They are painted over the image in screen pixels, so the
outline, the label tag and the corner handles stay the same size at any zoom and stay easy to grab.

Mouse: drag on the image draws a box (it takes the current label; a label key changes it), drag a box to move it,
drag a corner handle to resize it. Wheel or +/- zooms, 0 fits; drag with the middle button or with Space held pans.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.labeling.text_view import tint
from engine.i18n import tr

Key = QtCore.Qt.Key
HANDLE_PX = 9  # a corner handle's size on screen
MIN_BOX_PX = 4  # smaller drags are clicks, not boxes (in image pixels)
ZOOM_STEP = 1.2
MIN_ZOOM, MAX_ZOOM = 0.05, 40.0


class ImageView(QtWidgets.QGraphicsView):
    changed = QtCore.Signal()  # boxes edited by the user
    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QtWidgets.QGraphicsScene(self))
        self.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QtWidgets.QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QtWidgets.QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setBackgroundBrush(QtGui.QColor("#eef1f5"))
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self._pixmap_item: QtWidgets.QGraphicsPixmapItem | None = None
        self.image_size = QtCore.QSizeF(0, 0)
        self.missing = ""
        self.boxes: list[dict[str, Any]] = []
        self.selected: int | None = None
        self.colors: dict[str, str] = {}
        self.current_label = ""
        self.boxes_mode = False
        self._fitted = True  # keep fitting on resize until the user zooms
        self._space = False
        self._drag: dict[str, Any] | None = None  # the gesture under way

    # ---- content -------------------------------------------------------------------------------
    def set_image(self, path: str, boxes: list[dict[str, Any]] | None, colors: dict[str, str], current_label: str,
                  boxes_mode: bool) -> None:
        self.scene().clear()
        self._pixmap_item = None
        reader = QtGui.QImageReader(path)
        reader.setAutoTransform(False)  # stored boxes use the file's own pixel grid, as the Label node read it
        image = reader.read() if Path(path).is_file() else QtGui.QImage()
        if image.isNull():
            self.missing = tr("Cannot show the image {path}: {why}. Skip this item (S) and say why.", path=path,
                              why=reader.errorString() if Path(path).is_file() else tr("the file does not exist"))
            self.image_size = QtCore.QSizeF(800, 600)
        else:
            self.missing = ""
            self._pixmap_item = self.scene().addPixmap(QtGui.QPixmap.fromImage(image))
            self._pixmap_item.setTransformationMode(QtCore.Qt.TransformationMode.SmoothTransformation)
            self.image_size = QtCore.QSizeF(image.width(), image.height())
        self.scene().setSceneRect(QtCore.QRectF(QtCore.QPointF(0, 0), self.image_size))
        self.colors, self.current_label, self.boxes_mode = colors, current_label, boxes_mode
        self.boxes = [dict(b) for b in (boxes or [])]
        self.selected = None
        self._drag = None
        self.fit()

    def set_boxes(self, boxes: list[dict[str, Any]]) -> None:
        self.boxes = [dict(b) for b in boxes]
        self.selected = None
        self.viewport().update()

    def value_boxes(self) -> list[dict[str, Any]]:
        return [{k: round(float(b[k]), 2) for k in ("x", "y", "w", "h")} | {"label": b["label"]} for b in self.boxes]

    # ---- zoom ------------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        target = max(MIN_ZOOM, min(MAX_ZOOM, self.zoom() * factor))
        factor = target / self.zoom()
        if abs(factor - 1) > 1e-9:
            self._fitted = False
            self.scale(factor, factor)

    def fit(self) -> None:
        self._fitted = True
        if self.image_size.width() > 0:
            self.fitInView(self.sceneRect(), QtCore.Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP ** steps)
        event.accept()

    # ---- geometry helpers ----------------------------------------------------------------------
    def view_point(self, x: float, y: float) -> QtCore.QPoint:
        """Where an image pixel is on screen (viewport coordinates); the tests aim the mouse with it."""
        return self.mapFromScene(QtCore.QPointF(x, y))

    def _image_point(self, pos: QtCore.QPoint) -> QtCore.QPointF:
        p = self.mapToScene(pos)
        return QtCore.QPointF(min(max(p.x(), 0.0), self.image_size.width()),
                              min(max(p.y(), 0.0), self.image_size.height()))

    @staticmethod
    def _corners(box: dict[str, Any]) -> list[QtCore.QPointF]:
        x, y, w, h = box["x"], box["y"], box["w"], box["h"]
        return [QtCore.QPointF(x, y), QtCore.QPointF(x + w, y), QtCore.QPointF(x + w, y + h), QtCore.QPointF(x, y + h)]

    def _handle_at(self, pos: QtCore.QPoint) -> int | None:
        if self.selected is None:
            return None
        for i, corner in enumerate(self._corners(self.boxes[self.selected])):
            if (self.mapFromScene(corner) - pos).manhattanLength() <= HANDLE_PX + 2:
                return i
        return None

    def _box_at(self, p: QtCore.QPointF) -> int | None:
        hits = [i for i, b in enumerate(self.boxes) if b["x"] <= p.x() <= b["x"] + b["w"] and
                b["y"] <= p.y() <= b["y"] + b["h"]]
        return min(hits, key=lambda i: self.boxes[i]["w"] * self.boxes[i]["h"]) if hits else None

    # ---- mouse -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        pos = event.position().toPoint()
        button = event.button()
        self.setFocus()
        if button == QtCore.Qt.MouseButton.MiddleButton or (button == QtCore.Qt.MouseButton.LeftButton and
                                                            (self._space or not self.boxes_mode)):
            self._drag = {"mode": "pan", "last": pos}
            self.viewport().setCursor(QtCore.Qt.CursorShape.ClosedHandCursor)
            return
        if button != QtCore.Qt.MouseButton.LeftButton or self.missing:
            return
        p = self._image_point(pos)
        corner = self._handle_at(pos)
        if corner is not None:
            self._drag = {"mode": "resize", "corner": corner, "before": dict(self.boxes[self.selected])}
            return
        hit = self._box_at(self.mapToScene(pos))
        if hit is not None:
            self.selected = hit
            box = self.boxes[hit]
            self._drag = {"mode": "move", "start": p, "before": dict(box)}
        else:
            self.selected = None
            self._drag = {"mode": "draw", "start": p, "end": p}
        self.viewport().update()

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:
        pos = event.position().toPoint()
        drag = self._drag
        if drag is None:
            self._hover_cursor(pos)
            return
        if drag["mode"] == "pan":
            delta = pos - drag["last"]
            drag["last"] = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            return
        p = self._image_point(pos)
        if drag["mode"] == "draw":
            drag["end"] = p
        elif drag["mode"] == "move":
            b = drag["before"]
            dx = min(max(p.x() - drag["start"].x(), -b["x"]), self.image_size.width() - b["x"] - b["w"])
            dy = min(max(p.y() - drag["start"].y(), -b["y"]), self.image_size.height() - b["y"] - b["h"])
            self.boxes[self.selected] = {**b, "x": b["x"] + dx, "y": b["y"] + dy}
        elif drag["mode"] == "resize":
            b = drag["before"]
            opposite = self._corners(b)[(drag["corner"] + 2) % 4]
            self.boxes[self.selected] = {**b, **_rect_dict(opposite, p)}
        self.viewport().update()

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        drag, self._drag = self._drag, None
        self.viewport().unsetCursor()
        if drag is None or drag["mode"] == "pan":
            return
        if drag["mode"] == "draw":
            rect = _rect_dict(drag["start"], drag["end"])
            if rect["w"] >= MIN_BOX_PX and rect["h"] >= MIN_BOX_PX:
                self.boxes.append({**rect, "label": self.current_label})
                self.selected = len(self.boxes) - 1
                self.changed.emit()
                self.message.emit(tr("Box drawn as '{label}'. Press another label's key to change it.",
                                     label=self.current_label))
        else:
            box = self.boxes[self.selected]
            if box["w"] < MIN_BOX_PX or box["h"] < MIN_BOX_PX:  # squashed by a resize: keep the box it was
                self.boxes[self.selected] = drag["before"]
            elif box != drag["before"]:
                self.changed.emit()
        self.viewport().update()

    def _hover_cursor(self, pos: QtCore.QPoint) -> None:
        shape = QtCore.Qt.CursorShape
        if self._space or not self.boxes_mode:
            cursor = shape.OpenHandCursor
        elif (corner := self._handle_at(pos)) is not None:
            cursor = shape.SizeFDiagCursor if corner in (0, 2) else shape.SizeBDiagCursor
        elif self._box_at(self.mapToScene(pos)) is not None:
            cursor = shape.SizeAllCursor
        else:
            cursor = shape.CrossCursor
        self.viewport().setCursor(cursor)

    # ---- keys and edits --------------------------------------------------------------------------
    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        key = event.key()
        if key == Key.Key_Space:
            self._space = not event.isAutoRepeat() or self._space
            self.viewport().setCursor(QtCore.Qt.CursorShape.OpenHandCursor)
        elif key in (Key.Key_Plus, Key.Key_Equal):
            self.zoom_by(ZOOM_STEP)
        elif key == Key.Key_Minus:
            self.zoom_by(1 / ZOOM_STEP)
        elif key == Key.Key_0:
            self.fit()
        elif key == Key.Key_Escape and self.selected is not None:
            self.selected = None
            self.viewport().update()
        else:
            event.ignore()  # labels, Enter, arrows, Delete: the labeling page decides

    def keyReleaseEvent(self, event: QtGui.QKeyEvent) -> None:
        if event.key() == Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
        else:
            event.ignore()

    def apply_label(self, label: str) -> bool:
        """A label key: relabel the selected box, and draw the next boxes with this label."""
        if not self.boxes_mode:
            return False
        self.current_label = label
        if self.selected is not None:
            self.boxes[self.selected] = {**self.boxes[self.selected], "label": label}
            self.viewport().update()
            self.changed.emit()
        else:
            self.message.emit(tr("New boxes will be '{label}'. Drag on the image to draw one.", label=label))
        return True

    def select_box(self, index: int | None) -> None:
        self.selected = index
        self.viewport().update()

    def delete_selected(self) -> bool:
        if not self.boxes_mode or self.selected is None:
            return False
        del self.boxes[self.selected]
        self.selected = None
        self.viewport().update()
        self.changed.emit()
        return True

    # ---- painting ------------------------------------------------------------------------------
    def drawForeground(self, painter: QtGui.QPainter, rect: QtCore.QRectF) -> None:
        painter.save()
        painter.resetTransform()  # from here on: screen pixels
        font = QtGui.QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = QtGui.QFontMetrics(font)
        if self.missing:
            painter.setPen(QtGui.QColor("#7a2e2e"))
            painter.drawText(self.viewport().rect().adjusted(40, 40, -40, -40),
                             int(QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap),
                             self.missing)
        shapes = [(i, b) for i, b in enumerate(self.boxes)]
        drag = self._drag
        if drag and drag["mode"] == "draw":
            shapes.append((-1, {**_rect_dict(drag["start"], drag["end"]), "label": self.current_label}))
        for i, box in shapes:
            color = QtGui.QColor(self.colors.get(box["label"], "#888888"))
            top_left = self.mapFromScene(QtCore.QPointF(box["x"], box["y"]))
            bottom_right = self.mapFromScene(QtCore.QPointF(box["x"] + box["w"], box["y"] + box["h"]))
            r = QtCore.QRectF(QtCore.QPointF(top_left), QtCore.QPointF(bottom_right))
            chosen = i == self.selected or i == -1
            fill = QtGui.QColor(color)
            fill.setAlpha(60 if chosen else 28)
            painter.setBrush(fill)
            painter.setPen(QtGui.QPen(color, 3 if chosen else 2,
                                      QtCore.Qt.PenStyle.DashLine if i == -1 else QtCore.Qt.PenStyle.SolidLine))
            painter.drawRect(r)
            tag = box["label"]
            tag_rect = QtCore.QRectF(r.left(), r.top() - metrics.height() - 4, metrics.horizontalAdvance(tag) + 10,
                                     metrics.height() + 4)
            if tag_rect.top() < 0:
                tag_rect.moveTop(r.top())
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(tag_rect, 3, 3)
            painter.setPen(QtGui.QColor("#ffffff") if color.lightness() < 170 else QtGui.QColor("#1d2430"))
            painter.drawText(tag_rect, int(QtCore.Qt.AlignmentFlag.AlignCenter), tag)
            if i == self.selected:
                painter.setPen(QtGui.QPen(color.darker(130), 1.5))
                painter.setBrush(QtGui.QColor("#ffffff"))
                half = HANDLE_PX / 2
                for corner in self._corners(box):
                    c = QtCore.QPointF(self.mapFromScene(corner))
                    painter.drawRect(QtCore.QRectF(c.x() - half, c.y() - half, HANDLE_PX, HANDLE_PX))
        painter.restore()


def _rect_dict(a: QtCore.QPointF, b: QtCore.QPointF) -> dict[str, float]:
    x0, x1 = sorted((a.x(), b.x()))
    y0, y1 = sorted((a.y(), b.y()))
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


__all__ = ["ImageView", "tint"]
