"""Read Excel: .xlsx/.xlsm/.xls/.ods sheets through fastexcel (Rust calamine), with sheet choice, a header row and
type overrides whose failures name the sheet, the Excel row and the column."""
from __future__ import annotations

from pathlib import Path

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node
from nodes.io.common import ColumnType, cast_strings, require_file


class ReadExcelSettings(NodeSettings):
    path: str = Field(min_length=1, title=N_("File"), description=N_("Excel file, relative to the project folder"),
                      json_schema_extra={"widget": "file", "filter": "Excel (*.xlsx *.xlsm *.xls *.ods)"})
    sheet: str | None = Field(None, title=N_("Sheet"), description=N_("Sheet name; empty reads the first sheet"))
    header_row: int | None = Field(0, ge=0, title=N_("Header row"),
                                   description=N_("0-based row holding the column names; empty: no header"))
    column_types: dict[str, ColumnType] = Field(default_factory=dict, title=N_("Column types"),
                                                description=N_("Override the inferred type of some columns"))


def _open(path: Path):  # noqa: ANN202 - a fastexcel.ExcelReader
    import fastexcel

    try:
        return fastexcel.read_excel(str(path))
    except Exception as exc:  # noqa: BLE001 - fastexcel raises its own error types for every kind of bad file
        raise NodeInputError(tr("{path} is not a readable Excel file: {exc}", path=path,
                                exc=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None


@node("io.read_excel", version=1, title=N_("Read Excel"), category=N_("Data sources"), icon="file-excel")
class ReadExcel(Node):
    """Read one sheet of an Excel workbook into a table."""

    outputs = {"table": Table}
    Settings = ReadExcelSettings

    @classmethod
    def fingerprint(cls, settings: ReadExcelSettings, ctx: FingerprintContext) -> str:
        return ctx.files.hash(require_file(ctx.resolve_path(settings.path)))

    def compute(self, inputs: dict, settings: ReadExcelSettings, ctx: Context) -> dict:
        return {"table": _read(settings, ctx)}

    @classmethod
    def preview(cls, settings: ReadExcelSettings, ctx: Context, rows: int) -> pl.DataFrame:
        return _read(settings, ctx, rows=rows)


def _read(settings: ReadExcelSettings, ctx: Context, rows: int | None = None) -> pl.DataFrame:
    """One sheet (its first `rows` rows when given) with the type overrides applied."""
    path = require_file(ctx.resolve_path(settings.path))
    reader = _open(path)
    sheets = reader.sheet_names
    if not sheets:
        raise NodeInputError(tr("{path} has no sheets", path=path))
    sheet = settings.sheet or sheets[0]
    if sheet not in sheets:
        raise NodeInputError(tr("{path} has no sheet {sheet!r}; its sheets are: {sheets}", path=path,
                                sheet=sheet, sheets=", ".join(sheets)))
    try:
        loaded = reader.load_sheet(sheet, header_row=settings.header_row, n_rows=rows,
                                   dtypes={c: "string" for c in settings.column_types} or None)
        table = loaded.to_polars()
    except Exception as exc:  # noqa: BLE001
        raise NodeInputError(tr("{path}, sheet {sheet!r}: cannot read it: {exc}", path=path, sheet=sheet,
                                exc=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    unknown = sorted(set(settings.column_types) - set(table.columns))
    if unknown:
        raise NodeInputError(tr("Column types name columns that are not in sheet {sheet!r}: {cols}. Columns: "
                                "{have}", sheet=sheet, cols=", ".join(unknown), have=", ".join(table.columns)))
    first_data_row = (settings.header_row + 2) if settings.header_row is not None else 1  # Excel rows are 1-based
    for col, kind in settings.column_types.items():
        source = table[col].cast(pl.String)
        cast = cast_strings(source, kind)
        failed = (cast.is_null() & source.is_not_null() & (source.str.strip_chars() != "")).arg_true()
        if len(failed):
            row = int(failed[0])
            raise NodeInputError(tr(
                "{path}, sheet {sheet!r}, row {row}, column {name!r}: cannot read {value!r} as {kind} ({n} "
                "values in this column fail). Fix the data or change the column type.", path=path, sheet=sheet,
                row=first_data_row + row, name=col, value=source[row], kind=kind, n=len(failed)))
        table = table.with_columns(cast.alias(col))
    ctx.log.info("read %d rows × %d columns from sheet %r", table.height, table.width, sheet)
    return table
