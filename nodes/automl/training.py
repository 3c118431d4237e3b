"""What the model trainers (LightGBM, MLP) decide the same way: the problem type from the label, and which columns
are left out of the features. One rule per question, so a table trains alike in every node."""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, ModelRef, Table
from engine.sdk import Context, PortSpec
from nodes.automl.flavors import Scores, feature_kinds, prepare
from nodes.columns import identifier_like, require_columns

MAX_AUTO_CLASSES = 20  # an integer label with more distinct values than this is taken as a regression target

TRANSFORM_INPUT = PortSpec("transform", FittedTransformPort, required=False, description=N_(
    "Preprocessing fitted on the training data; kept inside the model so Evaluate, Predict and Export prepare new "
    "data exactly the same way"))
VALID_INPUT = PortSpec("valid", Table, required=False, description=N_(
    "Validation rows for early stopping and the report's metrics, with the training table's columns (prepared the "
    "same way)"))


class _LabelSettings(Protocol):
    """What the label checks read: AutoML's settings, and those of other training nodes that share them."""

    label: str
    problem_type: str


def check_label(table: pl.DataFrame, settings: _LabelSettings) -> pl.DataFrame:
    require_columns(table, [settings.label], tr("Label column"))
    if table.height == 0:
        raise NodeInputError(tr("The training table has no rows"))
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


def labelled_rows(train: pl.DataFrame, settings: _LabelSettings, ctx: Context) -> pl.DataFrame:
    """The training rows that have a label (the others are counted in the log), checked by `check_label`."""
    table = check_label(train, settings)
    if train.height > table.height:
        ctx.log.warning(tr("dropped {n} rows with a missing label", n=train.height - table.height))
    return table


def infer_problem_type(label: pl.Series) -> str:
    """What `auto` means, decided from the label alone (the same rule, whatever the features)."""
    n = label.n_unique()
    if n == 2:
        return "binary"
    if not label.dtype.is_numeric():
        return "multiclass"
    if label.dtype.is_integer() and n <= MAX_AUTO_CLASSES:
        return "multiclass"
    return "regression"


def problem_type_of(label: pl.Series, setting: str, ctx: Context) -> str:
    """The problem type the settings ask for ("auto" resolved); NodeInputError for labels no trainer can use."""
    kind = feature_kinds(label.to_frame())[label.name]
    if kind not in ("numeric", "text", "boolean"):
        raise NodeInputError(tr("Label column {col!r} has type {dtype}; use numbers, text or booleans",
                                col=label.name, dtype=str(label.dtype)))
    problem_type = setting
    if problem_type == "auto":
        problem_type = infer_problem_type(label)
        ctx.log.info(tr("problem type: {kind}", kind=problem_type))
    if problem_type == "regression" and kind != "numeric":
        raise NodeInputError(tr("Regression needs a numeric label; {col!r} holds {kind}", col=label.name,
                                kind=kind))
    return problem_type


def left_out(frame: pl.DataFrame, exclude: list[str]) -> dict[str, str]:
    """Columns the model will not use, with the reason: the user's list, then dates (derive numbers from them with
    Date parts) and identifier-like text (a model would learn each customer's outcome by heart)."""
    require_columns(frame, exclude, tr("Leave out columns"))
    reasons = {c: tr("left out in the settings") for c in exclude}
    for col, kind in feature_kinds(frame).items():
        if col in reasons:
            continue
        if kind == "datetime":
            reasons[col] = tr("a date or time: derive numbers from it with the Date parts node")
        elif kind == "text" and (why := identifier_like(frame[col])):
            reasons[col] = why
    return reasons


def feature_frame(table: pl.DataFrame, label: str, exclude: list[str], ctx: Context) -> tuple[pl.DataFrame,
                                                                                              dict[str, Any]]:
    """The training table without the label and the left-out columns (each named in the log), and the reasons."""
    frame = table.drop(label)
    skipped = left_out(frame, exclude)
    for col, why in skipped.items():
        ctx.log.warning(tr("column {col!r} left out: {why}", col=col, why=why))
    frame = frame.drop(list(skipped))
    if frame.width == 0:
        raise NodeInputError(tr("No feature columns are left to train on (left out: {cols})",
                                cols=", ".join(repr(c) for c in skipped)))
    return frame, skipped


def validation_rows(valid: pl.DataFrame, info: dict[str, Any], flavor: str, label: str,
                    ctx: Context) -> tuple[pl.DataFrame, pl.Series]:
    """The validation rows that have a label, as the model's checked input columns, and their labels.

    The validation table comes prepared like the training table, so the model's transform is not applied to it."""
    require_columns(valid, [label], tr("Validation table"))
    valid = valid.filter(pl.col(label).is_not_null())
    if valid.height == 0:
        raise NodeInputError(tr("The validation table has no rows with a label in {col!r}", col=label))
    try:
        features = prepare(ModelRef(flavor, ctx.workdir, {k: v for k, v in info.items() if k != "transform"}), valid)
    except NodeInputError as exc:
        raise NodeInputError(tr("Validation table: {problem}", problem=str(exc))) from None
    return features, valid[label]


def label_codes(label: pl.Series, info: dict[str, Any], where: str) -> np.ndarray:
    """Regression: the values as float64; classifiers: each row's index in `info["class_values"]`, compared in the
    label's own type (True is not "true"; an integer 1 read back as 1.0 still matches), unknown classes named."""
    if info["problem_type"] == "regression":
        return label.cast(pl.Float64).to_numpy()
    known = pl.Series(info["class_values"])
    codes = label.cast(known.dtype, strict=False).replace_strict(
        known, pl.Series(range(known.len()), dtype=pl.Int64), default=None, return_dtype=pl.Int64)
    unseen = label.filter(codes.is_null()).unique().sort().to_list()
    if unseen:
        raise NodeInputError(tr("{where}: label {col!r} has classes the training data lacks: {values} (training "
                                "classes: {known})", where=where, col=info["label"],
                                values=", ".join(repr(v) for v in unseen[:10]), known=", ".join(info["classes"])))
    return codes.to_numpy()


def validation_metrics(scores: Scores, y: np.ndarray, class_values: list[Any]) -> dict[str, Any]:
    """A trainer's validation metrics from its own scores of the validation rows (`y` from `label_codes`), with
    the functions Evaluate uses; no AUC when the rows hold one class only."""
    from nodes.evaluate import metrics as m

    if scores.problem_type == "binary":
        if y.min() == y.max():
            return {}
        return m.binary_metrics(y, scores.proba[str(scores.positive_class)].to_numpy(), 0.5)  # type: ignore[index]
    if scores.problem_type == "regression":
        return m.regression_metrics(y, scores.prediction.astype(float))
    truth = np.asarray(class_values, dtype=object)[y].astype(str)
    return m.multiclass_metrics(truth, scores.prediction.astype(str))


def provenance(transform: FittedTransform | None, ctx: Context) -> dict[str, Any]:
    """What a trained model's info carries about where it came from: the fitted preparation, so scoring starts
    from raw data (applied with these parameters), and the training table's content digest and the node that made
    it (from the engine's run lineage), so an exported package names its data. Only content hashes are kept: a run
    id would make two identical trainings produce different artifacts."""
    out: dict[str, Any] = {}
    if transform is not None:
        out["transform"] = {"kind": transform.kind, "params": transform.params, "columns": list(transform.columns)}
    train = (ctx.lineage.get("inputs") or {}).get("train") or {}
    if train.get("digest"):
        out["lineage"] = {"data_fingerprint": train["digest"], "data_node": train.get("node_id")}
    return out
