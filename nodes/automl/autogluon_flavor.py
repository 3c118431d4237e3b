"""The `autogluon` flavor: a TabularPredictor folder in AutoGluon's native format (see flavors.py on safety)."""
from __future__ import annotations

from typing import Any

import polars as pl

from engine.ports import ModelRef
from nodes.automl.flavors import Scores


def load(model: ModelRef) -> Any:
    from autogluon.tabular import TabularPredictor

    return TabularPredictor.load(str(model.path), verbosity=0)


def score(model: ModelRef, features: pl.DataFrame) -> Scores:
    predictor = load(model)
    frame = features.to_pandas()
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
