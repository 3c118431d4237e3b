"""What may change in the schema of a task people are already labeling.

Colours, hotkeys, instructions and the order of the labels only change how the task looks, and new labels only add
choices, so those are allowed at any time. The kind and multi-label cannot change (every stored value has the old
shape), and a label that a stored label or a model's pre-label uses cannot be removed or renamed: those values would
no longer fit the task. A label nobody used may go.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from engine.i18n import tr
from engine.labels.schema import LabelSchema


def shape_change(old: LabelSchema, new: LabelSchema, task: str) -> str | None:
    """Why `new` cannot replace `old` whatever the stored labels are (kind or multi-label changed), or None."""
    if new.kind != old.kind:
        return tr("Task '{task}' is a {kind} task; its kind cannot change to {new} (stored labels have the {kind} "
                  "shape). Create a new task instead.", task=task, kind=old.kind, new=new.kind)
    if new.multi != old.multi:
        if old.multi:
            return tr("Task '{task}' is multi-label; that cannot change once it exists. Create a new task instead.",
                      task=task)
        return tr("Task '{task}' is not multi-label; that cannot change once it exists. Create a new task instead.",
                  task=task)
    return None


def removed_labels(old: LabelSchema, new: LabelSchema) -> list[str]:
    """Labels of `old` that `new` no longer has (a renamed label is removed under its old name)."""
    kept = set(new.names)
    return [name for name in old.names if name not in kept]


def label_uses(values_json: Iterable[str | None], names: Iterable[str]) -> Counter[str]:
    """How many of the stored values (annotation or pre-label JSON) use each of `names`, each value counted once."""
    wanted = set(names)
    uses: Counter[str] = Counter()
    for text in values_json:
        if not text:
            continue
        value = json.loads(text)
        if not isinstance(value, dict):
            continue
        used = set(value.get("labels") or ())
        for part in (*(value.get("spans") or ()), *(value.get("boxes") or ())):
            if isinstance(part, dict):
                used.add(part.get("label"))
        uses.update(used & wanted)
    return uses


def in_use_message(task: str, label: str, annotations: int, prelabels: int) -> str:
    """The refusal for removing or renaming a used label: which label, and how much uses it."""
    return tr("Label '{label}' of task '{task}' is used by {annotations} stored labels and {prelabels} pre-labels; it "
              "cannot be removed or renamed. Add new labels instead, or keep this one.", label=label, task=task,
              annotations=annotations, prelabels=prelabels)
