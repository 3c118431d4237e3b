"""What the label store refuses, as exceptions the workspace and the Label node show to people."""
from __future__ import annotations

from engine.errors import LedgerflowError


class LabelStoreError(LedgerflowError):
    """A labeling request that cannot be carried out (unknown task, duplicate name, nothing to undo)."""


class LabelConflict(LabelStoreError):
    """A write based on a version that is no longer the stored one; the message says who changed it and when."""


class LabelPermissionError(LabelStoreError):
    """Someone acting outside their role: a labeler not assigned to the task, a reviewer checking their own work."""
