"""Overview rendering of big workflows: a snapshot when zoomed far out, kept in step with every change."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.canvas.overview import OVERVIEW_SCALE
from bench.gui_common import large_project
from workbench import close, make_window

NO_CONTENTS = QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


def _open_big(qtbot, tmp_path):  # noqa: ANN001, ANN202
    path, _, _ = large_project(tmp_path / "big")
    w = make_window(qtbot)
    assert w.open_project(path)
    QtWidgets.QApplication.processEvents()  # the saved (here: default) view is restored once the window is laid out
    assert w.canvas.viewer.transform().m11() >= OVERVIEW_SCALE  # a big flow opens at 100 %, not as an outline
    w.canvas.fit()
    overview = w.canvas.viewer.overview
    qtbot.waitUntil(lambda: overview.showing_snapshot, timeout=5000)
    return w, overview


def test_zoomed_out_big_flow_shows_a_snapshot_and_keeps_items_clickable(qtbot, tmp_path):
    w, overview = _open_big(qtbot, tmp_path)
    viewer = w.canvas.viewer
    assert viewer.transform().m11() < OVERVIEW_SCALE
    node = next(iter(w.canvas._by_engine.values()))
    assert node.view.flags() & NO_CONTENTS  # not painted, still in the scene for hit tests
    assert viewer.scene().items(node.view.sceneBoundingRect().center())  # hit-testable
    # a press switches to live items until the release
    center = viewer.mapFromScene(node.view.sceneBoundingRect().center())
    qtbot.mousePress(viewer.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=center)
    assert not overview.active and not node.view.flags() & NO_CONTENTS
    qtbot.mouseRelease(viewer.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=center)
    assert w.canvas.selected_ids() == [node.engine_id]
    qtbot.waitUntil(lambda: overview.showing_snapshot, timeout=5000)
    # zooming in past the threshold shows live items again
    for _ in range(40):
        viewer._set_viewer_zoom(120)
        if viewer.transform().m11() >= OVERVIEW_SCALE:
            break
    assert not overview.active and not node.view.flags() & NO_CONTENTS
    close(w)


def test_the_snapshot_follows_edits_and_does_not_grow(qtbot, tmp_path):
    w, overview = _open_big(qtbot, tmp_path)
    rect, renders = overview.snapshot_rect, overview.renders
    victim = next(iter(w.document.graph.nodes))
    w.canvas.select([victim])
    w.actions_["delete"].trigger()  # keyboard delete: no mouse release to trigger a refresh
    qtbot.waitUntil(lambda: overview.renders > renders and overview.showing_snapshot, timeout=5000)
    assert overview.snapshot_rect.width() <= rect.width() and overview.snapshot_rect.height() <= rect.height()
    renders = overview.renders
    w.undo()
    qtbot.waitUntil(lambda: overview.renders > renders, timeout=5000)
    assert overview.snapshot_rect == rect  # the same content, the same area: no creeping margin
    close(w)
