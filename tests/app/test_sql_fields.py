"""The Read SQL node's password box and query editor in the properties panel (real Qt, real vault)."""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.properties import PropertiesPanel
from engine import secrets
from engine.commands import AddNode, UndoStack
from engine.graph import Graph
from engine.registry import default_registry


def test_password_goes_to_the_vault_and_query_commits_on_leave(qtbot, tmp_path: Path):
    graph = Graph(default_registry())
    stack = UndoStack(graph)
    panel = PropertiesPanel(graph, stack.push, lambda _nid: [], project_dir=lambda: tmp_path)
    qtbot.addWidget(panel)
    panel.show()
    stack.push(AddNode("io.read_sql", {"url": "postgresql+psycopg://analyst@127.0.0.1/risk"}, node_id="sql"))
    panel.show_node("sql")

    box = panel.editor("password")
    assert isinstance(box, QtWidgets.QLineEdit) and box.echoMode() == QtWidgets.QLineEdit.EchoMode.Password
    box.setFocus()
    qtbot.keyClicks(box, "S3cret-pa55")
    qtbot.keyClick(box, QtCore.Qt.Key.Key_Return)
    ref = graph.node("sql").settings["password"]
    assert ref.startswith("vault:") and secrets.get_secret(ref) == "S3cret-pa55"
    assert box.text() == "" and "vault" in box.placeholderText()

    query = panel.editor("query")
    assert isinstance(query, QtWidgets.QPlainTextEdit)
    query.setFocus()
    qtbot.keyClicks(query, "SELECT * FROM loans")
    assert graph.node("sql").settings["query"] == ""  # typing alone commits nothing
    qtbot.keyClick(query, QtCore.Qt.Key.Key_Return, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert graph.node("sql").settings["query"] == "SELECT * FROM loans"

    panel.findChild(QtWidgets.QToolButton, "forget:password").click()
    assert graph.node("sql").settings["password"] == ""
    stack.undo()
    assert graph.node("sql").settings["password"] == ref
