"""Apply transform: run a FittedTransform (fitted on the training part) on another table, e.g. the test part."""
from __future__ import annotations

import polars as pl

from engine.i18n import N_
from engine.ports import FittedTransformPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.features.fitted import apply_transform, steps


class ApplyTransformSettings(NodeSettings):
    pass


@node("features.apply_transform", version=1, title=N_("Apply transform"), category=N_("Features"), icon="apply")
class ApplyTransform(Node):
    """Apply preprocessing fitted on training data to another table, with the training parameters unchanged."""

    inputs = {"transform": FittedTransformPort, "table": Table}
    outputs = {"table": Table}
    Settings = ApplyTransformSettings

    def compute(self, inputs: dict, settings: ApplyTransformSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        transform = inputs["transform"]
        ctx.log.info("applying %d fitted step(s): %s", len(steps(transform)),
                     ", ".join(s.kind for s in steps(transform)))
        return {"table": apply_transform(transform, table)}
