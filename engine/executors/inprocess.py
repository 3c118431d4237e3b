"""In-process executor for light nodes: a thread pool. Cancellation is cooperative (ctx.cancelled())."""
from __future__ import annotations

import concurrent.futures as cf
import os
import threading

from engine.executors.base import EventSink, NodeTask, TaskHandle, execute_task


class InProcessExecutor:
    name = "in-process"

    def __init__(self, max_workers: int | None = None) -> None:
        self._pool = cf.ThreadPoolExecutor(max_workers=max_workers or max(2, os.cpu_count() or 2),
                                           thread_name_prefix="ledgerflow-node")

    def submit(self, task: NodeTask, on_event: EventSink) -> TaskHandle:
        flag = threading.Event()
        future = self._pool.submit(execute_task, task, on_event, flag.is_set)
        return TaskHandle(future, flag.set)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
