"""Docked Experiments view: every training run of the project, filterable, compared side by side, one marked as
the candidate of its node.

Runs come from the project's run records (engine/experiments.py); the view keeps the list it loaded and filters it
in memory, so typing in the search box never touches the database. `refresh()` reloads (the main window calls it
when a run ends). Marking a candidate is audited by the engine; replacing another candidate is always confirmed.
"""
from __future__ import annotations

import datetime as _dt
import json
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.experiments_charts import ks_png, roc_png
from app.viewers.report_view import FigureLabel, format_value
from engine.errors import LedgerflowError
from engine.experiments import (KEY_METRICS, CandidateConflict, Comparison, ExperimentRun, Experiments,
                                MetricCondition, RunFilter, compare_runs, key_metrics)
from engine.i18n import N_, tr

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine.project import Project

_RIGHT = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
_ID_ROLE = QtCore.Qt.ItemDataRole.UserRole
_SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
_PERIODS = ((N_("Any time"), None), (N_("Last 24 hours"), 1), (N_("Last 7 days"), 7), (N_("Last 30 days"), 30))
_OUTCOMES = ((N_("Any outcome"), None), (N_("Succeeded"), "done"), (N_("Failed"), "failed"),
             (N_("Cancelled"), "cancelled"))
_OUTCOME_LABELS = {value: label for label, value in _OUTCOMES if value}
_EMPTY = N_("Run a training node (a node with a Model output, e.g. AutoML) to see its experiment runs here.")
STAR = "★"


class _SortItem(QtWidgets.QTableWidgetItem):
    """Sorts by the value kept in _SORT_ROLE (numbers as numbers, blanks lowest) rather than by the shown text."""

    def __lt__(self, other: QtWidgets.QTableWidgetItem) -> bool:
        a, b = self.data(_SORT_ROLE), other.data(_SORT_ROLE)
        if a is None or b is None:
            return a is None and b is not None
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)


_AS_TEXT = object()


def _item(text: str, sort: Any = _AS_TEXT, right: bool = False) -> _SortItem:
    """A read-only cell; `sort` is what it sorts by (default: its text; None sorts lowest)."""
    item = _SortItem(text)
    item.setData(_SORT_ROLE, text if sort is _AS_TEXT else sort)
    item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
    if right:
        item.setTextAlignment(_RIGHT)
    return item


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "—" if value is None else format_value(value)


def _table(columns: int = 0) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, columns)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
    t.setWordWrap(False)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 8)
    t.horizontalHeader().setMaximumSectionSize(360)  # long values (feature lists) are elided; the tooltip has all
    t.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
    return t


class ExperimentsView(QtWidgets.QWidget):
    """Filter bar, runs table, and a comparison of the selected runs. `candidate_changed` carries the run id."""

    candidate_changed = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._experiments: Experiments | None = None
        self._runs: list[ExperimentRun] = []
        self._shown: list[ExperimentRun] = []
        self._metric_names: list[str] = []
        self._comparison: Comparison | None = None
        self._build_filters()
        self._build_table()
        self._build_compare()
        self._empty = QtWidgets.QLabel(tr(_EMPTY))
        self._empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setStyleSheet("color: palette(mid);")
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self._compare)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        # at least four runs stay visible above the comparison, however short the dock
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height()
                                    + 4 * self.table.verticalHeader().defaultSectionSize() + 4)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._filters)
        layout.addWidget(self._empty, 1)
        layout.addWidget(split, 1)
        self._split = split
        self._update_state()
        self._on_selection()

    # ------------------------------------------------------------------------------------------------ building

    def _build_filters(self) -> None:
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText(tr("Search node, model, user, settings…"))
        self.search.setClearButtonEnabled(True)
        self.node_box = QtWidgets.QComboBox()
        self.user_box = QtWidgets.QComboBox()
        self.outcome_box = QtWidgets.QComboBox()
        for label, value in _OUTCOMES:
            self.outcome_box.addItem(tr(label), value)
        self.period_box = QtWidgets.QComboBox()
        for label, days in _PERIODS:
            self.period_box.addItem(tr(label), days)
        self.metric_box = QtWidgets.QComboBox()
        self.metric_box.setToolTip(tr("Keep only runs whose metric is at least the value on the right"))
        self.metric_min = QtWidgets.QDoubleSpinBox()
        self.metric_min.setDecimals(4)
        self.metric_min.setRange(-1e9, 1e9)
        self.metric_min.setPrefix("≥ ")
        self.candidates_only = QtWidgets.QCheckBox(tr("Candidates only"))
        self.refresh_button = QtWidgets.QPushButton(tr("Refresh"))
        self.refresh_button.clicked.connect(self.refresh)
        self._filters = QtWidgets.QHBoxLayout()
        for w in (self.search, self.node_box, self.user_box, self.outcome_box, self.period_box, self.metric_box,
                  self.metric_min, self.candidates_only, self.refresh_button):
            self._filters.addWidget(w, 2 if w is self.search else 0)
        self.search.textChanged.connect(self._apply_filter)
        for box in (self.node_box, self.user_box, self.outcome_box, self.period_box, self.metric_box):
            box.currentIndexChanged.connect(self._apply_filter)
        self.metric_min.valueChanged.connect(self._apply_filter)
        self.candidates_only.toggled.connect(self._apply_filter)

    def _build_table(self) -> None:
        self.table = _table()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._on_selection)

    def _build_compare(self) -> None:
        self._compare = QtWidgets.QWidget()
        self._curves_stale = False
        self.mark_button = QtWidgets.QPushButton(tr("Mark as candidate…"))
        self.mark_button.setToolTip(tr("Mark the selected run as the candidate of its training node (recorded with "
                                       "your name and the time)"))
        self.mark_button.clicked.connect(self._on_mark_clicked)
        self.unmark_button = QtWidgets.QPushButton(tr("Withdraw candidate…"))
        self.unmark_button.clicked.connect(self._on_unmark_clicked)
        self.selection_label = QtWidgets.QLabel()
        self.selection_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.selection_label, 1)
        top.addWidget(self.mark_button)
        top.addWidget(self.unmark_button)
        self.tabs = QtWidgets.QTabWidget()
        self.metrics_table = _table()
        self.params_table = _table()
        self.only_differences = QtWidgets.QCheckBox(tr("Only settings that differ"))
        self.only_differences.toggled.connect(self._fill_params)
        params = QtWidgets.QWidget()
        pl_ = QtWidgets.QVBoxLayout(params)
        pl_.setContentsMargins(0, 0, 0, 0)
        pl_.addWidget(self.only_differences)
        pl_.addWidget(self.params_table, 1)
        curves = QtWidgets.QWidget()
        cl = QtWidgets.QHBoxLayout(curves)
        self.roc_label, self.ks_label = QtWidgets.QLabel(), QtWidgets.QLabel()
        self.curves_empty = QtWidgets.QLabel()
        self.curves_empty.setWordWrap(True)
        self.curves_empty.setStyleSheet("color: palette(mid);")
        self._curves_layout = cl
        cl.addWidget(self.curves_empty)
        self.tabs.addTab(self.metrics_table, tr("Metrics"))
        self.tabs.addTab(params, tr("Parameters and lineage"))
        self.tabs.addTab(curves, tr("ROC and KS curves"))
        self._curves_tab = curves
        self.tabs.currentChanged.connect(self._on_tab)
        layout = QtWidgets.QVBoxLayout(self._compare)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

    # ------------------------------------------------------------------------------------------------- loading

    def set_project(self, project: "Project | None", engine: "Engine | None") -> None:
        """Show the experiment runs of `project` (its session's database engine); None clears the view."""
        self._experiments = Experiments.for_project(project, engine) if project and engine else None
        self.refresh()

    def refresh(self) -> None:
        """Reload runs and candidates from the database, keeping the filters and, where possible, the selection."""
        selected = self.selected_ids()
        self._empty.setText(tr(_EMPTY))
        try:
            self._runs = self._experiments.runs() if self._experiments else []
        except Exception as exc:  # noqa: BLE001 - e.g. a locked or damaged database: say so, keep the window
            self._runs = []
            self._empty.setText(tr("The experiment runs could not be read: {error}", error=str(exc)))
        self._fill_choices()
        self._apply_filter(keep=selected)

    def _fill_choices(self) -> None:
        metric_names: list[str] = []
        for r in self._runs:
            metric_names.extend(k for k in r.metrics if k not in metric_names)
        self._metric_names = sorted(metric_names)
        for box, first, values in (
                (self.node_box, tr("All training nodes"), sorted({r.node_title for r in self._runs})),
                (self.user_box, tr("All users"), sorted({r.user for r in self._runs})),
                (self.metric_box, tr("No metric filter"), self._metric_names)):
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            box.addItem(first, None)
            for v in values:
                box.addItem(v, v)
            box.setCurrentIndex(max(0, box.findData(current)) if current is not None else 0)
            box.blockSignals(False)

    def current_filter(self) -> RunFilter:
        days = self.period_box.currentData()
        since = None
        if days:
            since = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=days)).isoformat(timespec="seconds")
        metric = self.metric_box.currentData()
        return RunFilter(node=self.node_box.currentData(), user=self.user_box.currentData(),
                         outcome=self.outcome_box.currentData(), since=since,
                         metrics=[MetricCondition(metric, ">=", self.metric_min.value())] if metric else [],
                         text=self.search.text().strip() or None, candidates_only=self.candidates_only.isChecked())

    def _apply_filter(self, *_args: Any, keep: list[int] | None = None) -> None:
        flt = self.current_filter()
        self.metric_min.setEnabled(self.metric_box.currentData() is not None)
        selected = self.selected_ids() if keep is None else keep
        self._shown = [r for r in self._runs if flt.matches(r)]
        self._fill_table()
        self._update_state()
        self.select_runs(selected)

    def _headline_names(self) -> list[str]:
        names = {k.rsplit(".", 1)[-1] for r in self._shown for k, _ in key_metrics(r, limit=len(KEY_METRICS))}
        return [n for n in KEY_METRICS if n in names][:3]

    def _fill_table(self) -> None:
        heads = self._headline_names()
        columns = [STAR, tr("Run"), tr("Node"), tr("Model"), *[n.upper() if len(n) <= 4 else n for n in heads],
                   tr("User"), tr("Started (UTC)"), tr("Seconds"), tr("Outcome")]
        self.table.setSortingEnabled(False)
        self.table.blockSignals(True)
        self.table.clearContents()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(self._shown))
        for row, run in enumerate(self._shown):
            headline = {k.rsplit(".", 1)[-1]: (k, v) for k, v in key_metrics(run, limit=len(KEY_METRICS))}
            star = _item(STAR if run.candidate else "", 1 if run.candidate else 0)
            if run.candidate:
                star.setToolTip(tr("The candidate of {node}", node=run.node_title))
            ident = _item(str(run.id), run.id, right=True)
            ident.setData(_ID_ROLE, run.id)
            cells = [star, ident, _item(run.node_title), _item(run.model_name)]
            for name in heads:
                key, value = headline.get(name, (None, None))
                cell = _item(_cell(value), value, right=True)
                if key:
                    cell.setToolTip(key)
                cells.append(cell)
            cells += [_item(run.user), _item(run.started_at[:19].replace("T", " "), run.started_at),
                      _item(f"{run.duration_s:.1f}", run.duration_s, right=True),
                      _item(tr(_OUTCOME_LABELS.get(run.outcome, run.outcome)))]
            if run.error:
                cells[-1].setToolTip(run.error)
            for col, cell in enumerate(cells):
                self.table.setItem(row, col, cell)
        self.table.blockSignals(False)
        self.table.setSortingEnabled(True)

    def _update_state(self) -> None:
        has_runs = bool(self._runs)
        self._empty.setVisible(not has_runs)
        self._split.setVisible(has_runs)
        for w in (self.search, self.node_box, self.user_box, self.outcome_box, self.period_box, self.metric_box,
                  self.candidates_only):
            w.setEnabled(has_runs)
        self.refresh_button.setEnabled(self._experiments is not None)

    # ------------------------------------------------------------------------------------------------ selection

    def selected_ids(self) -> list[int]:
        """Ids of the selected runs, top to bottom as shown."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()}) if self.table.model() else []
        return [self.table.item(r, 1).data(_ID_ROLE) for r in rows if self.table.item(r, 1) is not None]

    def select_runs(self, ids: list[int]) -> None:
        """Select the rows of these run ids (those that are shown)."""
        wanted = set(ids)
        self.table.blockSignals(True)
        self.table.clearSelection()
        mode = QtCore.QItemSelectionModel.SelectionFlag.Select | QtCore.QItemSelectionModel.SelectionFlag.Rows
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 1)
            if item is not None and item.data(_ID_ROLE) in wanted:
                self.table.selectionModel().select(self.table.model().index(row, 0), mode)
        self.table.blockSignals(False)
        self._on_selection()

    def _selected_runs(self) -> list[ExperimentRun]:
        by_id = {r.id: r for r in self._shown}
        return [by_id[i] for i in self.selected_ids() if i in by_id]

    def _on_selection(self) -> None:
        runs = self._selected_runs()
        one = runs[0] if len(runs) == 1 else None
        self.mark_button.setEnabled(one is not None and one.outcome == "done" and not one.candidate)
        self.unmark_button.setEnabled(one is not None and one.candidate)
        self._compare.setEnabled(bool(runs))
        if not runs:
            self.selection_label.setText(tr("Select runs to compare them (Ctrl- or Shift-click for several)."))
            self._comparison = None
        else:
            self.selection_label.setText(tr("{n} run(s) selected", n=len(runs)))
            self._comparison = compare_runs(runs)
        self._fill_metrics()
        self._fill_params()
        self._curves_stale = True
        self._on_tab()

    def _on_tab(self) -> None:
        """Charts are drawn when their tab is shown (matplotlib takes a moment), not on every selection change."""
        if self._curves_stale and self.tabs.currentWidget() is self._curves_tab:
            self._curves_stale = False
            self._fill_curves()

    # ------------------------------------------------------------------------------------------------- compare

    def _run_headers(self, table: QtWidgets.QTableWidget, first: str) -> list[ExperimentRun]:
        runs = self._comparison.runs if self._comparison else []
        table.setColumnCount(1 + len(runs))
        table.setHorizontalHeaderLabels([first] + [f"{STAR if r.candidate else ''}#{r.id} {r.model_name}".strip()
                                                   for r in runs])
        return runs

    def _fill_metrics(self) -> None:
        t = self.metrics_table
        self._run_headers(t, tr("Metric"))
        rows = self._comparison.metrics if self._comparison else []
        in_sample = {f"{e.node_title}." for run in (self._comparison.runs if self._comparison else [])
                     for e in run.evaluations if e.in_sample}
        t.setRowCount(len(rows))
        for r, (name, values) in enumerate(rows):
            head = _item(name)
            if any(name.startswith(prefix) for prefix in in_sample):  # optimistic: say so
                head.setToolTip(tr("Scored on data the model was trained on"))
                font = head.font()
                font.setItalic(True)
                head.setFont(font)
            t.setItem(r, 0, head)
            for c, v in enumerate(values, start=1):
                t.setItem(r, c, _item(_cell(v), v, right=True))

    def _param_rows(self) -> list[tuple[str, list[Any], bool]]:
        if self._comparison is None:
            return []
        cmp = self._comparison
        rows = [(p.name, p.values, p.differs) for p in cmp.params]
        rows += [(tr("input data: {port}", port=p.name), [v[:12] if isinstance(v, str) else v for v in p.values],
                  p.differs) for p in cmp.data]
        rows += [(tr("output: {port}", port=port), [r.outputs.get(port, "")[:12] for r in cmp.runs],
                  len({r.outputs.get(port) for r in cmp.runs}) > 1)
                 for port in sorted({p for r in cmp.runs for p in r.outputs})]
        rows += [(tr("package: {name}", name=p.name), p.values, True) for p in cmp.packages]
        rows += [(tr("operator"), [f"{r.user}@{r.host}" for r in cmp.runs],
                  len({(r.user, r.host) for r in cmp.runs}) > 1)]
        return rows

    def _fill_params(self) -> None:
        t = self.params_table
        runs = self._run_headers(t, tr("Setting"))
        rows = [row for row in self._param_rows() if row[2] or not self.only_differences.isChecked()]
        t.setRowCount(len(rows))
        highlight = self.palette().color(QtGui.QPalette.ColorRole.Highlight)
        highlight.setAlpha(60)
        for r, (name, values, differs) in enumerate(rows):
            cells = [_item(name)] + [_item(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False), v)
                                     for v in values]
            for cell in cells:
                cell.setToolTip(cell.text())
            for c, cell in enumerate(cells):
                if differs and len(runs) > 1:
                    cell.setBackground(highlight)
                    font = cell.font()
                    font.setBold(True)
                    cell.setFont(font)
                t.setItem(r, c, cell)

    def _fill_curves(self) -> None:
        runs = self._comparison.runs if self._comparison else []
        for label in (self.roc_label, self.ks_label):
            self._curves_layout.removeWidget(label)
            label.setParent(None)
            label.deleteLater()
        self.roc_label, self.ks_label = QtWidgets.QLabel(), QtWidgets.QLabel()
        roc, ks = (roc_png(runs), ks_png(runs)) if runs else (None, None)
        if roc is None and ks is None:
            self.curves_empty.setText(tr("No curves: the evaluations of these runs did not record ROC/KS curves.")
                                      if runs else "")
            self.curves_empty.setVisible(True)
            return
        self.curves_empty.setVisible(False)
        for attr, png in (("roc_label", roc), ("ks_label", ks)):
            if png is not None:
                label = FigureLabel(png)
                setattr(self, attr, label)
                self._curves_layout.addWidget(label, 1)
                label.show()

    # ------------------------------------------------------------------------------------------------- actions

    def ask_note(self, title: str, prompt: str) -> str | None:
        """The note for the audit trail; None when the user cancels."""
        text, ok = QtWidgets.QInputDialog.getText(self, title, prompt)
        return text if ok else None

    def _on_mark_clicked(self) -> None:
        runs = self._selected_runs()
        if len(runs) != 1 or self._experiments is None:
            return
        run = runs[0]
        note = self.ask_note(tr("Mark as candidate"), tr("Why run {id} ({model})? The note is kept with your name "
                                                         "and the time.", id=run.id, model=run.model_name))
        if note is None:
            return
        try:
            try:
                self._experiments.mark_candidate(run.id, note)
            except CandidateConflict:
                current = self._experiments.candidates().get(run.node_id)
                answer = QtWidgets.QMessageBox.question(
                    self, tr("Replace the candidate?"),
                    tr("Run {current} is the candidate of {node}. Make run {id} the candidate instead? The earlier "
                       "mark stays in the history.", current=current, node=run.node_title, id=run.id))
                if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                    return
                self._experiments.mark_candidate(run.id, note, replace=True)
        except LedgerflowError as exc:
            QtWidgets.QMessageBox.warning(self, tr("Not marked"), str(exc))
            return
        self.refresh()
        self.candidate_changed.emit(run.id)

    def _on_unmark_clicked(self) -> None:
        runs = self._selected_runs()
        if len(runs) != 1 or self._experiments is None:
            return
        note = self.ask_note(tr("Withdraw candidate"), tr("Why is run {id} no longer the candidate?", id=runs[0].id))
        if note is None:
            return
        try:
            self._experiments.unmark_candidate(runs[0].id, note)
        except LedgerflowError as exc:
            QtWidgets.QMessageBox.warning(self, tr("Not withdrawn"), str(exc))
            return
        self.refresh()
        self.candidate_changed.emit(runs[0].id)

    # ------------------------------------------------------------------------------------------ test accessors

    def shown_ids(self) -> list[int]:
        """Run ids in the table, top to bottom."""
        return [self.table.item(r, 1).data(_ID_ROLE) for r in range(self.table.rowCount())]

    def comparison(self) -> Comparison | None:
        return self._comparison

    def empty_text(self) -> str:
        return self._empty.text() if self._empty.isVisibleTo(self) else ""
