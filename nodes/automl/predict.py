"""Predict: apply a model to a table and append the prediction and probability columns."""
from __future__ import annotations

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Model, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.automl.flavors import score


class PredictSettings(NodeSettings):
    prediction_column: str = Field("prediction", min_length=1, title=N_("Prediction column"))
    probability_column: str = Field("probability", min_length=1, title=N_("Probability column"),
                                    description=N_("Binary: probability of the positive class; multiclass: one "
                                                   "column per class with this prefix"))


@node("automl.predict", version=1, title=N_("Predict"), category=N_("Modeling"), icon="predict", heavy=True)
class Predict(Node):
    """Score a table with a model, appending predictions and probabilities."""

    inputs = {"model": Model, "table": Table}
    outputs = {"table": Table}
    Settings = PredictSettings

    def compute(self, inputs: dict, settings: PredictSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        for name in (settings.prediction_column, settings.probability_column):
            if name in table.columns:
                raise NodeInputError(tr("The table already has a column {col!r}; choose another output name",
                                        col=name))
        scores = score(inputs["model"], table)
        cols = [pl.Series(settings.prediction_column, scores.prediction)]
        if scores.proba is not None:
            if scores.problem_type == "binary":
                cols.append(scores.proba[str(scores.positive_class)].alias(settings.probability_column))
            else:
                cols.extend(scores.proba[c].alias(f"{settings.probability_column}_{c}") for c in scores.proba.columns)
        return {"table": table.with_columns(cols)}
