"""A complaint or chat text, large and wrapped; in a spans task, entities are marked on it in their label's colour.

Spans are stored as character offsets into the item's Python string, while Qt counts UTF-16 units and turns
"\\r\\n" into one paragraph break, so every offset crossing the boundary goes through `OffsetMap`. Marks are drawn as
extra selections, not inserted into the document, so the text itself (and every offset) never changes.

Keyboard: arrows move the cursor, Shift+arrows select, then a label's hotkey marks the selection. Clicking a mark
selects it; Delete removes it; a hotkey relabels it.
"""
from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from engine.i18n import tr

Key = QtCore.Qt.Key
_CARET_KEYS = {Key.Key_Left, Key.Key_Right, Key.Key_Up, Key.Key_Down, Key.Key_Home, Key.Key_End}


def tint(color: str, alpha: float) -> QtGui.QColor:
    """The label colour blended on white: readable text on top, the hue still recognisable."""
    c = QtGui.QColor(color)
    return QtGui.QColor(round(255 + (c.red() - 255) * alpha), round(255 + (c.green() - 255) * alpha),
                        round(255 + (c.blue() - 255) * alpha))


class OffsetMap:
    """Python string offsets <-> QTextDocument positions for one text."""

    def __init__(self, text: str) -> None:
        self.to_qt: list[int] = []
        pos = 0
        for i, ch in enumerate(text):
            self.to_qt.append(pos)
            if ch == "\r" and text[i + 1:i + 2] == "\n":
                continue  # Qt keeps one break for the pair: "\r" and "\n" share a position
            pos += 2 if ord(ch) > 0xFFFF else 1
        self.to_qt.append(pos)
        self.to_py: dict[int, int] = {}
        for i in range(len(self.to_qt) - 1, -1, -1):  # the first Python offset at each Qt position wins
            self.to_py[self.to_qt[i]] = i

    def py(self, qt_pos: int) -> int:
        while qt_pos not in self.to_py and qt_pos > 0:  # inside a surrogate pair: snap to its start
            qt_pos -= 1
        return self.to_py.get(qt_pos, 0)

    def qt(self, py_pos: int) -> int:
        return self.to_qt[max(0, min(py_pos, len(self.to_qt) - 1))]


class _Editor(QtWidgets.QPlainTextEdit):
    clicked = QtCore.Signal(int)  # Qt position of a plain click (no text selected)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.keyboard_selection = False
        self._press: QtCore.QPoint | None = None

    def set_keyboard_selection(self, on: bool) -> None:
        self.keyboard_selection = on
        flags = QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        if on:
            flags |= QtCore.Qt.TextInteractionFlag.TextSelectableByKeyboard
        self.setTextInteractionFlags(flags)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        mods = event.modifiers() & ~QtCore.Qt.KeyboardModifier.KeypadModifier
        caret = event.key() in _CARET_KEYS and not mods & QtCore.Qt.KeyboardModifier.AltModifier
        if self.keyboard_selection and caret or event.matches(QtGui.QKeySequence.StandardKey.Copy):
            super().keyPressEvent(event)
        else:
            event.ignore()  # hotkeys, Enter, Delete: the labeling page decides

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if self._press is not None and not self.textCursor().hasSelection():
            self.clicked.emit(self.cursorForPosition(event.position().toPoint()).position())
        self._press = None


class TextView(QtWidgets.QWidget):
    """The text of a text or spans item; in spans mode it owns the marked spans until the page saves them."""

    changed = QtCore.Signal()  # the spans were edited by the user
    message = QtCore.Signal(str)  # a short hint for the status line (e.g. "select some text first")

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = _Editor()
        font = QtGui.QFont(self.editor.font())
        font.setPointSizeF(font.pointSizeF() * 1.45)
        self.editor.setFont(font)
        self.editor.setStyleSheet("QPlainTextEdit{background:#ffffff;border:1px solid #d9dee7;border-radius:8px;"
                                  "padding:14px;color:#1d2430;selection-background-color:#2f6fde;"
                                  "selection-color:#ffffff}")
        self.editor.clicked.connect(self._on_click)
        self.chips = QtWidgets.QListWidget()
        self.chips.setFlow(QtWidgets.QListView.Flow.LeftToRight)
        self.chips.setWrapping(True)
        self.chips.setSpacing(4)
        self.chips.setMaximumHeight(110)
        self.chips.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.chips.setStyleSheet("QListWidget{border:none;background:transparent}")
        self.chips.itemClicked.connect(lambda it: self.select_span(self.chips.row(it)))
        self.chips_title = QtWidgets.QLabel()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.chips_title)
        layout.addWidget(self.chips)
        self.text = ""
        self._map = OffsetMap("")
        self._spans: list[dict[str, Any]] = []
        self._colors: dict[str, str] = {}
        self.selected: int | None = None
        self.spans_mode = False

    # ---- content -------------------------------------------------------------------------------
    def set_text(self, text: str, spans: list[dict[str, Any]] | None, colors: dict[str, str],
                 spans_mode: bool) -> None:
        self.text, self._map, self._colors, self.spans_mode = text, OffsetMap(text), colors, spans_mode
        self.editor.set_keyboard_selection(spans_mode)
        self.editor.setPlainText(text)
        self.editor.moveCursor(QtGui.QTextCursor.MoveOperation.Start)
        self._spans = [dict(s) for s in (spans or [])]
        self.selected = None
        self.chips_title.setVisible(spans_mode)
        self.chips.setVisible(spans_mode)
        self._render()

    def spans(self) -> list[dict[str, Any]]:
        return sorted((dict(s) for s in self._spans), key=lambda s: (s["start"], s["end"], s["label"]))

    def set_spans(self, spans: list[dict[str, Any]]) -> None:
        self._spans = [dict(s) for s in spans]
        self.selected = None
        self._render()

    # ---- selection (the tests and the keyboard drive these) ---------------------------------------
    def select_range(self, start: int, end: int) -> None:
        """Select text by Python offsets, as a mouse drag or Shift+arrows would."""
        cursor = self.editor.textCursor()
        cursor.setPosition(self._map.qt(start))
        cursor.setPosition(self._map.qt(end), QtGui.QTextCursor.MoveMode.KeepAnchor)
        self.editor.setTextCursor(cursor)

    def selection(self) -> tuple[int, int] | None:
        """The selected text as Python offsets, without the spaces around it; None when nothing is selected."""
        cursor = self.editor.textCursor()
        if not cursor.hasSelection():
            return None
        start, end = self._map.py(cursor.selectionStart()), self._map.py(cursor.selectionEnd())
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return (start, end) if start < end else None

    def select_span(self, index: int | None) -> None:
        self.selected = index if index is not None and 0 <= index < len(self._spans) else None
        self._render()

    def _on_click(self, qt_pos: int) -> None:
        if not self.spans_mode:
            return
        pos = self._map.py(qt_pos)
        hits = [i for i, s in enumerate(self._spans) if s["start"] <= pos < s["end"]]
        self.select_span(min(hits, key=lambda i: self._spans[i]["end"] - self._spans[i]["start"]) if hits else None)

    # ---- edits -----------------------------------------------------------------------------------
    def apply_label(self, label: str) -> bool:
        """Mark the selection with `label` (replacing marks it overlaps), or relabel the selected mark."""
        if not self.spans_mode:
            return False
        sel = self.selection()
        if sel is not None:
            start, end = sel
            replaced = [s for s in self._spans if s["start"] < end and start < s["end"]]
            self._spans = [s for s in self._spans if s not in replaced]
            self._spans.append({"start": start, "end": end, "label": label})
            self._spans.sort(key=lambda s: (s["start"], s["end"]))
            self.selected = None
            cursor = self.editor.textCursor()
            cursor.setPosition(self._map.qt(end))
            self.editor.setTextCursor(cursor)
            if replaced:
                self.message.emit(tr("Replaced {count} overlapping mark(s).", count=len(replaced)))
        elif self.selected is not None:
            self._spans[self.selected] = {**self._spans[self.selected], "label": label}
        else:
            self.message.emit(tr("Select some text first (mouse, or Shift+arrows), then press the label's key."))
            return False
        self._render()
        self.changed.emit()
        return True

    def delete_selected(self) -> bool:
        if not self.spans_mode or self.selected is None:
            return False
        del self._spans[self.selected]
        self.selected = None
        self._render()
        self.changed.emit()
        return True

    def clear_selection(self) -> None:
        cursor = self.editor.textCursor()
        cursor.clearSelection()
        self.editor.setTextCursor(cursor)
        self.select_span(None)

    # ---- drawing ---------------------------------------------------------------------------------
    def _render(self) -> None:
        marks = []
        for i, span in enumerate(self._spans):
            color = self._colors.get(span["label"], "#888888")
            fmt = QtGui.QTextCharFormat()
            chosen = i == self.selected
            fmt.setBackground(tint(color, 0.75 if chosen else 0.32))
            fmt.setUnderlineStyle(QtGui.QTextCharFormat.UnderlineStyle.SingleUnderline)
            fmt.setUnderlineColor(QtGui.QColor(color))
            if chosen:
                fmt.setFontWeight(QtGui.QFont.Weight.Bold)
            fmt.setToolTip(span["label"])
            cursor = QtGui.QTextCursor(self.editor.document())
            cursor.setPosition(self._map.qt(span["start"]))
            cursor.setPosition(self._map.qt(span["end"]), QtGui.QTextCursor.MoveMode.KeepAnchor)
            mark = QtWidgets.QTextEdit.ExtraSelection()
            mark.cursor, mark.format = cursor, fmt
            marks.append(mark)
        self.editor.setExtraSelections(marks)
        self.chips.clear()
        for i, span in enumerate(self._spans):
            piece = self.text[span["start"]:span["end"]].replace("\n", " ")
            if len(piece) > 40:
                piece = piece[:39] + "…"
            item = QtWidgets.QListWidgetItem(f"{piece}  ·  {span['label']}")
            color = self._colors.get(span["label"], "#888888")
            item.setBackground(tint(color, 0.75 if i == self.selected else 0.3))
            item.setToolTip(tr("Click to select; Delete removes it; a label key changes it."))
            self.chips.addItem(item)
        self.chips_title.setText(tr("Marked: {count}", count=len(self._spans)) if self._spans else
                                 tr("Nothing marked yet: select text, then press a label's key."))
