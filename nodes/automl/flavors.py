"""Loading, scoring and explaining fitted models by flavor, so Evaluate, Predict and Export work for every model kind.

Each flavor is one module with a `score(model, features) -> Scores` function and, where the model can say why it
scored a row as it did, `contributions(model, features) -> pl.DataFrame`. `FLAVORS` maps a flavor name to its
module, imported only when a model of that flavor is used (so scoring a scorecard never imports AutoGluon).

Shared steps live here and nowhere else: the fitted preparation that travels with the model is applied, then the
table is checked for the columns and types the model was trained on (`prepare`).

Native formats such as AutoGluon's are pickle underneath and can run code when loaded, so models are opened only
from artifacts whose content hash matches a cache entry signed with this user's key (engine/store.py,
engine/signing.py), and only in worker processes: the nodes that load them are heavy, so a crash in a native
library fails one node. Flavors of our own (scorecard, LightGBM text, ONNX) store no pickle at all.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import FittedTransform, ModelRef
from nodes.features.fitted import apply_transform

FLAVORS = {
    "autogluon": "nodes.automl.autogluon_flavor",
    "lightgbm": "nodes.automl.gbm_flavor",
    "scorecard": "nodes.automl.scorecard_flavor",
    "mlp": "nodes.automl.mlp_flavor",
}


@dataclass
class Scores:
    """Predictions for a table: labels (or values), and class probabilities for classifiers."""

    prediction: np.ndarray
    proba: pl.DataFrame | None  # one column per class, named by str(class)
    classes: list[Any]
    problem_type: str
    positive_class: Any | None


def flavor_module(model: ModelRef) -> Any:
    name = FLAVORS.get(model.flavor)
    if name is None:
        raise NodeInputError(tr("Model flavor {flavor!r} is not supported by this node", flavor=model.flavor))
    return importlib.import_module(name)


def prepare(model: ModelRef, table: pl.DataFrame) -> pl.DataFrame:
    """The model's input columns, prepared as in training; NodeInputError naming missing or mistyped columns."""
    spec = model.info.get("transform")
    if spec:  # the preparation fitted on the training data travels with the model
        table = apply_transform(FittedTransform(spec["kind"], spec["params"], tuple(spec["columns"])), table)
    features = model.info.get("features", [])
    missing = [c for c in features if c not in table.columns]
    if missing:
        raise NodeInputError(tr("The table lacks columns the model was trained on: {cols}",
                                cols=", ".join(repr(c) for c in missing)))
    frame = table.select(features)
    wrong = [f"{c!r} ({tr('expected')} {want}, {tr('got')} {kind_of(frame.schema[c])})"
             for c, want in (model.info.get("feature_kinds") or {}).items()
             if c in frame.columns and not _compatible(want, kind_of(frame.schema[c]))]
    if wrong:
        raise NodeInputError(tr("Columns have types the model was not trained on: {cols}", cols=", ".join(wrong)))
    return frame


def kind_of(dtype: pl.DataType) -> str:
    """numeric | text | boolean | datetime | other: the type families a model tells apart."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "text"
    if dtype.is_temporal():
        return "datetime"
    return "other"


def feature_kinds(frame: pl.DataFrame) -> dict[str, str]:
    """What training records in `info["feature_kinds"]`, for `prepare` to check new data against."""
    return {c: kind_of(t) for c, t in frame.schema.items()}


def _compatible(want: str, got: str) -> bool:
    # a column entirely null reads as another type; booleans score as 0/1 numbers
    return want == got or got == "other" or {want, got} == {"numeric", "boolean"}


def score(model: ModelRef, table: pl.DataFrame) -> Scores:
    module = flavor_module(model)
    return module.score(model, prepare(model, table))


def explaining_module(model: ModelRef) -> Any:
    """The flavor module, which must explain rows (`contributions`); NodeInputError naming the flavor otherwise."""
    module = flavor_module(model)
    if not hasattr(module, "contributions"):
        raise NodeInputError(tr("Reason codes need a model that explains each row (LightGBM, scorecard or MLP); "
                                "{flavor} models do not", flavor=model.flavor))
    return module


def contributions(model: ModelRef, table: pl.DataFrame) -> pl.DataFrame:
    """Per-row, per-feature contributions to the score (log-odds for classifiers), for reason codes."""
    return explaining_module(model).contributions(model, prepare(model, table))
