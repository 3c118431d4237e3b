"""Source preview: the schema and first rows of a data source before anything runs, with type overrides.

Analysts check a file's columns and types before wiring a flow; the preview reads only the head of the source (the
node's own `preview`, so it applies the same parsing and overrides as a run) on a background thread. Changing a
column's type here sets the node's `column_types` setting through the undoable command stack, then re-reads.
"""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import polars as pl
from PySide6 import QtCore, QtWidgets

from app.viewers.data_view import DataViewer
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.sdk import Context, Node

PREVIEW_ROWS = 200
INFERRED = ""  # the override combo's "no override" entry
_KINDS = ["str", "int", "float", "bool", "date", "datetime", "category"]


def read_preview(cls: type[Node], settings: dict[str, Any], project_dir: Path | None,
                 rows: int = PREVIEW_ROWS) -> pl.DataFrame:
    """Run a node type's preview in this process; raises LedgerflowError (or pydantic's) with a clear message."""
    model = cls.Settings.model_validate(settings)
    with tempfile.TemporaryDirectory(prefix="lf-preview-") as work:
        ctx = Context(node_id="preview", title=cls.title, seed=0, workdir=Path(work), project_dir=project_dir)
        table = cls.preview(model, ctx, rows)
    if table is None:
        raise LedgerflowError(tr("This node has no preview"))
    return table


def _error_text(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: the first problem, with the field it is about
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"
    return str(exc) or type(exc).__name__


class _Loader(QtCore.QObject):
    done = QtCore.Signal(int, object, str)  # generation, table or None, error text (queued from the thread)


class PreviewDialog(QtWidgets.QDialog):
    """Schema (column, type, override, missing, example) above the first rows of the source."""

    def __init__(self, cls: type[Node], title: str, settings: Callable[[], dict[str, Any]],
                 project_dir: Path | None, set_types: Callable[[dict[str, str]], None] | None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preview-dialog")
        self.setWindowTitle(tr("Preview: {title}", title=title))
        self.resize(980, 640)
        self._cls = cls
        self._settings = settings
        self._project_dir = project_dir
        self._set_types = set_types if "column_types" in cls.Settings.model_fields else None
        self._generation = 0
        self._loader = _Loader(self)
        self._loader.done.connect(self._on_done)
        self.table: pl.DataFrame | None = None

        self.status = QtWidgets.QLabel(tr("Reading…"))
        self.status.setObjectName("preview-status")
        self.status.setWordWrap(True)
        self.schema = QtWidgets.QTableWidget(0, 5)
        self.schema.setObjectName("preview-schema")
        self.schema.setHorizontalHeaderLabels([tr("Column"), tr("Type"), tr("Read as"), tr("Missing"),
                                               tr("Example")])
        self.schema.verticalHeader().hide()
        self.schema.horizontalHeader().setStretchLastSection(True)
        self.schema.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        if self._set_types is None:
            self.schema.hideColumn(2)
        self.rows = DataViewer()
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.schema)
        split.addWidget(self.rows)
        split.setSizes([260, 380])
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        reload_button = buttons.addButton(tr("Reload"), QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        reload_button.clicked.connect(self.reload)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)
        self.reload()

    # ---- reading -----------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read again on a thread; a result from an older request is ignored."""
        self._generation += 1
        generation = self._generation
        settings = dict(self._settings())
        self.status.setText(tr("Reading…"))
        self.status.setStyleSheet("")

        def work() -> None:
            try:
                table = read_preview(self._cls, settings, self._project_dir)
            except Exception as exc:  # noqa: BLE001 - shown in the dialog, never raised into Qt
                self._loader.done.emit(generation, None, _error_text(exc))
                return
            self._loader.done.emit(generation, table, "")

        threading.Thread(target=work, name="ledgerflow-preview", daemon=True).start()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """For tests and scripts: process events until the current read has been shown."""
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        while self.status.text() == tr("Reading…") and not deadline.hasExpired():
            QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return self.status.text() != tr("Reading…")

    def _on_done(self, generation: int, table: pl.DataFrame | None, error: str) -> None:
        if generation != self._generation:
            return
        self.table = table
        if table is None:
            self.status.setText(error)
            self.status.setStyleSheet("color: #c62828;")
            return
        self.status.setText(tr("First {n} rows, {m} columns, read as a run would read them. Types you choose "
                               "under 'Read as' are saved in the node's settings.", n=table.height, m=table.width))
        self._fill_schema(table)
        self.rows.set_table(table, tr("First rows"))

    # ---- the schema table --------------------------------------------------------------------------------
    def _overrides(self) -> dict[str, str]:
        return dict(self._settings().get("column_types") or {})

    def _fill_schema(self, table: pl.DataFrame) -> None:
        overrides = self._overrides()
        self.schema.setRowCount(table.width)
        for row, (name, dtype) in enumerate(table.schema.items()):
            series = table.get_column(name)
            present = series.drop_nulls()
            example = str(present[0]) if len(present) else ""
            self.schema.setItem(row, 0, QtWidgets.QTableWidgetItem(name))
            self.schema.setItem(row, 1, QtWidgets.QTableWidgetItem(str(dtype)))
            self.schema.setItem(row, 3, QtWidgets.QTableWidgetItem(f"{series.null_count()}"))
            self.schema.setItem(row, 4, QtWidgets.QTableWidgetItem(example[:80]))
            if self._set_types is not None:
                combo = QtWidgets.QComboBox()
                combo.setObjectName(f"read-as:{name}")
                combo.addItem(tr("as detected"), INFERRED)
                for kind in _KINDS:
                    combo.addItem(kind, kind)
                combo.setCurrentIndex(max(0, combo.findData(overrides.get(name, INFERRED))))
                combo.currentIndexChanged.connect(lambda _i, c=name, box=combo: self.set_type(c, box.currentData()))
                self.schema.setCellWidget(row, 2, combo)
        self.schema.resizeColumnsToContents()

    def set_type(self, column: str, kind: str) -> None:
        """Override (or, with INFERRED, stop overriding) one column's type, then read again."""
        if self._set_types is None:
            return
        overrides = self._overrides()
        if kind == INFERRED:
            overrides.pop(column, None)
        else:
            overrides[column] = kind
        self._set_types(overrides)
        self.reload()
