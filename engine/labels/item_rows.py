"""Item rows for the label store, checked before anything is written: each payload must fit the task's kind, each
model pre-label its schema, and scores must be numbers. Shared by creating a task and appending to it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.i18n import tr
from engine.labels.errors import LabelStoreError
from engine.labels.schema import (
    LabelSchema,
    LabelSchemaError,
    check_payload,
    check_value,
)


def dumps(value: Any) -> str | None:
    """Stored JSON text (compact, non-ASCII kept), or None for None."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def item_rows(schema: LabelSchema, payloads: list[dict[str, Any]], first: int, *,
              prelabels: Sequence[dict[str, Any] | None] | None, confidences: Sequence[float | None] | None,
              uncertainties: Sequence[float | None] | None, external_ids: Sequence[str | None] | None,
              new: bool = False) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Checked item rows (without task_id and order_key) and each item's uncertainty for ordering (0 = unknown).

    Without explicit uncertainties, an item's uncertainty is 1 - confidence of its pre-label. With `new` (items
    appended to a task) messages count among the items given ("new item 3").
    """
    n = len(payloads)
    for label, seq in (("prelabels", prelabels), ("confidences", confidences), ("uncertainties", uncertainties),
                       ("external_ids", external_ids)):
        if seq is not None and len(seq) != n:
            raise LabelStoreError(tr("{what}: {count} values given for {n} items", what=label, count=len(seq), n=n))
    rows: list[dict[str, Any]] = []
    uncert = np.zeros(n, dtype=float)
    for i, payload in enumerate(payloads):
        pos = first + i
        check_payload(schema.kind, payload, where=tr("new item {position}", position=i) if new else
                      tr("item {position}", position=pos))
        pre = prelabels[i] if prelabels is not None else None
        if pre is not None:
            pre = check_value(schema, pre, payload, where=tr("pre-label of new item {position}", position=i) if new
                              else tr("pre-label of item {position}", position=pos))
        conf = number(confidences[i], "confidences", i if new else pos) if confidences is not None else None
        unc = number(uncertainties[i], "uncertainties", i if new else pos) if uncertainties is not None else None
        if unc is None and conf is not None:
            unc = 1.0 - conf
        uncert[i] = unc if unc is not None else 0.0
        ext = external_ids[i] if external_ids is not None else None
        rows.append({"position": pos, "external_id": None if ext is None else str(ext),
                     "payload_json": dumps(payload), "prelabel_json": dumps(pre), "confidence": conf,
                     "uncertainty": unc, "done_count": 0, "complete": False})
    return rows, uncert


def number(value: Any, what: str, position: int) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LabelSchemaError(tr("{what}: item {position} has '{value}', not a number", what=what,
                                  position=position, value=value)) from None
    if math.isnan(number):  # a model gave no score: unknown
        return None
    return number
