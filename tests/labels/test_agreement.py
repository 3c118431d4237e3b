"""Agreement figures against values worked out by hand (the arithmetic is in the comments)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import NodeInputError
from engine.labels.agreement import box_iou, compute_agreement, fleiss_kappa


def single(rows: dict[str, str], labelers: list[str]) -> list[tuple]:
    """{item: "abc"} -> one single-label annotation per labeler, the k-th letter by the k-th labeler."""
    return [(item, who, {"labels": [letters[k]]}) for item, letters in rows.items()
            for k, who in enumerate(labelers) if k < len(letters)]


def spans(*triples):
    return {"spans": [{"start": s, "end": e, "label": lab} for s, e, lab in triples]}


def boxes(*rows):
    return {"boxes": [{"x": x, "y": y, "w": w, "h": h, "label": lab} for x, y, w, h, lab in rows]}


# ---------------------------------------------------------------- Cohen (two labelers)

def test_cohen_kappa_two_labelers():
    # A: y y y n n n n n ; B: y y n n n n n y
    # agree on items 0,1,3,4,5,6 -> Po = 6/8; each says "y" 3/8 times -> Pe = (3/8)^2 + (5/8)^2 = 34/64
    # kappa = (48/64 - 34/64) / (30/64) = 14/30 = 7/15
    a, b = "yyynnnnn", "yynnnnny"
    ann = single({f"i{k}": a[k] + b[k] for k in range(8)}, ["A", "B"])
    report = compute_agreement(ann, "record", labels=["y", "n"])
    kappa = report.measures["kappa"]
    assert report.primary == "kappa" and kappa.title == "Cohen's kappa"
    assert kappa.overall == pytest.approx(7 / 15)
    # two categories: "y or not" is the same split as the whole task, so both per-label figures are 7/15
    assert kappa.per_label == {"y": pytest.approx(7 / 15), "n": pytest.approx(7 / 15)}
    assert kappa.pairs == {("A", "B"): pytest.approx(7 / 15)}
    assert kappa.per_labeler == {"A": pytest.approx(7 / 15), "B": pytest.approx(7 / 15)}
    assert report.measures["agreement"].overall == pytest.approx(6 / 8)
    assert report.items_compared == 8 and report.labelers == ["A", "B"]
    # the two disagreeing items, in the order given (equal disagreement)
    assert [(c.item_id, c.disagreement) for c in report.conflicts] == [("i2", 1.0), ("i7", 1.0)]
    assert report.conflicts[0].values == {"A": {"labels": ["y"]}, "B": {"labels": ["n"]}}


def test_latest_annotation_of_a_labeler_wins_and_skips_are_ignored():
    ann = [("i1", "A", {"labels": ["n"]}), ("i1", "B", {"labels": ["y"]}), ("i1", "A", {"labels": ["y"]}),
           ("i2", "A", {"labels": ["n"]}), ("i2", "B", {"labels": ["n"]}),
           ("i3", "A", None), ("i3", "B", {"labels": ["y"]})]
    report = compute_agreement(ann, "text")
    # i1 is now y/y, i2 n/n, i3 has only B (A skipped): perfect agreement over 2 items with two labels used
    assert report.items_compared == 2
    assert report.headline.overall == pytest.approx(1.0)
    assert report.conflicts == []


# ---------------------------------------------------------------- Fleiss (three labelers)

FLEISS_ROWS = {"i0": "aaa", "i1": "aab", "i2": "bbc", "i3": "ccc", "i4": "abc"}


def test_fleiss_kappa_three_labelers_per_label_and_per_labeler():
    report = compute_agreement(single(FLEISS_ROWS, ["u1", "u2", "u3"]), "text", labels=["a", "b", "c"])
    kappa = report.measures["kappa"]
    assert kappa.title == "Fleiss' kappa"
    # P_i = sum n_ij(n_ij - 1) / (3*2): 1, 1/3, 1/3, 1, 0 -> P = 8/15
    # p_a = 6/15, p_b = 4/15, p_c = 5/15 -> Pe = (36 + 16 + 25)/225 = 77/225
    # kappa = (120/225 - 77/225) / (148/225) = 43/148
    assert kappa.overall == pytest.approx(43 / 148)
    # per category: 1 - sum n_ij(3 - n_ij) / (N*3*2*p_j*q_j)
    # a: n = 3,2,0,0,1 -> sum 0+2+0+0+2 = 4; 30*(6/15)(9/15) = 7.2 -> 1 - 4/7.2 = 4/9
    # b: n = 0,1,2,0,1 -> 6; 30*(4/15)(11/15) = 88/15 -> 1 - 90/88 = -1/44
    # c: n = 0,0,1,3,1 -> 4; 30*(5/15)(10/15) = 20/3 -> 1 - 12/20 = 2/5
    assert kappa.per_label == {"a": pytest.approx(4 / 9), "b": pytest.approx(-1 / 44), "c": pytest.approx(2 / 5)}
    # pairwise Cohen: u1 = a a b c a, u2 = a a b c b, u3 = a b c c c
    # u1-u2: Po 4/5, marginals (3,1,1) and (2,2,1): Pe = (6+2+1)/25 = 9/25 -> (20-9)/(25-9) = 11/16
    # u1-u3: Po 2/5, (3,1,1) and (1,1,3): Pe = (3+1+3)/25 = 7/25 -> (10-7)/(25-7) = 1/6
    # u2-u3: Po 2/5, (2,2,1) and (1,1,3): Pe = (2+2+3)/25 = 7/25 -> 1/6
    assert kappa.pairs == {("u1", "u2"): pytest.approx(11 / 16), ("u1", "u3"): pytest.approx(1 / 6),
                           ("u2", "u3"): pytest.approx(1 / 6)}
    assert kappa.per_labeler == {"u1": pytest.approx((11 / 16 + 1 / 6) / 2),
                                 "u2": pytest.approx((11 / 16 + 1 / 6) / 2), "u3": pytest.approx(1 / 6)}
    assert report.measures["agreement"].overall == pytest.approx(8 / 15)
    # i4 (a,b,c): no pair agrees; i1 and i2: 2 of 3 pairs disagree
    assert [(c.item_id, round(c.disagreement, 9)) for c in report.conflicts] == [
        ("i4", 1.0), ("i1", round(2 / 3, 9)), ("i2", round(2 / 3, 9))]


def test_fleiss_kappa_with_unequal_numbers_of_labelers():
    rows = {**FLEISS_ROWS, "i5": "aa", "i6": "b"}  # i5 labeled by two people, i6 by one (left out)
    report = compute_agreement(single(rows, ["u1", "u2", "u3"]), "text")
    # Gwet (2014): items with >= 2 labels: 6. Pa = (8/3 + 1)/6 = 11/18.
    # mean per-item shares: a = (1 + 2/3 + 0 + 0 + 1/3 + 1)/6 = 1/2, b = (0 + 1/3 + 2/3 + 0 + 1/3 + 0)/6 = 2/9,
    # c = (0 + 0 + 1/3 + 1 + 1/3 + 0)/6 = 5/18 -> Pe = (81 + 16 + 25)/324 = 61/162
    # kappa = (99/162 - 61/162) / (101/162) = 38/101
    assert report.items_compared == 6
    assert report.headline.overall == pytest.approx(38 / 101)
    assert any("Gwet" in note for note in report.notes)


def test_fleiss_kappa_matches_the_published_worked_example():
    # Fleiss (1971) style example, 10 subjects x 14 raters x 5 categories, as worked on Wikipedia:
    # P = 0.378, Pe = 0.213, kappa = 0.210
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(counts) == pytest.approx(0.210, abs=5e-4)


# ---------------------------------------------------------------- degenerate cases

@pytest.mark.parametrize("labelers", [["A", "B"], ["A", "B", "C"]])
def test_all_agree_gives_kappa_one(labelers):
    rows = {"i1": "y" * len(labelers), "i2": "n" * len(labelers), "i3": "y" * len(labelers)}
    report = compute_agreement(single(rows, labelers), "image")
    assert report.headline.overall == pytest.approx(1.0)
    assert report.headline.per_label == {"n": pytest.approx(1.0), "y": pytest.approx(1.0)}
    assert report.conflicts == []


@pytest.mark.parametrize("labelers", [["A", "B"], ["A", "B", "C"]])
def test_one_label_only_gives_undefined_kappa_but_full_agreement(labelers):
    # Everyone chose "approve" everywhere: chance agreement is 1, kappa = 0/0. We return None ("n/a") rather than
    # a number, because kappa measures nothing here; the share of agreeing pairs (1.0) says they agree.
    rows = {f"i{k}": "a" * len(labelers) for k in range(4)}
    report = compute_agreement(single(rows, labelers), "record", labels=["a", "r"])
    assert report.headline.overall is None
    assert report.headline.per_label == {"a": None, "r": None}
    assert set(report.headline.per_labeler.values()) == {None}
    assert report.measures["agreement"].overall == 1.0
    assert any("undefined" in note for note in report.notes)


def test_no_item_with_two_labelers():
    ann = [("i1", "A", {"labels": ["y"]}), ("i2", "B", {"labels": ["n"]})]
    report = compute_agreement(ann, "text")
    assert report.items_compared == 0 and report.labelers == []
    assert report.headline.overall is None and report.conflicts == []
    assert report.notes


def test_bad_annotations_name_item_and_labeler():
    with pytest.raises(NodeInputError, match=r"item i1 by bob has 2 labels"):
        compute_agreement([("i1", "bob", {"labels": ["a", "b"]}), ("i1", "amy", {"labels": ["a"]})], "text")
    with pytest.raises(NodeInputError, match=r"item i1 by amy has a span without"):
        compute_agreement([("i1", "amy", {"spans": [{"start": 1}]}), ("i1", "bob", spans((0, 2, "P")))], "spans")
    with pytest.raises(NodeInputError, match=r'item 4 by amy is not \{"labels": \[\.\.\.\]\}$'):
        compute_agreement([(4, "amy", {"label": "a"}), (4, "bob", {"labels": ["a"]})], "record")
    with pytest.raises(NodeInputError, match="unknown task kind"):
        compute_agreement([], "video")


# ---------------------------------------------------------------- multi-label

def test_multi_label_per_label_binary_kappa():
    # A: {x} {x,y} {x} {y}; B: {x} {x} {x,y} {y}
    # x: A 1 1 1 0, B 1 1 1 0 -> kappa 1
    # y: A 0 1 0 1, B 0 0 1 1 -> Po 1/2, both say yes half the time, Pe 1/2 -> kappa 0
    # z: never used -> undefined (None), left out of the mean -> overall (1 + 0)/2
    sets_a, sets_b = [["x"], ["x", "y"], ["x"], ["y"]], [["x"], ["x"], ["x", "y"], ["y"]]
    ann = [(k, "A", {"labels": s}) for k, s in enumerate(sets_a)] + \
          [(k, "B", {"labels": s}) for k, s in enumerate(sets_b)]
    report = compute_agreement(ann, "text", multi=True, labels=["x", "y", "z"])
    kappa = report.headline
    assert report.multi and kappa.per_label == {"x": pytest.approx(1.0), "y": pytest.approx(0.0), "z": None}
    assert kappa.overall == pytest.approx(0.5)
    assert kappa.pairs == {("A", "B"): pytest.approx(0.5)}
    assert report.measures["agreement"].overall == pytest.approx(0.5)  # same label set on items 0 and 3
    # items 1 and 2: Jaccard {x,y} vs {x} = 1/2 -> disagreement 1/2
    assert [(c.item_id, c.disagreement) for c in report.conflicts] == [(1, 0.5), (2, 0.5)]


# ---------------------------------------------------------------- spans

def test_span_f1_and_character_iou_per_label():
    ann = [("t1", "A", spans((0, 5, "PER"), (10, 15, "AMT"))), ("t1", "B", spans((0, 5, "PER"), (10, 14, "AMT"))),
           ("t2", "A", spans((3, 8, "ACC"))), ("t2", "B", spans((3, 8, "ACC"), (20, 25, "PER")))]
    report = compute_agreement(ann, "spans", labels=["PER", "AMT", "ACC", "IBAN"])
    f1, iou = report.measures["span_f1"], report.measures["char_iou"]
    assert report.primary == "span_f1"
    # exact matches: PER 1 of (1 + 2) -> 2/3; AMT 0 of (1 + 1) -> 0; ACC 1 of (1 + 1) -> 1; all: 2*2/(3 + 4) = 4/7
    assert f1.per_label == {"PER": pytest.approx(2 / 3), "AMT": 0.0, "ACC": 1.0, "IBAN": None}
    assert f1.overall == pytest.approx(4 / 7)
    # characters: PER inter 5 (t1) + 0 (t2), union 5 + 5 -> 1/2; AMT 4/5; ACC 5/5; all (5+0+4+5)/(5+5+5+5) = 0.7
    assert iou.per_label == {"PER": pytest.approx(0.5), "AMT": pytest.approx(0.8), "ACC": 1.0, "IBAN": None}
    assert iou.overall == pytest.approx(0.7)
    # per item F1: t1 1 match of 2 + 2 -> 1/2; t2 1 of 1 + 2 -> 2/3
    assert [(c.item_id, round(c.disagreement, 9)) for c in report.conflicts] == [("t1", 0.5), ("t2", round(1 / 3, 9))]


def test_overlapping_spans_of_one_labeler_are_merged_for_iou():
    ann = [("t", "A", spans((0, 10, "PER"), (5, 15, "PER"))), ("t", "B", spans((0, 15, "PER")))]
    report = compute_agreement(ann, "spans")
    assert report.measures["char_iou"].overall == pytest.approx(1.0)  # both cover characters 0-14
    assert report.measures["span_f1"].overall == 0.0  # no span is exactly the same


def test_span_agreement_per_labeler_is_the_mean_over_pairs():
    ann = [("s", "A", spans((0, 4, "P"))), ("s", "B", spans((0, 4, "P"))), ("s", "C", spans((0, 3, "P")))]
    f1 = compute_agreement(ann, "spans").measures["span_f1"]
    # pairs: A-B 1, A-C 0, B-C 0; pooled: 2*1 / (2+2+2) = 1/3
    assert f1.pairs == {("A", "B"): 1.0, ("A", "C"): 0.0, ("B", "C"): 0.0}
    assert f1.per_labeler == {"A": 0.5, "B": 0.5, "C": 0.0}
    assert f1.overall == pytest.approx(1 / 3)


# ---------------------------------------------------------------- boxes

def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 8)) == pytest.approx(0.8)
    assert box_iou((20, 20, 10, 10), (25, 20, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 1, 1), (5, 5, 1, 1)) == 0.0


def test_box_match_f1_and_mean_iou_per_label():
    ann = [("img", "A", boxes((0, 0, 10, 10, "car"), (20, 20, 10, 10, "car"), (50, 50, 4, 4, "person"))),
           ("img", "B", boxes((0, 0, 10, 8, "car"), (25, 20, 10, 10, "car"), (50, 50, 4, 4, "person")))]
    report = compute_agreement(ann, "boxes")
    f1, iou = report.measures["box_f1"], report.measures["box_iou"]
    # car: IoU 0.8 (match) and 1/3 (no match) -> F1 2*1/(2+2) = 1/2, mean IoU 0.8; person: identical -> 1, 1
    # all: 2 matches of 3 + 3 boxes -> 2/3; mean IoU (0.8 + 1)/2 = 0.9
    assert f1.per_label == {"car": pytest.approx(0.5), "person": pytest.approx(1.0)}
    assert iou.per_label == {"car": pytest.approx(0.8), "person": pytest.approx(1.0)}
    assert f1.overall == pytest.approx(2 / 3) and iou.overall == pytest.approx(0.9)
    assert [(c.item_id, round(c.disagreement, 9)) for c in report.conflicts] == [("img", round(1 / 3, 9))]


def test_boxes_are_paired_optimally_not_greedily():
    # 1-D along x (all y=0, h=10). B1=[5,15), B2=[8,18); A1=[5,16), A2=[1,13).
    # IoU A1-B1 = 10/11, A1-B2 = 8/13, A2-B1 = 8/14, A2-B2 = 5/17 (< 0.5).
    # Greedy (best IoU first) takes A1-B1 and leaves A2 unmatched: 1 match. Optimal: A1-B2 + A2-B1: 2 matches.
    ann = [("img", "A", boxes((5, 0, 11, 10, "car"), (1, 0, 12, 10, "car"))),
           ("img", "B", boxes((5, 0, 10, 10, "car"), (8, 0, 10, 10, "car")))]
    report = compute_agreement(ann, "boxes")
    assert report.measures["box_f1"].overall == pytest.approx(1.0)
    assert report.measures["box_iou"].overall == pytest.approx((8 / 13 + 8 / 14) / 2)  # = 54/91


def test_report_is_json_serialisable():
    report = compute_agreement(single(FLEISS_ROWS, ["u1", "u2", "u3"]), "text")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["primary"] == "kappa"
    assert data["measures"]["kappa"]["overall"] == pytest.approx(43 / 148)
    assert data["conflicts"][0]["item_id"] == "i4"


@pytest.mark.parametrize("kind", ["text", "spans", "boxes"])
def test_item_disagreements_match_the_reports_conflicts(kind):
    """The review queue's fast ordering gives each item the disagreement the full report's conflicts give it."""
    from engine.labels.agreement import item_disagreements

    values = {
        "text": [{"labels": ["fees"]}, {"labels": ["fraud"]}, {"labels": ["fees"]}],
        "spans": [{"spans": [{"start": 0, "end": 4, "label": "P"}]}, {"spans": [{"start": 0, "end": 5, "label": "P"}]},
                  {"spans": []}],
        "boxes": [{"boxes": [{"x": 0, "y": 0, "w": 10, "h": 10, "label": "sig"}]},
                  {"boxes": [{"x": 1, "y": 1, "w": 10, "h": 10, "label": "sig"}]},
                  {"boxes": [{"x": 50, "y": 50, "w": 5, "h": 5, "label": "sig"}]}],
    }[kind]
    triples = [(item, who, values[(item + i) % 3]) for item in range(6) for i, who in enumerate(["a", "b", "c"][:2 + item % 2])]
    report = compute_agreement(triples, kind)
    fast = item_disagreements(triples, kind)
    assert fast == {c.item_id: c.disagreement for c in report.conflicts}
    assert fast  # the fixture has disagreeing items
