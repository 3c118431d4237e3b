"""Loading and scoring fitted models by flavor, so Evaluate and Predict work for every model kind.

Only `autogluon` exists today; issue-5 flavors (LightGBM, scorecard, torch, ONNX) add a branch here. Native formats
such as AutoGluon's are pickle underneath and can run code when loaded, so models are opened only from artifacts
whose content hash matches a cache entry signed with this user's key (engine/store.py, engine/signing.py), and
only in worker processes: the nodes that load them are heavy, so a crash in a native library fails one node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import FittedTransform, ModelRef
from nodes.features.fitted import apply_transform


@dataclass
class Scores:
    """Predictions for a table: labels (or values), and class probabilities for classifiers."""

    prediction: np.ndarray
    proba: pl.DataFrame | None  # one column per class, named by str(class)
    classes: list[Any]
    problem_type: str
    positive_class: Any | None


def load_autogluon(model: ModelRef) -> Any:
    from autogluon.tabular import TabularPredictor

    return TabularPredictor.load(str(model.path), verbosity=0)


def score(model: ModelRef, table: pl.DataFrame) -> Scores:
    if model.flavor != "autogluon":
        raise NodeInputError(tr("Model flavor {flavor!r} is not supported by this node", flavor=model.flavor))
    spec = model.info.get("transform")
    if spec:  # the preparation fitted on the training data travels with the model
        table = apply_transform(FittedTransform(spec["kind"], spec["params"], tuple(spec["columns"])), table)
    features = model.info.get("features", [])
    missing = [c for c in features if c not in table.columns]
    if missing:
        raise NodeInputError(tr("The table lacks columns the model was trained on: {cols}",
                                cols=", ".join(repr(c) for c in missing)))
    predictor = load_autogluon(model)
    frame = table.select(features).to_pandas()
    prediction = predictor.predict(frame).to_numpy()
    problem_type = predictor.problem_type
    proba = None
    classes: list[Any] = []
    positive = None
    if problem_type in ("binary", "multiclass"):
        p = predictor.predict_proba(frame)
        classes = list(p.columns)
        proba = pl.DataFrame({str(c): p[c].to_numpy() for c in classes})
        if problem_type == "binary":
            positive = predictor.positive_class
    return Scores(prediction, proba, classes, problem_type, positive)
