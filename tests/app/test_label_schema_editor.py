"""The label schema editor in the real properties panel: a Label node's labels are added, renamed, recoloured,
reordered and removed through real widgets, each edit one undoable command, with the schema's own checks shown."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.label_schema_editor import PALETTE, LabelSchemaEditor
from app.properties import PropertiesPanel, describe_field
from engine.commands import UndoStack
from engine.graph import Graph
from engine.registry import default_registry
from nodes.label.label_node import LabelSettings


@pytest.fixture
def graph() -> Graph:
    return Graph(default_registry())


@pytest.fixture
def stack(graph: Graph) -> UndoStack:
    return UndoStack(graph)


@pytest.fixture
def panel(qtbot, graph: Graph, stack: UndoStack, tmp_path: Path) -> PropertiesPanel:
    p = PropertiesPanel(graph, stack.push, lambda _nid: ["text", "id"], project_dir=lambda: tmp_path)
    qtbot.addWidget(p)
    p.resize(460, 900)
    p.show()
    return p


def _button(panel: PropertiesPanel, name: str) -> QtWidgets.QToolButton:
    button = panel.findChild(QtWidgets.QToolButton, name)
    assert button is not None, name
    return button


def test_labels_field_gets_the_schema_editor():
    assert describe_field("labels", LabelSettings.model_fields["labels"]).kind == "label-schema"


def test_edit_labels_through_the_panel(qtbot, panel: PropertiesPanel, graph: Graph, stack: UndoStack):
    nid = graph.add_node("label.label", {"task": "complaints"}).id
    panel.show_node(nid)
    table = panel.editor("labels")
    assert isinstance(table, QtWidgets.QTableWidget)
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["yes", "no"]  # a new node's labels
    for _ in range(2):
        table.selectRow(0)
        qtbot.mouseClick(_button(panel, "remove-label"), QtCore.Qt.MouseButton.LeftButton)
    assert graph.nodes[nid].settings["labels"] == [] and table.rowCount() == 0
    assert "at least one label" in panel.general_text() + panel.error_text("labels")

    qtbot.mouseClick(_button(panel, "add-label"), QtCore.Qt.MouseButton.LeftButton)
    qtbot.mouseClick(_button(panel, "add-label"), QtCore.Qt.MouseButton.LeftButton)
    assert graph.nodes[nid].settings["labels"] == [
        {"name": "label 1", "color": PALETTE[0], "hotkey": "1"},
        {"name": "label 2", "color": PALETTE[1], "hotkey": "2"}]
    assert graph.validated_settings(nid).label_schema().names == ["label 1", "label 2"]

    table.item(0, 0).setText("fees")  # what typing into the cell does
    table.item(1, 1).setText("#D62728")
    assert table.item(1, 1).background().color() == QtGui.QColor("#d62728")
    labels = graph.nodes[nid].settings["labels"]
    assert [label["name"] for label in labels] == ["fees", "label 2"] and labels[1]["color"] == "#D62728"
    assert graph.validated_settings(nid).labels[1].color == "#d62728"  # the schema normalises it

    # a duplicate key is refused by the schema and shown, not silently kept
    table.item(1, 2).setText("1")
    assert "hotkey: '1' is used by both 'fees' and 'label 2'" in panel.general_text() + panel.error_text("labels")
    table.item(1, 2).setText("o")
    assert "hotkey" not in panel.general_text() + panel.error_text("labels")
    assert graph.validated_settings(nid).labels[1].hotkey == "o"

    table.selectRow(1)
    qtbot.mouseClick(_button(panel, "label-up"), QtCore.Qt.MouseButton.LeftButton)
    assert [label["name"] for label in graph.nodes[nid].settings["labels"]] == ["label 2", "fees"]
    assert panel.editor("labels").item(0, 2).text() == "o"
    table = panel.editor("labels")
    table.selectRow(1)
    qtbot.mouseClick(_button(panel, "remove-label"), QtCore.Qt.MouseButton.LeftButton)
    assert graph.nodes[nid].settings["labels"] == [{"name": "label 2", "color": "#D62728", "hotkey": "o"}]

    stack.undo()  # the removal comes back, and the editor shows it
    panel.refresh()
    assert [label["name"] for label in graph.nodes[nid].settings["labels"]] == ["label 2", "fees"]
    assert panel.editor("labels").rowCount() == 2


def test_set_color_and_load_without_commits(qtbot, graph: Graph):
    commits: list = []
    spec = describe_field("labels", LabelSettings.model_fields["labels"])
    editor = LabelSchemaEditor(spec, commits.append, lambda msg: None)
    qtbot.addWidget(editor.widget)
    editor.load([{"name": "PERSON", "color": "#4e79a7", "hotkey": "p"}, {"name": "AMOUNT", "color": "#f28e2b"}])
    assert commits == [] and editor.value()[1] == {"name": "AMOUNT", "color": "#f28e2b", "hotkey": None}
    editor.set_color(0, "#FFFFFF")
    assert commits[-1][0]["color"] == "#ffffff"
    assert editor.table.item(0, 1).foreground().color() == QtGui.QColor("black")  # readable on a light colour
