"""Encode categories as numbers: one-hot, target (m-estimate, out-of-fold on the training rows) or WOE.

Category values are compared as strings (booleans as "true"/"false"), which is also how they are stored.

one-hot: one 0/1 (Int8) column `<col>_<value>` per kept category (the `max_categories` most frequent in training,
  ties by value). When training had more, `<col>_other` is 1 for any other non-missing value; a value unseen in
  training also goes to `<col>_other` when that column exists, else it gets all zeros. Missing values: all zeros.
target: `<col>_te` = (sum of target + m * prior) / (count + m) per category (m = smoothing; the target is 0/1 for a
  binary outcome, else its numeric value). Missing values are a category of their own; categories unseen in
  training (and missing when training had none) get the prior. On the training table each row is encoded out of
  fold (K seeded folds: statistics and prior from the other folds), so a row's encoding never uses its own label;
  the stored parameters are the full training statistics, for every other table.
WOE: `<col>_woe` = ln(share of non-events / share of events) in the category: positive = fewer events than
  average (lower risk), the sign convention of Profile (nodes/explore/stats.py `_woe_bins`) and optbinning. A cell
  with no events or no non-events counts 0.5 rows so its WOE stays finite. Missing values get the WOE of the missing
  group when training had missing values, else 0 (neutral); unseen categories get 0.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import FittedTransform, FittedTransformPort, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.features.transforms.common import (PREVIOUS, add_iv_figure, as_key, binary_target, chained,
                                              check_new_names, is_categorical, iv_table, not_target, pick_columns,
                                              require_apply_columns, require_kind, require_rows, woe_iv)

Method = Literal["onehot", "target", "woe"]
KINDS = {"onehot": "encode_onehot", "target": "encode_target", "woe": "encode_woe"}


class EncodeSettings(NodeSettings):
    method: Method = Field("onehot", title=N_("Method"), description=N_(
        "onehot: a 0/1 column per category; target: smoothed target mean per category (out of fold on this "
        "table); woe: weight of evidence per category against a binary target"))
    columns: list[str] = Field(default_factory=list, title=N_("Columns"),
                               description=N_("Empty: every text, categorical or boolean column except the target"))
    exclude: list[str] = Field(default_factory=list, title=N_("Leave out"),
                               description=N_("Columns not to encode when Columns is empty, e.g. identifiers"))
    target: str | None = Field(None, title=N_("Target column"),
                               description=N_("Required for target and WOE encoding"),
                               json_schema_extra={"widget": "column"})
    max_categories: int = Field(20, ge=1, le=1000, title=N_("Most categories (one-hot)"),
                                description=N_("Rarer categories share one <column>_other column"))
    drop_original: bool = Field(True, title=N_("Drop original columns"))
    smoothing: float = Field(10.0, ge=0.0, title=N_("Smoothing (target)"),
                             description=N_("m-estimate weight of the prior: larger pulls rare categories harder "
                                            "towards the overall mean"))
    folds: int = Field(5, ge=2, le=50, title=N_("Folds (target)"),
                       description=N_("Out-of-fold encoding of the training rows, so they carry no target leakage"))


# ---- shared ----------------------------------------------------------------------------------------
def _columns(table: pl.DataFrame, settings: EncodeSettings) -> list[str]:
    columns = pick_columns(table, settings.columns, tr("Columns"), default=is_categorical,
                           exclude=[*settings.exclude, settings.target or ""])
    not_target(columns, settings.target, tr("Columns"))
    return columns


def _lookup(entry: dict, values_key: str) -> pl.Expr:
    """Category -> stored number, with the documented missing and unseen values."""
    key = as_key(entry["column"])
    cats, values = entry["categories"], entry[values_key]
    known = key.replace_strict(cats, values, default=entry["unseen"], return_dtype=pl.Float64) if cats \
        else pl.lit(entry["unseen"], pl.Float64)
    return pl.when(key.is_null()).then(pl.lit(entry["missing"], pl.Float64)).otherwise(known).alias(entry["output"])


def _finish(table: pl.DataFrame, params: dict, new: list[pl.Expr], inputs: list[str]) -> pl.DataFrame:
    out = table.with_columns(new) if new else table
    return out.drop(inputs) if params.get("drop_original") else out


def _category_stats(table: pl.DataFrame, column: str, y: pl.Series | None) -> pl.DataFrame:
    """Per category (string; null = missing): count, and with a target the known-target count and sum."""
    frame = pl.DataFrame({"k": table.select(as_key(column)).to_series()})
    if y is None:
        return frame.group_by("k").agg(pl.len().alias("count")).sort("k", nulls_last=True)
    frame = frame.with_columns(y.cast(pl.Float64).alias("y"))
    return (frame.group_by("k").agg(pl.len().alias("count"), pl.col("y").count().alias("n"),
                                    pl.col("y").sum().alias("s"))
            .sort("k", nulls_last=True))


# ---- one-hot ---------------------------------------------------------------------------------------
def fit_onehot(table: pl.DataFrame, columns: list[str], max_categories: int, drop_original: bool
               ) -> tuple[FittedTransform, pl.DataFrame]:
    entries, made, rows = [], [], []
    for c in columns:
        stats = _category_stats(table, c, None).drop_nulls("k").sort(["count", "k"], descending=[True, False])
        kept = stats.head(max_categories)
        cats = kept["k"].to_list()
        names = [f"{c}_{v}" for v in cats]
        other = f"{c}_other" if stats.height > max_categories else None
        entries.append({"column": c, "categories": cats, "names": names, "other": other})
        made += names + ([other] if other else [])
        rows += [{"column": c, "category": v, "count": n, "output": name}
                 for v, n, name in zip(cats, kept["count"].to_list(), names)]
        if other:
            rows.append({"column": c, "category": tr("(other)"), "count": int(stats["count"][max_categories:].sum()),
                         "output": other})
    check_new_names(table, made, columns if drop_original else [], tr("Columns"))
    params = {"entries": entries, "drop_original": drop_original, "outputs": made}
    report = pl.DataFrame(rows, schema={"column": pl.String, "category": pl.String, "count": pl.Int64,
                                        "output": pl.String})
    return FittedTransform(kind=KINDS["onehot"], params=params, columns=tuple(columns)), report


def apply_onehot(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    entries = params.get("entries", [])
    inputs = [e["column"] for e in entries]
    require_apply_columns(table, inputs, KINDS["onehot"])
    new: list[pl.Expr] = []
    for e in entries:
        key = as_key(e["column"])
        new += [(key == v).fill_null(False).cast(pl.Int8).alias(name) for v, name in zip(e["categories"], e["names"])]
        if e["other"]:
            new.append((key.is_not_null() & ~key.is_in(e["categories"])).cast(pl.Int8).alias(e["other"]))
    return _finish(table, params, new, inputs)


# ---- target encoding -------------------------------------------------------------------------------
def _target_values(table: pl.DataFrame, target: str | None) -> pl.Series:
    """0/1 for a two-valued target, the value itself for a numeric one with more values (regression)."""
    if target and target in table.columns:
        t = table.get_column(target)
        if t.dtype.is_numeric() and t.drop_nulls().n_unique() > 2:
            return t.cast(pl.Float64).fill_nan(None)
    return binary_target(table, target, tr("Target column"))[0].cast(pl.Float64)


def _smoothed(s: pl.Expr, n: pl.Expr, prior: pl.Expr | float, m: float) -> pl.Expr:
    denominator = n + m
    return pl.when(denominator > 0).then((s + m * prior) / denominator).otherwise(prior)


def fit_target(table: pl.DataFrame, columns: list[str], target: str | None, smoothing: float,
               drop_original: bool) -> tuple[FittedTransform, pl.DataFrame, pl.Series]:
    """Full-training statistics (for other tables), the per-category table, and the target values used."""
    y = _target_values(table, target)
    prior = float(y.mean())  # type: ignore[arg-type]
    entries, rows = [], []
    for c in columns:
        stats = _category_stats(table, c, y).with_columns(
            _smoothed(pl.col("s"), pl.col("n"), prior, smoothing).alias("enc"),
            (pl.col("s") / pl.col("n")).alias("mean"))
        known = stats.drop_nulls("k")
        missing = stats.filter(pl.col("k").is_null())
        entries.append({"column": c, "output": f"{c}_te", "categories": known["k"].to_list(),
                        "values": known["enc"].to_list(),
                        "missing": float(missing["enc"][0]) if missing.height else prior, "unseen": prior})
        rows.append(stats.select(pl.lit(c).alias("column"), pl.col("k").fill_null(tr("(missing)")).alias("category"),
                                 "count", pl.col("mean").alias("target_mean"), pl.col("enc").alias("encoding")))
    made = [e["output"] for e in entries]
    check_new_names(table, made, columns if drop_original else [], tr("Columns"))
    params = {"prior": prior, "smoothing": smoothing, "entries": entries, "drop_original": drop_original,
              "outputs": made}
    report = pl.concat(rows) if rows else pl.DataFrame(schema={"column": pl.String, "category": pl.String,
                                                               "count": pl.UInt32, "target_mean": pl.Float64,
                                                               "encoding": pl.Float64})
    return FittedTransform(kind=KINDS["target"], params=params, columns=tuple(columns)), report, y


def apply_target(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    entries = params.get("entries", [])
    inputs = [e["column"] for e in entries]
    require_apply_columns(table, inputs, KINDS["target"])
    return _finish(table, params, [_lookup(e, "values") for e in entries], inputs)


def fold_ids(y: pl.Series, folds: int, seed: int) -> np.ndarray:
    """A seeded K-fold id per row with a known target (scikit-learn KFold, shuffled); -1 where it is unknown."""
    from sklearn.model_selection import KFold

    known = np.flatnonzero(y.is_not_null().to_numpy())
    if len(known) < folds:
        raise NodeInputError(tr("Folds (target): {k} folds need at least {k} rows with a known target; the table has "
                                "{n}", k=folds, n=len(known)))
    ids = np.full(len(y), -1, dtype=np.int32)
    for f, (_, part) in enumerate(KFold(n_splits=folds, shuffle=True, random_state=seed).split(known)):
        ids[known[part]] = f
    return ids


def out_of_fold(table: pl.DataFrame, step: FittedTransform, y: pl.Series, folds: int, seed: int) -> pl.DataFrame:
    """Encode the training rows each from the other folds' statistics (and the other folds' prior), so no row's
    encoding depends on its own label. Rows with an unknown target use the full-training encoding."""
    params = step.params
    m = float(params["smoothing"])
    fold = pl.Series("fold", fold_ids(y, folds, seed))
    base = pl.DataFrame([fold, y.alias("y")])
    per_fold = base.filter(pl.col("fold") >= 0).group_by("fold").agg(pl.len().alias("fn"), pl.col("y").sum().alias("fs"))
    total_n, total_s = float(y.count()), float(y.sum())
    per_fold = per_fold.with_columns(((total_s - pl.col("fs")) / (total_n - pl.col("fn"))).alias("prior"))
    full = apply_target({**params, "drop_original": False}, table)
    new: list[pl.Series] = []
    for e in params["entries"]:
        rows = base.with_columns(table.select(as_key(e["column"]).alias("k")).to_series())
        known = rows.filter(pl.col("fold") >= 0)
        cell = known.group_by(["k", "fold"]).agg(pl.len().alias("cn"), pl.col("y").sum().alias("cs"))
        cat = known.group_by("k").agg(pl.len().alias("tn"), pl.col("y").sum().alias("ts"))
        joined = (rows.join(cell, on=["k", "fold"], how="left", nulls_equal=True, maintain_order="left")
                  .join(cat, on="k", how="left", nulls_equal=True, maintain_order="left")
                  .join(per_fold.select("fold", "prior"), on="fold", how="left", maintain_order="left"))
        enc = joined.select(pl.when(pl.col("fold") < 0).then(full.get_column(e["output"]))
                            .otherwise(_smoothed(pl.col("ts") - pl.col("cs"), pl.col("tn") - pl.col("cn"),
                                                 pl.col("prior"), m))
                            .alias(e["output"])).to_series()
        new.append(enc)
    return _finish(table, params, list(new), [e["column"] for e in params["entries"]])


# ---- WOE -------------------------------------------------------------------------------------------
def fit_woe(table: pl.DataFrame, columns: list[str], target: str | None, drop_original: bool
            ) -> tuple[FittedTransform, pl.DataFrame, pl.DataFrame]:
    """The step, the per-category table (column, category, count, events, event_rate, woe, iv) and IV per
    column. Rows with an unknown target are left out of the counts."""
    y, event = binary_target(table, target, tr("Target column"))
    total_e = float(y.sum())
    total_ne = float(y.count()) - total_e
    entries, rows, ivs = [], [], {}
    for c in columns:
        stats = _category_stats(table, c, y).filter(pl.col("n") > 0)
        events = stats["s"].to_numpy()
        nonevents = stats["n"].to_numpy() - events
        woe, iv = woe_iv(nonevents, events, total_ne, total_e)
        stats = stats.with_columns(pl.Series("woe", woe), pl.Series("iv", iv))
        known = stats.drop_nulls("k")
        missing = stats.filter(pl.col("k").is_null())
        entries.append({"column": c, "output": f"{c}_woe", "categories": known["k"].to_list(),
                        "woe": known["woe"].to_list(),
                        "missing": float(missing["woe"][0]) if missing.height else 0.0, "unseen": 0.0})
        ivs[c] = float(iv.sum())
        rows.append(stats.select(pl.lit(c).alias("column"), pl.col("k").fill_null(tr("(missing)")).alias("category"),
                                 pl.col("n").cast(pl.Int64).alias("count"), pl.col("s").cast(pl.Int64).alias("events"),
                                 (pl.col("s") / pl.col("n")).alias("event_rate"), "woe", "iv"))
    made = [e["output"] for e in entries]
    check_new_names(table, made, columns if drop_original else [], tr("Columns"))
    params = {"event": event, "entries": entries, "drop_original": drop_original, "outputs": made}
    schema = {"column": pl.String, "category": pl.String, "count": pl.Int64, "events": pl.Int64,
              "event_rate": pl.Float64, "woe": pl.Float64, "iv": pl.Float64}
    table_out = pl.concat(rows) if rows else pl.DataFrame(schema=schema)
    return FittedTransform(kind=KINDS["woe"], params=params, columns=tuple(columns)), table_out, iv_table(ivs)


def apply_woe(params: dict, table: pl.DataFrame) -> pl.DataFrame:
    entries = params.get("entries", [])
    inputs = [e["column"] for e in entries]
    require_apply_columns(table, inputs, KINDS["woe"])
    return _finish(table, params, [_lookup(e, "woe") for e in entries], inputs)


def _warn_identifiers(table: pl.DataFrame, columns: list[str], ctx: Context) -> None:
    """Mostly-distinct columns (customer ids) encode to noise; say so, since an empty Columns setting picks them."""
    if not columns or table.height < 20:
        return
    distinct = table.select(pl.col(columns).n_unique()).row(0)
    for c, n in zip(columns, distinct):
        if n > table.height / 2:
            ctx.log.warning(tr("{col} has {n} distinct values in {rows} rows: it looks like an identifier; leave it "
                               "out of the encoding", col=c, n=n, rows=table.height))


# ---- the node --------------------------------------------------------------------------------------
@node("features.encode", version=1, title=N_("Encode categories"), category=N_("Features"), icon="encode")
class Encode(Node):
    """Turn categorical columns into numbers (one-hot, target or WOE encoding) fitted on the training table."""

    inputs = {"table": Table, "previous": PREVIOUS}
    outputs = {"table": Table, "transform": FittedTransformPort, "report": ReportPort}
    Settings = EncodeSettings

    def compute(self, inputs: dict, settings: EncodeSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["table"]
        require_rows(table)
        if settings.method in ("target", "woe") and not settings.target:
            raise NodeInputError(tr("Target column: {method} encoding needs a target column",
                                    method=settings.method))
        columns = _columns(table, settings)
        require_kind(table, columns, lambda d: is_categorical(d) or d.is_integer(), tr("Columns"),
                     tr("text, categorical, boolean or integer"))
        _warn_identifiers(table, columns, ctx)
        report = Report(title=tr("Encode categories"), kind="encode")
        if settings.method == "onehot":
            step, cats = fit_onehot(table, columns, settings.max_categories, settings.drop_original)
            out = apply_onehot(step.params, table)
            report.tables[tr("Categories")] = cats
        elif settings.method == "target":
            step, cats, y = fit_target(table, columns, settings.target, settings.smoothing, settings.drop_original)
            out = out_of_fold(table, step, y, settings.folds, ctx.seed)
            report.metrics[tr("prior")] = step.params["prior"]
            report.tables[tr("Categories")] = cats
            report.notes.append(tr("The training rows are encoded out of fold ({k} folds); other tables get the "
                                   "full-training encoding.", k=settings.folds))
        else:
            step, cats, ivs = fit_woe(table, columns, settings.target, settings.drop_original)
            out = apply_woe(step.params, table)
            report.tables[tr("Weight of evidence")] = cats
            report.tables[tr("Information value")] = ivs
            add_iv_figure(report, ivs, settings.target)
        ctx.log.info("%s encoding of %d column(s): %s", settings.method, len(columns), ", ".join(columns))
        return {"table": out, "transform": chained(inputs.get("previous"), step), "report": report}
