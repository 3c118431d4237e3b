"""The labeled dataset as a table, and its export files: Parquet, CSV, JSONL spans and COCO boxes, with readers.

Why a table first: analysts take labels onto the canvas as a polars table, and every file format is written from
that one table, so a CSV, a Parquet file and the canvas output never disagree. The table has:
- `item_id` (text);
- the payload columns: a record's fields (or the input table's own columns), `text` for text and spans tasks,
  `image` (the file path) for image and boxes tasks. A payload column whose name is one of the label columns below
  is renamed `<name>_input`, so the label columns keep fixed names for downstream nodes;
- the label: `label` (text) for single-label kinds, `labels` (list of text) for multi-label text, `spans` / `boxes`
  as compact JSON text (`[{"start":0,"end":5,"label":"PER"}]`, `[{"x":..,"y":..,"w":..,"h":..,"label":..}]`);
- `labeler`, `reviewer`, `status` (where no status is given: `labeled`, or `unlabeled` for an item with no label).

Files: Parquet keeps every type. CSV holds list and JSON columns as JSON text, and like any CSV cannot tell an
empty text from a missing one, and re-infers the types of payload columns. JSONL spans is one object per labeled
item, `{"id", "text", "spans": [{"start", "end", "label"}], "meta": {...}}` (the Prodigy / spaCy training format).
COCO is the object-detection JSON (images with width and height, categories, annotations with bbox [x, y, w, h],
area, iscrowd 0). Every writer is atomic (engine.fileio) and the Parquet and CSV paths are vectorised polars only.
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import NodeInputError
from engine.fileio import atomic_output_path, atomic_write_text
from engine.i18n import tr

KINDS = ("record", "text", "spans", "image", "boxes")
META_COLUMNS = ("labeler", "reviewer", "status")
FORMATS = ("parquet", "csv", "jsonl", "coco")
_PAYLOAD_COLUMN = {"text": "text", "spans": "text", "image": "image", "boxes": "image"}
_SPAN = pl.Struct({"start": pl.Int64, "end": pl.Int64, "label": pl.String})
_BOX = pl.Struct({"x": pl.Float64, "y": pl.Float64, "w": pl.Float64, "h": pl.Float64, "label": pl.String})


def label_column(kind: str, multi: bool = False) -> str:
    """Name of the label column for a task kind."""
    _check_kind(kind)
    if kind in ("spans", "boxes"):
        return kind
    return "labels" if multi and kind == "text" else "label"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise NodeInputError(tr("Labels export: unknown task kind {kind}; expected one of {kinds}", kind=kind,
                                kinds=", ".join(KINDS)))


def _value_dtype(kind: str, multi: bool) -> pl.DataType:
    if kind == "spans":
        return pl.Struct({"spans": pl.List(_SPAN)})
    if kind == "boxes":
        return pl.Struct({"boxes": pl.List(_BOX)})
    return pl.Struct({"labels": pl.List(pl.String)})


def to_json_text(expr: pl.Expr) -> pl.Expr:
    """Compact JSON text of any nested column (lists, structs), null stays null; vectorised.

    polars encodes only structs, so the value is wrapped in a one-field struct and the wrapper stripped again.
    """
    encoded = (pl.struct(expr.alias("v")).struct.json_encode()
               .str.strip_prefix('{"v":').str.strip_suffix("}"))
    return pl.when(expr.is_null()).then(None).otherwise(encoded)


def items_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Rows as storage hands them (item_id, payload dict, value dict or None, labeler, reviewer, status; the rows of
    `LabelStore.labeled_rows` fit) -> the column form `labeled_table` takes, payload and value as JSON text."""
    out: dict[str, list] = {"item_id": [], "payload": [], "value": [], **{c: [] for c in META_COLUMNS}}
    for row in rows:
        out["item_id"].append(str(_row_id(row)))
        out["payload"].append(json.dumps(row.get("payload") or {}, ensure_ascii=False))
        value = row.get("value")
        out["value"].append(None if value is None else json.dumps(value, ensure_ascii=False))
        for c in META_COLUMNS:
            out[c].append(row.get(c))
    return pl.DataFrame(out, schema={k: pl.String for k in out})


def _row_id(row: Mapping[str, Any]) -> Any:
    """`item_id`, else the store's `external_id`, else its `position` (LabelStore.labeled_rows gives the last two)."""
    if row.get("item_id") is not None:
        return row["item_id"]
    return row["external_id"] if row.get("external_id") is not None else row["position"]


def labeled_table(items: pl.DataFrame, kind: str, multi: bool = False, *,
                  keep_unlabeled: bool = True) -> pl.DataFrame:
    """The labeled dataset from `items`: `item_id`, `value` (annotation JSON text, null = unlabeled), optional
    `labeler`/`reviewer`/`status`, and the payload either as a `payload` JSON text column or as ready columns
    (every other column passes through, e.g. the input table's own columns)."""
    _check_kind(kind)
    missing = [c for c in ("item_id", "value") if c not in items.columns]
    if missing:
        raise NodeInputError(tr("Labels export: the items have no column {columns}", columns=", ".join(missing)))
    label = label_column(kind, multi)
    reserved = {"item_id", label, *META_COLUMNS}
    frame = items if keep_unlabeled else items.filter(pl.col("value").is_not_null())
    payload = _payload_columns(frame, kind)
    payload = payload.rename({c: f"{c}_input" for c in payload.columns if c in reserved})
    decoded = pl.col("value").str.json_decode(_value_dtype(kind, multi))
    if kind in ("spans", "boxes"):
        label_expr = to_json_text(decoded.struct.field(kind))
    elif multi and kind == "text":
        label_expr = decoded.struct.field("labels")
    else:
        label_expr = decoded.struct.field("labels").list.first()
    meta = [pl.col(c).cast(pl.String) if c in frame.columns else pl.lit(None, pl.String).alias(c)
            for c in META_COLUMNS]
    implied = pl.when(pl.col("value").is_null()).then(pl.lit("unlabeled")).otherwise(pl.lit("labeled"))
    meta[-1] = pl.coalesce(meta[-1], implied).alias("status")
    labels = frame.select(pl.col("item_id").cast(pl.String), label_expr.alias(label), *meta)
    return pl.concat([labels.select("item_id"), payload, labels.drop("item_id")], how="horizontal")


def _payload_columns(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    passthrough = frame.drop([c for c in ("item_id", "value", "payload", *META_COLUMNS) if c in frame.columns])
    if "payload" not in frame.columns:
        return passthrough
    text = frame.get_column("payload").fill_null("{}")
    if kind in _PAYLOAD_COLUMN:
        key = _PAYLOAD_COLUMN[kind]
        decoded = text.str.json_decode(pl.Struct({key: pl.String})).struct.field(key).alias(key)
        return pl.concat([passthrough, decoded.to_frame()], how="horizontal")
    # record fields: let polars infer one type per field over all rows (no per-row Python)
    if not len(text):
        return passthrough
    objects = pl.read_ndjson(io.StringIO("\n".join(text.to_list())), infer_schema_length=None)
    if "fields" not in objects.columns or not isinstance(objects.schema["fields"], pl.Struct):
        raise NodeInputError(tr('Labels export: a record payload must be {"fields": {...}}'))
    return pl.concat([passthrough, objects.select(pl.col("fields")).unnest("fields")], how="horizontal")


# ---------------------------------------------------------------- Parquet and CSV

def write_parquet(table: pl.DataFrame, path: Path) -> Path:
    with atomic_output_path(Path(path)) as tmp:
        table.write_parquet(tmp)
    return Path(path)


def read_parquet(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)


def write_csv(table: pl.DataFrame, path: Path) -> Path:
    """CSV with every list or struct column as JSON text (the `labels` list reads back with `read_csv`)."""
    nested = [c for c, t in table.schema.items() if isinstance(t, (pl.List, pl.Array, pl.Struct))]
    flat = table.with_columns(to_json_text(pl.col(c)).alias(c) for c in nested) if nested else table
    with atomic_output_path(Path(path)) as tmp:
        flat.write_csv(tmp)
    return Path(path)


def read_csv(path: Path, kind: str, multi: bool = False) -> pl.DataFrame:
    """Read a CSV written by `write_csv`: label and meta columns as text, `labels` back to a list, payload columns
    with polars' type inference."""
    label = label_column(kind, multi)
    text_cols = ["item_id", label, *META_COLUMNS, *([_PAYLOAD_COLUMN[kind]] if kind in _PAYLOAD_COLUMN else [])]
    header = pl.read_csv(path, n_rows=0).columns
    table = pl.read_csv(path, schema_overrides={c: pl.String for c in text_cols if c in header})
    if label == "labels" and label in table.columns:
        table = table.with_columns(pl.col(label).str.json_decode(pl.List(pl.String)))
    return table


# ---------------------------------------------------------------- JSONL spans

def write_spans_jsonl(table: pl.DataFrame, path: Path) -> Path:
    """One JSON object per labeled item: {"id", "text", "spans": [...], "meta": {labeler, reviewer, status}}."""
    _require(table, ("item_id", "text", "spans"), "JSONL")
    labeled = table.filter(pl.col("spans").is_not_null())
    meta = [pl.col(c) if c in table.columns else pl.lit(None, pl.String).alias(c) for c in META_COLUMNS]
    out = labeled.select(pl.col("item_id").alias("id"), "text",
                         pl.col("spans").str.json_decode(pl.List(_SPAN)), pl.struct(meta).alias("meta"))
    with atomic_output_path(Path(path)) as tmp:
        out.write_ndjson(tmp)
    return Path(path)


def read_spans_jsonl(path: Path) -> pl.DataFrame:
    """The table form of a spans JSONL file (`meta` optional, as in files from other tools)."""
    raw = pl.read_ndjson(path, infer_schema_length=None)
    _require(raw, ("id", "text", "spans"), "JSONL", where=str(path))
    spans = pl.col("spans").cast(pl.List(_SPAN))
    meta_type = raw.schema.get("meta")
    meta_fields = {f.name for f in meta_type.fields} if isinstance(meta_type, pl.Struct) else set()
    meta = [pl.col("meta").struct.field(c).cast(pl.String).alias(c) if c in meta_fields
            else pl.lit(None, pl.String).alias(c) for c in META_COLUMNS]
    return raw.select(pl.col("id").cast(pl.String).alias("item_id"), pl.col("text").cast(pl.String),
                      to_json_text(spans).alias("spans"), *meta)


# ---------------------------------------------------------------- COCO boxes

def write_coco(table: pl.DataFrame, path: Path, labels: Sequence[str] | None = None) -> Path:
    """COCO detection JSON of the labeled items. Image sizes: the table's `width`/`height` when present (the size
    the labeler drew on), else read from the file with Pillow. `labels` (the schema's names) fixes category ids
    1..K in schema order; labels found but not listed follow, sorted."""
    _require(table, ("item_id", "image", "boxes"), "COCO")
    images = table.filter(pl.col("boxes").is_not_null()).with_row_index("id", offset=1)
    sizes = _image_sizes(images)
    boxes = (images.select(pl.col("id").alias("image_id"), pl.col("boxes").str.json_decode(pl.List(_BOX)))
             .explode("boxes").drop_nulls("boxes").unnest("boxes"))
    names = list(dict.fromkeys(labels or ()))
    names += sorted(set(boxes.get_column("label").unique().to_list()) - set(names))
    categories = pl.DataFrame({"name": names, "category_id": range(1, len(names) + 1)},
                              schema={"name": pl.String, "category_id": pl.Int64})
    annotations = (boxes.join(categories, left_on="label", right_on="name", how="left", maintain_order="left")
                   .with_row_index("id", offset=1)
                   .select(pl.col("id").cast(pl.Int64), "image_id", "category_id",
                           pl.concat_list("x", "y", "w", "h").alias("bbox"), (pl.col("w") * pl.col("h")).alias("area"),
                           pl.lit(0).alias("iscrowd")))
    image_rows = images.select(pl.col("id").cast(pl.Int64), pl.col("image").alias("file_name"),
                               pl.Series("width", sizes[0]), pl.Series("height", sizes[1]), "item_id")
    coco = {"info": {"description": "Ledgerflow labels"}, "licenses": [],
            "images": image_rows.to_dicts(),
            "categories": [{"id": i, "name": n, "supercategory": ""} for i, n in enumerate(names, 1)],
            "annotations": annotations.to_dicts()}
    atomic_write_text(Path(path), json.dumps(coco, ensure_ascii=False))
    return Path(path)


def _image_sizes(images: pl.DataFrame) -> tuple[list[int], list[int]]:
    n = images.height
    widths = images.get_column("width").to_list() if "width" in images.columns else [None] * n
    heights = images.get_column("height").to_list() if "height" in images.columns else [None] * n
    paths = images.get_column("image").to_list()
    for i, (w, h) in enumerate(zip(widths, heights)):
        if w is None or h is None:
            widths[i], heights[i] = _read_size(paths[i])
    return [int(w) for w in widths], [int(h) for h in heights]


def _read_size(path: str | None) -> tuple[int, int]:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency of the app
        raise NodeInputError(tr("COCO export: the size of image {path} is not stored and Pillow is not installed "
                                "to read it", path=path)) from None
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, TypeError) as exc:
        raise NodeInputError(tr("COCO export: cannot read the size of image {path}: {error}", path=path,
                                error=exc)) from None


def read_coco(path: Path) -> pl.DataFrame:
    """The table form of a COCO file: item_id (ours, else the file name), image, width, height, boxes JSON text."""
    try:
        coco = json.loads(Path(path).read_text("utf-8"))
        names = {c["id"]: c["name"] for c in coco["categories"]}
        images = coco["images"]
        by_image: dict[Any, list[dict[str, Any]]] = {img["id"]: [] for img in images}
        for ann in sorted(coco.get("annotations", []), key=lambda a: a["id"]):
            x, y, w, h = ann["bbox"]
            by_image[ann["image_id"]].append({"x": float(x), "y": float(y), "w": float(w), "h": float(h),
                                              "label": names[ann["category_id"]]})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeInputError(tr("COCO file {path} cannot be read: {error}", path=path, error=exc)) from None
    frame = pl.DataFrame({
        "item_id": [str(img.get("item_id", img["file_name"])) for img in images],
        "image": [img["file_name"] for img in images],
        "width": [img.get("width") for img in images],
        "height": [img.get("height") for img in images],
        "boxes": [by_image[img["id"]] for img in images],
    }, schema={"item_id": pl.String, "image": pl.String, "width": pl.Int64, "height": pl.Int64,
               "boxes": pl.List(_BOX)})
    return frame.with_columns(to_json_text(pl.col("boxes")).alias("boxes"))


# ---------------------------------------------------------------- one entry point

def export_labels(table: pl.DataFrame, path: Path, fmt: str, kind: str, *,
                  labels: Sequence[str] | None = None) -> Path:
    """Write `table` in `fmt`; JSONL is for span tasks and COCO for box tasks."""
    if fmt not in FORMATS:
        raise NodeInputError(tr("Labels export: unknown format {fmt}; expected one of {formats}", fmt=fmt,
                                formats=", ".join(FORMATS)))
    if fmt == "jsonl" and kind != "spans" or fmt == "coco" and kind != "boxes":
        raise NodeInputError(tr("Labels export: the {fmt} format is for {needed} tasks, not {kind}", fmt=fmt,
                                needed="spans" if fmt == "jsonl" else "boxes", kind=kind))
    if fmt == "parquet":
        return write_parquet(table, path)
    if fmt == "csv":
        return write_csv(table, path)
    if fmt == "jsonl":
        return write_spans_jsonl(table, path)
    return write_coco(table, path, labels)


def _require(frame: pl.DataFrame, columns: Sequence[str], fmt: str, where: str | None = None) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise NodeInputError(tr("{fmt} labels ({where}): column {columns} is missing", fmt=fmt,
                                where=where or tr("table"), columns=", ".join(missing)))
