"""The Label node on real data: a record task on the sample credit applications, a spans task on complaint texts, an
image boxes task on generated PNGs, pre-labels from a real LightGBM + Predict run, every export format, the bad
inputs, and the canvas loop "label -> retrain -> re-rank" re-running only what the new labels affect."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from assetcenter.labeling import open_project_labels as project_label_store
from engine.graph import Edge
from engine.labels import exports
from engine.project import Project
from engine.scheduler import Session
from engine.templates import SAMPLE_DATA
from engine.testing import NodeFailed, run_node
from nodes.automl.gbm import LightGBM
from nodes.automl.predict import Predict
from nodes.label.label_node import Label

LABELS = [{"name": "0", "color": "#1f77b4", "hotkey": "1"}, {"name": "1", "color": "#d62728", "hotkey": "2"}]
RECORD = {"task": "applications", "kind": "record", "id_column": "customer_id", "labels": LABELS,
          "fields": ["customer_id", "age", "annual_income", "application_date", "loan_purpose"]}
SPAN_LABELS = [{"name": "PERSON", "color": "#4e79a7", "hotkey": "p"},
               {"name": "AMOUNT", "color": "#f28e2b", "hotkey": "a"},
               {"name": "ACCOUNT", "color": "#59a14f", "hotkey": "c"}]
COMPLAINTS = ["Mr Li was charged 250 yuan twice on account 6222-0201.",
              "张伟的账户 6217 0000 被多扣了 300 元。",
              "No fee problem, just a question about the app."]


@pytest.fixture(scope="module")
def credit() -> pl.DataFrame:
    return pl.read_csv(SAMPLE_DATA).head(300)


@pytest.fixture(scope="module")
def predictions(credit: pl.DataFrame, tmp_path_factory) -> pl.DataFrame:
    """A real Predict output: LightGBM trained on the credit data's own label, scoring the same rows."""
    work = tmp_path_factory.mktemp("gbm")
    model = run_node(LightGBM, {"train": credit}, {"label": "default", "n_estimators": 20, "min_child_samples": 5},
                     workdir=work)["model"]
    return run_node(Predict, {"model": model, "table": credit}, {}, workdir=work)["table"]


def _run(project: Path, settings: dict, **inputs) -> dict:
    return run_node(Label, inputs, settings, project_dir=project, workdir=project / "work")


def _label(store, task: str, labeler: str, position: int, value: dict) -> int:
    item = store.item(task, position, labeler)
    return store.save(task, item["item_id"], labeler, value, item["version"])


# ------------------------------------------------------------------------------------------------ record task

def test_record_task_labels_review_and_agreement(tmp_path: Path, credit: pl.DataFrame):
    settings = {**RECORD, "overlap": 2, "labelers": ["ann", "bob"], "export_format": "csv",
                "export_path": "exports/labels.csv"}
    first = _run(tmp_path, settings, table=credit)
    table = first["table"]
    assert table.height == credit.height and table["item_id"].to_list() == credit["customer_id"].to_list()
    assert set(table["status"].unique()) == {"unlabeled"} and table["label"].null_count() == credit.height
    assert table.columns[:2] == ["item_id", "customer_id"] and table.columns[-4:] == ["label", "labeler", "reviewer",
                                                                                      "status"]
    store = project_label_store(tmp_path)
    try:
        item = store.item("applications", 0)
        # the labelers see the chosen fields, a date as text
        assert item["payload"] == {"fields": {"customer_id": "C0000001", "age": 31, "annual_income": 149600.0,
                                              "application_date": "2021-04-08", "loan_purpose": "Medical"}}
        assert item["external_id"] == "C0000001" and store.labelers("applications") == ["ann", "bob"]
        ann = ["0", "1", "0", "0", "1", "0", "1", "0"]
        bob = ["0", "1", "1", "0", "1", "0", "0", "0"]
        for pos, (a, b) in enumerate(zip(ann, bob)):
            _label(store, "applications", "ann", pos, {"labels": [a]})
            _label(store, "applications", "bob", pos, {"labels": [b]})
        queue = store.review_queue("applications")
        assert [e["position"] for e in queue[:2]] == [2, 6]  # the conflicts come first
        ann_label_2 = next(a for a in queue[0]["annotations"] if a["labeler"] == "ann")
        store.accept(ann_label_2["annotation_id"], "carol")  # the reviewer settles item 2 for ann's label
    finally:
        store.close()
    second = _run(tmp_path, settings, table=credit)
    table = second["table"]
    labeled = table.filter(pl.col("status") != "unlabeled")
    assert labeled["item_id"].to_list() == credit["customer_id"].head(8).to_list()
    assert labeled["label"].to_list() == ["0", "1", "0", "0", "1", "0", None, "0"]
    assert labeled["status"].to_list() == ["submitted"] * 2 + ["accepted"] + ["submitted"] * 3 + ["conflict",
                                                                                                  "submitted"]
    assert labeled["reviewer"].to_list()[2] == "carol" and labeled["labeler"][0] == "ann, bob"
    report = second["report"]
    m = report.metrics
    assert (m["items"], m["labeled"], m["accepted"], m["conflicts"]) == (300, 7, 1, 1)
    assert m["review_queue"] == 8  # every item with a label awaiting review (item 2: bob's)
    assert m["agreement"] == "Cohen's kappa"
    assert m["agreement_value"] == pytest.approx(cohen_kappa_score(ann, bob))
    conflicts = next(t for name, t in report.tables.items() if name.startswith("Conflicts"))
    assert sorted(conflicts["item"].to_list()) == ["C0000003", "C0000007"]
    progress = report.tables["Progress per labeler"]
    assert progress.filter(pl.col("labeler") == "ann")["submitted"].item() == 7
    assert progress.filter(pl.col("labeler") == "ann")["accepted"].item() == 1
    # the CSV export round-trips the table the canvas gets
    back = exports.read_csv(tmp_path / "exports" / "labels.csv", "record")
    assert back["label"].to_list() == table["label"].to_list()
    assert back["status"].to_list() == table["status"].to_list()
    # drop: only the labeled items flow on (the conflict too is held back), as Parquet
    dropped = _run(tmp_path, {**settings, "unlabeled": "drop", "export_format": "parquet",
                              "export_path": "exports/labels.parquet"}, table=credit)["table"]
    assert dropped["label"].to_list() == ["0", "1", "0", "0", "1", "0", "0"]
    assert exports.read_parquet(tmp_path / "exports" / "labels.parquet").equals(dropped)


def test_existing_task_is_checked_against_the_input(tmp_path: Path, credit: pl.DataFrame):
    _run(tmp_path, RECORD, table=credit.head(20))
    # a re-sorted input keeps its items (ids tie them), a changed one is refused
    again = _run(tmp_path, RECORD, table=credit.head(20).reverse())["table"]
    assert again["item_id"].to_list() == credit["customer_id"].head(20).reverse().to_list()
    changed = credit.head(20).with_columns(pl.when(pl.col("customer_id") == "C0000004").then(99)
                                           .otherwise(pl.col("age")).alias("age"))
    with pytest.raises(NodeFailed, match="input changed since task applications was created: item C0000004"):
        _run(tmp_path, RECORD, table=changed)
    # a changed row is refused even when new rows come with it, and nothing is added then
    with pytest.raises(NodeFailed, match="item C0000004 no longer shows what was labeled"):
        _run(tmp_path, RECORD, table=pl.concat([changed, credit.slice(20, 5)]))
    store = project_label_store(tmp_path)
    try:
        assert store.task_summary("applications")["items"] == 20
    finally:
        store.close()
    # kind changes and removed or renamed labels are refused
    renamed = [{**LABELS[0], "name": "good"}, LABELS[1]]
    with pytest.raises(NodeFailed, match="already exists as a record task with the labels 0, 1; its kind cannot "
                                         "change and its labels cannot be removed or renamed"):
        _run(tmp_path, {**RECORD, "labels": renamed}, table=credit.head(20))
    with pytest.raises(NodeFailed, match="already exists as a record task"):
        _run(tmp_path, {**RECORD, "labels": LABELS[:1]}, table=credit.head(20))
    # colours, keys, instructions and new labels reach the task; new labelers are assigned
    restyled = [{**LABELS[0], "color": "#000000", "hotkey": "z"}, LABELS[1], {"name": "unsure", "color": "#aaaaaa"}]
    out = _run(tmp_path, {**RECORD, "labels": restyled, "instructions": "Would you lend?", "labelers": ["dora"]},
               table=credit.head(20))
    assert not any("keeps the colours" in n for n in out["report"].notes)
    store = project_label_store(tmp_path)
    try:
        schema = store.schema("applications")
        assert schema.names == ["0", "1", "unsure"] and schema.instructions == "Would you lend?"
        assert (schema.labels[0].color, schema.labels[0].hotkey) == ("#000000", "z")
        assert store.labelers("applications") == ["dora"]
        assert [e["what"] for e in store.events("applications")][-2:] == ["update_schema", "assign"]
    finally:
        store.close()


def test_new_input_rows_are_added_to_the_task(tmp_path: Path, credit: pl.DataFrame):
    _run(tmp_path, {**RECORD, "overlap": 2}, table=credit.head(20))
    store = project_label_store(tmp_path)
    try:
        _label(store, "applications", "ann", 3, {"labels": ["1"]})
        digest = store.annotation_digest("applications")
    finally:
        store.close()
    grown = credit.head(25).sample(fraction=1.0, shuffle=True, seed=1)  # new rows, and in another order
    out = _run(tmp_path, {**RECORD, "overlap": 2}, table=grown)
    assert "added 5 new items to task applications" in out["report"].notes
    table = out["table"]
    assert table["item_id"].to_list() == grown["customer_id"].to_list()
    assert table.filter(pl.col("item_id") == "C0000004")["label"].item() == "1"
    assert table.filter(pl.col("status") == "unlabeled").height == 24
    store = project_label_store(tmp_path)
    try:
        assert store.annotation_digest("applications") == digest  # new items are not new labels
        summary = store.task_summary("applications")
        assert (summary["items"], summary["complete_items"]) == (25, 0)
        added = {store.item("applications", pos)["external_id"] for pos in range(20, 25)}
        assert added == set(credit["customer_id"].slice(20, 5).to_list())
        assert store.events("applications")[-1]["what"] == "add_items"
    finally:
        store.close()
    # a second run with the same rows adds nothing
    assert not any("added" in n for n in _run(tmp_path, {**RECORD, "overlap": 2}, table=grown)["report"].notes)


# ------------------------------------------------------------------------------------------------ pre-labels

def test_prelabels_from_a_real_predict_output(tmp_path: Path, credit: pl.DataFrame, predictions: pl.DataFrame):
    settings = {**RECORD, "ordering": "uncertainty"}
    shuffled = predictions.sample(fraction=1.0, shuffle=True, seed=3)  # matched by the id column, not by row
    _run(tmp_path, settings, table=credit, predictions=shuffled)
    p = predictions["probability"].to_numpy()
    pred = predictions["prediction"].to_list()
    store = project_label_store(tmp_path)
    try:
        for pos in (0, 7, 123):
            item = store.item("applications", pos)
            assert item["prelabel"] == {"labels": [str(pred[pos])]}
            assert item["confidence"] == pytest.approx(max(p[pos], 1 - p[pos]))
            assert item["uncertainty"] == pytest.approx(1 - max(p[pos], 1 - p[pos]))
        # uncertainty order: the model's least sure item comes first
        assert store.next_item("applications", "ann")["position"] == int(np.argmin(np.abs(p - 0.5)))
        _label(store, "applications", "ann", 5, {"labels": ["1"]})
    finally:
        store.close()
    # a retrained model's predictions re-rank the rest and leave the labels alone
    flipped = predictions.with_columns((1 - pl.col("probability")).alias("probability"),
                                       pl.when(pl.col("probability") >= 0.5).then(0).otherwise(1).alias("prediction"))
    flipped = flipped.with_columns((pl.col("probability") * 0.9 + (pl.int_range(pl.len()) == 42) * 0.5)
                                   .clip(0, 1).alias("probability"))
    out = _run(tmp_path, {**settings, "uncertainty": "margin"}, table=credit, predictions=flipped)
    q = flipped["probability"].to_numpy()
    store = project_label_store(tmp_path)
    try:
        item = store.item("applications", 9, "ann")
        assert item["prelabel"] == {"labels": [str(flipped["prediction"][9])]}
        assert item["uncertainty"] == pytest.approx(1 - abs(2 * q[9] - 1))
        expected = int(np.argmin(np.where(np.arange(len(q)) == 5, np.inf, np.abs(q - 0.5))))
        assert store.next_item("applications", "ann")["position"] == expected
        assert store.item("applications", 5, "ann")["annotation"]["value"] == {"labels": ["1"]}
    finally:
        store.close()
    assert out["table"].filter(pl.col("item_id") == "C0000006")["label"].item() == "1"


def test_prediction_classes_must_be_labels(tmp_path: Path, credit: pl.DataFrame, predictions: pl.DataFrame):
    named = [{"name": "repaid", "color": "#1f77b4"}, {"name": "defaulted", "color": "#d62728"}]
    with pytest.raises(NodeFailed, match="Prediction column 'prediction' has classes that are not labels of this "
                                         "task: 0, 1"):
        _run(tmp_path, {**RECORD, "labels": named}, table=credit, predictions=predictions)
    with pytest.raises(NodeFailed, match="Predictions have 10 rows but the task has 300 items"):
        _run(tmp_path, {**RECORD, "id_column": ""}, table=credit, predictions=predictions.head(10))


# ------------------------------------------------------------------------------------------------ spans

def test_spans_task_and_jsonl_export(tmp_path: Path):
    table = pl.DataFrame({"ticket": ["T1", "T2", "T3"], "complaint": COMPLAINTS})
    settings = {"task": "complaints", "kind": "spans", "text_column": "complaint", "id_column": "ticket",
                "labels": SPAN_LABELS, "instructions": "Mark people, amounts and account numbers.", "overlap": 2,
                "export_format": "jsonl", "export_path": "complaints.jsonl"}
    _run(tmp_path, settings, table=table)
    ann = {"spans": [{"start": 0, "end": 5, "label": "PERSON"}, {"start": 18, "end": 26, "label": "AMOUNT"},
                     {"start": 44, "end": 53, "label": "ACCOUNT"}]}
    bob = {"spans": [{"start": 3, "end": 5, "label": "PERSON"}, {"start": 18, "end": 26, "label": "AMOUNT"},
                     {"start": 44, "end": 53, "label": "ACCOUNT"}]}
    zh = {"spans": [{"start": 0, "end": 2, "label": "PERSON"}, {"start": 6, "end": 15, "label": "ACCOUNT"},
                    {"start": 21, "end": 26, "label": "AMOUNT"}]}
    assert [COMPLAINTS[0][s["start"]:s["end"]] for s in ann["spans"]] == ["Mr Li", "250 yuan", "6222-0201"]
    assert [COMPLAINTS[1][s["start"]:s["end"]] for s in zh["spans"]] == ["张伟", "6217 0000", "300 元"]
    store = project_label_store(tmp_path)
    try:
        assert store.schema("complaints").instructions == "Mark people, amounts and account numbers."
        _label(store, "complaints", "ann", 0, ann)
        _label(store, "complaints", "bob", 0, bob)
        _label(store, "complaints", "ann", 1, zh)
        _label(store, "complaints", "bob", 1, zh)
        _label(store, "complaints", "ann", 2, {"spans": []})
    finally:
        store.close()
    out = _run(tmp_path, settings, table=table)
    result = out["table"]
    assert result["status"].to_list() == ["conflict", "submitted", "submitted"]
    assert json.loads(result["spans"][1]) == zh["spans"] and json.loads(result["spans"][2]) == []
    m = out["report"].metrics
    assert m["agreement"] == "Span F1 (exact match)"
    # items 0 and 1 compared: 2 + 3 exact matches among 6 + 6 spans -> F1 = 2 * 5 / (6 + 6)
    assert m["agreement_value"] == pytest.approx(2 * 5 / 12)
    per_label = out["report"].tables["Agreement per label"]
    iou = per_label.filter(pl.col("label") == "PERSON")["Span IoU (character overlap)"].item()
    assert iou == pytest.approx((2 + 2) / (5 + 2), abs=1e-4)  # PERSON: 2 of 5 characters on item 0, 2 of 2 on item 1
    back = exports.read_spans_jsonl(tmp_path / "complaints.jsonl")
    assert back["item_id"].to_list() == ["T2", "T3"]  # the conflict has no spans to export
    assert back["text"].to_list() == COMPLAINTS[1:]
    assert json.loads(back["spans"][0]) == zh["spans"]


def test_multi_label_text_task(tmp_path: Path):
    table = pl.DataFrame({"complaint": COMPLAINTS})
    topics = [{"name": "fees", "color": "#e15759", "hotkey": "f"}, {"name": "account", "color": "#4e79a7"},
              {"name": "app", "color": "#59a14f"}]
    settings = {"task": "topics", "kind": "text", "multi": True, "text_column": "complaint", "labels": topics,
                "unlabeled": "drop"}
    _run(tmp_path, settings, table=table)
    store = project_label_store(tmp_path)
    try:
        _label(store, "topics", "ann", 0, {"labels": ["fees", "account"]})
        _label(store, "topics", "bob", 0, {"labels": ["account", "fees"]})  # the same set, another order
        _label(store, "topics", "ann", 2, {"labels": ["app"]})
    finally:
        store.close()
    out = _run(tmp_path, settings, table=table)
    result = out["table"]
    assert result.schema["labels"] == pl.List(pl.String)
    assert result.select("item_id", "labels", "status").rows() == [("0", ["fees", "account"], "submitted"),
                                                                  ("2", ["app"], "submitted")]
    assert out["report"].metrics["conflicts"] == 0


# ------------------------------------------------------------------------------------------------ images

def _png(path: Path, size: tuple[int, int], color: str) -> None:
    from PIL import Image

    Image.new("RGB", size, color).save(path)


def test_boxes_task_on_generated_images_and_coco_export(tmp_path: Path):
    folder = tmp_path / "scans"
    folder.mkdir()
    _png(folder / "b.png", (120, 80), "white")
    _png(folder / "a.png", (64, 48), "gray")
    from PIL import Image

    Image.new("RGB", (90, 60), "navy").save(folder / "c.JPG", format="JPEG")
    (folder / "notes.txt").write_text("not an image", "utf-8")
    labels = [{"name": "stamp", "color": "#e15759", "hotkey": "s"}, {"name": "signature", "color": "#76b7b2"}]
    settings = {"task": "scans", "kind": "boxes", "image_folder": "scans", "labels": labels,
                "export_format": "coco", "export_path": "coco/scans.json"}
    first = _run(tmp_path, settings)["table"]
    assert first["item_id"].to_list() == ["a.png", "b.png", "c.JPG"]
    assert first["width"].to_list() == [64, 120, 90] and first["height"].to_list() == [48, 80, 60]
    assert first["image"].to_list() == [str(folder / n) for n in ("a.png", "b.png", "c.JPG")]
    boxes = {"boxes": [{"x": 10.0, "y": 5.0, "w": 30.0, "h": 20.0, "label": "stamp"},
                       {"x": 60.0, "y": 40.0, "w": 50.0, "h": 30.0, "label": "signature"}]}
    store = project_label_store(tmp_path)
    try:
        _label(store, "scans", "ann", 1, boxes)
        _label(store, "scans", "ann", 0, {"boxes": [{"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "label": "stamp"}]})
    finally:
        store.close()
    out = _run(tmp_path, settings)["table"]
    assert out["status"].to_list() == ["submitted", "submitted", "unlabeled"]
    coco = json.loads((tmp_path / "coco" / "scans.json").read_text("utf-8"))
    assert [c["name"] for c in coco["categories"]] == ["stamp", "signature"]
    assert [(i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        (str(folder / "a.png"), 64, 48), (str(folder / "b.png"), 120, 80)]
    back = exports.read_coco(tmp_path / "coco" / "scans.json")
    assert json.loads(back.filter(pl.col("item_id") == "b.png")["boxes"].item()) == boxes["boxes"]


def test_image_classification_with_parquet_export(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, color in enumerate(("red", "green")):
        _png(folder / f"scan{i}.png", (20, 10), color)
    labels = [{"name": "invoice", "color": "#4e79a7", "hotkey": "1"}, {"name": "id card", "color": "#f28e2b"}]
    settings = {"task": "docs", "kind": "image", "image_folder": str(folder), "labels": labels,
                "unlabeled": "drop", "export_format": "parquet", "export_path": "docs.parquet"}
    _run(tmp_path, settings)
    store = project_label_store(tmp_path)
    try:
        assert store.item("docs", 0)["payload"] == {"image": str(folder / "scan0.png"), "width": 20, "height": 10}
        _label(store, "docs", "ann", 1, {"labels": ["id card"]})
    finally:
        store.close()
    out = _run(tmp_path, settings)["table"]
    assert out.select("item_id", "label").rows() == [("scan1.png", "id card")]
    assert pl.read_parquet(tmp_path / "docs.parquet").equals(out)


# ------------------------------------------------------------------------------------------------ bad input

def test_bad_inputs_name_the_problem(tmp_path: Path, credit: pl.DataFrame):
    text = {"task": "t", "kind": "text", "text_column": "complaint", "labels": LABELS}
    with pytest.raises(NodeFailed, match="Text column: column 'complaint' is not in the table"):
        _run(tmp_path, text, table=credit)
    with pytest.raises(NodeFailed, match="ID column: column 'application_id' is not in the table"):
        _run(tmp_path, {**RECORD, "id_column": "application_id"}, table=credit)
    with pytest.raises(NodeFailed, match="ID column 'region': the id 'East' appears more than once"):
        _run(tmp_path, {**RECORD, "id_column": "region"}, table=credit)
    with pytest.raises(NodeFailed, match="The input table has no rows"):
        _run(tmp_path, RECORD, table=credit.head(0))
    with pytest.raises(NodeFailed, match="connect the table input"):
        _run(tmp_path, RECORD)
    with pytest.raises(NodeFailed, match="Text column 'complaint': 1 rows have no text"):
        _run(tmp_path, text, table=pl.DataFrame({"complaint": ["a", None]}, schema={"complaint": pl.String}))
    with pytest.raises(NodeFailed, match="text_column: a text task needs the column"):
        _run(tmp_path, {**text, "text_column": ""}, table=credit)
    # schema errors name the label field
    twice = [LABELS[0], {**LABELS[1], "hotkey": "1"}]
    with pytest.raises(NodeFailed, match="hotkey: '1' is used by both '0' and '1'") as err:
        _run(tmp_path, {**RECORD, "labels": twice}, table=credit)
    assert err.value.input_error
    with pytest.raises(NodeFailed, match=r"labels\.1\.color.*not a colour"):
        _run(tmp_path, {**RECORD, "labels": [LABELS[0], {**LABELS[1], "color": "red"}]}, table=credit)
    with pytest.raises(NodeFailed, match="a task needs at least one label"):
        _run(tmp_path, {**RECORD, "labels": []}, table=credit)
    with pytest.raises(NodeFailed, match="multi-label applies to text classification only"):
        _run(tmp_path, {**RECORD, "multi": True}, table=credit)
    with pytest.raises(NodeFailed, match="image_folder: image and boxes tasks need the folder of images"):
        _run(tmp_path, {"task": "b", "kind": "boxes", "labels": LABELS})
    with pytest.raises(NodeFailed, match="export_path: choose the file to export to"):
        _run(tmp_path, {**RECORD, "export_format": "csv"}, table=credit)
    with pytest.raises(NodeFailed, match="COCO is the boxes format"):
        _run(tmp_path, {**RECORD, "export_format": "coco", "export_path": "x.json"}, table=credit)
    with pytest.raises(NodeFailed, match="pre-labels for classification tasks"):
        spans = {"task": "s", "kind": "spans", "text_column": "t", "labels": SPAN_LABELS}
        _run(tmp_path, spans, table=pl.DataFrame({"t": ["x"]}), predictions=pl.DataFrame({"prediction": ["x"]}))
    # image folders: missing, without images, with an unreadable image
    images = {"task": "i", "kind": "image", "image_folder": "scans", "labels": LABELS}
    with pytest.raises(NodeFailed, match="does not exist or is not a folder"):
        _run(tmp_path, images)
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "readme.txt").write_text("x", "utf-8")
    with pytest.raises(NodeFailed, match="has no PNG or JPEG images"):
        _run(tmp_path, images)
    (tmp_path / "scans" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(NodeFailed, match=r"Image .*broken\.png cannot be read"):
        _run(tmp_path, images)


# ------------------------------------------------------------------------------------------------ the canvas loop

def test_label_retrain_rerank_loop_reruns_only_what_labels_affect(tmp_path: Path):
    """Read -> Label -> LightGBM -> Predict -> Label (same task, with predictions); Read -> Filter is unrelated."""
    project = Project.new(tmp_path / "proj", "Labeling loop")
    g = project.graph
    task = {**RECORD, "ordering": "uncertainty", "fields": []}
    read = g.add_node("io.read_csv", {"path": str(SAMPLE_DATA)}, title="Read").id
    other = g.add_node("features.filter", {"condition": "age >= 30"}, title="Filter").id
    label = g.add_node("label.label", {**task, "unlabeled": "drop", "export_format": "parquet",
                                       "export_path": "labels.parquet"}, title="Label").id
    gbm = g.add_node("automl.lightgbm", {"label": "label", "n_estimators": 10, "min_child_samples": 5,
                                         "exclude": ["default", "labeler", "reviewer", "status"]}, title="GBM").id
    predict = g.add_node("automl.predict", {}, title="Predict").id
    rerank = g.add_node("label.label", task, title="Re-rank").id
    g.add_edge(Edge(read, "table", other, "table"))
    g.add_edge(Edge(read, "table", label, "table"))
    g.add_edge(Edge(label, "table", gbm, "train"))
    g.add_edge(Edge(gbm, "model", predict, "model"))
    g.add_edge(Edge(read, "table", predict, "table"))
    g.add_edge(Edge(read, "table", rerank, "table"))
    g.add_edge(Edge(predict, "table", rerank, "predictions"))
    project.save()
    truth = pl.read_csv(SAMPLE_DATA)["default"].cast(pl.String).to_list()
    with Session(project) as s:
        created = s.run(until=label)
        assert created.ok, {n: r.error for n, r in created.nodes.items()}
        store = project_label_store(project.directory)
        try:
            for pos in range(80):  # the first 80 applications, labeled as they turned out
                _label(store, "applications", "ann", pos, {"labels": [truth[pos]]})
        finally:
            store.close()
        trained = s.run()
        assert trained.ok, {n: r.error for n, r in trained.nodes.items()}
        assert set(trained.executed) == {other, label, gbm, predict, rerank}
        scored = s.output(predict, "table")
        store = project_label_store(project.directory)
        try:  # the model's least sure unlabeled application is offered first
            p = scored["probability"].to_numpy()
            open_ = np.abs(p - 0.5)
            open_[:80] = np.inf
            assert store.next_item("applications", "bob")["position"] == int(np.argmin(open_))
            for pos in range(80, 100):
                _label(store, "applications", "ann", pos, {"labels": [truth[pos]]})
        finally:
            store.close()
        again = s.run()
        assert again.ok and set(again.executed) == {label, gbm, predict, rerank}  # Read and Filter stay cached
        assert s.output(label, "table").height == 100
        assert s.output(gbm, "model").info["train_rows"] == 100
        assert s.run().executed == []  # no new labels: everything cached
        (project.directory / "labels.parquet").unlink()
        rewritten = s.run()
        assert rewritten.executed == [label]  # the export is written again; its table is unchanged, GBM cached
        assert (project.directory / "labels.parquet").is_file()


def test_appended_input_rows_keep_unchanged_downstream_cached(tmp_path: Path, credit: pl.DataFrame):
    """Read (a CSV that grows) -> Label (drop) -> Filter, and an unrelated Read -> Filter. New rows re-run what
    reads them (cache keys follow upstream keys) and change no label, so the next run is fully cached: the Label
    node's label digest did not move when it added the rows. The unrelated branch never re-runs."""
    csv = tmp_path / "applications.csv"
    credit.head(30).write_csv(csv)
    project = Project.new(tmp_path / "proj", "Growing input")
    g = project.graph
    read = g.add_node("io.read_csv", {"path": str(csv)}, title="Read").id
    label = g.add_node("label.label", {**RECORD, "fields": [], "unlabeled": "drop"}, title="Label").id
    keep = g.add_node("label.label", {**RECORD, "fields": []}, title="All items").id
    adults = g.add_node("features.filter", {"condition": "age >= 30"}, title="Filter").id
    other_csv = tmp_path / "other.csv"
    credit.slice(100, 50).write_csv(other_csv)
    other = g.add_node("io.read_csv", {"path": str(other_csv)}, title="Other").id
    other_filter = g.add_node("features.filter", {"condition": "age >= 30"}, title="Other filter").id
    g.add_edge(Edge(other, "table", other_filter, "table"))
    g.add_edge(Edge(read, "table", label, "table"))
    g.add_edge(Edge(read, "table", keep, "table"))
    g.add_edge(Edge(label, "table", adults, "table"))
    project.save()
    with Session(project) as s:
        assert s.run().ok
        store = project_label_store(project.directory)
        try:
            for pos in range(6):
                _label(store, "applications", "ann", pos, {"labels": [str(pos % 2)]})
        finally:
            store.close()
        labeled = s.run()
        assert labeled.ok and set(labeled.executed) == {label, keep, adults}
        before = s.output(label, "table")
        credit.head(40).write_csv(csv)  # ten new applications arrive
        grown = s.run()
        assert grown.ok, {n: r.error for n, r in grown.nodes.items()}
        assert set(grown.executed) == {read, label, keep, adults}
        assert s.output(label, "table").equals(before)  # no new labels: the same labeled table
        everything = s.output(keep, "table")
        assert everything.height == 40 and everything["item_id"].to_list() == credit["customer_id"].head(40).to_list()
        assert everything["status"].to_list() == ["submitted"] * 6 + ["unlabeled"] * 34
        assert s.run().executed == []  # adding the rows changed no label: nothing runs again
        store = project_label_store(project.directory)
        try:
            assert store.task_summary("applications")["items"] == 40
            _label(store, "applications", "ann", 35, {"labels": ["1"]})  # a new application gets its label
        finally:
            store.close()
        relabeled = s.run()
        assert set(relabeled.executed) == {label, keep, adults}
        assert s.output(label, "table")["item_id"].to_list()[-1] == credit["customer_id"][35]
