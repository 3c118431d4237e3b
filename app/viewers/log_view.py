"""Docked per-node log and error view.

`append` is called for every log record while a node runs, so it inserts one coloured block through a cursor
(no HTML parsing) and relies on the document's maximum block count to drop the oldest lines.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from PySide6 import QtCore, QtGui, QtWidgets

from engine.i18n import N_, tr

MAX_LOG_LINES = 5_000
_AMBER = QtGui.QColor("#b26a00")
_RED = QtGui.QColor("#c62828")
_GREY = QtGui.QColor("#808080")
_LEVEL_NAMES = {logging.DEBUG: N_("DEBUG"), logging.INFO: N_("INFO"), logging.WARNING: N_("WARNING"),
                logging.ERROR: N_("ERROR"), logging.CRITICAL: N_("CRITICAL")}


def level_name(level: int) -> str:
    """The level's name as shown in the log; custom levels fall back to logging's own name for them."""
    name = _LEVEL_NAMES.get(level)
    return tr(name) if name is not None else logging.getLevelName(level)


def level_color(level: int) -> QtGui.QColor | None:
    """Colour for a level, or None for the palette's text colour (INFO and custom levels between)."""
    if level >= logging.ERROR:
        return _RED
    if level >= logging.WARNING:
        return _AMBER
    if level < logging.INFO:
        return _GREY
    return None


def _monospace() -> QtGui.QFont:
    return QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)


class LogViewer(QtWidgets.QWidget):
    """One node's log lines, its error message and its traceback."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._formats: dict[int, QtGui.QTextCharFormat] = {}
        self._empty = QtWidgets.QLabel(tr("Select a node to see its log."))
        self._empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setStyleSheet("color: palette(mid);")
        self._stack = QtWidgets.QStackedWidget()
        self._stack.addWidget(self._empty)
        self._stack.addWidget(self._build_page())
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)
        self.clear()

    # ------------------------------------------------------------------------------------------------ building

    def _build_page(self) -> QtWidgets.QWidget:
        self._title = QtWidgets.QLabel()
        self._title.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._title)
        layout.addWidget(self._build_error_box())
        layout.addWidget(self._build_log(), 1)
        return page

    def _build_error_box(self) -> QtWidgets.QFrame:
        """Red-tinted box: the message, then buttons, then the (collapsed) traceback."""
        self._error_box = QtWidgets.QFrame()
        self._error_box.setObjectName("errorBox")
        self._error_box.setStyleSheet("QFrame#errorBox { background: #fdecea; border: 1px solid #e57373;"
                                      " border-radius: 4px; }")
        self._error = QtWidgets.QLabel()
        self._error.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self._error.setWordWrap(True)
        self._error.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self._error.setStyleSheet("color: #8e1b1b; font-weight: bold; background: transparent; border: none;")
        self._toggle = QtWidgets.QPushButton(tr("Show traceback"))
        self._toggle.clicked.connect(self._on_toggle_traceback)
        self._copy = QtWidgets.QPushButton(tr("Copy error"))
        self._copy.clicked.connect(self.copy_error)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self._toggle)
        buttons.addWidget(self._copy)
        buttons.addStretch(1)
        self._traceback = QtWidgets.QPlainTextEdit()
        self._traceback.setReadOnly(True)
        self._traceback.setFont(_monospace())
        self._traceback.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        layout = QtWidgets.QVBoxLayout(self._error_box)
        layout.addWidget(self._error)
        layout.addLayout(buttons)
        layout.addWidget(self._traceback)
        return self._error_box

    def _build_log(self) -> QtWidgets.QPlainTextEdit:
        self._log = QtWidgets.QPlainTextEdit()
        self._log.setReadOnly(True)
        self._log.setFont(_monospace())
        self._log.setMaximumBlockCount(MAX_LOG_LINES)
        self._log.setUndoRedoEnabled(False)  # an undo stack would keep every dropped line alive
        self._log.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        return self._log

    # ------------------------------------------------------------------------------------------------- content

    def show_node(self, title: str, logs: Iterable[tuple[int, str]], error: str | None,
                  traceback: str | None) -> None:
        """Replace the content with one node's stored log and outcome (the traceback starts collapsed)."""
        self._stack.setCurrentIndex(1)
        self._title.setText(title)
        self._log.clear()
        cursor = QtGui.QTextCursor(self._log.document())
        cursor.beginEditBlock()  # one layout pass for the whole stored log
        for level, message in logs:
            self._insert(cursor, level, message)
        cursor.endEditBlock()
        self._set_error(error, traceback)
        self._scroll_to_end()

    def append(self, level: int, message: str) -> None:
        """Add one live line, following the end of the log only if the user was already there."""
        self._stack.setCurrentIndex(1)
        bar = self._log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum()
        self._insert(QtGui.QTextCursor(self._log.document()), level, message)
        if at_end:
            self._scroll_to_end()

    def clear(self) -> None:
        """Back to the empty state: no node, no log, no error."""
        self._title.clear()
        self._log.clear()
        self._set_error(None, None)
        self._stack.setCurrentIndex(0)

    def _insert(self, cursor: QtGui.QTextCursor, level: int, message: str) -> None:
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        if not self._log.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(f"{level_name(level):<8} {message}", self._format(level))

    def _format(self, level: int) -> QtGui.QTextCharFormat:
        fmt = self._formats.get(level)
        if fmt is None:
            fmt = QtGui.QTextCharFormat()
            if (color := level_color(level)) is not None:
                fmt.setForeground(color)
            self._formats[level] = fmt
        return fmt

    def _scroll_to_end(self) -> None:
        bar = self._log.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _set_error(self, error: str | None, traceback: str | None) -> None:
        message = error or (tr("The node failed.") if traceback else "")
        self._error.setText(message)
        self._traceback.setPlainText(traceback or "")
        self._error_box.setVisible(bool(message))
        self._toggle.setVisible(bool(traceback))
        self._set_traceback_visible(False)

    # ------------------------------------------------------------------------------------------------- actions

    def _set_traceback_visible(self, visible: bool) -> None:
        self._traceback.setVisible(visible)
        self._toggle.setText(tr("Hide traceback") if visible else tr("Show traceback"))

    @QtCore.Slot()
    def _on_toggle_traceback(self) -> None:
        self._set_traceback_visible(not self.traceback_visible())

    def error_report(self) -> str:
        """Message and traceback as one text, the form a bug report or a colleague needs."""
        parts = [p for p in (self.error_text(), self.traceback_text()) if p]
        return "\n\n".join(parts)

    @QtCore.Slot()
    def copy_error(self) -> None:
        QtGui.QGuiApplication.clipboard().setText(self.error_report())

    # ------------------------------------------------------------------------------------------ test accessors

    def log_text(self) -> str:
        return self._log.toPlainText()

    def error_text(self) -> str:
        return self._error.text()

    def traceback_text(self) -> str:
        return self._traceback.toPlainText()

    def traceback_visible(self) -> bool:
        return self._traceback.isVisibleTo(self._error_box)

    def empty_text(self) -> str:
        """The empty-state message while no node is shown, else ''."""
        return self._empty.text() if self._stack.currentIndex() == 0 else ""
