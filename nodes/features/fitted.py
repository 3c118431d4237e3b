"""Fitted transforms: fit on training data once, apply the same JSON parameters anywhere else.

A `FittedTransform` (engine.ports) is data, not code: a `kind` naming a registered applier plus JSON `params`.
Applying looks the kind up in this registry, so a transform loaded from someone else's project can only ever run
the appliers shipped here (no pickle, no eval). Several fitted steps chain into one `pipeline` transform, which is
what Predict and Export take, so a model is always scored on features prepared exactly as in training.
"""
from __future__ import annotations

import importlib
from typing import Callable

import polars as pl

from engine.errors import NodeInputError
from engine.i18n import tr
from engine.ports import FittedTransform

Applier = Callable[[dict, pl.DataFrame], pl.DataFrame]
"""(params, table) -> table with the transform applied; raise NodeInputError for bad input."""

PIPELINE = "pipeline"

# Built-in kinds, resolved lazily ("module:function") so importing this module stays cheap and free of cycles.
_BUILTIN: dict[str, str] = {
    "impute": "nodes.features.transforms.impute:apply",
    "scale": "nodes.features.transforms.scale:apply",
    "encode_onehot": "nodes.features.transforms.encode:apply_onehot",
    "encode_target": "nodes.features.transforms.encode:apply_target",
    "encode_woe": "nodes.features.transforms.encode:apply_woe",
    "binning": "nodes.features.transforms.binning:apply",
    "derive": "nodes.features.autofeatures:apply_derive",
}
_REGISTERED: dict[str, Applier] = {}


def register_applier(kind: str, fn: Applier) -> None:
    """Plugins add their own transform kinds here (at import time of the plugin's nodes module)."""
    if kind == PIPELINE or kind in _BUILTIN:
        raise ValueError(f"transform kind {kind!r} is built in")
    _REGISTERED[kind] = fn


def _applier(kind: str) -> Applier:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    target = _BUILTIN.get(kind)
    if target is None:
        raise NodeInputError(tr("Unknown transform kind {kind!r}; it was fitted by a node type that is not "
                                "installed here", kind=kind))
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def steps(transform: FittedTransform | None) -> list[FittedTransform]:
    """The flat list of fitted steps in a transform (a pipeline's steps, or the transform itself)."""
    if transform is None:
        return []
    if transform.kind != PIPELINE:
        return [transform]
    return [FittedTransform(kind=s["kind"], params=s["params"], columns=tuple(s["columns"]))
            for s in transform.params["steps"]]


def chain(*parts: FittedTransform | None) -> FittedTransform:
    """One pipeline applying `parts` in order (pipelines are flattened, None skipped)."""
    flat = [s for p in parts for s in steps(p)]
    if len(flat) == 1:
        return flat[0]
    needed: list[str] = []
    made: set[str] = set()
    for s in flat:  # the pipeline needs the columns its first consumer reads before anything makes them
        needed.extend(c for c in s.columns if c not in made and c not in needed)
        made.update(s.params.get("outputs", []))
    doc = [{"kind": s.kind, "params": s.params, "columns": list(s.columns)} for s in flat]
    return FittedTransform(kind=PIPELINE, params={"steps": doc}, columns=tuple(needed))


def apply_transform(transform: FittedTransform, table: pl.DataFrame) -> pl.DataFrame:
    """Apply every step in order. A missing input column is reported with the step that needs it."""
    for i, step in enumerate(steps(transform), start=1):
        missing = [c for c in step.columns if c not in table.columns]
        if missing:
            raise NodeInputError(tr("Transform step {i} ({kind}) needs column {cols}, which the table does not "
                                    "have. Columns are: {have}", i=i, kind=step.kind,
                                    cols=", ".join(repr(c) for c in missing), have=", ".join(table.columns)))
        table = _applier(step.kind)(step.params, table)
    return table
