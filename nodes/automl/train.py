"""AutoML: a thin wrapper over AutoGluon's TabularPredictor, not a rewrite.

The same settings and data give AutoGluon's own result: the node only converts the polars table to pandas,
passes the settings straight through and saves the predictor in AutoGluon's native folder format. Everything the
node adds happens after the fit and leaves it untouched: permutation feature importance (`feature_importance`), a
record of whether a GPU was used, and clear messages when nothing could be trained. The only fit argument the node
may add is `num_gpus`, and only when a GPU is asked for or present (see `gpu_request`).
"""
from __future__ import annotations

import logging
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Model, ModelRef, Table
from engine.sdk import Context, Node, NodeSettings, PortSpec, node
from nodes.automl.flavors import feature_kinds
from nodes.automl.training import TRANSFORM_INPUT, labelled_rows, provenance
from nodes.columns import require_columns

ProblemType = Literal["auto", "binary", "multiclass", "regression"]
EvalMetric = Literal["auto", "roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "rmse", "mae", "r2"]
Presets = Literal["medium_quality", "good_quality", "high_quality", "best_quality", "optimize_for_deployment"]
ModelFamily = Literal["GBM", "CAT", "XGB", "RF", "XT", "KNN", "LR", "NN_TORCH", "FASTAI"]
UseGPU = Literal["auto", "yes", "no"]

# Permutation importance is kept cheap: at most this many held-out rows, shuffled this many times per feature
# (AutoGluon's defaults are 5000 rows and 5 shuffles). Enough to rank features; the stddev and p_value columns
# say how sure each estimate is.
FI_ROWS = 1000
FI_SHUFFLES = 3
FI_COLUMNS = {"feature": pl.String, "importance": pl.Float64, "stddev": pl.Float64, "p_value": pl.Float64}


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
    use_gpu: UseGPU = Field("auto", title=N_("Use a GPU"), description=N_(
        "auto: the worker's CUDA GPU when it has one; yes: fail on a worker without one; no: CPU only"))
    feature_importance: bool = Field(True, title=N_("Feature importance"), description=N_(
        "Permutation importance of each feature on held-out rows (the validation table, else AutoGluon's own "
        "tuning rows), on at most 1000 rows with 3 shuffles; adds a little time after training"))


# AutoGluon's messages when it skips a model, or stops altogether, for lack of time
_OUT_OF_TIME = re.compile(r"time limit exceeded|no time left|not enough time|exceeds the maximum time limit", re.IGNORECASE)
# AutoGluon's errors when a fit ends without any model
_NOTHING_TRAINED = re.compile(r"no models were trained|not enough time left to train models", re.IGNORECASE)


class _ForwardLogs(logging.Handler):
    def __init__(self, ctx: Context) -> None:
        super().__init__(logging.INFO)
        self.ctx = ctx
        self.out_of_time = False  # AutoGluon said it ran out of time for a model

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().strip()
        if msg:
            self.out_of_time = self.out_of_time or bool(_OUT_OF_TIME.search(msg))
            self.ctx.log.log(record.levelno, msg)


# Families whose library is optional: AutoGluon skips them with a warning when it is missing, so leaving them out
# up front changes no result and keeps the node's log free of import errors.
_FAMILY_PACKAGES = {"FASTAI": "fastai"}


def cuda_available() -> bool:
    """Whether this worker has a usable CUDA GPU (torch is how AutoGluon and the MLP node reach it).

    Without the NVIDIA driver there is no GPU to find: that is answered without importing torch, which costs
    about 1.5 s that a CPU worker would add to every AutoML run for nothing."""
    if "torch" not in sys.modules and not (Path("/proc/driver/nvidia/version").exists()
                                           or shutil.which("nvidia-smi")):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_request(settings: AutoMLSettings) -> int | None:
    """`num_gpus` for the fit, or None to leave AutoGluon's default (which is what the fit gets without a GPU)."""
    if settings.use_gpu == "no":
        return 0
    if cuda_available():
        return 1
    if settings.use_gpu == "yes":
        raise NodeInputError(tr("Use a GPU is set to yes but this worker has no CUDA GPU; choose auto or no"))
    return None


def fit_kwargs(settings: AutoMLSettings, num_gpus: int | None = None) -> dict:
    """The exact arguments handed to TabularPredictor.fit (tests call AutoGluon directly with these)."""
    import importlib.util

    kw: dict = {"time_limit": settings.time_limit_s, "presets": settings.presets}
    if num_gpus is not None:
        kw["num_gpus"] = num_gpus
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


def json_value(value: Any) -> Any:
    """A label value as plain JSON (numpy scalars become Python ints, floats, bools)."""
    return value.item() if hasattr(value, "item") else value


def check_valid(valid: pl.DataFrame, table: pl.DataFrame, label: str) -> pl.DataFrame:
    """The validation rows with a label; they must have the training table's columns (prepared the same way)."""
    require_columns(valid, [label], tr("Validation table"))
    missing = [c for c in table.columns if c not in valid.columns]
    if missing:
        raise NodeInputError(tr("The validation table lacks training columns: {cols}",
                                cols=", ".join(repr(c) for c in missing)))
    valid = valid.select(table.columns).filter(pl.col(label).is_not_null())
    if valid.height == 0:
        raise NodeInputError(tr("The validation table has no rows with a label in {col!r}", col=label))
    return valid


def feature_importance(predictor: Any, valid: pl.DataFrame | None, ctx: Context) -> pl.DataFrame:
    """Permutation importance of the best model: on `valid` when given (the original columns), else on the rows
    AutoGluon held out for tuning, in its own feature names (`feature_stage="transformed"`: e.g. a date becomes
    several columns). Bagged models keep no held-out rows: then the table is empty and the log says why."""
    kw = {"subsample_size": FI_ROWS, "num_shuffle_sets": FI_SHUFFLES, "include_confidence_band": False,
          "silent": True}
    try:
        if valid is not None:
            fi = predictor.feature_importance(valid.to_pandas(), **kw)
        else:
            fi = predictor.feature_importance(None, feature_stage="transformed", **kw)
    except AssertionError as exc:  # AutoGluon's way of saying it kept no held-out rows
        ctx.log.warning(tr("no feature importance: AutoGluon kept no held-out rows to measure it on ({error}); "
                           "connect a validation table", error=str(exc)))
        return pl.DataFrame(schema=FI_COLUMNS)
    return pl.DataFrame({"feature": [str(f) for f in fi.index],
                         "importance": fi["importance"].to_numpy(dtype=float),
                         "stddev": fi["stddev"].to_numpy(dtype=float),
                         "p_value": fi["p_value"].to_numpy(dtype=float)}, schema=FI_COLUMNS)


def models_on_gpu(predictor: Any, num_gpus: int | None) -> list[str]:
    """The trained models that AutoGluon fitted with a GPU share (from each model's fit metadata). Reading that
    metadata loads every model, so it is only read when the fit was offered a GPU."""
    if not num_gpus:
        return []
    return [name for name in predictor.model_names()
            if (predictor.model_info(name).get("num_gpus") or 0) > 0]


def no_model_error(exc: Exception, out_of_time: bool, budget: int) -> NodeInputError:
    """What to tell the user when AutoGluon trained nothing: a too-small budget is the usual cause."""
    if out_of_time or _OUT_OF_TIME.search(str(exc)):
        return NodeInputError(tr("The time budget of {n} s was too small to train any model; try at least {m} s "
                                 "(or fewer rows or model families)", n=budget, m=max(60, 4 * budget)))
    return NodeInputError(tr("AutoGluon trained no model ({error}); the node's log says why each model family "
                             "was skipped", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__))


@node("automl.autogluon", version=1, title=N_("AutoML"), category=N_("Modeling"), heavy=True, icon="automl")
class AutoML(Node):
    """Train and ensemble many models with AutoGluon within a time budget."""

    inputs = {"train": Table,
              "valid": PortSpec("valid", Table, required=False, description=N_(
                  "Held-out rows, with the training table's columns (prepared the same way), to measure feature "
                  "importance on; not used for training")),
              "transform": TRANSFORM_INPUT}
    outputs = {"model": Model, "leaderboard": Table, "feature_importance": Table}
    Settings = AutoMLSettings

    def compute(self, inputs: dict, settings: AutoMLSettings, ctx: Context) -> dict:
        table = labelled_rows(inputs["train"], settings, ctx)  # fail fast, before the slow import
        valid = inputs.get("valid")
        if valid is not None and settings.feature_importance:
            valid = check_valid(valid, table, settings.label)
        num_gpus = gpu_request(settings)
        from autogluon.tabular import TabularPredictor

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
            seed = ctx.seed if settings.seed is None else settings.seed
            predictor = TabularPredictor(path=str(path), verbosity=2, **predictor_kwargs(settings, seed))
            try:
                predictor.fit(frame, **fit_kwargs(settings, num_gpus))
            except (RuntimeError, AssertionError) as exc:
                if not _NOTHING_TRAINED.search(str(exc)):
                    raise
                raise no_model_error(exc, handler.out_of_time, settings.time_limit_s) from None
            leaderboard = predictor.leaderboard(silent=True)
            done.set()  # training is over: stop the budget ticker before reporting the next step
            importance = pl.DataFrame(schema=FI_COLUMNS)
            if settings.feature_importance:
                ctx.progress(None, tr("measuring feature importance"))
                importance = feature_importance(predictor, valid, ctx)
        finally:
            done.set()
            ag_log.removeHandler(handler)
            for h in own_streams:
                ag_log.addHandler(h)
        classes = [json_value(c) for c in (predictor.class_labels or [])]
        on_gpu = models_on_gpu(predictor, num_gpus)
        info = {
            "label": settings.label,
            "problem_type": predictor.problem_type,
            "eval_metric": predictor.eval_metric.name,
            "best_model": predictor.model_best,
            "features": [c for c in table.columns if c != settings.label],
            "feature_kinds": feature_kinds(table.drop(settings.label)),
            "classes": [str(c) for c in classes],
            "class_values": classes,
            "positive_class": str(predictor.positive_class) if predictor.problem_type == "binary" else None,
            "train_rows": table.height,
            "num_gpus": num_gpus,
            "used_gpu": bool(on_gpu),
            "models_on_gpu": on_gpu,
        }
        if on_gpu:
            ctx.log.info(tr("models trained on the GPU: {models}", models=", ".join(on_gpu)))
        info.update(provenance(inputs.get("transform"), ctx))
        ctx.progress(1.0)
        board = pl.from_pandas(leaderboard)
        return {"model": ModelRef("autogluon", path, info), "leaderboard": board, "feature_importance": importance}
