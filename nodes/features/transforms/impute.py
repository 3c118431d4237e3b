"""Impute missing values with statistics of the training table, applied unchanged to any other table.

Numeric columns get the training mean, median (of finite values) or a constant; categorical columns (text,
categorical, boolean) the training's most frequent value (ties: the smallest label) or a constant. NaN in a float
column counts as missing. A column with no values at all cannot give a statistic: that is an error naming it,
and the constant strategy is the way to fill it.

Params: {"numeric": {col: float}, "categorical": {col: str}, "indicators": [col], "outputs": [col]}.
"""
from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.features.transforms.common import (PREVIOUS, chained, check_new_names, float_values, is_categorical,
                                              is_missing, is_numeric, pick_columns, require_apply_columns,
                                              require_kind, require_rows)

KIND = "impute"
INDICATOR_SUFFIX = "_was_missing"


class ImputeSettings(NodeSettings):
    columns: list[str] = Field(default_factory=list, title=N_("Columns"),
                               description=N_("Empty: every column with missing values in the input table"))
    exclude: list[str] = Field(default_factory=list, title=N_("Leave out"),
                               description=N_("Columns never imputed when Columns is empty, e.g. the target"))
    numeric_strategy: Literal["mean", "median", "constant"] = Field(
        "median", title=N_("Numeric columns"), description=N_("Fill with the training mean, median or a constant"))
    numeric_fill_value: float = Field(0.0, title=N_("Numeric constant"),
                                      description=N_("Used when the numeric strategy is constant"))
    categorical_strategy: Literal["most_frequent", "constant"] = Field(
        "most_frequent", title=N_("Categorical columns"),
        description=N_("Fill with the training's most frequent value or a constant"))
    categorical_fill_value: str = Field("missing", title=N_("Categorical constant"),
                                        description=N_("Used when the categorical strategy is constant"))
    add_indicator: bool = Field(False, title=N_("Add missing indicators"),
                                description=N_("Add <column>_was_missing (1 where the value was missing, else 0)"))


def fit_impute(table: pl.DataFrame, settings: ImputeSettings) -> FittedTransform:
    """Fill values computed on `table` only."""
    require_rows(table)
    schema = table.schema
    if settings.columns:
        columns = pick_columns(table, settings.columns, tr("Columns"), default=lambda d: True)
    else:
        candidates = pick_columns(table, [], tr("Columns"), default=lambda d: is_numeric(d) or is_categorical(d),
                                  exclude=settings.exclude)
        counts = table.select([is_missing(c, schema[c]).sum().alias(c) for c in candidates]).row(0) \
            if candidates else ()
        columns = [c for c, n in zip(candidates, counts) if n]
    require_kind(table, columns, lambda d: is_numeric(d) or is_categorical(d), tr("Columns"),
                 tr("numeric or categorical"))
    numeric = [c for c in columns if is_numeric(schema[c])]
    categorical = [c for c in columns if c not in numeric]
    params: dict = {"numeric": _numeric_fills(table, numeric, settings),
                    "categorical": _categorical_fills(table, categorical, settings),
                    "indicators": list(columns) if settings.add_indicator else []}
    made = [f"{c}{INDICATOR_SUFFIX}" for c in params["indicators"]]
    check_new_names(table, made, [], tr("Add missing indicators"))
    params["outputs"] = list(columns) + made
    return FittedTransform(kind=KIND, params=params, columns=tuple(columns))


def _numeric_fills(table: pl.DataFrame, columns: list[str], settings: ImputeSettings) -> dict[str, float]:
    if settings.numeric_strategy == "constant" or not columns:
        return {c: float(settings.numeric_fill_value) for c in columns}
    schema = table.schema
    exprs = []
    for c in columns:
        v = float_values(c, schema[c])
        v = v.filter(v.is_finite())
        exprs.append((v.mean() if settings.numeric_strategy == "mean" else v.median()).alias(c))
    row = table.select(exprs).row(0, named=True)
    empty = [c for c in columns if row[c] is None]
    if empty:
        raise NodeInputError(tr("Impute: column {col!r} has no finite values in the input table, so it has no "
                                "{strategy}; use the constant strategy or drop the column", col=empty[0],
                                strategy=settings.numeric_strategy))
    return {c: float(row[c]) for c in columns}


def _categorical_fills(table: pl.DataFrame, columns: list[str], settings: ImputeSettings) -> dict[str, str]:
    if settings.categorical_strategy == "constant" or not columns:
        return {c: settings.categorical_fill_value for c in columns}
    fills: dict[str, str] = {}
    for c in columns:  # one small group-by per column: the work is in polars, the loop is over columns
        counts = (table.select(pl.col(c).cast(pl.String).drop_nulls().alias("v"))
                  .group_by("v").len().sort(["len", "v"], descending=[True, False]).head(1))
        if counts.height == 0:
            raise NodeInputError(tr("Impute: column {col!r} has no values in the input table, so it has no most "
                                    "frequent value; use the constant strategy or drop the column", col=c))
        fills[c] = str(counts.item(0, "v"))
    return fills


def apply(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    """Fill with the stored values. The output dtype does not depend on whether the table has nulls: an integer
    column filled with a fractional mean becomes Float64, a categorical/enum column becomes String (the fill
    value may be a new category), a boolean column stays boolean ("true"/"false" fills)."""
    numeric: dict[str, float] = params.get("numeric", {})
    categorical: dict[str, str] = params.get("categorical", {})
    indicators: list[str] = params.get("indicators", [])
    require_apply_columns(table, [*numeric, *categorical, *indicators], KIND)
    schema = table.schema
    flags = [is_missing(c, schema[c]).cast(pl.Int8).alias(f"{c}{INDICATOR_SUFFIX}") for c in indicators]
    fills: list[pl.Expr] = []
    for c, value in numeric.items():
        dtype = schema[c]
        if not is_numeric(dtype):
            raise NodeInputError(tr("Impute: column {col!r} was numeric when fitted but is {dtype} here",
                                    col=c, dtype=str(dtype)))
        col = pl.col(c).fill_nan(None) if dtype.is_float() else pl.col(c)
        if dtype.is_integer() and float(value).is_integer():  # stays an integer column (widened if needed)
            fills.append(col.fill_null(pl.lit(int(value))).alias(c))
        elif dtype.is_integer():
            fills.append(col.cast(pl.Float64).fill_null(value).alias(c))
        else:
            fills.append(col.fill_null(pl.lit(value, dtype if dtype.is_float() else pl.Float64)).alias(c))
    for c, value in categorical.items():
        if schema[c] == pl.Boolean and value in ("true", "false"):
            fills.append(pl.col(c).fill_null(value == "true").alias(c))
        else:
            fills.append(pl.col(c).cast(pl.String).fill_null(pl.lit(value)).alias(c))
    out = table.with_columns(flags) if flags else table
    return out.with_columns(fills) if fills else out


@node("features.impute", version=1, title=N_("Impute missing values"), category=N_("Features"), icon="impute")
class Impute(Node):
    """Fill missing values with statistics fitted on the training table (mean, median, most frequent, constant)."""

    inputs = {"table": Table, "previous": PREVIOUS}
    outputs = {"table": Table, "transform": FittedTransformPort}
    Settings = ImputeSettings

    def compute(self, inputs: dict, settings: ImputeSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        step = fit_impute(table, settings)
        filled = {**step.params["numeric"], **step.params["categorical"]}
        if not filled:
            ctx.log.info("no column has missing values: nothing to impute")
        for col, value in filled.items():
            ctx.log.info("%s: missing values -> %r", col, value)
        return {"table": apply(step.params, table), "transform": chained(inputs.get("previous"), step)}
