"""What the labels of a task say, item by item, and how the team is doing: the rows of the Label node's output
table and its report.

One output row per item, because a training table must not count an item twice when several people labeled it
(overlap): a label a reviewer accepted wins; otherwise the submitted labels count when they all agree. Items whose
labelers disagree and that no reviewer has settled get no label and the status "conflict": the node never picks
a side silently, the reviewer does (the review queue shows those items first).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine.fileio import canonical_json
from engine.i18n import N_, tr
from engine.labels.agreement import AgreementReport, Scores

_STATUS_TITLES = {"submitted": N_("submitted"), "accepted": N_("accepted"), "rejected": N_("rejected"),
                  "skipped": N_("skipped"), "draft": N_("draft")}


@dataclass
class Resolved:
    value: dict[str, Any] | None
    status: str  # accepted | submitted | conflict
    labelers: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)


def _same(value: dict[str, Any]) -> str:
    """A value's comparison key: label sets and box lists compare regardless of order."""
    if "labels" in value:
        return canonical_json(sorted(value["labels"]))
    if "boxes" in value:
        return canonical_json(sorted(value["boxes"], key=canonical_json))
    return canonical_json(value)


def resolve(rows: Iterable[dict[str, Any]]) -> dict[int, Resolved]:
    """Item position -> its resolved label, from `LabelStore.labeled_rows` (submitted and accepted labels; an
    accepted label names the reviewer whose latest decision accepted it)."""
    by_item: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row["labeler"] is not None and row["value"] is not None:
            by_item.setdefault(row["position"], []).append(row)
    out: dict[int, Resolved] = {}
    for position, labels in by_item.items():
        accepted = [r for r in labels if r["status"] == "accepted"]
        chosen = accepted or labels
        keys = {_same(r["value"]) for r in chosen}
        who = sorted(r["labeler"] for r in chosen)
        if len(keys) > 1:
            out[position] = Resolved(None, "conflict", who)
            continue
        out[position] = Resolved(chosen[0]["value"], "accepted" if accepted else "submitted", who,
                                 sorted({r["reviewer"] for r in accepted
                                         if r.get("decision") == "accepted" and r.get("reviewer")}))
    return out


def items_frame(keys: list[str], positions: list[int | None], resolved: dict[int, Resolved],
                passthrough: pl.DataFrame) -> pl.DataFrame:
    """The frame `engine.labels.exports.labeled_table` turns into the output: item_id, the passthrough columns,
    value (JSON text; null = no label) and the labeler, reviewer and status of each item."""
    values, labelers, reviewers, statuses = [], [], [], []
    for position in positions:
        r = resolved.get(position) if position is not None else None
        values.append(None if r is None or r.value is None else json.dumps(r.value, ensure_ascii=False))
        labelers.append(", ".join(r.labelers) if r and r.labelers else None)
        reviewers.append(", ".join(r.reviewers) if r and r.reviewers else None)
        statuses.append(r.status if r else None)
    meta = pl.DataFrame({"item_id": keys, "value": values, "labeler": labelers, "reviewer": reviewers,
                         "status": statuses}, schema={c: pl.String for c in
                                                      ("item_id", "value", "labeler", "reviewer", "status")})
    return pl.concat([meta.select("item_id"), passthrough, meta.drop("item_id")], how="horizontal")


def _fmt(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def scores_tables(agreement: AgreementReport) -> dict[str, pl.DataFrame]:
    """Agreement per label and per labeler, one column per measure (kappa, F1, IoU: n/a is empty)."""
    measures: dict[str, Scores] = agreement.measures
    labels = list(dict.fromkeys(name for s in measures.values() for name in s.per_label))
    per_label = pl.DataFrame({tr("label"): labels, **{tr(s.title): [_fmt(s.per_label.get(n)) for n in labels]
                                                      for s in measures.values()}},
                             schema={tr("label"): pl.String, **{tr(s.title): pl.Float64 for s in measures.values()}})
    people = list(dict.fromkeys(who for s in measures.values() for who in s.per_labeler))
    per_labeler = pl.DataFrame({tr("labeler"): people, **{tr(s.title): [_fmt(s.per_labeler.get(w)) for w in people]
                                                          for s in measures.values()}},
                               schema={tr("labeler"): pl.String,
                                       **{tr(s.title): pl.Float64 for s in measures.values()}})
    return {tr("Agreement per label"): per_label, tr("Agreement per labeler"): per_labeler}


def conflicts_table(agreement: AgreementReport, keys_by_position: dict[int, str], limit: int = 200) -> pl.DataFrame:
    """The most disagreeing items first: item id, disagreement (0-1) and each labeler's label."""
    rows = agreement.conflicts[:limit]
    return pl.DataFrame({
        tr("item"): [keys_by_position.get(c.item_id, str(c.item_id)) for c in rows],
        tr("disagreement"): [round(c.disagreement, 4) for c in rows],
        tr("labels"): [json.dumps(c.values, ensure_ascii=False, sort_keys=True) for c in rows],
    }, schema={tr("item"): pl.String, tr("disagreement"): pl.Float64, tr("labels"): pl.String})


def progress_table(summary: dict[str, Any]) -> pl.DataFrame:
    """Per labeler: submitted, accepted, rejected, skipped, drafts and the share of the task done."""
    people = sorted(summary["per_labeler"])
    per = summary["per_labeler"]
    return pl.DataFrame({tr("labeler"): people,
                         **{tr(title): [int(per[w][c]) for w in people] for c, title in _STATUS_TITLES.items()},
                         tr("progress"): [round(float(per[w]["progress"]), 4) for w in people]},
                        schema={tr("labeler"): pl.String, **{tr(t): pl.Int64 for t in _STATUS_TITLES.values()},
                                tr("progress"): pl.Float64})
