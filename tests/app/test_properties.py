"""The properties panel edits real nodes of the real registry through real widgets and an UndoStack."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.properties import PropertiesPanel, describe_field, format_string_list, parse_string_list
from engine.commands import Command, Connect, SetSettings, UndoStack, UpdateNode
from engine.errors import GraphError
from engine.graph import Graph, NodeInstance
from engine.registry import default_registry

COLUMNS = ["a", "b", "default"]


class Recorder:
    """Pushes through the UndoStack and remembers what was pushed (to count commands)."""

    def __init__(self, stack: UndoStack) -> None:
        self.stack = stack
        self.pushed: list[Command] = []

    def __call__(self, command: Command) -> Command:
        self.pushed.append(command)
        return self.stack.push(command)


@pytest.fixture
def graph() -> Graph:
    return Graph(default_registry())


@pytest.fixture
def stack(graph: Graph) -> UndoStack:
    return UndoStack(graph)


@pytest.fixture
def push(stack: UndoStack) -> Recorder:
    return Recorder(stack)


@pytest.fixture
def panel(qtbot, graph: Graph, push: Recorder, tmp_path: Path) -> PropertiesPanel:
    p = PropertiesPanel(graph, push, lambda _nid: list(COLUMNS), project_dir=lambda: tmp_path)
    qtbot.addWidget(p)
    p.resize(420, 700)
    p.show()
    return p


def _type_and_enter(qtbot, widget: QtWidgets.QWidget, text: str) -> None:
    """Replace a field's text the way a user does: focus, select all, type, Enter."""
    widget.setFocus()
    line = widget.lineEdit() if isinstance(widget, (QtWidgets.QAbstractSpinBox, QtWidgets.QComboBox)) else widget
    line.selectAll()
    qtbot.keyClick(widget, QtCore.Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, QtCore.Qt.Key.Key_Return)


# ------------------------------------------------------------------------------------------- widget kinds

def test_empty_state(panel: PropertiesPanel):
    empty = panel.findChild(QtWidgets.QLabel, "empty")
    assert empty.isVisible() and empty.text() == "Select a node to edit its settings."
    with pytest.raises(KeyError):
        panel.editor("path")


def test_csv_reader_widgets(panel: PropertiesPanel, graph: Graph):
    node = graph.add_node("io.read_csv")
    panel.show_node(node.id)
    assert isinstance(panel.editor("path"), QtWidgets.QLineEdit)
    assert panel.findChild(QtWidgets.QPushButton, "browse:path").text() == "Browse…"
    encoding = panel.editor("encoding")
    assert isinstance(encoding, QtWidgets.QComboBox) and not encoding.isEditable()
    assert [encoding.itemText(i) for i in range(encoding.count())] == ["auto", "utf-8", "utf-8-sig", "gbk", "gb18030"]
    assert encoding.currentText() == "auto"
    assert encoding.toolTip() == "auto detects UTF-8, UTF-8 with BOM and GBK/GB18030"
    assert isinstance(panel.editor("has_header"), QtWidgets.QCheckBox) and panel.editor("has_header").isChecked()
    assert isinstance(panel.editor("delimiter"), QtWidgets.QLineEdit)
    assert panel.editor("delimiter").text() == "auto"
    assert isinstance(panel.editor("column_types"), QtWidgets.QLineEdit)  # dict: JSON
    assert panel.editor("column_types").text() == "{}"
    assert panel.editor("null_values").text() == '"", NA, N/A, null, NULL'
    labels = {lbl.text() for lbl in panel.findChildren(QtWidgets.QLabel)}
    assert {"File", "Encoding", "First row is the header", "Missing-value markers", "Read CSV"} <= labels
    assert panel.title_editor().text() == node.title


def test_split_widgets(panel: PropertiesPanel, graph: Graph):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    frac = panel.editor("test_fraction")
    assert isinstance(frac, QtWidgets.QDoubleSpinBox)
    assert 0.0 < frac.minimum() < 0.01 and 0.99 < frac.maximum() < 1.0  # gt 0, lt 1: both ends excluded
    assert frac.value() == pytest.approx(0.25) and not frac.keyboardTracking()
    seed = panel.editor("seed")
    assert isinstance(seed, QtWidgets.QSpinBox) and not seed.isEnabled()
    use_default = panel.findChild(QtWidgets.QCheckBox, "default:seed")
    assert use_default.isChecked() and use_default.text() == "Use project seed"
    strat = panel.editor("stratify_by")
    assert isinstance(strat, QtWidgets.QComboBox) and strat.isEditable()
    assert [strat.itemText(i) for i in range(strat.count())] == ["", *COLUMNS]
    assert strat.currentText() == ""


def test_automl_widgets(panel: PropertiesPanel, graph: Graph):
    node = graph.add_node("automl.autogluon")
    panel.show_node(node.id)
    label = panel.editor("label")
    assert isinstance(label, QtWidgets.QComboBox) and label.isEditable()
    assert [label.itemText(i) for i in range(label.count())] == COLUMNS  # required: no blank entry
    problem = panel.editor("problem_type")
    assert [problem.itemText(i) for i in range(problem.count())] == ["auto", "binary", "multiclass", "regression"]
    budget = panel.editor("time_limit_s")
    assert isinstance(budget, QtWidgets.QSpinBox) and (budget.minimum(), budget.maximum()) == (5, 7 * 24 * 3600)
    families = panel.editor("included_model_types")
    assert isinstance(families, QtWidgets.QListWidget)
    assert families.count() == 9 and families.item(0).text() == "GBM"
    assert all(families.item(i).checkState() == QtCore.Qt.CheckState.Unchecked for i in range(families.count()))


def test_describe_field_kinds():
    fields = default_registry().get("io.read_csv").Settings.model_fields
    assert describe_field("path", fields["path"]).kind == "file"
    assert describe_field("column_types", fields["column_types"]).container is dict
    split = default_registry().get("features.split").Settings.model_fields
    spec = describe_field("test_fraction", split["test_fraction"])
    assert (spec.minimum, spec.min_exclusive, spec.maximum, spec.max_exclusive) == (0.0, True, 1.0, True)
    assert describe_field("seed", split["seed"]).optional
    write = default_registry().get("io.write_csv").Settings.model_fields
    assert describe_field("path", write["path"]).kind == "save-file"


def test_string_list_round_trip():
    values = ["", "NA", "a,b", 'say "hi"']
    assert parse_string_list(format_string_list(values)) == values
    assert parse_string_list("  ") == []
    assert parse_string_list("x, y") == ["x", "y"]


# ------------------------------------------------------------------------------------------- editing

def test_spin_box_commits_once_on_enter(qtbot, panel: PropertiesPanel, graph: Graph, push: Recorder):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    _type_and_enter(qtbot, panel.editor("test_fraction"), "0.3")
    assert graph.node(node.id).settings["test_fraction"] == pytest.approx(0.3)
    assert len(push.pushed) == 1 and isinstance(push.pushed[0], SetSettings)
    assert push.pushed[0].changes == {"test_fraction": pytest.approx(0.3)}


def test_optional_seed(qtbot, panel: PropertiesPanel, graph: Graph, push: Recorder):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    panel.findChild(QtWidgets.QCheckBox, "default:seed").click()
    assert graph.node(node.id).settings["seed"] == 0 and panel.editor("seed").isEnabled()
    _type_and_enter(qtbot, panel.editor("seed"), "7")
    assert graph.node(node.id).settings["seed"] == 7
    panel.findChild(QtWidgets.QCheckBox, "default:seed").click()
    assert graph.node(node.id).settings["seed"] is None
    assert len(push.pushed) == 3


def test_literal_combo_and_undo_refresh(panel: PropertiesPanel, graph: Graph, stack: UndoStack, push: Recorder):
    node = graph.add_node("automl.autogluon")
    panel.show_node(node.id)
    combo = panel.editor("problem_type")
    combo.setCurrentIndex(combo.findText("binary"))
    assert graph.node(node.id).settings["problem_type"] == "binary"
    assert len(push.pushed) == 1
    stack.undo()
    assert combo.currentText() == "binary"  # the panel waits for refresh()
    panel.refresh()
    assert combo.currentText() == "auto"
    assert len(push.pushed) == 1  # refreshing pushed nothing
    stack.redo()
    panel.refresh()
    assert panel.editor("problem_type").currentText() == "binary"


def test_check_box_and_list_of_literals(qtbot, panel: PropertiesPanel, graph: Graph, push: Recorder):
    csv_node = graph.add_node("io.read_csv")
    panel.show_node(csv_node.id)
    qtbot.mouseClick(panel.editor("has_header"), QtCore.Qt.MouseButton.LeftButton)
    assert graph.node(csv_node.id).settings["has_header"] is False
    automl = graph.add_node("automl.autogluon")
    panel.show_node(automl.id)
    families = panel.editor("included_model_types")
    families.item(3).setCheckState(QtCore.Qt.CheckState.Checked)  # RF
    families.item(0).setCheckState(QtCore.Qt.CheckState.Checked)  # GBM
    assert graph.node(automl.id).settings["included_model_types"] == ["GBM", "RF"]
    assert len(push.pushed) == 3


def test_column_combo_pick_and_type(qtbot, panel: PropertiesPanel, graph: Graph):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    strat = panel.editor("stratify_by")
    strat.setCurrentIndex(strat.findText("b"))
    assert graph.node(node.id).settings["stratify_by"] == "b"
    _type_and_enter(qtbot, strat, "segment")  # a column upstream does not know yet may be typed
    assert graph.node(node.id).settings["stratify_by"] == "segment"
    strat.setCurrentIndex(0)  # the blank entry: back to None
    assert graph.node(node.id).settings["stratify_by"] is None


def test_line_edit_and_min_length_error(qtbot, panel: PropertiesPanel, graph: Graph, push: Recorder):
    node = graph.add_node("io.read_csv")
    panel.show_node(node.id)
    assert "Field required" in panel.error_text("path")
    assert "{" not in panel.error_text("path")  # not the whole settings dict
    assert panel.editor("path").property("error") is True
    _type_and_enter(qtbot, panel.editor("path"), "data/loans.csv")
    assert graph.node(node.id).settings["path"] == "data/loans.csv"
    assert panel.error_text("path") == "" and not panel.editor("path").property("error")
    _type_and_enter(qtbot, panel.editor("path"), "")
    assert graph.node(node.id).settings["path"] == ""
    assert "at least 1 character" in panel.error_text("path")
    assert panel.editor("path").property("error") is True
    assert len(push.pushed) == 2


def test_delimiter_validator_error_and_list_edit(qtbot, panel: PropertiesPanel, graph: Graph):
    node = graph.add_node("io.read_csv", {"path": "a.csv"})
    panel.show_node(node.id)
    _type_and_enter(qtbot, panel.editor("delimiter"), ";;")
    assert "single character" in panel.error_text("delimiter")
    _type_and_enter(qtbot, panel.editor("null_values"), 'NA, "", -')
    assert graph.node(node.id).settings["null_values"] == ["NA", "", "-"]


def test_json_parse_error_is_inline_and_not_pushed(qtbot, panel: PropertiesPanel, graph: Graph,
                                                     push: Recorder):
    node = graph.add_node("io.read_csv", {"path": "a.csv"})
    panel.show_node(node.id)
    _type_and_enter(qtbot, panel.editor("column_types"), '{"id": ')
    assert "Not valid JSON" in panel.error_text("column_types") and push.pushed == []
    _type_and_enter(qtbot, panel.editor("column_types"), '{"id": "str"}')
    assert graph.node(node.id).settings["column_types"] == {"id": "str"}
    assert panel.error_text("column_types") == ""
    _type_and_enter(qtbot, panel.editor("column_types"), '{"id": "text"}')
    assert "column_types" in graph.node(node.id).settings and "'text'" in panel.error_text("column_types")


def test_missing_input_in_top_box(panel: PropertiesPanel, graph: Graph, push: Recorder):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    issues = panel.findChild(QtWidgets.QLabel, "issues")
    assert issues.isVisible()
    assert "Required input 'table' (Table) is not connected" in panel.general_text()
    source = graph.add_node("io.read_csv", {"path": "a.csv"})
    push(Connect(source.id, "table", node.id, "table"))
    panel.refresh()
    assert panel.general_text() == "" and not issues.isVisible()


def test_title_rename_pushes_update_node(qtbot, panel: PropertiesPanel, graph: Graph, stack: UndoStack,
                                        push: Recorder):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    _type_and_enter(qtbot, panel.title_editor(), "Hold-out split")
    assert graph.node(node.id).title == "Hold-out split"
    assert [type(c) for c in push.pushed] == [UpdateNode]
    stack.undo()
    panel.refresh()
    assert panel.title_editor().text() == "Split"
    _type_and_enter(qtbot, panel.title_editor(), "   ")
    assert "A node needs a title" in panel.general_text() and graph.node(node.id).title == "Split"


def test_push_errors_are_shown_not_raised(qtbot, graph: Graph):
    def refuse(_command: Command) -> None:
        raise GraphError("refused on purpose")

    node = graph.add_node("features.split")
    p = PropertiesPanel(graph, refuse, lambda _nid: [])
    qtbot.addWidget(p)
    p.show_node(node.id)
    p.set_field("test_fraction", 0.4)
    assert "refused on purpose" in p.error_text("test_fraction")
    assert graph.node(node.id).settings["test_fraction"] == 0.25


def test_set_field_and_unchanged_values_push_nothing(panel: PropertiesPanel, graph: Graph, push: Recorder):
    node = graph.add_node("evaluate.evaluate")
    panel.show_node(node.id)
    panel.set_field("threshold", 0.5)
    assert push.pushed == []
    panel.set_field("threshold", 0.7)
    assert graph.node(node.id).settings["threshold"] == 0.7
    assert panel.editor("threshold").value() == pytest.approx(0.7)
    with pytest.raises(KeyError):
        panel.set_field("nonsense", 1)


def test_browse_stores_project_relative_path(panel: PropertiesPanel, graph: Graph, tmp_path: Path, monkeypatch):
    node = graph.add_node("io.read_csv")
    panel.show_node(node.id)
    seen = {}

    def fake_open(parent, caption, start, filters):
        seen.update(start=start, filters=filters)
        return str(tmp_path / "data" / "loans.csv"), filters

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(fake_open))
    panel.findChild(QtWidgets.QPushButton, "browse:path").click()
    assert graph.node(node.id).settings["path"] == "data/loans.csv"
    assert panel.editor("path").text() == "data/loans.csv"
    assert seen["start"] == str(tmp_path) and seen["filters"].startswith("CSV (*.csv *.txt *.tsv)")


def test_placeholder_node(panel: PropertiesPanel, graph: Graph):
    inst = NodeInstance(id="ghost", type_id="vendor.scorecard", type_version=3, title="Scorecard",
                        settings={"bins": 10}, placeholder_reason="Node type 'vendor.scorecard' is not installed")
    graph.insert_node(inst)
    panel.show_node("ghost")
    warning = panel.findChild(QtWidgets.QLabel, "placeholder")
    assert warning.isVisible() and "Node type 'vendor.scorecard' is not installed" in warning.text()
    raw = panel.findChild(QtWidgets.QPlainTextEdit, "raw-settings")
    assert raw.isReadOnly() and '"bins": 10' in raw.toPlainText()
    assert panel.general_text() == ""  # the reason is not repeated in the issues box
    with pytest.raises(KeyError):
        panel.editor("bins")


def test_refresh_after_removal_shows_empty_state(panel: PropertiesPanel, graph: Graph):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    graph.remove_node(node.id)
    panel.refresh()
    assert panel.findChild(QtWidgets.QLabel, "empty").isVisible()
    assert panel.node_id is None


def test_switching_nodes_commits_the_half_typed_value(qtbot, panel: PropertiesPanel, graph: Graph):
    first, second = graph.add_node("automl.predict"), graph.add_node("features.split")
    panel.show_node(first.id)
    panel.activateWindow()
    edit = panel.editor("prediction_column")
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus)
    edit.selectAll()
    qtbot.keyClicks(edit, "score")  # no Enter: the user clicks another node on the canvas
    panel.show_node(second.id)
    assert graph.node(first.id).settings["prediction_column"] == "score"
    assert panel.node_id == second.id


def test_wheel_over_an_unfocused_spin_box_changes_nothing(qtbot, panel: PropertiesPanel, graph: Graph,
                                                           push: Recorder):
    node = graph.add_node("features.split")
    panel.show_node(node.id)
    spin = panel.editor("test_fraction")
    pos = QtCore.QPointF(spin.rect().center())
    wheel = QtGui.QWheelEvent(pos, spin.mapToGlobal(pos), QtCore.QPoint(), QtCore.QPoint(0, 120),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(spin, wheel)
    assert spin.value() == pytest.approx(0.25) and push.pushed == []


def test_fields_missing_from_a_hand_written_project_show_their_defaults(panel: PropertiesPanel, graph: Graph):
    """Templates and hand-edited projects may leave settings out; the panel shows what the node will use."""
    inst = graph.add_node("explore.profile", {})
    graph.replace_settings(inst.id, {"target": "default"})  # only one key, as in the credit-risk template
    panel.show_node(inst.id)
    assert panel.editor("max_rows").value() == 1_000_000
    assert panel.editor("missing_alert").value() == pytest.approx(0.3)
