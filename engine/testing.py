"""Test helpers: run one node in one line, as Orange's `send_signal`/`get_output` do for widgets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.executors.base import run_inline
from engine.sdk import Node


class NodeFailed(AssertionError):
    def __init__(self, message: str, traceback: str | None, input_error: bool) -> None:
        super().__init__(message)
        self.traceback = traceback
        self.input_error = input_error


def run_node(node_cls: type[Node], inputs: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
             *, seed: int = 42, project_dir: Path | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Run a node's compute in-process exactly as an executor would; raise NodeFailed with the node's error."""
    outcome = run_inline(node_cls, inputs, settings, seed=seed, project_dir=project_dir, workdir=workdir)
    if outcome.error is not None:
        raise NodeFailed(outcome.error, outcome.traceback, outcome.input_error)
    assert outcome.outputs is not None
    return outcome.outputs


__all__ = ["run_node", "NodeFailed"]
