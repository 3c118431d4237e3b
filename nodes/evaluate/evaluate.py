"""Evaluate: score a held-out table and report what a model validator reads.

Binary models get AUC, KS, Gini, a confusion matrix at the threshold, lift and gains by decile, calibration
(reliability curve, Brier score) and, with a `reference` table such as the training data, the population stability
index of the scores; regression gets RMSE/MAE/R², multiclass accuracy and a confusion matrix. A `segment` column
adds the same metrics per group (fairness slices). Metric arithmetic lives in metrics.py, charts in figures.py.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.experiments import curve_tables
from engine.i18n import N_, tr
from engine.ports import Model, ModelRef, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, PortSpec, node
from nodes.automl.flavors import Scores, score
from nodes.columns import require_columns
from nodes.evaluate import figures, slices
from nodes.evaluate import metrics as m


class EvaluateSettings(NodeSettings):
    label: str | None = Field(None, title=N_("Label column"), description=N_("Empty uses the model's label"),
                              json_schema_extra={"widget": "column"})
    threshold: float = Field(0.5, ge=0.0, le=1.0, title=N_("Decision threshold"),
                             description=N_("Probability at or above which a row is predicted positive"))
    segment: str | None = Field(None, title=N_("Segment column"),
                                description=N_("Optional: also report the metrics within each value of this column "
                                               "(fairness slices, e.g. region or gender; at most 50 values)"),
                                json_schema_extra={"widget": "column"})
    calibration_bins: Literal["uniform", "quantile"] = Field(
        "quantile", title=N_("Calibration bins"),
        description=N_("Quantile: ten bins with equal row counts, readable when most probabilities are small (as "
                       "for default rates); uniform: ten equal-width probability bins, the classic reliability "
                       "curve"))


def class_names(values: pl.Series, classes: list[str], label: str) -> np.ndarray:
    """The label's values as the model's class names; NodeInputError listing values the model never saw.

    A float label 1.0 matches class "1", so a label read back as floats still evaluates.
    """
    known = set(classes)
    mapping: dict[Any, str] = {}
    unseen: list[Any] = []
    for v in values.unique().to_list():
        if str(v) in known:
            mapping[v] = str(v)
        elif isinstance(v, float) and v.is_integer() and str(int(v)) in known:
            mapping[v] = str(int(v))
        else:
            unseen.append(v)
    if unseen:
        shown = sorted(unseen, key=str)
        more = len(shown) - 10
        raise NodeInputError(tr("Label {col!r} has values the model was not trained on: {values}{more}. The model's "
                                "classes are: {classes}", col=label,
                                values=", ".join(repr(v) for v in shown[:10]),
                                more=tr(" and {n} more", n=more) if more > 0 else "",
                                classes=", ".join(classes)))
    return values.replace_strict(mapping, return_dtype=pl.String).to_numpy()


def psi_reading(value: float) -> str:
    if value < 0.1:
        return tr("stable")
    if value <= 0.25:
        return tr("worth watching")
    return tr("a material shift")


@node("evaluate.evaluate", version=1, title=N_("Evaluate"), category=N_("Evaluation"), icon="evaluate", heavy=True)
class Evaluate(Node):
    """Measure a model on held-out data: AUC, KS, Gini, lift, calibration, stability and fairness slices."""

    inputs = {"model": Model, "table": Table,
              "reference": PortSpec("reference", Table, required=False, description=N_(
                  "Optional: a table the model was built on (e.g. the training part); both are scored and the "
                  "population stability index (PSI) of the scores is reported"))}
    outputs = {"report": ReportPort}
    Settings = EvaluateSettings

    def compute(self, inputs: dict, settings: EvaluateSettings, ctx: Context) -> dict:
        model: ModelRef = inputs["model"]
        table: pl.DataFrame = inputs["table"]
        reference: pl.DataFrame | None = inputs.get("reference")
        label = settings.label or model.info.get("label")
        if not label:
            raise NodeInputError(tr("Set the label column: the model does not say which column it predicts"))
        require_columns(table, [label], tr("Label column"))
        if settings.segment:
            require_columns(table, [settings.segment], tr("Segment column"))
        table = table.filter(pl.col(label).is_not_null())
        if table.height == 0:
            raise NodeInputError(tr("No rows with a label to evaluate on"))
        if reference is not None and reference.height == 0:
            raise NodeInputError(tr("The reference table is empty; connect the table the model was built on"))
        problem_type = model.info.get("problem_type")
        if problem_type in ("binary", "multiclass") and model.info.get("classes"):
            class_names(table[label], [str(c) for c in model.info["classes"]], label)  # fail before scoring
        if problem_type == "regression" and not table[label].dtype.is_numeric():
            raise NodeInputError(tr("Label {col!r} is {dtype}; a regression model needs a numeric label",
                                    col=label, dtype=table[label].dtype))
        segments = slices.segment_labels(table, settings.segment) if settings.segment else None

        ctx.progress(0.05, tr("scoring"))
        scores: Scores = score(model, table)
        report = Report(title=tr("Evaluation of {model}", model=model.info.get("best_model", model.flavor)),
                        kind="evaluation")
        if scores.problem_type == "binary":
            main_score = self._binary(report, scores, table, label, settings, segments)
        elif scores.problem_type == "regression":
            main_score = self._regression(report, scores, table, label, settings, segments)
        else:
            main_score = self._multiclass(report, scores, table, label, settings, segments)
        ctx.check_cancelled()
        if reference is not None:
            ctx.progress(0.6, tr("scoring the reference table"))
            self._stability(report, model, reference, main_score)
        report.metrics = {"problem_type": scores.problem_type, **report.metrics}
        ctx.log.info(", ".join(f"{k}={v:.4f}" for k, v in report.metrics.items() if isinstance(v, float)))
        ctx.progress(1.0)
        return {"report": report}

    @staticmethod
    def _binary(report: Report, scores: Scores, table: pl.DataFrame, label: str, settings: EvaluateSettings,
                segments: np.ndarray | None) -> np.ndarray:
        positive = str(scores.positive_class)
        negative = next(str(c) for c in scores.classes if str(c) != positive)
        actual = class_names(table[label], [str(c) for c in scores.classes], label)
        y = (actual == positive).astype(int)
        if y.min() == y.max():
            raise NodeInputError(tr("The evaluation table has only one class in {col!r}; AUC needs both",
                                    col=label))
        s = scores.proba[positive].to_numpy().astype(np.float64)  # type: ignore[index]
        if not np.isfinite(s).all():
            raise NodeInputError(tr("The model returned no probability for {n} rows; check those rows' values",
                                    n=int((~np.isfinite(s)).sum())))
        report.metrics = m.binary_metrics(y, s, settings.threshold)
        predicted = np.where(s >= settings.threshold, positive, negative)
        report.tables[tr("Confusion matrix")] = m.confusion_table(actual, predicted, [negative, positive])
        lift = m.lift_table(y, s)
        report.tables[tr("Lift and gains by decile")] = lift
        calibration = m.calibration_table(y, s, strategy=settings.calibration_bins)
        report.tables[tr("Calibration")] = calibration
        report.metrics["ece"] = m.expected_calibration_error(calibration)
        figures.roc_plot(report, y, s)
        figures.ks_plot(report, y, s)
        report.tables.update(curve_tables(y, s))  # hidden tables: the Experiments view overlays runs' curves
        figures.gains_lift_plot(report, lift)
        figures.calibration_plot(report, calibration)
        if segments is not None:
            Evaluate._slices(report, slices.binary_segments(segments, y, s, settings.threshold), settings.segment,
                             "binary")
        return s

    @staticmethod
    def _regression(report: Report, scores: Scores, table: pl.DataFrame, label: str, settings: EvaluateSettings,
                    segments: np.ndarray | None) -> np.ndarray:
        y = table[label].cast(pl.Float64).to_numpy()
        pred = np.asarray(scores.prediction, dtype=np.float64)
        report.metrics = m.regression_metrics(y, pred)
        if segments is not None:
            Evaluate._slices(report, slices.regression_segments(segments, y, pred), settings.segment, "regression")
        return pred

    @staticmethod
    def _multiclass(report: Report, scores: Scores, table: pl.DataFrame, label: str, settings: EvaluateSettings,
                    segments: np.ndarray | None) -> None:
        labels = [str(c) for c in scores.classes]
        actual = class_names(table[label], labels, label)
        pred = np.asarray(scores.prediction).astype(str)
        report.metrics = m.multiclass_metrics(actual, pred)
        report.tables[tr("Confusion matrix")] = m.confusion_table(actual, pred, labels)
        if segments is not None:
            Evaluate._slices(report, slices.multiclass_segments(segments, actual, pred), settings.segment,
                             "multiclass")

    @staticmethod
    def _slices(report: Report, table: pl.DataFrame, column: str | None, problem_type: str) -> None:
        report.tables[tr("Metrics by {col}", col=column)] = table
        report.notes.extend(slices.gap_notes(table, str(column), problem_type))

    @staticmethod
    def _stability(report: Report, model: ModelRef, reference: pl.DataFrame, main_score: np.ndarray | None) -> None:
        """PSI of the evaluation scores against the reference table's, on bins cut at the reference's deciles."""
        if main_score is None:
            report.notes.append(tr("PSI needs one score per row; it is not computed for multiclass models."))
            return
        try:
            ref = score(model, reference)
        except NodeInputError as exc:  # say which of the two tables is wrong
            raise NodeInputError(tr("Reference table: {problem}", problem=str(exc))) from exc
        if ref.problem_type == "binary":
            ref_score = ref.proba[str(ref.positive_class)].to_numpy()  # type: ignore[index]
        else:
            ref_score = np.asarray(ref.prediction, dtype=np.float64)
        if not np.isfinite(ref_score).all():  # a NaN would empty the PSI bins and read as a perfect 0
            raise NodeInputError(tr("Reference table: the model returned no score for {n} rows; check those rows' "
                                    "values", n=int((~np.isfinite(ref_score)).sum())))
        table = m.psi_table(ref_score, main_score)
        total = float(table["psi"].sum())
        report.tables[tr("Population stability (PSI)")] = table
        report.metrics["psi"] = total
        report.metrics["reference_rows"] = len(ref_score)
        figures.psi_plot(report, table)
        report.notes.append(tr("Population stability index of the scores, reference vs evaluation: {psi:.3f}, "
                               "{reading} (below 0.10 stable, 0.10 to 0.25 worth watching, above 0.25 a material "
                               "shift).", psi=total, reading=psi_reading(total)))
