"""How far a task's labelers agree, for a team lead: one headline figure, then the same figure per label and per
labeler, and how many items the labelers disagree on (the review queue shows those first).

The figures are the Label node's own (engine.labels.agreement over the submitted and accepted labels, turned into
tables by nodes.label.outcome), so the canvas report and this view never disagree about the team.
"""
from __future__ import annotations

from typing import Any

import polars as pl
from PySide6 import QtCore, QtGui, QtWidgets

from app.labeling.controls import back_and_title
from engine.i18n import tr
from engine.labels.agreement import AgreementReport, compute_agreement
from engine.labels.store import LabelStore
from nodes.label.outcome import scores_tables

VALUE_ROLE = QtCore.Qt.ItemDataRole.UserRole  # the number behind a cell (None = n/a), for tests and sorting
# a figure's cell colour: a quick read for people who do not know what a kappa is
_GOOD, _FAIR, _POOR = "#dff3e4", "#fff4d1", "#fde3e0"


def task_agreement(store: LabelStore, task: str) -> AgreementReport:
    """Agreement over the task's submitted and accepted labels, items keyed by position, as the Label node does."""
    schema = store.schema(task)
    return compute_agreement(store.label_values(task), schema.kind, multi=schema.multi, labels=schema.names)


def number_text(value: float | None) -> str:
    return tr("n/a") if value is None else f"{value:.2f}"


def headline_text(report: AgreementReport | None) -> str:
    """'Cohen's kappa 0.82', or 'n/a' while no item has two labelers (the task list's Agreement column)."""
    if report is None or not report.items_compared:
        return tr("n/a")
    return tr("{measure} {value}", measure=tr(report.headline.title), value=number_text(report.headline.overall))


def _tint(value: float | None) -> str | None:
    if value is None:
        return None
    return _GOOD if value >= 0.8 else _FAIR if value >= 0.6 else _POOR


class AgreementView(QtWidgets.QWidget):
    """The agreement page of one task: headline, per-label and per-labeler tables, notes. Esc goes back."""

    back_requested = QtCore.Signal()
    review_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.task = ""
        self.report: AgreementReport | None = None
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.back, self.title = back_and_title(self)
        self.review = QtWidgets.QPushButton(tr("Review labels (R)"), focusPolicy=QtCore.Qt.FocusPolicy.NoFocus)
        self.review.setMinimumHeight(38)
        self.review.clicked.connect(lambda: self.review_requested.emit(self.task))
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.back)
        top.addSpacing(12)
        top.addWidget(self.title, 1)
        top.addWidget(self.review)

        self.headline = QtWidgets.QLabel(wordWrap=True)
        huge = QtGui.QFont(self.title.font())
        huge.setPointSizeF(huge.pointSizeF() * 1.25)
        self.headline.setFont(huge)
        self.headline.setStyleSheet("QLabel{background:#f4f7fb;border:1px solid #d9dee7;border-radius:8px;"
                                    "padding:12px;color:#1d2430}")
        self.facts = QtWidgets.QLabel(wordWrap=True)
        self.facts.setStyleSheet("color:#3d4654")
        self.per_label = self._table()
        self.per_labeler = self._table()
        self.guide = QtWidgets.QLabel(wordWrap=True)
        self.guide.setStyleSheet("color:#5b6575")
        self.guide.setText(tr("1.00 means full agreement. Kappa 0 means no better than chance; F1 and IoU 0 mean "
                              "nothing in common. Green: 0.80 or more, yellow: 0.60 to 0.80, red: below 0.60 (talk "
                              "the instructions through with the team)."))
        self.notes = QtWidgets.QLabel(wordWrap=True)
        self.notes.setStyleSheet("color:#5b6575")
        self.label_heading = self._heading(tr("Per label"))
        self.labeler_heading = self._heading(tr("Per labeler (compared with each colleague)"))
        tables = QtWidgets.QHBoxLayout()
        for heading, table in ((self.label_heading, self.per_label), (self.labeler_heading, self.per_labeler)):
            column = QtWidgets.QVBoxLayout()
            column.addWidget(heading)
            column.addWidget(table, 1)
            tables.addLayout(column, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addLayout(top)
        layout.addWidget(self.headline)
        layout.addWidget(self.facts)
        layout.addLayout(tables, 1)
        layout.addWidget(self.guide)
        layout.addWidget(self.notes)

    @staticmethod
    def _heading(text: str) -> QtWidgets.QLabel:
        heading = QtWidgets.QLabel(text)
        heading.setStyleSheet("font-weight:bold;color:#1d2430;margin-top:8px")
        return heading

    @staticmethod
    def _table() -> QtWidgets.QTableWidget:
        table = QtWidgets.QTableWidget()
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setStretchLastSection(True)
        font = QtGui.QFont(table.font())
        font.setPointSizeF(font.pointSizeF() * 1.1)
        table.setFont(font)
        table.setStyleSheet("QTableWidget::item{padding:6px}")
        return table

    # ---- content -------------------------------------------------------------------------------
    def show_task(self, store: LabelStore, task: str) -> None:
        """Compute and show the task's agreement now (raises LabelStoreError for an unknown task)."""
        report = task_agreement(store, task)
        summary = store.task_summary(task)
        self.set_report(task, report, summary)

    def show_pending(self, task: str) -> None:
        """The page while the window computes the task's agreement (set_report follows)."""
        self.task, self.report = task, None
        self.title.setText(tr("Agreement: {task}", task=task))
        self.headline.setText(tr("Computing the agreement of every label…"))
        self.facts.setText("")
        for table in (self.per_label, self.per_labeler):
            table.clear()
            table.setRowCount(0)
        self.notes.setVisible(False)

    def set_report(self, task: str, report: AgreementReport, summary: dict[str, Any]) -> None:
        self.task, self.report = task, report
        self.title.setText(tr("Agreement: {task}", task=task))
        self.headline.setText(tr("Agreement: {headline}", headline=headline_text(report)))
        facts = [tr("Items labeled by two or more people: {count}", count=f"{report.items_compared:,}"),
                 tr("Items where they disagree: {count}", count=f"{len(report.conflicts):,}"),
                 tr("Labelers compared: {names}", names=", ".join(report.labelers) or "—"),
                 tr("Labels waiting for review: {count}", count=f"{int(summary.get('submitted', 0)):,}")]
        self.facts.setText("   ·   ".join(facts))
        tables = list(scores_tables(report).values())
        self._fill(self.per_label, tables[0])
        self._fill(self.per_labeler, tables[1])
        self.notes.setText("\n".join(report.notes))
        self.notes.setVisible(bool(report.notes))
        self.review.setEnabled(bool(summary.get("submitted")))

    @staticmethod
    def _fill(table: QtWidgets.QTableWidget, frame: pl.DataFrame) -> None:
        table.clear()
        table.setColumnCount(frame.width)
        table.setRowCount(frame.height)
        table.setHorizontalHeaderLabels(frame.columns)
        for c, column in enumerate(frame.columns):
            for r, value in enumerate(frame.get_column(column).to_list()):
                if c == 0:
                    cell = QtWidgets.QTableWidgetItem(str(value))
                else:
                    cell = QtWidgets.QTableWidgetItem(number_text(value))
                    cell.setData(VALUE_ROLE, value)
                    cell.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                    if (tint := _tint(value)) is not None:
                        cell.setBackground(QtGui.QColor(tint))
                table.setItem(r, c, cell)
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)

    def cell(self, table: QtWidgets.QTableWidget, row_name: str, column: str) -> QtWidgets.QTableWidgetItem:
        """The cell of a label (or labeler) row and a measure column, by their shown names."""
        headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
        rows = [table.item(r, 0).text() for r in range(table.rowCount())]
        return table.item(rows.index(row_name), headers.index(column))

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if event.key() in (QtCore.Qt.Key.Key_Escape, QtCore.Qt.Key.Key_Backspace):
            self.back_requested.emit()
        elif event.key() == QtCore.Qt.Key.Key_R and self.review.isEnabled():
            self.review_requested.emit(self.task)
        else:
            super().keyPressEvent(event)


__all__ = ["AgreementView", "headline_text", "task_agreement"]
