"""Scale numeric columns with a centre and a scale fitted on the training table: (x - centre) / scale.

standard: mean and population standard deviation (as scikit-learn's StandardScaler); minmax: minimum and range,
giving [0, 1] on the training table; robust: median and interquartile range (linear quantiles, as RobustScaler).
Statistics use finite values only; nulls and NaN stay missing. A column whose scale is 0 on the training table
(constant) gets scale 1, so it is only centred, never divided by zero.

Params: {"method": str, "center": {col: float}, "scale": {col: float}, "outputs": [col]}.
"""
from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.features.transforms.common import (PREVIOUS, chained, float_values, is_numeric, pick_columns,
                                              require_apply_columns, require_kind, require_rows)

KIND = "scale"


class ScaleSettings(NodeSettings):
    columns: list[str] = Field(default_factory=list, title=N_("Columns"),
                               description=N_("Empty: every numeric column except those left out"))
    exclude: list[str] = Field(default_factory=list, title=N_("Leave out"),
                               description=N_("Numeric columns not to scale when Columns is empty: the target, ids"))
    method: Literal["standard", "minmax", "robust"] = Field(
        "standard", title=N_("Method"),
        description=N_("standard: (x - mean) / std; minmax: to [0, 1]; robust: (x - median) / IQR"))


def fit_scale(table: pl.DataFrame, settings: ScaleSettings) -> tuple[FittedTransform, list[str]]:
    """The fitted step and the columns found constant (scale set to 1)."""
    require_rows(table)
    columns = pick_columns(table, settings.columns, tr("Columns"), default=is_numeric, exclude=settings.exclude)
    require_kind(table, columns, is_numeric, tr("Columns"), tr("numeric"))
    schema = table.schema
    exprs: list[pl.Expr] = []
    for c in columns:
        v = float_values(c, schema[c])
        v = v.filter(v.is_finite())
        if settings.method == "standard":
            exprs += [v.mean().alias(f"c|{c}"), v.std(ddof=0).alias(f"s|{c}")]
        elif settings.method == "minmax":
            exprs += [v.min().alias(f"c|{c}"), (v.max() - v.min()).alias(f"s|{c}")]
        else:
            q1, q3 = v.quantile(0.25, "linear"), v.quantile(0.75, "linear")
            exprs += [v.median().alias(f"c|{c}"), (q3 - q1).alias(f"s|{c}")]
    row = table.select(exprs).row(0, named=True) if exprs else {}
    center: dict[str, float] = {}
    scale: dict[str, float] = {}
    constant: list[str] = []
    for c in columns:
        if row[f"c|{c}"] is None:
            raise NodeInputError(tr("Scale: column {col!r} has no finite values in the input table; impute or drop "
                                    "it first", col=c))
        center[c] = float(row[f"c|{c}"])
        s = float(row[f"s|{c}"] or 0.0)
        if not s > 0.0:
            constant.append(c)
            s = 1.0
        scale[c] = s
    params = {"method": settings.method, "center": center, "scale": scale, "outputs": list(columns)}
    return FittedTransform(kind=KIND, params=params, columns=tuple(columns)), constant


def apply(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    """(x - centre) / scale as Float64; nulls stay null, NaN stays NaN."""
    center: dict[str, float] = params.get("center", {})
    scale: dict[str, float] = params.get("scale", {})
    require_apply_columns(table, list(center), KIND)
    schema = table.schema
    exprs = []
    for c, mid in center.items():
        if not is_numeric(schema[c]):
            raise NodeInputError(tr("Scale: column {col!r} was numeric when fitted but is {dtype} here",
                                    col=c, dtype=str(schema[c])))
        exprs.append(((pl.col(c).cast(pl.Float64) - mid) / scale[c]).alias(c))
    return table.with_columns(exprs) if exprs else table


@node("features.scale", version=1, title=N_("Scale"), category=N_("Features"), icon="scale")
class Scale(Node):
    """Standardise, min-max or robust-scale numeric columns with statistics fitted on the training table."""

    inputs = {"table": Table, "previous": PREVIOUS}
    outputs = {"table": Table, "transform": FittedTransformPort}
    Settings = ScaleSettings

    def compute(self, inputs: dict, settings: ScaleSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        step, constant = fit_scale(table, settings)
        ctx.log.info("%s scaling of %d column(s)", settings.method, len(step.columns))
        for c in constant:
            ctx.log.warning(tr("{col} is constant in the input table: it is centred only (scale 1, no division by "
                               "zero)", col=c))
        return {"table": apply(step.params, table), "transform": chained(inputs.get("previous"), step)}
