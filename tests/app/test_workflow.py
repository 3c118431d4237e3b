"""The credit-risk workflow built, run and read entirely through the workbench, as an analyst would."""
from __future__ import annotations

import time

import pytest
from PySide6 import QtCore

from app.preferences import Preferences
from workbench import close, drag_pipe, drop_node, empty_project, make_window, wait_run

pytestmark = pytest.mark.slow
class Heartbeat(QtCore.QObject):
    """A 10 ms timer on the GUI thread that asks the canvas to repaint; records the longest gap between ticks."""

    def __init__(self, viewer) -> None:  # noqa: ANN001
        super().__init__()
        self.viewer = viewer
        self.active = False
        self.max_gap = 0.0
        self.ticks = 0
        self.frames = 0
        self._last = time.perf_counter()
        self.timer = QtCore.QTimer(self, interval=10, timeout=self._tick)
        viewer.frame_painted.connect(self._painted)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.active:
            self.max_gap = max(self.max_gap, now - self._last)
            self.ticks += 1
            self.viewer.viewport().update()
        self._last = now

    def _painted(self, _seconds: float) -> None:
        if self.active:
            self.frames += 1


def build_credit_risk(qtbot, w) -> dict[str, str]:  # noqa: ANN001
    """Drop the nodes from the palette, wire them by dragging pipes, set settings in the properties panel."""
    ids = {
        "read": drop_node(w, "io.read_csv", (0, 0)),
        "split": drop_node(w, "features.split", (280, 0)),
        "automl": drop_node(w, "automl.autogluon", (560, -120)),
        "evaluate": drop_node(w, "evaluate.evaluate", (860, -120)),
        "predict": drop_node(w, "automl.predict", (860, 140)),
    }
    w.canvas.select([ids["read"]])
    w.properties.set_field("path", "data/credit_applications.csv")
    for src, sp, dst, dp in (("read", "table", "split", "table"), ("split", "train", "automl", "train"),
                             ("automl", "model", "evaluate", "model"), ("split", "test", "evaluate", "table"),
                             ("automl", "model", "predict", "model"), ("split", "test", "predict", "table")):
        drag_pipe(qtbot, w, ids[src], sp, ids[dst], dp)
    w.canvas.select([ids["split"]])
    stratify = w.properties.editor("stratify_by")
    assert "default" in [stratify.itemText(i) for i in range(stratify.count())]  # columns of the CSV header
    w.properties.set_field("stratify_by", "default")
    w.canvas.select([ids["automl"]])
    label = w.properties.editor("label")
    assert "default" in [label.itemText(i) for i in range(label.count())]  # columns flow through Split
    w.properties.set_field("label", "default")
    w.properties.set_field("problem_type", "binary")
    w.properties.set_field("time_limit_s", 20)
    w.properties.set_field("included_model_types", ["GBM"])
    assert w.document.graph.validate() == []
    return ids


def test_build_run_read_and_reopen_with_a_responsive_gui(qtbot, tmp_path):
    path = empty_project(tmp_path / "credit")
    w = make_window(qtbot)
    assert w.open_project(path)
    ids = build_credit_risk(qtbot, w)
    assert w.canvas.canvas_edges() == w.document.graph.edges

    beat = Heartbeat(w.canvas.viewer)
    w.bridge.state_changed.connect(
        lambda nid, snap: setattr(beat, "active", nid == ids["automl"] and snap["state"] == "running"))
    beat.timer.start()
    w.canvas.select([])
    w.actions_["run_all"].trigger()
    assert w.runner.running
    wait_run(qtbot, w)
    beat.timer.stop()
    print(f"heartbeat while AutoML ran: longest gap {beat.max_gap * 1000:.1f} ms over {beat.ticks} ticks, "
          f"{beat.frames} canvas frames")
    states = {k: w.document.session.status[v].state.value for k, v in ids.items()}
    assert states == dict.fromkeys(ids, "done"), w.run_label.text()
    assert beat.ticks > 50 and beat.frames > 10, "the canvas was not repainting while AutoML ran"
    assert w.canvas.canvas_node(ids["automl"]).item.run_state == "done"

    # after the run the evaluation report is shown; its metrics are real numbers
    assert w.outputs.node_id == ids["evaluate"]
    metrics = w.report_view.report().metrics
    assert 0.5 < metrics["auc"] <= 1.0
    table = w.report_view.metrics_table()
    shown = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert {"auc", "ks", "gini"} <= shown

    # predictions in the data viewer: a quarter of the 2,000 applications, with a probability column
    w.canvas.select([ids["predict"]])
    model = w.data_panel.viewer.model()
    assert model.rowCount() == 500
    assert "probability" in model.column_names()

    assert w.save()
    close(w)

    # reopen: the results are there at once, from the cache
    w2 = make_window(qtbot, Preferences())
    assert w2.open_project(path)
    status = w2.document.session.status
    assert all(status[n].state.value == "done" and status[n].cached for n in ids.values())
    assert w2.canvas.canvas_node(ids["evaluate"]).item.cached
    w2.canvas.select([ids["evaluate"]])
    assert w2.report_view.report().metrics["auc"] == pytest.approx(metrics["auc"])
    w2.canvas.select([ids["split"]])
    w2.data_panel.port_box.setCurrentText("test")
    assert w2.data_panel.viewer.model().rowCount() == 500
    close(w2)


def test_cancel_a_running_automl_node(qtbot, tmp_path):
    path = empty_project(tmp_path / "cancel")
    w = make_window(qtbot)
    assert w.open_project(path)
    ids = build_credit_risk(qtbot, w)
    w.canvas.select([ids["automl"]])
    w.properties.set_field("time_limit_s", 600)
    w.properties.set_field("included_model_types", [])
    running = []
    w.bridge.state_changed.connect(lambda nid, snap: running.append(nid) if snap["state"] == "running" else None)
    w.canvas.select([ids["automl"]])
    w.actions_["run_to"].trigger()
    qtbot.waitUntil(lambda: ids["automl"] in running, timeout=60_000)
    qtbot.wait(1500)  # AutoGluon is fitting now
    assert w.actions_["cancel"].isEnabled()
    w.actions_["cancel"].trigger()
    wait_run(qtbot, w, timeout=60_000)
    assert w.document.session.status[ids["automl"]].state.value == "cancelled"
    assert w.canvas.canvas_node(ids["automl"]).item.run_state == "cancelled"
    assert "cancel" in w.run_label.text().lower()
    assert w.actions_["run_all"].isEnabled()
    close(w)
