"""Plain-Python change events. The canvas, the CLI progress bar and tests are all just listeners."""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger("ledgerflow.events")

Listener = Callable[..., None]

# Event names, in one place so listeners and emitters cannot drift apart.
NODE_ADDED = "node_added"
NODE_REMOVED = "node_removed"
EDGE_ADDED = "edge_added"
EDGE_REMOVED = "edge_removed"
SETTINGS_CHANGED = "settings_changed"
NODE_CHANGED = "node_changed"  # title, position, disabled
STATE_CHANGED = "state_changed"
PROGRESS = "progress"
LOG = "log"
RUN_FINISHED = "run_finished"


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event: str, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it."""
        with self._lock:
            self._listeners[event].append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners[event]:
                    self._listeners[event].remove(listener)

        return unsubscribe

    def emit(self, event: str, **payload: Any) -> None:
        with self._lock:
            listeners = list(self._listeners.get(event, ()))
        for listener in listeners:
            try:
                listener(**payload)
            except Exception:  # a faulty listener must not break the engine
                log.exception("listener for %s failed", event)
