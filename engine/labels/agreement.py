"""Inter-annotator agreement: how far labelers agree, per label and per labeler, and which items they disagree on.

Why: a reviewer can only trust labels that several people would give alike. The task view shows one headline
figure per task kind, the same figure per label and per labeler, and a "conflicts first" queue of the items where
the labelers disagree most.

Input is what storage holds: `(item_id, labeler, value)` triples with values shaped as in the labeling design
(`{"labels": [...]}`, `{"spans": [...]}`, `{"boxes": [...]}`); a `None` value (skipped) is ignored, and when one
labeler annotated an item twice the later triple wins (the list is in time order).

Measures by kind:
- record / text / image, single label: Cohen's kappa when exactly two labelers took part (scikit-learn's
  `cohen_kappa_score`), otherwise Fleiss' kappa over items with at least two labels. Items labeled by different
  numbers of people are handled as in Gwet (2014, "Fleiss' kappa with missing ratings"): each item's agreement is
  normalised by its own n(n-1) and the chance term uses the mean per-item label proportions (taken here over the
  same items with >= 2 labels); with equal counts this is exactly Fleiss (1971). Per label: the same kappa on
  "this label or not". Per labeler: the mean of Cohen's kappa with each other labeler on the items both labeled.
  Also the plain share of agreeing labeler pairs.
- text, multi-label: per label, kappa on "label present or not" (Cohen for two labelers, Fleiss for more); the
  overall figure is the mean over labels whose kappa is defined. Also the share of pairs giving the same label set.
- spans: exact-match F1 (same start, end and label) and character-overlap IoU, per label, pooled over labeler pairs.
- boxes: per label, boxes of two labelers are paired by the Hungarian method (scipy `linear_sum_assignment`); a pair
  with IoU >= 0.5 is a match, and the pairing gives the most matches, then the highest total IoU.
  Match F1 = 2 matches / (boxes of A + boxes of B), and the mean IoU of the matches.

Undefined values are `None` (shown as "n/a"), never a made-up number: kappa is undefined when every label given
was the same single label (chance agreement is then 1 and kappa is 0/0; observed agreement is still reported, and
is 1.0), F1/IoU when neither labeler marked anything of that label, and every figure when no item has two labelers.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import NodeInputError
from engine.i18n import N_, tr

Annotation = tuple[Hashable, str, Mapping[str, Any] | None]
CLASSIFICATION_KINDS = ("record", "text", "image")
KINDS = (*CLASSIFICATION_KINDS, "spans", "boxes")
IOU_MATCH = 0.5


@dataclass(frozen=True)
class Scores:
    """One measure at every level the task view shows; `None` where the measure is undefined."""

    title: str
    overall: float | None
    per_label: dict[str, float | None] = field(default_factory=dict)
    per_labeler: dict[str, float | None] = field(default_factory=dict)
    pairs: dict[tuple[str, str], float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "overall": self.overall, "per_label": dict(self.per_label),
                "per_labeler": dict(self.per_labeler),
                "pairs": [{"a": a, "b": b, "value": v} for (a, b), v in self.pairs.items()]}


@dataclass(frozen=True)
class Conflict:
    """An item the labelers disagree on; `disagreement` is in [0, 1] (1 = no two labelers agree at all)."""

    item_id: Hashable
    disagreement: float
    values: dict[str, Any]


@dataclass
class AgreementReport:
    kind: str
    multi: bool
    labelers: list[str]
    items_compared: int
    primary: str
    measures: dict[str, Scores]
    conflicts: list[Conflict]
    notes: list[str]

    @property
    def headline(self) -> Scores:
        return self.measures[self.primary]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for the task view and the run report."""
        return {"kind": self.kind, "multi": self.multi, "labelers": list(self.labelers),
                "items_compared": self.items_compared, "primary": self.primary,
                "measures": {k: s.to_dict() for k, s in self.measures.items()},
                "conflicts": [{"item_id": c.item_id, "disagreement": c.disagreement, "values": c.values}
                              for c in self.conflicts],
                "notes": list(self.notes)}


def compute_agreement(annotations: Iterable[Annotation], kind: str, *, multi: bool = False,
                      labels: Sequence[str] | None = None) -> AgreementReport:
    """Agreement of every measure for the task `kind`; `labels` (the schema's names) fixes the per-label order and
    lists labels nobody used (their figure is then `None`)."""
    if kind not in KINDS:
        raise NodeInputError(tr("Agreement: unknown task kind {kind}; expected one of {kinds}", kind=kind,
                                kinds=", ".join(KINDS)))
    by_item = _latest_by_item(annotations)
    compared = {item: votes for item, votes in by_item.items() if len(votes) >= 2}
    labelers = sorted({who for votes in compared.values() for who in votes})
    notes: list[str] = []
    if not compared:
        notes.append(tr("No item has been labeled by two or more people yet, so agreement cannot be measured."))
    if kind in CLASSIFICATION_KINDS:
        parsed = {item: {who: _class_labels(v, item, who, multi) for who, v in votes.items()}
                  for item, votes in compared.items()}
        names = _label_order(labels, (lab for votes in parsed.values() for labs in votes.values() for lab in labs))
        measures, primary = (_multi_label(parsed, labelers, names, notes) if multi
                             else _single_label(parsed, labelers, names, notes))
        conflicts = _conflicts(compared, parsed, _set_agreement)
    elif kind == "spans":
        parsed = {item: {who: _spans(v, item, who) for who, v in votes.items()} for item, votes in compared.items()}
        names = _label_order(labels, (s[2] for votes in parsed.values() for spans in votes.values() for s in spans))
        stats = _pair_stats(parsed, labelers, _span_counts)
        measures = {"span_f1": _ratio_scores(N_("Span F1 (exact match)"), stats, names, _F1),
                    "char_iou": _ratio_scores(N_("Span IoU (character overlap)"), stats, names, _IOU)}
        primary = "span_f1"
        conflicts = _conflicts(compared, parsed, lambda a, b: _item_f1(_span_counts(a, b)))
    else:
        parsed = {item: {who: _boxes(v, item, who) for who, v in votes.items()} for item, votes in compared.items()}
        names = _label_order(labels, (b[4] for votes in parsed.values() for boxes in votes.values() for b in boxes))
        stats = _pair_stats(parsed, labelers, _box_counts)
        measures = {"box_f1": _ratio_scores(N_("Box match F1 (IoU >= 0.5)"), stats, names, _F1),
                    "box_iou": _ratio_scores(N_("Mean IoU of matched boxes"), stats, names, _MEAN_IOU)}
        primary = "box_f1"
        notes.append(tr("Boxes are paired by the Hungarian method on IoU; a pair with IoU >= 0.5 is a match."))
        conflicts = _conflicts(compared, parsed, lambda a, b: _item_f1(_box_counts(a, b)))
    return AgreementReport(kind=kind, multi=multi and kind in CLASSIFICATION_KINDS, labelers=labelers,
                           items_compared=len(compared), primary=primary, measures=measures, conflicts=conflicts,
                           notes=notes)


def item_disagreements(annotations: Iterable[Annotation], kind: str, *, multi: bool = False,
                       ) -> dict[Hashable, float]:
    """item -> its disagreement in (0, 1] as `compute_agreement`'s conflicts measure it (items where everyone
    agrees are absent), without the task-wide figures: what ordering a review queue needs, fast."""
    compared = {item: votes for item, votes in _latest_by_item(annotations).items() if len(votes) >= 2}
    if kind in CLASSIFICATION_KINDS:
        parsed = {item: {who: _class_labels(v, item, who, multi) for who, v in votes.items()}
                  for item, votes in compared.items()}
        similarity: Any = _set_agreement
    elif kind == "spans":
        parsed = {item: {who: _spans(v, item, who) for who, v in votes.items()} for item, votes in compared.items()}
        similarity = lambda a, b: _item_f1(_span_counts(a, b))  # noqa: E731
    elif kind == "boxes":
        parsed = {item: {who: _boxes(v, item, who) for who, v in votes.items()} for item, votes in compared.items()}
        similarity = lambda a, b: _item_f1(_box_counts(a, b))  # noqa: E731
    else:
        raise NodeInputError(tr("Agreement: unknown task kind {kind}; expected one of {kinds}", kind=kind,
                                kinds=", ".join(KINDS)))
    out = {}
    for item, votes in parsed.items():
        disagreement = 1.0 - _pairwise_share(votes, similarity)
        if disagreement > 1e-12:
            out[item] = round(disagreement, 12)
    return out


# ---------------------------------------------------------------- input

def _latest_by_item(annotations: Iterable[Annotation]) -> dict[Hashable, dict[str, Mapping[str, Any]]]:
    by_item: dict[Hashable, dict[str, Mapping[str, Any]]] = {}
    for item, who, value in annotations:
        if value is None:
            continue
        by_item.setdefault(item, {})[str(who)] = value
    return by_item


def _bad(item: Hashable, who: str, what: str) -> NodeInputError:
    return NodeInputError(tr("Agreement: the annotation of item {item} by {labeler} {problem}", item=item,
                             labeler=who, problem=what))


def _class_labels(value: Mapping[str, Any], item: Hashable, who: str, multi: bool) -> frozenset[str]:
    labels = value.get("labels") if isinstance(value, Mapping) else None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise _bad(item, who, tr('is not {"labels": [...]}'))
    if not multi and len(labels) != 1:
        raise _bad(item, who, tr("has {count} labels; a single-label task needs exactly one", count=len(labels)))
    return frozenset(labels)


def _spans(value: Mapping[str, Any], item: Hashable, who: str) -> list[tuple[int, int, str]]:
    spans = value.get("spans") if isinstance(value, Mapping) else None
    if not isinstance(spans, list):
        raise _bad(item, who, tr('is not {"spans": [...]}'))
    try:
        return [(int(s["start"]), int(s["end"]), str(s["label"])) for s in spans]
    except (TypeError, KeyError, ValueError):
        raise _bad(item, who, tr("has a span without start, end and label")) from None


def _boxes(value: Mapping[str, Any], item: Hashable, who: str) -> list[tuple[float, float, float, float, str]]:
    boxes = value.get("boxes") if isinstance(value, Mapping) else None
    if not isinstance(boxes, list):
        raise _bad(item, who, tr('is not {"boxes": [...]}'))
    try:
        return [(float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"]), str(b["label"])) for b in boxes]
    except (TypeError, KeyError, ValueError):
        raise _bad(item, who, tr("has a box without numeric x, y, w, h and a label")) from None


def _label_order(schema: Sequence[str] | None, seen: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(schema or ()))
    return names + sorted(set(seen) - set(names))


# ---------------------------------------------------------------- kappa

def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two equally long label sequences; `None` when undefined (no items, or one label only)."""
    if not a or len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score([str(x) for x in a], [str(x) for x in b]))


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from an items x categories count matrix; rows may have different totals (Gwet 2014).

    Rows with fewer than two ratings carry no agreement information and are dropped. `None` when no row is left or
    all ratings fall in one category (chance agreement 1, kappa 0/0).
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if not len(n):
        return None
    observed = float(np.mean((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))))
    shares = (counts / n[:, None]).mean(axis=0)
    chance = float((shares**2).sum())
    if chance >= 1.0 - 1e-12:
        return None
    return (observed - chance) / (1.0 - chance)


def _kappa(votes: dict[Hashable, dict[str, Hashable]], labelers: list[str]) -> float | None:
    """Cohen for exactly two labelers, Fleiss for more; `votes` maps item -> labeler -> category."""
    if len(labelers) == 2:
        shared = [v for v in votes.values() if len(v) == 2]
        return cohen_kappa([v[labelers[0]] for v in shared], [v[labelers[1]] for v in shared])
    cats = sorted({c for v in votes.values() for c in v.values()}, key=str)
    if not cats:
        return None
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((len(votes), len(cats)))
    for row, v in enumerate(votes.values()):
        for c in v.values():
            counts[row, index[c]] += 1
    return fleiss_kappa(counts)


def _pair_cohen(votes: dict[Hashable, dict[str, Hashable]], a: str, b: str) -> tuple[float | None, int, int]:
    """(kappa, agreeing items, shared items) of labelers a and b."""
    shared = [v for v in votes.values() if a in v and b in v]
    ya, yb = [v[a] for v in shared], [v[b] for v in shared]
    return cohen_kappa(ya, yb), sum(x == y for x, y in zip(ya, yb)), len(shared)


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return math.fsum(defined) / len(defined) if defined else None  # plain floats: np.mean costs µs per call


def _per_labeler(pairs: dict[tuple[str, str], float | None], labelers: list[str]) -> dict[str, float | None]:
    return {who: _mean(v for (a, b), v in pairs.items() if who in (a, b)) for who in labelers}


def _single_label(parsed: dict[Hashable, dict[str, frozenset[str]]], labelers: list[str], names: list[str],
                  notes: list[str]) -> tuple[dict[str, Scores], str]:
    votes = {item: {who: next(iter(labs)) for who, labs in v.items()} for item, v in parsed.items()}
    pair_kappa, pair_agree = {}, {}
    for a, b in itertools.combinations(labelers, 2):
        kappa, agree, shared = _pair_cohen(votes, a, b)
        if shared:
            pair_kappa[(a, b)] = kappa
            pair_agree[(a, b)] = agree / shared
    per_label = {name: _kappa({i: {w: c == name for w, c in v.items()} for i, v in votes.items()}, labelers)
                 for name in names}
    overall = _kappa(votes, labelers)
    if len(labelers) == 2:
        title = N_("Cohen's kappa")
    else:
        title = N_("Fleiss' kappa")
        if len({len(v) for v in votes.values()}) > 1:
            notes.append(tr("Items were labeled by different numbers of people; Fleiss' kappa weighs each item by "
                            "its own count (Gwet 2014), which equals the classic formula when counts are equal."))
    if votes and overall is None:
        notes.append(tr("Every labeler chose the same single label, so kappa is undefined (shown as n/a); the "
                        "labelers agree on every item."))
    kappa = Scores(title, overall, per_label, _per_labeler(pair_kappa, labelers), pair_kappa)
    agreement = Scores(N_("Share of agreeing labeler pairs"), _mean(_pairwise_share(v, _set_agreement)
                                                                     for v in parsed.values()),
                       {}, _per_labeler(pair_agree, labelers), pair_agree)
    return {"kappa": kappa, "agreement": agreement}, "kappa"


def _multi_label(parsed: dict[Hashable, dict[str, frozenset[str]]], labelers: list[str], names: list[str],
                 notes: list[str]) -> tuple[dict[str, Scores], str]:
    def present(name: str) -> dict[Hashable, dict[str, bool]]:
        return {item: {who: name in labs for who, labs in v.items()} for item, v in parsed.items()}

    per_label = {name: _kappa(present(name), labelers) for name in names}
    pair_kappa, pair_agree = {}, {}
    for a, b in itertools.combinations(labelers, 2):
        shared = [v for v in parsed.values() if a in v and b in v]
        if shared:
            pair_kappa[(a, b)] = _mean(_pair_cohen(present(name), a, b)[0] for name in names)
            pair_agree[(a, b)] = sum(v[a] == v[b] for v in shared) / len(shared)
    title = N_("Cohen's kappa per label (mean)") if len(labelers) == 2 else N_("Fleiss' kappa per label (mean)")
    notes.append(tr("Multi-label: kappa is computed for each label as present or absent; the overall figure is the "
                    "mean over labels whose kappa is defined."))
    kappa = Scores(title, _mean(per_label.values()), per_label, _per_labeler(pair_kappa, labelers), pair_kappa)
    agreement = Scores(N_("Share of labeler pairs giving the same labels"),
                       _mean(_pairwise_share(v, lambda x, y: float(x == y)) for v in parsed.values()),
                       {}, _per_labeler(pair_agree, labelers), pair_agree)
    return {"kappa": kappa, "agreement": agreement}, "kappa"


def _set_agreement(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two label sets (1 or 0 for single labels); two empty sets agree."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def _pairwise_share(votes: dict[str, Any], similarity) -> float:
    shares = [similarity(votes[a], votes[b]) for a, b in itertools.combinations(sorted(votes), 2)]
    return math.fsum(shares) / len(shares)


# ---------------------------------------------------------------- spans and boxes
# Pair statistics: for each labeler pair and label, summed counts [n_a, n_b, matches, intersection, union, iou_sum].
_NA, _NB, _MATCH, _INTER, _UNION, _IOUSUM = range(6)
_F1 = ("f1",)
_IOU = ("iou",)
_MEAN_IOU = ("mean_iou",)


def _ratio(counts: np.ndarray, measure: tuple[str]) -> float | None:
    if measure is _F1:
        num, den = 2 * counts[_MATCH], counts[_NA] + counts[_NB]
    elif measure is _IOU:
        num, den = counts[_INTER], counts[_UNION]
    else:
        num, den = counts[_IOUSUM], counts[_MATCH]
    return float(num / den) if den > 0 else None


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _covered(intervals: list[tuple[int, int]]) -> int:
    return sum(e - s for s, e in intervals)


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Length covered by both of two merged interval lists (two-pointer sweep)."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        total += max(0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _span_counts(a: list[tuple[int, int, str]], b: list[tuple[int, int, str]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for label in {s[2] for s in a} | {s[2] for s in b}:
        sa, sb = [s for s in a if s[2] == label], [s for s in b if s[2] == label]
        ma, mb = _merge([s[:2] for s in sa]), _merge([s[:2] for s in sb])
        inter = _overlap(ma, mb)
        matches = sum((Counter(sa) & Counter(sb)).values())
        out[label] = np.array([len(sa), len(sb), matches, inter, _covered(ma) + _covered(mb) - inter, 0.0])
    return out


def box_iou(p: Sequence[float], q: Sequence[float]) -> float:
    """IoU of two (x, y, w, h) boxes; 0 when they do not overlap or both are empty."""
    iw = min(p[0] + p[2], q[0] + q[2]) - max(p[0], q[0])
    ih = min(p[1] + p[3], q[1] + q[3]) - max(p[1], q[1])
    inter = max(0.0, iw) * max(0.0, ih)
    union = p[2] * p[3] + q[2] * q[3] - inter
    return inter / union if union > 0 else 0.0


def _box_counts(a: list[tuple], b: list[tuple]) -> dict[str, np.ndarray]:
    from scipy.optimize import linear_sum_assignment

    out: dict[str, np.ndarray] = {}
    for label in {x[4] for x in a} | {x[4] for x in b}:
        ba, bb = [x for x in a if x[4] == label], [x for x in b if x[4] == label]
        matched: list[float] = []
        if ba and bb:
            iou = np.array([[box_iou(p, q) for q in bb] for p in ba])
            # weight M + IoU with M above any match count: the most matches first, then the highest total IoU
            eligible = np.where(iou >= IOU_MATCH, min(len(ba), len(bb)) + 1 + iou, 0.0)
            rows, cols = linear_sum_assignment(eligible, maximize=True)
            matched = [float(iou[r, c]) for r, c in zip(rows, cols) if iou[r, c] >= IOU_MATCH]
        out[label] = np.array([len(ba), len(bb), len(matched), 0.0, 0.0, sum(matched)])
    return out


def _pair_stats(parsed: dict[Hashable, dict[str, list]], labelers: list[str],
                counter) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    stats: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for a, b in itertools.combinations(labelers, 2):
        per_label: dict[str, np.ndarray] = {}
        shared = False
        for votes in parsed.values():
            if a in votes and b in votes:
                shared = True
                for label, counts in counter(votes[a], votes[b]).items():
                    per_label[label] = per_label.get(label, 0) + counts
        if shared:
            stats[(a, b)] = per_label
    return stats


def _ratio_scores(title: str, stats: dict[tuple[str, str], dict[str, np.ndarray]], names: list[str],
                  measure: tuple[str]) -> Scores:
    """Pooled over labeler pairs for the overall and per-label figures; per labeler: mean over its pairs."""
    zero = np.zeros(6)

    def pooled(label: str | None) -> np.ndarray:
        return sum((c for pair in stats.values() for lab, c in pair.items() if label in (None, lab)), zero)

    pairs = {pair: _ratio(sum(per_label.values(), zero), measure) for pair, per_label in stats.items()}
    labelers = sorted({who for pair in stats for who in pair})
    return Scores(title, _ratio(pooled(None), measure), {n: _ratio(pooled(n), measure) for n in names},
                  _per_labeler(pairs, labelers), pairs)


def _item_f1(counts: dict[str, np.ndarray]) -> float:
    """F1 of one item between two labelers; two labelers who marked nothing agree fully."""
    value = _ratio(sum(counts.values(), np.zeros(6)), _F1)
    return 1.0 if value is None else value


# ---------------------------------------------------------------- conflicts

def _conflicts(raw: dict[Hashable, dict[str, Any]], parsed: dict[Hashable, dict[str, Any]],
               similarity) -> list[Conflict]:
    """Items where some labeler pair disagrees, most disagreeing first (ties: more labelers first, then as given).

    Disagreement = 1 - mean over labeler pairs of the pair's similarity on the item (label-set Jaccard for
    classification, exact-match F1 for spans, match F1 for boxes).
    """
    found = []
    for order, (item, votes) in enumerate(parsed.items()):
        disagreement = 1.0 - _pairwise_share(votes, similarity)
        if disagreement > 1e-12:
            found.append((-disagreement, -len(votes), order,
                          Conflict(item, round(disagreement, 12), {w: raw[item][w] for w in sorted(votes)})))
    return [c for *_, c in sorted(found, key=lambda t: t[:3])]
