"""CLI progress: one more listener on the engine's events (the canvas is another).

On a terminal it shows a live progress bar per running node (rich); otherwise one plain line per finished node,
so CI logs stay readable. Everything goes to stderr, keeping stdout for `--json`.
"""
from __future__ import annotations

import sys
import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from engine import events as ev
from engine.graph import Graph
from engine.i18n import tr

_MARK = {"done": "✓", "failed": "✗", "cancelled": "■", "stale": "·", "skipped": "·"}


class ProgressView:
    def __init__(self, graph: Graph, quiet: bool = False) -> None:
        self.graph = graph
        self.quiet = quiet
        self.console = Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal and not quiet
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                 TextColumn("{task.fields[message]}"), TimeElapsedColumn(), console=self.console,
                                 transient=True)
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._unsubs: list[Any] = []

    def __enter__(self) -> "ProgressView":
        if not self.quiet:
            self._unsubs = [self.graph.events.subscribe(ev.STATE_CHANGED, self._on_state),
                            self.graph.events.subscribe(ev.PROGRESS, self._on_progress)]
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for u in self._unsubs:
            u()
        if self.live:
            self.progress.stop()

    def _title(self, node_id: str) -> str:
        return self.graph.nodes[node_id].title

    def _on_state(self, node_id: str, status: Any) -> None:
        state = status.state.value
        with self._lock:
            if state == "running" and self.live:
                self._tasks[node_id] = self.progress.add_task(self._title(node_id), total=1.0, message="")
            elif state in ("done", "failed", "cancelled"):
                task = self._tasks.pop(node_id, None)
                if task is not None:
                    self.progress.remove_task(task)
                if state == "done" and status.cached:
                    return  # cached nodes are listed in the summary, not as they are found
                secs = f"{status.duration_s:.2f}s" if status.duration_s is not None else ""
                line = f"{_MARK[state]} {self._title(node_id)} {secs}"
                if status.error:
                    line += f" — {status.error.splitlines()[0]}"
                self.console.print(line, markup=False)

    def _on_progress(self, node_id: str, fraction: float | None, message: str) -> None:
        with self._lock:
            task = self._tasks.get(node_id)
            if task is not None and fraction is not None:
                self.progress.update(task, completed=fraction, message=message)

    def summary(self, report: Any, metrics: dict[str, dict], project: Any) -> None:
        c = self.console
        ran = len(report.executed)
        cached = sum(1 for r in report.nodes.values() if r.cached)
        c.print(tr("Run {run} finished: {ok}. {ran} node(s) executed, {cached} from cache.", run=report.run_id[:8],
                   ok=tr("ok") if report.ok else tr("with failures"), ran=ran, cached=cached), markup=False)
        for r in report.nodes.values():
            if r.status != "done":
                c.print(f"  {_MARK.get(r.status, '?')} {r.title}: {r.status}" + (f" — {r.error}" if r.error else ""),
                        markup=False)
        for title, m in metrics.items():
            shown = ", ".join([f"{k}={v:.4f}" for k, v in m.items() if k in ("auc", "ks", "gini", "accuracy",
                                                                              "rmse", "mae", "r2")]
                              + [f"max_abs_diff={m['max_abs_diff']:.3g}"] * ("max_abs_diff" in m)
                              + [f"package={m['package']}"] * ("package" in m))
            c.print(f"  {title}: {shown}", markup=False)
        c.print(tr("Results are cached in {path}; 'ledgerflow runs {proj}' lists the run records.",
                   path=project.state_dir, proj=project.directory), markup=False)
