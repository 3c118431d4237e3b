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
