"""Date parts: year, month, weekday, days since a reference... from date, datetime or text columns.

Bank extracts often hold one date column written several ways ("2024-03-05", "2024/3/5", "20240305",
"2024年3月5日"). Each text value is tried with every format, vectorised (one polars `strptime` per format, the first
that fits wins), so a mixed column parses in a few passes instead of a Python loop per row. Values no format reads
are an error listing the first few with their rows, because silently turning them into nulls would hide a format
the analyst did not know about; `on_unparsed = "null"` accepts that loss explicitly (with a log warning).

Ambiguity: "03/04/2024" fits both day/month/year and month/day/year. The built-in list holds only one of the two,
chosen by `day_first` (off, the default: March 4; on: 3 April), so a column is never read half one way and half
the other; "13/04/2024" with `day_first` off is then a bad value, not a silent switch of convention. Empty or blank text counts as missing, not as a bad value. Integer columns (20240305) are read
as text with the same formats.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.columns import require_columns

Part = Literal["year", "quarter", "month", "day", "weekday", "day_of_year", "week", "hour", "is_weekend",
               "is_month_end", "days_since", "date", "datetime"]
OnUnparsed = Literal["error", "null"]
SHOWN_BAD = 3  # bad values quoted in the error message

_YEAR_FIRST = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日"]
_WITH_TIME = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S",
              "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y年%m月%d日 %H:%M:%S"]


def default_formats(day_first: bool) -> list[str]:
    """The formats tried when none are set: year-first forms, one slash form per `day_first`, ISO with T/Z."""
    slash = ["%d/%m/%Y", "%d.%m.%Y"] if day_first else ["%m/%d/%Y"]
    return [*_YEAR_FIRST, *slash, *_WITH_TIME]


def parse_datetimes(values: pl.Series, formats: Sequence[str]) -> pl.Series:
    """Text -> Datetime("us"): each value by the first format that reads it, null where none does or it is empty.

    Each format only sees the values the earlier ones left unread, so a column in one format costs one pass.
    Formats with a UTC offset (%z) give the UTC wall time, so offset and naive values share one naive column.
    Raises NodeInputError naming a format polars rejects.
    """
    text = values.cast(pl.String).str.strip_chars()
    result = pl.Series(values.name, [None] * len(text), dtype=pl.Datetime("us"))
    todo = (text.is_not_null() & (text != "")).arg_true()
    for fmt in formats:
        if todo.len() == 0:
            break
        parsed = _strptime(text.gather(todo), fmt)
        hit = parsed.is_not_null()
        result = result.scatter(todo.filter(hit), parsed.filter(hit))
        todo = todo.filter(~hit)
    return result


def _strptime(text: pl.Series, fmt: str) -> pl.Series:
    try:
        parsed = text.str.strptime(pl.Datetime("us"), fmt, strict=False)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise NodeInputError(tr("Formats: {fmt!r} is not a usable date format: {error}", fmt=fmt,
                                error=str(exc).splitlines()[0])) from None
    if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed.cast(pl.Datetime("us"))


def to_datetime(column: pl.Series, formats: Sequence[str], on_unparsed: OnUnparsed,
                warn: Callable[[str], None]) -> pl.Series:
    """A Date/Datetime/text/integer column as a Datetime column (dates become midnight); others are an error."""
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        return column
    if isinstance(dtype, pl.Date):
        return column.cast(pl.Datetime("us"))
    if not (dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum) or dtype.is_integer()):
        raise NodeInputError(tr("Columns: {col!r} is {dtype}; date parts need a date, datetime or text column",
                                col=column.name, dtype=dtype))
    parsed = parse_datetimes(column, formats)
    text = column.cast(pl.String).str.strip_chars()
    bad = (parsed.is_null() & text.is_not_null() & (text != "")).arg_true()
    if bad.len():
        examples = ", ".join(tr("row {row}: {value!r}", row=int(i) + 1, value=text[int(i)])
                             for i in bad.head(SHOWN_BAD))
        if on_unparsed == "error":
            raise NodeInputError(tr(
                "Column {col!r}: {n} value(s) match none of the date formats, e.g. {examples}. Formats tried: "
                "{formats}. Add the missing format under Formats, or set 'Values no format reads' to null",
                col=column.name, n=bad.len(), examples=examples, formats=", ".join(formats)))
        warn(tr("Column {col!r}: {n} value(s) match none of the date formats and became null, e.g. {examples}",
                col=column.name, n=bad.len(), examples=examples))
    return parsed


def _reference_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise NodeInputError(tr("Reference date: {value!r} is not an ISO date like 2024-03-31",
                                value=text)) from None


def part_expr(part: str, value: pl.Expr, reference: pl.Expr | None) -> pl.Expr:
    """One part of a Datetime expression; integer parts are Int32 so later arithmetic does not overflow Int8."""
    day = value.dt.date()
    exprs: dict[str, Callable[[], pl.Expr]] = {
        "year": value.dt.year, "quarter": value.dt.quarter, "month": value.dt.month, "day": value.dt.day,
        "weekday": value.dt.weekday, "day_of_year": value.dt.ordinal_day, "week": value.dt.week,
        "hour": value.dt.hour,
        "is_weekend": lambda: value.dt.weekday() >= 6,
        "is_month_end": lambda: day == day.dt.month_end(),
        "date": lambda: day,
        "datetime": lambda: value,
    }
    if part == "days_since":
        assert reference is not None
        return (reference - day).dt.total_days().cast(pl.Int32)
    out = exprs[part]()
    return out if part in ("is_weekend", "is_month_end", "date", "datetime") else out.cast(pl.Int32)


class DatePartsSettings(NodeSettings):
    columns: list[str] = Field(min_length=1, title=N_("Columns"),
                               description=N_("Date, datetime or text columns (text is parsed with the formats)"))
    parts: list[Part] = Field(default_factory=lambda: ["year", "month", "day", "weekday"], min_length=1,
                              title=N_("Parts"), description=N_(
            "weekday: 1 = Monday … 7 = Sunday; week: ISO week; days_since: days from the date to the reference "
            "(positive when the date is earlier); date/datetime: the parsed value itself"))
    reference: str | None = Field(None, title=N_("Reference date"), description=N_(
        "For days_since: an ISO date such as 2024-03-31; empty: the reference column"))
    reference_column: str | None = Field(None, title=N_("Reference column"), description=N_(
        "For days_since per row, e.g. the application date"), json_schema_extra={"widget": "column"})
    formats: list[str] = Field(default_factory=list, title=N_("Formats"), description=N_(
        "strptime formats tried in order for text, e.g. %Y-%m-%d, %Y年%m月%d日; empty: a built-in list "
        "(year-first forms, ISO with T/Z, and %d/%m/%Y or %m/%d/%Y by 'Day first')"))
    day_first: bool = Field(False, title=N_("Day first"), description=N_(
        "Read 03/04/2024 as 3 April (on) or March 4 (off) with the built-in formats"))
    drop_original: bool = Field(False, title=N_("Drop the original columns"))
    on_unparsed: OnUnparsed = Field("error", title=N_("Values no format reads"), description=N_(
        "error: stop and list them; null: make them missing (logged)"))


@node("features.date_parts", version=1, title=N_("Date parts"), category=N_("Features"), icon="calendar")
class DateParts(Node):
    """Add year, month, weekday, days-since and other parts of date columns, parsing text dates in many formats."""

    inputs: ClassVar[dict[str, Any]] = {"table": Table}
    outputs: ClassVar[dict[str, Any]] = {"table": Table}
    Settings = DatePartsSettings

    def compute(self, inputs: dict, settings: DatePartsSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        require_columns(table, settings.columns, tr("Columns"))
        formats = settings.formats or default_formats(settings.day_first)

        def parse(col: str) -> pl.Series:
            return to_datetime(table.get_column(col), formats, settings.on_unparsed, ctx.log.warning)

        reference = self._reference(table, settings, parse)
        new: list[pl.Series] = []
        for col in dict.fromkeys(settings.columns):
            ctx.check_cancelled()
            frame = pl.DataFrame([parse(col).alias("v")])
            ref: pl.Expr | None = None
            if isinstance(reference, pl.Series):
                frame, ref = frame.with_columns(reference.alias("r")), pl.col("r")
            elif reference is not None:
                ref = pl.lit(reference, dtype=pl.Date)
            exprs = [part_expr(p, pl.col("v"), ref).alias(f"{col}_{p}") for p in dict.fromkeys(settings.parts)]
            new.extend(frame.select(exprs).get_columns())
        replaced = [s.name for s in new if s.name in table.columns]
        if replaced:
            ctx.log.info("replacing existing column(s) %s", ", ".join(replaced))
        out = table.with_columns(new)
        if settings.drop_original:
            out = out.drop([c for c in settings.columns if c not in {s.name for s in new}])
        return {"table": out}

    @staticmethod
    def _reference(table: pl.DataFrame, settings: DatePartsSettings,
                   parse: Callable[[str], pl.Series]) -> pl.Series | date | None:
        """The reference for days_since: one date, or the reference column's dates (one per row)."""
        literal = (settings.reference or "").strip()
        column = (settings.reference_column or "").strip()
        if "days_since" not in settings.parts:
            return None
        if literal and column:
            raise NodeInputError(tr("days_since: set either Reference date or Reference column, not both"))
        if literal:
            return _reference_date(literal)
        if not column:
            raise NodeInputError(tr("days_since needs a Reference date (e.g. 2024-03-31) or a Reference column"))
        require_columns(table, [column], tr("Reference column"))
        return parse(column).dt.date()
