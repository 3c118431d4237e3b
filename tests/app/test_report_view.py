"""ReportViewer on a real Report: metric and table cells, a real matplotlib figure scaled to the width, HTML export
(including a failing one reported through a message box) and copying metrics."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from matplotlib.figure import Figure
from PySide6 import QtCore, QtGui, QtWidgets

from app.viewers.report_view import MAX_TABLE_ROWS, ReportViewer
from engine.ports import Report


def _report() -> Report:
    report = Report(title="Evaluation of LightGBM", kind="evaluation")
    report.metrics = {"problem_type": "binary", "auc": 0.8123456, "ks": 0.51, "rows": 1200,
                      "per_class": {"good": 0.912345, "bad": 0.4}}
    report.tables["Confusion matrix"] = pl.DataFrame(
        {"actual": ["0", "1"], "predicted 0": [900, 80], "predicted 1": [100, 120]})
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot([0, 0.2, 1], [0, 0.7, 1], label="AUC = 0.812")
    ax.plot([0, 1], [0, 1], ls="--")
    ax.legend()
    report.add_figure("ROC curve", fig, dpi=100)
    report.notes.append("Scored on the held-out 20%.")
    return report


@pytest.fixture
def viewer(qtbot) -> ReportViewer:
    w = ReportViewer()
    qtbot.addWidget(w)
    return w


def test_empty_state(viewer):
    assert "Evaluate" in viewer.empty_text()
    assert viewer.metrics_table().rowCount() == 0
    assert viewer.table_views() == [] and viewer.figure_labels() == []
    viewer.set_report(_report())
    assert viewer.empty_text() == ""
    viewer.set_report(None)
    assert "Evaluate" in viewer.empty_text()
    assert viewer.table_views() == [] and viewer.figure_labels() == []


def test_metric_cells(viewer):
    viewer.set_report(_report(), source="Evaluate")
    table = viewer.metrics_table()
    cells = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert cells == {"problem_type": "binary", "auc": "0.8123", "ks": "0.5100", "rows": "1200",
                     "per_class": '{"good": 0.9123, "bad": 0.4}'}
    assert table.item(0, 1).textAlignment() & QtCore.Qt.AlignmentFlag.AlignRight
    assert not table.editTriggers() & QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked


def test_table_cells(viewer):
    viewer.set_report(_report())
    (view,) = viewer.table_views()
    model = view.model()
    assert (model.rowCount(), model.columnCount()) == (2, 3)
    assert model.headerData(1, QtCore.Qt.Orientation.Horizontal) == "predicted 0"
    assert model.index(1, 0).data() == "1"
    assert model.index(0, 2).data() == "100"
    assert model.index(0, 2).data(QtCore.Qt.ItemDataRole.TextAlignmentRole) & QtCore.Qt.AlignmentFlag.AlignRight
    assert view.editTriggers() == QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers


def test_large_table_is_capped_with_a_note(viewer):
    report = Report(title="Big")
    report.tables["scores"] = pl.DataFrame({"i": range(MAX_TABLE_ROWS + 500)})
    viewer.set_report(report)
    (view,) = viewer.table_views()
    assert view.model().rowCount() == MAX_TABLE_ROWS
    notes = [lb.text() for lb in viewer.findChildren(QtWidgets.QLabel)]
    assert "Showing 1,000 of 1,500 rows" in notes


def test_figure_is_scaled_down_to_a_narrow_widget_but_never_up(viewer, qtbot):
    report = _report()
    natural = QtGui.QPixmap()
    assert natural.loadFromData(report.figures["ROC curve"], "PNG")
    viewer.set_report(report)
    viewer.resize(300, 700)
    viewer.show()
    qtbot.waitExposed(viewer)
    (label,) = viewer.figure_labels()
    shown = label.pixmap()
    assert not shown.isNull()
    assert natural.width() > 300
    assert shown.width() <= 300
    assert shown.width() < natural.width()
    ratio = natural.height() / natural.width()
    assert shown.height() == pytest.approx(shown.width() * ratio, abs=2)

    viewer.resize(natural.width() + 400, 900)
    qtbot.waitUntil(lambda: label.width() > natural.width())
    assert label.pixmap().size() == natural.size()


def test_export_html(viewer, tmp_path):
    viewer.set_report(_report())
    exported = []
    viewer.exported.connect(exported.append)
    out = viewer.export_html(tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html" and exported == [out]
    text = out.read_text("utf-8")
    for name in ("auc", "ks", "problem_type", "Confusion matrix", "Evaluation of LightGBM"):
        assert name in text
    assert "data:image/png;base64," in text
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_export_button_writes_the_chosen_file(viewer, qtbot, tmp_path, monkeypatch):
    viewer.set_report(_report())
    chosen = tmp_path / "evaluation"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(chosen), ""))
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: pytest.fail(f"unexpected error {a}"))
    qtbot.mouseClick(viewer._export_button, QtCore.Qt.MouseButton.LeftButton)
    assert "data:image/png;base64," in (tmp_path / "evaluation.html").read_text("utf-8")


def test_export_to_an_unwritable_place_shows_the_error(viewer, qtbot, tmp_path, monkeypatch):
    viewer.set_report(_report())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "report.html"  # a path under a regular file can never be created, even as root
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical",
                        lambda parent, title, text, *a, **k: shown.append((title, text)))
    qtbot.mouseClick(viewer._export_button, QtCore.Qt.MouseButton.LeftButton)
    assert len(shown) == 1
    title, text = shown[0]
    assert title == "Export failed"
    assert str(target) in text
    assert not Path(target).exists()


def test_cancelled_export_does_nothing(viewer, qtbot, monkeypatch):
    viewer.set_report(_report())
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: pytest.fail("no error expected"))
    qtbot.mouseClick(viewer._export_button, QtCore.Qt.MouseButton.LeftButton)


def test_copy_metrics_fills_the_clipboard(viewer, qtbot):
    viewer.set_report(_report())
    QtWidgets.QApplication.clipboard().clear()
    qtbot.mouseClick(viewer._copy_button, QtCore.Qt.MouseButton.LeftButton)
    lines = QtWidgets.QApplication.clipboard().text().splitlines()
    assert lines[0] == "problem_type\tbinary"
    assert lines[1] == "auc\t0.8123"
    assert len(lines) == 5


def test_buttons_disabled_without_a_report(viewer):
    assert not viewer._export_button.isEnabled()
    assert not viewer._copy_button.isEnabled()
    with pytest.raises(ValueError):
        viewer.export_html("nowhere.html")
