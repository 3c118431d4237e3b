"""What the io nodes share: the column-type vocabulary for overrides and the file checks."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr

ColumnType = Literal["str", "int", "float", "bool", "date", "datetime", "category"]
POLARS_TYPES: dict[str, pl.DataType] = {
    "str": pl.String(), "int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(), "date": pl.Date(),
    "datetime": pl.Datetime("us"), "category": pl.Categorical(),
}


def require_file(path: Path) -> Path:
    """The path if it is a readable file; otherwise an error that says what is wrong with it."""
    if not path.exists():
        raise NodeInputError(tr("File not found: {path}", path=path))
    if path.is_dir():
        raise NodeInputError(tr("{path} is a folder, not a file", path=path))
    return path


_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "y": True,
               "n": False, "t": True, "f": False, "是": True, "否": False}


def cast_strings(source: pl.Series, kind: str) -> pl.Series:
    """Parse a string column as `kind`; values that do not parse become null (the caller reports them)."""
    if kind == "str":
        return source
    text = source.str.strip_chars()
    if kind == "bool":
        return text.str.to_lowercase().replace_strict(_BOOL_WORDS, default=None, return_dtype=pl.Boolean)
    if kind == "date":
        return text.str.to_date(strict=False)
    if kind == "datetime":
        return text.str.to_datetime(strict=False, time_unit="us")
    return text.cast(POLARS_TYPES[kind], strict=False)
