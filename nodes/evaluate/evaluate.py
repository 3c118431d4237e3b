"""Evaluate: score a held-out table and report AUC/KS/Gini (binary), RMSE/MAE/R² (regression) with plots."""
from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Model, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.automl.flavors import Scores, score
from nodes.columns import require_columns
from nodes.evaluate import metrics as m
from nodes.plotting import figure


class EvaluateSettings(NodeSettings):
    label: str | None = Field(None, title=N_("Label column"), description=N_("Empty uses the model's label"),
                              json_schema_extra={"widget": "column"})
    threshold: float = Field(0.5, ge=0.0, le=1.0, title=N_("Decision threshold"),
                             description=N_("Probability at or above which a row is predicted positive"))


def _plots(report: Report, y: np.ndarray, s: np.ndarray) -> None:
    _roc_plot(report, y, s)
    _ks_plot(report, y, s)


def _roc_plot(report: Report, y: np.ndarray, s: np.ndarray) -> None:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    fig = figure(5, 4.2)
    ax = fig.subplots()
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {report.metrics['auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set_xlabel(tr("False positive rate"))
    ax.set_ylabel(tr("True positive rate"))
    ax.set_title(tr("ROC curve"))
    ax.legend(loc="lower right")
    report.add_figure(tr("ROC curve"), fig)


def _ks_plot(report: Report, y: np.ndarray, s: np.ndarray) -> None:
    order = np.sort(s)
    pos = np.searchsorted(np.sort(s[y == 1]), order, side="right") / max(1, (y == 1).sum())
    neg = np.searchsorted(np.sort(s[y == 0]), order, side="right") / max(1, (y == 0).sum())
    k = int(np.argmax(np.abs(neg - pos)))
    fig = figure(5, 4.2)
    ax = fig.subplots()
    ax.plot(order, neg, lw=2, label=tr("Non-defaults (negatives)"))
    ax.plot(order, pos, lw=2, label=tr("Defaults (positives)"))
    ax.vlines(order[k], pos[k], neg[k], colors="red", linestyles=":", label=f"KS = {report.metrics['ks']:.3f}")
    ax.set_xlabel(tr("Score"))
    ax.set_ylabel(tr("Cumulative share"))
    ax.set_title(tr("KS curve"))
    ax.legend(loc="lower right")
    report.add_figure(tr("KS curve"), fig)


@node("evaluate.evaluate", version=1, title=N_("Evaluate"), category=N_("Evaluation"), icon="evaluate", heavy=True)
class Evaluate(Node):
    """Measure a model on held-out data: AUC, KS, Gini, confusion matrix, ROC and KS plots."""

    inputs = {"model": Model, "table": Table}
    outputs = {"report": ReportPort}
    Settings = EvaluateSettings

    def compute(self, inputs: dict, settings: EvaluateSettings, ctx: Context) -> dict:
        model = inputs["model"]
        table: pl.DataFrame = inputs["table"]
        label = settings.label or model.info.get("label")
        if not label:
            raise NodeInputError(tr("Set the label column: the model does not say which column it predicts"))
        require_columns(table, [label], tr("Label column"))
        table = table.filter(pl.col(label).is_not_null())
        if table.height == 0:
            raise NodeInputError(tr("No rows with a label to evaluate on"))
        scores: Scores = score(model, table)
        y_raw = table[label].to_numpy()
        report = Report(title=tr("Evaluation of {model}", model=model.info.get("best_model", model.flavor)),
                        kind="evaluation")
        if scores.problem_type == "binary":
            positive = scores.positive_class
            y = (y_raw.astype(str) == str(positive)).astype(int)
            if y.min() == y.max():
                raise NodeInputError(tr("The evaluation table has only one class in {col!r}; AUC needs both",
                                        col=label))
            s = scores.proba[str(positive)].to_numpy()  # type: ignore[index]
            report.metrics = m.binary_metrics(y, s, settings.threshold)
            negative = next(c for c in scores.classes if str(c) != str(positive))
            pred_lab = np.where(s >= settings.threshold, str(positive), str(negative))
            report.tables[tr("Confusion matrix")] = m.confusion_table(
                y_raw.astype(str), pred_lab, [str(negative), str(positive)])
            _plots(report, y, s)
        elif scores.problem_type == "regression":
            report.metrics = m.regression_metrics(y_raw.astype(float), scores.prediction.astype(float))
        else:
            report.metrics = m.multiclass_metrics(y_raw.astype(str), scores.prediction.astype(str))
            labels = [str(c) for c in scores.classes]
            report.tables[tr("Confusion matrix")] = m.confusion_table(
                y_raw.astype(str), scores.prediction.astype(str), labels)
        report.metrics = {"problem_type": scores.problem_type, **report.metrics}
        ctx.log.info(", ".join(f"{k}={v:.4f}" for k, v in report.metrics.items() if isinstance(v, float)))
        return {"report": report}
