"""Predict: apply a model to a table and append the prediction and probability columns, and optionally reason codes.

Reason codes say why a row scored high: the features that pushed it most toward the positive class (for a credit
model, the event "default": the reasons an applicant was declined), from the model's own additive per-row
contributions (`flavors.contributions`, e.g. LightGBM's TreeSHAP), so they agree with the score exactly.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Model, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.automl import flavors

_MODEL_LOG = "ledgerflow.model"  # where flavors log scoring warnings (e.g. unseen categories)


class PredictSettings(NodeSettings):
    prediction_column: str = Field("prediction", min_length=1, title=N_("Prediction column"))
    probability_column: str = Field("probability", min_length=1, title=N_("Probability column"),
                                    description=N_("Binary: probability of the positive class; multiclass: one "
                                                   "column per class with this prefix"))
    points_column: str = Field("points", min_length=1, title=N_("Points column"),
                               description=N_("Scorecards: the total points (higher = safer)"))
    reason_codes: int = Field(0, ge=0, le=10, title=N_("Reason codes per row (0 = none)"),
                              description=N_("Append reason_1 … reason_K: the features that raised the score most "
                                             "(toward the positive class), with their impact in reason_k_impact. "
                                             "Binary and regression models that explain rows (LightGBM, scorecard, "
                                             "MLP)"))


def reason_names(k: int) -> list[str]:
    return [name for i in range(1, k + 1) for name in (f"reason_{i}", f"reason_{i}_impact")]


def reason_columns(contrib: pl.DataFrame, k: int) -> list[pl.Series]:
    """For each row, the k features with the largest positive contribution, largest first.

    Ties keep the feature order (a stable sort); a row with fewer than k positive contributions gets nulls."""
    values = contrib.to_numpy().astype(np.float64, copy=False)
    names = np.array(contrib.columns, dtype=object)
    order = np.argsort(-values, axis=1, kind="stable")
    ranked = np.take_along_axis(values, order, axis=1)
    out: list[pl.Series] = []
    for i in range(k):
        if i < values.shape[1]:
            positive = ranked[:, i] > 0
            feature = np.where(positive, names[order[:, i]], None)
            impact = np.where(positive, ranked[:, i], np.nan)
        else:  # asked for more reasons than the model has features
            feature = np.full(values.shape[0], None, dtype=object)
            impact = np.full(values.shape[0], np.nan)
        out.append(pl.Series(f"reason_{i + 1}", feature, dtype=pl.String))
        out.append(pl.Series(f"reason_{i + 1}_impact", impact, dtype=pl.Float64).fill_nan(None))
    return out


class _ForwardWarnings(logging.Handler):
    """The flavor's warnings raised on this node's thread: two Predict nodes running in one worker process (Dask,
    in-process) each get their own."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(logging.WARNING)
        self.ctx = ctx
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.ctx.log.warning(record.getMessage())


@contextmanager
def _model_warnings_to(ctx: Context) -> Iterator[None]:
    """Scoring warnings from the flavor (which has no context) go to this node's log."""
    logger = logging.getLogger(_MODEL_LOG)
    handler = _ForwardWarnings(ctx)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@node("automl.predict", version=1, title=N_("Predict"), category=N_("Modeling"), icon="predict", heavy=True)
class Predict(Node):
    """Score a table with a model, appending predictions, probabilities and optional reason codes."""

    inputs = {"model": Model, "table": Table}
    outputs = {"table": Table}
    Settings = PredictSettings

    def compute(self, inputs: dict, settings: PredictSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        model = inputs["model"]
        k = settings.reason_codes
        module = flavors.explaining_module(model) if k else flavors.flavor_module(model)  # fail before any work
        in_points = hasattr(module, "points")  # scorecards also give their total points
        names = [settings.prediction_column, settings.probability_column,
                 *([settings.points_column] if in_points else []), *reason_names(k)]
        for name in names:  # every output name checked before any scoring work
            if name in table.columns:
                raise NodeInputError(tr("The table already has a column {col!r}; choose another output name",
                                        col=name))
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise NodeInputError(tr("Output column {col!r} is named twice (prediction, probability, points or reason "
                                    "codes); choose distinct names", col=repeated[0]))
        if k and model.info.get("problem_type") == "multiclass":
            raise NodeInputError(tr("Reason codes are for binary or regression models; this model is multiclass. "
                                    "Set reason codes to 0."))
        with _model_warnings_to(ctx):  # the table is prepared and checked once for every output
            features = flavors.prepare(model, table)
            reasons = reason_columns(module.contributions(model, features), k) if k else []
            scores = module.score(model, features)
            total_points = module.points(model, features) if in_points else None
        cols = [pl.Series(settings.prediction_column, scores.prediction)]
        if scores.proba is not None:
            if scores.problem_type == "binary":
                cols.append(scores.proba[str(scores.positive_class)].alias(settings.probability_column))
            else:
                cols.extend(scores.proba[c].alias(f"{settings.probability_column}_{c}") for c in scores.proba.columns)
        if total_points is not None:
            cols.append(total_points.alias(settings.points_column))
        return {"table": table.with_columns(cols + reasons)}
