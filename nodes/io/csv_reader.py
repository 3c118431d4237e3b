"""Read CSV: encoding detection (UTF-8, UTF-8 BOM, GBK/GB18030), delimiter sniffing, type overrides, and
malformed rows reported by line and column (or skipped, when the user chooses so)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import Field, field_validator

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node
from nodes.io.common import ColumnType, cast_strings, require_file

Encoding = Literal["auto", "utf-8", "utf-8-sig", "gbk", "gb18030"]
_SNIFF_BYTES = 64 * 1024
_MAX_REPORTED = 5
_PREVIEW_BYTES = 1 << 20  # a preview parses at most the first MiB


class ReadCSVSettings(NodeSettings):
    path: str = Field(min_length=1, title=N_("File"), description=N_("CSV file, relative to the project folder"),
                      json_schema_extra={"widget": "file", "filter": "CSV (*.csv *.txt *.tsv)"})
    encoding: Encoding = Field("auto", title=N_("Encoding"),
                               description=N_("auto detects UTF-8, UTF-8 with BOM and GBK/GB18030"))
    delimiter: str = Field("auto", title=N_("Delimiter"), description=N_("auto sniffs , ; tab or |"))
    has_header: bool = Field(True, title=N_("First row is the header"))
    column_types: dict[str, ColumnType] = Field(default_factory=dict, title=N_("Column types"),
                                                description=N_("Override the inferred type of some columns"))
    on_bad_rows: Literal["fail", "skip"] = Field("fail", title=N_("Malformed rows"),
                                                 description=N_("fail: stop with the line number; skip: drop them"))
    null_values: list[str] = Field(default_factory=lambda: ["", "NA", "N/A", "null", "NULL"],
                                   title=N_("Missing-value markers"))

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        v = "\t" if v in ("\\t", "tab") else v
        if v != "auto" and len(v) != 1:
            raise ValueError("must be 'auto' or a single character")
        return v


def decode(raw: bytes, encoding: str, path: Path) -> tuple[str, str]:
    """Bytes to text, detecting the encoding when asked; a wrong encoding names the line where it broke."""
    if encoding == "auto":
        if raw.startswith(b"\xef\xbb\xbf"):
            return raw[3:].decode("utf-8", errors="strict"), "utf-8-sig"
        for candidate in ("utf-8", "gb18030"):
            try:
                return raw.decode(candidate), candidate
            except UnicodeDecodeError:
                continue
        from charset_normalizer import from_bytes

        best = from_bytes(raw[:1 << 20]).best()
        if best is not None:
            try:
                return raw.decode(best.encoding), best.encoding
            except UnicodeDecodeError:
                pass
        raise NodeInputError(tr("{path}: cannot detect the text encoding; set Encoding explicitly", path=path))
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise NodeInputError(tr(
            "{path}: line {line}, byte {col} is not valid {enc} text. The file is probably in another encoding "
            "(Chinese bank exports are often GBK); set Encoding to 'auto' or 'gbk'.",
            path=path, line=line, col=col, enc=encoding)) from None
    return (text[1:] if text.startswith("\ufeff") else text), encoding


def sniff_delimiter(text: str) -> str:
    sample = text[:_SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _scan(text: str, delimiter: str, has_header: bool) -> tuple[list[str], list[tuple[int, int, int]], list[int]]:
    """(header, bad records as (first line, last line, field count), blank lines) in one pass of the C csv reader."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    expected = None
    bad: list[tuple[int, int, int]] = []
    blank: list[int] = []
    prev_end = 0
    for row in reader:
        start, end = prev_end + 1, reader.line_num
        prev_end = end
        if not row or (len(row) == 1 and not row[0].strip() and expected != 1):
            blank.append(start)
            continue
        if expected is None:
            expected = len(row)
            header = row if has_header else [f"column_{i + 1}" for i in range(len(row))]
            continue
        if len(row) != expected:
            bad.append((start, end, len(row)))
    return header, bad, blank


def _drop_lines(text: str, lines: set[int]) -> str:
    return "".join(line for i, line in enumerate(text.splitlines(keepends=True), start=1) if i not in lines)


def _describe_bad(path: Path, header: list[str], rec: tuple[int, int, int]) -> str:
    start, _, n = rec
    expected = len(header)
    if n > expected:
        return tr("{path}: line {line}: found {n} fields but the header has {expected}; column {col} is extra",
                  path=path, line=start, n=n, expected=expected, col=expected + 1)
    return tr("{path}: line {line}: found {n} fields but the header has {expected}; column {col} ({name!r}) "
              "is missing", path=path, line=start, n=n, expected=expected, col=n + 1, name=header[n])


def _data_line_of_row(text: str, delimiter: str, has_header: bool, row_index: int, skip: set[int]) -> int:
    """The physical line number of the row_index-th data record (for error messages only)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    seen_header = not has_header
    i = -1
    prev_end = 0
    for row in reader:
        start = prev_end + 1
        prev_end = reader.line_num
        if not row or start in skip:
            continue
        if not seen_header:
            seen_header = True
            continue
        i += 1
        if i == row_index:
            return start
    return -1


@node("io.read_csv", version=1, title=N_("Read CSV"), category=N_("Data sources"), icon="file-csv")
class ReadCSV(Node):
    """Read a CSV file into a table, detecting encoding and delimiter."""

    outputs = {"table": Table}
    Settings = ReadCSVSettings

    @classmethod
    def fingerprint(cls, settings: ReadCSVSettings, ctx: FingerprintContext) -> str:
        path = require_file(ctx.resolve_path(settings.path))
        return ctx.files.hash(path)

    def compute(self, inputs: dict, settings: ReadCSVSettings, ctx: Context) -> dict:
        path = require_file(ctx.resolve_path(settings.path))
        return {"table": _read(path.read_bytes(), settings, path, ctx)}

    @classmethod
    def preview(cls, settings: ReadCSVSettings, ctx: Context, rows: int) -> pl.DataFrame:
        """The first rows, parsed from the head of the file only (whole lines), exactly as a run reads them."""
        path = require_file(ctx.resolve_path(settings.path))
        with open(path, "rb") as fh:
            head = fh.read(_PREVIEW_BYTES)
            if len(head) == _PREVIEW_BYTES:  # cut at the last line break so no row is half read
                head = head[: head.rfind(b"\n") + 1] or head
        return _read(head, settings, path, ctx, rows=rows)


def _read(raw: bytes, settings: ReadCSVSettings, path: Path, ctx: Context, rows: int | None = None) -> pl.DataFrame:
    """Decode, check rows, parse and apply the type overrides; every failure names the file, line and column."""
    if not raw.strip(b" \t\r\n\xef\xbb\xbf"):
        raise NodeInputError(tr("{path} is empty: it has no header and no rows", path=path))
    text, encoding = decode(raw, settings.encoding, path)
    del raw
    delimiter = sniff_delimiter(text) if settings.delimiter == "auto" else settings.delimiter
    ctx.log.info("encoding %s, delimiter %r", encoding, delimiter)
    ctx.progress(0.1, tr("checking rows"))
    header, bad, blank = _scan(text, delimiter, settings.has_header)
    if bad and settings.on_bad_rows == "fail":
        more = tr(" ({n} malformed rows in all; choose 'skip' to drop them)", n=len(bad)) if len(bad) > 1 else ""
        raise NodeInputError(_describe_bad(path, header, bad[0]) + more)
    drop = set(blank)
    for start, end, _ in bad:
        drop.update(range(start, end + 1))
    if bad:
        ctx.log.warning(tr("skipped {n} malformed rows (first at line {line})", n=len(bad), line=bad[0][0]))
    original = text  # line numbers in messages refer to the file as it is on disk
    if drop:
        text = _drop_lines(text, drop)
    unknown = sorted(set(settings.column_types) - set(header))
    if unknown:
        raise NodeInputError(tr("Column types name columns that are not in {path}: {cols}. Columns: {have}",
                                path=path, cols=", ".join(unknown), have=", ".join(header)))
    ctx.check_cancelled()
    ctx.progress(0.3, tr("parsing"))
    data = text.encode("utf-8")
    try:
        table = pl.read_csv(io.BytesIO(data), separator=delimiter, has_header=settings.has_header,
                            new_columns=None if settings.has_header else header, infer_schema_length=None,
                            null_values=settings.null_values, try_parse_dates=True, n_rows=rows,
                            schema_overrides={c: pl.String for c in settings.column_types})
    except (pl.exceptions.ComputeError, pl.exceptions.DuplicateError) as exc:
        raise NodeInputError(tr("{path}: cannot parse the file: {exc}", path=path,
                                exc=str(exc).splitlines()[0])) from None
    for col, kind in settings.column_types.items():
        source = table[col]
        cast = cast_strings(source, kind)
        failed = (cast.is_null() & source.is_not_null()).arg_true()
        if len(failed):
            row = int(failed[0])
            line = _data_line_of_row(original, delimiter, settings.has_header, row, drop)
            raise NodeInputError(tr(
                "{path}: line {line}, column {name!r}: cannot read {value!r} as {kind} ({n} values in this "
                "column fail). Fix the data or change the column type.", path=path, line=line, name=col,
                value=source[row], kind=kind, n=len(failed)))
        table = table.with_columns(cast.alias(col))
    ctx.progress(1.0)
    return table
