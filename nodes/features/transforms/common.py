"""Helpers shared by the fitted transforms: choosing columns, reading a binary target, WOE arithmetic, chaining.

Kept in one place so impute, scale, encode and binning name columns, treat NaN and read the target the same way,
and so WOE here agrees with the Profile node's (nodes/explore/stats.py `_woe_bins`) to the last digit.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, Report
from engine.sdk import PortSpec
from nodes.columns import require_columns
from nodes.explore.stats import event_value
from nodes.features.fitted import chain

PREVIOUS = PortSpec("previous", FittedTransformPort, required=False, description=N_(
    "Preparation fitted by earlier steps. The table is taken as already prepared by it; the output transform "
    "chains it with this step, so one transform carries the whole preparation."))

# WOE cells with no rows count as this many rows, so an empty cell gives a large but finite WOE (as in Profile).
WOE_EMPTY_CELL = 0.5


def require_rows(table: pl.DataFrame) -> None:
    """Fitting needs data: an empty training table is a wiring mistake, not something to fit silently."""
    if table.height == 0:
        raise NodeInputError(tr("The input table has no rows: connect the training table the step is fitted on"))


def is_numeric(dtype: pl.DataType) -> bool:
    """Integers, floats and decimals (booleans are categories here)."""
    return dtype.is_numeric()


def is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Boolean, pl.Null) or isinstance(dtype, pl.Enum)


def pick_columns(table: pl.DataFrame, columns: Iterable[str], setting: str, *, default: Callable[[pl.DataType], bool],
                 exclude: Iterable[str] = ()) -> list[str]:
    """The configured columns (checked to exist), or when none are configured every column `default` accepts,
    less `exclude` (the target, identifiers)."""
    chosen = list(dict.fromkeys(columns))
    skip = {c for c in exclude if c}
    if chosen:
        require_columns(table, chosen, setting)
        return chosen
    return [name for name, dtype in table.schema.items() if name not in skip and default(dtype)]


def require_kind(table: pl.DataFrame, columns: Iterable[str], accept: Callable[[pl.DataType], bool], setting: str,
                 expected: str) -> None:
    """A clear message naming the column when its type does not suit the step (e.g. text to scale)."""
    for name in columns:
        dtype = table.schema[name]
        if not accept(dtype):
            raise NodeInputError(tr("{setting}: column {col!r} is {dtype}, but this step needs {expected} columns",
                                    setting=setting, col=name, dtype=str(dtype), expected=expected))


def not_target(columns: Iterable[str], target: str | None, setting: str) -> None:
    if target and target in columns:
        raise NodeInputError(tr("{setting}: the target column {col!r} cannot also be a feature to transform",
                                setting=setting, col=target))


def binary_target(table: pl.DataFrame, target: str | None, setting: str) -> tuple[pl.Series, str]:
    """The target as 0/1 (Int8, null where unknown) and the label read as the event.

    The event is the value that reads as 1/true/yes, else the minority class: the same rule as Profile.
    """
    if not target:
        raise NodeInputError(tr("{setting}: choose the target column (a binary outcome)", setting=setting))
    require_columns(table, [target], setting)
    t = table.get_column(target)
    if t.dtype.is_float():
        t = t.fill_nan(None)
    known = t.drop_nulls()
    if known.n_unique() != 2:
        raise NodeInputError(tr("{setting}: target column {col!r} must be binary (exactly two distinct values), but "
                                "it has {n} distinct non-missing values", setting=setting, col=target,
                                n=known.n_unique()))
    event = event_value(known)
    y = pl.select(pl.when(t.is_null()).then(None).otherwise((t == event).cast(pl.Int8))).to_series()
    return y.alias(target), str(event)


def float_values(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as Float64 with NaN as null: NaN is a missing marker in bank extracts."""
    x = pl.col(name).cast(pl.Float64)
    return x.fill_nan(None) if dtype.is_float() else x


def is_missing(name: str, dtype: pl.DataType) -> pl.Expr:
    """Null, or NaN in a float column."""
    return pl.col(name).is_null() | pl.col(name).is_nan() if dtype.is_float() else pl.col(name).is_null()


def as_key(name: str) -> pl.Expr:
    """Category values as strings, the form they are stored in (JSON keys)."""
    return pl.col(name).cast(pl.String)


def woe_iv(nonevents: np.ndarray, events: np.ndarray, total_nonevents: float,
           total_events: float) -> tuple[np.ndarray, np.ndarray]:
    """WOE = ln(share of non-events / share of events) per cell, and each cell's IV term.

    Sign convention (as Profile and optbinning): positive WOE = fewer events than average (lower risk). A cell with
    no non-events or no events counts WOE_EMPTY_CELL rows instead of 0, so its WOE stays finite.
    """
    ne = np.maximum(np.asarray(nonevents, dtype=np.float64), WOE_EMPTY_CELL) / total_nonevents
    e = np.maximum(np.asarray(events, dtype=np.float64), WOE_EMPTY_CELL) / total_events
    woe = np.log(ne / e)
    return woe, (ne - e) * woe


def check_new_names(table: pl.DataFrame, names: list[str], inputs: Iterable[str], setting: str) -> None:
    """New columns must not silently overwrite other columns of the table, nor each other."""
    replaced = set(inputs)
    seen: set[str] = set()
    for name in names:
        if name in seen or (name in table.columns and name not in replaced):
            raise NodeInputError(tr("{setting}: the new column {col!r} would overwrite an existing column; rename "
                                    "that column first", setting=setting, col=name))
        seen.add(name)


def chained(previous: FittedTransform | None, step: FittedTransform) -> FittedTransform:
    """The whole preparation so far: `previous` (if connected) then this step."""
    return chain(previous, step) if previous is not None else step


def require_apply_columns(table: pl.DataFrame, columns: Iterable[str], kind: str) -> None:
    """Appliers can be called directly (not only via apply_transform), so they check their columns too."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise NodeInputError(tr("Transform {kind} needs column {cols}, which the table does not have",
                                kind=kind, cols=", ".join(repr(c) for c in missing)))


def iv_table(ivs: dict[str, float]) -> pl.DataFrame:
    """Information value per column, strongest first (ties by name, so the order is stable)."""
    rows = sorted(ivs.items(), key=lambda kv: (-kv[1], kv[0]))
    return pl.DataFrame({"column": [r[0] for r in rows], "iv": [float(r[1]) for r in rows]},
                        schema={"column": pl.String, "iv": pl.Float64})


def add_iv_figure(report: Report, ivs: pl.DataFrame, target: str | None) -> None:
    """A horizontal bar chart of IV by column (the 25 strongest), as Profile draws it."""
    from nodes.plotting import barh_margins, figure

    top = ivs.head(25)
    if top.height == 0:
        return
    names, values = top["column"].to_list(), top["iv"].to_list()
    height = 0.6 + 0.25 * len(names)
    fig = figure(6, height)
    ax = fig.subplots()
    ax.barh(list(reversed(names)), list(reversed(values)), color="#7c3aed")
    ax.set_xlabel(tr("Information value"))
    ax.set_title(tr("Information value for {target}", target=target))
    barh_margins(fig, names, 6, height)
    report.add_figure(tr("Information value"), fig, tight=False)
