"""Column checks shared by nodes: one clear message when a configured column is not in the table."""
from __future__ import annotations

from typing import Iterable

import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr


def require_columns(table: pl.DataFrame, columns: Iterable[str], setting: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise NodeInputError(tr("{setting}: column {cols} is not in the table. Columns are: {have}",
                                setting=setting, cols=", ".join(repr(c) for c in missing),
                                have=", ".join(table.columns)))
