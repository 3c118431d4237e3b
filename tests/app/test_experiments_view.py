"""The Experiments view on real Qt over a project with real training/evaluation runs: filtering, side-by-side
comparison with highlighted differences, overlaid ROC/KS charts, and audited candidate marks."""
from __future__ import annotations

import shutil

import pytest
from PySide6 import QtCore, QtWidgets

from app.experiments_charts import _series
from app.experiments_view import STAR, ExperimentsView
from engine.db import open_db
from engine.experiments import Experiments
from engine.project import Project
from test_experiments import build_project, registry


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("view") / "proj"
    return folder, build_project(folder)


@pytest.fixture
def setup(built, tmp_path, qtbot):
    folder = tmp_path / "proj"
    shutil.copytree(built[0], folder, ignore=shutil.ignore_patterns("tmp"))
    project = Project.load(folder, registry())
    engine = open_db(project.state_dir)
    view = ExperimentsView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.set_project(project, engine)
    yield view, built[1], Experiments.for_project(project, engine)
    view.set_project(None, None)
    engine.dispose()


def _column(view: ExperimentsView, title: str) -> int:
    heads = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    return heads.index(title)


def test_empty_until_a_project_with_runs_is_shown(qtbot):
    view = ExperimentsView()
    qtbot.addWidget(view)
    assert "training node" in view.empty_text() and view.shown_ids() == []
    assert not view.mark_button.isEnabled()


def test_table_lists_runs_with_headline_metrics(setup):
    view, ids, experiments = setup
    assert view.empty_text() == ""
    assert view.shown_ids() == [ids["failed"], ids["weak"], ids["good"]]
    auc_col, model_col = _column(view, "AUC"), _column(view, "Model")
    good_row = view.shown_ids().index(ids["good"])
    good = experiments.get(ids["good"])
    cell = view.table.item(good_row, auc_col)
    assert cell.toolTip() == "Evaluate.auc"  # held-out evaluation first (Check scores the training data)
    assert cell.text() == f"{good.metrics['Evaluate.auc']:.4f}"
    assert view.table.item(good_row, model_col).text() == "Logit C=1"
    failed_row = view.shown_ids().index(ids["failed"])
    assert view.table.item(failed_row, auc_col).text() == "—"
    assert "'nope'" in view.table.item(failed_row, view.table.columnCount() - 1).toolTip()
    view.table.sortItems(auc_col, QtCore.Qt.SortOrder.DescendingOrder)  # numeric sort, blanks lowest
    assert view.shown_ids() == [ids["good"], ids["weak"], ids["failed"]]


def test_filters_narrow_the_table(setup):
    view, ids, _ = setup
    view.search.setText("0.0005")
    assert view.shown_ids() == [ids["weak"]]
    view.search.clear()
    view.outcome_box.setCurrentIndex(view.outcome_box.findData("failed"))
    assert view.shown_ids() == [ids["failed"]]
    view.outcome_box.setCurrentIndex(0)
    view.metric_box.setCurrentIndex(view.metric_box.findData("Evaluate.recall"))
    assert view.metric_min.isEnabled()
    view.metric_min.setValue(0.01)
    assert view.shown_ids() == [ids["good"]]  # the weak model predicts no defaults at 0.5
    view.metric_box.setCurrentIndex(0)
    assert len(view.shown_ids()) == 3
    view.period_box.setCurrentIndex(1)  # last 24 hours: all of them
    assert len(view.shown_ids()) == 3
    view.user_box.setCurrentIndex(1)
    assert len(view.shown_ids()) == 3 and view.user_box.count() == 2
    view.candidates_only.setChecked(True)
    assert view.shown_ids() == []


def test_compare_two_runs(setup):
    view, ids, experiments = setup
    view.select_runs([ids["good"], ids["weak"]])
    assert sorted(view.selected_ids()) == sorted([ids["good"], ids["weak"]])
    assert not view.mark_button.isEnabled()  # one run at a time
    cmp = view.comparison()
    assert cmp is not None and [r.id for r in cmp.runs] == view.selected_ids()
    metrics = view.metrics_table
    rows = {metrics.item(r, 0).text(): r for r in range(metrics.rowCount())}
    auc = [experiments.get(i).metrics["Evaluate.auc"] for i in view.selected_ids()]
    assert [metrics.item(rows["Evaluate.auc"], c).text() for c in (1, 2)] == [f"{v:.4f}" for v in auc]
    assert list(rows).index("Evaluate.auc") < list(rows).index("Check.auc") < list(rows).index("validation.auc")
    assert "trained on" in metrics.item(rows["Check.auc"], 0).toolTip()  # Check scored the training data
    assert metrics.item(rows["Evaluate.auc"], 0).toolTip() == ""
    params = view.params_table
    prow = {params.item(r, 0).text(): r for r in range(params.rowCount())}
    assert params.item(prow["C"], 0).font().bold() and not params.item(prow["label"], 0).font().bold()
    assert {params.item(prow["C"], c).text() for c in (1, 2)} == {"1.0", "0.0005"}
    assert "input data: train" in prow and "output: model" in prow
    assert params.item(prow["output: model"], 0).font().bold()  # each run made its own model
    view.only_differences.setChecked(True)
    shown = {params.item(r, 0).text() for r in range(params.rowCount())}
    assert "C" in shown and "label" not in shown and "seed" not in shown
    # overlaid curves: real charts (Check recorded no curves, so one line per run), drawn when the tab is shown
    assert view.roc_label.pixmap().isNull()
    view.tabs.setCurrentIndex(2)
    assert view.curves_empty.isHidden()
    for label in (view.roc_label, view.ks_label):
        assert label.isVisible() and label.original_size().width() > 300
    assert len(_series(cmp.runs, "roc")) == 2 and len(_series(cmp.runs, "ks")) == 2


def test_a_run_without_curves(setup):
    view, ids, _ = setup
    view.select_runs([ids["failed"]])
    view.tabs.setCurrentIndex(2)  # charts are drawn when their tab is shown
    assert not view.curves_empty.isHidden() and "did not record" in view.curves_empty.text()
    assert not view.mark_button.isEnabled()


def test_mark_and_replace_candidate(setup, monkeypatch, qtbot):
    view, ids, experiments = setup
    notes = iter([("best on test", True), ("simpler", True), ("", False)])
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", lambda *a, **k: next(notes))
    questions: list[str] = []

    def answer(_parent, _title, text, *a, **k):
        questions.append(text)
        return QtWidgets.QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", answer)
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a, **k: pytest.fail(f"unexpected warning {a}"))
    view.select_runs([ids["good"]])
    assert view.mark_button.isEnabled()
    with qtbot.waitSignal(view.candidate_changed) as sig:
        view.mark_button.click()
    assert sig.args == [ids["good"]] and experiments.candidates() == {ids["train"]: ids["good"]}
    star = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    assert star[view.shown_ids().index(ids["good"])] == STAR and star.count(STAR) == 1
    assert view.selected_ids() == [ids["good"]] and not view.mark_button.isEnabled() and view.unmark_button.isEnabled()

    view.select_runs([ids["weak"]])
    view.mark_button.click()  # another run of the same node: replacing is confirmed, never silent
    assert len(questions) == 1 and f"Run {ids['good']} is the candidate" in questions[0]
    assert experiments.candidates() == {ids["train"]: ids["weak"]}
    assert [(e.action, e.record_id, e.note) for e in experiments.history()] == [
        ("mark", ids["good"], "best on test"), ("mark", ids["weak"], "simpler")]

    view.unmark_button.click()  # the note dialog is cancelled: nothing happens
    assert experiments.candidates() == {ids["train"]: ids["weak"]}
    view.candidates_only.setChecked(True)
    assert view.shown_ids() == [ids["weak"]]


def test_declining_the_replacement_keeps_the_candidate(setup, monkeypatch):
    view, ids, experiments = setup
    experiments.mark_candidate(ids["good"], "first")
    view.refresh()
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", lambda *a, **k: ("try", True))
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", lambda *a, **k: QtWidgets.QMessageBox.StandardButton.No)
    view.select_runs([ids["weak"]])
    view.mark_button.click()
    assert experiments.candidates() == {ids["train"]: ids["good"]} and len(experiments.history()) == 1
