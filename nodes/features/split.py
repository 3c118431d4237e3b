"""Split: a seeded train/test partition, optionally stratified, done with scikit-learn's train_test_split."""
from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.columns import require_columns


class SplitSettings(NodeSettings):
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0, title=N_("Test fraction"),
                                 description=N_("Share of rows held out for testing"))
    stratify_by: str | None = Field(None, title=N_("Stratify by"),
                                    description=N_("Keep this column's class shares equal in both parts"),
                                    json_schema_extra={"widget": "column"})
    seed: int | None = Field(None, title=N_("Seed"), description=N_("Empty uses the project seed"))


@node("features.split", version=1, title=N_("Split"), category=N_("Features"), icon="split")
class Split(Node):
    """Split a table into train and test parts, stratified and seeded."""

    inputs = {"table": Table}
    outputs = {"train": Table, "test": Table}
    Settings = SplitSettings

    def compute(self, inputs: dict, settings: SplitSettings, ctx: Context) -> dict:
        from sklearn.model_selection import train_test_split

        table: pl.DataFrame = inputs["table"]
        if table.height < 2:
            raise NodeInputError(tr("Split needs at least 2 rows; the table has {n}", n=table.height))
        strat = None
        if settings.stratify_by:
            require_columns(table, [settings.stratify_by], tr("Stratify by"))
            col = table[settings.stratify_by]
            missing = col.null_count() + (int(col.is_nan().sum()) if col.dtype.is_float() else 0)  # NaN too
            if missing:
                raise NodeInputError(tr("Stratify column {col!r} has {n} missing values; fill or drop them first",
                                        col=settings.stratify_by, n=missing))
            strat = col.to_numpy()
        seed = ctx.seed if settings.seed is None else settings.seed
        idx = np.arange(table.height)
        try:
            train_idx, test_idx = train_test_split(idx, test_size=settings.test_fraction, random_state=seed,
                                                   shuffle=True, stratify=strat)
        except ValueError as exc:
            raise NodeInputError(tr("Cannot split: {exc}", exc=exc)) from None
        train_idx.sort()
        test_idx.sort()
        ctx.log.info("train %d rows, test %d rows", len(train_idx), len(test_idx))
        return {"train": table[train_idx], "test": table[test_idx]}
