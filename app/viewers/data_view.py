"""Virtual table viewer for polars DataFrames (node outputs), with a filter bar, header sorting and column stats.

The model never turns the frame into Python objects as a whole: Qt asks for visible cells only, and those are
converted in small row blocks (`df.slice(...).rows()`) kept in an LRU, so a 1,000,000-row output scrolls as fast as
a 100-row one. Sorting and filtering are done by polars on a row-index view (`with_row_index`), so the vertical
header keeps showing each row's original number.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import polars.selectors as cs
from PySide6 import QtCore, QtGui, QtWidgets

from engine.i18n import tr

BLOCK_ROWS = 256  # rows converted to Python per block
MAX_BLOCKS = 64  # LRU size: 16k rows of Python values at most
SIGNIFICANT_DIGITS = 6
MIN_DECIMALS = 2
MAX_CELL_CHARS = 300  # longer text is elided in the cell; the tooltip shows more
MAX_TOOLTIP_CHARS = 2000
TOP_VALUES = 3
FILTER_DELAY_MS = 250  # debounce while typing, so a 1M-row filter doesn't run on every keystroke

_TEXT_DTYPES = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)
_COMPARISON = re.compile(r"^(>=|<=|!=|==|=|>|<)\s*(.*)$", re.DOTALL)
_BETWEEN = re.compile(r"^between\b(.*)$", re.IGNORECASE | re.DOTALL)
_BETWEEN_ARGS = re.compile(r"^\s*(\S+)\s+and\s+(\S+)\s*$", re.IGNORECASE)
_RANGE = re.compile(r"^(.*?)\s*\.\.\s*(.*)$", re.DOTALL)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


# --------------------------------------------------------------------------------------------- value formatting

def format_float(value: float) -> str:
    """6 significant digits, but never fewer than 2 decimals (amounts keep their cents) and never a rounded
    integer part; scientific notation only for tiny or huge magnitudes. The exact value is in the cell tooltip."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e15:
        digits = math.floor(math.log10(magnitude)) + 1
        text = f"{value:.{max(MIN_DECIMALS, SIGNIFICANT_DIGITS - digits)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.{SIGNIFICANT_DIGITS}g}"


def format_value(value: Any) -> str:
    """One-line display text of a non-null cell value (cells never wrap)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        text = value.replace("\r\n", "↵").replace("\n", "↵").replace("\t", " ")
    elif isinstance(value, (bytes, bytearray)):
        text = value[:MAX_CELL_CHARS].hex(" ")
    else:
        text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


def _full_value_text(value: Any) -> str:
    """The exact value for the cell tooltip (full float precision, long text), bounded so tooltips stay usable."""
    text = repr(value) if isinstance(value, float) else str(value)
    return text if len(text) <= MAX_TOOLTIP_CHARS else text[:MAX_TOOLTIP_CHARS] + "…"


def _count(n: int) -> str:
    return f"{n:,}"


# --------------------------------------------------------------------------------------------- column stats

@dataclass(frozen=True)
class ColumnStats:
    """Summary of one column over the whole table (not the filtered view), shown in the header tooltip."""

    name: str
    dtype: str
    count: int  # non-null values
    nulls: int
    unique: int | None  # distinct non-null values; None when polars can't hash the dtype
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    std: float | None = None
    top: list[tuple[Any, int]] = field(default_factory=list)


def compute_column_stats(series: pl.Series) -> ColumnStats:
    """Stats with polars kernels only: numeric columns get min/max/mean/std, text-like ones their top values."""
    dtype = series.dtype
    values = series.drop_nulls()
    try:
        unique: int | None = values.n_unique()
    except pl.exceptions.PolarsError:
        unique = None
    extra: dict[str, Any] = {}
    if dtype.is_numeric():
        extra = {"minimum": values.min(), "maximum": values.max(), "mean": values.mean(), "std": values.std()}
    elif dtype.is_temporal():
        extra = {"minimum": values.min(), "maximum": values.max()}
    elif isinstance(dtype, _TEXT_DTYPES):
        extra = {"top": _top_values(values)}
    return ColumnStats(series.name, str(dtype), len(values), series.null_count(), unique, **extra)


def _top_values(values: pl.Series) -> list[tuple[Any, int]]:
    """Most frequent values, ties broken by value so the tooltip is stable between runs."""
    if values.is_empty():
        return []
    counts = (values.rename("value").to_frame().group_by("value").len(name="n")
              .sort(["n", "value"], descending=[True, False]).head(TOP_VALUES))
    return list(counts.iter_rows())


def _stat_text(value: Any) -> str:
    if value is None:
        return "—"
    if value == "":
        return '""'
    return format_value(value)


def stats_tooltip(stats: ColumnStats) -> str:
    """Plain multi-line tooltip text for a column header."""
    lines = [stats.name,
             tr("Type: {dtype}", dtype=stats.dtype),
             tr("Count: {count}", count=_count(stats.count)),
             tr("Nulls: {nulls}", nulls=_count(stats.nulls))]
    if stats.unique is not None:
        lines.append(tr("Unique: {unique}", unique=_count(stats.unique)))
    if stats.minimum is not None or stats.maximum is not None:
        lines.append(tr("Min: {value}", value=_stat_text(stats.minimum)))
        lines.append(tr("Max: {value}", value=_stat_text(stats.maximum)))
    if stats.mean is not None:
        lines.append(tr("Mean: {value}", value=_stat_text(stats.mean)))
        lines.append(tr("Std: {value}", value=_stat_text(stats.std)))
    if stats.top:
        lines.append(tr("Top values:"))
        lines.extend(f"  {_stat_text(value)[:60]} ({_count(n)})" for value, n in stats.top)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- filter parsing

class FilterError(ValueError):
    """A filter expression the user typed that can't be applied; the message is shown in the filter bar."""


def _parse_number(text: str) -> float | int | None:
    """Accepts 5, -0.3, 1e6 and 1,000,000 (thousands separators only; "0,3" is rejected, not misread as 3)."""
    text = text.strip().replace("_", "")
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    try:
        number = float(text)
    except ValueError:
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return number


def _literal(number: float, dtype: pl.DataType) -> pl.Expr:
    """An int literal for integer columns when the number is integral, so large ids compare exactly."""
    if dtype.is_integer() and isinstance(number, float) and number.is_integer():
        number = int(number)
    return pl.lit(number)


def _number_or_error(text: str, column: str, after: str) -> float | int:
    number = _parse_number(text)
    if number is None:
        if not text.strip():
            raise FilterError(tr("Filter on “{column}”: “{op}” needs a number after it, e.g. {op} 5.",
                                 column=column, op=after))
        raise FilterError(tr("Filter on “{column}”: “{value}” is not a number (after “{op}”).",
                             column=column, value=text.strip(), op=after))
    return number


def _range_bounds(text: str, column: str) -> tuple[float | int, float | int] | None:
    """(low, high) for `between A and B` or `A..B`, None when the text is not a range at all."""
    between = _BETWEEN.match(text)
    if between:
        args = _BETWEEN_ARGS.match(between.group(1))
        if not args:
            raise FilterError(tr("Filter on “{column}”: write a range as “between 1 and 5” or “1..5”.",
                                 column=column))
        low_text, high_text = args.groups()
    else:
        dots = _RANGE.match(text)
        if not dots:
            return None
        low_text, high_text = dots.groups()
        if not low_text.strip() or not high_text.strip():
            raise FilterError(tr("Filter on “{column}”: a range needs both ends, e.g. 1..5.", column=column))
    low = _number_or_error(low_text, column, "between" if between else "..")
    high = _number_or_error(high_text, column, "between" if between else "..")
    return (low, high) if low <= high else (high, low)


def _comparable(column: str, dtype: pl.DataType) -> pl.Expr:
    """Floats are compared at their decimal precision (15 / 7 significant digits, like a spreadsheet), so
    `= 0.3` and `<= 0.3` match a computed 0.30000000000000004 that the table shows as 0.3."""
    if dtype == pl.Float64:
        return pl.col(column).round_sig_figs(15)
    if dtype == pl.Float32:
        return pl.col(column).round_sig_figs(7)
    return pl.col(column)


def _numeric_filter(column: str, dtype: pl.DataType, text: str) -> pl.Expr | None:
    """A comparison/range expression, or None when the text is neither (then it is a text search)."""
    bounds = _range_bounds(text, column)
    col = _comparable(column, dtype)
    if bounds is not None:
        return col.is_between(_literal(bounds[0], dtype), _literal(bounds[1], dtype), closed="both")
    comparison = _COMPARISON.match(text)
    if comparison is None:
        return None
    op, value_text = comparison.groups()
    value = _literal(_number_or_error(value_text, column, op), dtype)
    return {">": col > value, ">=": col >= value, "<": col < value, "<=": col <= value,
            "=": col == value, "==": col == value, "!=": col != value}[op]


def _searchable(dtype: pl.DataType) -> bool:
    """Dtypes polars can cast to text for a "contains" search (nested and binary columns can't)."""
    return (dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Null
            or isinstance(dtype, _TEXT_DTYPES))


def _contains(column: str, needle: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.to_lowercase().str.contains(needle.lower(), literal=True)


def build_filter(schema: pl.Schema, column: str | None, text: str) -> pl.Expr | None:
    """Turn the filter bar's (column, text) into a polars predicate; None means "no filter".

    Numeric column: `> 5`, `>= 5`, `< 5`, `<= 0.3`, `= 2`, `!= 1`, `between 1 and 5`, `1..5` (inclusive);
    any other text, and any text on other columns, is a case-insensitive "contains". Column None = all columns.
    """
    text = text.strip()
    if not text:
        return None
    if column is None:
        searchable = [name for name, dtype in schema.items() if _searchable(dtype)]
        if not searchable:
            raise FilterError(tr("None of the columns can be searched as text."))
        return pl.any_horizontal([_contains(name, text) for name in searchable])
    if column not in schema:
        raise FilterError(tr("There is no column “{column}” in this table.", column=column))
    dtype = schema[column]
    if dtype.is_numeric():
        numeric = _numeric_filter(column, dtype, text)
        if numeric is not None:
            return numeric
    if not _searchable(dtype):
        raise FilterError(tr("Column “{column}” ({dtype}) can't be searched as text.", column=column,
                             dtype=str(dtype)))
    return _contains(column, text)


# --------------------------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class _Block:
    numbers: list[int]  # original row numbers, 0-based
    rows: list[tuple[Any, ...]]


class TableModel(QtCore.QAbstractTableModel):
    """Read-only, virtual Qt model over a polars DataFrame, with a polars-computed filter/sort view.

    The view is a Series of original row indices (None = the frame as is); cells are fetched per block of
    BLOCK_ROWS rows, so memory and latency don't depend on the frame's height.
    """

    viewChanged = QtCore.Signal()  # filter or sort changed: row count and order may differ

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._frame: pl.DataFrame | None = None
        self._index: pl.Series | None = None
        self._filter: pl.Expr | None = None
        self._sort: tuple[str, bool] | None = None
        self._numeric: list[bool] = []
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._stats: dict[str, ColumnStats] = {}

    # ---------------------------------------------------------------------------------- frame and view state

    def set_frame(self, frame: pl.DataFrame | None) -> None:
        """Show a new frame, dropping filter, sort, cached blocks and cached stats."""
        self.beginResetModel()
        self._frame = frame
        self._index = None
        self._filter = None
        self._sort = None
        self._numeric = [dtype.is_numeric() for dtype in frame.dtypes] if frame is not None else []
        self._blocks.clear()
        self._stats.clear()
        self.endResetModel()

    def frame(self) -> pl.DataFrame | None:
        return self._frame

    def column_names(self) -> list[str]:
        return list(self._frame.columns) if self._frame is not None else []

    def total_rows(self) -> int:
        return self._frame.height if self._frame is not None else 0

    def sort_state(self) -> tuple[str, bool] | None:
        """(column, descending) or None when rows are in their original order."""
        return self._sort

    def has_filter(self) -> bool:
        return self._filter is not None

    def set_filter(self, predicate: pl.Expr | None) -> None:
        """Filter rows by a polars predicate (keeps the sort). Raises polars errors, leaving the view as it was."""
        self._set_view(predicate, self._sort)

    def set_sort(self, column: str | None, descending: bool = False) -> None:
        """Sort by a column, nulls last, ties in original order (keeps the filter); None restores the order."""
        if column is not None and column not in self.column_names():
            raise KeyError(column)
        self._set_view(self._filter, (column, descending) if column is not None else None)

    def _set_view(self, predicate: pl.Expr | None, sort: tuple[str, bool] | None) -> None:
        index = self._compute_index(predicate, sort)  # may raise: state is only replaced after it succeeds
        self.beginResetModel()
        self._filter, self._sort, self._index = predicate, sort, index
        self._blocks.clear()
        self.endResetModel()
        self.viewChanged.emit()

    def _compute_index(self, predicate: pl.Expr | None, sort: tuple[str, bool] | None) -> pl.Series | None:
        if self._frame is None or (predicate is None and sort is None):
            return None
        row_col = self._row_index_name()
        view = self._frame.lazy().with_row_index(row_col)
        if predicate is not None:
            view = view.filter(predicate)
        if sort is not None:
            view = view.sort(sort[0], descending=sort[1], nulls_last=True, maintain_order=True)
        return view.select(row_col).collect().to_series()

    def _row_index_name(self) -> str:
        """A hidden column name for the row index that can't clash with the frame's own columns."""
        name = "__ledgerflow_row__"
        while name in self._frame.columns:
            name += "_"
        return name

    # ---------------------------------------------------------------------------------- cell access

    def _block(self, number: int) -> _Block:
        cached = self._blocks.get(number)
        if cached is not None:
            self._blocks.move_to_end(number)
            return cached
        start = number * BLOCK_ROWS
        count = min(BLOCK_ROWS, self.rowCount() - start)
        if self._index is None:
            block = _Block(list(range(start, start + count)), self._frame.slice(start, count).rows())
        else:
            ids = self._index.slice(start, count)
            block = _Block(ids.to_list(), self._frame[ids].rows())
        self._blocks[number] = block
        if len(self._blocks) > MAX_BLOCKS:
            self._blocks.popitem(last=False)
        return block

    def value(self, row: int, column: int) -> Any:
        """Raw Python value of a view cell (None for null)."""
        return self._block(row // BLOCK_ROWS).rows[row % BLOCK_ROWS][column]

    def original_row(self, row: int) -> int:
        """0-based row number in the unfiltered, unsorted frame of view row `row`."""
        return self._block(row // BLOCK_ROWS).numbers[row % BLOCK_ROWS]

    def view_frame(self, start: int, count: int) -> pl.DataFrame:
        """View rows [start, start+count) as a polars frame (for copying), without going through Python values."""
        if self._frame is None:
            return pl.DataFrame()
        if self._index is None:
            return self._frame.slice(start, count)
        return self._frame[self._index.slice(start, count)]

    def is_numeric(self, column: int) -> bool:
        return self._numeric[column]

    # ---------------------------------------------------------------------------------- stats

    def column_stats(self, column: str) -> ColumnStats:
        """Computed on first use and cached until the frame changes (filters and sorts don't change them)."""
        stats = self._stats.get(column)
        if stats is None:
            stats = self._stats[column] = compute_column_stats(self._frame.get_column(column))
        return stats

    def column_tooltip(self, column: str) -> str:
        return stats_tooltip(self.column_stats(column))

    # ---------------------------------------------------------------------------------- Qt model interface

    def rowCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: B008 - Qt signature
        if parent.isValid() or self._frame is None:
            return 0
        return self._index.len() if self._index is not None else self._frame.height

    def columnCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._frame is None:
            return 0
        return self._frame.width

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        Role = QtCore.Qt.ItemDataRole
        if role == Role.TextAlignmentRole:
            horizontal = (QtCore.Qt.AlignmentFlag.AlignRight if self._numeric[index.column()]
                          else QtCore.Qt.AlignmentFlag.AlignLeft)
            return horizontal | QtCore.Qt.AlignmentFlag.AlignVCenter
        if role not in (Role.DisplayRole, Role.ToolTipRole, Role.ForegroundRole, Role.FontRole, Role.UserRole):
            return None
        value = self.value(index.row(), index.column())
        if role == Role.UserRole:
            return value
        if value is None:
            return self._null_data(role)
        if role == Role.DisplayRole:
            return format_value(value)
        if role == Role.ToolTipRole:
            full = _full_value_text(value)
            return full if full != format_value(value) else None
        return None

    @staticmethod
    def _null_data(role: int) -> Any:
        """Nulls read as a grey italic marker, distinct from an empty string."""
        Role = QtCore.Qt.ItemDataRole
        if role == Role.DisplayRole:
            return tr("null")
        if role == Role.ForegroundRole:
            return QtGui.QGuiApplication.palette().brush(QtGui.QPalette.ColorRole.PlaceholderText)
        if role == Role.FontRole:
            font = QtGui.QFont()
            font.setItalic(True)
            return font
        return None

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation,
                   role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if self._frame is None:
            return None
        Role = QtCore.Qt.ItemDataRole
        if orientation == QtCore.Qt.Orientation.Horizontal:
            if not 0 <= section < self._frame.width:
                return None
            name = self._frame.columns[section]
            if role == Role.DisplayRole:
                return name
            if role == Role.ToolTipRole:
                return self.column_tooltip(name)
            return None
        if not 0 <= section < self.rowCount():
            return None
        if role == Role.DisplayRole:
            return str(self.original_row(section) + 1)
        if role == Role.TextAlignmentRole:
            return QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        return None

    def sort(self, column: int, order: QtCore.Qt.SortOrder = QtCore.Qt.SortOrder.AscendingOrder) -> None:
        """Qt's sort entry point (QTableView.sortByColumn, proxies); column -1 restores the original order."""
        if self._frame is None:
            return
        name = self._frame.columns[column] if 0 <= column < self._frame.width else None
        self.set_sort(name, order == QtCore.Qt.SortOrder.DescendingOrder)


# --------------------------------------------------------------------------------------------- the widget

class DataViewer(QtWidgets.QWidget):
    """A node's table output: title, filter bar, virtual table and a "Showing N of M rows" status line."""

    viewChanged = QtCore.Signal(int, int)  # (rows shown, rows in the table) after every filter/sort/table change
    filterError = QtCore.Signal(str)  # the message shown in the filter bar ("" when the filter is valid again)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = TableModel(self)
        self._title = QtWidgets.QLabel()
        self._column_box = QtWidgets.QComboBox()
        self._filter_edit = QtWidgets.QLineEdit()
        self._error = QtWidgets.QLabel()
        self._view = QtWidgets.QTableView()
        self._status = QtWidgets.QLabel()
        self._empty = QtWidgets.QLabel(tr("Select a node with a table output and run it to see its data here."))
        self._pages = QtWidgets.QStackedWidget()
        self._filter_timer = QtCore.QTimer(self, singleShot=True, interval=FILTER_DELAY_MS)
        self._build()
        self._connect()
        self.set_table(None)

    # ---------------------------------------------------------------------------------- construction

    def _build(self) -> None:
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self._title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        self._column_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._column_box.setMaximumWidth(260)
        self._column_box.setToolTip(tr("Column to filter on"))
        self._filter_edit.setClearButtonEnabled(True)
        self._error.setWordWrap(True)
        self._error.setStyleSheet("color: #c62828;")
        self._error.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self._error.hide()

        bar_row = QtWidgets.QHBoxLayout()
        bar_row.setContentsMargins(0, 0, 0, 0)
        bar_row.addWidget(QtWidgets.QLabel(tr("Filter")))
        bar_row.addWidget(self._column_box)
        bar_row.addWidget(self._filter_edit, 1)

        self._configure_view()

        data_page = QtWidgets.QWidget()
        data_layout = QtWidgets.QVBoxLayout(data_page)
        data_layout.setContentsMargins(0, 0, 0, 0)
        data_layout.setSpacing(4)
        data_layout.addWidget(self._title)
        data_layout.addLayout(bar_row)
        data_layout.addWidget(self._error)
        data_layout.addWidget(self._view, 1)
        data_layout.addWidget(self._status)

        self._empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setForegroundRole(QtGui.QPalette.ColorRole.PlaceholderText)
        self._empty.setMargin(24)

        self._pages.addWidget(self._empty)
        self._pages.addWidget(data_page)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._pages)

    def _configure_view(self) -> None:
        """Settings that keep a million-row view cheap: fixed row heights, no wrapping, no content-based sizing."""
        view = self._view
        view.setModel(self._model)
        view.setWordWrap(False)
        view.setAlternatingRowColors(True)
        view.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        view.setHorizontalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setSortingEnabled(False)  # header clicks are handled in _on_header_clicked (three-state cycle)
        rows = view.verticalHeader()
        rows.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(view.fontMetrics().height() + 6)
        columns = view.horizontalHeader()
        columns.setSectionsClickable(True)
        columns.setSortIndicatorShown(True)
        columns.setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
        columns.setHighlightSections(False)
        columns.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        columns.setStretchLastSection(False)
        copy = QtGui.QAction(tr("Copy"), view)
        copy.setShortcut(QtGui.QKeySequence.StandardKey.Copy)
        copy.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        copy.triggered.connect(self.copy_selection)
        view.addAction(copy)
        view.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.ActionsContextMenu)

    def _connect(self) -> None:
        self._view.horizontalHeader().sectionClicked.connect(self._on_header_clicked)
        self._filter_edit.textEdited.connect(lambda _text: self._filter_timer.start())
        self._filter_edit.returnPressed.connect(self._apply_filter_from_bar)
        self._filter_timer.timeout.connect(self._apply_filter_from_bar)
        self._column_box.currentIndexChanged.connect(self._on_column_changed)
        find = QtGui.QShortcut(QtGui.QKeySequence.StandardKey.Find, self)
        find.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self._focus_filter)
        clear = QtGui.QShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Escape), self._filter_edit)
        clear.setContext(QtCore.Qt.ShortcutContext.WidgetShortcut)
        clear.activated.connect(self._clear_filter_from_bar)

    # ---------------------------------------------------------------------------------- public API

    def model(self) -> TableModel:
        return self._model

    def table_view(self) -> QtWidgets.QTableView:
        return self._view

    def status_text(self) -> str:
        return self._status.text()

    def error_text(self) -> str:
        """The filter bar's current error message ("" when there is none)."""
        return self._error.text() if not self._error.isHidden() else ""

    def empty_text(self) -> str:
        """The hint shown instead of the table, or "" when a table is shown."""
        return self._empty.text() if self._pages.currentWidget() is self._empty else ""

    def set_table(self, df: pl.DataFrame | None, title: str = "") -> None:
        """Show a frame (None: the empty-state hint). Filter and sort start afresh for every new table."""
        self._filter_timer.stop()
        self._model.set_frame(df)
        self._title.setText(title)
        self._title.setVisible(bool(title) and df is not None)
        self._fill_column_box()
        self._filter_edit.clear()
        self._show_error(None)
        self._view.horizontalHeader().setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
        self._pages.setCurrentWidget(self._empty if df is None else self._pages.widget(1))
        if df is not None:
            self._fit_columns()
            self._view.scrollToTop()
        self._update_status()

    def apply_filter(self, column: str | None, text: str) -> str | None:
        """Filter the table; returns the error message (also shown in the bar, old result kept) or None.

        Also syncs the bar's column box and text, so a programmatic filter looks like a typed one.
        """
        self._filter_timer.stop()
        self._sync_bar(column, text)
        error = self._try_filter(column, text)
        self._show_error(error)
        self._update_status()
        return error

    def sort_by(self, column: str, descending: bool = False) -> str | None:
        """Sort by a column (nulls last); returns an error message, e.g. for an unknown or unsortable column."""
        if column not in self._model.column_names():
            error = tr("There is no column “{column}” in this table.", column=column)
        else:
            try:
                self._model.set_sort(column, descending)
                error = None
            except Exception as exc:  # noqa: BLE001 - polars can't sort some dtypes; report, never raise
                error = tr("Can't sort by “{column}”: {error}", column=column, error=_short_error(exc))
        self._show_error(error)
        self._sync_sort_indicator()
        self._update_status()
        return error

    def clear_sort(self) -> None:
        """Back to the table's original row order (the filter stays)."""
        self._model.set_sort(None)
        self._sync_sort_indicator()
        self._update_status()

    def column_tooltip(self, column: str) -> str:
        return self._model.column_tooltip(column)

    def copy_selection(self) -> str:
        """Copy the selection's bounding rectangle as tab-separated text (nulls empty) and return it."""
        selection = self._view.selectionModel().selection()
        if selection.isEmpty():
            return ""
        top = min(r.top() for r in selection)
        bottom = max(r.bottom() for r in selection)
        columns = sorted({c for r in selection for c in range(r.left(), r.right() + 1)})
        names = [self._model.column_names()[c] for c in columns]
        frame = self._model.view_frame(top, bottom - top + 1).select(names)
        frame = frame.select([pl.col(n).cast(pl.String) if _searchable(frame.schema[n])
                              else pl.lit(_text_series(frame.get_column(n))) for n in names])
        text = frame.write_csv(separator="\t", include_header=False).rstrip("\n")
        QtGui.QGuiApplication.clipboard().setText(text)
        return text

    # ---------------------------------------------------------------------------------- internals

    def _try_filter(self, column: str | None, text: str) -> str | None:
        frame = self._model.frame()
        if frame is None:
            return tr("There is no table to filter.")
        label = column if column is not None else tr("All columns")
        try:
            self._model.set_filter(build_filter(frame.schema, column, text))
        except FilterError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a polars failure must not escape the widget
            return tr("Can't filter “{column}”: {error}", column=label, error=_short_error(exc))
        return None

    def _fill_column_box(self) -> None:
        box = self._column_box
        box.blockSignals(True)
        box.clear()
        box.addItem(tr("All columns"), None)
        for name in self._model.column_names():
            box.addItem(name, name)
        box.blockSignals(False)
        self._update_placeholder()

    def _sync_bar(self, column: str | None, text: str) -> None:
        position = self._column_box.findData(column) if column is not None else 0
        if position >= 0 and position != self._column_box.currentIndex():
            self._column_box.blockSignals(True)
            self._column_box.setCurrentIndex(position)
            self._column_box.blockSignals(False)
            self._update_placeholder()
        if self._filter_edit.text() != text:
            self._filter_edit.setText(text)

    def _update_placeholder(self) -> None:
        column = self._column_box.currentData()
        frame = self._model.frame()
        if column is not None and frame is not None and frame.schema[column].is_numeric():
            hint = tr("e.g. > 5, <= 0.3, != 1, between 1 and 5, 1..5 — or text to find")
        else:
            hint = tr("Text to find (case-insensitive)")
        self._filter_edit.setPlaceholderText(hint)

    def _apply_filter_from_bar(self) -> None:
        self.apply_filter(self._column_box.currentData(), self._filter_edit.text())

    def _clear_filter_from_bar(self) -> None:
        self.apply_filter(self._column_box.currentData(), "")

    def _on_column_changed(self, _index: int) -> None:
        self._update_placeholder()
        self._apply_filter_from_bar()

    def _focus_filter(self) -> None:
        self._filter_edit.setFocus(QtCore.Qt.FocusReason.ShortcutFocusReason)
        self._filter_edit.selectAll()

    def _on_header_clicked(self, section: int) -> None:
        """Cycle ascending → descending → original order, from the model's state (not the header's, which a
        real mouse click may already have flipped)."""
        names = self._model.column_names()
        if not 0 <= section < len(names):
            return
        state = self._model.sort_state()
        if state is None or state[0] != names[section]:
            self.sort_by(names[section])
        elif not state[1]:
            self.sort_by(names[section], descending=True)
        else:
            self.clear_sort()

    def _sync_sort_indicator(self) -> None:
        header = self._view.horizontalHeader()
        state = self._model.sort_state()
        header.blockSignals(True)
        if state is None:
            header.setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
        else:
            order = QtCore.Qt.SortOrder.DescendingOrder if state[1] else QtCore.Qt.SortOrder.AscendingOrder
            header.setSortIndicator(self._model.column_names().index(state[0]), order)
        header.blockSignals(False)
        header.viewport().update()

    def _show_error(self, message: str | None) -> None:
        self._error.setText(message or "")
        self._error.setVisible(bool(message))
        self._filter_edit.setStyleSheet("QLineEdit { border: 1px solid #c62828; }" if message else "")
        self.filterError.emit(message or "")

    def _update_status(self) -> None:
        shown, total = self._model.rowCount(), self._model.total_rows()
        if self._model.frame() is None:
            self._status.clear()
        else:
            self._status.setText(tr("Showing {shown} of {total} rows · {cols} columns", shown=_count(shown),
                                    total=_count(total), cols=_count(self._model.columnCount())))
        self.viewChanged.emit(shown, total)

    def _fit_columns(self, samples: int = 40, min_width: int = 48, max_width: int = 360) -> None:
        """Initial widths from the header and a sample of rows spread over the whole table, plus each numeric
        column's min and max (sizing to all contents of 1M rows would stall; the first rows alone mislead)."""
        frame = self._model.frame()
        if frame is None or frame.width == 0:
            return
        header = self._view.horizontalHeader()
        header_metrics = QtGui.QFontMetrics(header.font())
        cell_metrics = self._view.fontMetrics()
        sample = frame.gather_every(max(1, frame.height // samples)).head(samples).vstack(frame.tail(1))
        lows, highs = frame.select(cs.numeric().min()), frame.select(cs.numeric().max())
        for column, name in enumerate(frame.columns):
            values = sample.get_column(name).to_list()
            if name in lows.columns:
                values += [lows.item(0, name), highs.item(0, name)]
            texts = [format_value(v) for v in values if v is not None]
            width = max([header_metrics.horizontalAdvance(name) + 28]  # room for the sort arrow
                        + [cell_metrics.horizontalAdvance(text) + 16 for text in texts])
            header.resizeSection(column, max(min_width, min(width, max_width)))


def _text_series(series: pl.Series) -> pl.Series:
    """Display text of a nested/binary column, which polars can't cast to String (rare; goes through Python)."""
    return pl.Series(series.name, [None if v is None else format_value(v) for v in series.to_list()], pl.String)


def _short_error(exc: BaseException) -> str:
    """First line of an exception message: polars errors carry long hints that don't fit a status bar."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
