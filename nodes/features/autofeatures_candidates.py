"""Candidate features for Automatic features: generation (ratios, differences, WOE bins, time windows) and scoring.

Every candidate carries its own derivation (formula in words, expression, sources) from the moment it is made, so
the records a model validator reads are the same data the transform is built from, never a description written
afterwards. Ratios and differences are text in the safe expression language (nodes.features.expressions) so the
fitted transform stays JSON and is replayed by parsing, never by eval.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import FittedTransform
from nodes.features.expressions import KEYWORDS, ExpressionError, parse_expression
from nodes.features.transforms import binning

RATIO, DIFFERENCE, WOE_BIN, WINDOW = "ratio", "difference", "woe_bin", "window"
KINDS = (RATIO, DIFFERENCE, WOE_BIN, WINDOW)
DERIVE = "derive"  # the FittedTransform kind of ratios and differences
IV_BINS = 10  # quantile bins of the IV score: the same bins as Profile's "Against the target" table
WINDOW_AGGS = ("sum", "count", "mean")

Scorer = Callable[[np.ndarray], float]
"""A candidate's values (float64, NaN where missing, rows with a known target) -> its score."""


@dataclass
class Candidate:
    """One generated feature and how it was derived. `step` is its fitted binning (woe_bin only)."""

    name: str
    kind: str
    formula: str
    expression: str
    sources: tuple[str, ...]
    step: FittedTransform | None = None
    score: float = math.nan
    kept: bool = False
    reason: str = ""
    extra: dict = field(default_factory=dict)


# ---- columns ---------------------------------------------------------------------------------------
def quote(name: str) -> str:
    """A column as the expression language spells it: bare when it is a plain identifier, else in backticks."""
    if name.isidentifier() and name.lower() not in KEYWORDS:
        return name
    return f"`{name}`"


def eligible_numeric(table: pl.DataFrame, exclude: set[str]) -> tuple[list[str], dict[str, str]]:
    """Numeric columns worth combining, and why each other numeric column was skipped (for the log).

    Skipped: the target and key columns (`exclude`), identifiers (integers, all distinct), constant columns, and
    names with a backtick, which the expression language cannot spell.
    """
    numeric = [c for c, d in table.schema.items() if d.is_numeric() and c not in exclude]
    if not numeric:
        return [], {}
    stats = table.select([pl.col(c).drop_nulls().n_unique().alias(c) for c in numeric]).row(0, named=True)
    keep: list[str] = []
    skipped: dict[str, str] = {}
    for c in numeric:
        dtype = table.schema[c]
        if "`" in c:
            skipped[c] = "a backtick in its name"
        elif stats[c] <= 1:
            skipped[c] = "constant"
        elif dtype.is_integer() and stats[c] == table.height and table.height > 1:
            skipped[c] = "an identifier (all values distinct)"
        else:
            keep.append(c)
    return keep, skipped


def float_column(series: pl.Series) -> np.ndarray:
    """float64 with NaN for null and NaN (the missing markers of bank extracts)."""
    return series.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)


# ---- ratios and differences ------------------------------------------------------------------------
def _bad_denominator_share(table: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    """Share of rows where a column is zero or missing: the better denominator of a pair has fewer."""
    row = table.select([(pl.col(c).is_null() | (pl.col(c).cast(pl.Float64).fill_nan(0.0) == 0)).mean().alias(c)
                        for c in columns]).row(0, named=True)
    return {c: float(row[c] or 0.0) for c in columns}


def _as_float(name: str, dtype: pl.DataType) -> str:
    """Unsigned integers subtract through floats (polars would wrap around below zero)."""
    return f"to_float({quote(name)})" if dtype.is_unsigned_integer() else quote(name)


def derive_candidates(table: pl.DataFrame, columns: list[str], kinds: set[str]) -> list[Candidate]:
    """Ratios and differences of every pair of `columns` (in table order), one direction each.

    A ratio divides by the column with fewer zero/missing values (ties: table order), and is null when the
    denominator is zero or missing, never inf. Names that already exist in the table are not generated.
    """
    bad = _bad_denominator_share(table, columns) if RATIO in kinds else {}
    taken = set(table.columns)
    out: list[Candidate] = []
    for i, a in enumerate(columns):
        for b in columns[i + 1:]:
            if RATIO in kinds:
                num, den = (b, a) if bad[a] < bad[b] else (a, b)
                name = f"{num}_per_{den}"
                if name not in taken:
                    qn, qd = quote(num), quote(den)
                    out.append(Candidate(name, RATIO, tr("ratio of {a} to {b}", a=num, b=den),
                                         f"if({qd} == 0, null, {qn} / {qd})", (num, den)))
                    taken.add(name)
            if DIFFERENCE in kinds:
                name = f"{a}_minus_{b}"
                if name not in taken:
                    expr = f"{_as_float(a, table.schema[a])} - {_as_float(b, table.schema[b])}"
                    out.append(Candidate(name, DIFFERENCE, tr("difference {a} minus {b}", a=a, b=b), expr, (a, b)))
                    taken.add(name)
    return out


def derive_exprs(features: list[dict], columns: list[str]) -> list[pl.Expr]:
    """Compile derive features ({"name", "expression"}) against a table's columns; bad text is a NodeInputError."""
    exprs = []
    for f in features:
        try:
            exprs.append(parse_expression(f["expression"], columns).alias(f["name"]))
        except ExpressionError as exc:
            raise NodeInputError(tr("Automatic feature {name!r} cannot be computed on this table: {error}",
                                    name=f["name"], error=exc)) from None
    return exprs


# ---- WOE bins --------------------------------------------------------------------------------------
def _binning_text(entry: dict) -> str:
    """The fitted bins in words, e.g. "(-inf, 0.3) -> WOE 0.512; [0.3, inf) -> WOE -0.41; missing -> WOE 0"."""
    parts = [f"{label} -> WOE {woe:.4g}" for label, woe in zip(entry["labels"], entry["woe"])]
    parts.append(f"{binning.MISSING} -> WOE {entry['missing_woe']:.4g}")
    return "; ".join(parts)


def woe_candidates(table: pl.DataFrame, columns: list[str], target: str, max_bins: int, seed: int,
                   log: Callable[[str], None]) -> list[Candidate]:
    """The optimal monotonic WOE of each column, fitted one column at a time so one column optbinning cannot bin
    is skipped (and logged) rather than failing the node."""
    out: list[Candidate] = []
    for c in columns:
        if f"{c}_woe" in table.columns:
            log(f"skipping the WOE of {c!r}: the table already has a column {c}_woe")
            continue
        try:
            step, _ = binning.fit_binning(table, [c], target=target, method="optimal", max_bins=max_bins,
                                          output="woe", keep_original=True, seed=seed)
        except NodeInputError as exc:
            log(f"skipping the WOE of {c!r}: {exc}")
            continue
        entry = step.params["entries"][0]
        out.append(Candidate(entry["output"], WOE_BIN,
                             tr("weight of evidence of {a} in {n} optimal monotonic bins", a=c,
                                n=len(entry["labels"])),
                             _binning_text(entry), (c,), step=step))
    return out


def merge_binning(steps: list[FittedTransform]) -> FittedTransform | None:
    """One binning step holding the entries of several single-column binning steps (same settings)."""
    if not steps:
        return None
    params = dict(steps[0].params)
    params["entries"] = [e for s in steps for e in s.params["entries"]]
    params["outputs"] = [o for s in steps for o in s.params["outputs"]]
    return FittedTransform(kind=binning.KIND, params=params, columns=tuple(c for s in steps for c in s.columns))


# ---- time windows --------------------------------------------------------------------------------
def _window_formula(agg: str, value: str | None, days: int, as_of: str) -> str:
    if value is None:
        return tr("number of events in the {days} days before {as_of}", days=days, as_of=as_of)
    words = {"sum": tr("sum of {value} in the {days} days before {as_of}", value=value, days=days, as_of=as_of),
             "count": tr("number of {value} values in the {days} days before {as_of}", value=value, days=days,
                         as_of=as_of),
             "mean": tr("mean of {value} in the {days} days before {as_of}", value=value, days=days, as_of=as_of)}
    return words[agg]


def window_candidates(table: pl.DataFrame, events: pl.DataFrame, *, entity: str | None, timestamp: str | None,
                      as_of: str | None, windows_days: list[int], target: str | None,
                      log: Callable[[str], None]) -> tuple[list[Candidate], pl.DataFrame]:
    """Sum, count and mean of each numeric event column (and the event count) per entity over each window before
    the table's as-of time, strictly before it (nodes.features.windows, so no same-instant leakage). Returns the
    candidates and their values, one row per table row in the table's order."""
    for value, setting in ((entity, tr("Entity column")), (timestamp, tr("Event time column")),
                           (as_of, tr("As-of column"))):
        if not value:
            raise NodeInputError(tr("{setting}: window features need this setting (or remove 'window' from the "
                                    "kinds of features)", setting=setting))
    assert entity and timestamp and as_of
    from nodes.columns import require_columns
    from nodes.features.windows import feature_names, window_aggregates

    require_columns(table, [entity, as_of], tr("Entity column") + " / " + tr("As-of column"))
    require_columns(events, [entity, timestamp], tr("Entity column") + " / " + tr("Event time column"))
    values, skipped = eligible_numeric(events, {entity, timestamp, *([target] if target else [])})
    for name, why in skipped.items():
        log(f"event column {name!r} is not aggregated: {why}")
    made = window_aggregates(events, entity=entity, timestamp=timestamp, values=values,
                             windows_days=list(windows_days), aggs=list(WINDOW_AGGS),
                             at=table.select(entity, as_of), at_timestamp=as_of, include_as_of_instant=False)
    out: list[Candidate] = []
    keys = (entity, timestamp, as_of)
    for days in dict.fromkeys(windows_days):
        specs = [(f"events_count_{days}d", "count", None)]
        specs += [(f"{v}_{a}_{days}d", a, v) for v in values for a in WINDOW_AGGS]
        for name, agg, value in specs:
            if name in table.columns:
                log(f"skipping window feature {name!r}: the table already has a column of that name")
                continue
            text = (f"window_aggregates(events, entity={entity}, timestamp={timestamp}, "
                    f"value={value or '*'}, agg={agg}, window=[{as_of} - {days}d, {as_of}))")
            out.append(Candidate(name, WINDOW, _window_formula(agg, value, days, as_of), text,
                                 ((value,) if value else ()) + keys))
    assert {c.name for c in out} <= set(feature_names(values, windows_days, WINDOW_AGGS))
    return out, made.select([c.name for c in out])


# ---- evaluation ------------------------------------------------------------------------------------
def evaluate(cands: list[Candidate], frame: pl.DataFrame) -> pl.DataFrame:
    """The candidates' values on `frame` (one column each, in order). Window candidates must already be columns of
    `frame`; the others are computed exactly as the fitted transform will compute them."""
    cols: dict[str, pl.Series] = {}
    derived = [c for c in cands if c.kind in (RATIO, DIFFERENCE)]
    if derived:
        exprs = derive_exprs([{"name": c.name, "expression": c.expression} for c in derived], frame.columns)
        cols.update({s.name: s for s in frame.select(exprs).get_columns()})
    woe = [c for c in cands if c.kind == WOE_BIN]
    if woe:
        merged = merge_binning([c.step for c in woe if c.step is not None])
        assert merged is not None
        applied = binning.apply(merged.params, frame.select(list(dict.fromkeys(merged.columns))))
        cols.update({c.name: applied.get_column(c.name) for c in woe})
    for c in cands:
        if c.kind == WINDOW:
            cols[c.name] = frame.get_column(c.name)
    return pl.DataFrame([cols[c.name] for c in cands]) if cands else pl.DataFrame()


# ---- scores ----------------------------------------------------------------------------------------
def iv_score(x: np.ndarray, y: np.ndarray, bins: int = IV_BINS) -> float:
    """Information value of `x` cut at up to `bins` quantiles (right-closed, repeated edges merged) plus a missing
    bin, zero cells counted as 0.5 rows: the IV Profile reports, so the two nodes agree. NaN: no finite values."""
    missing = np.isnan(x)
    finite = np.sort(x[np.isfinite(x)])
    if not len(finite):
        return math.nan
    positions = np.round((len(finite) - 1) * np.arange(1, bins) / bins).astype(np.intp)
    edges = np.unique(finite[positions])
    codes = np.searchsorted(edges, x, "left")
    codes[missing] = len(edges) + 1
    n_codes = len(edges) + 2
    cells = np.bincount(codes * 2 + y, minlength=2 * n_codes).reshape(n_codes, 2).astype(np.float64)
    totals = cells.sum(axis=0)
    if not totals.all():
        return math.nan
    used = cells.sum(axis=1) > 0
    share = np.maximum(cells[used], 0.5) / totals
    return float(((share[:, 0] - share[:, 1]) * np.log(share[:, 0] / share[:, 1])).sum())


def mi_score(x: np.ndarray, y: np.ndarray, classification: bool, seed: int) -> float:
    """scikit-learn's k-nearest-neighbour mutual information (nats) on the rows where `x` is finite."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    ok = np.isfinite(x)
    if ok.sum() < 4:
        return math.nan
    fn = mutual_info_classif if classification else mutual_info_regression
    return float(fn(x[ok].reshape(-1, 1), y[ok], discrete_features=False, n_neighbors=3, random_state=seed)[0])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation on the rows where both are finite; 0 when either is constant there."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    xa, xb = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float(xa @ xa) * float(xb @ xb))
    return float(xa @ xb) / den if den > 0 else 0.0
