"""A loan-application record as readable field cards: the column name small above its value, numbers grouped.

Business staff compare a few fields at a glance (income, debt, purpose); a wide table row makes them scroll and
squint. The labels themselves are chosen in the controls panel, so this view only shows.
"""
from __future__ import annotations

import math
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from engine.i18n import tr

COLUMNS = 3
_CARD_STYLE = ("#card{background:#ffffff;border:1px solid #d9dee7;border-radius:8px}"
               "#card QLabel#name{color:#5b6575}#card QLabel#value{color:#1d2430}")


def field_title(column: str) -> str:
    """'annual_income' -> 'Annual income': the column as a person would say it (the raw name is the tooltip)."""
    words = column.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else column


def format_value(value: Any) -> str:
    """Numbers with thousands separators and no float noise; empty values as a dash so a gap is visible."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return "—"
    if isinstance(value, bool):
        return tr("Yes") if value else tr("No")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.2f}"
        return f"{value:.4g}" if abs(value) >= 1e-4 else f"{value:.3e}"
    return str(value)


class RecordView(QtWidgets.QScrollArea):
    """Field cards in a grid; keys it does not use (digits, arrows, Enter) go on to the labeling page."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self._body = QtWidgets.QWidget()
        self._body.setStyleSheet(_CARD_STYLE)
        self._grid = QtWidgets.QGridLayout(self._body)
        self._grid.setContentsMargins(16, 16, 16, 16)
        self._grid.setSpacing(12)
        self.setWidget(self._body)
        self.cards: dict[str, QtWidgets.QLabel] = {}

    def set_fields(self, fields: dict[str, Any]) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.cards = {}
        for i, (column, value) in enumerate(fields.items()):
            card = QtWidgets.QFrame(objectName="card")
            layout = QtWidgets.QVBoxLayout(card)
            layout.setContentsMargins(14, 10, 14, 12)
            layout.setSpacing(2)
            name = QtWidgets.QLabel(field_title(column), objectName="name")
            name.setToolTip(column)
            shown = QtWidgets.QLabel(format_value(value), objectName="value")
            shown.setWordWrap(True)
            shown.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            font = QtGui.QFont(shown.font())
            font.setPointSizeF(font.pointSizeF() * 1.35)
            font.setBold(True)
            shown.setFont(font)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                shown.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
            layout.addWidget(name)
            layout.addWidget(shown)
            self._grid.addWidget(card, i // COLUMNS, i % COLUMNS)
            self.cards[column] = shown
        for col in range(COLUMNS):
            self._grid.setColumnStretch(col, 1)
        self._grid.setRowStretch(math.ceil(len(fields) / COLUMNS), 1)
        self.verticalScrollBar().setValue(0)

    def card_text(self, column: str) -> str:
        return self.cards[column].text()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        # the scroll area would eat the arrows (previous/next); only the page keys scroll the cards
        if event.key() in (QtCore.Qt.Key.Key_PageUp, QtCore.Qt.Key.Key_PageDown, QtCore.Qt.Key.Key_Up,
                           QtCore.Qt.Key.Key_Down):
            super().keyPressEvent(event)
        else:
            event.ignore()
