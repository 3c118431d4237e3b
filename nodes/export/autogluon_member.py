"""The best exportable member of an AutoGluon predictor, as a `lightgbm`-flavor model that scores like AutoGluon.

Why a member and not the ensemble: AutoGluon's best model is usually a weighted ensemble of different families
(k-nearest neighbours, random forests, neural networks...), and most of them have no faithful ONNX form. Its
LightGBM members do: each holds a plain `lgb.Booster`. What stands between the raw table and that booster is
AutoGluon's feature generator, and a member is exported only when every feature its booster reads is one of the
three things we can reproduce from a raw column, exactly:

* a number passed through (AutoGluon's IdentityFeatureGenerator). An integer column had no missing values in
  training, and AutoGluon fills any it meets later with 0: the adapter adds that fill (an `impute` step).
* a category (CategoryFeatureGenerator): AutoGluon keeps the training labels seen at least twice, renumbers them
  (CategoryMemoryMinimizeFeatureGenerator) and LightGBM codes them by its own list (`booster.pandas_categorical`);
  composed, that is one list of labels per column, which is exactly `info["categories"]` (unseen, rare and missing
  labels are missing). Missing text is the empty string to AutoGluon; when that was a category of its own in
  training, the adapter fills missing text with "" first.
* a two-valued column made 0/1 (AsTypeFeatureGenerator): 1 where the value equals AutoGluon's "true" value, else 0,
  missing and unseen values included. That is a one-category one-hot encoding (an `encode_onehot` step named
  `<column>=<value>`).

Anything else (datetime parts, text n-grams, other models' predictions in a stack, a bag of several fold models,
whose probabilities are averaged and which one booster cannot hold) makes the member not exportable, with the
reason. Whatever the analysis says, the result is then checked: the new model's scores must equal AutoGluon's own
`predict_proba(..., model=member)` on the holdout rows, and on probe rows with every input missing or unseen,
to within EXACT_TOLERANCE; otherwise the member is skipped too.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.errors import NodeInputError
from engine.fileio import atomic_write_text
from engine.i18n import tr
from engine.ports import FittedTransform, ModelRef

EXACT_TOLERANCE = 1e-6
MEMBER_FOLDER = "autogluon_member"  # under the caller's workdir; never built from a member's name
MODEL_FILE = "model.txt"
PROBE_ROWS = 5
UNSEEN_TEXT = "\u0000ledgerflow-unseen"
# generators that keep a feature's name and value (type changes and the fills are modelled separately)
_PASS_THROUGH = {"AsTypeFeatureGenerator", "FillNaFeatureGenerator", "DropUniqueFeatureGenerator",
                 "DropDuplicatesFeatureGenerator", "IdentityFeatureGenerator", "CategoryFeatureGenerator",
                 "CategoryMemoryMinimizeFeatureGenerator"}
log = logging.getLogger("ledgerflow.export")


@dataclass(frozen=True)
class Skipped:
    member: str
    reason: str


@dataclass
class MemberExport:
    """The exported member and how it compares with the ensemble AutoGluon would have used."""

    model: ModelRef  # lightgbm flavor
    member: str
    ensemble_best: str
    eval_metric: str
    score_val_exported: float | None
    score_val_best: float | None
    holdout_metric: str  # "auc" | "accuracy" | "r2"
    holdout_exported: float | None
    holdout_best: float | None
    difference: float | None  # holdout_exported - holdout_best
    skipped: list[Skipped] = field(default_factory=list)
    adapter_max_diff: float = 0.0  # ours vs AutoGluon's member on the rows checked (see _check_exact)
    adapter_rows: int = 0

    def manifest_section(self) -> dict[str, Any]:
        return {"exported": self.member, "ensemble_best": self.ensemble_best, "eval_metric": self.eval_metric,
                "score_val_exported": self.score_val_exported, "score_val_best": self.score_val_best,
                "holdout_metric": self.holdout_metric, "holdout_exported": self.holdout_exported,
                "holdout_best": self.holdout_best, "difference": self.difference,
                "skipped": [asdict(s) for s in self.skipped],
                "adapter_check": {"max_diff": self.adapter_max_diff, "rows": self.adapter_rows,
                                  "tolerance": EXACT_TOLERANCE,
                                  "measure": "|ours - AutoGluon's| / max(1, |AutoGluon's|)"}}


class _NotExportable(Exception):
    """One member's reason, collected into the skipped list (never shown as an error on its own)."""


# ---- the predictor ----------------------------------------------------------------------------------------
def _ranked(predictor: Any) -> list[tuple[str, float | None]]:
    """Members best-first by validation score (AutoGluon's score_val, higher is better). A model refit on all rows
    (`..._FULL`, from the good and high quality presets) has no validation rows of its own: it carries the score
    of the model it was refit from, and comes just before it, since it is what those presets predict with."""
    board = predictor.leaderboard(silent=True)
    scores = board["score_val"].tolist() if "score_val" in board.columns else [None] * len(board)
    own = {str(m): None if s is None or math.isnan(s) else float(s) for m, s in zip(board["model"], scores)}
    try:
        refit_of = {str(full): str(orig) for orig, full in predictor.model_refit_map().items()}
    except Exception:  # noqa: BLE001 - no refit models (or an AutoGluon without the map): nothing to inherit
        refit_of = {}
    score = {m: own[m] if own[m] is not None else own.get(refit_of.get(m, ""), None) for m in own}
    order = sorted(own, key=lambda m: (score[m] is None, -(score[m] or 0.0), m not in refit_of))
    return [(m, score[m]) for m in order]


def _generators(root: Any) -> list[Any]:
    """Every feature generator inside AutoGluon's pipeline, nested ones included."""
    out: list[Any] = []

    def walk(g: Any) -> None:
        out.append(g)
        for attr in ("_pre_generators", "generators", "_post_generators"):
            for stage in getattr(g, attr, None) or []:
                for child in stage if isinstance(stage, list) else [stage]:
                    walk(child)

    walk(root)
    return out[1:]


def _sources(root: Any) -> dict[str, list[str]]:
    """Feature -> the raw columns AutoGluon makes it from."""
    out: dict[str, list[str]] = {}
    try:
        links = root.get_feature_links()
    except Exception:  # noqa: BLE001 - a custom generator without links: every feature is then unexplained
        return out
    for raw, made in links.items():
        for f in made:
            out.setdefault(f, []).append(raw)
    return out


def _booster_member(predictor: Any, name: str) -> tuple[Any, Any]:
    """The member's LightGBM model object and its booster, or _NotExportable with why not."""
    import lightgbm as lgb
    from autogluon.core.models import BaggedEnsembleModel
    from autogluon.tabular.models import LGBModel

    member = predictor._trainer.load_model(name)
    if isinstance(member, BaggedEnsembleModel):
        children = list(member.models)
        if getattr(member, "_child_type", None) is not LGBModel:
            raise _NotExportable(tr("not a LightGBM model ({kind})", kind=_family(member)))
        if len(children) != 1:
            raise _NotExportable(tr("a bag of {n} LightGBM fold models whose probabilities AutoGluon averages; one "
                                    "LightGBM model cannot hold that average (refit the bag on all rows, "
                                    "refit_full, to get a single model)", n=len(children)))
        member = member.load_child(children[0])
    if type(member) is not LGBModel:
        raise _NotExportable(tr("not a LightGBM model ({kind})", kind=_family(member)))
    if not isinstance(getattr(member, "model", None), lgb.Booster):
        raise _NotExportable(tr("its LightGBM model is not a plain booster"))
    return member, member.model


def _family(model: Any) -> str:
    child = getattr(model, "_child_type", None)
    return getattr(child, "__name__", None) or type(model).__name__


def _key(value: Any) -> str:
    """A category or 'true' value as the text our encoders compare with (polars' cast to String)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


@dataclass
class _Recipe:
    features: list[str] = field(default_factory=list)  # booster order
    categories: dict[str, list[str]] = field(default_factory=dict)
    fill_numeric: dict[str, float] = field(default_factory=dict)
    fill_text: dict[str, str] = field(default_factory=dict)
    onehot: list[dict[str, Any]] = field(default_factory=list)


def _recipe(predictor: Any, member: Any, booster: Any, kinds: dict[str, str], taken: set[str]) -> _Recipe:
    """How to make each booster input from the raw (prepared) columns; _NotExportable naming the first that
    cannot be made exactly."""
    root = predictor._learner.feature_generator
    features = list(member.features)
    if len(features) != booster.num_feature():
        raise _NotExportable(tr("its booster reads {n} features but the member lists {m}", n=booster.num_feature(),
                                m=len(features)))
    sources = _sources(root)
    touching: dict[str, list[Any]] = {}
    for g in _generators(root):
        for f in getattr(g, "features_out", None) or []:
            touching.setdefault(f, []).append(g)
    astype = next((g for g in _generators(root) if type(g).__name__ == "AsTypeFeatureGenerator"), None)
    bools: dict[str, Any] = dict(getattr(astype, "_bool_features", None) or {})
    ints = {str(c) for c in getattr(astype, "_int_features", [])} if astype is not None else set()
    cat_lists = iter(booster.pandas_categorical or [])
    recipe = _Recipe()
    for f in features:
        made_by = [type(g).__name__ for g in touching.get(f, [])]
        raw = sources.get(f, [])
        if not made_by or raw != [f]:
            shown = ", ".join(repr(c) for c in raw) or tr("no raw column (other models' predictions, when stacked)")
            raise _NotExportable(tr("feature {f!r} is derived by AutoGluon from {cols}", f=f, cols=shown))
        odd = sorted(set(made_by) - _PASS_THROUGH)
        if odd:
            raise _NotExportable(tr("feature {f!r} is made by AutoGluon's {gen} from {col!r}", f=f,
                                    gen=", ".join(odd), col=f))
        if f in kinds and kinds[f] not in ("numeric", "boolean", "text"):
            raise _NotExportable(tr("column {col!r} is {kind}", col=f, kind=kinds[f]))
        if "CategoryFeatureGenerator" in made_by:
            gen = next(g for g in touching[f] if type(g).__name__ == "CategoryFeatureGenerator")
            recipe.features.append(f)
            recipe.categories[f] = _category_labels(gen, f, next(cat_lists, None), kinds.get(f))
            if "" in recipe.categories[f]:  # AutoGluon reads missing text as "", a category of its own here
                recipe.fill_text[f] = ""
        elif f in bools:
            name = _free_name(f"{f}={_key(bools[f])}", taken)
            taken.add(name)
            recipe.onehot.append({"column": f, "categories": [_key(bools[f])], "names": [name], "other": None})
            recipe.features.append(name)
        else:
            if kinds.get(f) == "text":
                raise _NotExportable(tr("feature {f!r} is text that AutoGluon passes on as a number", f=f))
            recipe.features.append(f)
            if f in ints:
                recipe.fill_numeric[f] = 0.0  # AutoGluon fills a missing value of an integer column with 0
    if next(cat_lists, None) is not None:
        raise _NotExportable(tr("its booster has more categorical features than AutoGluon's category columns"))
    return recipe


def _category_labels(gen: Any, f: str, booster_codes: list | None, kind: str | None) -> list[str]:
    """The training labels in LightGBM's code order: booster code i <- AutoGluon code booster_codes[i] <- label."""
    if booster_codes is None:
        raise _NotExportable(tr("its booster does not treat category column {col!r} as categorical", col=f))
    if getattr(gen, "_fillna_map", None) or not getattr(gen, "_stateful_categories", True):
        raise _NotExportable(tr("AutoGluon fills or re-learns the categories of {col!r}", col=f))
    if kind not in (None, "text"):
        raise _NotExportable(tr("column {col!r} is {kind} but AutoGluon treats it as a category", col=f, kind=kind))
    labels = list(gen.category_map[f])
    try:
        return [_key(labels[int(c)]) for c in booster_codes]
    except (IndexError, TypeError, ValueError):
        raise _NotExportable(tr("its category codes for {col!r} do not match AutoGluon's category list",
                                col=f)) from None


def _free_name(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}_{n}", n + 1
    return out


# ---- the lightgbm ModelRef -------------------------------------------------------------------------------
def _adapter(recipe: _Recipe, ag_info: dict) -> FittedTransform | None:
    """The AutoGluon ModelRef's own preparation, then the fills and 0/1 encodings AutoGluon applies itself."""
    from nodes.features.fitted import chain
    from nodes.features.transforms.encode import KINDS
    from nodes.features.transforms.impute import KIND as IMPUTE

    parts: list[FittedTransform | None] = []
    spec = ag_info.get("transform")
    if spec:
        parts.append(FittedTransform(spec["kind"], spec["params"], tuple(spec["columns"])))
    filled = [*recipe.fill_numeric, *recipe.fill_text]
    if filled:
        parts.append(FittedTransform(IMPUTE, {"numeric": dict(recipe.fill_numeric),
                                              "categorical": dict(recipe.fill_text), "indicators": [],
                                              "outputs": filled}, tuple(filled)))
    if recipe.onehot:
        parts.append(FittedTransform(KINDS["onehot"], {
            "entries": recipe.onehot, "drop_original": False,
            "outputs": [n for e in recipe.onehot for n in e["names"]]}, tuple(e["column"] for e in recipe.onehot)))
    if not any(parts):
        return None
    return chain(*parts)


def _class_values(predictor: Any, ag_info: dict) -> list[Any]:
    """The classes as the lightgbm flavor reads them: a binary model's positive class second (its booster scores
    the positive class), a multiclass model's in AutoGluon's probability-column order."""
    values = list(ag_info.get("class_values") or [])
    if ag_info.get("problem_type") == "binary":
        positive = str(ag_info.get("positive_class"))
        return [v for v in values if str(v) != positive] + [v for v in values if str(v) == positive]
    return values


def _write(folder: Path, booster: Any, recipe: _Recipe, predictor: Any, ag_info: dict, name: str,
           score_val: float | None) -> ModelRef:
    classes = _class_values(predictor, ag_info)
    kinds = ag_info.get("feature_kinds") or {}
    info: dict[str, Any] = {
        "label": ag_info.get("label"),
        "problem_type": ag_info.get("problem_type"),
        "features": list(recipe.features),
        "feature_kinds": {f: kinds.get(f, "numeric") for f in recipe.features},
        "categories": dict(recipe.categories),
        "classes": [str(c) for c in classes],
        "class_values": classes,
        "positive_class": ag_info.get("positive_class"),
        "train_rows": ag_info.get("train_rows"),
        "best_model": name,
        "metrics": {"score_val": score_val, "eval_metric": ag_info.get("eval_metric")} if score_val is not None
        else {},
        "trees": booster.num_trees(),
        "autogluon_member": name,
    }
    for key in ("lineage", "data_fingerprint", "run_id", "experiment_run_id", "feature_ranges"):
        if key in ag_info:
            info[key] = ag_info[key]
    transform = _adapter(recipe, ag_info)
    if transform is not None:
        info["transform"] = {"kind": transform.kind, "params": transform.params, "columns": list(transform.columns)}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / MODEL_FILE, booster.model_to_string())
    return ModelRef("lightgbm", folder, info)


# ---- checking and comparing -----------------------------------------------------------------------------
def _probe_rows(rows: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """A few rows with every input missing, and with every text input unseen in training: what AutoGluon does
    there (0 for a missing integer, "false" for a two-valued column...) must be reproduced too."""
    head = rows.head(PROBE_ROWS)
    used = [c for c in columns if c in head.columns]
    missing = head.with_columns([pl.lit(None, head.schema[c]).alias(c) for c in used])
    texts = [c for c in used if head.schema[c] == pl.String]
    unseen = head.with_columns([pl.lit(UNSEEN_TEXT).alias(c) for c in texts]) if texts else head.head(0)
    return pl.concat([rows, missing, unseen], how="vertical_relaxed")


def _ag_scores(predictor: Any, frame: Any, problem: str, classes: list[Any], name: str | None) -> np.ndarray:
    """AutoGluon's own scores for a model: class probabilities in `classes` order, or the prediction."""
    kw = {"model": name} if name else {}
    if problem == "regression":
        return np.asarray(predictor.predict(frame, **kw), dtype=np.float64).reshape(-1, 1)
    proba = predictor.predict_proba(frame, **kw)
    cols = {str(c): c for c in proba.columns}
    return np.column_stack([proba[cols[str(c)]].to_numpy(dtype=np.float64) for c in classes])


def _our_scores(model: ModelRef, table: pl.DataFrame) -> np.ndarray:
    from nodes.automl.flavors import score

    s = score(model, table)
    if s.problem_type == "regression":
        return np.asarray(s.prediction, dtype=np.float64).reshape(-1, 1)
    assert s.proba is not None
    return np.column_stack([s.proba[str(c)].to_numpy().astype(np.float64) for c in model.info["class_values"]])


def _check_exact(lgb_model: ModelRef, ag_model: ModelRef, predictor: Any, name: str, rows: pl.DataFrame) -> float:
    """Largest |ours - AutoGluon's| / max(1, |AutoGluon's|) on the rows; _NotExportable above EXACT_TOLERANCE."""
    from nodes.automl.flavors import prepare

    classes = lgb_model.info["class_values"]
    frame = prepare(ag_model, rows).to_pandas()
    theirs = _ag_scores(predictor, frame, lgb_model.info["problem_type"], classes, name)
    quiet = logging.getLogger("ledgerflow.model")  # the probe rows' unseen labels are on purpose: no warnings
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        ours = _our_scores(lgb_model, rows)
    finally:
        quiet.setLevel(level)
    if ours.shape != theirs.shape or not (np.isnan(ours) == np.isnan(theirs)).all():
        raise _NotExportable(tr("AutoGluon's preprocessing could not be reproduced exactly"))
    # AutoGluon returns regression predictions as float32: beyond 1 in size, compare to its relative precision
    scale = np.maximum(1.0, np.abs(np.nan_to_num(theirs)))
    diff = float((np.abs(np.nan_to_num(ours) - np.nan_to_num(theirs)) / scale).max(initial=0.0))
    if not diff <= EXACT_TOLERANCE:
        raise _NotExportable(tr("AutoGluon's preprocessing could not be reproduced exactly (scores differ by up "
                                "to {diff:.3g})", diff=diff))
    return diff


def _holdout_metric(problem: str) -> str:
    return {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}[problem]


def _metric(info: dict, labels: pl.Series, scores: np.ndarray, classes: list[Any]) -> float | None:
    """AUC (binary), accuracy (multiclass) or R² (regression) of `scores` (columns in `classes` order), with the
    functions Evaluate uses; None when the labels cannot give it (no rows, one class, unknown classes)."""
    from nodes.automl.training import label_codes
    from nodes.evaluate import metrics as m

    known = labels.is_not_null().to_numpy()
    if not known.any():
        return None
    problem = info["problem_type"]
    try:
        y = label_codes(labels.filter(labels.is_not_null()), {**info, "class_values": classes,
                                                              "classes": [str(c) for c in classes]}, "holdout")
    except NodeInputError:
        return None
    s = scores[known]
    if problem == "regression":
        return m.regression_metrics(y, s[:, 0])["r2"] if len(y) > 1 else None
    if problem == "binary":
        return m.auc_ks(y, s[:, 1])[0]
    return m.multiclass_metrics(y, np.argmax(s, axis=1))["accuracy"]


# ---- the whole step -------------------------------------------------------------------------------------
def export_member(ag_model: ModelRef, holdout: pl.DataFrame, workdir: Path, check_rows: int = 1000,
                  seed: int = 0) -> MemberExport:
    """The best exportable member of the AutoGluon model `ag_model` as a lightgbm ModelRef under `workdir`;
    NodeInputError listing every member and why it cannot be exported when none can. The exactness check scores
    at most `check_rows` holdout rows (a seeded sample) plus the probe rows; the holdout metrics use every row."""
    from nodes.automl.autogluon_flavor import load

    info = ag_model.info
    problem = info.get("problem_type")
    if problem not in ("binary", "multiclass", "regression"):
        raise NodeInputError(tr("AutoGluon model: problem type {kind!r} cannot be exported", kind=problem))
    if holdout.height == 0:
        raise NodeInputError(tr("The holdout table has no rows: the parity check needs rows to score"))
    predictor = load(ag_model)
    ranked = _ranked(predictor)
    best = str(predictor.model_best)
    score_of = dict(ranked)
    kinds = dict(info.get("feature_kinds") or {})
    made = set(info.get("features") or []) | set(holdout.columns)
    skipped: list[Skipped] = []
    folder = Path(workdir) / MEMBER_FOLDER
    sample = holdout.sample(n=check_rows, seed=seed) if holdout.height > check_rows else holdout
    for name, score_val in ranked:
        try:
            member, booster = _booster_member(predictor, name)
            recipe = _recipe(predictor, member, booster, kinds, set(made))
            model = _write(folder, booster, recipe, predictor, info, name, score_val)
            probes = _probe_rows(sample, [c for c in info.get("features", []) if c in recipe.features
                                           or any(e["column"] == c for e in recipe.onehot)])
            diff = _check_exact(model, ag_model, predictor, name, probes)
        except _NotExportable as why:
            skipped.append(Skipped(name, str(why)))
            log.info(tr("AutoGluon member {name} not exportable: {reason}", name=name, reason=str(why)))
            continue
        classes = model.info["class_values"]
        exported_metric = best_metric = None
        label = info.get("label")
        if label and label in holdout.columns:
            from nodes.automl.flavors import prepare

            frame = prepare(ag_model, holdout).to_pandas()
            exported_metric = _metric(info, holdout[label], _our_scores(model, holdout), classes)
            best_metric = _metric(info, holdout[label], _ag_scores(predictor, frame, problem, classes, best), classes)
        difference = None if exported_metric is None or best_metric is None else exported_metric - best_metric
        return MemberExport(model, name, best, str(info.get("eval_metric") or predictor.eval_metric.name),
                            score_val, score_of.get(best), _holdout_metric(problem), exported_metric, best_metric,
                            difference, skipped, diff, probes.height)
    listing = "; ".join(f"{s.member}: {s.reason}" for s in skipped) or tr("the predictor has no models")
    raise NodeInputError(tr("No member of this AutoGluon model can be exported to ONNX (only LightGBM members on "
                            "raw numeric, two-valued and category columns can): {members}", members=listing))
