"""Profile: automatic exploratory data analysis of a table, with data-quality alerts a bank's reviewer acts on.

Per column (type, missing, distinct, quantiles, outliers, skew, histogram, top values), across columns (Pearson,
Spearman, Cramér's V), against a binary target (IV, univariate AUC, event rate per bin), and alerts: constant and
near-constant columns, high cardinality, duplicate rows, heavy missingness, suspected leakage and personal data
(Chinese ID cards, mobile numbers, bank cards, e-mail) with a sensitivity class. The same analysis backs the node
and `ledgerflow profile`.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field
from threadpoolctl import threadpool_limits

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.columns import require_columns
from nodes.explore.pii import detect_pii
from nodes.explore.stats import (ColumnProfile, TargetStat, correlations, duplicate_rows, profile_columns,
                                 sample_for_profile, target_analysis)
from nodes.plotting import barh_margins, figure, text_width_in

# Rank correlations need a sort per column; on a random sample of this size the sampling error of r is about
# 1/sqrt(n) = 0.003, below the two decimals the matrix shows.
CORRELATION_ROWS = 100_000
ALERT_COLUMNS = {"kind": pl.Utf8, "column": pl.Utf8, "sensitivity": pl.Utf8, "message": pl.Utf8}


class ProfileSettings(NodeSettings):
    target: str | None = Field(None, title=N_("Target column"),
                               description=N_("A binary outcome: adds IV, univariate AUC and event rate per bin"),
                               json_schema_extra={"widget": "column"})
    max_rows: int = Field(1_000_000, ge=1_000, title=N_("Exact statistics up to (rows)"),
                          description=N_("Larger tables are profiled on a seeded sample of this many rows"))
    missing_alert: float = Field(0.3, gt=0.0, le=1.0, title=N_("Missing share that raises an alert"))
    near_constant_alert: float = Field(0.99, gt=0.5, le=1.0, title=N_("Top-value share that counts as near-constant"))
    high_cardinality_alert: int = Field(10_000, ge=10, title=N_("Distinct values that count as high cardinality"))
    leakage_auc: float = Field(0.98, gt=0.5, le=1.0, title=N_("Univariate AUC that suggests leakage"))
    pii_share: float = Field(0.5, gt=0.0, le=1.0, title=N_("Share of values that marks a column as personal data"))
    seed: int | None = Field(None, title=N_("Seed"), description=N_("Empty uses the project seed"))


@dataclass
class Alert:
    kind: str  # constant | near_constant | high_cardinality | duplicates | missing | leakage | pii
    column: str  # "" for table-level alerts
    message: str
    sensitivity: str | None = None  # C3 / C2 for personal data


@dataclass
class ProfileResult:
    rows: int
    columns: int
    sampled: bool
    profiled_rows: int
    duplicate_rows: int
    correlation_rows: int  # rows the correlations were computed on (a sample of big tables)
    profiles: list[ColumnProfile]
    correlations: dict[str, pl.DataFrame]
    target: str | None
    target_stats: list[TargetStat]
    alerts: list[Alert]
    # figures drawn while the statistics were still being computed (name -> PNG); not part of the JSON
    figures: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Per-column statistics and every alert, as plain JSON (for `ledgerflow profile --json`)."""
        return {"rows": self.rows, "columns": self.columns, "sampled": self.sampled,
                "profiled_rows": self.profiled_rows, "correlation_rows": self.correlation_rows,
                "duplicate_rows": self.duplicate_rows, "target": self.target,
                "column_stats": [dataclasses.asdict(p) for p in self.profiles],
                "target_stats": [dataclasses.asdict(t) for t in self.target_stats],
                "alerts": [dataclasses.asdict(a) for a in self.alerts]}


def profile_table(df: pl.DataFrame, settings: ProfileSettings, seed: int = 0) -> ProfileResult:
    """The whole analysis; raises NodeInputError for input it cannot profile."""
    if df.width == 0:
        raise NodeInputError(tr("The table has no columns to profile"))
    if settings.target:
        require_columns(df, [settings.target], tr("Target column"))
    # Columns already run on threads of their own: BLAS threads on top (OpenBLAS spins while waiting) only fight
    # them for the cores. One BLAS thread takes a fifth off the whole profile on a two-core workstation.
    with threadpool_limits(limits=1, user_api="blas"):
        return _profile(df, settings, seed)


def _profile(df: pl.DataFrame, settings: ProfileSettings, seed: int) -> ProfileResult:
    data, sampled = sample_for_profile(df, settings.max_rows, seed)
    profiles = profile_columns(data)
    # The per-column figures only need the profiles: draw them (Python-bound) on a thread while polars and numpy
    # (which release the GIL) compute the rest, so the drawing costs little wall time.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="profile-figures") as pool:
        figures = [pool.submit(_column_figures, profiles)]
        corr_data = _correlation_sample(data, profiles, seed)
        matrices = correlations(corr_data, profiles)
        figures.append(pool.submit(_correlation_png, matrices.get("pearson")))
        target_stats: list[TargetStat] = []
        if settings.target and data.height:
            try:
                target_stats = target_analysis(data, settings.target, profiles)
            except ValueError as exc:
                raise NodeInputError(str(exc)) from None
        result = ProfileResult(rows=df.height, columns=df.width, sampled=sampled, profiled_rows=data.height,
                               duplicate_rows=duplicate_rows(data, profiles), correlation_rows=corr_data.height,
                               profiles=profiles, correlations=matrices, target=settings.target,
                               target_stats=target_stats, alerts=[])
        result.alerts = alerts_for(result, data, settings, seed)
        for done in figures:
            result.figures.update(done.result())
    return result


def _correlation_sample(data: pl.DataFrame, profiles: list[ColumnProfile], seed: int) -> pl.DataFrame:
    """At most CORRELATION_ROWS rows of the columns a correlation matrix can use, by systematic sampling (every
    k-th row from a seeded offset): it spans the whole table evenly, sorted or not, and a strided read costs half
    of a random gather."""
    usable = data.select([p.name for p in profiles if p.kind in ("numeric", "categorical", "boolean")])
    if usable.height <= CORRELATION_ROWS:
        return usable
    step = -(-usable.height // CORRELATION_ROWS)  # ceil: never more than CORRELATION_ROWS rows
    return usable.gather_every(step, offset=seed % step)


def _column_figures(profiles: list[ColumnProfile]) -> dict[str, bytes]:
    report = Report(title="")
    _missing_figure(report, profiles)
    _histograms_figure(report, profiles)
    return report.figures


def _correlation_png(matrix: pl.DataFrame | None) -> dict[str, bytes]:
    report = Report(title="")
    _correlation_figure(report, matrix)
    return report.figures


def alerts_for(result: ProfileResult, data: pl.DataFrame, s: ProfileSettings, seed: int) -> list[Alert]:
    alerts: list[Alert] = []
    for p in result.profiles:
        if p.name == s.target:
            continue
        if p.count and p.distinct <= 1:
            alerts.append(Alert("constant", p.name, tr("{col} has a single value: it carries no information",
                                                       col=p.name)))
        elif p.count and p.top_share >= s.near_constant_alert:
            alerts.append(Alert("near_constant", p.name, tr("{col}: {share:.1%} of values are the same",
                                                            col=p.name, share=p.top_share)))
        if p.kind in ("categorical", "text") and p.distinct >= s.high_cardinality_alert:
            alerts.append(Alert("high_cardinality", p.name, tr(
                "{col} has {n:,} distinct values: encode it with care (target or WOE encoding, or drop it)",
                col=p.name, n=p.distinct)))
        if p.missing_share >= s.missing_alert:
            alerts.append(Alert("missing", p.name, tr("{col} is {share:.1%} missing", col=p.name,
                                                      share=p.missing_share)))
    if result.duplicate_rows:
        alerts.append(Alert("duplicates", "", tr("{n:,} rows are exact duplicates of earlier rows",
                                                 n=result.duplicate_rows)))
    for t in result.target_stats:
        if t.auc is not None and t.auc >= s.leakage_auc:
            alerts.append(Alert("leakage", t.column, tr(
                "{col} alone predicts {target} with AUC {auc:.3f}: check that it is known before the outcome",
                col=t.column, target=result.target, auc=t.auc)))
    for f in detect_pii(data, min_share=s.pii_share, seed=seed):
        alerts.append(Alert("pii", f.column, tr(
            "{col} looks like personal data ({kind}, {share:.0%} of checked values, e.g. {example}); "
            "sensitivity {cls}: mask it before sharing", col=f.column, kind=tr(PII_NAMES.get(f.kind, f.kind)),
            share=f.share, example=f.example, cls=f.sensitivity), f.sensitivity))
    return alerts


PII_NAMES = {"cn_id_card": N_("Chinese ID card number"), "cn_mobile": N_("mobile phone number"),
             "bank_card": N_("bank card number"), "email": N_("e-mail address")}


def alerts_table(alerts: list[Alert]) -> pl.DataFrame:
    return pl.DataFrame([{"kind": a.kind, "column": a.column, "sensitivity": a.sensitivity, "message": a.message}
                         for a in alerts], schema=ALERT_COLUMNS)


# ---- the report ------------------------------------------------------------------------------------
def build_report(result: ProfileResult) -> Report:
    report = Report(title=tr("Data profile"), kind="profile")
    report.metrics = {tr("rows"): result.rows, tr("columns"): result.columns,
                      tr("duplicate rows"): result.duplicate_rows, tr("alerts"): len(result.alerts)}
    if result.sampled:
        report.notes.append(tr("Statistics were computed on a seeded sample of {n:,} of the {total:,} rows.",
                               n=result.profiled_rows, total=result.rows))
    if result.correlation_rows < result.profiled_rows:
        report.notes.append(tr("Correlations were computed on a seeded sample of {n:,} rows.",
                               n=result.correlation_rows))
    if result.alerts:
        report.tables[tr("Alerts")] = alerts_table(result.alerts)
    report.tables[tr("Columns")] = _columns_table(result.profiles)
    if result.target_stats:
        report.tables[tr("Against the target")] = pl.DataFrame(
            [{"column": t.column, "iv": t.iv, "auc": t.auc} for t in result.target_stats],
            schema={"column": pl.Utf8, "iv": pl.Float64, "auc": pl.Float64})
    if "pearson" in result.correlations and result.correlations["pearson"].width > 2:
        report.tables[tr("Pearson correlation")] = result.correlations["pearson"]
    report.figures.update(result.figures or {**_column_figures(result.profiles),
                                             **_correlation_png(result.correlations.get("pearson"))})
    _iv_figure(report, result.target_stats, result.target)
    return report


def _columns_table(profiles: list[ColumnProfile]) -> pl.DataFrame:
    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return pl.DataFrame([{
        "column": p.name, "type": p.dtype, "kind": p.kind, "missing_share": p.missing_share, "distinct": p.distinct,
        "mean": p.mean, "std": p.std, "min": num(p.min), "median": (p.quantiles or {}).get("p50"), "max": num(p.max),
        "skew": p.skew, "outliers_iqr": p.outliers_iqr,
        "top": ", ".join(f"{v} ({c})" for v, c in p.top[:3]),
    } for p in profiles], schema={"column": pl.Utf8, "type": pl.Utf8, "kind": pl.Utf8, "missing_share": pl.Float64,
                                  "distinct": pl.Int64, "mean": pl.Float64, "std": pl.Float64, "min": pl.Float64,
                                  "median": pl.Float64, "max": pl.Float64, "skew": pl.Float64,
                                  "outliers_iqr": pl.Int64, "top": pl.Utf8})


def _missing_figure(report: Report, profiles: list[ColumnProfile]) -> None:
    worst = sorted((p for p in profiles if p.missing), key=lambda p: -p.missing_share)[:25]
    _barh_figure(report, tr("Missing values"), tr("Missing values"), [(p.name, p.missing_share) for p in worst],
                 "#d97706", tr("Share missing"), xlim=(0, 1))


def _barh_figure(report: Report, name: str, title: str, bars: list[tuple[str, float]], color: str, xlabel: str,
                 xlim: tuple[float, float] | None = None) -> None:
    """A horizontal bar chart, largest bar on top, with margins fitted to its labels (no tight-bbox pass)."""
    if not bars:
        return
    height = max(2.2, 0.6 + 0.25 * len(bars))
    fig = figure(6, height)
    ax = fig.subplots()
    ax.barh([label for label, _ in reversed(bars)], [value for _, value in reversed(bars)], color=color)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    barh_margins(fig, [label for label, _ in bars], 6, height)
    report.add_figure(name, fig, tight=False)


def _histograms_figure(report: Report, profiles: list[ColumnProfile]) -> None:
    numeric = [p for p in profiles if p.histogram][:9]
    if not numeric:
        return
    from matplotlib.ticker import MaxNLocator

    cols = 3
    rows = (len(numeric) + cols - 1) // cols
    fig = figure(9, 2.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, p in zip(axes, numeric):
        bins = p.histogram or []
        edges = [b[0] for b in bins] + [bins[-1][1]]
        # one filled step artist per histogram, not one rectangle per bar: a tenth of the drawing time
        ax.stairs([b[2] for b in bins], edges, fill=True, color="#2563eb")
        ax.set_title(p.name, fontsize=9)
        ax.tick_params(labelsize=7)
        # four ticks a side: wide values (250000) no longer run into each other, and fewer ticks draw faster
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
    for ax in axes[len(numeric):]:
        ax.set_visible(False)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=0.94, hspace=0.55, wspace=0.3)
    report.add_figure(tr("Distributions"), fig, tight=False)


def _correlation_figure(report: Report, matrix: pl.DataFrame | None) -> None:
    if matrix is None or matrix.width < 3:
        return
    names = [c for c in matrix.columns if c != "column"]
    values = matrix.select(names).to_numpy().astype(float)
    size = min(9.0, 2.0 + 0.35 * len(names))
    fig = figure(size, size * 0.85)
    ax = fig.subplots()
    image = ax.imshow(np.nan_to_num(values), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(tr("Pearson correlation"))
    margin = min(0.4, (text_width_in(names, 7) + 0.2) / size)
    fig.subplots_adjust(left=margin, bottom=margin / 0.85, right=0.97, top=0.95)
    report.add_figure(tr("Pearson correlation"), fig, tight=False)


def _iv_figure(report: Report, stats: list[TargetStat], target: str | None) -> None:
    _barh_figure(report, tr("Information value"), tr("Predictive power for {target}", target=target),
                 [(t.column, t.iv) for t in stats[:20]], "#7c3aed", tr("Information value"))


@node("explore.profile", version=1, title=N_("Profile"), category=N_("Exploration"), icon="profile", heavy=True)
class Profile(Node):
    """Explore a table: statistics per column, correlations, power against a target, data-quality alerts."""

    inputs = {"table": Table}
    outputs = {"report": ReportPort, "alerts": Table}
    Settings = ProfileSettings

    def compute(self, inputs: dict, settings: ProfileSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        ctx.progress(0.05, tr("profiling {n:,} rows × {m} columns", n=table.height, m=table.width))
        result = profile_table(table, settings, seed=ctx.seed)
        ctx.check_cancelled()
        ctx.progress(0.8, tr("drawing the report"))
        for alert in result.alerts:
            ctx.log.warning("%s", alert.message)
        return {"report": build_report(result), "alerts": alerts_table(result.alerts)}
