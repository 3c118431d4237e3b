"""The labeling workspace (`ledgerflow label`, File ▸ Labeling…): business staff label a project's tasks one item at
a time, keyboard first. The tasks themselves come from the Label node; labels live in engine.labels.store."""
from __future__ import annotations

from app.labeling.window import LabelingWindow, run_labeling

__all__ = ["LabelingWindow", "run_labeling"]
