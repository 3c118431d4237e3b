"""Project templates: a project document with `{{placeholders}}`, bound to the user's data and label column.

A new project is built in a temporary folder and renamed into place, so a failed `ledgerflow new` leaves nothing.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.project import PROJECT_FILE, Project

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
TEMPLATES = RESOURCES / "templates"
SAMPLE_DATA = RESOURCES / "sampledata" / "credit_applications.csv"
SAMPLE_LABEL = "default"


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATES.glob("*.json"))


def data_columns(path: Path) -> list[str]:
    """Column names of a CSV (any supported encoding/delimiter) or Parquet file."""
    import polars as pl

    if path.suffix.lower() == ".parquet":
        return list(pl.read_parquet_schema(path))
    from nodes.io.csv_reader import decode, sniff_delimiter

    with open(path, "rb") as fh:
        head = fh.read(256 * 1024)
    if not head.strip():
        raise LedgerflowError(tr("{path} is empty", path=path))
    cut = head.rfind(b"\n")
    text, _ = decode(head[: cut + 1] if cut > 0 else head, "auto", path)
    import csv
    import io

    first = next(csv.reader(io.StringIO(text), delimiter=sniff_delimiter(text)), [])
    return [c.strip() for c in first]


def _fill(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{{") and value.endswith("}}"):
        return params[value[2:-2]]
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    return value


def create_project(directory: Path, template: str, data: Path | None = None, label: str | None = None,
                   *, name: str | None = None, time_limit_s: int = 60) -> Project:
    directory = Path(directory).expanduser().resolve()
    if template not in template_names():
        raise LedgerflowError(tr("Unknown template {name!r}; available: {names}", name=template,
                                 names=", ".join(template_names())))
    if directory.exists() and any(directory.iterdir()):
        raise LedgerflowError(tr("{dir} already exists and is not empty; choose a new folder", dir=directory))
    if (data is None) != (label is None) and data is not None:
        raise LedgerflowError(tr("--data needs --label: say which column holds the outcome to predict"))
    use_sample = data is None
    source = SAMPLE_DATA if use_sample else Path(data).expanduser().resolve()
    label = label or SAMPLE_LABEL
    if not source.is_file():
        raise LedgerflowError(tr("Data file not found: {path}", path=source))
    if source.suffix.lower() not in (".csv", ".txt", ".tsv", ".parquet"):
        raise LedgerflowError(tr("{path}: use a .csv or .parquet file", path=source))
    try:
        columns = data_columns(source)
    except LedgerflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt file must give a message, not a traceback
        raise LedgerflowError(tr("Cannot read the columns of {path}: {exc}", path=source,
                                 exc=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    if label not in columns:
        raise LedgerflowError(tr("Label column {label!r} is not in {path}. Columns are: {cols}", label=label,
                                 path=source, cols=", ".join(columns)))
    doc = json.loads((TEMPLATES / f"{template}.json").read_text("utf-8"))
    doc.pop("description", None)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        if use_sample:
            (staging / "data").mkdir()
            shutil.copy2(source, staging / "data" / source.name)
            data_path = f"data/{source.name}"
        else:
            data_path = str(source)
        params = {"data_path": data_path, "label": label, "time_limit": time_limit_s,
                  "reader": "io.read_parquet" if source.suffix.lower() == ".parquet" else "io.read_csv"}
        doc = _fill(doc, params)
        doc["name"] = name or tr(doc["name"])  # template names and node titles are shown in the user's language
        for n in doc["nodes"]:
            n["title"] = tr(n["title"])
        ids = {n["id"]: str(uuid.uuid4()) for n in doc["nodes"]}
        for n in doc["nodes"]:
            n["id"] = ids[n["id"]]
        for e in doc["edges"]:
            e["from"]["node"], e["to"]["node"] = ids[e["from"]["node"]], ids[e["to"]["node"]]
        (staging / PROJECT_FILE).write_text(json.dumps(doc), "utf-8")
        project = Project.load(staging)
        project.save()  # normalised: sorted keys, plugin provenance
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Project.load(directory)
