"""Binning: cut numeric columns into intervals (or group categories) and output each row's bin or its WOE.

Methods: equal_width (max_bins equal intervals over the training range), quantile (training quantiles, repeated
edges merged) and optimal (optbinning's OptimalBinning: the IV-maximising bins under a monotonic event-rate
constraint; categorical columns are grouped). With equal_width and quantile, bins holding less than min_bin_share
of the rows are merged into their smaller neighbour (0 keeps the raw edges); optimal uses it as optbinning's
minimum bin (and pre-bin) size.

Numeric bins are closed on the left: (-inf, s1), [s1, s2), ..., [sk, inf), so values outside the training range fall
in the open-ended first and last bins. Missing values (null, NaN) go to a "missing" bin whose WOE is fitted when
the training data had missing values and 0 (neutral) otherwise. A category not seen in training goes to the
"unseen" bin with WOE 0. WOE = ln(share of non-events / share of events), positive = lower risk (the convention of
Profile and optbinning); a bin without events or non-events counts 0.5 rows there, an empty bin has WOE 0.

Params: {"output", "keep_original", "event", "entries": [{"column", "type": "numeric" | "categorical",
"splits" | "groups", "labels", "woe", "missing_woe", "output"}], "outputs"}.
"""
from __future__ import annotations

import warnings
from typing import Callable, Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.columns import require_columns
from nodes.features.transforms.common import (PREVIOUS, add_iv_figure, as_key, binary_target, chained,
                                              check_new_names, float_values, is_categorical, is_numeric, iv_table,
                                              not_target, require_apply_columns, require_rows, woe_iv)

KIND = "binning"
MISSING = "missing"
UNSEEN = "unseen"
METHODS = ("equal_width", "quantile", "optimal")
OUTPUTS = ("woe", "bin")
MONOTONIC = {"auto": "auto_asc_desc", "ascending": "ascending", "descending": "descending", "peak": "peak",
             "valley": "valley", "none": None}
TABLE_SCHEMA = {"column": pl.String, "bin": pl.String, "count": pl.Int64, "share": pl.Float64, "events": pl.Int64,
                "event_rate": pl.Float64, "woe": pl.Float64, "iv": pl.Float64}


class BinningSettings(NodeSettings):
    columns: list[str] = Field(default_factory=list, title=N_("Columns"),
                               description=N_("Empty: every numeric column except the target"))
    method: Literal["equal_width", "quantile", "optimal"] = Field(
        "optimal", title=N_("Method"),
        description=N_("equal_width, quantile, or optimal (monotonic, IV-maximising; needs the target)"))
    target: str | None = Field(None, title=N_("Target column"),
                               description=N_("A binary outcome: required for optimal bins and WOE output"),
                               json_schema_extra={"widget": "column"})
    max_bins: int = Field(10, ge=2, le=100, title=N_("Most bins"))
    min_bin_share: float = Field(0.05, ge=0.0, le=0.5, title=N_("Smallest bin share"),
                                 description=N_("Bins with fewer rows than this share are merged (0: keep all)"))
    monotonic: Literal["auto", "ascending", "descending", "peak", "valley", "none"] = Field(
        "auto", title=N_("Event rate trend (optimal)"),
        description=N_("auto picks ascending or descending; peak and valley allow one turn; none: no constraint"))
    output: Literal["woe", "bin"] = Field("woe", title=N_("Output"),
                                          description=N_("woe: a number <column>_woe; bin: a label <column>_bin"))
    keep_original: bool = Field(True, title=N_("Keep original columns"))


# ---- labels ----------------------------------------------------------------------------------------
def _edge_texts(splits: list[float]) -> list[str]:
    """Short edge texts ("10.0", "0.123457"), with more digits only where short ones would collide."""
    for digits in (6, 10, 17):
        texts = [repr(float(f"{s:.{digits}g}")) for s in splits]
        if len(set(texts)) == len(texts):
            return texts
    return [repr(float(s)) for s in splits]


def numeric_labels(splits: list[float]) -> list[str]:
    """"(-inf, a)", "[a, b)", ..., "[z, inf)" for left-closed bins between the splits."""
    bounds = ["-inf", *_edge_texts(splits), "inf"]
    labels = [f"[{bounds[k]}, {bounds[k + 1]})" for k in range(len(bounds) - 1)]
    labels[0] = "(" + labels[0][1:]
    return labels


def _group_label(group: list[str]) -> str:
    return "[" + ", ".join(group) + "]"


# ---- edges -----------------------------------------------------------------------------------------
def _merge_small(splits: np.ndarray, values: np.ndarray, min_share: float) -> np.ndarray:
    """Merge bins below `min_share` of the rows into their smaller neighbour, smallest first (a loop over bins)."""
    splits = list(splits)
    if min_share <= 0 or not len(values):
        return np.asarray(splits, dtype=np.float64)
    s = np.sort(values)
    while splits:
        counts = np.diff(np.concatenate(([0], np.searchsorted(s, splits, "left"), [len(s)])))
        i = int(np.argmin(counts))
        if counts[i] >= min_share * len(s):
            break
        if i == 0:
            j = 0
        elif i == len(counts) - 1:
            j = i - 1
        else:
            j = i - 1 if counts[i - 1] <= counts[i + 1] else i
        del splits[j]  # the edge between bins j and j + 1
    return np.asarray(splits, dtype=np.float64)


def equal_width_splits(values: np.ndarray, max_bins: int) -> np.ndarray:
    """The inner edges of numpy.histogram_bin_edges(values, max_bins); none for a constant column."""
    lo, hi = float(values.min()), float(values.max())
    return np.linspace(lo, hi, max_bins + 1)[1:-1] if hi > lo else np.empty(0)


def quantile_splits(values: np.ndarray, max_bins: int) -> np.ndarray:
    """numpy.quantile at 1/k, ..., (k-1)/k, repeated edges and edges at the minimum dropped (no empty bins)."""
    q = np.unique(np.quantile(values, np.linspace(0.0, 1.0, max_bins + 1)[1:-1]))
    return q[q > values.min()]


def _optimal(name: str, x: np.ndarray, y: np.ndarray, categorical: bool, max_bins: int, min_bin_share: float,
             monotonic: str, seed: int) -> list:
    from optbinning import OptimalBinning

    share = min(0.5, max(min_bin_share, 0.01))
    optb = OptimalBinning(name=name, dtype="categorical" if categorical else "numerical", solver="cp",
                          max_n_bins=max_bins, min_bin_size=min_bin_share or None, min_prebin_size=share,
                          monotonic_trend=MONOTONIC[monotonic], random_state=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optb.fit(x, y)
    except (ValueError, TypeError) as exc:
        raise NodeInputError(tr("Binning: optimal binning of column {col!r} failed: {error}", col=name,
                                error=str(exc).splitlines()[0])) from None
    if categorical:
        return [sorted(str(v) for v in group) for group in optb.splits]
    return [float(s) for s in optb.splits]


# ---- fitting ---------------------------------------------------------------------------------------
def _check(table: pl.DataFrame, columns: list[str], target: str | None, method: str, output: str, monotonic: str,
           max_bins: int, min_bin_share: float) -> None:
    require_rows(table)
    if method not in METHODS:
        raise NodeInputError(tr("Method: {value!r} is not one of {choices}", value=method, choices=", ".join(METHODS)))
    if output not in OUTPUTS:
        raise NodeInputError(tr("Output: {value!r} is not one of {choices}", value=output, choices=", ".join(OUTPUTS)))
    if monotonic not in MONOTONIC:
        raise NodeInputError(tr("Event rate trend: {value!r} is not one of {choices}", value=monotonic,
                                choices=", ".join(MONOTONIC)))
    if max_bins < 2 or not 0.0 <= min_bin_share <= 0.5:
        raise NodeInputError(tr("Most bins must be at least 2 and the smallest bin share between 0 and 0.5"))
    if not target and method == "optimal":
        raise NodeInputError(tr("Target column: the optimal method needs a binary target column"))
    if not target and output == "woe":
        raise NodeInputError(tr("Target column: WOE output needs a binary target column (or choose bin output)"))
    require_columns(table, columns, tr("Columns"))
    not_target(columns, target, tr("Columns"))
    for c in columns:
        dtype = table.schema[c]
        if is_numeric(dtype):
            continue
        if not is_categorical(dtype):
            raise NodeInputError(tr("Columns: column {col!r} is {dtype}; only numeric and categorical columns can be "
                                    "binned", col=c, dtype=str(dtype)))
        if method != "optimal":
            raise NodeInputError(tr("Columns: column {col!r} is categorical; the {method} method bins numbers only, "
                                    "use the optimal method to group categories", col=c, method=method))


def _bin_index(entry: dict, dtype: pl.DataType) -> pl.Expr:
    """Each row's bin number: 0..k-1, k = missing, k + 1 = unseen category."""
    k = len(entry["labels"])
    if entry["type"] == "numeric":
        x = float_values(entry["column"], dtype)
        idx = pl.lit(pl.Series(entry["splits"], dtype=pl.Float64)).search_sorted(x, side="right").cast(pl.Int64)
        return pl.when(x.is_null()).then(pl.lit(k, pl.Int64)).otherwise(idx)
    key = as_key(entry["column"])
    cats = [c for g in entry["groups"] for c in g]
    codes = [i for i, g in enumerate(entry["groups"]) for _ in g]
    known = key.replace_strict(cats, codes, default=k + 1, return_dtype=pl.Int64) if cats else pl.lit(k + 1)
    return pl.when(key.is_null()).then(pl.lit(k, pl.Int64)).otherwise(known)


def _fit_column(name: str, frame: pl.DataFrame, y: np.ndarray | None, method: str, max_bins: int,
                min_bin_share: float, monotonic: str, seed: int) -> dict:
    """Edges (or groups) and labels of one column, fitted on `frame` (rows with a known target when there is one)."""
    dtype = frame.schema[name]
    if not is_numeric(dtype):
        keys = frame.select(as_key(name)).to_series()
        present = keys.is_not_null().to_numpy()
        if not present.any():
            raise NodeInputError(tr("Binning: column {col!r} has no values to bin", col=name))
        groups = _optimal(name, keys.to_numpy()[present].astype(object), y[present], True, max_bins, min_bin_share,
                          monotonic, seed)
        return {"column": name, "type": "categorical", "groups": groups, "labels": [_group_label(g) for g in groups]}
    x = frame.select(float_values(name, dtype)).to_series().to_numpy()
    finite = np.isfinite(x)
    if not finite.any():
        raise NodeInputError(tr("Binning: column {col!r} has no finite values to bin", col=name))
    values = x[finite]
    if method == "optimal":
        assert y is not None
        splits = np.asarray(_optimal(name, values, y[finite], False, max_bins, min_bin_share, monotonic, seed))
    else:
        raw = equal_width_splits(values, max_bins) if method == "equal_width" else quantile_splits(values, max_bins)
        splits = _merge_small(raw, values, min_bin_share)
    return {"column": name, "type": "numeric", "splits": [float(s) for s in splits],
            "labels": numeric_labels([float(s) for s in splits])}


def _bin_table(name: str, codes: np.ndarray, y: np.ndarray | None, labels: list[str],
               totals: tuple[float, float] | None) -> tuple[pl.DataFrame, np.ndarray, float]:
    """Rows per bin (missing last, when present), the WOE per bin number (0..k, k = missing) and the IV."""
    k = len(labels)
    counts = np.bincount(codes, minlength=k + 2)[:k + 1].astype(np.int64)
    woe = np.zeros(k + 1)
    events = iv = None
    if y is not None and totals is not None:
        events = np.bincount(codes, weights=y, minlength=k + 2)[:k + 1]
        w, parts = woe_iv(counts - events, events, *totals)
        woe, iv = np.where(counts > 0, w, 0.0), np.where(counts > 0, parts, 0.0)
    n = max(int(counts.sum()), 1)
    shown = [i for i in range(k + 1) if i < k or counts[i] > 0]
    frame = pl.DataFrame({
        "column": [name] * len(shown), "bin": [(labels + [MISSING])[i] for i in shown],
        "count": counts[shown], "share": counts[shown] / n,
        "events": None if events is None else events[shown].astype(np.int64),
        "event_rate": None if events is None else np.where(counts[shown] > 0, events[shown] / np.maximum(
            counts[shown], 1), np.nan),
        "woe": None if events is None else woe[shown], "iv": None if iv is None else iv[shown],
    }, schema=TABLE_SCHEMA, nan_to_null=True)
    return frame, woe, float(iv.sum()) if iv is not None else float("nan")


def fit_binning(table: pl.DataFrame, columns: list[str], *, target: str | None, method: str = "optimal",
                max_bins: int = 10, min_bin_share: float = 0.05, monotonic: str = "auto",
                output: str = "woe", keep_original: bool = True, seed: int = 0,
                on_column: Callable[[int, int, str], None] | None = None) -> tuple[FittedTransform, pl.DataFrame]:
    """Fit bins on `table`; return the transform (kind "binning") and the binning table
    (columns: column, bin, count, share, events, event_rate, woe, iv).

    Empty `columns`: every numeric column except the target. With a target, rows whose target is missing are left
    out of the fit and of the table. `seed` seeds optbinning's pre-binning tree; the other methods are exact.
    `on_column(done, total, name)` is called before each column (progress, and a place to raise Cancelled).
    """
    if not columns:
        columns = [c for c, d in table.schema.items() if is_numeric(d) and c != target]
    columns = list(dict.fromkeys(columns))
    _check(table, columns, target, method, output, monotonic, max_bins, min_bin_share)
    y: np.ndarray | None = None
    event: str | None = None
    frame = table
    totals: tuple[float, float] | None = None
    if target:
        y_series, event = binary_target(table, target, tr("Target column"))
        known = y_series.is_not_null()
        frame = table.filter(known) if y_series.null_count() else table
        y = y_series.drop_nulls().to_numpy().astype(np.int64)
        totals = (float(len(y) - y.sum()), float(y.sum()))
    entries, parts = [], []
    for i, name in enumerate(columns):
        if on_column is not None:
            on_column(i, len(columns), name)
        entry = _fit_column(name, frame, y, method, max_bins, min_bin_share, monotonic, seed)
        codes = frame.select(_bin_index(entry, frame.schema[name])).to_series().to_numpy()
        part, woe, _ = _bin_table(name, codes, y, entry["labels"], totals)
        entry["woe"] = [float(v) for v in woe[:-1]] if y is not None else None
        entry["missing_woe"] = float(woe[-1])
        entry["output"] = f"{name}_{output}"
        entries.append(entry)
        parts.append(part)
    made = [e["output"] for e in entries]
    check_new_names(table, made, [] if keep_original else columns, tr("Output"))
    params = {"output": output, "keep_original": keep_original, "event": event, "entries": entries,
              "outputs": made}
    bins = pl.concat(parts) if parts else pl.DataFrame(schema=TABLE_SCHEMA)
    return FittedTransform(kind=KIND, params=params, columns=tuple(columns)), bins


def apply(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    """Each binned column's WOE (Float64) or bin label (String) as `<column>_woe` / `<column>_bin`."""
    entries = params.get("entries", [])
    inputs = [e["column"] for e in entries]
    require_apply_columns(table, inputs, KIND)
    schema = table.schema
    new: list[pl.Expr] = []
    for e in entries:
        if e["type"] == "numeric" and not is_numeric(schema[e["column"]]):
            raise NodeInputError(tr("Binning: column {col!r} was numeric when fitted but is {dtype} here",
                                    col=e["column"], dtype=str(schema[e["column"]])))
        idx = _bin_index(e, schema[e["column"]])
        k = len(e["labels"])
        codes = list(range(k + 2))
        if params["output"] == "woe":
            values = [*e["woe"], e["missing_woe"], 0.0]
            new.append(idx.replace_strict(codes, values, return_dtype=pl.Float64).alias(e["output"]))
        else:
            values = [*e["labels"], MISSING, UNSEEN]
            new.append(idx.replace_strict(codes, values, return_dtype=pl.String).alias(e["output"]))
    out = table.with_columns(new) if new else table
    return out if params.get("keep_original", True) else out.drop(inputs)


def _progress(ctx: Context, done: int, total: int, name: str) -> None:
    ctx.check_cancelled()
    ctx.progress(done / max(total, 1), tr("binning {col}", col=name))


# ---- the node --------------------------------------------------------------------------------------
@node("features.binning", version=1, title=N_("Binning"), category=N_("Features"), icon="binning")
class Binning(Node):
    """Bin numeric columns (equal width, quantile or optimal monotonic) and output bins or WOE, with IV."""

    inputs = {"table": Table, "previous": PREVIOUS}
    outputs = {"table": Table, "transform": FittedTransformPort, "report": ReportPort}
    Settings = BinningSettings

    def compute(self, inputs: dict, settings: BinningSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        step, bins = fit_binning(table, settings.columns, target=settings.target, method=settings.method,
                                 max_bins=settings.max_bins, min_bin_share=settings.min_bin_share,
                                 monotonic=settings.monotonic, output=settings.output,
                                 keep_original=settings.keep_original, seed=ctx.seed,
                                 on_column=lambda i, n, name: _progress(ctx, i, n, name))
        report = Report(title=tr("Binning"), kind="binning")
        report.tables[tr("Binning table")] = bins
        if settings.target:
            ivs = iv_table({c: float(bins.filter(pl.col("column") == c)["iv"].sum()) for c in step.columns})
            report.tables[tr("Information value")] = ivs
            add_iv_figure(report, ivs, settings.target)
        ctx.log.info("%s binning of %d column(s)", settings.method, len(step.columns))
        return {"table": apply(step.params, table), "transform": chained(inputs.get("previous"), step),
                "report": report}
