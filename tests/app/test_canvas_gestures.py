"""Editing through the canvas: drops, pipe drags, refusals, undo/redo, copy/paste, placeholders."""
from __future__ import annotations

import json

import pytest
from PySide6 import QtCore, QtWidgets

from engine.graph import Edge
from workbench import (close, drag_pipe, drop_node, empty_project, make_window, mouse_drag, port_point,
                       wait_run)


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot)
    assert w.open_project(empty_project(tmp_path / "p"))
    yield w
    close(w)


def test_pipe_drag_connects_and_marks_downstream_stale(qtbot, window):
    read = drop_node(window, "io.read_csv", (0, 0))
    split = drop_node(window, "features.split", (300, 0))
    window.canvas.select([read])
    window.properties.set_field("path", "data/credit_applications.csv")
    drag_pipe(qtbot, window, read, "table", split, "table")
    graph = window.document.graph
    assert Edge(read, "table", split, "table") in graph.edges
    assert window.canvas.canvas_edges() == graph.edges
    window.actions_["run_all"].trigger()
    wait_run(qtbot, window)
    assert window.canvas.canvas_node(split).item.run_state == "done"
    # a second reader dragged onto Split's input rewires it: Split's results no longer match its input
    other = drop_node(window, "io.read_csv", (0, 200))
    window.canvas.select([other])
    window.properties.set_field("path", "data/credit_applications.csv")
    drag_pipe(qtbot, window, other, "table", split, "table")
    assert {e.src for e in graph.incoming(split)} == {other}
    assert window.document.session.status[split].state.value == "stale"
    assert window.canvas.canvas_node(split).item.run_state == "stale"
    assert window.canvas.canvas_node(read).item.run_state == "done"
    assert window.canvas.canvas_edges() == graph.edges


def test_incompatible_drag_is_refused_with_the_reason(qtbot, window):
    automl = drop_node(window, "automl.autogluon", (0, 0))
    write = drop_node(window, "io.write_csv", (400, 0))
    drag_pipe(qtbot, window, automl, "model", write, "table")
    assert window.document.graph.edges == set() and window.canvas.canvas_edges() == set()
    assert "Model" in window.canvas.last_refusal and "Table" in window.canvas.last_refusal
    assert "Model" in window.statusBar().currentMessage()


def test_a_pipe_picked_up_and_dropped_on_a_wrong_port_is_put_back(qtbot, window):
    split = drop_node(window, "features.split", (0, 0))
    automl = drop_node(window, "automl.autogluon", (300, 0))
    evaluate = drop_node(window, "evaluate.evaluate", (0, 300))
    drag_pipe(qtbot, window, split, "train", automl, "train")
    before = set(window.document.graph.edges)
    # grab the pipe at AutoML's connected input (the viewer lifts it off) and drop it on Evaluate's report output
    mouse_drag(qtbot, window, port_point(window, automl, "train", False), port_point(window, evaluate, "report", True))
    assert "Report" in window.canvas.last_refusal  # a report cannot feed a table input
    assert window.document.graph.edges == before
    assert window.canvas.canvas_edges() == before  # the lifted pipe is drawn again


def test_undo_redo_of_add_connect_move_settings_delete(qtbot, window):
    doc = window.document
    read = drop_node(window, "io.read_csv", (0, 0))
    split = drop_node(window, "features.split", (300, 0))
    drag_pipe(qtbot, window, read, "table", split, "table")
    edge = Edge(read, "table", split, "table")
    # move: the viewer reports moved nodes; the controller records an undoable move
    node = window.canvas.canvas_node(split)
    start = doc.graph.nodes[split].position
    node.view.xy_pos = [500.0, 120.0]
    window.canvas.viewer.moved_nodes.emit({node.view: list(start)})
    assert doc.graph.nodes[split].position == (500.0, 120.0)
    # settings through the properties panel
    window.canvas.select([split])
    window.properties.set_field("test_fraction", 0.4)
    assert doc.graph.nodes[split].settings["test_fraction"] == 0.4
    # delete the reader (and its edge) from the canvas
    window.canvas.select([read])
    window.actions_["delete"].trigger()
    assert read not in doc.graph.nodes and edge not in doc.graph.edges
    assert window.canvas.canvas_edges() == doc.graph.edges

    window.undo()  # delete
    assert read in doc.graph.nodes and edge in doc.graph.edges and window.canvas.canvas_edges() == {edge}
    window.undo()  # settings
    assert doc.graph.nodes[split].settings["test_fraction"] == 0.25
    window.canvas.select([split])
    assert window.properties.editor("test_fraction").value() == pytest.approx(0.25)
    window.undo()  # move
    assert doc.graph.nodes[split].position == start
    assert tuple(window.canvas.canvas_node(split).view.xy_pos) == start
    window.undo()  # connect
    assert doc.graph.edges == set() and window.canvas.canvas_edges() == set()
    window.undo()  # add split
    assert split not in doc.graph.nodes and split not in window.canvas._by_engine
    for _ in range(5):
        window.redo()
    assert doc.graph.nodes[split].position == (500.0, 120.0)
    assert doc.graph.nodes[split].settings["test_fraction"] == 0.4
    assert read not in doc.graph.nodes
    assert window.canvas.canvas_edges() == doc.graph.edges


def test_copy_paste_and_duplicate_keep_settings_and_inner_edges(qtbot, window):
    doc = window.document
    read = drop_node(window, "io.read_csv", (0, 0))
    split = drop_node(window, "features.split", (300, 0))
    drag_pipe(qtbot, window, read, "table", split, "table")
    window.canvas.select([split])
    window.properties.set_field("test_fraction", 0.3)
    window.canvas.select([read, split])
    window.actions_["duplicate"].trigger()
    assert len(doc.graph.nodes) == 4 and len(doc.graph.edges) == 2
    new = [n for n in doc.graph.nodes if n not in (read, split)]
    copies = {doc.graph.nodes[n].type_id: doc.graph.nodes[n] for n in new}
    assert copies["features.split"].settings["test_fraction"] == 0.3
    x, y = doc.graph.nodes[split].position
    assert copies["features.split"].position == (x + 40.0, y + 40.0)
    assert sorted(window.canvas.selected_ids()) == sorted(new)
    window.undo()
    assert len(doc.graph.nodes) == 2 and window.canvas.canvas_edges() == doc.graph.edges


def test_rename_through_the_title_edit_and_disable(qtbot, window):
    read = drop_node(window, "io.read_csv", (0, 0))
    node = window.canvas.canvas_node(read)
    window.canvas.viewer.node_name_changed.emit(node.id, "Applications 2026")
    assert window.document.graph.nodes[read].title == "Applications 2026"
    assert node.model.name == "Applications 2026"
    window.canvas.set_disabled([read], True)
    assert window.document.graph.nodes[read].disabled and node.view.disabled
    window.undo()
    assert not window.document.graph.nodes[read].disabled


def test_backdrop_is_saved_in_the_project(qtbot, window):
    read = drop_node(window, "io.read_csv", (0, 0))
    window.canvas.select([read])
    window.canvas.add_backdrop("Inputs")
    assert window.save()
    doc = json.loads(window.document.project.path.read_text("utf-8"))
    assert [b["title"] for b in doc["meta"]["backdrops"]] == ["Inputs"]


def test_unknown_plugin_node_is_a_visible_placeholder(qtbot, tmp_path):
    path = empty_project(tmp_path / "q")
    doc = json.loads(path.read_text("utf-8"))
    doc["nodes"] = [
        {"id": "a", "type_id": "io.read_csv", "type_version": 1, "title": "Read", "settings": {"path": "x.csv"}},
        {"id": "b", "type_id": "acme.fancy_scorer", "type_version": 3, "title": "Fancy scorer",
         "settings": {"depth": 7}, "plugin": {"distribution": "acme-nodes", "version": "2.1"}},
    ]
    doc["edges"] = [{"from": {"node": "a", "port": "table"}, "to": {"node": "b", "port": "data"}}]
    path.write_text(json.dumps(doc), "utf-8")
    w = make_window(qtbot)
    assert w.open_project(path)
    node = w.canvas.canvas_node("b")
    assert node.item.placeholder
    assert "acme-nodes" in node.item.toolTip()
    assert [p.name() for p in node.input_ports()] == ["data"]
    assert w.canvas.canvas_edges() == w.document.graph.edges
    w.canvas.select(["b"])
    warning = w.properties.findChild(QtWidgets.QLabel, "placeholder")
    assert warning is not None and "acme-nodes" in warning.text()
    assert w.save()
    saved = json.loads(path.read_text("utf-8"))
    assert next(n for n in saved["nodes"] if n["id"] == "b")["settings"] == {"depth": 7}
    close(w)


def test_palette_search_and_double_click_add(qtbot, window):
    window.palette.search.setText("parquet")
    assert set(window.palette.visible_type_ids()) == {"io.read_parquet", "io.write_parquet"}
    window.palette.search.clear()
    item = next(i for i in window.palette.items() if i.data(0, QtCore.Qt.ItemDataRole.UserRole + 1) == "features.split")
    window.palette.tree.itemDoubleClicked.emit(item, 0)
    assert [n.type_id for n in window.document.graph.nodes.values()] == ["features.split"]


def test_tab_search_adds_the_chosen_node_at_the_cursor(qtbot, window):
    canvas_type = window.canvas._classes["evaluate.evaluate"].type_
    window.canvas.viewer.search_triggered.emit(canvas_type, (120.0, 80.0))
    (inst,) = window.document.graph.nodes.values()
    assert inst.type_id == "evaluate.evaluate" and inst.position == (120.0, 80.0)


def test_select_all_enables_the_selection_actions(qtbot, window):
    drop_node(window, "io.read_csv", (0, 0))
    drop_node(window, "features.split", (300, 0))
    window.canvas.select([])
    assert not window.actions_["delete"].isEnabled()
    window.actions_["select_all"].trigger()
    assert len(window.canvas.selected_ids()) == 2 and window.actions_["delete"].isEnabled()
    window.actions_["delete"].trigger()
    assert window.document.graph.nodes == {}


def test_undo_is_enabled_after_a_connection_alone(qtbot, tmp_path):
    path = empty_project(tmp_path / "u")
    w = make_window(qtbot)
    assert w.open_project(path)
    read = drop_node(w, "io.read_csv", (0, 0))
    split = drop_node(w, "features.split", (300, 0))
    assert w.save()
    w.document.undo_stack._done.clear()  # as if the project had just been opened with these nodes
    w._update_actions()
    assert not w.actions_["undo"].isEnabled()
    drag_pipe(qtbot, w, read, "table", split, "table")
    assert w.actions_["undo"].isEnabled() and w.windowTitle().startswith("•")
    close(w)


def test_a_malformed_clipboard_is_refused_without_an_exception(qtbot, window):
    from app.canvas.controller import CLIPBOARD_MIME

    for payload in (b"not json", b'{"nodes": 5, "edges": []}', b'{"nodes": [{"ref": "a"}], "edges": []}',
                    b'{"nodes": [], "edges": [[1, 2]]}'):
        mime = QtCore.QMimeData()
        mime.setData(CLIPBOARD_MIME, payload)
        QtWidgets.QApplication.clipboard().setMimeData(mime)
        assert window.canvas.paste() == []
        assert "clipboard" in window.canvas.last_refusal
    assert window.document.graph.nodes == {}


def test_files_dropped_on_the_canvas_are_not_imported(qtbot, window, tmp_path):
    from PySide6 import QtGui

    session = tmp_path / "nodegraph.json"
    session.write_text('{"nodes": {"x": {"type_": "nodeGraphQt.nodes.BackdropNode", "name": "ghost"}}}', "utf-8")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(session))])
    viewer = window.canvas.viewer
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    viewer.dragEnterEvent(enter)
    assert not enter.isAccepted()
    viewer.dropEvent(QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                                      QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier))
    assert window.canvas.graph.all_nodes() == [] and window.document.graph.nodes == {}


def test_a_malformed_backdrop_section_does_not_stop_the_project_opening(qtbot, tmp_path):
    path = empty_project(tmp_path / "b")
    doc = json.loads(path.read_text("utf-8"))
    doc["meta"] = {"backdrops": [5, {"title": "ok", "position": [0, 0], "size": [300, 200]}, {"title": "x"}]}
    path.write_text(json.dumps(doc), "utf-8")
    w = make_window(qtbot)
    assert w.open_project(path)
    assert [b["title"] for b in w.canvas.backdrops_doc()] == ["ok"]
    doc["meta"] = {"backdrops": 5}
    path.write_text(json.dumps(doc), "utf-8")
    assert w.open_project(path) and w.canvas.backdrops_doc() == []
    close(w)
