"""Docked viewer for a `Report` output: metrics, tables, figures and notes on one scrollable page.

Reports are small by design (a few metrics, confusion tables, a couple of PNG charts), so the page is rebuilt on
every `set_report` rather than diffed; only table rows are capped, in case a node puts a large frame in a report.
"""
from __future__ import annotations

import json
import numbers
import re
from pathlib import Path
from typing import Any

import polars as pl
from PySide6 import QtCore, QtGui, QtWidgets

from engine.fileio import atomic_write_text
from engine.i18n import tr
from engine.ports import Report

MAX_TABLE_ROWS = 1_000
_TABLE_MAX_HEIGHT = 360  # px; taller tables scroll inside their own view instead of stretching the page
_RIGHT = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
_LEFT = QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter


def _round_floats(value: Any) -> Any:
    """Round floats nested in dicts/lists so compact JSON stays as readable as the scalar metrics."""
    if isinstance(value, dict):
        return {str(k): _round_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round_floats(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return round(float(value), 4)
    return value


def format_value(value: Any) -> str:
    """One cell's text: floats (numpy ones too) to 4 decimals, containers as one-line JSON, None as blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4f}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_round_floats(value), ensure_ascii=False, separators=(", ", ": "), default=str)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _heading(text: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.1)
    label.setFont(font)
    label.setContentsMargins(0, 8, 0, 2)
    return label


def _plain_label(text: str, wrap: bool = True) -> QtWidgets.QLabel:
    """Plain-text label: report text comes from node code and data, so it must never be parsed as HTML."""
    label = QtWidgets.QLabel(text)
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _read_only(view: QtWidgets.QAbstractItemView) -> None:
    view.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSizeAdjustPolicy(QtWidgets.QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
    view.setHorizontalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)


class FrameModel(QtCore.QAbstractTableModel):
    """Read-only model over the first rows of a polars frame (a copy of at most `MAX_TABLE_ROWS` tuples)."""

    def __init__(self, frame: pl.DataFrame, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._columns = list(frame.columns)
        self._rows = frame.head(MAX_TABLE_ROWS).rows()

    def rowCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return format_value(value)
        if role == QtCore.Qt.ItemDataRole.TextAlignmentRole:
            return int(_RIGHT if _is_number(value) else _LEFT)
        return None

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation,  # noqa: N802
                   role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if role != QtCore.Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == QtCore.Qt.Orientation.Horizontal:
            return self._columns[section]
        return str(section + 1)


class FigureLabel(QtWidgets.QLabel):
    """Shows a PNG at natural size, scaled down (never up) to the width the layout gives it.

    The horizontal size policy is Ignored so a wide chart never forces a horizontal scroll bar; the pixmap is
    re-scaled from the original on each width change so repeated resizes do not degrade it.
    """

    def __init__(self, png: bytes, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = QtGui.QPixmap()
        self._original.loadFromData(png, "PNG")
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        if self._original.isNull():
            self.setText(tr("This figure could not be displayed."))
        else:
            self.setPixmap(self._original)

    def original_size(self) -> QtCore.QSize:
        return self._original.size()

    max_height = 0  # 0: no limit; the report viewer sets it so a chart fits the visible height of its dock

    def fit_width(self, width: int) -> None:
        if self._original.isNull() or width <= 0:
            return
        target = min(width, self._original.width())
        if self.max_height > 0:  # narrower still when the height would not fit
            target = min(target, int(self._original.width() * self.max_height / max(1, self._original.height())))
        target = max(target, 1)
        if self.pixmap().width() == target:
            return
        if target == self._original.width():
            self.setPixmap(self._original)
        else:
            self.setPixmap(self._original.scaledToWidth(target, QtCore.Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.fit_width(event.size().width())


class ReportViewer(QtWidgets.QWidget):
    """Shows one report; `exported` carries the path of each HTML file written by `export_html`."""

    exported = QtCore.Signal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._report: Report | None = None
        self._table_views: list[QtWidgets.QTableView] = []
        self._figure_labels: list[FigureLabel] = []
        self._build_header()
        self._build_body()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._header)
        layout.addWidget(self._source)
        layout.addWidget(self._empty, 1)
        layout.addWidget(self._scroll, 1)
        self.set_report(None)

    # ------------------------------------------------------------------------------------------------ building

    def _build_header(self) -> None:
        self._title = QtWidgets.QLabel()
        self._title.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self._title.setWordWrap(True)
        font = self._title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self._title.setFont(font)
        self._copy_button = QtWidgets.QPushButton(tr("Copy metrics"))
        self._copy_button.setToolTip(tr("Copy the metrics as tab-separated text, ready to paste into a spreadsheet"))
        self._copy_button.clicked.connect(self.copy_metrics)
        self._export_button = QtWidgets.QPushButton(tr("Export HTML…"))
        self._export_button.setToolTip(tr("Save the report as one self-contained HTML page"))
        self._export_button.clicked.connect(self._on_export_clicked)
        self._header = QtWidgets.QHBoxLayout()
        self._header.addWidget(self._title, 1)
        self._header.addWidget(self._copy_button)
        self._header.addWidget(self._export_button)
        self._source = _plain_label("")
        self._source.setStyleSheet("color: palette(mid);")
        self._empty = _plain_label(tr("Run a node with a report output, e.g. Evaluate, to see its metrics and "
                                      "charts here."))
        self._empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._empty.setStyleSheet("color: palette(mid);")

    def _build_body(self) -> None:
        self._metrics_heading = _heading(tr("Metrics"))
        self._metrics = QtWidgets.QTableWidget(0, 2)
        self._metrics.setHorizontalHeaderLabels([tr("Metric"), tr("Value")])
        self._metrics.verticalHeader().setVisible(False)
        self._metrics.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self._metrics.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._metrics.setSizePolicy(QtWidgets.QSizePolicy.Policy.Maximum, QtWidgets.QSizePolicy.Policy.Fixed)
        _read_only(self._metrics)
        self._sections = QtWidgets.QVBoxLayout()  # tables and figures, rebuilt per report
        self._sections.setContentsMargins(0, 0, 0, 0)
        self._notes_heading = _heading(tr("Notes"))
        self._notes = _plain_label("")
        # metrics and charts side by side: a short bottom dock shows the numbers and the curves at once
        self._figures = QtWidgets.QHBoxLayout()
        self._figures.setContentsMargins(0, 0, 0, 0)
        metrics_col = QtWidgets.QVBoxLayout()
        metrics_col.addWidget(self._metrics_heading)
        metrics_col.addWidget(self._metrics)
        metrics_col.addStretch(1)
        top = QtWidgets.QHBoxLayout()
        top.addLayout(metrics_col)
        top.addLayout(self._figures, 1)
        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.addLayout(top)
        layout.addLayout(self._sections)
        layout.addWidget(self._notes_heading)
        layout.addWidget(self._notes)
        layout.addStretch(1)
        self._scroll = QtWidgets.QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self._scroll.setWidget(body)

    # ------------------------------------------------------------------------------------------------- content

    def report(self) -> Report | None:
        return self._report

    def set_report(self, report: Report | None, source: str = "") -> None:
        """Show `report` (None: the empty state). `source` names where it came from, e.g. the node's title."""
        self._report = report
        has = report is not None
        self._empty.setVisible(not has)
        self._scroll.setVisible(has)
        self._title.setVisible(has)
        self._copy_button.setEnabled(has and bool(report.metrics))
        self._export_button.setEnabled(has)
        self._source.setText(tr("Source: {source}", source=source) if has and source else "")
        self._source.setVisible(has and bool(source))
        self._clear_sections()
        if report is None:
            self._title.clear()
            self._fill_metrics({})
            self._fill_notes([])
            return
        self._title.setText(report.title)
        self._fill_metrics(report.metrics)
        for name, frame in report.visible_tables().items():
            self._add_table(name, frame)
        for name, png in report.figures.items():
            self._add_figure(name, png)
        self._fill_notes(report.notes)
        self._scroll.verticalScrollBar().setValue(0)
        QtCore.QTimer.singleShot(0, self._fit_figures)

    def _clear_sections(self) -> None:
        for layout in (self._sections, self._figures):
            while (item := layout.takeAt(0)) is not None:
                if (widget := item.widget()) is not None:
                    widget.setParent(None)
                    widget.deleteLater()
        self._table_views.clear()
        self._figure_labels.clear()

    def _fill_metrics(self, metrics: dict[str, Any]) -> None:
        self._metrics.setRowCount(len(metrics))
        for row, (name, value) in enumerate(metrics.items()):
            name_item = QtWidgets.QTableWidgetItem(str(name))
            value_item = QtWidgets.QTableWidgetItem(format_value(value))
            value_item.setTextAlignment(_RIGHT)
            self._metrics.setItem(row, 0, name_item)
            self._metrics.setItem(row, 1, value_item)
        self._metrics_heading.setVisible(bool(metrics))
        self._metrics.setVisible(bool(metrics))

    def _add_table(self, name: str, frame: pl.DataFrame) -> None:
        self._sections.addWidget(_heading(name))
        view = QtWidgets.QTableView()
        view.setModel(FrameModel(frame, view))
        _read_only(view)
        view.setMaximumHeight(_TABLE_MAX_HEIGHT)
        view.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        view.setSizePolicy(QtWidgets.QSizePolicy.Policy.Maximum, QtWidgets.QSizePolicy.Policy.Maximum)
        self._sections.addWidget(view)
        self._table_views.append(view)
        if frame.height > MAX_TABLE_ROWS:
            note = _plain_label(tr("Showing {n} of {total} rows", n=f"{MAX_TABLE_ROWS:,}", total=f"{frame.height:,}"))
            note.setStyleSheet("color: palette(mid);")
            self._sections.addWidget(note)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit_figures()

    def _fit_figures(self) -> None:
        limit = max(160, self._scroll.viewport().height() - 40)
        for label in self._figure_labels:
            label.max_height = limit
            label.fit_width(label.width())

    def _add_figure(self, name: str, png: bytes) -> None:
        column = QtWidgets.QWidget()
        col = QtWidgets.QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(_heading(name))
        label = FigureLabel(png)
        label.setToolTip(name)
        col.addWidget(label)
        col.addStretch(1)
        self._figures.addWidget(column, 1)
        self._figure_labels.append(label)

    def _fill_notes(self, notes: list[str]) -> None:
        self._notes.setText("\n\n".join(str(n) for n in notes))
        self._notes_heading.setVisible(bool(notes))
        self._notes.setVisible(bool(notes))

    # ------------------------------------------------------------------------------------------------- actions

    def metrics_text(self) -> str:
        """Metrics as `name<TAB>value` lines, values formatted as shown."""
        if self._report is None:
            return ""
        return "\n".join(f"{name}\t{format_value(value)}" for name, value in self._report.metrics.items())

    def copy_metrics(self) -> None:
        QtGui.QGuiApplication.clipboard().setText(self.metrics_text())

    def export_html(self, path: str | Path) -> Path:
        """Write the shown report as one HTML page, atomically (a failed export never leaves a partial file)."""
        if self._report is None:
            raise ValueError(tr("There is no report to export"))
        target = Path(path)
        atomic_write_text(target, self._report.to_html())
        self.exported.emit(target)
        return target

    def _default_export_path(self) -> str:
        title = self._report.title if self._report is not None else ""
        stem = re.sub(r"[^\w\-]+", "_", title).strip("_") or "report"
        folder = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.DocumentsLocation)
        return str(Path(folder or Path.home()) / f"{stem}.html")

    @QtCore.Slot()
    def _on_export_clicked(self) -> None:
        """Ask where to save, then export; any failure is shown to the user, never raised into Qt's event loop."""
        if self._report is None:
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, tr("Export report as HTML"), self._default_export_path(), tr("HTML files (*.html *.htm)"))
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() not in (".html", ".htm"):
            target = target.with_name(target.name + ".html")
        try:
            self.export_html(target)
        except Exception as exc:  # noqa: BLE001 - a slot must not raise; the user needs the reason instead
            QtWidgets.QMessageBox.critical(self, tr("Export failed"),
                                           tr("Could not write {path}: {error}", path=str(target), error=str(exc)))

    # ------------------------------------------------------------------------------------------ test accessors

    def metrics_table(self) -> QtWidgets.QTableWidget:
        return self._metrics

    def table_views(self) -> list[QtWidgets.QTableView]:
        return list(self._table_views)

    def figure_labels(self) -> list[FigureLabel]:
        return list(self._figure_labels)

    def empty_text(self) -> str:
        """The empty-state message when no report is shown, else ''."""
        return self._empty.text() if self._report is None else ""
