"""Gradient boosting with LightGBM: one transparent, reproducible model with optional monotone constraints.

Banks need models whose direction of effect can be guaranteed (a higher debt-to-income ratio must never lower the
predicted default risk), so each feature may be constrained to push the score only up or only down. Training is
deterministic: the same data, settings and seed give the same `model.txt`, byte for byte, on the same machine.
The model is stored in LightGBM's text format and scored through `nodes.automl.gbm_flavor`, whose encoder is also
the one used here for training, so training and scoring cannot prepare features differently.
"""
from __future__ import annotations

import os
import re
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.fileio import atomic_output_path
from engine.i18n import N_, tr
from engine.ports import Model, ModelRef, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.automl import gbm_flavor
from nodes.automl.flavors import feature_kinds
from nodes.automl.training import (TRANSFORM_INPUT, VALID_INPUT, feature_frame, labelled_rows, label_codes,
                                   problem_type_of, provenance, validation_metrics, validation_rows)
from nodes.plotting import barh_margins, figure

ProblemType = Literal["auto", "binary", "multiclass", "regression"]
_CHART_FEATURES = 20


class GBMSettings(NodeSettings):
    label: str = Field(min_length=1, title=N_("Label column"), json_schema_extra={"widget": "column", "port": "train"})
    problem_type: ProblemType = Field("auto", title=N_("Problem type"), description=N_(
        "auto: two label values give binary; text or a few whole numbers give multiclass; other numbers regression"))
    n_estimators: int = Field(500, ge=1, le=100_000, title=N_("Number of trees"),
                              description=N_("The most trees to grow; early stopping may use fewer"))
    learning_rate: float = Field(0.05, gt=0.0, le=1.0, title=N_("Learning rate"))
    num_leaves: int = Field(31, ge=2, le=131_072, title=N_("Leaves per tree"))
    max_depth: int = Field(-1, ge=-1, le=256, title=N_("Maximum depth"), description=N_("-1: no limit"))
    min_child_samples: int = Field(20, ge=1, title=N_("Minimum rows per leaf"))
    subsample: float = Field(1.0, gt=0.0, le=1.0, title=N_("Row subsample"),
                             description=N_("Share of rows drawn for each tree; 1 uses all rows"))
    colsample: float = Field(1.0, gt=0.0, le=1.0, title=N_("Feature subsample"),
                             description=N_("Share of features drawn for each tree; 1 uses all features"))
    reg_lambda: float = Field(0.0, ge=0.0, title=N_("L2 regularisation"))
    early_stopping_rounds: int = Field(50, ge=0, title=N_("Early stopping rounds"), description=N_(
        "With a validation table: stop when its score has not improved for this many trees (0: never stop early)"))
    monotone_constraints: dict[str, Literal[-1, 0, 1]] = Field(
        default_factory=dict, title=N_("Monotone constraints"),
        description=N_("Column → 1 (the prediction never decreases as the value grows) or -1 (never increases); "
                       "for binary models the prediction is the probability of the positive class. Numeric "
                       "columns only, e.g. debt_to_income: 1, annual_income: -1"))
    exclude: list[str] = Field(default_factory=list, title=N_("Leave out columns"), description=N_(
        "Columns the model must not use (e.g. protected attributes). Dates and identifier-like text columns are "
        "always left out, with a note in the log"))
    seed: int | None = Field(None, title=N_("Seed"), description=N_("Empty uses the project seed"))


def threads() -> int:
    """The cores this process may use: fixed per machine, so a seed reproduces a model exactly on it."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def lgb_params(settings: GBMSettings, problem_type: str, n_classes: int, monotone: list[int], seed: int,
               num_threads: int) -> dict[str, Any]:
    """The exact parameters handed to `lightgbm.train` (tests train LightGBM directly with these)."""
    objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[problem_type]
    params: dict[str, Any] = {
        "objective": objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "max_depth": settings.max_depth,
        "min_data_in_leaf": settings.min_child_samples,
        "feature_fraction": settings.colsample,
        "bagging_fraction": settings.subsample,
        "bagging_freq": 1 if settings.subsample < 1.0 else 0,
        "lambda_l2": settings.reg_lambda,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": num_threads,
        "verbosity": -1,
    }
    if problem_type == "multiclass":
        params["num_class"] = n_classes
    if any(monotone):
        params["monotone_constraints"] = monotone
    return params


def lgb_feature_names(features: list[str]) -> list[str]:
    """Column names as LightGBM accepts them (no JSON punctuation or spaces), unique; for reading model.txt only:
    scoring passes columns by position, in `info["features"]` order."""
    names: list[str] = []
    for i, col in enumerate(features):
        name = re.sub(r'[\s"\\,:\[\]{}]', "_", col) or f"column_{i}"
        names.append(name if name not in names else f"{name}__{i}")
    return names


def _check_features(frame: pl.DataFrame, kinds: dict[str, str]) -> None:
    other = [f"{c!r} ({frame.schema[c]})" for c, k in kinds.items() if k == "other"]
    if other:
        raise NodeInputError(tr("LightGBM cannot use columns of these types (drop or convert them): {cols}",
                                cols=", ".join(other)))


def _check_monotone(settings: GBMSettings, kinds: dict[str, str], problem_type: str) -> list[int]:
    """One constraint per feature, in feature order; errors here, since LightGBM aborts the process on some."""
    wanted = {c: d for c, d in settings.monotone_constraints.items() if d != 0}
    if not wanted:
        return [0] * len(kinds)
    if problem_type == "multiclass":
        raise NodeInputError(tr("Monotone constraints apply to binary and regression models, not multiclass"))
    unknown = [c for c in wanted if c not in kinds]
    if unknown:
        raise NodeInputError(tr("Monotone constraints name columns that are not features: {cols}. Features are: "
                                "{have}", cols=", ".join(repr(c) for c in unknown), have=", ".join(kinds)))
    text = [c for c in wanted if kinds[c] == "text"]
    if text:
        raise NodeInputError(tr("Monotone constraints need numeric or boolean columns; {cols} hold text",
                                cols=", ".join(repr(c) for c in text)))
    return [int(wanted.get(c, 0)) for c in kinds]


def _categories(frame: pl.DataFrame, kinds: dict[str, str]) -> dict[str, list[str]]:
    return {col: frame[col].drop_nulls().cast(pl.String).unique().sort().to_list()
            for col, kind in kinds.items() if kind == "text"}


def _progress(ctx: Context, total: int) -> Any:
    step = max(1, total // 100)  # about a hundred updates, whatever the number of trees

    def callback(env: Any) -> None:
        ctx.check_cancelled()
        done = env.iteration - env.begin_iteration + 1
        if done % step == 0 or done == total:
            ctx.progress(0.95 * done / total, tr("tree {i} of {n}", i=done, n=total))

    return callback


def _valid_metrics(model: ModelRef, features: pl.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """Metrics of the saved model on the (prepared) validation features, scored as Evaluate and Predict will."""
    return validation_metrics(gbm_flavor.score(model, features), y, model.info["class_values"])


SHAP_ROWS = 2_000  # rows the global SHAP summary averages over: its ranking is stable long before that


def importance_table(booster: Any, features: list[str], iteration: int,
                     shap: np.ndarray | None = None) -> pl.DataFrame:
    """Gain, split count and share of gain per feature, plus `mean_abs_shap` (the mean |TreeSHAP contribution|,
    in the model's raw score units) when the contributions of a sample of rows are given; sorted by gain."""
    gain = booster.feature_importance("gain", iteration=iteration).astype(np.float64)
    split = booster.feature_importance("split", iteration=iteration).astype(np.int64)
    total = gain.sum()
    columns: dict[str, Any] = {"feature": features, "gain": gain, "split": split,
                               "share_of_gain": gain / total if total > 0 else np.zeros_like(gain)}
    if shap is not None:
        columns["mean_abs_shap"] = np.abs(shap).mean(axis=0) if len(shap) else np.zeros(len(features))
    return pl.DataFrame(columns).sort("gain", descending=True, maintain_order=True)  # ties keep the feature order


def shap_sample(model: ModelRef, features: pl.DataFrame, seed: int) -> np.ndarray | None:
    """TreeSHAP contributions of up to SHAP_ROWS seeded rows (None for multiclass models, which have none)."""
    if model.info["problem_type"] not in ("binary", "regression"):
        return None
    if features.height > SHAP_ROWS:
        features = features.sample(SHAP_ROWS, seed=seed)
    return gbm_flavor.contributions(model, features).to_numpy()


def _importance_chart(report: Report, table: pl.DataFrame) -> None:
    top = table.head(_CHART_FEATURES).reverse()
    labels = top["feature"].to_list()
    height = 1.2 + 0.28 * len(labels)
    fig = figure(6, height)
    ax = fig.subplots()
    ax.barh(labels, top["share_of_gain"].to_numpy(), color="#1e88e5")
    ax.set_xlabel(tr("Share of total gain"))
    ax.set_title(tr("Feature importance (gain)"))
    barh_margins(fig, labels, 6, height)
    report.add_figure(tr("Feature importance"), fig, tight=False)


@node("automl.lightgbm", version=1, title=N_("Gradient boosting (LightGBM)"), category=N_("Modeling"),
      icon="automl", heavy=True)
class LightGBM(Node):
    """Train one gradient-boosted tree model with LightGBM, reproducibly, with optional monotone constraints."""

    inputs = {"train": Table,
              "valid": VALID_INPUT, "transform": TRANSFORM_INPUT}
    outputs = {"model": Model, "feature_importance": Table, "report": ReportPort}
    Settings = GBMSettings

    def compute(self, inputs: dict, settings: GBMSettings, ctx: Context) -> dict:
        table = labelled_rows(inputs["train"], settings, ctx)  # type: ignore[arg-type]  # AutoML's label rules
        info = self._describe(table, settings, ctx)
        monotone = _check_monotone(settings, info["feature_kinds"], info["problem_type"])
        frame = table.select(info["features"])
        x, _ = gbm_flavor.encode_counting(info, frame)
        y = label_codes(table[settings.label], info, tr("Training table"))
        valid = self._valid(inputs.get("valid"), info, settings, ctx)

        import lightgbm as lgb

        seed = ctx.seed if settings.seed is None else settings.seed
        params = lgb_params(settings, info["problem_type"], len(info["classes"]), monotone, seed, threads())
        categorical = [i for i, c in enumerate(info["features"]) if c in info["categories"]]
        train_set = lgb.Dataset(x, label=y, feature_name=lgb_feature_names(info["features"]),
                                categorical_feature=categorical, free_raw_data=True)
        callbacks = [_progress(ctx, settings.n_estimators)]
        valid_sets = []
        if valid is not None:
            valid_sets = [lgb.Dataset(valid[1], label=valid[2], reference=train_set)]
            if settings.early_stopping_rounds:
                callbacks.append(lgb.early_stopping(settings.early_stopping_rounds, first_metric_only=True,
                                                    verbose=False))
        booster = lgb.train(params, train_set, num_boost_round=settings.n_estimators, valid_sets=valid_sets,
                            valid_names=["valid"] * len(valid_sets), callbacks=callbacks)
        trees = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        if trees < settings.n_estimators:
            ctx.log.info(tr("early stopping kept {n} of {total} trees", n=trees, total=settings.n_estimators))

        folder = ctx.workdir / "lightgbm"
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output_path(folder / gbm_flavor.MODEL_FILE) as tmp:
            booster.save_model(str(tmp), num_iteration=trees)
        info["params"] = params
        info["trees"] = trees
        info.update(provenance(inputs.get("transform"), ctx))
        model = ModelRef("lightgbm", folder, info)

        # global explanation: mean |TreeSHAP| on the validation rows when given (what the model meets), else train
        shap = shap_sample(model, valid[0] if valid is not None else frame, seed)
        importance = importance_table(booster, info["features"], trees, shap)
        report = Report(title=tr("LightGBM model"), kind="model")
        if valid is not None:
            info["metrics"] = _valid_metrics(model, valid[0], valid[2])
        report.metrics = {"problem_type": info["problem_type"], "trees": trees, **info.get("metrics", {})}
        report.tables[tr("Feature importance")] = importance
        if shap is not None:
            report.notes.append(tr("mean_abs_shap: the mean absolute TreeSHAP contribution of each feature over {n:,} "
                                   "rows of the {which} table, in {unit}: how much the feature moves a typical "
                                   "score", n=len(shap), which=tr("validation") if valid is not None else
                                   tr("training"), unit=tr("log-odds") if info["problem_type"] == "binary" else
                                   tr("units of the label")))
        _importance_chart(report, importance)
        ctx.progress(1.0)
        return {"model": model, "feature_importance": importance, "report": report}

    @staticmethod
    def _describe(table: pl.DataFrame, settings: GBMSettings, ctx: Context) -> dict[str, Any]:
        """The model's metadata (the contract in flavors.py), known before training."""
        label = table[settings.label]
        problem_type = problem_type_of(label, settings.problem_type, ctx)
        frame, skipped = feature_frame(table, settings.label, settings.exclude, ctx)
        kinds = feature_kinds(frame)
        _check_features(frame, kinds)
        values = [] if problem_type == "regression" else label.unique().sort().to_list()
        if problem_type == "binary":  # as AutoGluon does: the second in sorted order (1 of 0/1, True of booleans)
            ctx.log.info(tr("positive class (the event the probability is for): {value!r}", value=values[1]))
        info: dict[str, Any] = {
            "label": settings.label,
            "problem_type": problem_type,
            "features": frame.columns,
            "feature_kinds": kinds,
            "categories": _categories(frame, kinds),
            "left_out": skipped,
            "classes": [str(v) for v in values],
            "class_values": values,
            "positive_class": str(values[1]) if problem_type == "binary" else None,
            "train_rows": table.height,
            "best_model": "LightGBM",
            "monotone_constraints": {c: d for c, d in settings.monotone_constraints.items() if d != 0},
        }
        return info

    @staticmethod
    def _valid(valid: pl.DataFrame | None, info: dict, settings: GBMSettings,
               ctx: Context) -> tuple[pl.DataFrame, np.ndarray, np.ndarray] | None:
        """(prepared features, encoded matrix, label codes) of the validation rows with a label, or None."""
        if valid is None:
            return None
        features, labels = validation_rows(valid, info, "lightgbm", settings.label, ctx)
        y = label_codes(labels, info, tr("Validation table"))
        x, unseen = gbm_flavor.encode_counting(info, features)
        for col, n in unseen.items():
            ctx.log.warning(tr("validation table, column {col!r}: {n} value(s) not seen in training, treated as "
                               "missing", col=col, n=n))
        return features, x, y
