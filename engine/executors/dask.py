"""dask.distributed executor: heavy nodes run on remote (or loopback) Dask workers.

Nodes are annotated with their resources (`GPU=1` for GPU nodes), so only workers started with
`--resources GPU=1` take them. Values cross as transport payloads (a model folder travels as a zip), because a
remote worker does not share our filesystem. Progress and logs come back through Dask's structured event log.

On the worker, the node runs in a child process of the worker's own LocalProcessExecutor, so a cancel (a
distributed Event, polled twice a second) kills it at once and a segfault fails one node instead of killing the
Dask worker (which Dask would then retry elsewhere). Workers that run as daemonic processes (a nanny's default)
cannot have children; there the node runs in the worker's thread and cancellation is cooperative. Start workers
with `DASK_DISTRIBUTED__WORKER__DAEMON=False` to get the hard guarantees.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from engine.executors.base import EventSink, NodeTask, TaskHandle, TaskOutcome, execute_task
from engine.i18n import tr

_POOL_LOCK = threading.Lock()
_POOL: list[Any] = []  # this worker process's LocalProcessExecutor, made on first use


def _worker_pool(size: int) -> Any | None:
    if multiprocessing.current_process().daemon:
        return None
    with _POOL_LOCK:
        if not _POOL:
            from engine.executors.process import LocalProcessExecutor

            _POOL.append(LocalProcessExecutor(max_workers=max(1, size)))
        return _POOL[0]


def _run_on_worker(task: NodeTask, topic: str, cancel_name: str) -> TaskOutcome:
    from distributed import Event, get_worker

    worker = get_worker()
    cancel_event = Event(cancel_name)

    def emit(kind: str, payload: Any) -> None:
        worker.log_event(topic, {"kind": kind, "payload": list(payload)})

    pool = _worker_pool(worker.state.nthreads)
    if pool is None:
        last_check = [0.0, False]

        def is_cancelled() -> bool:
            now = time.monotonic()  # ask the scheduler at most twice a second
            if now - last_check[0] > 0.5:
                last_check[0], last_check[1] = now, cancel_event.is_set()
            return bool(last_check[1])

        outcome = execute_task(task, emit, is_cancelled)
    else:
        handle = pool.submit(task, emit)
        try:
            while True:
                try:
                    outcome = handle.future.result(timeout=0.5)
                    break
                except cf.TimeoutError:
                    if cancel_event.is_set():
                        handle.cancel()
        finally:
            if not handle.future.done():  # e.g. the scheduler connection was lost: don't leave the child running
                handle.cancel()
    outcome.host = f"{outcome.host} ({worker.address})"
    return outcome


class DaskExecutor:
    name = "dask"

    def __init__(self, address: str, timeout: float = 20) -> None:
        from distributed import Client

        self.address = address
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except OSError as exc:
            from engine.errors import LedgerflowError

            raise LedgerflowError(tr("Cannot reach the Dask scheduler at {addr}: {exc}. Check the address and that "
                                     "the scheduler is running.", addr=address, exc=exc)) from None

    def submit(self, task: NodeTask, on_event: EventSink) -> TaskHandle:
        from distributed import Event

        uid = uuid.uuid4().hex
        topic, cancel_name = f"ledgerflow-{uid}", f"ledgerflow-cancel-{uid}"
        local_workdir = Path(task.workdir or tempfile.mkdtemp(prefix="ledgerflow-"))
        out_ports = task.node_cls.output_ports
        in_ports = task.node_cls.input_ports
        inputs = {p: in_ports[p].type.to_transport(v) for p, v in task.inputs.items()}
        task = dataclasses.replace(task, inputs=inputs, workdir=None, transport=True)

        def relay(event: Any) -> None:
            _, msg = event
            on_event(msg["kind"], tuple(msg["payload"]))

        self.client.subscribe_topic(topic, relay)
        resources = task.node_cls.resources() or None
        dfut = self.client.submit(_run_on_worker, task, topic, cancel_name, resources=resources, pure=False,
                                  key=f"{task.node_cls.type_id}-{uid}")
        future: cf.Future[TaskOutcome] = cf.Future()

        def done(f: Any) -> None:
            try:
                self.client.unsubscribe_topic(topic)
            except Exception:  # noqa: BLE001
                pass
            try:
                outcome = _outcome_of(f)
            except BaseException as exc:  # noqa: BLE001 - the scheduler must never wait forever
                outcome = TaskOutcome(error=tr("could not collect the result from Dask: {exc}", exc=exc))
            try:
                future.set_result(outcome)
            except cf.InvalidStateError:  # cancelled first
                pass

        def _outcome_of(f: Any) -> TaskOutcome:
            if f.status == "finished":
                outcome: TaskOutcome = f.result()
                if outcome.outputs is not None:  # payloads back into local values (a model zip -> a folder)
                    outcome.outputs = {p: out_ports[p].type.from_transport(v, local_workdir)
                                       for p, v in outcome.outputs.items()}
                return outcome
            if f.status == "cancelled":
                return TaskOutcome(error=tr("cancelled"), cancelled=True)
            exc = f.exception()
            if type(exc).__name__ == "KilledWorker":
                return TaskOutcome(error=tr("The Dask worker running node {title!r} died repeatedly ({exc}). The "
                                            "node failed; other nodes are unaffected.", title=task.title, exc=exc))
            return TaskOutcome(error=f"{type(exc).__name__}: {exc}")

        dfut.add_done_callback(done)

        def cancel() -> None:
            try:
                Event(cancel_name, client=self.client).set()
            except Exception:  # noqa: BLE001
                pass
            dfut.cancel()
            try:
                future.set_result(TaskOutcome(error=tr("cancelled"), cancelled=True))
            except cf.InvalidStateError:  # the result arrived first
                pass

        return TaskHandle(future, cancel)

    def close(self) -> None:
        self.client.close()
