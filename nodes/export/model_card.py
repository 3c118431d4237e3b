"""The model card: one self-contained HTML page (no scripts, no external files) that travels in the package.

It is written for the reviewer who receives the package, not for the modeller: what the model is for, what data
it learnt from, how good it is, proof that the ONNX file scores like the original, what it expects as input, and
where it should not be trusted. Everything comes from the manifest, so the card never says something the
machine-readable package does not.
"""
from __future__ import annotations

import html
from typing import Any

from engine.i18n import tr

_STYLE = ("body{font-family:sans-serif;margin:2em auto;max-width:60em;color:#222;line-height:1.45}"
          "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;"
          "vertical-align:top}th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}"
          ".ok{color:#1b7f3b;font-weight:bold}.muted{color:#777}")


def _fmt(value: Any) -> str:
    if value is None:
        return tr("unknown")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    parts = ["<table><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        cells = "".join(f"<td>{esc(_fmt(v))}</td>" for v in row)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    return "".join(parts)


def allowed_values(spec: dict) -> str:
    if spec.get("categories") is not None:
        cats = spec["categories"]
        shown = ", ".join(map(str, cats[:30])) + (" …" if len(cats) > 30 else "")
        return f"{shown} ({spec.get('range_source')})"
    if spec.get("min") is not None:
        return f"[{_fmt(spec['min'])}, {_fmt(spec['max'])}] ({spec.get('range_source')})"
    return ""


_METRIC_NAMES = {"auc": "AUC", "accuracy": "accuracy", "r2": "R²"}


def member_sentence(member: dict) -> str:
    """One plain sentence: which AutoGluon member the package holds and what it costs against the ensemble."""
    metric = _METRIC_NAMES.get(member.get("holdout_metric"), member.get("holdout_metric"))
    ours, best, diff = member.get("holdout_exported"), member.get("holdout_best"), member.get("difference")
    if member.get("exported") == member.get("ensemble_best"):
        head = tr("Exported AutoGluon member {member}, which is the ensemble's best model itself",
                  member=member.get("exported"))
    else:
        head = tr("Exported AutoGluon member {member}, not the ensemble {best}", member=member.get("exported"),
                  best=member.get("ensemble_best"))
    if ours is None or best is None or diff is None:
        return tr("{head}: the holdout rows carry no usable label, so they were not compared there; on "
                  "AutoGluon's validation rows its {metric} is {ours} against {best}.", head=head,
                  metric=member.get("eval_metric"), ours=_fmt3(member.get("score_val_exported")),
                  best=_fmt3(member.get("score_val_best")))
    return tr("{head}: on the holdout rows its {metric} is {ours:.3f} against the ensemble's {best:.3f} "
              "({diff}).", head=head, metric=metric, ours=ours, best=best, diff=f"{diff:+.3f}".replace("-", "−"))


def _fmt3(value: Any) -> str:
    return tr("unknown") if value is None else f"{value:.3f}"


def _member_section(member: dict) -> str:
    esc = html.escape
    parts = [f"<h2>{esc(tr('AutoGluon member'))}</h2><p>{esc(member_sentence(member))}</p>"]
    metric = _METRIC_NAMES.get(member.get("holdout_metric"), member.get("holdout_metric"))
    parts.append(_table([tr("Model"), tr("Validation {metric}", metric=member.get("eval_metric")),
                         tr("Holdout {metric}", metric=metric)], [
        [tr("{member} (exported)", member=member.get("exported")), member.get("score_val_exported"),
         member.get("holdout_exported")],
        [tr("{member} (ensemble's best)", member=member.get("ensemble_best")), member.get("score_val_best"),
         member.get("holdout_best")],
    ]))
    check = member.get("adapter_check") or {}
    parts.append("<p>" + esc(tr("Before conversion the exported member's scores were checked against AutoGluon's own "
                                "for that member on {rows} rows (the holdout rows plus rows with missing and unseen "
                                "values): largest difference {diff:.3g} (tolerance {tol:g}).",
                                rows=check.get("rows"), diff=float(check.get("max_diff", float("nan"))),
                                tol=check.get("tolerance", 0.0))) + "</p>")
    skipped = member.get("skipped") or []
    if skipped:
        parts.append(_table([tr("Member not exported"), tr("Why")], [[s["member"], s["reason"]] for s in skipped]))
    return "".join(parts)


def render(manifest: dict) -> str:
    """The card as one HTML document."""
    esc = html.escape
    model = manifest.get("model", {})
    parity = manifest.get("parity", {})
    lineage = manifest.get("lineage", {})
    title = tr("Model card: {name}", name=manifest.get("package_name", ""))
    head = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>")
    parts = [head]

    parts.append(f"<h2>{esc(tr('Purpose'))}</h2><p>")
    if model.get("problem_type") == "regression":
        parts.append(esc(tr("Predicts the value of {label!r} ({model}, {kind}).", label=model.get("label"),
                            model=model.get("best_model"), kind=model.get("problem_type"))))
    else:
        parts.append(esc(tr("Predicts {label!r} ({model}, {kind}); classes: {classes}; positive class: {positive}.",
                            label=model.get("label"), model=model.get("best_model"), kind=model.get("problem_type"),
                            classes=", ".join(map(str, model.get("classes") or [])),
                            positive=_fmt(model.get("positive_class")))))
    parts.append("</p><p>" + esc(tr("The file model.onnx takes one raw table column per input below and applies the "
                                    "fitted preparation ({steps}) inside the graph.",
                                    steps=", ".join(manifest.get("preparation") or []) or tr("none"))) + "</p>")

    if manifest.get("member"):
        parts.append(_member_section(manifest["member"]))

    parts.append(f"<h2>{esc(tr('Data'))}</h2>")
    parts.append(_table([tr("Item"), tr("Value")], [
        [tr("Training rows"), model.get("train_rows")],
        [tr("Training data fingerprint"), lineage.get("training_data_fingerprint")],
        [tr("Training run"), lineage.get("training_run_id")],
        [tr("Holdout rows checked"), parity.get("rows")],
        [tr("Holdout fingerprint"), lineage.get("holdout_fingerprint")],
        [tr("Exported at"), manifest.get("created_at")],
    ]))

    parts.append(f"<h2>{esc(tr('Metrics'))}</h2>")
    metrics = manifest.get("metrics") or {}
    if metrics:
        parts.append(_table([tr("Metric"), tr("Value")], [[k, v] for k, v in sorted(metrics.items())]))
    else:
        parts.append(f"<p class='muted'>{esc(tr('The model carries no validation metrics.'))}</p>")

    parts.append(f"<h2>{esc(tr('Parity with the original model'))}</h2><p>")
    parts.append(esc(tr("On {rows} holdout rows the largest difference between LightGBM's own scores and this ONNX "
                        "graph's is {diff:.3g} (tolerance {tol:g}).", rows=parity.get("rows"),
                        diff=float(parity.get("max_abs_diff", float("nan"))), tol=parity.get("tolerance", 0.0))))
    parts.append(f" <span class='ok'>{esc(tr('Passed'))}</span></p>")
    quant = manifest.get("quantization")
    if quant:
        parts.append("<p>" + esc(tr("model.quant.onnx (dynamic quantization): largest score difference to "
                                    "model.onnx {diff:.3g}; AUC {auc} (unquantized {base}).",
                                    diff=float(quant.get("max_abs_diff", float("nan"))),
                                    auc=_fmt(quant.get("auc")), base=_fmt(quant.get("auc_unquantized")))) + "</p>")

    parts.append(f"<h2>{esc(tr('Inputs'))}</h2>")
    rows = [[s["name"], s["kind"], f"{s.get('tensor', s['name'])}[:, {s.get('position', 0)}] ({s['type']})",
             allowed_values(s)] for s in manifest.get("inputs", [])]
    parts.append(_table([tr("Column"), tr("Kind"), tr("ONNX input"), tr("Allowed values")], rows))
    parts.append("<p>" + esc(tr("The graph takes two matrices: numbers (double, one column per numeric or boolean "
                                "column) and texts (string, one column per text column), in the positions above. "
                                "Missing values: NaN for numbers (booleans as 1/0), the empty string for texts."))
                 + "</p>")
    parts.append(f"<h2>{esc(tr('Outputs'))}</h2><ul>")
    parts.extend(f"<li><code>{esc(o['name'])}</code>: {esc(o['description'])}</li>"
                 for o in manifest.get("outputs", []))
    parts.append("</ul>")

    parts.append(f"<h2>{esc(tr('Limitations'))}</h2><ul>")
    for text in (
        tr("The model is only as good as its training data: check that new applicants resemble it (the allowed "
           "ranges above); values outside them are scored, but nothing was learnt there."),
        tr("Text values not seen in training are scored as missing."),
        tr("The tree ensemble compares in 32-bit floating point; the parity check above bounds the effect on the "
           "holdout rows only."),
        tr("This card describes the package as exported; re-run the export after retraining. Check the files "
           "against manifest.json (SHA-256) before use."),
    ):
        parts.append(f"<li>{esc(text)}</li>")
    parts.append("</ul></body></html>")
    return "".join(parts)
