"""The label schema of a labeling task (which labels, their colours and hotkeys, the instructions) and the check
that an annotation's value fits it.

Business staff see these labels and press these hotkeys, so a schema that would confuse them (two labels with one
name or one hotkey, a colour the canvas cannot draw, multi-label on a kind that has no such thing) is refused when
the task is defined, with a message that names the offending field.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import LedgerflowError
from engine.i18n import N_, tr

KINDS = ("record", "text", "spans", "image", "boxes")
Kind = Literal["record", "text", "spans", "image", "boxes"]
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOTKEY = re.compile(r"^[1-9a-zA-Z]$")
# the single-label kinds whose value is {"labels": [...]}
_CLASSIFICATION = ("record", "text", "image")
_PAYLOAD_KEY = {"record": "fields", "text": "text", "spans": "text", "image": "image", "boxes": "image"}


class LabelSchemaError(LedgerflowError):
    """A label schema, an item payload or an annotation value that does not fit the task; the message says where."""


class LabelDef(BaseModel):
    """One label as labelers see it: a name, a colour for chips, spans and boxes, and an optional one-key hotkey."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., title=N_("Name"), description=N_("The label's name, as stored and exported."))
    color: str = Field("#4e79a7", title=N_("Colour"), description=N_("Colour as #rrggbb."))
    hotkey: str | None = Field(None, title=N_("Hotkey"), description=N_("A digit 1-9 or a letter."))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(tr("labels: a label name is empty"))
        return value

    @field_validator("color")
    @classmethod
    def _color(cls, value: str) -> str:
        if not _COLOR.match(value):
            raise ValueError(tr("color: '{value}' is not a colour of the form #rrggbb (e.g. #1f77b4)", value=value))
        return value.lower()

    @field_validator("hotkey")
    @classmethod
    def _hotkey(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not _HOTKEY.match(value):
            raise ValueError(tr("hotkey: '{value}' must be one digit 1-9 or one letter", value=value))
        return value.lower()


class LabelSchema(BaseModel):
    """The labels of a task; stored as JSON with the task."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(..., title=N_("Task kind"))
    multi: bool = Field(False, title=N_("Multi-label"), description=N_("Text classification only: several labels "
                                                                         "per item."))
    labels: list[LabelDef] = Field(..., title=N_("Labels"))
    instructions: str = Field("", title=N_("Instructions"), description=N_("Shown to labelers above each item."))

    @model_validator(mode="after")
    def _consistent(self) -> LabelSchema:
        if not self.labels:
            raise ValueError(tr("labels: a task needs at least one label"))
        seen: dict[str, str] = {}
        for label in self.labels:
            key = label.name.casefold()
            if key in seen:
                raise ValueError(tr("labels: the name '{name}' is used twice (names are compared ignoring case)",
                                    name=label.name))
            seen[key] = label.name
        keys: dict[str, str] = {}
        for label in self.labels:
            if label.hotkey is None:
                continue
            if label.hotkey in keys:
                raise ValueError(tr("hotkey: '{key}' is used by both '{first}' and '{second}'", key=label.hotkey,
                                    first=keys[label.hotkey], second=label.name))
            keys[label.hotkey] = label.name
        if self.multi and self.kind != "text":
            raise ValueError(tr("multi: multi-label applies to text classification only, not to kind '{kind}'",
                                kind=self.kind))
        return self

    @classmethod
    def parse(cls, data: LabelSchema | dict[str, Any]) -> LabelSchema:
        """Validate a schema dict; every problem is reported as one LabelSchemaError naming its field."""
        if isinstance(data, LabelSchema):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise LabelSchemaError(tr("The label schema is not valid: {problems}",
                                      problems="; ".join(_describe(e) for e in exc.errors()))) from None

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _describe(error: dict[str, Any]) -> str:
    """'labels[1].color: ...' for a field error; the message alone when it already names its field."""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    loc = error.get("loc", ())
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if where and message.startswith(f"{loc[-1]}: "):
        message = message[len(f"{loc[-1]}: "):]
    return f"{where}: {message}" if where else message


def check_payload(kind: str, payload: Any, where: str) -> None:
    """An item's payload must carry what its kind shows: fields of a record, a text, or an image path."""
    key = _PAYLOAD_KEY[kind]
    ok = isinstance(payload, dict) and key in payload and (
        isinstance(payload[key], dict) if key == "fields" else isinstance(payload[key], str))
    if not ok:
        expected = {"fields": '{"fields": {column: value}}', "text": '{"text": "..."}',
                    "image": '{"image": "path/to/file.png"}'}[key]
        raise LabelSchemaError(tr("{where}: a '{kind}' item needs a payload like {expected}", where=where, kind=kind,
                                  expected=expected))


def check_value(schema: LabelSchema, value: Any, payload: dict[str, Any] | None = None,
                where: str = "value") -> dict[str, Any]:
    """Validate an annotation value against the schema (and the item's text for spans); returns it normalised."""
    names = set(schema.names)

    def unknown(label: Any) -> LabelSchemaError:
        return LabelSchemaError(tr("{where}: '{label}' is not one of this task's labels ({names})", where=where,
                                   label=label, names=", ".join(schema.names)))

    if not isinstance(value, dict):
        raise LabelSchemaError(tr("{where}: an annotation value must be a JSON object", where=where))
    if schema.kind in _CLASSIFICATION:
        labels = value.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise LabelSchemaError(tr('{where}: expected {{"labels": [...]}} with label names', where=where))
        for label in labels:
            if label not in names:
                raise unknown(label)
        if len(set(labels)) != len(labels):
            raise LabelSchemaError(tr("{where}: a label is given twice", where=where))
        if schema.multi:
            if not labels:
                raise LabelSchemaError(tr("{where}: choose at least one label", where=where))
        elif len(labels) != 1:
            raise LabelSchemaError(tr("{where}: choose exactly one label (got {count})", where=where,
                                      count=len(labels)))
        return {"labels": list(labels)}
    if schema.kind == "spans":
        spans = value.get("spans")
        if not isinstance(spans, list):
            raise LabelSchemaError(tr('{where}: expected {{"spans": [...]}}', where=where))
        text_len = len(payload["text"]) if payload and isinstance(payload.get("text"), str) else None
        out = []
        for i, span in enumerate(spans):
            if not isinstance(span, dict) or not {"start", "end", "label"} <= span.keys():
                raise LabelSchemaError(tr("{where}: span {index} needs start, end and label", where=where, index=i))
            start, end, label = span["start"], span["end"], span["label"]
            if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or \
                    isinstance(end, bool) or not 0 <= start < end or (text_len is not None and end > text_len):
                raise LabelSchemaError(tr("{where}: span {index} ({start}-{end}) is not a range inside the text",
                                          where=where, index=i, start=start, end=end))
            if label not in names:
                raise unknown(label)
            out.append({"start": start, "end": end, "label": label})
        return {"spans": sorted(out, key=lambda s: (s["start"], s["end"], s["label"]))}
    boxes = value.get("boxes")
    if not isinstance(boxes, list):
        raise LabelSchemaError(tr('{where}: expected {{"boxes": [...]}}', where=where))
    out = []
    for i, box in enumerate(boxes):
        if not isinstance(box, dict) or not {"x", "y", "w", "h", "label"} <= box.keys():
            raise LabelSchemaError(tr("{where}: box {index} needs x, y, w, h and label", where=where, index=i))
        try:
            x, y, w, h = (float(box[k]) for k in ("x", "y", "w", "h"))
        except (TypeError, ValueError):
            raise LabelSchemaError(tr("{where}: box {index} has a coordinate that is not a number", where=where,
                                      index=i)) from None
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise LabelSchemaError(tr("{where}: box {index} must have x, y >= 0 and a positive width and height",
                                      where=where, index=i))
        if box["label"] not in names:
            raise unknown(box["label"])
        out.append({"x": x, "y": y, "w": w, "h": h, "label": box["label"]})
    return {"boxes": out}
