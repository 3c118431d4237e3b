"""Example plugin: a ratio feature such as debt-to-income, with division by zero made explicit."""
from __future__ import annotations

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, Node, NodeSettings, node


class RatioSettings(NodeSettings):
    numerator: str = Field(min_length=1, title=N_("Numerator column"), json_schema_extra={"widget": "column"})
    denominator: str = Field(min_length=1, title=N_("Denominator column"), json_schema_extra={"widget": "column"})
    output: str = Field("ratio", min_length=1, title=N_("New column"))


@node("example.ratio", title=N_("Ratio"), category=N_("Features"), icon="divide")
class Ratio(Node):
    """Add a column numerator / denominator; a zero denominator gives a missing value, not infinity."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = RatioSettings

    def compute(self, inputs: dict, settings: RatioSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        for col in (settings.numerator, settings.denominator):
            if col not in table.columns:
                raise NodeInputError(tr("Column {col!r} is not in the table", col=col))
        den = pl.col(settings.denominator).cast(pl.Float64)
        ratio = pl.when(den == 0).then(None).otherwise(pl.col(settings.numerator).cast(pl.Float64) / den)
        return {"table": table.with_columns(ratio.alias(settings.output))}


NODES = [Ratio]
