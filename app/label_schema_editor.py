"""The label schema editor of the properties panel: a small table of labels (name, colour, hotkey) with add, remove
and reorder buttons, for settings marked `json_schema_extra={"widget": "label-schema"}` (the Label node's labels).

A list of objects would otherwise be one line of JSON, which analysts setting up a task for business staff should
not have to write. Every edit commits the whole list; the node's settings model checks it (duplicate names or keys,
bad colours) and the panel shows its message, as for any other field.
"""
from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.properties import Commit, Fail, FieldEditor, FieldSpec, _blocked
from engine.i18n import tr

# Tableau 10: distinct, readable on white, and the colours labelers already know from charts
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
NAME, COLOR, HOTKEY = range(3)


def _text_color(hex_color: str) -> QtGui.QColor:
    """Black or white, whichever reads better on the label's colour."""
    c = QtGui.QColor(hex_color)
    if not c.isValid():
        return QtGui.QColor("black")
    luminance = 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue()
    return QtGui.QColor("black" if luminance > 140 else "white")


class LabelSchemaEditor(FieldEditor):
    """Edits a `list[LabelDef]` field: one row per label."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels([tr("Label"), tr("Colour"), tr("Key")])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COLOR, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(HOTKEY, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setMinimumHeight(150)
        self.table.setToolTip(tr("Double-click a colour to choose another; a key is one digit 1-9 or a letter"))
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.cellDoubleClicked.connect(self._on_double_click)

        self.add_button = self._button(tr("Add"), "add-label", self.add_label)
        self.remove_button = self._button(tr("Remove"), "remove-label", self.remove_selected)
        self.up_button = self._button(tr("Up"), "label-up", lambda: self.move_selected(-1))
        self.down_button = self._button(tr("Down"), "label-down", lambda: self.move_selected(1))
        buttons = QtWidgets.QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        box = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.input = self.table
        self.widget = box

    @staticmethod
    def _button(text: str, name: str, slot: Any) -> QtWidgets.QToolButton:
        button = QtWidgets.QToolButton()
        button.setText(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        return button

    # ---- value <-> rows ------------------------------------------------------------------------------------

    def value(self) -> list[dict[str, Any]]:
        """The rows as the field's JSON: [{"name", "color", "hotkey" (None when empty)}]."""
        out = []
        for row in range(self.table.rowCount()):
            name, color, key = (self._text(row, col) for col in (NAME, COLOR, HOTKEY))
            out.append({"name": name, "color": color, "hotkey": key or None})
        return out

    def _text(self, row: int, col: int) -> str:
        item = self.table.item(row, col)
        return item.text().strip() if item is not None else ""

    def load(self, value: Any) -> None:
        labels = value if isinstance(value, list) else []
        with _blocked(self.table):
            self.table.setRowCount(0)
            for label in labels:
                if isinstance(label, dict):
                    self._append(str(label.get("name", "")), str(label.get("color") or PALETTE[0]),
                                 str(label.get("hotkey") or ""))

    def _append(self, name: str, color: str, hotkey: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, NAME, QtWidgets.QTableWidgetItem(name))
        swatch = QtWidgets.QTableWidgetItem(color)
        self.table.setItem(row, COLOR, swatch)
        self._paint(swatch)
        self.table.setItem(row, HOTKEY, QtWidgets.QTableWidgetItem(hotkey))

    @staticmethod
    def _paint(item: QtWidgets.QTableWidgetItem) -> None:
        color = QtGui.QColor(item.text().strip())
        if color.isValid():
            item.setBackground(color)
            item.setForeground(_text_color(item.text().strip()))
        else:
            item.setData(QtCore.Qt.ItemDataRole.BackgroundRole, None)
            item.setData(QtCore.Qt.ItemDataRole.ForegroundRole, None)

    # ---- edits ---------------------------------------------------------------------------------------------

    def _on_item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if item.column() == COLOR:
            with _blocked(self.table):
                self._paint(item)
        self._commit(self.value())

    def _on_double_click(self, row: int, col: int) -> None:
        if col != COLOR:
            return
        current = QtGui.QColor(self._text(row, COLOR))
        chosen = QtWidgets.QColorDialog.getColor(current if current.isValid() else QtGui.QColor(PALETTE[0]),
                                                 self.table, tr("Label colour"))
        if chosen.isValid():
            self.set_color(row, chosen.name())

    def set_color(self, row: int, color: str) -> None:
        """Set a label's colour (what the colour dialog does); commits."""
        self.table.item(row, COLOR).setText(color.lower())  # itemChanged paints and commits

    def add_label(self) -> None:
        """A new row with an unused name, the next palette colour and the first free digit key; commits."""
        values = self.value()
        names = {v["name"].casefold() for v in values}
        keys = {(v["hotkey"] or "").lower() for v in values}
        n = len(values) + 1
        while tr("label {n}", n=n).casefold() in names:
            n += 1
        key = next((str(d) for d in range(1, 10) if str(d) not in keys), "")
        with _blocked(self.table):
            self._append(tr("label {n}", n=n), PALETTE[len(values) % len(PALETTE)], key)
        self.table.selectRow(self.table.rowCount() - 1)
        self._commit(self.value())

    def remove_selected(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            return
        with _blocked(self.table):
            self.table.removeRow(row)
        self._commit(self.value())

    def move_selected(self, step: int) -> None:
        row = self.table.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.table.rowCount():
            return
        values = self.value()
        values[row], values[target] = values[target], values[row]
        self.load(values)
        self.table.selectRow(target)
        self._commit(self.value())
