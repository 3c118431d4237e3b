"""Labeled-table building and round trips through every export format (write -> read -> equal)."""
from __future__ import annotations

import json
import time

import polars as pl
import pytest
from PIL import Image
from polars.testing import assert_frame_equal

from engine.errors import NodeInputError
from engine.labels import exports as ex

RECORDS = [
    {"item_id": 1, "payload": {"fields": {"amount": 1200.5, "purpose": "car", "status": "open", "term": 12}},
     "value": {"labels": ["approve"]}, "labeler": "amy", "reviewer": "rita", "status": "accepted"},
    {"item_id": 2, "payload": {"fields": {"amount": 300.0, "purpose": "贷款 house", "status": "closed", "term": 24}},
     "value": {"labels": ["decline"]}, "labeler": "bob", "status": "labeled"},
    {"item_id": 3, "payload": {"fields": {"amount": 50.25, "purpose": "a, \"quoted\" one", "status": None, "term": 6}},
     "value": None},
]


def spans(*triples):
    return {"spans": [{"start": s, "end": e, "label": lab} for s, e, lab in triples]}


def boxes(*rows):
    return {"boxes": [{"x": x, "y": y, "w": w, "h": h, "label": lab} for x, y, w, h, lab in rows]}


def no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- the table

def test_record_table_columns_and_types():
    table = ex.labeled_table(ex.items_frame(RECORDS), "record")
    # payload "status" collides with the label status column: kept as status_input
    assert table.columns == ["item_id", "amount", "purpose", "status_input", "term", "label", "labeler", "reviewer",
                             "status"]
    assert table["item_id"].to_list() == ["1", "2", "3"]
    assert table["label"].to_list() == ["approve", "decline", None]
    assert table["status"].to_list() == ["accepted", "labeled", "unlabeled"]  # missing status of item 3 implied
    assert table["reviewer"].to_list() == ["rita", None, None]
    assert table.schema["amount"] == pl.Float64 and table.schema["term"] == pl.Int64
    dropped = ex.labeled_table(ex.items_frame(RECORDS), "record", keep_unlabeled=False)
    assert dropped["item_id"].to_list() == ["1", "2"]


def test_payload_columns_can_come_straight_from_the_input_table():
    items = pl.DataFrame({"item_id": [10, 11], "income": [5.0, 7.5], "label": ["old", "old"],
                          "value": ['{"labels": ["good"]}', None]})
    table = ex.labeled_table(items, "record")
    assert table.columns == ["item_id", "income", "label_input", "label", "labeler", "reviewer", "status"]
    assert table["label"].to_list() == ["good", None]
    assert table["status"].to_list() == ["labeled", "unlabeled"]


def test_missing_columns_and_unknown_kind_are_named():
    with pytest.raises(NodeInputError, match="no column value"):
        ex.labeled_table(pl.DataFrame({"item_id": ["a"]}), "text")
    with pytest.raises(NodeInputError, match=r'record payload must be \{"fields": \{\.\.\.\}\}$'):
        ex.labeled_table(pl.DataFrame({"item_id": ["a"], "value": [None], "payload": ['{"amount": 1}']}), "record")
    with pytest.raises(NodeInputError, match="unknown task kind audio"):
        ex.labeled_table(pl.DataFrame({"item_id": ["a"], "value": [None]}), "audio")


# ---------------------------------------------------------------- Parquet and CSV

def test_record_round_trip_parquet_and_csv(tmp_path):
    table = ex.labeled_table(ex.items_frame(RECORDS), "record")
    ex.write_parquet(table, tmp_path / "labels.parquet")
    assert_frame_equal(ex.read_parquet(tmp_path / "labels.parquet"), table)
    ex.write_csv(table, tmp_path / "labels.csv")
    assert_frame_equal(ex.read_csv(tmp_path / "labels.csv", "record"), table)
    assert no_temp_files(tmp_path)


def test_multi_label_text_round_trip_with_list_column(tmp_path):
    rows = [{"item_id": "c1", "payload": {"text": "Card blocked, fee charged twice"},
             "value": {"labels": ["card", "fee"]}, "labeler": "amy"},
            {"item_id": "c2", "payload": {"text": "Where is my loan?"}, "value": {"labels": ["loan"]},
             "labeler": "bob"},
            {"item_id": "c3", "payload": {"text": "line one\nline two"}, "value": None}]
    table = ex.labeled_table(ex.items_frame(rows), "text", multi=True)
    assert table.schema["labels"] == pl.List(pl.String)
    assert table["labels"].to_list() == [["card", "fee"], ["loan"], None]
    ex.write_csv(table, tmp_path / "t.csv")
    # lists are JSON text inside the CSV
    assert '"[""card"",""fee""]"' in (tmp_path / "t.csv").read_text("utf-8")
    assert_frame_equal(ex.read_csv(tmp_path / "t.csv", "text", multi=True), table)
    ex.export_labels(table, tmp_path / "t.parquet", "parquet", "text")
    assert_frame_equal(ex.read_parquet(tmp_path / "t.parquet"), table)


def test_single_label_image_round_trip(tmp_path):
    rows = [{"item_id": "p1", "payload": {"image": "scans/p1.png"}, "value": {"labels": ["invoice"]}},
            {"item_id": "p2", "payload": {"image": "scans/p2.png"}, "value": {"labels": ["id card"]}}]
    table = ex.labeled_table(ex.items_frame(rows), "image")
    assert table.select("image", "label").rows() == [("scans/p1.png", "invoice"), ("scans/p2.png", "id card")]
    ex.export_labels(table, tmp_path / "i.csv", "csv", "image")
    assert_frame_equal(ex.read_csv(tmp_path / "i.csv", "image"), table)


# ---------------------------------------------------------------- JSONL spans

SPAN_ROWS = [
    {"item_id": "s1", "payload": {"text": "John Smith paid 500 USD from 12-34"},
     "value": spans((0, 10, "PER"), (16, 23, "AMOUNT"), (29, 34, "ACCOUNT")), "labeler": "amy", "status": "accepted"},
    {"item_id": "s2", "payload": {"text": "Nothing to see"}, "value": spans(), "labeler": "bob"},
    {"item_id": "s3", "payload": {"text": "Not labeled yet"}, "value": None},
]


def test_spans_table_holds_compact_json():
    table = ex.labeled_table(ex.items_frame(SPAN_ROWS), "spans")
    assert table["spans"].to_list() == [
        ('[{"start":0,"end":10,"label":"PER"},{"start":16,"end":23,"label":"AMOUNT"},'
         '{"start":29,"end":34,"label":"ACCOUNT"}]'), "[]", None]


def test_spans_jsonl_round_trip_and_format(tmp_path):
    table = ex.labeled_table(ex.items_frame(SPAN_ROWS), "spans")
    ex.export_labels(table, tmp_path / "spans.jsonl", "jsonl", "spans")
    lines = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text("utf-8").splitlines()]
    assert len(lines) == 2  # the unlabeled item is not exported; the labeled-empty one is (a negative example)
    assert lines[0]["id"] == "s1" and lines[0]["text"] == "John Smith paid 500 USD from 12-34"
    assert lines[0]["spans"][1] == {"start": 16, "end": 23, "label": "AMOUNT"}
    assert lines[0]["text"][16:23] == "500 USD"
    assert lines[0]["meta"] == {"labeler": "amy", "reviewer": None, "status": "accepted"}
    assert lines[1]["spans"] == []
    back = ex.read_spans_jsonl(tmp_path / "spans.jsonl")
    assert_frame_equal(back, table.filter(pl.col("spans").is_not_null()))
    assert no_temp_files(tmp_path)


def test_spans_jsonl_from_another_tool_without_meta(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"id": 7, "text": "Pay Anna", "spans": [{"start": 4, "end": 8, "label": "PER"}]}\n', "utf-8")
    back = ex.read_spans_jsonl(path)
    assert back.row(0) == ("7", "Pay Anna", '[{"start":4,"end":8,"label":"PER"}]', None, None, None)


# ---------------------------------------------------------------- COCO boxes

@pytest.fixture()
def images(tmp_path):
    paths = []
    for name, size in (("a.png", (64, 48)), ("b.jpg", (30, 20)), ("c.png", (10, 10))):
        path = tmp_path / name
        Image.new("RGB", size, (200, 10, 10)).save(path)
        paths.append(str(path))
    return paths


def test_coco_round_trip_with_sizes_read_by_pillow(tmp_path, images):
    rows = [{"item_id": "a", "payload": {"image": images[0]},
             "value": boxes((1, 2, 10, 20.5, "signature"), (30, 5, 8, 8, "stamp"))},
            {"item_id": "b", "payload": {"image": images[1]}, "value": boxes()},
            {"item_id": "c", "payload": {"image": images[2]}, "value": None}]
    table = ex.labeled_table(ex.items_frame(rows), "boxes")
    out = ex.export_labels(table, tmp_path / "coco.json", "coco", "boxes", labels=["stamp", "signature"])
    coco = json.loads(out.read_text("utf-8"))
    assert [(i["id"], i["width"], i["height"]) for i in coco["images"]] == [(1, 64, 48), (2, 30, 20)]
    assert coco["categories"] == [{"id": 1, "name": "stamp", "supercategory": ""},
                                  {"id": 2, "name": "signature", "supercategory": ""}]
    assert coco["annotations"] == [
        {"id": 1, "image_id": 1, "category_id": 2, "bbox": [1.0, 2.0, 10.0, 20.5], "area": 205.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30.0, 5.0, 8.0, 8.0], "area": 64.0, "iscrowd": 0}]
    back = ex.read_coco(out)
    labeled = table.filter(pl.col("boxes").is_not_null())
    assert_frame_equal(back.select("item_id", "image", "boxes"), labeled.select("item_id", "image", "boxes"))
    assert back.select("width", "height").rows() == [(64, 48), (30, 20)]


def test_coco_uses_stored_sizes_and_names_an_unreadable_image(tmp_path):
    rows = [{"item_id": "x", "payload": {"image": str(tmp_path / "gone.png")}, "value": boxes((0, 0, 5, 5, "car"))}]
    table = ex.labeled_table(ex.items_frame(rows), "boxes")
    with pytest.raises(NodeInputError, match="gone.png"):
        ex.write_coco(table, tmp_path / "coco.json")
    assert not (tmp_path / "coco.json").exists()
    ex.write_coco(table.with_columns(width=pl.lit(800), height=pl.lit(600)), tmp_path / "coco.json")
    coco = json.loads((tmp_path / "coco.json").read_text("utf-8"))
    assert (coco["images"][0]["width"], coco["images"][0]["height"]) == (800, 600)
    assert coco["categories"] == [{"id": 1, "name": "car", "supercategory": ""}]


def test_formats_are_checked_against_the_task_kind(tmp_path):
    table = ex.labeled_table(ex.items_frame(SPAN_ROWS), "spans")
    with pytest.raises(NodeInputError, match="coco format is for boxes tasks"):
        ex.export_labels(table, tmp_path / "x.json", "coco", "spans")
    with pytest.raises(NodeInputError, match="unknown format xml"):
        ex.export_labels(table, tmp_path / "x.xml", "xml", "spans")
    with pytest.raises(NodeInputError, match="column spans is missing"):
        ex.write_spans_jsonl(table.drop("spans"), tmp_path / "x.jsonl")
    with pytest.raises(NodeInputError, match="cannot be read"):
        (tmp_path / "bad.json").write_text("{", "utf-8")
        ex.read_coco(tmp_path / "bad.json")


# ---------------------------------------------------------------- 100k labels

def _items_100k(kind: str) -> pl.DataFrame:
    """100,000 stored items built column-wise (value and payload as the JSON text storage keeps)."""
    n = 100_000
    ids = pl.int_range(0, n, eager=True)
    frame = pl.DataFrame({"item_id": ids.cast(pl.String), "k": ids})
    if kind == "record":
        value = pl.concat_str(pl.lit('{"labels":["'), pl.when(pl.col("k") % 3 == 0).then(pl.lit("decline"))
                              .otherwise(pl.lit("approve")), pl.lit('"]}'))
        extra = [(pl.col("k") * 1.5).alias("amount"), pl.format("purpose {}", pl.col("k") % 7).alias("purpose")]
    elif kind == "spans":
        value = pl.concat_str(pl.lit('{"spans":[{"start":0,"end":4,"label":"PER"},{"start":'),
                              (pl.col("k") % 5 + 5).cast(pl.String), pl.lit(',"end":20,"label":"AMOUNT"}]}'))
        extra = [pl.format("Anna paid {} USD on account 12-{}", pl.col("k"), pl.col("k") % 97).alias("text")]
    else:
        value = pl.concat_str(pl.lit('{"boxes":[{"x":'), (pl.col("k") % 50).cast(pl.String),
                              pl.lit(',"y":3,"w":10.5,"h":7,"label":"stamp"}]}'))
        extra = [pl.format("scans/{}.png", pl.col("k")).alias("image"), pl.lit(640).alias("width"),
                 pl.lit(480).alias("height")]
    labeler = pl.when(pl.col("k") % 2 == 0).then(pl.lit("amy")).otherwise(pl.lit("bob")).alias("labeler")
    value = pl.when(pl.col("k") % 10 == 9).then(None).otherwise(value).alias("value")  # 10% unlabeled
    return frame.select("item_id", *extra, value, labeler)


def test_100k_labels_export_and_round_trip(tmp_path, capsys):
    """Not timed as an assertion; the times are printed (pytest -s) and the issue asks for <= 5 s per export."""
    timings = {}
    items = _items_100k("record")
    start = time.perf_counter()
    table = ex.labeled_table(items, "record")
    timings["table (record)"] = time.perf_counter() - start
    for fmt in ("parquet", "csv"):
        path = tmp_path / f"labels.{fmt}"
        start = time.perf_counter()
        ex.export_labels(table, path, fmt, "record")
        timings[fmt] = time.perf_counter() - start
        back = ex.read_parquet(path) if fmt == "parquet" else ex.read_csv(path, "record")
        assert_frame_equal(back, table)
    assert table.height == 100_000 and table["label"].null_count() == 10_000
    counts = table["label"].value_counts().sort("label", nulls_last=True).rows()
    assert counts == [("approve", 60_000), ("decline", 30_000), (None, 10_000)]

    spans_table = ex.labeled_table(_items_100k("spans"), "spans")
    start = time.perf_counter()
    ex.export_labels(spans_table, tmp_path / "spans.jsonl", "jsonl", "spans")
    timings["jsonl spans"] = time.perf_counter() - start
    back = ex.read_spans_jsonl(tmp_path / "spans.jsonl")
    assert_frame_equal(back, spans_table.filter(pl.col("spans").is_not_null()))

    boxes_table = ex.labeled_table(_items_100k("boxes"), "boxes")
    start = time.perf_counter()
    ex.export_labels(boxes_table, tmp_path / "coco.json", "coco", "boxes")
    timings["coco boxes"] = time.perf_counter() - start
    back = ex.read_coco(tmp_path / "coco.json")
    labeled = boxes_table.filter(pl.col("boxes").is_not_null())
    assert_frame_equal(back.select("item_id", "image", "boxes"), labeled.select("item_id", "image", "boxes"))
    with capsys.disabled():
        print("\n100k labels: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


def test_rows_shaped_like_the_label_store_are_accepted():
    # LabelStore.labeled_rows gives position/external_id instead of item_id
    rows = [{"position": 0, "external_id": "APP-17", "payload": {"text": "ok"}, "value": {"labels": ["pos"]},
             "labeler": "amy", "status": "submitted"},
            {"position": 1, "external_id": None, "payload": {"text": "bad"}, "value": {"labels": ["neg"]},
             "labeler": "bob", "status": "accepted"}]
    table = ex.labeled_table(ex.items_frame(rows), "text")
    assert table.select("item_id", "text", "label", "labeler", "status").rows() == [
        ("APP-17", "ok", "pos", "amy", "submitted"), ("1", "bad", "neg", "bob", "accepted")]
