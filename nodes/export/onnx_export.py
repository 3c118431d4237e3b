"""Export ONNX: a LightGBM model (or an AutoGluon model's best exportable LightGBM member) and its fitted
preparation -> a verified, self-describing model package.

The export proves itself before it writes anything: the ONNX graph scores held-out rows and its scores must match
LightGBM's own (flavors.score, the path Predict and Evaluate use) to within PARITY_TOLERANCE. Above it the node
fails with the figure and leaves the folder as it was, because a package that scores differently from the
validated model is worse than no package.
"""
from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from engine.errors import NodeInputError
from engine.fileio import sha256_text
from engine.i18n import N_, tr
from engine.ports import Model, ModelRef, Report, ReportPort, Table
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, node
from nodes.evaluate.evaluate import class_names
from nodes.export import model_card
from nodes.export.autogluon_member import MemberExport, export_member
from nodes.export.onnx_convert import (
    IR_VERSION,
    ML_OPSET,
    OPSET,
    Converted,
    InputSpec,
    check_exportable,
    convert,
    feeds,
    input_specs,
    transform_steps,
)
from nodes.export.package import MANIFEST, NAME_PATTERN, check_name, write_package
from nodes.export.scoring import session as scoring_session

PARITY_TOLERANCE = 1e-5
MODEL_FILE = "model.onnx"
QUANT_FILE = "model.quant.onnx"
CARD_FILE = "model_card.html"
MAX_LISTED_CATEGORIES = 1000


class ExportSettings(NodeSettings):
    folder: str = Field(min_length=1, title=N_("Folder"), description=N_(
        "Where the package folder is written; a relative path is inside the project"),
        json_schema_extra={"widget": "folder"})
    package_name: str = Field("model", title=N_("Package name"), description=N_(
        "The package's folder name (letters, digits, '.', '-', '_'); an existing package of this name is replaced "
        "only once the new one is complete"))
    parity_rows: int = Field(1000, ge=1, le=1_000_000, title=N_("Parity rows"), description=N_(
        "Holdout rows scored by both LightGBM and ONNX; the export fails if any score differs by more than 1e-5"))
    quantize: bool = Field(False, title=N_("Also write a quantized model"), description=N_(
        "Adds model.quant.onnx (onnxruntime dynamic quantization) and reports what it costs in accuracy"))

    @field_validator("package_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(tr("use letters, digits, '.', '-' and '_' only (up to 100, not starting with '.' or "
                                "'-')"))
        return value


def native_scores(model: ModelRef, table: pl.DataFrame) -> np.ndarray:
    """What the model itself says (the lightgbm flavor's scoring): the positive class's probability (binary),
    all class probabilities (multiclass) or the prediction (regression)."""
    from nodes.automl.flavors import score

    scores = score(model, table)
    if scores.problem_type == "regression":
        return np.asarray(scores.prediction, dtype=np.float64)
    assert scores.proba is not None
    if scores.problem_type == "binary":
        return scores.proba[str(scores.positive_class)].to_numpy().astype(np.float64)
    return scores.proba.to_numpy().astype(np.float64)


def onnx_scores(session: Any, converted: Converted, table: pl.DataFrame) -> np.ndarray:
    """The same quantity from the ONNX graph."""
    out = dict(zip(converted.outputs, session.run(None, feeds(converted.inputs, table))))
    key = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}[converted.problem_type]
    return np.asarray(out[key], dtype=np.float64)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference; NaN where either side has a NaN the other has not (always a failure)."""
    if a.shape != b.shape:
        return float("inf")
    if not (np.isnan(a) == np.isnan(b)).all():
        return float("nan")
    diff = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    return float(diff.max()) if diff.size else 0.0


def scale_free_diff(native: np.ndarray, ours: np.ndarray) -> float:
    """For regression, where the tolerance applies: max |native − onnx| / max(1, max |native|). The graph outputs
    float32, whose rounding grows with the size of the predictions (a loan amount of 250,000 carries about 0.01
    of it, on every row, even where a prediction happens to be near 0); probabilities never exceed 1, so for them
    this is the absolute difference."""
    diff = max_abs_diff(native, ours)
    if not np.isfinite(diff) or native.size == 0:
        return diff
    return diff / max(1.0, float(np.abs(np.nan_to_num(native)).max()))


def _likely_cause(model: ModelRef) -> str:
    """A known reason the conversion cannot be faithful, to say with the parity figure."""
    text = (Path(model.path) / "model.txt").read_text("utf-8", errors="replace")
    if "is_linear=1" in text:
        return tr("The model uses linear trees (linear_tree), which ONNX tree operators cannot represent; retrain "
                  "without them to export.")
    return ""


def _auc(model: ModelRef, table: pl.DataFrame, p: np.ndarray) -> float | None:
    """AUC of binary scores on the rows' labels, when the table has the label and both classes."""
    from sklearn.metrics import roc_auc_score

    label = model.info.get("label")
    if model.info.get("problem_type") != "binary" or not label or label not in table.columns:
        return None
    labels = table[label]
    known = labels.is_not_null().to_numpy()
    try:  # the label as the model's class names (True -> "True", 1.0 -> "1"), as Evaluate reads it
        names = class_names(labels.filter(labels.is_not_null()), model.info.get("classes") or [], label)
    except NodeInputError:
        return None  # values the model never saw: no AUC to compare
    y01 = (names == str(model.info.get("positive_class"))).astype(int)
    if y01.min(initial=0) == y01.max(initial=0):
        return None
    return float(roc_auc_score(y01, p[known]))


def _quantize(data: bytes, workdir: Path) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        src, dst = Path(tmp) / MODEL_FILE, Path(tmp) / QUANT_FILE
        src.write_bytes(data)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        return dst.read_bytes()


def _ranges(model: ModelRef, spec: InputSpec, holdout: pl.DataFrame) -> dict[str, Any]:
    """Allowed values of one input: the training range or categories when the model records them, else what
    the holdout table shows (and `range_source` says which)."""
    info = model.info
    col = holdout.get_column(spec.name)
    if spec.kind == "text":
        cats = (info.get("categories") or {}).get(spec.name)
        if cats is None:
            for step in transform_steps(model):  # an encoder or binning fitted on training saw these labels
                for e in step.params.get("entries", []):
                    if e.get("column") == spec.name:
                        cats = e.get("categories") or [c for g in e.get("groups", []) for c in g] or None
        if cats is not None:
            return {"categories": [str(c) for c in cats], "range_source": "training"}
        seen = col.cast(pl.String).drop_nulls().unique().sort().to_list()
        return {"categories": seen[:MAX_LISTED_CATEGORIES], "range_source": "holdout"}
    known = (info.get("feature_ranges") or {}).get(spec.name)
    if known:
        return {"min": known.get("min"), "max": known.get("max"), "range_source": "training"}
    values = col.cast(pl.Float64)
    values = values.filter(values.is_finite())
    if values.len() == 0:
        return {"min": None, "max": None, "range_source": "holdout"}
    return {"min": float(values.min()), "max": float(values.max()), "range_source": "holdout"}  # type: ignore[arg-type]


def _outputs(model: ModelRef) -> list[dict[str, str]]:
    info = model.info
    problem = info.get("problem_type")
    if problem == "regression":
        return [{"name": "prediction", "type": "float [N]", "description": tr("the predicted {label}",
                                                                             label=info.get("label"))}]
    out = [{"name": "label", "type": "[N]", "description": tr("the predicted class of {label}",
                                                              label=info.get("label"))}]
    if problem == "binary":
        out.append({"name": "probability", "type": "float [N]",
                    "description": tr("probability of the positive class {cls}", cls=info.get("positive_class"))})
    else:
        out.append({"name": "probabilities", "type": "float [N, C]",
                    "description": tr("probability of each class, in the order {classes}",
                                      classes=", ".join(info.get("classes") or []))})
    return out


def _fingerprint(table: pl.DataFrame) -> str:
    buf = table.write_ipc(None, compression="uncompressed")
    return hashlib.sha256(buf.getvalue()).hexdigest()


def build_manifest(model: ModelRef, name: str, converted: Converted, holdout: pl.DataFrame, parity: dict,
                   quantization: dict | None, node_id: str, run: dict | None = None) -> dict[str, Any]:
    """Everything a consumer needs to call the graph and to judge the model; file hashes are added on writing.
    `run` is the export's Context.lineage: which run exports, and which run trained the model it was given."""
    info = model.info
    lineage = info.get("lineage") or {}
    run = run or {}
    model_input = (run.get("inputs") or {}).get("model") or {}
    return {
        "package_name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "producer": "ledgerflow",
        "model": {"flavor": model.flavor, "best_model": info.get("best_model"), "label": info.get("label"),
                  "problem_type": info.get("problem_type"), "classes": info.get("classes"),
                  "class_values": info.get("class_values"), "positive_class": info.get("positive_class"),
                  "train_rows": info.get("train_rows"), "trees": info.get("trees")},
        "onnx": {"file": MODEL_FILE, "opset": OPSET, "ai_onnx_ml_opset": ML_OPSET, "ir_version": IR_VERSION},
        "inputs": [{"name": s.name, "kind": s.kind, "type": s.dtype, "tensor": s.tensor, "position": s.index,
                    **_ranges(model, s, holdout)}
                   for s in converted.inputs],
        "missing_values": {"double": "NaN", "string": ""},
        "features": list(info.get("features", [])),
        "preparation": [s.kind for s in transform_steps(model)],
        "outputs": _outputs(model),
        "metrics": info.get("metrics") or {},
        "lineage": {  # the training data and runs, from the engine's run lineage (null outside a project run)
            "training_data_fingerprint": lineage.get("data_fingerprint"),
            "training_data_node": lineage.get("data_node"),
            "model_artifact": model_input.get("digest"),
            "training_node": model_input.get("node_id"),
            "training_run_id": model_input.get("run_id"),
            "export_run_id": run.get("run_id"),
            "holdout_fingerprint": _fingerprint(holdout),
            "export_node_id": node_id,
        },
        "parity": parity,
        "quantization": quantization,
    }


@node("export.onnx", version=1, title=N_("Export ONNX"), category=N_("Export"), icon="file-export", heavy=True)
class ExportONNX(Node):
    """Export a LightGBM model or an AutoGluon model's best LightGBM member as a verified ONNX model package."""

    inputs = {"model": Model, "holdout": Table}
    outputs = {"report": ReportPort}
    Settings = ExportSettings

    @classmethod
    def receipt(cls, settings: ExportSettings, ctx: FingerprintContext) -> str | None:
        """The package's files as written: deleting or editing any of them makes the next run export again."""
        target = ctx.resolve_path(settings.folder) / settings.package_name
        if not (target / MANIFEST).is_file():
            return None
        files = sorted(p for p in target.iterdir() if p.is_file())
        return sha256_text(*(f"{p.name}={ctx.files.hash(p)}" for p in files))

    def compute(self, inputs: dict, settings: ExportSettings, ctx: Context) -> dict:
        model: ModelRef = inputs["model"]
        holdout: pl.DataFrame = inputs["holdout"]
        name = check_name(settings.package_name)
        member: MemberExport | None = None
        if model.flavor == "autogluon":  # the ensemble has no ONNX form: its best LightGBM member does
            ctx.progress(0.02, tr("choosing the AutoGluon member to export"))
            member = export_member(model, holdout, ctx.workdir, settings.parity_rows, ctx.seed)
            model = member.model
            ctx.log.info(tr("exporting AutoGluon member {member} (the ensemble's best model is {best})",
                            member=member.member, best=member.ensemble_best))
            for s in member.skipped:
                ctx.log.info(tr("skipped AutoGluon member {member}: {reason}", member=s.member, reason=s.reason))
        if model.flavor != "lightgbm":
            raise NodeInputError(tr("Export ONNX supports LightGBM models; this model's flavor is {flavor!r} "
                                    "(AutoGluon models export their best LightGBM member)", flavor=model.flavor))
        check_exportable(model)  # before any work: a preparation step without an ONNX form
        if holdout.height == 0:
            raise NodeInputError(tr("The holdout table has no rows: the parity check needs rows to score"))
        rows = holdout.sample(n=settings.parity_rows, seed=ctx.seed) if holdout.height > settings.parity_rows \
            else holdout
        ctx.progress(0.1, tr("converting to ONNX"))
        converted = convert(model, input_specs(model, rows))
        data = converted.model.SerializeToString()
        session = scoring_session(data)
        ctx.check_cancelled()
        ctx.progress(0.4, tr("checking parity on {n} rows", n=rows.height))
        native = native_scores(model, rows)
        ours = onnx_scores(session, converted, rows)
        diff = max_abs_diff(native, ours)
        gap = scale_free_diff(native, ours) if converted.problem_type == "regression" else diff
        if not gap <= PARITY_TOLERANCE:  # NaN fails too
            msg = tr("ONNX parity check failed: on {n} holdout rows the ONNX graph's scores differ from LightGBM's "
                     "by up to {diff:.3g} (tolerance {tol:g}). Nothing was written.", n=rows.height, diff=gap,
                     tol=PARITY_TOLERANCE)
            raise NodeInputError(f"{msg} {_likely_cause(model)}".strip())
        ctx.log.info(tr("parity: max |native − onnx| = {diff:.3g} on {n} rows", diff=diff, n=rows.height))
        parity = {"max_abs_diff": diff, "rows": rows.height, "tolerance": PARITY_TOLERANCE,
                  "tolerance_applies_to": "max |native − onnx| / max(1, max |native|)"
                  if converted.problem_type == "regression" else "max |native − onnx|",
                  "compared": {"binary": "probability", "multiclass": "probabilities",
                               "regression": "prediction"}[converted.problem_type]}
        files = {MODEL_FILE: data}
        quantization = None
        if settings.quantize:
            ctx.progress(0.6, tr("quantizing"))
            qdata = _quantize(data, ctx.workdir)
            q_scores = onnx_scores(scoring_session(qdata), converted, rows)
            quantization = {"file": QUANT_FILE, "method": "onnxruntime dynamic quantization (QInt8 weights)",
                            "max_abs_diff": max_abs_diff(ours, q_scores),
                            "auc_unquantized": _auc(model, rows, ours), "auc": _auc(model, rows, q_scores),
                            "rows": rows.height}
            files[QUANT_FILE] = qdata
        manifest = build_manifest(model, name, converted, holdout, parity, quantization, ctx.node_id,
                                  ctx.lineage)
        if member is not None:
            manifest["member"] = member.manifest_section()
        files[CARD_FILE] = model_card.render(manifest).encode("utf-8")
        ctx.progress(0.8, tr("writing the package"))
        target = write_package(ctx.resolve_path(settings.folder), name, files, manifest)
        ctx.log.info(tr("wrote model package {path}", path=str(target)))
        ctx.progress(1.0)
        return {"report": _report(model, target, manifest, files)}


def _report(model: ModelRef, target: Path, manifest: dict, files: dict[str, bytes]) -> Report:
    parity, quant = manifest["parity"], manifest["quantization"]
    report = Report(title=tr("ONNX export of {model}", model=model.info.get("best_model") or model.flavor),
                    kind="export")
    report.metrics = {"max_abs_diff": parity["max_abs_diff"], "parity_rows": parity["rows"],
                      "parity_tolerance": parity["tolerance"], "package": str(target),
                      "onnx_bytes": len(files[MODEL_FILE]), "inputs": len(manifest["inputs"])}
    if quant:
        report.metrics.update({"quantized_max_abs_diff": quant["max_abs_diff"], "quantized_auc": quant["auc"],
                               "unquantized_auc": quant["auc_unquantized"],
                               "quantized_bytes": len(files[QUANT_FILE])})
        if quant["max_abs_diff"] == 0.0:
            report.notes.append(tr("Dynamic quantization changed no score: it quantizes matrix weights, and a tree "
                                   "ensemble has none, so model.quant.onnx scores exactly as model.onnx."))
    chosen = manifest.get("member")
    if chosen:
        report.metrics.update({"exported_member": chosen["exported"],
                               "member_score_difference": chosen["difference"]})
        report.notes.insert(0, model_card.member_sentence(chosen))
        report.tables[tr("AutoGluon members not exported")] = pl.DataFrame(
            {"member": [s["member"] for s in chosen["skipped"]], "reason": [s["reason"] for s in chosen["skipped"]]},
            schema={"member": pl.String, "reason": pl.String})
    report.tables[tr("Inputs")] = pl.DataFrame(
        {"column": [s["name"] for s in manifest["inputs"]], "kind": [s["kind"] for s in manifest["inputs"]],
         "type": [s["type"] for s in manifest["inputs"]],
         "allowed": [model_card.allowed_values(s) for s in manifest["inputs"]]},
        schema={"column": pl.String, "kind": pl.String, "type": pl.String, "allowed": pl.String})
    names = sorted(files)
    report.tables[tr("Package files")] = pl.DataFrame(
        {"file": names, "bytes": [len(files[n]) for n in names],
         "sha256": [hashlib.sha256(files[n]).hexdigest() for n in names]},
        schema={"file": pl.String, "bytes": pl.Int64, "sha256": pl.String})
    report.notes.append(tr("Package written to {path}; verify it with nodes.export.package.verify_package.",
                           path=target))
    return report
