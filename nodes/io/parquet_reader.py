"""Read Parquet: one file, a folder of files, or a glob, scanned lazily by polars.

Larger-than-memory friendly: the column selection, the row filter (the safe expression language of
nodes.features.expressions) and the row limit are pushed into the lazy scan, and the result is collected with
polars' streaming engine, so only the chosen columns of the matching rows are ever materialised.
"""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.fileio import sha256_text
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node
from nodes.features.expressions import ExpressionError, parse_expression


class ReadParquetSettings(NodeSettings):
    path: str = Field(min_length=1, title=N_("File, folder or glob"),
                      description=N_("A .parquet file, a folder of them, or a pattern like data/*.parquet"),
                      json_schema_extra={"widget": "file", "filter": "Parquet (*.parquet)"})
    columns: list[str] = Field(default_factory=list, title=N_("Columns"),
                               description=N_("Read only these columns (all when empty)"))
    filter: str | None = Field(None, title=N_("Keep rows where"), description=N_(
        "Optional, applied while reading, e.g. year(opened) >= 2023 and region == '华东'; may use any column, "
        "read or not"))
    limit: int | None = Field(None, ge=1, title=N_("Row limit"),
                              description=N_("Read at most this many rows (after the filter); empty: all"))


def parquet_files(base: Path) -> list[Path]:
    """The files a path names, sorted; an error when it names none."""
    if base.is_dir():
        files = sorted(base.rglob("*.parquet"))
    elif base.is_file():  # before the glob test: an existing 'data[1].parquet' is a file, not a pattern
        files = [base]
    elif any(ch in str(base) for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(base), recursive=True) if Path(p).is_file())
    else:
        raise NodeInputError(tr("File not found: {path}", path=base))
    if not files:
        raise NodeInputError(tr("No Parquet files match {path}", path=base))
    return files


@node("io.read_parquet", version=1, title=N_("Read Parquet"), category=N_("Data sources"), icon="file-parquet")
class ReadParquet(Node):
    """Read Parquet files into a table, scanning lazily so only the chosen columns are loaded."""

    outputs: ClassVar[dict[str, Any]] = {"table": Table}
    Settings = ReadParquetSettings

    @classmethod
    def fingerprint(cls, settings: ReadParquetSettings, ctx: FingerprintContext) -> str:
        files = parquet_files(ctx.resolve_path(settings.path))
        return sha256_text(*(f"{p.name}:{ctx.files.hash(p)}" for p in files))

    def compute(self, inputs: dict, settings: ReadParquetSettings, ctx: Context) -> dict:
        files = parquet_files(ctx.resolve_path(settings.path))
        try:
            lf = pl.scan_parquet([str(f) for f in files], glob=False)  # already expanded
            names = lf.collect_schema().names()
            if settings.columns:
                missing = sorted(set(settings.columns) - set(names))
                if missing:
                    raise NodeInputError(tr("Columns not found in {path}: {cols}", path=settings.path,
                                            cols=", ".join(missing)))
            if settings.filter and settings.filter.strip():
                lf = lf.filter(_condition(lf, settings.filter))
            if settings.columns:
                lf = lf.select(settings.columns)
            if settings.limit is not None:
                lf = lf.head(settings.limit)
            table = lf.collect(engine="streaming")
        except (pl.exceptions.PolarsError, OSError) as exc:
            if settings.filter and settings.filter.strip() and not isinstance(exc, OSError):
                raise NodeInputError(tr("{path}: reading with the filter failed (check 'Keep rows where' and the "
                                        "files): {exc}", path=settings.path, exc=str(exc).splitlines()[0])) from None
            raise NodeInputError(tr("{path}: not a readable Parquet file: {exc}", path=settings.path,
                                    exc=str(exc).splitlines()[0])) from None
        ctx.log.info("read %d rows from %d file(s)", table.height, len(files))
        return {"table": table}


def _condition(lf: pl.LazyFrame, text: str) -> pl.Expr:
    """The filter as a boolean expression over the scan's schema; errors point at their place in the text."""
    try:
        expr = parse_expression(text, lf.collect_schema().names())
        dtype = lf.select(expr.alias("_keep")).collect_schema()["_keep"]
    except ExpressionError as exc:
        raise NodeInputError(tr("Keep rows where: {error}", error=exc)) from None
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise NodeInputError(tr("Keep rows where: the expression cannot be computed on this data: {error}",
                                error=str(exc).splitlines()[0])) from None
    if dtype != pl.Boolean:
        raise NodeInputError(tr("Keep rows where: the condition gives {dtype} values, not true/false; compare it, "
                                "e.g. amount > 0", dtype=dtype))
    return expr  # rows where it is null are dropped, as in the Filter rows node
