"""Automatic features: generate candidate features on the training table, score them, keep the best, and record
how every candidate was derived and why it was kept or dropped (the "feature derivation rationale" bank model
validators ask for).

Scores: information value (10 quantile bins plus a missing bin, as Profile computes it) for a binary target; for
any other target, scikit-learn's mutual information (nats, seeded, on at most MI_ROWS sampled rows), because IV
and WOE are only defined for a binary outcome. Selection walks the candidates from the best score down: below
`min_score` is dropped, then a candidate whose absolute Pearson correlation with an already kept feature reaches
`max_correlation` is dropped, then anything past `max_features` is dropped.

The output transform recreates the kept ratios, differences (a "derive" step replayed by apply_derive) and WOE
bins (a "binning" step) on any table with the same columns, with training statistics only. Time-window features
need the events table, which a transform on one table cannot replay: they are scored and recorded, and when kept
the records and the log say to rebuild them with the Time-window aggregates node on new data.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, PortSpec, node
from nodes.columns import require_columns
from nodes.features import autofeatures_candidates as cand
from nodes.features.autofeatures_candidates import Candidate
from nodes.features.fitted import apply_transform, chain
from nodes.features.transforms.common import (
    PREVIOUS,
    binary_target,
    require_apply_columns,
    require_rows,
)

MI_ROWS = 20_000  # rows sampled for mutual information (k-nearest-neighbour estimates grow as n log n)
CORR_ROWS = 200_000  # rows sampled for the correlation check between candidates
MI_CLASSES = 20  # an integer target with at most this many values is treated as classes
WOE_MAX_BINS = 10
BATCH = 32  # candidates computed and scored at a time, to bound memory on wide candidate sets
# the decision first (what a validator scans), then how the feature is made
RECORD_SCHEMA = {"feature": pl.String, "kept": pl.Boolean, "score": pl.Float64, "score_kind": pl.String,
                 "reason": pl.String, "formula": pl.String, "expression": pl.String, "sources": pl.String,
                 "kind": pl.String}

Kind = Literal["ratio", "difference", "woe_bin", "window"]


class AutoFeaturesSettings(NodeSettings):
    target: str | None = Field(None, title=N_("Target column"), description=N_(
        "The outcome features are scored against: IV for a binary target, mutual information otherwise"),
        json_schema_extra={"widget": "column"})
    max_features: int = Field(20, ge=1, le=1000, title=N_("Most features"),
                              description=N_("Keep at most this many generated features"))
    min_score: float = Field(0.02, ge=0.0, title=N_("Minimum score"), description=N_(
        "Drop candidates scoring below this (IV for a binary target, else mutual information in nats)"))
    max_correlation: float = Field(0.9, gt=0.0, le=1.0, title=N_("Largest correlation"), description=N_(
        "Drop a candidate whose absolute Pearson correlation with an already kept feature reaches this"))
    kinds: list[Kind] = Field(default_factory=lambda: list(cand.KINDS), title=N_("Kinds of features"),
                              description=N_("ratio, difference, woe_bin (optimal monotonic WOE), window "
                                             "(needs the events input)"))
    top_k_pairs: int = Field(12, ge=2, le=50, title=N_("Columns to pair"), description=N_(
        "Ratios and differences are built from pairs of this many strongest numeric columns"))
    windows_days: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [30, 90, 180], title=N_("Window lengths (days)"))
    entity: str | None = Field(None, title=N_("Entity column"), description=N_(
        "Window features: the key (customer, account) found in both the table and the events"),
        json_schema_extra={"widget": "column"})
    event_timestamp: str | None = Field(None, title=N_("Event time column"),
                                        description=N_("Window features: when each event happened"),
                                        json_schema_extra={"widget": "column", "port": "events"})
    as_of: str | None = Field(None, title=N_("As-of column"), description=N_(
        "Window features: the date in the table up to which events are counted (e.g. the application date)"),
        json_schema_extra={"widget": "column"})


def apply_derive(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    """Applier of the "derive" transform kind: each feature's expression parsed (never evaluated as Python)."""
    features = params.get("features", [])
    require_apply_columns(table, [c for f in features for c in f.get("sources", [])], cand.DERIVE)
    return table.with_columns(cand.derive_exprs(features, table.columns)) if features else table


# ---- the target ------------------------------------------------------------------------------------
class _Target:
    """The rows with a known target, the target as numbers, and how candidates are scored against it."""

    def __init__(self, table: pl.DataFrame, target: str | None, seed: int) -> None:
        if not target:
            raise NodeInputError(tr("Target column: choose the column the features are scored against"))
        require_columns(table, [target], tr("Target column"))
        t = table.get_column(target)
        known = t.is_not_null() & (t.is_not_nan() if t.dtype.is_float() else True)
        distinct = t.filter(known).n_unique()
        if distinct < 2:
            raise NodeInputError(tr("Target column: {col!r} has {n} distinct non-missing value(s); features need "
                                    "an outcome that varies to be scored", col=target, n=distinct))
        self.name, self.seed, self.distinct = target, seed, distinct
        self.binary = distinct == 2
        self.rows = table.filter(known)
        if self.binary:
            y, self.event = binary_target(self.rows, target, tr("Target column"))
            self.y = y.to_numpy().astype(np.int64)
            self.kind = "IV"
            return
        dtype = t.dtype
        self.classes = not dtype.is_numeric() or (dtype.is_integer() and distinct <= MI_CLASSES)
        values = self.rows.get_column(target)
        self.y = (values.cast(pl.String).rank("dense").to_numpy().astype(np.int64) if self.classes
                  else values.cast(pl.Float64).to_numpy())
        self.kind = "MI"
        if self.rows.height > MI_ROWS:  # one seeded sample shared by every score, so they are comparable
            pick = np.sort(np.random.default_rng(seed).choice(self.rows.height, MI_ROWS, replace=False))
            self.rows, self.y = self.rows[pick], self.y[pick]

    def score(self, x: np.ndarray) -> float:
        if self.binary:
            return cand.iv_score(x, self.y)
        return cand.mi_score(x, self.y, self.classes, self.seed)


# ---- selection -------------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _sample(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    if frame.height <= rows:
        return frame
    return frame[np.sort(np.random.default_rng(seed).choice(frame.height, rows, replace=False))]


def select(cands: list[Candidate], frame: pl.DataFrame, s: AutoFeaturesSettings, kind: str) -> list[Candidate]:
    """Mark each candidate kept or dropped with its reason; return the kept ones in rank order."""
    order = sorted(cands, key=lambda c: (math.isnan(c.score), -c.score if not math.isnan(c.score) else 0.0, c.name))
    kept: list[tuple[Candidate, np.ndarray]] = []
    for c in order:
        if math.isnan(c.score):
            c.reason = tr("dropped: no values to score")
            continue
        if c.score < s.min_score:
            c.reason = tr("dropped: {kind} {score} below minimum {minimum}", kind=kind, score=_fmt(c.score),
                          minimum=_fmt(s.min_score))
            continue
        values = cand.float_column(cand.evaluate([c], frame).to_series())
        worst = max(((abs(cand.pearson(values, v)), k.name) for k, v in kept), default=(0.0, ""))
        if worst[0] >= s.max_correlation:
            c.reason = tr("dropped: correlation {r} with {other}", r=f"{worst[0]:.2f}", other=worst[1])
            continue
        if len(kept) >= s.max_features:
            c.reason = tr("dropped: over the cap of {n} features", n=s.max_features)
            continue
        c.kept = True
        c.reason = tr("kept: rank {rank} by {kind} {score}", rank=len(kept) + 1, kind=kind, score=_fmt(c.score))
        if c.kind == cand.WINDOW:
            c.reason += "; " + tr("not in the transform: rebuild it on new data with the Time-window aggregates "
                                  "node")
        kept.append((c, values))
    return [c for c, _ in kept]


def build_transform(kept: list[Candidate]) -> FittedTransform:
    """The derive step (ratios, differences) then the binning step (WOE) recreating the kept features."""
    derived = [c for c in kept if c.kind in (cand.RATIO, cand.DIFFERENCE)]
    step = None
    if derived:
        sources = list(dict.fromkeys(s for c in derived for s in c.sources))
        params = {"features": [{"name": c.name, "expression": c.expression, "sources": list(c.sources)}
                               for c in derived], "outputs": [c.name for c in derived]}
        step = FittedTransform(kind=cand.DERIVE, params=params, columns=tuple(sources))
    woe = cand.merge_binning([c.step for c in kept if c.kind == cand.WOE_BIN and c.step is not None])
    return chain(step, woe)


def records_table(cands: list[Candidate], kind: str) -> pl.DataFrame:
    """One row per candidate, best score first (the order selection walked them in)."""
    order = sorted(cands, key=lambda c: (math.isnan(c.score), -c.score if not math.isnan(c.score) else 0.0, c.name))
    return pl.DataFrame([{"feature": c.name, "formula": c.formula, "expression": c.expression,
                          "sources": ",".join(c.sources), "kind": c.kind,
                          "score": None if math.isnan(c.score) else c.score, "score_kind": kind, "kept": c.kept,
                          "reason": c.reason} for c in order], schema=RECORD_SCHEMA)


def build_report(records: pl.DataFrame, kind: str, notes: list[str]) -> Report:
    report = Report(title=tr("Automatic features"), kind="autofeatures")
    report.metrics = {tr("candidates"): records.height, tr("kept"): int(records["kept"].sum()),
                      tr("score"): kind}
    report.tables[tr("Kept features")] = records.filter(pl.col("kept"))
    report.tables[tr("All candidates")] = records
    report.notes.extend(notes)
    top = records.filter(pl.col("score").is_not_null()).head(25)
    if top.height:
        from nodes.plotting import barh_margins, figure

        names = top["feature"].to_list()
        height = 0.6 + 0.25 * len(names)
        fig = figure(6, height)
        ax = fig.subplots()
        colors = ["#7c3aed" if k else "#9ca3af" for k in reversed(top["kept"].to_list())]
        ax.barh(list(reversed(names)), list(reversed(top["score"].to_list())), color=colors)
        ax.set_xlabel(kind)
        ax.set_title(tr("Candidate scores (kept in colour, dropped in grey)"))
        barh_margins(fig, names, 6, height)
        report.add_figure(tr("Candidate scores"), fig, tight=False)
    return report


# ---- the node --------------------------------------------------------------------------------------
def _score_all(cands: list[Candidate], target: _Target, ctx: Context, start: float, end: float) -> None:
    """Compute and score the candidates BATCH at a time on the rows with a known target (memory stays bounded)."""
    for i in range(0, len(cands), BATCH):
        ctx.check_cancelled()
        batch = cands[i:i + BATCH]
        values = cand.evaluate(batch, target.rows)
        for c in batch:
            c.score = target.score(cand.float_column(values.get_column(c.name)))
        ctx.progress(start + (end - start) * min(1.0, (i + BATCH) / len(cands)), tr("scoring candidates"))


@node("features.auto", version=1, title=N_("Automatic features"), category=N_("Features"), icon="autofeatures",
      heavy=True)
class AutoFeatures(Node):
    """Generate ratio, difference, WOE and time-window features, keep the strongest, and record why."""

    inputs: ClassVar[dict[str, Any]] = {
        "table": Table,
        "events": PortSpec(name="events", type=Table, required=False, description=N_(
            "Optional events (transactions) for time-window features; set the entity, event time and as-of "
            "columns")),
        "previous": PREVIOUS}
    outputs: ClassVar[dict[str, Any]] = {"table": Table, "transform": FittedTransformPort, "records": Table,
                                         "report": ReportPort}
    Settings = AutoFeaturesSettings

    def compute(self, inputs: dict, settings: AutoFeaturesSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        events: pl.DataFrame | None = inputs.get("events")
        require_rows(table)
        kinds, notes = set(settings.kinds), []
        windows = pl.DataFrame()
        cands: list[Candidate] = []
        if cand.WINDOW in kinds and events is not None:
            ctx.progress(0.02, tr("computing time-window candidates"))
            window_cands, windows = cand.window_candidates(
                table, events, entity=settings.entity, timestamp=settings.event_timestamp, as_of=settings.as_of,
                windows_days=settings.windows_days, target=settings.target, log=ctx.log.info)
            cands.extend(window_cands)
        elif events is not None:
            ctx.log.info("the events input is connected but 'window' is not among the kinds: events are ignored")
        base = table.hstack(windows) if windows.width else table
        target = _Target(base, settings.target, ctx.seed)
        if not target.binary:
            notes.append(tr("The target {col!r} is not binary ({n} distinct values), so candidates are scored by "
                            "mutual information (MI, nats) instead of IV, and WOE bins are not generated.",
                            col=target.name, n=target.distinct))
            ctx.log.info("non-binary target: scoring by mutual information")
        keys = {k for k in (settings.target, settings.entity, settings.as_of) if k}
        numeric, skipped = cand.eligible_numeric(table, keys)
        for name, why in skipped.items():
            ctx.log.info("column %r is not used: %s", name, why)
        if not numeric and not cands:
            message = tr("The table has no numeric columns to build features from (the target {col!r}, "
                         "identifiers and constant columns are left out)", col=target.name)
            if skipped:  # e.g. a column with no values at all counts as constant: name it
                message += ". " + tr("Numeric columns left out: {columns}",
                                     columns=", ".join(repr(c) for c in skipped))
            raise NodeInputError(message)
        ctx.progress(0.1, tr("scoring the numeric columns"))
        own = {c: target.score(cand.float_column(target.rows.get_column(c))) for c in numeric}
        paired = sorted(numeric, key=lambda c: (math.isnan(own[c]), -own[c] if not math.isnan(own[c]) else 0.0,
                                                numeric.index(c)))[:settings.top_k_pairs]
        cands.extend(cand.derive_candidates(table, [c for c in numeric if c in paired], kinds))
        if cand.WOE_BIN in kinds and target.binary and numeric:
            ctx.progress(0.2, tr("fitting optimal WOE bins"))
            cands.extend(cand.woe_candidates(table, numeric, target.name, WOE_MAX_BINS, ctx.seed, ctx.log.info))
        if not cands:
            raise NodeInputError(tr("Kinds of features: no candidate could be built from {n} usable numeric "
                                    "column(s) with the kinds {kinds}", n=len(numeric),
                                    kinds=", ".join(settings.kinds) or "-"))
        _score_all(cands, target, ctx, 0.3, 0.8)
        ctx.progress(0.85, tr("selecting features"))
        kept = select(cands, _sample(target.rows, CORR_ROWS, ctx.seed), settings, target.kind)
        own_step = build_transform(kept)
        out = apply_transform(own_step, table)
        late = [c.name for c in kept if c.kind == cand.WINDOW]
        if late:
            out = out.hstack(windows.select(late))
            ctx.log.warning("window feature(s) %s are kept but not in the transform: rebuild them on new data with "
                            "the Time-window aggregates node", ", ".join(late))
            notes.append(tr("Kept window features ({names}) need the events table: the transform does not recreate "
                            "them; rebuild them on new data with the Time-window aggregates node.",
                            names=", ".join(late)))
        out = out.select([*table.columns, *(c.name for c in kept)])
        records = records_table(cands, target.kind)
        ctx.log.info("kept %d of %d candidate features", len(kept), len(cands))
        previous = inputs.get("previous")
        transform = chain(previous, own_step) if previous is not None else own_step
        return {"table": out, "transform": transform, "records": records,
                "report": build_report(records, target.kind, notes)}
