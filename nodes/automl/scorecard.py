"""Scorecard: the points scorecard credit regulators know, a logistic regression on WOE-binned features.

1. Each candidate feature is binned by optbinning's OptimalBinning with the settings the Binning node's optimal
   method uses (cp solver, most bins, smallest bin share, a monotonic event-rate trend); categories are grouped.
2. Features whose information value (IV) is below the minimum are dropped.
3. sklearn's LogisticRegression (L2 penalty, C) is fitted on the kept features' WOE. WOE = ln(non-event share /
   event share), so a positive WOE means lower risk and every coefficient should be negative; a feature whose
   coefficient is not (usually collinearity) is dropped, the largest first, and the regression refitted.
4. Points (higher = safer): factor = PDO / ln 2, offset = base score - factor * ln(base odds), so the score is
   offset - factor * log-odds(event) and a bin's points are -factor * (beta_j * WOE_ij + beta_0 / n) + offset / n
   (n = features kept): a row's points add up to its score before rounding. This is optbinning's Scorecard with
   scaling_method="pdo_odds" (tests compare the two); that class is not used to fit because the node must say why
   each feature was dropped and store plain JSON.

WOE and IV are optbinning's (its transform with metric_missing="empirical"): a bin without events or without
non-events has WOE 0, and the Missing bin's WOE is fitted on the training rows with a missing value (0 when there
were none). The Binning node instead counts 0.5 rows in an empty cell; bins of at least 5 % rarely are empty.
Scoring rules (bins closed on the left, unseen categories scored as Missing) are in scorecard_flavor.py.
"""
from __future__ import annotations

import json
import math
import warnings
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.fileio import atomic_write_text
from engine.i18n import N_, tr
from engine.ports import FittedTransformPort, Model, ModelRef, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, PortSpec, node
from nodes.automl import scorecard_flavor as flavor
from nodes.automl.flavors import feature_kinds
from nodes.automl.training import provenance
from nodes.columns import identifier_like, require_columns
from nodes.evaluate.metrics import binary_metrics
from nodes.explore.stats import event_value
from nodes.features.transforms.binning import numeric_labels
from nodes.features.transforms.common import (add_iv_figure, as_key, float_values, is_categorical, is_numeric,
                                              iv_table)

# optbinning's names for the event-rate trend; "none" lifts the constraint
TRENDS = {"auto_asc_desc": "auto_asc_desc", "ascending": "ascending", "descending": "descending", "auto": "auto",
          "none": None}
Dropped = tuple[str, float | None, str]  # a feature left out: name, IV (None when never binned), reason
TABLE_SCHEMA = {"feature": pl.String, "bin": pl.String, "count": pl.Int64, "event_rate": pl.Float64,
                "woe": pl.Float64, "iv": pl.Float64, "coefficient": pl.Float64}


class ScorecardSettings(NodeSettings):
    label: str = Field(min_length=1, title=N_("Label column"), json_schema_extra={"widget": "column"},
                       description=N_("A binary outcome. The event (bad) is the value that reads as 1, true or yes, "
                                      "else the rarer one"))
    features: list[str] = Field(default_factory=list, title=N_("Features"), description=N_(
        "Empty: every column except the label (identifiers, dates and empty columns are left out)"))
    max_bins: int = Field(6, ge=2, le=20, title=N_("Most bins per feature"))
    monotonic_trend: Literal["auto_asc_desc", "ascending", "descending", "auto", "none"] = Field(
        "auto_asc_desc", title=N_("Event rate trend"), description=N_(
            "auto_asc_desc: ascending or descending, whichever fits better; auto: may also peak or dip once; "
            "none: no constraint"))
    min_bin_share: float = Field(0.05, ge=0.0, le=0.5, title=N_("Smallest bin share"),
                                 description=N_("Each bin holds at least this share of the rows (0: no minimum)"))
    min_iv: float = Field(0.02, ge=0.0, title=N_("Minimum IV"),
                          description=N_("Features with a lower information value are left out"))
    regularisation_c: float = Field(1.0, gt=0.0, title=N_("Regularisation C"), description=N_(
        "Inverse strength of the logistic regression's L2 penalty: smaller means stronger"))
    base_score: float = Field(600.0, title=N_("Base score"), description=N_("The score at the base odds"))
    base_odds: float = Field(50.0, gt=0.0, title=N_("Base odds"),
                             description=N_("Good:bad odds at the base score"))
    pdo: float = Field(20.0, gt=0.0, title=N_("Points to double the odds"))
    round_points: bool = Field(True, title=N_("Round points"), description=N_("Whole points per bin"))
    seed: int | None = Field(None, title=N_("Seed"), description=N_("Empty uses the project seed"))


# ---- label and candidate features ------------------------------------------------------------------------------
def check_label(table: pl.DataFrame, label: str) -> tuple[pl.DataFrame, np.ndarray, Any, Any]:
    """Rows with a label, the 0/1 event, and the non-event and event values; a scorecard needs exactly two classes."""
    require_columns(table, [label], tr("Label column"))
    if table.height == 0:
        raise NodeInputError(tr("The training table has no rows"))
    dtype = table.schema[label]
    values = pl.col(label).fill_nan(None) if dtype.is_float() else pl.col(label)
    frame = table.with_columns(values).filter(pl.col(label).is_not_null())
    if frame.height == 0:
        raise NodeInputError(tr("Label column {col!r} is empty", col=label))
    if not (is_numeric(dtype) or dtype in (pl.String, pl.Boolean, pl.Categorical) or isinstance(dtype, pl.Enum)):
        raise NodeInputError(tr("Label column {col!r} is {dtype}; a scorecard's label holds two classes as numbers, "
                                "text or true/false", col=label, dtype=str(dtype)))
    known = frame[label]
    distinct = known.unique().sort().to_list()
    if len(distinct) == 1:
        raise NodeInputError(tr("Label column {col!r} has a single class ({value!r}) in the training data; a "
                                "scorecard needs at least one good and one bad outcome. Check the label column and the split.",
                                col=label, value=distinct[0]))
    if len(distinct) > 2:
        shown = ", ".join(repr(v) for v in distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        raise NodeInputError(tr("Label column {col!r} has {n} classes ({values}); a scorecard predicts a binary "
                                "outcome (good or bad). Recode the label into two classes, or use AutoML.",
                                col=label, n=len(distinct), values=shown))
    event = event_value(known)
    non_event = next(v for v in distinct if v != event)
    y = (known == event).to_numpy().astype(np.int64)
    return frame, y, non_event, event


def unusable(series: pl.Series) -> str | None:
    """Why a column cannot be a scorecard feature, or None when it can."""
    dtype = series.dtype
    if not (is_numeric(dtype) or is_categorical(dtype)):
        return tr("type {dtype} cannot be binned (numbers and categories only)", dtype=str(dtype))
    values = series.fill_nan(None) if dtype.is_float() else series
    present = values.len() - values.null_count()
    if present == 0:
        return tr("no values: every row is missing")
    return identifier_like(values)  # binned, each value would get its own event rate and a spurious IV


def candidates(frame: pl.DataFrame, settings: ScorecardSettings) -> tuple[list[str], list[tuple[str, str]]]:
    """The features to bin, and the columns left out with the reason. A column named in the settings that cannot
    be used is an error (the user asked for it); with no features set, such columns are left out and reported."""
    chosen = list(dict.fromkeys(settings.features))
    if chosen:
        require_columns(frame, chosen, tr("Features"))
        if settings.label in chosen:
            raise NodeInputError(tr("Features: the label column {col!r} cannot also be a feature",
                                    col=settings.label))
        for name in chosen:
            reason = unusable(frame[name])
            if reason:
                raise NodeInputError(tr("Features: column {col!r} cannot be used: {reason}", col=name,
                                        reason=reason))
        return chosen, []
    names, skipped = [], []
    for name in frame.columns:
        if name == settings.label:
            continue
        reason = unusable(frame[name])
        if reason:
            skipped.append((name, reason))
        else:
            names.append(name)
    if not names:
        raise NodeInputError(tr("The table has no column usable as a feature besides the label {col!r}",
                                col=settings.label))
    return names, skipped


# ---- binning ---------------------------------------------------------------------------------------------------
def fit_feature(name: str, frame: pl.DataFrame, y: np.ndarray, settings: ScorecardSettings, seed: int) -> dict:
    """Optimal bins of one feature with optbinning's counts, WOE and IV, as a JSON-ready dict (Missing bin last)."""
    from optbinning import OptimalBinning
    from optbinning.binning.transformations import transform_event_rate_to_woe

    dtype = frame.schema[name]
    numeric = is_numeric(dtype)
    expr = float_values(name, dtype) if numeric else as_key(name)
    x = frame.select(expr).to_series().to_numpy()
    share = min(0.5, max(settings.min_bin_share, 0.01))
    optb = OptimalBinning(name=name, dtype="numerical" if numeric else "categorical", solver="cp",
                          max_n_bins=settings.max_bins, min_bin_size=settings.min_bin_share or None,
                          min_prebin_size=share, monotonic_trend=TRENDS[settings.monotonic_trend],
                          random_state=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optb.fit(x if numeric else x.astype(object), y)
    except (ValueError, TypeError) as exc:
        raise NodeInputError(tr("Scorecard: optimal binning of feature {col!r} failed: {error}", col=name,
                                error=str(exc).splitlines()[0])) from None
    table = optb.binning_table.build(add_totals=False)  # the bins, then Special (empty here), then Missing
    events = table["Event"].to_numpy(np.float64)
    nonevents = table["Non-event"].to_numpy(np.float64)
    counts = events + nonevents
    # WOE exactly as optbinning's transform computes it, so the regression sees the same numbers
    fitted = (events > 0) & (nonevents > 0)
    woe = np.zeros(len(counts))
    woe[fitted] = transform_event_rate_to_woe(events[fitted] / counts[fitted], nonevents.sum(), events.sum())
    iv = table["IV"].to_numpy(np.float64)
    if numeric:
        splits = [float(s) for s in optb.splits]
        entry: dict[str, Any] = {"name": name, "type": "numeric", "splits": splits}
        labels = numeric_labels(splits)
    else:
        groups = [[str(c) for c in group] for group in optb.splits]
        entry = {"name": name, "type": "categorical", "groups": groups, "boolean": dtype == pl.Boolean}
        labels = ["[" + ", ".join(group) + "]" for group in groups]
    rows = [*range(len(labels)), len(counts) - 1]  # skip the Special row: no special codes are configured
    entry["bins"] = [{"label": lab, "count": int(counts[i]), "events": int(events[i]),
                      "event_rate": float(events[i] / counts[i]) if counts[i] else None,
                      "woe": float(woe[i]), "iv": float(iv[i])}
                     for lab, i in zip([*labels, flavor.MISSING], rows)]
    entry["iv"] = float(iv.sum())
    return entry


# ---- feature screening and regression --------------------------------------------------------------------------
def screen(entries: list[dict], min_iv: float) -> tuple[list[dict], list[Dropped]]:
    """The binned features fit for the regression: two or more distinct WOE values and at least the minimum IV."""
    kept, dropped = [], []
    for e in entries:
        if len({b["woe"] for b in e["bins"] if b["count"]}) < 2:  # a constant WOE cannot rank anyone
            dropped.append((e["name"], e["iv"], tr("a single bin: no split meets the event rate trend and the "
                                                   "smallest bin share")))
        elif e["iv"] < min_iv:
            dropped.append((e["name"], e["iv"], tr("IV {iv:.4f} is below the minimum {min:g}", iv=e["iv"],
                                                   min=min_iv)))
        else:
            kept.append(e)
    if not kept:
        best = sorted(entries, key=lambda e: -e["iv"])[:5]
        raise NodeInputError(tr("No feature reaches the minimum IV of {min:g} with at least two bins; the strongest "
                                "are {best}. Lower the minimum IV or check the label.", min=min_iv,
                                best=", ".join(f"{e['name']} ({e['iv']:.4f})" for e in best)))
    return kept, dropped


def fit_regression(x: np.ndarray, y: np.ndarray, c: float, seed: int, ctx: Context) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        lr.fit(x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        ctx.log.warning(tr("the logistic regression did not fully converge; consider a smaller C"))
    return lr


def fit_signed_regression(kept: list[dict], frame: pl.DataFrame, y: np.ndarray, c: float, seed: int,
                          ctx: Context) -> tuple[Any, list[dict], list[Dropped]]:
    """The regression on the features' WOE, refitted without the feature of the largest coefficient until every
    coefficient is negative (positive WOE = lower risk, so a positive coefficient would turn the bins' order)."""
    kept, dropped = list(kept), []
    woe = flavor.woe_matrix(kept, frame)
    while True:
        lr = fit_regression(woe, y, c, seed, ctx)
        beta = lr.coef_[0]
        if (beta < 0).all():
            return lr, kept, dropped
        j = int(np.argmax(beta))
        dropped.append((kept[j]["name"], kept[j]["iv"], tr(
            "coefficient {beta:+.4g} is not negative alongside the other features (often collinearity): its points "
            "would run against its bins", beta=float(beta[j]))))
        del kept[j]
        woe = np.delete(woe, j, axis=1)
        if not kept:
            raise NodeInputError(tr("No feature keeps a negative coefficient in the logistic regression, so no "
                                    "scorecard can be built; check the label and the features"))


# ---- points ----------------------------------------------------------------------------------------------------
def scaling(settings: ScorecardSettings) -> dict:
    factor = settings.pdo / math.log(2.0)
    return {"base_score": settings.base_score, "base_odds": settings.base_odds, "pdo": settings.pdo,
            "factor": factor, "offset": settings.base_score - factor * math.log(settings.base_odds),
            "rounded": settings.round_points}


def add_points(features: list[dict], intercept: float, scale: dict) -> None:
    """Each bin's points: -factor * (beta_j * WOE + beta_0 / n) + offset / n, rounded to whole points if asked."""
    n = len(features)
    for f in features:
        for b in f["bins"]:
            p = -(f["coefficient"] * b["woe"] + intercept / n) * scale["factor"] + scale["offset"] / n
            b["points"] = int(np.rint(p)) if scale["rounded"] else float(p)


def scorecard_doc(kept: list[dict], intercept: float, beta: np.ndarray, scale: dict, label: str, non_event: Any,
                  event: Any) -> dict:
    """The stored model: the kept features' bins with their coefficient and points, the intercept and scaling."""
    for f, b in zip(kept, beta):
        f["coefficient"] = float(b)
    add_points(kept, intercept, scale)
    return {"format": flavor.FORMAT, "version": 1, "label": label, "event": event, "non_event": non_event,
            "intercept": intercept, "scaling": scale, "features": kept}


def scorecard_table(features: list[dict], rounded: bool) -> pl.DataFrame:
    rows = [(f["name"], b["label"], b["count"], b["event_rate"], b["woe"], b["iv"], f["coefficient"], b["points"])
            for f in features for b in f["bins"]]
    schema = {**TABLE_SCHEMA, "points": pl.Int64 if rounded else pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


# ---- report ----------------------------------------------------------------------------------------------------
def _points_figure(report: Report, total: np.ndarray, y: np.ndarray, names: tuple[str, str]) -> None:
    from nodes.plotting import figure

    fig = figure(6, 3.6)
    ax = fig.subplots()
    edges = np.histogram_bin_edges(total, bins=30)
    ax.hist(total[y == 0], bins=edges, alpha=0.6, label=names[0], color="#1e88e5")
    ax.hist(total[y == 1], bins=edges, alpha=0.6, label=names[1], color="#e53935")
    ax.set_xlabel(tr("Points"))
    ax.set_ylabel(tr("Rows"))
    ax.set_title(tr("Training points by outcome"))
    ax.legend()
    report.add_figure(tr("Points distribution"), fig)


def build_report(features: list[dict], dropped: list[Dropped], all_ivs: dict[str, float],
                 metrics: dict, doc: dict, table: pl.DataFrame, total: np.ndarray, y: np.ndarray,
                 label: str) -> Report:
    report = Report(title=tr("Scorecard"), kind="scorecard")
    report.metrics = metrics
    report.tables[tr("Scorecard")] = table
    report.tables[tr("Features in the model")] = pl.DataFrame(
        {"feature": [tr("(intercept)")] + [f["name"] for f in features],
         "iv": [None] + [f["iv"] for f in features],
         "coefficient": [doc["intercept"]] + [f["coefficient"] for f in features]},
        schema={"feature": pl.String, "iv": pl.Float64, "coefficient": pl.Float64})
    report.tables[tr("Dropped features")] = pl.DataFrame(
        {"feature": [d[0] for d in dropped], "iv": [d[1] for d in dropped], "reason": [d[2] for d in dropped]},
        schema={"feature": pl.String, "iv": pl.Float64, "reason": pl.String})
    ivs = iv_table(all_ivs)
    report.tables[tr("Information value")] = ivs
    add_iv_figure(report, ivs, label)
    _points_figure(report, total, y, (str(doc["non_event"]), str(doc["event"])))
    s = doc["scaling"]
    report.notes.append(tr("Event (bad): {label} = {event!r}. Points = offset - factor * log-odds(bad), factor = "
                           "PDO / ln 2 = {factor:.4f}, offset = base score - factor * ln(base odds) = {offset:.4f}; "
                           "{score:g} points at good:bad odds {odds:g}, {pdo:g} more points double the odds.",
                           label=label, event=doc["event"], factor=s["factor"], offset=s["offset"],
                           score=s["base_score"], odds=s["base_odds"], pdo=s["pdo"]))
    report.notes.append(tr("Missing values and categories not seen in training score the Missing bin's points."))
    return report


# ---- the node --------------------------------------------------------------------------------------------------
@node("automl.scorecard", version=1, title=N_("Scorecard"), category=N_("Modeling"), icon="binning", heavy=True)
class Scorecard(Node):
    """Fit a points scorecard: optimal WOE bins, logistic regression, PDO/odds scaling, stored as JSON."""

    inputs = {"train": Table,
              "transform": PortSpec("transform", FittedTransformPort, required=False, description=N_(
                  "Preprocessing fitted on the training data; kept inside the model so Evaluate, Predict and "
                  "Export prepare new data exactly the same way"))}
    outputs = {"model": Model, "scorecard": Table, "report": ReportPort}
    Settings = ScorecardSettings

    def compute(self, inputs: dict, settings: ScorecardSettings, ctx: Context) -> dict:
        table: pl.DataFrame = inputs["train"]
        seed = ctx.seed if settings.seed is None else settings.seed
        frame, y, non_event, event = check_label(table, settings.label)
        if frame.height < table.height:
            ctx.log.warning(tr("dropped {n} rows with a missing label", n=table.height - frame.height))
        names, skipped = candidates(frame, settings)
        dropped: list[Dropped] = [(name, None, reason) for name, reason in skipped]

        entries = []
        for i, name in enumerate(names):
            ctx.check_cancelled()
            ctx.progress(0.8 * i / len(names), tr("binning {col}", col=name))
            entries.append(fit_feature(name, frame, y, settings, seed))
        all_ivs = {e["name"]: e["iv"] for e in entries}
        kept, weak = screen(entries, settings.min_iv)
        ctx.progress(0.85, tr("fitting the logistic regression"))
        lr, kept, opposed = fit_signed_regression(kept, frame, y, settings.regularisation_c, seed, ctx)
        dropped += weak + opposed
        scale = scaling(settings)
        doc = scorecard_doc(kept, float(lr.intercept_[0]), lr.coef_[0], scale, settings.label, non_event, event)
        folder = ctx.workdir / "scorecard"
        atomic_write_text(folder / flavor.FILE, json_text(doc))

        m = binary_metrics(y, lr.predict_proba(flavor.woe_matrix(kept, frame))[:, 1], 0.5)
        features = [f["name"] for f in kept]
        info: dict[str, Any] = {
            "label": settings.label, "problem_type": "binary", "features": features,
            "feature_kinds": feature_kinds(frame.select(features)),
            "classes": [str(non_event), str(event)], "class_values": [non_event, event],
            "positive_class": str(event), "train_rows": frame.height, "best_model": "Scorecard",
            "train_metrics": {k: m[k] for k in ("auc", "ks", "gini")},
        }
        info.update(provenance(inputs.get("transform"), ctx))
        model = ModelRef("scorecard", folder, info)

        metrics = {"auc": m["auc"], "ks": m["ks"], "gini": m["gini"], "rows": frame.height, "events": int(y.sum()),
                   "features": len(kept), "intercept": doc["intercept"], "factor": scale["factor"],
                   "offset": scale["offset"]}
        table_out = scorecard_table(kept, settings.round_points)
        total = flavor.points(model, frame.select(features)).to_numpy().astype(np.float64)
        report = build_report(kept, dropped, all_ivs, metrics, doc, table_out, total, y, settings.label)
        ctx.log.info(tr("scorecard: {kept} of {n} features kept, training AUC {auc:.4f}, KS {ks:.4f}",
                        kept=len(kept), n=len(names), auc=m["auc"], ks=m["ks"]))
        ctx.progress(1.0)
        return {"model": model, "scorecard": table_out, "report": report}


def json_text(doc: dict) -> str:
    """Readable, exact JSON: floats written with repr precision, so the stored model scores like the fitted one."""
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
