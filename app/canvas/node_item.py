"""The canvas item of a node: NodeGraphQt's item plus the run state drawn on it.

State is painted (a coloured strip, a progress bar, a 'cached' badge, a red frame on failure) rather than shown
with embedded widgets, which drift under zoom (ARCHITECTURE.md §4).
"""
from __future__ import annotations

from typing import Any

from NodeGraphQt.constants import ICON_NODE_BASE, NodeEnum
from NodeGraphQt.qgraphics.node_base import NodeItem
from PySide6 import QtCore, QtGui, QtWidgets

from engine.i18n import N_, tr

STATE_COLORS = {
    "idle": "#6b7280",
    "stale": "#d4a017",
    "queued": "#60a5fa",
    "running": "#3b82f6",
    "done": "#22c55e",
    "failed": "#ef4444",
    "cancelled": "#a855f7",
}
STATE_LABELS = {  # translated at display time
    "idle": N_("idle"), "stale": N_("stale"), "queued": N_("queued"), "running": N_("running"), "done": N_("done"),
    "failed": N_("failed"), "cancelled": N_("cancelled"),
}
_STRIP = 4.0
_FOOTER = 16.0  # room below the ports for the state strip and badge, so they never cover a port label


_ICONS: dict[str, QtGui.QPixmap] = {}
_SELECTED_CHANGE = QtWidgets.QGraphicsItem.GraphicsItemChange.ItemSelectedChange


def icon_pixmap(path: str) -> QtGui.QPixmap:
    """A node icon scaled to NodeGraphQt's icon size, loaded once per file (NodeGraphQt reloads it per node,
    three times while a node is built)."""
    pixmap = _ICONS.get(path)
    if pixmap is None:
        size = NodeEnum.ICON_SIZE.value
        pixmap = QtGui.QIcon(path).pixmap(size, size)
        _ICONS[path] = pixmap
    return pixmap


class StatusNodeItem(NodeItem):
    """A node item that knows its engine state."""

    def _set_icon(self, path: str | None = None) -> None:
        self._properties["icon"] = path
        self._icon_item.setPixmap(icon_pixmap(path or ICON_NODE_BASE))
        if self.scene():
            self.post_init()
        self.update()

    icon = property(NodeItem.icon.fget, _set_icon)

    def itemChange(self, change: QtWidgets.QGraphicsItem.GraphicsItemChange, value: Any) -> Any:  # noqa: N802
        """NodeGraphQt only acts on selection changes; answering the other ~40 notifications a node gets while
        it is built without the round trip through its Python override saves a tenth of a second per 500 nodes."""
        if change == _SELECTED_CHANGE:
            return super().itemChange(change, value)
        return value

    def __init__(self, name: str = "node", parent: Any = None) -> None:
        super().__init__(name, parent)
        self.run_state = "idle"
        self.cached = False
        self.progress: float | None = None
        self.placeholder = False
        self.base_tooltip = ""

    def _set_base_size(self, add_w: float = 0.0, add_h: float = 0.0) -> None:
        super()._set_base_size(add_w, add_h + _FOOTER)

    def set_run_state(self, state: str, *, cached: bool = False, progress: float | None = None,
                      error: str | None = None, message: str = "") -> None:
        changed = (state, cached, progress) != (self.run_state, self.cached, self.progress)
        self.run_state, self.cached, self.progress = state, cached, progress
        self._detail = [message, tr("Error: {error}", error=error) if error else ""]
        self._tooltip_disable(self.disabled)
        if changed:
            self.update()

    def _tooltip_disable(self, state: bool) -> None:
        """NodeGraphQt calls this on every layout to reset the tooltip to name and type; ours says what the
        node does and how it stands."""
        tip = [self.name, self.base_tooltip]
        if state:
            tip.append(tr("Disabled: not run, nor anything after it"))
        tip.append(tr("State: {state}", state=tr(STATE_LABELS.get(self.run_state, self.run_state))))
        if self.cached and self.run_state == "done":
            tip.append(tr("Result loaded from the cache"))
        tip.extend(getattr(self, "_detail", ()))
        self.setToolTip("\n".join(t for t in tip if t))

    def paint(self, painter: QtGui.QPainter, option: Any, widget: Any) -> None:
        super().paint(painter, option, widget)
        if self._proxy_mode:  # zoomed far out: NodeGraphQt draws a simplified box; keep just the colour
            return
        painter.save()
        rect = self.boundingRect().adjusted(1.0, 1.0, -1.0, -1.0)
        color = QtGui.QColor(STATE_COLORS.get(self.run_state, "#6b7280"))
        strip = QtCore.QRectF(rect.left() + 3, rect.bottom() - _STRIP - 2, rect.width() - 6, _STRIP)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(QtGui.QColor(0, 0, 0, 90))
        painter.drawRoundedRect(strip, 2, 2)
        fill = strip
        if self.run_state == "running" and self.progress is not None:
            fill = QtCore.QRectF(strip.left(), strip.top(), strip.width() * max(0.03, self.progress), strip.height())
        if self.run_state != "running" or self.progress is not None:
            painter.setBrush(color)
            painter.drawRoundedRect(fill, 2, 2)
        elif self.run_state == "running":  # unknown progress: a striped bar
            painter.setBrush(QtGui.QBrush(color, QtCore.Qt.BrushStyle.BDiagPattern))
            painter.drawRoundedRect(strip, 2, 2)
        if self.run_state in ("failed", "cancelled") or self.placeholder:
            pen = QtGui.QPen(QtGui.QColor("#f59e0b" if self.placeholder else color), 2.0)
            if self.placeholder:
                pen.setStyle(QtCore.Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect, 4, 4)
        if self.cached and self.run_state == "done":
            self._badge(painter, rect, tr("cached"), QtGui.QColor("#15803d"))
        elif self.run_state == "failed":
            self._badge(painter, rect, "!", QtGui.QColor("#b91c1c"))
        painter.restore()

    @staticmethod
    def _badge(painter: QtGui.QPainter, rect: QtCore.QRectF, text: str, color: QtGui.QColor) -> None:
        font = QtGui.QFont(painter.font())
        font.setPointSizeF(6.5)
        painter.setFont(font)
        metrics = QtGui.QFontMetricsF(font)
        w, h = metrics.horizontalAdvance(text) + 8, min(metrics.height() + 1, _FOOTER - _STRIP - 3)
        badge = QtCore.QRectF(rect.right() - w - 4, rect.bottom() - _STRIP - h - 3, w, h)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(badge, 3, 3)
        painter.setPen(QtGui.QColor("white"))
        painter.drawText(badge, QtCore.Qt.AlignmentFlag.AlignCenter, text)
