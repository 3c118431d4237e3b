"""A version's lineage drawn as a small graph: what it came from (runs, data, artifacts) flowing into it.

Why a drawing and not only a list: a reviewer approving a model wants to see at a glance that it was trained on
that dataset by that run. Links are laid out in columns by what they point at (runs on the left, then data and
artifacts, then the version itself), each edge labelled with its relation; hovering a box shows the full id.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from engine.i18n import N_, tr

_COLUMNS = {"run": 0, "fingerprint": 1, "artifact": 1, "version": 1}  # anything else: column 1
_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 200, 54, 120, 22
_KIND_LABELS = {"run": N_("run"), "fingerprint": N_("data fingerprint"), "artifact": N_("artifact"),
                "version": N_("asset version")}
_FILL = {"run": "#fde9c8", "fingerprint": "#d9ecff", "artifact": "#e3f4e1", "version": "#efe3fb", "self": "#ffd6d6"}


def _short(target: str) -> str:
    return target if len(target) <= 22 else f"{target[:10]}…{target[-8:]}"


class LineageGraph(QtWidgets.QGraphicsView):
    """`show_version(version_dict)` draws its links; an empty state says there is nothing recorded."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QtWidgets.QGraphicsScene(self))
        self.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        self.setDragMode(QtWidgets.QGraphicsView.DragMode.ScrollHandDrag)
        self.boxes: list[str] = []  # the drawn boxes' labels, in drawing order (tests and accessibility read them)

    def show_version(self, version: dict | None) -> None:
        scene = self.scene()
        scene.clear()
        self.boxes = []
        if not version:
            return
        links = version.get("lineage") or []
        if not links:
            text = scene.addText(tr("No lineage recorded."))
            text.setDefaultTextColor(self.palette().color(QtGui.QPalette.ColorRole.PlaceholderText))
            return
        columns: dict[int, list[dict]] = {}
        for link in links:
            columns.setdefault(_COLUMNS.get(link.get("kind", ""), 1), []).append(link)
        height = max(len(items) for items in columns.values()) * (_BOX_H + _GAP_Y)
        target_x = (max(columns) + 1) * (_BOX_W + _GAP_X)
        target = self._box(target_x, height / 2 - _BOX_H / 2, version.get("ref", ""),
                           tr("this version"), "self", version.get("content_sha256", ""))
        for col, items in sorted(columns.items()):
            top = (height - len(items) * (_BOX_H + _GAP_Y)) / 2
            for row, link in enumerate(items):
                kind, value = link.get("kind", ""), str(link.get("target", ""))
                box = self._box(col * (_BOX_W + _GAP_X), top + row * (_BOX_H + _GAP_Y), _short(value),
                                tr(_KIND_LABELS[kind]) if kind in _KIND_LABELS else kind, kind, value)
                self._edge(box, target, str(link.get("relation", "")))
        self.setSceneRect(scene.itemsBoundingRect().adjusted(-10, -10, 10, 10))

    def _box(self, x: float, y: float, title: str, subtitle: str, kind: str,
             tooltip: str) -> QtWidgets.QGraphicsRectItem:
        scene = self.scene()
        rect = scene.addRect(QtCore.QRectF(x, y, _BOX_W, _BOX_H), QtGui.QPen(QtGui.QColor("#7a7a7a")),
                             QtGui.QBrush(QtGui.QColor(_FILL.get(kind, "#eeeeee"))))
        rect.setToolTip(tooltip)
        label = scene.addText(title)
        label.setDefaultTextColor(QtGui.QColor("#202020"))
        label.setPos(x + 6, y + 2)
        label.setTextWidth(_BOX_W - 12)
        note = scene.addText(subtitle)
        note.setDefaultTextColor(QtGui.QColor("#5a5a5a"))
        note.setPos(x + 6, y + _BOX_H / 2 - 2)
        self.boxes.append(title)
        return rect

    def _edge(self, source: QtWidgets.QGraphicsRectItem, target: QtWidgets.QGraphicsRectItem, relation: str) -> None:
        scene = self.scene()
        a = source.rect().center() + QtCore.QPointF(_BOX_W / 2, 0)
        b = target.rect().center() - QtCore.QPointF(_BOX_W / 2, 0)
        pen = QtGui.QPen(QtGui.QColor("#6b6b6b"), 1.4)
        scene.addLine(QtCore.QLineF(a, b), pen)
        line = QtCore.QLineF(b, a)
        for angle in (25, -25):  # the arrow head at the version's side
            head = QtCore.QLineF(b, b + QtCore.QPointF(9, 0))
            head.setAngle(line.angle() + angle)
            scene.addLine(head, pen)
        text = scene.addText(relation)
        text.setDefaultTextColor(QtGui.QColor("#3b5b8c"))
        # just after the source box, where edges into one version have not converged yet: labels do not collide
        at = a + (b - a) * 0.08
        text.setPos(at.x(), at.y() - text.boundingRect().height() + 2)
