"""What the model trainers (LightGBM, MLP) decide the same way: the problem type from the label, and which columns
are left out of the features. One rule per question, so a table trains alike in every node."""
from __future__ import annotations

from typing import Any

import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.sdk import Context
from nodes.automl.flavors import feature_kinds
from nodes.columns import identifier_like, require_columns

MAX_AUTO_CLASSES = 20  # an integer label with more distinct values than this is taken as a regression target


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
