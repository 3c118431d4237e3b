"""The data viewer on real polars frames: cells, header sorting, filters, stats tooltips, and a 1,000,000-row frame."""
from __future__ import annotations

import polars as pl
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.viewers.data_view import DataViewer, TableModel, build_filter, format_float

N_BIG = 1_000_000
DISPLAY = QtCore.Qt.ItemDataRole.DisplayRole
TOOLTIP = QtCore.Qt.ItemDataRole.ToolTipRole


@pytest.fixture
def small() -> pl.DataFrame:
    return pl.DataFrame({
        "id": [10, 20, 30, 40, 50, 60],
        "amount": [2.5, None, -1.0, 0.1 + 0.2, 1234.56789, 7.0],
        "city": ["Paris", "Berlin", None, "paris", "Rome", "Paris"],
        "flag": [True, False, True, None, True, False],
    })


@pytest.fixture(scope="module")
def big() -> pl.DataFrame:
    """int, float, string and null values; built with polars expressions (no Python loop)."""
    i = pl.int_range(0, N_BIG, dtype=pl.Int64)
    return pl.select(
        id=i,
        value=pl.when(i % 10 == 3).then(None).otherwise(i.cast(pl.Float64) * 0.5),
        name=pl.format("row-{}", i),
        bucket=pl.when(i % 13 == 0).then(None).otherwise(i % 7),
    )


@pytest.fixture
def viewer(qtbot) -> DataViewer:
    widget = DataViewer()
    qtbot.addWidget(widget)
    return widget


def cell(viewer: DataViewer, row: int, column: int, role: int = DISPLAY):
    model = viewer.model()
    return model.data(model.index(row, column), role)


def column(viewer: DataViewer, col: int) -> list[str]:
    return [cell(viewer, r, col) for r in range(viewer.model().rowCount())]


def row_numbers(viewer: DataViewer) -> list[str]:
    model = viewer.model()
    return [model.headerData(r, QtCore.Qt.Orientation.Vertical, DISPLAY) for r in range(model.rowCount())]


# ------------------------------------------------------------------------------------------------ cells

def test_cells_format_numbers_nulls_and_alignment(viewer, small):
    viewer.set_table(small, title="Customers")
    model = viewer.model()
    assert isinstance(model, TableModel)
    assert (model.rowCount(), model.columnCount()) == (6, 4)
    assert viewer.status_text() == "Showing 6 of 6 rows · 4 columns"
    assert column(viewer, 0) == ["10", "20", "30", "40", "50", "60"]
    assert column(viewer, 1) == ["2.5", "null", "-1", "0.3", "1234.57", "7"]
    assert column(viewer, 3) == ["true", "false", "true", "null", "true", "false"]
    assert cell(viewer, 2, 2) == "null"
    # the exact float is one hover away; nulls are greyed and italic, not plain text
    assert cell(viewer, 3, 1, TOOLTIP) == "0.30000000000000004"
    assert cell(viewer, 1, 1, QtCore.Qt.ItemDataRole.FontRole).italic()
    null_brush = cell(viewer, 1, 1, QtCore.Qt.ItemDataRole.ForegroundRole)
    assert null_brush.color() == QtGui.QGuiApplication.palette().color(QtGui.QPalette.ColorRole.PlaceholderText)
    assert cell(viewer, 0, 1, QtCore.Qt.ItemDataRole.ForegroundRole) is None
    align = QtCore.Qt.ItemDataRole.TextAlignmentRole
    assert cell(viewer, 0, 1, align) & QtCore.Qt.AlignmentFlag.AlignRight
    assert cell(viewer, 0, 2, align) & QtCore.Qt.AlignmentFlag.AlignLeft
    assert row_numbers(viewer) == ["1", "2", "3", "4", "5", "6"]
    assert model.headerData(2, QtCore.Qt.Orientation.Horizontal, DISPLAY) == "city"


def test_format_float_keeps_six_significant_digits():
    values = (0.1 + 0.2, 0.123456789, 1234.56789, 1234567.891, 499999.5, 1e-7, 100.0, -0.0001, 1e20, float("nan"))
    assert [format_float(v) for v in values] == \
        ["0.3", "0.123457", "1234.57", "1234567.89", "499999.5", "1e-07", "100", "-0.0001", "1e+20", "NaN"]


def test_view_settings_keep_big_tables_cheap(viewer):
    view = viewer.table_view()
    assert not view.wordWrap()
    assert view.verticalHeader().sectionResizeMode(0) == view.verticalHeader().ResizeMode.Fixed


# ------------------------------------------------------------------------------------------------ sorting

def test_header_click_cycles_ascending_descending_original(viewer, small):
    viewer.set_table(small)
    header = viewer.table_view().horizontalHeader()

    header.sectionClicked.emit(1)  # amount ascending, null last
    assert column(viewer, 1) == ["-1", "0.3", "2.5", "7", "1234.57", "null"]
    assert row_numbers(viewer) == ["3", "4", "1", "6", "5", "2"]
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (1, QtCore.Qt.SortOrder.AscendingOrder)

    header.sectionClicked.emit(1)  # descending, null still last
    assert column(viewer, 1) == ["1234.57", "7", "2.5", "0.3", "-1", "null"]
    assert row_numbers(viewer) == ["5", "6", "1", "4", "3", "2"]
    assert header.sortIndicatorOrder() == QtCore.Qt.SortOrder.DescendingOrder

    header.sectionClicked.emit(1)  # back to the table's own order
    assert row_numbers(viewer) == ["1", "2", "3", "4", "5", "6"]
    assert viewer.model().sort_state() is None

    header.sectionClicked.emit(2)  # strings: ties keep their original order
    assert column(viewer, 2) == ["Berlin", "Paris", "Paris", "Rome", "paris", "null"]
    assert row_numbers(viewer) == ["2", "1", "6", "5", "4", "3"]


def test_real_mouse_click_on_header_sorts(viewer, small, qtbot):
    viewer.set_table(small)
    viewer.resize(800, 400)
    viewer.show()
    qtbot.waitExposed(viewer)
    header = viewer.table_view().horizontalHeader()
    at = QtCore.QPoint(header.sectionViewportPosition(0) + header.sectionSize(0) // 2, header.height() // 2)

    qtbot.mouseClick(header.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=at)
    assert viewer.model().sort_state() == ("id", False)
    qtbot.mouseClick(header.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=at)
    assert viewer.model().sort_state() == ("id", True)
    assert column(viewer, 0) == ["60", "50", "40", "30", "20", "10"]
    assert header.sortIndicatorOrder() == QtCore.Qt.SortOrder.DescendingOrder


def test_sort_by_reports_unknown_column(viewer, small):
    viewer.set_table(small)
    assert "nope" in viewer.sort_by("nope")
    assert viewer.sort_by("id", descending=True) is None
    assert column(viewer, 0)[0] == "60"


# ------------------------------------------------------------------------------------------------ filtering

@pytest.mark.parametrize(("text", "ids"), [
    ("> 5", ["50", "60"]),
    (">=2.5", ["10", "50", "60"]),
    ("<= 0.3", ["30", "40"]),
    ("= 7", ["60"]),
    ("= 0.3", ["40"]),  # 0.1 + 0.2 is shown as 0.3, so "= 0.3" finds it
    ("== -1", ["30"]),
    ("!= 2.5", ["30", "40", "50", "60"]),  # null is not "different from 2.5": it is unknown
    ("between 0 and 7", ["10", "40", "60"]),
    ("BETWEEN 7 AND 0", ["10", "40", "60"]),  # reversed bounds are read as the same range
    ("-1..2.5", ["10", "30", "40"]),
    ("1,000..2,000", ["50"]),  # thousands separators
    ("234.5", ["50"]),  # no operator: a text search, also on numeric columns
])
def test_numeric_filters(viewer, small, text, ids):
    viewer.set_table(small)
    assert viewer.apply_filter("amount", text) is None
    assert column(viewer, 0) == ids
    assert viewer.status_text() == f"Showing {len(ids)} of 6 rows · 4 columns"


def test_integer_filter_compares_exactly(viewer, small):
    viewer.set_table(small)
    assert viewer.apply_filter("id", "between 20 and 40") is None
    assert column(viewer, 0) == ["20", "30", "40"]
    assert viewer.apply_filter("id", "3") is None  # contains "3" as text
    assert column(viewer, 0) == ["30"]


def test_text_filters_are_case_insensitive_contains(viewer, small):
    viewer.set_table(small)
    assert viewer.apply_filter("city", "PAR") is None
    assert column(viewer, 2) == ["Paris", "paris", "Paris"]
    assert row_numbers(viewer) == ["1", "4", "6"]
    assert viewer.apply_filter(None, "rom") is None  # all columns
    assert column(viewer, 0) == ["50"]
    assert viewer.apply_filter(None, "true") is None  # booleans search as true/false
    assert column(viewer, 0) == ["10", "30", "50"]
    assert viewer.apply_filter(None, "") is None  # empty text clears the filter
    assert viewer.model().rowCount() == 6


def test_filter_and_sort_compose(viewer, small):
    viewer.set_table(small)
    header = viewer.table_view().horizontalHeader()
    header.sectionClicked.emit(1)
    header.sectionClicked.emit(1)  # amount descending
    assert viewer.apply_filter("city", "paris") is None  # the sort stays
    assert column(viewer, 1) == ["7", "2.5", "0.3"]
    assert row_numbers(viewer) == ["6", "1", "4"]
    header.sectionClicked.emit(0)  # re-sort keeps the filter
    assert column(viewer, 0) == ["10", "40", "60"]
    assert viewer.status_text() == "Showing 3 of 6 rows · 4 columns"
    viewer.apply_filter("city", "")
    assert column(viewer, 0) == ["10", "20", "30", "40", "50", "60"]


def test_bad_expression_shows_message_and_keeps_previous_result(viewer, small):
    viewer.set_table(small)
    assert viewer.apply_filter("amount", "> 2") is None
    before = column(viewer, 0)
    message = viewer.apply_filter("amount", "> abc")
    assert message == "Filter on “amount”: “abc” is not a number (after “>”)."
    assert viewer.error_text() == message
    assert column(viewer, 0) == before
    assert viewer.status_text() == "Showing 3 of 6 rows · 4 columns"

    assert "needs a number" in viewer.apply_filter("amount", "<=")
    assert "between 1 and 5" in viewer.apply_filter("amount", "between 1")
    assert "both ends" in viewer.apply_filter("amount", "..5")
    assert "“x”" in viewer.apply_filter("amount", "1..x")
    assert "no column “nope”" in viewer.apply_filter("nope", "1")
    assert column(viewer, 0) == before

    assert viewer.apply_filter("amount", "> 0") is None  # a valid filter clears the message
    assert viewer.error_text() == ""


def test_typing_in_the_bar_filters(viewer, small, qtbot):
    viewer.set_table(small)
    viewer.show()
    combo = viewer.findChild(QtWidgets.QComboBox)
    edit = viewer.findChild(QtWidgets.QLineEdit)
    combo.setCurrentIndex(combo.findText("amount"))
    qtbot.keyClicks(edit, "> 2")
    qtbot.keyClick(edit, QtCore.Qt.Key.Key_Return)
    assert column(viewer, 0) == ["10", "50", "60"]
    combo.setCurrentIndex(combo.findText("city"))  # same text, other column: a text search now
    assert viewer.model().rowCount() == 0
    combo.setCurrentIndex(0)
    assert combo.currentText() == "All columns"


def test_build_filter_is_plain_polars(small):
    assert build_filter(small.schema, "amount", "  ") is None
    assert small.filter(build_filter(small.schema, "amount", "1..3"))["id"].to_list() == [10]


# ------------------------------------------------------------------------------------------------ stats

def test_header_tooltip_stats(viewer, small):
    viewer.set_table(small)
    model = viewer.model()
    assert model.headerData(1, QtCore.Qt.Orientation.Horizontal, TOOLTIP) == viewer.column_tooltip("amount")
    assert viewer.column_tooltip("amount").splitlines() == [
        "amount", "Type: Float64", "Count: 5", "Nulls: 1", "Unique: 5",
        "Min: -1", "Max: 1234.57", "Mean: 248.674", "Std: 551.14",
    ]
    assert viewer.column_tooltip("id").splitlines() == [
        "id", "Type: Int64", "Count: 6", "Nulls: 0", "Unique: 6",
        "Min: 10", "Max: 60", "Mean: 35", "Std: 18.7083",
    ]
    assert viewer.column_tooltip("city").splitlines() == [
        "city", "Type: String", "Count: 5", "Nulls: 1", "Unique: 4",
        "Top values:", "  Paris (2)", "  Berlin (1)", "  Rome (1)",
    ]
    viewer.apply_filter("city", "rome")  # stats describe the whole table, not the filtered view
    assert "Count: 5" in viewer.column_tooltip("city")


def test_stats_are_computed_once_per_column(viewer, small):
    viewer.set_table(small)
    model = viewer.model()
    assert model.column_stats("amount") is model.column_stats("amount")
    viewer.set_table(small.head(2))
    assert model.column_stats("amount").count == 1


# ------------------------------------------------------------------------------------------------ empty state

def test_empty_state(viewer, small):
    assert viewer.empty_text() == "Select a node with a table output and run it to see its data here."
    assert viewer.model().rowCount() == 0 and viewer.model().columnCount() == 0
    assert viewer.apply_filter(None, "x") == "There is no table to filter."
    viewer.set_table(small)
    assert viewer.empty_text() == ""
    viewer.set_table(None)
    assert viewer.empty_text() != "" and viewer.status_text() == ""


def test_zero_row_table_shows_headers(viewer, small):
    viewer.set_table(small.clear())
    assert viewer.empty_text() == ""
    assert viewer.status_text() == "Showing 0 of 0 rows · 4 columns"
    assert viewer.apply_filter("amount", "> 1") is None


# ------------------------------------------------------------------------------------------------ copy

def test_copy_selection_as_tsv(viewer, small):
    viewer.set_table(small)
    view = viewer.table_view()
    model = viewer.model()
    selection = QtCore.QItemSelection(model.index(0, 0), model.index(2, 1))
    view.selectionModel().select(selection, QtCore.QItemSelectionModel.SelectionFlag.ClearAndSelect)
    assert viewer.copy_selection() == "10\t2.5\n20\t\n30\t-1.0"
    assert QtGui.QGuiApplication.clipboard().text() == "10\t2.5\n20\t\n30\t-1.0"


# ------------------------------------------------------------------------------------------------ 1M rows

def test_million_rows(viewer, big):
    viewer.set_table(big, title="big")
    model = viewer.model()
    assert model.rowCount() == N_BIG
    assert viewer.status_text() == "Showing 1,000,000 of 1,000,000 rows · 4 columns"
    assert [cell(viewer, 999_999, c) for c in range(4)] == ["999999", "499999.5", "row-999999", "null"]
    assert cell(viewer, 500_003, 1) == "null"
    assert model.headerData(999_999, QtCore.Qt.Orientation.Vertical, DISPLAY) == "1000000"
    assert cell(viewer, 0, 3) == "null" and cell(viewer, 1, 3) == "1" and cell(viewer, 999_998, 3) == "6"


def test_million_rows_sort_and_filter(viewer, big):
    viewer.set_table(big)
    header = viewer.table_view().horizontalHeader()
    header.sectionClicked.emit(1)
    header.sectionClicked.emit(1)  # value descending: the largest non-null first, all nulls at the end
    assert cell(viewer, 0, 1) == "499999.5" and row_numbers_at(viewer, 0) == "1000000"
    assert cell(viewer, 1, 1) == "499999" and row_numbers_at(viewer, 1) == "999999"
    assert cell(viewer, 899_999, 1) == "0"
    assert cell(viewer, 900_000, 1) == "null" and row_numbers_at(viewer, 900_000) == "4"  # nulls keep their order
    assert cell(viewer, 999_999, 0) == "999993"

    assert viewer.apply_filter("bucket", "between 5 and 6") is None
    expected = big.filter(pl.col("bucket").is_between(5, 6)).height
    assert viewer.model().rowCount() == expected
    assert viewer.status_text() == f"Showing {expected:,} of 1,000,000 rows · 4 columns"
    assert cell(viewer, 0, 0) == "999998"  # still sorted by value descending (999999's bucket is null)
    assert set(column_sample(viewer, 3, 500)) <= {"5", "6"}

    assert viewer.apply_filter("name", "row-99999") is None  # 99999 and 999990..999999
    assert viewer.model().rowCount() == 11
    assert column(viewer, 2)[-2:] == ["row-99999", "row-999993"]  # smallest value, then the null value
    assert viewer.apply_filter("value", "> x") is not None
    assert viewer.model().rowCount() == 11


def row_numbers_at(viewer: DataViewer, row: int) -> str:
    return viewer.model().headerData(row, QtCore.Qt.Orientation.Vertical, DISPLAY)


def column_sample(viewer: DataViewer, col: int, n: int) -> list[str]:
    return [cell(viewer, r, col) for r in range(min(n, viewer.model().rowCount()))]
