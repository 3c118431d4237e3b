"""Source preview from the properties panel: real files, real Qt, overrides as undoable settings."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from PySide6 import QtWidgets

from app.properties import PropertiesPanel
from engine.commands import AddNode, UndoStack
from engine.graph import Graph
from engine.registry import default_registry


@pytest.fixture
def setup(qtbot, tmp_path: Path):
    graph = Graph(default_registry())
    stack = UndoStack(graph)
    panel = PropertiesPanel(graph, stack.push, lambda _nid: [], project_dir=lambda: tmp_path)
    qtbot.addWidget(panel)
    panel.show()
    return graph, stack, panel


def _add(stack: UndoStack, type_id: str, settings: dict) -> str:
    stack.push(AddNode(type_id, settings, title="Source", node_id="src"))
    return "src"


def test_csv_preview_shows_schema_rows_and_sets_overrides(setup, tmp_path: Path):
    graph, stack, panel = setup
    rows = "\n".join(f"{i:05d},{i * 1.5},2024-01-{i % 28 + 1:02d},华东" for i in range(1, 5001))
    (tmp_path / "loans.csv").write_text("id,amount,opened,region\n" + rows + "\n", "utf-8")
    nid = _add(stack, "io.read_csv", {"path": "loans.csv"})
    panel.show_node(nid)
    button = panel.findChild(QtWidgets.QPushButton, "preview")
    assert button is not None
    button.click()
    dialog = panel.preview_dialog
    assert dialog is not None and dialog.wait()
    assert dialog.table is not None and dialog.table.height == 200  # the head only
    assert dialog.table.schema["id"] == pl.Int64  # "00001" is read as a number unless overridden
    assert [dialog.schema.item(r, 0).text() for r in range(4)] == ["id", "amount", "opened", "region"]
    assert dialog.schema.item(3, 4).text() == "华东"

    dialog.set_type("id", "str")  # an analyst keeps the leading zeros
    assert graph.node(nid).settings["column_types"] == {"id": "str"}
    assert dialog.wait()
    assert dialog.table.schema["id"] == pl.String and dialog.table["id"][0] == "00001"

    stack.undo()
    assert graph.node(nid).settings.get("column_types", {}) == {}
    dialog.reload()
    assert dialog.wait() and dialog.table.schema["id"] == pl.Int64


def test_preview_errors_are_shown_not_raised(setup, tmp_path: Path):
    _graph, stack, panel = setup
    (tmp_path / "bad.csv").write_text("id,amount\n1,10\n2,abc\n", "utf-8")
    nid = _add(stack, "io.read_csv", {"path": "bad.csv", "column_types": {"amount": "float"}})
    dialog = panel.open_preview(nid)
    assert dialog is not None and dialog.wait()
    assert dialog.table is None
    text = dialog.status.text()
    assert "line 3" in text and "'amount'" in text and "abc" in text

    nid2 = "missing"
    stack.push(AddNode("io.read_csv", {"path": "nope.csv"}, title="Missing", node_id=nid2))
    dialog = panel.open_preview(nid2)
    assert dialog.wait() and "nope.csv" in dialog.status.text()


def test_excel_preview(setup, tmp_path: Path):
    import xlsxwriter

    book = xlsxwriter.Workbook(str(tmp_path / "book.xlsx"))
    sheet = book.add_worksheet("loans")
    sheet.write_row(0, 0, ["id", "amount"])
    for i in range(1, 400):
        sheet.write_row(i, 0, [i, i * 2.5])
    book.close()
    _graph, stack, panel = setup
    nid = _add(stack, "io.read_excel", {"path": "book.xlsx"})
    dialog = panel.open_preview(nid)
    assert dialog.wait() and dialog.table is not None
    assert dialog.table.height == 200 and dialog.table["amount"][1] == 5.0


def test_nodes_without_preview_have_no_button(setup):
    _graph, stack, panel = setup
    nid = _add(stack, "features.split", {})
    panel.show_node(nid)
    assert panel.findChild(QtWidgets.QPushButton, "preview") is None
