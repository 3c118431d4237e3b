"""Overlaid ROC and KS charts of compared runs, drawn with matplotlib into PNG bytes for a QLabel.

QtCharts is not part of PySide6-Essentials, and the reports already use matplotlib (nodes/plotting.py sets up the
fonts, Chinese included), so the comparison looks like the Evaluate report it summarises.
"""
from __future__ import annotations

import io
from typing import Any

from engine.experiments import ExperimentRun
from engine.i18n import tr


def _series(runs: list[ExperimentRun], kind: str) -> list[tuple[str, dict[str, list[float]]]]:
    """(legend label, curve) for each evaluation of each run that carries a `kind` curve."""
    many_evals = any(len([e for e in r.evaluations if kind in e.curves]) > 1 for r in runs)
    out = []
    for run in runs:
        for e in run.evaluations:
            if kind in e.curves:
                label = f"#{run.id} {run.model_name}".strip()
                out.append((f"{label} · {e.node_title}" if many_evals else label, e.curves[kind]))
    return out


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def roc_png(runs: list[ExperimentRun]) -> bytes | None:
    """ROC curves of the runs' evaluations on one chart; None when none of them recorded a curve."""
    from nodes.plotting import figure

    series = _series(runs, "roc")
    if not series:
        return None
    fig = figure(5, 4.2)
    ax = fig.subplots()
    for label, curve in series:
        ax.plot(curve["fpr"], curve["tpr"], lw=1.8, label=label)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set_xlabel(tr("False positive rate"))
    ax.set_ylabel(tr("True positive rate"))
    ax.set_title(tr("ROC curve"))
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def ks_png(runs: list[ExperimentRun]) -> bytes | None:
    """KS separation (cumulative share of negatives minus positives) per run, its maximum marked; along the share
    of rows ranked by score when every curve has it, so models with differently scaled scores line up."""
    from nodes.plotting import figure

    series = _series(runs, "ks")
    if not series:
        return None
    fig = figure(5, 4.2)
    ax = fig.subplots()
    by_share = all("share" in curve for _, curve in series)  # comparable across differently scaled scores
    for label, curve in series:
        gap = [n - p for n, p in zip(curve["cum_neg"], curve["cum_pos"])]
        x = curve["share"] if by_share else curve["score"]
        k = max(range(len(gap)), key=lambda i: abs(gap[i]))
        (line,) = ax.plot(x, gap, lw=1.8, label=f"{label} (KS = {abs(gap[k]):.3f})")
        ax.plot([x[k]], [gap[k]], "o", c=line.get_color())
    ax.set_xlabel(tr("Share of rows, lowest scores first") if by_share else tr("Score"))
    ax.set_ylabel(tr("Negatives minus positives (cumulative share)"))
    ax.set_title(tr("KS curve"))
    ax.legend(loc="best", fontsize=8)
    return _png(fig)
