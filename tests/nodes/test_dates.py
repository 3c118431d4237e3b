"""Date parts: every part against Python's datetime, mixed text formats, bad values, days_since, nulls."""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from engine.testing import NodeFailed, run_node
from nodes.features.dates import DateParts, default_formats

MOMENTS = [datetime(2024, 2, 29, 23, 59, 59), datetime(2023, 12, 31, 0, 0), datetime(2021, 1, 3, 7, 30),
           datetime(1999, 6, 15, 12, 0), datetime(2024, 3, 31, 1, 2, 3), datetime(2025, 1, 4, 18, 0)]
ALL_PARTS = ["year", "quarter", "month", "day", "weekday", "day_of_year", "week", "hour", "is_weekend",
             "is_month_end", "days_since", "date", "datetime"]
REFERENCE = date(2025, 6, 30)


def expected_part(moment: datetime, part: str, reference: date = REFERENCE) -> object:
    """The part computed with Python's datetime only (the independent reference)."""
    day = moment.date()
    return {
        "year": moment.year, "quarter": (moment.month - 1) // 3 + 1, "month": moment.month, "day": moment.day,
        "weekday": moment.isoweekday(), "day_of_year": day.timetuple().tm_yday, "week": day.isocalendar()[1],
        "hour": moment.hour, "is_weekend": moment.isoweekday() >= 6,
        "is_month_end": moment.day == calendar.monthrange(moment.year, moment.month)[1],
        "days_since": (reference - day).days, "date": day, "datetime": moment,
    }[part]


def parts(table: pl.DataFrame, **settings) -> pl.DataFrame:
    return run_node(DateParts, {"table": table}, settings)["table"]


def fails(table: pl.DataFrame, **settings) -> str:
    with pytest.raises(NodeFailed) as info:
        parts(table, **settings)
    assert info.value.input_error, str(info.value)
    return str(info.value)


@pytest.mark.parametrize("kind", ["datetime", "date", "text"])
def test_every_part_matches_python_datetime(kind):
    moments = MOMENTS if kind != "date" else [datetime.combine(m.date(), datetime.min.time()) for m in MOMENTS]
    column = {"datetime": pl.Series("t", moments),
              "date": pl.Series("t", [m.date() for m in moments]),
              "text": pl.Series("t", [m.strftime("%Y-%m-%d %H:%M:%S") for m in moments])}[kind]
    out = parts(pl.DataFrame([column]), columns=["t"], parts=ALL_PARTS, reference=REFERENCE.isoformat())
    for part in ALL_PARTS:
        assert out[f"t_{part}"].to_list() == [expected_part(m, part) for m in moments], part
    assert out["t_year"].dtype == pl.Int32 and out["t_is_weekend"].dtype == pl.Boolean


def test_mixed_formats_in_one_text_column_including_chinese():
    values = ["2024-03-05", "2024/03/06", "20240307", "2024年3月8日", "2024年03月09日", "03/10/2024",
              "2024-03-11 08:15:00", "2024-03-12T23:00:00Z", "2024-03-12T23:30:00.250+08:00", " 2024-03-14 "]
    out = parts(pl.DataFrame({"d": values}), columns=["d"], parts=["datetime"])
    assert out["d_datetime"].to_list() == [
        datetime(2024, 3, 5), datetime(2024, 3, 6), datetime(2024, 3, 7), datetime(2024, 3, 8),
        datetime(2024, 3, 9), datetime(2024, 3, 10), datetime(2024, 3, 11, 8, 15), datetime(2024, 3, 12, 23),
        datetime(2024, 3, 12, 15, 30, 0, 250000), datetime(2024, 3, 14)]


def test_day_first_decides_the_ambiguous_slash_form():
    table = pl.DataFrame({"d": ["03/04/2024", "12/01/2024"]})
    month_first = parts(table, columns=["d"], parts=["month", "day"])
    assert month_first["d_month"].to_list() == [3, 12] and month_first["d_day"].to_list() == [4, 1]
    day_first = parts(table, columns=["d"], parts=["month", "day"], day_first=True)
    assert day_first["d_month"].to_list() == [4, 1] and day_first["d_day"].to_list() == [3, 12]
    assert "%d/%m/%Y" in default_formats(True) and "%m/%d/%Y" not in default_formats(True)
    # a day > 12 is not silently read the other way round
    assert "13/04/2024" in fails(pl.DataFrame({"d": ["13/04/2024"]}), columns=["d"], parts=["day"])


def test_own_formats_replace_the_built_in_list():
    table = pl.DataFrame({"d": ["05.03.2024", "2024-03-06"]})
    out = parts(table, columns=["d"], parts=["day"], formats=["%d.%m.%Y", "%Y-%m-%d"])
    assert out["d_day"].to_list() == [5, 6]
    message = fails(table, columns=["d"], parts=["day"], formats=["%d.%m.%Y"])
    assert "row 2: '2024-03-06'" in message


def test_unparsed_values_are_an_error_with_rows_values_and_formats():
    values = ["2024-01-01", "31/31/2024", None, "soon", "2024-02-30", "", "n/a", "2024-05-01"]
    message = fails(pl.DataFrame({"opened": values}), columns=["opened"], parts=["year"])
    assert "'opened'" in message and "4 value(s)" in message
    assert "row 2: '31/31/2024'" in message and "row 4: 'soon'" in message and "row 5: '2024-02-30'" in message
    assert "n/a" not in message  # only the first three are quoted
    assert "%Y-%m-%d" in message and "%Y年%m月%d日" in message


def test_unparsed_values_can_become_null():
    table = pl.DataFrame({"opened": ["2024-01-01", "soon", None, "2024-05-01"]})
    out = parts(table, columns=["opened"], parts=["month"], on_unparsed="null")
    assert out["opened_month"].to_list() == [1, None, None, 5]


def test_nulls_stay_null_in_every_part():
    table = pl.DataFrame({"d": [date(2024, 1, 31), None], "s": [None, "  "], "ref": [date(2024, 2, 1), None]})
    out = parts(table, columns=["d", "s"], parts=ALL_PARTS, reference_column="ref")
    for part in ALL_PARTS:
        assert out[f"d_{part}"][1] is None and out[f"s_{part}"].to_list() == [None, None], part
    assert out["d_days_since"][0] == 1


def test_days_since_a_reference_date_and_a_reference_column():
    table = pl.DataFrame({
        "opened": ["2020-01-15", "2023/12/31", "2024年2月29日"],
        "applied": [datetime(2024, 3, 1, 9), datetime(2024, 1, 1, 0), datetime(2024, 2, 28, 23)],
    })
    fixed = parts(table, columns=["opened"], parts=["days_since"], reference="2024-03-01")
    assert fixed["opened_days_since"].to_list() == [
        (date(2024, 3, 1) - date(2020, 1, 15)).days, (date(2024, 3, 1) - date(2023, 12, 31)).days, 1]
    per_row = parts(table, columns=["opened"], parts=["days_since"], reference_column="applied")
    assert per_row["opened_days_since"].to_list() == [(date(2024, 3, 1) - date(2020, 1, 15)).days, 1, -1]
    text_ref = parts(table.with_columns(pl.col("applied").dt.strftime("%Y%m%d")), columns=["opened"],
                     parts=["days_since"], reference_column="applied")
    assert text_ref["opened_days_since"].to_list() == per_row["opened_days_since"].to_list()


def test_days_since_needs_one_valid_reference():
    table = pl.DataFrame({"d": [date(2024, 1, 1)], "r": [date(2024, 1, 2)]})
    assert "Reference" in fails(table, columns=["d"], parts=["days_since"])
    assert "not both" in fails(table, columns=["d"], parts=["days_since"], reference="2024-01-01",
                               reference_column="r")
    assert "'2024-13-01'" in fails(table, columns=["d"], parts=["days_since"], reference="2024-13-01")
    assert "'nope'" in fails(table, columns=["d"], parts=["days_since"], reference_column="nope")
    assert parts(table, columns=["d"], parts=["year"])["d_year"].to_list() == [2024]  # no reference needed


def test_drop_original_and_integer_dates():
    table = pl.DataFrame({"id": [1, 2], "d": [20240305, 20231231]})
    out = parts(table, columns=["d"], parts=["year", "is_month_end"], drop_original=True)
    assert out.columns == ["id", "d_year", "d_is_month_end"]
    assert out["d_year"].to_list() == [2024, 2023] and out["d_is_month_end"].to_list() == [False, True]


def test_time_zone_aware_datetimes_use_their_own_zone():
    utc = pl.Series("t", [datetime(2024, 3, 31, 20, 0)]).dt.replace_time_zone("UTC")
    out = parts(pl.DataFrame([utc.dt.convert_time_zone("Asia/Shanghai")]), columns=["t"],
                parts=["day", "hour", "month"])
    assert out.row(0)[1:] == (1, 4, 4)  # 2024-04-01 04:00 in Shanghai


def test_bad_columns_and_formats():
    table = pl.DataFrame({"amount": [1.5], "d": ["2024-01-01"]})
    assert "'nope'" in fails(table, columns=["nope"], parts=["year"])
    assert "Float64" in fails(table, columns=["amount"], parts=["year"])
    assert "%Q" in fails(table, columns=["d"], parts=["year"], formats=["%Q-%m"])


def test_many_rows_parse_without_a_python_loop():
    days = [date(2000, 1, 1) + timedelta(days=i) for i in range(0, 20000, 3)]
    text = pl.Series("d", [d.strftime("%Y年%m月%d日") if i % 2 else d.isoformat() for i, d in enumerate(days)])
    out = parts(pl.DataFrame([text]), columns=["d"], parts=["date"])
    assert out["d_date"].to_list() == days
