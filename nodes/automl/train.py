"""AutoML: a thin wrapper over AutoGluon's TabularPredictor, not a rewrite.

The same settings and data give AutoGluon's own result: the node only converts the polars table to pandas,
passes the settings straight through and saves the predictor in AutoGluon's native folder format.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransformPort, Model, ModelRef, Table
from engine.sdk import Context, Node, NodeSettings, PortSpec, node
from nodes.columns import require_columns

ProblemType = Literal["auto", "binary", "multiclass", "regression"]
EvalMetric = Literal["auto", "roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "rmse", "mae", "r2"]
Presets = Literal["medium_quality", "good_quality", "high_quality", "best_quality", "optimize_for_deployment"]
ModelFamily = Literal["GBM", "CAT", "XGB", "RF", "XT", "KNN", "LR", "NN_TORCH", "FASTAI"]


class AutoMLSettings(NodeSettings):
    label: str = Field(min_length=1, title=N_("Label column"), json_schema_extra={"widget": "column"})
    problem_type: ProblemType = Field("auto", title=N_("Problem type"))
    eval_metric: EvalMetric = Field("auto", title=N_("Evaluation metric"))
    time_limit_s: int = Field(120, ge=5, le=7 * 24 * 3600, title=N_("Time budget (seconds)"))
    presets: Presets = Field("medium_quality", title=N_("Presets"))
    included_model_types: list[ModelFamily] = Field(default_factory=list, title=N_("Only these model families"),
                                                    description=N_("Empty: all families of the preset"))
    excluded_model_types: list[ModelFamily] = Field(default_factory=list, title=N_("Exclude model families"))
    seed: int | None = Field(None, title=N_("Seed"), description=N_("Empty uses the project seed"))


class _ForwardLogs(logging.Handler):
    def __init__(self, ctx: Context) -> None:
        super().__init__(logging.INFO)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().strip()
        if msg:
            self.ctx.log.log(record.levelno, msg)


# Families whose library is optional: AutoGluon skips them with a warning when it is missing, so leaving them out
# up front changes no result and keeps the node's log free of import errors.
_FAMILY_PACKAGES = {"FASTAI": "fastai"}


def fit_kwargs(settings: AutoMLSettings) -> dict:
    """The exact arguments handed to TabularPredictor.fit (tests call AutoGluon directly with these)."""
    import importlib.util

    kw: dict = {"time_limit": settings.time_limit_s, "presets": settings.presets}
    if settings.included_model_types:
        kw["included_model_types"] = list(settings.included_model_types)
    missing = [f for f, pkg in _FAMILY_PACKAGES.items()
               if importlib.util.find_spec(pkg) is None and f not in settings.included_model_types]
    excluded = list(dict.fromkeys([*settings.excluded_model_types, *missing]))
    if excluded:
        kw["excluded_model_types"] = excluded
    return kw


def predictor_kwargs(settings: AutoMLSettings, seed: int) -> dict:
    """The exact arguments handed to the TabularPredictor constructor (besides `path`)."""
    return {
        "label": settings.label,
        "problem_type": None if settings.problem_type == "auto" else settings.problem_type,
        "eval_metric": None if settings.eval_metric == "auto" else settings.eval_metric,
        "learner_kwargs": {"random_state": seed},
    }


def check_label(table: pl.DataFrame, settings: AutoMLSettings) -> pl.DataFrame:
    require_columns(table, [settings.label], tr("Label column"))
    label = table[settings.label]
    if label.null_count() == table.height:
        raise NodeInputError(tr("Label column {col!r} is empty", col=settings.label))
    table = table.filter(pl.col(settings.label).is_not_null())
    n_classes = table[settings.label].n_unique()
    if n_classes < 2:
        value = table[settings.label][0]
        raise NodeInputError(tr("Label column {col!r} has a single class ({value!r}) in the training data; a model "
                                "needs at least two classes. Check the label column and the split.",
                                col=settings.label, value=value))
    if settings.problem_type == "binary" and n_classes != 2:
        raise NodeInputError(tr("Problem type is binary but label {col!r} has {n} classes",
                                col=settings.label, n=n_classes))
    if table.width < 2:
        raise NodeInputError(tr("The training table has no feature columns besides the label"))
    return table


@node("automl.autogluon", version=1, title=N_("AutoML"), category=N_("Modeling"), heavy=True, icon="automl")
class AutoML(Node):
    """Train and ensemble many models with AutoGluon within a time budget."""

    inputs = {"train": Table,
              "transform": PortSpec("transform", FittedTransformPort, required=False, description=N_(
                  "Preprocessing fitted on the training data; kept inside the model so Evaluate, Predict and "
                  "Export prepare new data exactly the same way"))}
    outputs = {"model": Model, "leaderboard": Table}
    Settings = AutoMLSettings

    def compute(self, inputs: dict, settings: AutoMLSettings, ctx: Context) -> dict:
        table = check_label(inputs["train"], settings)  # fail fast, before the slow import
        from autogluon.tabular import TabularPredictor

        dropped = inputs["train"].height - table.height
        if dropped:
            ctx.log.warning(tr("dropped {n} rows with a missing label", n=dropped))
        frame = table.to_pandas()
        path = ctx.workdir / "autogluon"
        handler = _ForwardLogs(ctx)
        ag_log = logging.getLogger("autogluon")
        # AutoGluon's log goes to the node's log (shown per node in the app, kept out of the CLI's progress view)
        own_streams = [h for h in ag_log.handlers if isinstance(h, logging.StreamHandler)]
        for h in own_streams:
            ag_log.removeHandler(h)
        ag_log.addHandler(handler)
        done = threading.Event()

        def tick() -> None:  # AutoGluon reports no progress; the time budget is a faithful proxy
            start = time.monotonic()
            while not done.wait(0.5):
                elapsed = time.monotonic() - start
                ctx.progress(min(0.99, elapsed / settings.time_limit_s),
                             tr("training: {s:.0f}s of {budget}s", s=elapsed, budget=settings.time_limit_s))

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            predictor = TabularPredictor(path=str(path), verbosity=2, **predictor_kwargs(settings, ctx.seed if settings.seed is None else settings.seed))
            predictor.fit(frame, **fit_kwargs(settings))
            leaderboard = predictor.leaderboard(silent=True)
        finally:
            done.set()
            ag_log.removeHandler(handler)
            for h in own_streams:
                ag_log.addHandler(h)
        info = {
            "label": settings.label,
            "problem_type": predictor.problem_type,
            "eval_metric": predictor.eval_metric.name,
            "best_model": predictor.model_best,
            "features": [c for c in table.columns if c != settings.label],
            "classes": [str(c) for c in (predictor.class_labels or [])],
            "positive_class": str(predictor.positive_class) if predictor.problem_type == "binary" else None,
            "train_rows": table.height,
        }
        transform = inputs.get("transform")
        if transform is not None:  # scoring starts from raw data: the model prepares it with these parameters
            info["transform"] = {"kind": transform.kind, "params": transform.params, "columns": list(transform.columns)}
        ctx.progress(1.0)
        board = pl.from_pandas(leaderboard)
        return {"model": ModelRef("autogluon", path, info), "leaderboard": board}
