"""Write CSV / Write Parquet: atomic writes (temp file, then rename), so a failed run never leaves half a file.

Writers have side effects, so their cache entry keeps a receipt (the written file's hash): if someone deletes or
edits the output file, the next run writes it again.
"""
from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.fileio import atomic_output_path
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node


class _WriterBase(Node):
    inputs = {"table": Table}

    @classmethod
    def receipt(cls, settings, ctx: FingerprintContext) -> str | None:  # noqa: ANN001
        path = ctx.resolve_path(settings.path)
        return ctx.files.hash(path) if path.is_file() else None

    @staticmethod
    def _target(settings, ctx: Context):  # noqa: ANN001, ANN205
        target = ctx.resolve_path(settings.path)
        if target.is_dir():
            raise NodeInputError(tr("{path} is a folder; give a file name", path=target))
        return target


class WriteCSVSettings(NodeSettings):
    path: str = Field(min_length=1, title=N_("File"), json_schema_extra={"widget": "save-file",
                                                                          "filter": "CSV (*.csv)"})
    delimiter: str = Field(",", min_length=1, max_length=1, title=N_("Delimiter"))
    encoding: Literal["utf-8", "utf-8-sig", "gbk"] = Field(
        "utf-8", title=N_("Encoding"), description=N_("utf-8-sig lets Excel open Chinese text correctly"))
    include_header: bool = Field(True, title=N_("Write the header row"))


@node("io.write_csv", version=1, title=N_("Write CSV"), category=N_("Data sinks"), icon="file-export")
class WriteCSV(_WriterBase):
    """Write a table to a CSV file, atomically."""

    Settings = WriteCSVSettings

    def compute(self, inputs: dict, settings: WriteCSVSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        target = self._target(settings, ctx)
        text = table.write_csv(separator=settings.delimiter, include_header=settings.include_header)
        try:
            data = text.encode(settings.encoding)
        except UnicodeEncodeError as exc:
            raise NodeInputError(tr("Some text cannot be written as {enc}: {exc}. Choose utf-8.",
                                    enc=settings.encoding, exc=exc)) from None
        with atomic_output_path(target) as tmp:
            tmp.write_bytes(data)
        ctx.log.info("wrote %d rows to %s", table.height, target)
        return {}


class WriteParquetSettings(NodeSettings):
    path: str = Field(min_length=1, title=N_("File"), json_schema_extra={"widget": "save-file",
                                                                          "filter": "Parquet (*.parquet)"})
    compression: Literal["zstd", "snappy", "lz4", "uncompressed"] = Field("zstd", title=N_("Compression"))


@node("io.write_parquet", version=1, title=N_("Write Parquet"), category=N_("Data sinks"), icon="file-export")
class WriteParquet(_WriterBase):
    """Write a table to a Parquet file, atomically."""

    Settings = WriteParquetSettings

    def compute(self, inputs: dict, settings: WriteParquetSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        target = self._target(settings, ctx)
        with atomic_output_path(target) as tmp:
            table.write_parquet(tmp, compression=settings.compression)
        ctx.log.info("wrote %d rows to %s", table.height, target)
        return {}
