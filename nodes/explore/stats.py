"""Statistics behind the Profile node: per-column summaries, correlations and power against a binary target.

Built for 1,000,000 x 50 tables: category and date tallies run as one wide polars select (one expression per
statistic and column, evaluated in parallel); moments and order statistics (quantiles, distinct values, histogram,
outliers, bins, AUC) come from each numeric column sorted once with numpy's vectorised sort, columns in parallel.
Nothing loops over rows in Python. Results are plain dataclasses with JSON-friendly fields; undefined statistics
are None, never NaN.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import polars as pl

from engine.i18n import tr

QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
HIST_BINS = 20
TOP_VALUES = 10
TARGET_CATEGORIES = 20
CRAMERS_MAX_DISTINCT = 200
POSITIVE_LABELS = {"1", "yes", "true"}
CORR_CHUNK_ROWS = 131_072  # rows per chunk of the correlation sums: bounds memory to ~1 MB per column

_COUNTS = "counts"  # suffix of the first pass's value-count lists

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ColumnProfile:
    name: str
    dtype: str
    kind: str  # numeric | categorical | datetime | boolean | text | other
    count: int  # non-missing values (NaN counts as missing)
    missing: int
    missing_share: float  # missing / rows
    distinct: int  # distinct non-missing values
    distinct_share: float  # distinct / count
    mean: float | None  # booleans: share of True
    std: float | None
    min: Any  # numeric: finite minimum (int for integer columns); datetime: ISO string
    max: Any
    quantiles: dict[str, float] | None
    skew: float | None
    zeros: int | None
    outliers_iqr: int | None
    outliers_z: int | None
    histogram: list[tuple[float, float, int]] | None
    top: list[tuple[str, int]]
    top_share: float  # count of the most frequent value / count
    infinite: int | None = None  # numeric: ±inf values, kept out of moments, quantiles and histogram


@dataclass
class TargetStat:
    column: str
    iv: float
    auc: float | None
    bins: list[dict]  # [{"bin": str, "count": int, "event_rate": float, "woe": float}]


# ---- helpers ---------------------------------------------------------------------------------------
def _num(value: Any) -> float | None:
    """A finite float or None: NaN and inf never reach JSON output."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Map over columns on threads: numpy's sort and reductions release the GIL."""
    items = list(items)
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items))


def _decoded(df: pl.DataFrame) -> pl.DataFrame:
    """Object columns (Python values, e.g. a numpy object array of floats and None) re-read with an inferred dtype.

    Without this a numeric column that came through pandas or numpy as objects would be profiled as "other".
    """
    objects = [name for name, dtype in df.schema.items() if dtype == pl.Object]
    return df.with_columns([_inferred(df.get_column(name)) for name in objects]) if objects else df


def _inferred(series: pl.Series) -> pl.Series:
    try:
        return pl.Series(series.name, series.to_list(), strict=False)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        return series


def _base_kind(dtype: pl.DataType) -> str:
    """Kind from the dtype alone; strings become categorical or text once their cardinality is known."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype == pl.Date or dtype == pl.Datetime:
        return "datetime"
    if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Enum:
        return "string"
    return "other"


def _valid(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as Float64 with NaN turned into null: NaN is a missing marker in bank extracts."""
    x = pl.col(name).cast(pl.Float64)
    return x.fill_nan(None) if dtype.is_float() else x


def _finite_or_null(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as Float64 with NaN and ±inf turned into null, keeping its length (for pairwise statistics)."""
    valid = _valid(name, dtype)
    return pl.when(valid.is_finite()).then(valid).alias(name)


def _floats(series: pl.Series) -> np.ndarray:
    """The column as a float64 array with NaN for nulls and NaNs."""
    return series.cast(pl.Float64).to_numpy()


def _counts_expr(values: pl.Expr) -> pl.Expr:
    """Every distinct non-missing value with its count, as one list of (value, count) structs."""
    return values.drop_nulls().alias("value").value_counts(name="count").implode()


def _top_of(counts: pl.Expr, k: int) -> pl.Expr:
    """Top-k of a `_counts_expr` list by count, ties by value: deterministic, unlike hash-ordered value_counts."""
    el = pl.element()
    return counts.list.eval(el.sort_by([el.struct.field("count"), el.struct.field("value")],
                                       descending=[True, False]).head(k))


def _top_expr(values: pl.Expr, k: int) -> pl.Expr:
    return _top_of(_counts_expr(values), k)


def _quantile(s: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """numpy.quantile's "linear" method on already sorted, non-empty data (no second partition)."""
    pos = (len(s) - 1) * np.asarray(q, dtype=np.float64)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, len(s) - 1)
    t = pos - lo
    a, b = s[lo], s[hi]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _outside(s: np.ndarray, low: float, high: float) -> int:
    """How many sorted values lie strictly below `low` or strictly above `high`."""
    return int(np.searchsorted(s, low, "left") + len(s) - np.searchsorted(s, high, "right"))


# ---- numeric order statistics ----------------------------------------------------------------------
@dataclass
class _Ordered:
    """A numeric column's finite values sorted ascending, with missing and infinite values counted aside."""
    values: np.ndarray
    missing: int
    infinite: int
    distinct: int  # distinct values, ±inf included
    longest_run: int  # occurrences of the most frequent value

    @classmethod
    def of(cls, series: pl.Series) -> _Ordered:
        x = _floats(series.drop_nulls())  # dropping nulls first halves the conversion (no NaN filling)
        finite = np.isfinite(x)
        if finite.all():  # the common case: no NaN or inf to mask out
            s, nan = np.sort(x), 0
        else:
            s = x[finite]  # already a copy: sort it in place
            s.sort()
            nan = int(np.isnan(x).sum())
        missing = series.null_count() + nan
        infinite = len(x) - nan - len(s)
        changes = s[1:] != s[:-1]
        distinct = int(np.count_nonzero(changes)) + 1 if len(s) else 0
        if distinct == len(s):  # all different (continuous data): no run lengths to build
            runs = np.ones(min(len(s), 1), dtype=np.int64)
        else:
            runs = np.diff(np.concatenate(([0], np.flatnonzero(changes) + 1, [len(s)])))
        if infinite:  # ±inf are values too, for distinct counts and the top share
            extra = np.array([np.count_nonzero(x == np.inf), np.count_nonzero(x == -np.inf)])
            extra = extra[extra > 0]
            distinct += len(extra)
            runs = np.concatenate((runs, extra))
        return cls(s, missing, infinite, distinct, int(runs.max()) if len(runs) else 0)


def _moments(s: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Mean, sample standard deviation (ddof 1) and biased skewness of sorted finite values.

    Two-pass central moments stay accurate for values far from zero; with the values already in numpy this costs
    a third of the same moments as polars expressions (which re-filter the column for each one)."""
    n = len(s)
    if not n:
        return None, None, None
    if s[0] == s[-1]:  # constant: exact zero spread, no skewness (rounding in the mean would invent some)
        return float(s[0]), 0.0 if n > 1 else None, None
    mean = float(s.mean())
    d = s - mean
    m2 = float(np.dot(d, d))
    skew = (float(np.dot(d * d, d)) / n) / (m2 / n) ** 1.5 if m2 > 0 else None
    return mean, math.sqrt(m2 / (n - 1)), skew


def _histogram(s: np.ndarray) -> list[tuple[float, float, int]]:
    """numpy.histogram's 20 equal-width bins (last one closed), counted by binary search in the sorted values."""
    lo, hi = float(s[0]), float(s[-1])
    if not hi > lo:
        return [(lo, hi, len(s))]
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    positions = np.searchsorted(s, edges, "left")
    positions[-1] = len(s)
    return [(float(edges[k]), float(edges[k + 1]), int(c)) for k, c in enumerate(np.diff(positions))]


def _order_stats(p: ColumnProfile, o: _Ordered) -> None:
    """Quantiles, distinct values, top share, zeros, histogram and outliers of one numeric column."""
    s = o.values
    p.infinite = o.infinite
    p.distinct, p.distinct_share = o.distinct, _share(o.distinct, p.count)
    p.top_share = _share(o.longest_run, p.count)
    p.zeros = int(np.searchsorted(s, 0.0, "right") - np.searchsorted(s, 0.0, "left"))
    if not len(s):
        return
    if p.min is None:  # floats and decimals: the finite range
        p.min, p.max = float(s[0]), float(s[-1])
    qs = _quantile(s, np.array(list(QUANTILES.values())))
    p.quantiles = {label: float(v) for label, v in zip(QUANTILES, qs)}
    q1, q3 = p.quantiles["p25"], p.quantiles["p75"]
    p.outliers_iqr = _outside(s, q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
    p.outliers_z = _outside(s, p.mean - 3 * p.std, p.mean + 3 * p.std) if p.std and p.mean is not None else 0
    p.histogram = _histogram(s)


# ---- per-column profiles ---------------------------------------------------------------------------
def _label_exprs(key: str, name: str) -> list[pl.Expr]:
    """Strings, categoricals, enums and booleans: tallied through their text labels."""
    s = pl.col(name).cast(pl.String)
    # one hash pass: the distinct count and the top values both come from these counts (see _first_pass)
    return [s.null_count().alias(f"{key}missing"), _counts_expr(s).alias(f"{key}{_COUNTS}")]


def _datetime_exprs(key: str, name: str) -> list[pl.Expr]:
    c = pl.col(name)
    return [c.null_count().alias(f"{key}missing"), c.drop_nulls().n_unique().alias(f"{key}distinct"),
            c.drop_nulls().alias("value").value_counts(name="count").struct.field("count").max().alias(f"{key}topn"),
            c.min().alias(f"{key}min"), c.max().alias(f"{key}max")]


def _column_exprs(key: str, name: str, dtype: pl.DataType) -> list[pl.Expr]:
    kind = _base_kind(dtype)
    if kind == "string":
        return _label_exprs(key, name)
    if kind == "boolean":
        return _label_exprs(key, name) + [pl.col(name).cast(pl.Float64).mean().alias(f"{key}mean")]
    if kind == "datetime":
        return _datetime_exprs(key, name)
    return []


def _first_pass(df: pl.DataFrame) -> dict[int, dict[str, Any]]:
    """One parallel select with every polars-side statistic of every column, keyed by column position."""
    exprs = [e for i, (name, dtype) in enumerate(df.schema.items()) for e in _column_exprs(f"{i}|", name, dtype)]
    if not exprs:
        return {}
    wide = df.select(exprs)
    tallies = [c for c in wide.columns if c.endswith(_COUNTS)]
    # value counts stay in polars (a 100k-label list never becomes Python objects): only their length and top-k
    row = wide.with_columns([e for c in tallies for e in (
        pl.col(c).list.len().alias(c.removesuffix(_COUNTS) + "distinct"),
        _top_of(pl.col(c), TOP_VALUES).alias(c.removesuffix(_COUNTS) + "top"))]).drop(tallies).row(0, named=True)
    grouped: dict[int, dict[str, Any]] = {}
    for alias, value in row.items():
        index, stat = alias.split("|", 1)
        grouped.setdefault(int(index), {})[stat] = value
    return grouped


def _blank(name: str, dtype: pl.DataType, kind: str, rows: int, missing: int, distinct: int,
           top_count: int) -> ColumnProfile:
    count = rows - missing
    return ColumnProfile(name=name, dtype=str(dtype), kind=kind, count=count, missing=missing,
                         missing_share=_share(missing, rows), distinct=distinct,
                         distinct_share=_share(distinct, count), mean=None, std=None, min=None, max=None,
                         quantiles=None, skew=None, zeros=None, outliers_iqr=None, outliers_z=None, histogram=None,
                         top=[], top_share=_share(top_count, count))


def _numeric_profile(series: pl.Series) -> ColumnProfile:
    o = _Ordered.of(series)
    p = _blank(series.name, series.dtype, "numeric", series.len(), o.missing, 0, 0)
    p.mean, p.std, p.skew = (_num(v) for v in _moments(o.values))
    if series.dtype.is_integer():  # the exact range: float64 would round ids above 2**53
        p.min, p.max = _int(series.min()), _int(series.max())
    _order_stats(p, o)
    return p


def _label_profile(name: str, dtype: pl.DataType, kind: str, r: dict[str, Any], rows: int) -> ColumnProfile:
    top = [(str(item["value"]), int(item["count"])) for item in (r["top"] or [])]
    p = _blank(name, dtype, kind, rows, int(r["missing"]), int(r["distinct"]), top[0][1] if top else 0)
    p.top = top
    if kind == "string":  # few labels: categories; many: identifiers or free text
        p.kind = "categorical" if p.distinct <= max(50, 0.05 * rows) else "text"
    if kind == "boolean":
        labels = {label for label, _ in top}
        p.mean = _num(r["mean"])
        p.min, p.max = ("false" not in labels, "true" in labels) if labels else (None, None)
    return p


def _datetime_profile(name: str, dtype: pl.DataType, r: dict[str, Any], rows: int) -> ColumnProfile:
    p = _blank(name, dtype, "datetime", rows, int(r["missing"]), int(r["distinct"]), int(r["topn"] or 0))
    p.min, p.max = (v.isoformat() if v is not None else None for v in (r["min"], r["max"]))
    return p


def _other_profile(series: pl.Series) -> ColumnProfile:
    """Lists, structs, binaries, objects: counts only, with a Python fallback where polars cannot hash them."""
    present = series.drop_nulls()
    try:
        counts = present.alias("value").value_counts(name="count").get_column("count")
        distinct, top_count = counts.len(), int(counts.max() or 0)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        seen: dict[str, int] = {}
        for value in present.to_list():
            seen[repr(value)] = seen.get(repr(value), 0) + 1
        distinct, top_count = len(seen), max(seen.values(), default=0)
    return _blank(series.name, series.dtype, "other", series.len(), series.null_count(), distinct, top_count)


def profile_columns(df: pl.DataFrame) -> list[ColumnProfile]:
    """Statistics of every column, in the table's order: one polars select tallies the non-numeric columns, then
    numeric columns are sorted once each, on threads. (Running both at once oversubscribes the cores: slower.)"""
    df = _decoded(df)
    first = _first_pass(df)
    numeric = [i for i, dtype in enumerate(df.dtypes) if _base_kind(dtype) == "numeric"]
    sorted_profiles = dict(zip(numeric, _parallel(lambda i: _numeric_profile(df.to_series(i)), numeric)))
    profiles: list[ColumnProfile] = []
    for i, (name, dtype) in enumerate(df.schema.items()):
        kind, r = _base_kind(dtype), first.get(i, {})
        if kind == "numeric":
            profiles.append(sorted_profiles[i])
        elif kind in ("string", "boolean"):
            profiles.append(_label_profile(name, dtype, kind, r, df.height))
        elif kind == "datetime":
            profiles.append(_datetime_profile(name, dtype, r, df.height))
        else:
            profiles.append(_other_profile(df.to_series(i)))
    return profiles


# ---- correlations ----------------------------------------------------------------------------------
def _keep_least_missing(profiles: list[ColumnProfile], limit: int) -> list[str]:
    """At most `limit` columns, those with the fewest missing values, in the table's order."""
    chosen = sorted(range(len(profiles)), key=lambda k: (profiles[k].missing, k))[:max(limit, 0)]
    return [profiles[k].name for k in sorted(chosen)]


def _pairwise_pearson(frame: pl.DataFrame) -> np.ndarray:
    """Pearson r over pairwise-complete rows (nulls in `frame`), from row-chunked matrix products.

    The inputs are centred, so one-pass sums do not cancel catastrophically. A column that is constant on the rows
    it shares with another gives NaN, which the caller turns into null.
    """
    k = frame.width
    n, sx, sxx, sxy = (np.zeros((k, k)) for _ in range(4))
    for start in range(0, frame.height, CORR_CHUNK_ROWS):
        x = frame.slice(start, CORR_CHUNK_ROWS).to_numpy().astype(np.float64, copy=False)
        valid = ~np.isnan(x)
        if valid.all():  # the common case: one matrix product instead of four
            n += len(x)
            sx += x.sum(axis=0)[:, None]
            sxx += (x * x).sum(axis=0)[:, None]
            sxy += x.T @ x
            continue
        m = valid.astype(np.float64)
        x0 = np.where(valid, x, 0.0)
        n += m.T @ m
        sx += x0.T @ m
        sxx += (x0 * x0).T @ m
        sxy += x0.T @ x0
    with np.errstate(divide="ignore", invalid="ignore"):
        var = sxx - sx * sx / n
        flat = ~(var > 1e-9 * sxx)
        r = (sxy - sx * sx.T / n) / np.sqrt(var * var.T)
    r[(n < 2) | flat | flat.T | ~np.isfinite(r)] = np.nan
    np.fill_diagonal(r, np.where(np.isnan(np.diag(r)), np.nan, 1.0))
    return np.clip(r, -1.0, 1.0)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of the finite values, ties sharing their mean rank (as polars' rank("average")); NaN for
    NaN and ±inf. One vectorised argsort per column, three times faster than polars' rank on the same data."""
    out = np.full(len(x), np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    values = x[finite]
    order = np.argsort(values)
    ordered = values[order]
    starts_group = np.empty(len(ordered), dtype=bool)
    starts_group[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], len(ordered))  # exclusive: a group holds 1-based ranks starts+1 .. ends
    ranks = np.empty(len(ordered))
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(starts_group) - 1]
    out[finite] = ranks
    return out


def _centred(df: pl.DataFrame, names: list[str], rank: bool) -> pl.DataFrame:
    """Finite values (or their average ranks) minus their mean; NaN, inf and nulls become null."""
    if rank:
        ranked = _parallel(lambda name: _average_ranks(_floats(df.get_column(name))), names)
        frame = pl.DataFrame([pl.Series(name, r, nan_to_null=True) for name, r in zip(names, ranked)])
    else:
        frame = df.select([_finite_or_null(name, df.schema[name]) for name in names])
    return frame.select(pl.all() - pl.all().mean())


def _numeric_correlation(df: pl.DataFrame, names: list[str], rank: bool) -> np.ndarray:
    if not names or df.height == 0:
        return np.full((len(names), len(names)), np.nan)
    return _pairwise_pearson(_centred(df, names, rank))


def _cramers_v(table: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of a contingency table; NaN when undefined."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, k = table.shape
    n = float(table.sum())
    if n < 2 or r < 2 or k < 2:
        return math.nan
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    denominator = min(k - (k - 1) ** 2 / (n - 1), r - (r - 1) ** 2 / (n - 1)) - 1
    return min(1.0, math.sqrt(phi2 / denominator)) if denominator > 0 else math.nan


def _label_codes(df: pl.DataFrame, names: list[str]) -> list[np.ndarray]:
    """Integer codes 1..k per label (0 = missing), from each column's distinct labels and a hash lookup."""
    labels = df.select([pl.col(c).cast(pl.String).drop_nulls().unique().implode().alias(c) for c in names]).row(0)
    exprs = []
    for name, values in zip(names, labels):
        s = pl.col(name).cast(pl.String)
        known = s.replace_strict(values, list(range(1, len(values) + 1)), default=0, return_dtype=pl.Int64) \
            if values else pl.lit(0, pl.Int64)
        exprs.append(pl.when(s.is_null()).then(0).otherwise(known).cast(pl.Int64).alias(name))
    codes = df.select(exprs)
    return [codes.get_column(c).to_numpy() for c in names]


def _cramers_matrix(df: pl.DataFrame, names: list[str]) -> np.ndarray:
    """Contingency tables of every pair by numpy.bincount over combined codes; missing rows drop out pairwise."""
    k = len(names)
    out = np.full((k, k), np.nan)
    if not k or df.height == 0:
        return out
    codes = _label_codes(df, names)
    sizes = [int(c.max()) + 1 for c in codes]

    def cell(pair: tuple[int, int]) -> float:
        i, j = pair
        counts = np.bincount(codes[i] * sizes[j] + codes[j], minlength=sizes[i] * sizes[j])
        return _cramers_v(counts.reshape(sizes[i], sizes[j])[1:, 1:].astype(np.float64))

    pairs = [(i, j) for i in range(k) for j in range(i, k)]
    for (i, j), v in zip(pairs, _parallel(cell, pairs)):
        out[i, j] = out[j, i] = v
    return out


def _matrix_frame(names: list[str], values: np.ndarray) -> pl.DataFrame:
    """A square matrix as a table: a "column" label column plus one Float64 column per variable."""
    headers = [f"{n}_" if n == "column" else n for n in names]  # keep the label column's name free
    data = [pl.Series("column", names, dtype=pl.String)]
    data += [pl.Series(h, values[:, j], dtype=pl.Float64, nan_to_null=True) for j, h in enumerate(headers)]
    return pl.DataFrame(data)


def correlations(df: pl.DataFrame, profiles: list[ColumnProfile], max_columns: int = 40) -> dict[str, pl.DataFrame]:
    """Pearson and Spearman over numeric columns, bias-corrected Cramér's V over low-cardinality categoricals.

    Each matrix keeps at most `max_columns` (the most complete) columns, as the work grows with its square. Pairs
    use the rows where both values are present; Spearman ranks each column once over its own present values.
    Booleans count as categoricals for Cramér's V.
    """
    df = _decoded(df)
    present = [p for p in profiles if p.name in df.columns]
    numeric = _keep_least_missing([p for p in present if p.kind == "numeric"], max_columns)
    categorical = _keep_least_missing([p for p in present if p.kind in ("categorical", "boolean")
                                       and p.distinct <= CRAMERS_MAX_DISTINCT], max_columns)
    return {"pearson": _matrix_frame(numeric, _numeric_correlation(df, numeric, rank=False)),
            "spearman": _matrix_frame(numeric, _numeric_correlation(df, numeric, rank=True)),
            "cramers_v": _matrix_frame(categorical, _cramers_matrix(df, categorical))}


# ---- power against a binary target -----------------------------------------------------------------
def _is_positive_label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in POSITIVE_LABELS


def event_value(known: pl.Series) -> Any:
    """The event: the value that reads as 1/True/"1"/"yes", else the minority class (ties: the later label)."""
    values = sorted(known.unique().to_list(), key=str)
    marked = [v for v in values if _is_positive_label(v)]
    if len(marked) == 1:
        return marked[0]
    counts = [int((known == v).sum()) for v in values]
    return values[0] if counts[0] < counts[1] else values[1]


def _event_indicator(df: pl.DataFrame, target: str) -> tuple[pl.DataFrame, np.ndarray]:
    """Rows with a known target and their 0/1 event; ValueError unless the target has exactly two values."""
    if target not in df.columns:
        raise ValueError(tr("Target column {target!r} is not in the table", target=target))
    t = df.get_column(target)
    if t.dtype.is_float():
        t = t.fill_nan(None)
    known = t.drop_nulls()
    distinct = known.n_unique()
    if distinct != 2:
        raise ValueError(tr("Target column {target!r} must be binary (exactly two distinct values), but it has "
                            "{n} distinct non-missing values", target=target, n=distinct))
    event = event_value(known)
    data = df.filter(t.is_not_null()) if t.null_count() else df
    return data, (known == event).to_numpy().astype(np.int64)


def _bin_cells(codes: np.ndarray, y: np.ndarray, n_codes: int) -> np.ndarray:
    """(non-event, event) counts per bin code, by one numpy.bincount."""
    return np.bincount(codes.astype(np.int64) * 2 + y, minlength=2 * n_codes).reshape(n_codes, 2)


def _woe_bins(labels: list[str], cells: np.ndarray) -> tuple[float, list[dict]]:
    """WOE = ln(non-event share / event share) per bin and IV; empty bins skipped, zero cells smoothed to 0.5."""
    nonevents, events = float(cells[:, 0].sum()), float(cells[:, 1].sum())
    iv, out = 0.0, []
    for label, (ne, e) in zip(labels, cells.tolist()):
        if ne + e == 0:
            continue
        d_ne, d_e = max(ne, 0.5) / nonevents, max(e, 0.5) / events
        woe = math.log(d_ne / d_e)
        iv += (d_ne - d_e) * woe
        out.append({"bin": label, "count": ne + e, "event_rate": e / (ne + e), "woe": woe})
    return iv, out


def _rank_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties, by binary search of the sorted events in all values."""
    events = np.sort(x[y == 1])
    every = np.sort(x)
    ranks = (np.searchsorted(every, events, "left") + np.searchsorted(every, events, "right") + 1) / 2.0
    n_events = len(events)
    return float((ranks.sum() - n_events * (n_events + 1) / 2) / (n_events * (len(x) - n_events)))


def _bin_auc(cells: np.ndarray) -> float | None:
    """AUC of scoring each row by its bin's event rate (bins with equal rates tie)."""
    cells = cells[cells.sum(axis=1) > 0]
    nonevents, events = cells[:, 0].sum(), cells[:, 1].sum()
    if not nonevents or not events:
        return None
    rates = cells[:, 1] / cells.sum(axis=1)
    below = wins = 0.0
    for rate in np.unique(rates):
        group = cells[rates == rate].sum(axis=0)
        wins += group[1] * (below + 0.5 * group[0])
        below += group[0]
    return float(wins / (events * nonevents))


def _interval_labels(edges: np.ndarray) -> list[str]:
    bounds = [-math.inf, *edges.tolist(), math.inf]
    labels = [f"({bounds[k]:.6g}, {bounds[k + 1]:.6g}]" for k in range(len(bounds) - 1)]
    labels[-1] = labels[-1][:-1] + ")"
    return labels


def _numeric_target(series: pl.Series, y: np.ndarray, bins: int) -> TargetStat:
    """Quantile bins (right-closed, deduplicated edges) plus "missing"; AUC of the raw value, median-imputed."""
    x = _floats(series)
    missing = np.isnan(x)
    finite = np.sort(x[np.isfinite(x)])
    positions = np.round((len(finite) - 1) * np.arange(1, bins) / bins).astype(np.intp)
    edges = np.unique(finite[positions]) if len(finite) else np.empty(0)
    codes = np.searchsorted(edges, x, "left")
    codes[missing] = len(edges) + 1
    labels = _interval_labels(edges) + ["missing"]
    iv, table = _woe_bins(labels, _bin_cells(codes, y, len(labels)))
    auc = None
    if not missing.all():
        auc = _rank_auc(np.where(missing, np.median(finite) if len(finite) else 0.0, x), y)
        auc = max(auc, 1.0 - auc)
    return TargetStat(column=series.name, iv=iv, auc=auc, bins=table)


def _category_codes(data: pl.DataFrame, names: list[str]) -> tuple[dict[str, list[str]], pl.DataFrame]:
    """Codes 0..n-1 for each feature's top categories, then n for "other" and n+1 for "missing"."""
    if not names:
        return {}, pl.DataFrame()
    row = data.select([_top_expr(pl.col(c).cast(pl.String), TARGET_CATEGORIES).alias(c) for c in names]).row(0)
    tops = {c: [str(item["value"]) for item in (cells or [])] for c, cells in zip(names, row)}
    exprs = []
    for name in names:
        s, top = pl.col(name).cast(pl.String), tops[name]
        known = s.replace_strict(top, list(range(len(top))), default=len(top), return_dtype=pl.Int64) if top \
            else pl.lit(0, pl.Int64)
        exprs.append(pl.when(s.is_null()).then(len(top) + 1).otherwise(known).cast(pl.Int64).alias(name))
    return tops, data.select(exprs)


def target_analysis(df: pl.DataFrame, target: str, profiles: list[ColumnProfile], bins: int = 10) -> list[TargetStat]:
    """Information value, WOE per bin and univariate AUC of every numeric, categorical and boolean feature.

    Rows with a missing target are left out; text, datetime and other columns are skipped. Sorted by IV, strongest
    first. Raises ValueError naming the column when the target is not binary.
    """
    data, y = _event_indicator(_decoded(df), target)
    kinds = {p.name: p.kind for p in profiles}
    features = [c for c in data.columns if c != target]
    numeric = [c for c in features if kinds.get(c) == "numeric"]
    categorical = [c for c in features if kinds.get(c) in ("categorical", "boolean")]
    stats = _parallel(lambda c: _numeric_target(data.get_column(c), y, max(bins, 2)), numeric)
    tops, codes = _category_codes(data, categorical)
    for name in categorical:
        labels = tops[name] + ["other", "missing"]
        cells = _bin_cells(codes.get_column(name).to_numpy(), y, len(labels))
        iv, table = _woe_bins(labels, cells)
        stats.append(TargetStat(column=name, iv=iv, auc=_bin_auc(cells[:-1]) if cells[:-1].any() else None,
                                bins=table))
    return sorted(stats, key=lambda s: -s.iv)


# ---- table-level -----------------------------------------------------------------------------------
def duplicate_rows(df: pl.DataFrame, profiles: list[ColumnProfile] | None = None) -> int:
    """Rows that repeat an earlier row exactly (first occurrences not counted).

    Two identical rows agree on every column, so only rows that repeat on the few most distinct columns (known from
    `profiles`) can be duplicates: those are found first, cheaply, and only they are hashed whole. Row hashes rule
    out almost every remaining row; only rows sharing a hash are compared exactly.
    """
    if df.height < 2 or df.width == 0:
        return 0
    df = _decoded(df)
    keys = _prefilter_columns(df, profiles or [])
    try:
        if keys:
            df = df.filter(pl.Series(_repeated(df.select(keys).hash_rows().to_numpy())))
            if df.height < 2:
                return 0
        suspects = df.filter(df.hash_rows().is_duplicated())
        return suspects.height - suspects.n_unique() if suspects.height else 0
    except (pl.exceptions.PolarsError, TypeError):  # unhashable (object) columns: compare printed rows
        return df.height - len({repr(row) for row in df.iter_rows()})


def _repeated(hashes: np.ndarray) -> np.ndarray:
    """Mask of the values that occur more than once: one sort of the 64-bit hashes (a third of a hash group-by)."""
    ordered = np.sort(hashes)
    return np.isin(hashes, ordered[1:][ordered[1:] == ordered[:-1]])


def _prefilter_columns(df: pl.DataFrame, profiles: list[ColumnProfile], most: int = 3) -> list[str]:
    """Up to `most` numeric or date columns with the most distinct values: cheap to hash, and rows that repeat on
    them are rare unless the table really has duplicates."""
    cheap = [p for p in profiles if p.kind in ("numeric", "datetime") and p.name in df.columns and p.distinct_share]
    cheap.sort(key=lambda p: -p.distinct_share)
    return [p.name for p in cheap[:most] if p.distinct_share >= 0.5]


def sample_for_profile(df: pl.DataFrame, max_rows: int = 1_000_000, seed: int = 0) -> tuple[pl.DataFrame, bool]:
    """The table itself when it fits, else a seeded sample of `max_rows` rows kept in their original order."""
    if df.height <= max_rows:
        return df, False
    rows = np.sort(np.random.default_rng(seed).choice(df.height, size=max_rows, replace=False))
    return df.select(pl.all().gather(rows)), True
