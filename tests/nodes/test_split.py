"""Split: sizes, partition, stratification, seeds and input errors."""
from __future__ import annotations

import math
import tempfile

import polars as pl
import pytest

from engine.testing import NodeFailed, run_node
from nodes.features.split import Split

@pytest.fixture(autouse=True)
def _workdirs_in_tmp_path(tmp_path, monkeypatch):
    """run_node makes a work folder per call; keep those under this test's tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

def table(n: int, classes: list | None = None) -> pl.DataFrame:
    data = {"row_id": list(range(n)), "x": [i * 0.5 for i in range(n)]}
    if classes is not None:
        data["y"] = classes
    return pl.DataFrame(data)

def split(tbl: pl.DataFrame, run_seed: int = 42, **settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    out = run_node(Split, inputs={"table": tbl}, settings=settings, seed=run_seed)
    return out["train"], out["test"]

def held_out_ids(tbl: pl.DataFrame, run_seed: int = 42, **settings) -> list[int]:
    return split(tbl, run_seed, **settings)[1]["row_id"].to_list()

def split_fails(tbl: pl.DataFrame, **settings) -> NodeFailed:
    with pytest.raises(NodeFailed) as info:
        split(tbl, **settings)
    assert info.value.input_error, f"expected a user-facing input error, got: {info.value}"
    return info.value

@pytest.mark.parametrize(("n", "fraction"), [(100, 0.25), (10, 0.3), (7, 0.5), (1000, 0.1), (2, 0.5), (33, 0.9)])
def test_sizes_match_test_fraction(n, fraction):
    train, test = split(table(n), test_fraction=fraction)
    assert train.height + test.height == n
    assert abs(test.height - n * fraction) < 1
    assert train.height >= 1 and test.height >= 1

def test_default_fraction_is_a_quarter():
    train, test = split(table(100))
    assert (train.height, test.height) == (75, 25)

def test_parts_are_disjoint_complete_and_keep_order_and_columns():
    tbl = table(200, [i % 2 for i in range(200)])
    train, test = split(tbl, test_fraction=0.3)
    tr_ids, te_ids = train["row_id"].to_list(), test["row_id"].to_list()
    assert not set(tr_ids) & set(te_ids)
    assert sorted(tr_ids + te_ids) == list(range(200))
    assert tr_ids == sorted(tr_ids) and te_ids == sorted(te_ids)
    assert train.schema == tbl.schema == test.schema
    # rows are whole rows, not reshuffled columns
    assert train.join(tbl, on="row_id", how="anti").height == 0
    assert pl.concat([train, test]).sort("row_id").equals(tbl)

@pytest.mark.parametrize(("counts", "fraction"), [
    ({"good": 950, "bad": 50}, 0.25),
    ({"a": 60, "b": 30, "c": 10}, 0.2),
    ({0: 17, 1: 5, 2: 3}, 0.4),
    ({"x": 7, "y": 2}, 0.3),
])
def test_stratified_split_keeps_class_shares(counts, fraction):
    labels = [c for c, k in counts.items() for _ in range(k)]
    n = len(labels)
    tbl = table(n, labels)
    train, test = split(tbl, test_fraction=fraction, stratify_by="y")
    assert train.height + test.height == n
    assert abs(test.height - n * fraction) < 1
    test_counts = dict(test["y"].value_counts().iter_rows())
    train_counts = dict(train["y"].value_counts().iter_rows())
    for cls, total in counts.items():
        in_test = test_counts.get(cls, 0)
        assert abs(in_test - total * fraction) <= 1, (cls, in_test, total * fraction)
        assert in_test + train_counts.get(cls, 0) == total

def test_stratify_by_string_column_with_unicode_classes():
    labels = ["违约"] * 20 + ["正常"] * 80
    _, test = split(table(100, labels), stratify_by="y", test_fraction=0.25)
    assert dict(test["y"].value_counts().iter_rows()) == {"违约": 5, "正常": 20}

def test_same_seed_gives_same_split():
    tbl = table(100)
    assert held_out_ids(tbl, seed=7) == held_out_ids(tbl, seed=7)
    assert held_out_ids(tbl, run_seed=3) == held_out_ids(tbl, run_seed=3)

def test_different_seed_gives_different_split():
    tbl = table(100)
    assert held_out_ids(tbl, seed=1) != held_out_ids(tbl, seed=2)

def test_seed_setting_overrides_the_run_seed():
    tbl = table(100)
    assert held_out_ids(tbl, run_seed=1, seed=5) == held_out_ids(tbl, run_seed=2, seed=5)

def test_seed_none_uses_the_run_seed():
    tbl = table(100)
    assert held_out_ids(tbl, run_seed=1, seed=None) == held_out_ids(tbl, run_seed=1)
    assert held_out_ids(tbl, run_seed=1) != held_out_ids(tbl, run_seed=2)

def test_stratified_split_is_seeded_too():
    tbl = table(100, [i % 4 for i in range(100)])
    assert held_out_ids(tbl, run_seed=1, stratify_by="y") == held_out_ids(tbl, run_seed=1, stratify_by="y")
    assert held_out_ids(tbl, run_seed=1, stratify_by="y") != held_out_ids(tbl, run_seed=2, stratify_by="y")

def test_missing_stratify_column_lists_the_columns():
    message = str(split_fails(table(10, [0, 1] * 5), stratify_by="label"))
    assert "'label'" in message
    assert "row_id, x, y" in message

def test_class_with_a_single_member_under_stratification():
    message = str(split_fails(table(10, [0] * 9 + [1]), stratify_by="y"))
    assert "1 member" in message

def test_too_few_test_rows_for_the_number_of_classes():
    split_fails(table(4, [0, 0, 1, 1]), stratify_by="y", test_fraction=0.25)

@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_rows_fails(n):
    message = str(split_fails(table(n)))
    assert "at least 2 rows" in message and f"has {n}" in message

def test_nulls_in_stratify_column_fail_clearly():
    message = str(split_fails(table(6, [0, None, 1, 1, None, 0]), stratify_by="y"))
    assert "'y'" in message
    assert "2 missing values" in message

@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_outside_zero_one_is_rejected(fraction):
    with pytest.raises(NodeFailed, match="test_fraction"):
        split(table(10), test_fraction=fraction)

def test_unknown_setting_is_rejected():
    with pytest.raises(NodeFailed, match="stratify"):
        split(table(10), stratify="y")

def test_fraction_rounds_test_size_up():
    """scikit-learn gives the test part ceil(n * fraction) rows; pin it so a library change is noticed."""
    for n, fraction in [(10, 0.25), (7, 0.5), (9, 0.1)]:
        _, test = split(table(n), test_fraction=fraction)
        assert test.height == math.ceil(n * fraction)
