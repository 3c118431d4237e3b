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


# Text columns with more distinct values than this share of their present rows (and than ID_MIN_DISTINCT) are
# identifiers (customer ids, application numbers): a model would learn each value's outcome by heart.
ID_SHARE = 0.5
ID_MIN_DISTINCT = 20


def identifier_like(series: pl.Series) -> str | None:
    """Why a text column looks like an identifier ("identifier-like: N distinct values in M rows"), else None."""
    if series.dtype.is_numeric() or series.dtype == pl.Boolean:
        return None
    present = series.len() - series.null_count()
    distinct = series.drop_nulls().n_unique()
    if distinct > ID_MIN_DISTINCT and distinct > ID_SHARE * present:
        return tr("identifier-like: {n} distinct values in {rows} rows", n=distinct, rows=present)
    return None
