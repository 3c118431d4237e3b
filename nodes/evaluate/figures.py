"""Evaluation charts drawn from the metric tables, so each figure shows exactly the numbers the report lists.

All use `nodes.plotting.figure` (no pyplot) and are rendered to PNG by `Report.add_figure`.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from engine.i18n import tr
from engine.ports import Report
from nodes.plotting import figure


def roc_plot(report: Report, y: np.ndarray, s: np.ndarray) -> None:
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


def ks_plot(report: Report, y: np.ndarray, s: np.ndarray) -> None:
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


def gains_lift_plot(report: Report, lift: pl.DataFrame) -> None:
    """Cumulative gains against the random line (left) and lift per decile with the cumulative lift (right)."""
    fig = figure(9, 4)
    gains_ax, lift_ax = fig.subplots(1, 2)
    depth = [0.0, *lift["cumulative_rows_share"].to_list()]
    gains = [0.0, *lift["gains"].to_list()]
    gains_ax.plot(depth, gains, marker="o", lw=2, label=tr("Model"))
    gains_ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label=tr("Random"))
    gains_ax.set_xlabel(tr("Share of rows, highest scores first"))
    gains_ax.set_ylabel(tr("Share of events captured"))
    gains_ax.set_title(tr("Cumulative gains"))
    gains_ax.legend(loc="lower right")
    deciles = lift["decile"].to_list()
    lift_ax.bar(deciles, lift["lift"].to_list(), color="#90caf9", label=tr("Lift"))
    lift_ax.plot(deciles, lift["cumulative_lift"].to_list(), marker="o", c="#1565c0", lw=2,
                 label=tr("Cumulative lift"))
    lift_ax.axhline(1.0, ls="--", c="grey", lw=1)
    lift_ax.set_xticks(deciles)
    lift_ax.set_xlabel(tr("Decile (1 = highest scores)"))
    lift_ax.set_ylabel(tr("Lift"))
    lift_ax.set_title(tr("Lift by decile"))
    lift_ax.legend(loc="upper right")
    report.add_figure(tr("Gains and lift"), fig)


def calibration_plot(report: Report, calibration: pl.DataFrame) -> None:
    """Observed event rate against mean predicted probability per bin, with the row count of each bin below."""
    fig = figure(5, 5.2)
    curve_ax, count_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    predicted = calibration["mean_predicted"].to_numpy()
    curve_ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label=tr("Perfectly calibrated"))
    curve_ax.plot(predicted, calibration["observed_rate"].to_numpy(), marker="o", lw=2, label=tr("Model"))
    curve_ax.set_ylabel(tr("Observed event rate"))
    curve_ax.set_title(tr("Calibration (reliability curve)"))
    curve_ax.legend(loc="upper left")
    widths = (calibration["upper"] - calibration["lower"]).to_numpy()
    count_ax.bar(calibration["lower"].to_numpy(), calibration["rows"].to_numpy(), width=widths, align="edge",
                 color="#b0bec5", edgecolor="white")
    count_ax.set_xlabel(tr("Mean predicted probability"))
    count_ax.set_ylabel(tr("Rows"))
    report.add_figure(tr("Calibration"), fig)


def psi_plot(report: Report, table: pl.DataFrame) -> None:
    """Share of rows per reference-decile bin, reference next to evaluation, so a shift is visible by eye."""
    fig = figure(6, 3.8)
    ax = fig.subplots()
    bins = np.arange(table.height)
    ax.bar(bins - 0.2, table["reference_share"].to_numpy(), width=0.4, label=tr("Reference"), color="#90a4ae")
    ax.bar(bins + 0.2, table["evaluation_share"].to_numpy(), width=0.4, label=tr("Evaluation"), color="#1e88e5")
    ax.set_xticks(bins, [str(b) for b in table["bin"].to_list()])
    ax.set_xlabel(tr("Score bin (cut at the reference's deciles)"))
    ax.set_ylabel(tr("Share of rows"))
    ax.set_title(tr("Score distribution: reference vs evaluation"))
    ax.set_ylim(0, 1.25 * float(max(table["reference_share"].max(), table["evaluation_share"].max())))  # legend room
    ax.legend(loc="upper left", ncols=2)
    report.add_figure(tr("Score stability"), fig)
