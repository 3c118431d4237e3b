"""LogViewer: level prefixes and colours, the 5,000-line cap, the error box, the traceback toggle and copying."""
from __future__ import annotations

import logging

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.viewers.log_view import MAX_LOG_LINES, LogViewer

TRACEBACK = ('Traceback (most recent call last):\n  File "nodes/evaluate/evaluate.py", line 95, in compute\n'
             "    raise NodeInputError(...)\nNodeInputError: No rows with a label to evaluate on")


@pytest.fixture
def viewer(qtbot) -> LogViewer:
    w = LogViewer()
    qtbot.addWidget(w)
    return w


def _color_of_line(viewer: LogViewer, n: int) -> QtGui.QColor:
    block = viewer._log.document().findBlockByNumber(n)
    cursor = QtGui.QTextCursor(block)
    cursor.movePosition(QtGui.QTextCursor.MoveOperation.NextCharacter)
    return cursor.charFormat().foreground().color()


def test_empty_state(viewer):
    assert viewer.empty_text() == "Select a node to see its log."
    assert viewer.log_text() == "" and viewer.error_text() == ""
    viewer.show_node("Read CSV", [(logging.INFO, "read 10 rows")], None, None)
    assert viewer.empty_text() == ""
    viewer.clear()
    assert viewer.empty_text() == "Select a node to see its log."
    assert viewer.log_text() == ""


def test_levels_are_prefixed_and_coloured(viewer):
    viewer.show_node("Evaluate", [(logging.DEBUG, "scoring"), (logging.INFO, "auc=0.8123"),
                                  (logging.WARNING, "few positives"), (logging.ERROR, "failed")], None, None)
    lines = viewer.log_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert lines[1].endswith("auc=0.8123")
    assert _color_of_line(viewer, 0) == QtGui.QColor("#808080")
    assert _color_of_line(viewer, 2) == QtGui.QColor("#b26a00")
    assert _color_of_line(viewer, 3) == QtGui.QColor("#c62828")
    assert _color_of_line(viewer, 1) not in (QtGui.QColor("#808080"), QtGui.QColor("#b26a00"), QtGui.QColor("#c62828"))


def test_append_adds_lines_and_show_node_replaces(viewer):
    viewer.show_node("Train", [(logging.INFO, "start")], None, None)
    viewer.append(logging.WARNING, "slow fold")
    assert viewer.log_text().splitlines()[-1].split(maxsplit=1) == ["WARNING", "slow fold"]
    viewer.show_node("Other", [], None, None)
    assert viewer.log_text() == ""


def test_append_is_capped_dropping_the_oldest(viewer):
    viewer.show_node("Train", [], None, None)
    for i in range(MAX_LOG_LINES + 250):
        viewer.append(logging.INFO, f"line {i}")
    lines = viewer.log_text().splitlines()
    assert len(lines) == MAX_LOG_LINES
    assert lines[0].endswith("line 250")
    assert lines[-1].endswith(f"line {MAX_LOG_LINES + 249}")


def test_error_box_and_traceback_toggle(viewer, qtbot):
    viewer.show_node("Evaluate", [(logging.INFO, "scoring")], "No rows with a label to evaluate on", TRACEBACK)
    viewer.show()
    qtbot.waitExposed(viewer)
    assert viewer._error_box.isVisible()
    assert viewer.error_text() == "No rows with a label to evaluate on"
    assert viewer.traceback_text() == TRACEBACK
    assert not viewer.traceback_visible()
    assert viewer._toggle.text() == "Show traceback"
    qtbot.mouseClick(viewer._toggle, QtCore.Qt.MouseButton.LeftButton)
    assert viewer.traceback_visible()
    assert viewer._toggle.text() == "Hide traceback"
    qtbot.mouseClick(viewer._toggle, QtCore.Qt.MouseButton.LeftButton)
    assert not viewer.traceback_visible()
    assert viewer._toggle.text() == "Show traceback"

    viewer.show_node("Read CSV", [], None, None)
    assert not viewer._error_box.isVisible()
    assert viewer.error_text() == "" and viewer.traceback_text() == ""


def test_copy_error_copies_message_and_traceback(viewer, qtbot):
    viewer.show_node("Evaluate", [], "No rows with a label to evaluate on", TRACEBACK)
    viewer.show()
    qtbot.waitExposed(viewer)
    QtWidgets.QApplication.clipboard().clear()
    qtbot.mouseClick(viewer._copy, QtCore.Qt.MouseButton.LeftButton)
    assert QtWidgets.QApplication.clipboard().text() == "No rows with a label to evaluate on\n\n" + TRACEBACK
