"""The items of a labeling task, read from the node's inputs: one payload per table row or per image file.

Payloads are plain JSON (engine/labels: record -> {"fields"}, text -> {"text"}, image -> {"image"}), so record
values that JSON cannot hold (dates, decimals, categories) are shown as text, and a float NaN as empty. Each item
also has a key: the id column's value, else its row number, else its image file name. Keys, not positions, tie a
stored item to an input row on later runs, so a re-sorted input keeps its labels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from nodes.columns import require_columns

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TEXT_KINDS = ("text", "spans")
IMAGE_KINDS = ("image", "boxes")
# names the output table gives its own columns; an input column with one of them is renamed <name>_input
RESERVED = ("item_id", "value", "payload", "labeler", "reviewer", "status")


@dataclass
class Items:
    keys: list[str]  # one per item, input order: the output's item_id and the stored external id
    payloads: list[dict[str, Any]]
    frame: pl.DataFrame  # the columns carried to the output table, one row per item, input order


def rename_reserved(table: pl.DataFrame, label_column: str) -> pl.DataFrame:
    """Input columns named like the output's own columns get an `_input` suffix (so both are kept)."""
    taken = set(table.columns)
    renames = {}
    for col in table.columns:
        if col in (*RESERVED, label_column):
            new = f"{col}_input"
            while new in taken:
                new += "_"
            renames[col] = new
            taken.add(new)
    return table.rename(renames) if renames else table


def item_keys(table: pl.DataFrame, id_column: str) -> list[str]:
    """The id column's values as text (present and unique, as labels are kept per id), else row numbers."""
    if not id_column:
        return [str(i) for i in range(table.height)]
    require_columns(table, [id_column], tr("ID column"))
    ids = table.get_column(id_column)
    if ids.null_count():
        first = int(ids.is_null().arg_true()[0])
        raise NodeInputError(tr("ID column {col!r}: {n} rows have no id (the first is row {row}); every item needs "
                                "one", col=id_column, n=ids.null_count(), row=first))
    keys = ids.cast(pl.String)
    dup = keys.filter(keys.is_duplicated())
    if len(dup):
        raise NodeInputError(tr("ID column {col!r}: the id {value!r} appears more than once; ids must be unique",
                                col=id_column, value=dup[0]))
    return keys.to_list()


def _jsonable(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns as values JSON can hold: numbers, booleans, text (dates, decimals, categories become text)."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype.is_float():
            exprs.append(col.fill_nan(None))
        elif dtype.is_numeric() or dtype in (pl.Boolean, pl.String, pl.Null):
            exprs.append(col)
        else:
            exprs.append(col.cast(pl.String, strict=False))
    return frame.select(exprs)


def table_items(table: pl.DataFrame, kind: str, *, text_column: str, id_column: str,
                fields: list[str]) -> Items:
    """Items of a record, text or spans task: one per row."""
    if table.height == 0:
        raise NodeInputError(tr("The input table has no rows: there is nothing to label"))
    keys = item_keys(table, id_column)
    if kind in TEXT_KINDS:
        if not text_column:
            raise NodeInputError(tr("Text column: choose the column that holds the texts to label"))
        require_columns(table, [text_column], tr("Text column"))
        texts = table.get_column(text_column)
        if isinstance(texts.dtype, (pl.Categorical, pl.Enum)):
            texts = texts.cast(pl.String)
        if texts.dtype != pl.String:
            raise NodeInputError(tr("Text column {col!r} holds {dtype}, not text", col=text_column,
                                    dtype=str(texts.dtype)))
        if texts.null_count():
            first = int(texts.is_null().arg_true()[0])
            raise NodeInputError(tr("Text column {col!r}: {n} rows have no text (the first is row {row}); filter "
                                    "them out first", col=text_column, n=texts.null_count(), row=first))
        payloads = [{"text": t} for t in texts.to_list()]
    else:
        shown = fields or table.columns
        require_columns(table, shown, tr("Fields shown"))
        payloads = [{"fields": row} for row in _jsonable(table.select(shown)).to_dicts()]
    return Items(keys, payloads, table)


def list_images(folder: Path) -> list[Path]:
    """PNG and JPEG files directly in the folder, sorted by name (the order labelers see with "given")."""
    if not folder.is_dir():
        raise NodeInputError(tr("Image folder {path} does not exist or is not a folder", path=folder))
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: p.name)
    if not files:
        raise NodeInputError(tr("Image folder {path} has no PNG or JPEG images", path=folder))
    return files


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; an unreadable file is named in the error."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return int(img.size[0]), int(img.size[1])
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise NodeInputError(tr("Image {path} cannot be read: {error}", path=path, error=exc)) from None


def image_items(folder: Path) -> Items:
    """Items of an image or boxes task: one per image file; the key is the file name."""
    files = list_images(folder)
    sizes = [image_size(p) for p in files]
    paths = [str(p) for p in files]
    payloads = [{"image": p, "width": w, "height": h} for p, (w, h) in zip(paths, sizes, strict=True)]
    frame = pl.DataFrame({"image": paths, "width": [w for w, _ in sizes], "height": [h for _, h in sizes]},
                         schema={"image": pl.String, "width": pl.Int64, "height": pl.Int64})
    return Items([p.name for p in files], payloads, frame)


def same_payload(stored: Any, current: dict[str, Any]) -> bool:
    """Whether a stored item still shows what the input shows now (compared as the JSON that was stored)."""
    return stored == json.loads(json.dumps(current, ensure_ascii=False))
