"""Read Parquet: one file, a folder of files, or a glob, scanned lazily by polars."""
from __future__ import annotations

import glob
from pathlib import Path

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.fileio import sha256_text
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node


class ReadParquetSettings(NodeSettings):
    path: str = Field(min_length=1, title=N_("File, folder or glob"),
                      description=N_("A .parquet file, a folder of them, or a pattern like data/*.parquet"),
                      json_schema_extra={"widget": "file", "filter": "Parquet (*.parquet)"})
    columns: list[str] = Field(default_factory=list, title=N_("Columns"),
                               description=N_("Read only these columns (all when empty)"))


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

    outputs = {"table": Table}
    Settings = ReadParquetSettings

    @classmethod
    def fingerprint(cls, settings: ReadParquetSettings, ctx: FingerprintContext) -> str:
        files = parquet_files(ctx.resolve_path(settings.path))
        return sha256_text(*(f"{p.name}:{ctx.files.hash(p)}" for p in files))

    def compute(self, inputs: dict, settings: ReadParquetSettings, ctx: Context) -> dict:
        files = parquet_files(ctx.resolve_path(settings.path))
        try:
            lf = pl.scan_parquet([str(f) for f in files], glob=False)  # already expanded
            if settings.columns:
                missing = sorted(set(settings.columns) - set(lf.collect_schema().names()))
                if missing:
                    raise NodeInputError(tr("Columns not found in {path}: {cols}", path=settings.path,
                                            cols=", ".join(missing)))
                lf = lf.select(settings.columns)
            table = lf.collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise NodeInputError(tr("{path}: not a readable Parquet file: {exc}", path=settings.path,
                                    exc=str(exc).splitlines()[0])) from None
        ctx.log.info("read %d rows from %d file(s)", table.height, len(files))
        return {"table": table}
