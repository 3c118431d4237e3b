"""Local worker-process executor for heavy nodes.

A small pool of persistent worker processes (spawned, so no inherited threads or locks), each running one task at
a time. Why not concurrent.futures/loky/pebble: we need per-task streamed progress and logs, a hard cancel that
kills the task's whole process group within a second, and a crash (segfault, os._exit) that fails only its own
node while the pool replaces the worker. Each worker is its own session leader, so a kill also reaches the child
processes a library (AutoGluon, LightGBM) may start.
"""
from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import threading
import time
import weakref
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from engine.executors.base import EventSink, NodeTask, TaskHandle, TaskOutcome, execute_task
from engine.i18n import tr


def _watch_parent(parent: int) -> None:
    """The worker leads its own session (so a kill reaches its children); when its parent dies, e.g. a Dask
    worker killed for memory, nobody else would stop it, so it stops itself and its children."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)


def _worker_main(conn: Connection) -> None:
    parent = os.getppid()
    os.setsid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="ledgerflow-parent-watch").start()
    os.dup2(2, 1)  # library chatter goes to stderr, never into a CLI's JSON on stdout
    folder = os.environ.get("LEDGERFLOW_PLUGIN_DIR")
    if folder:  # node classes from a plugins folder are pickled by module name; make those modules importable
        from engine.registry import Registry

        Registry().load_folder(Path(folder))
    lock = threading.Lock()

    def send(msg: Any) -> None:
        with lock:
            conn.send(msg)

    send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        outcome = execute_task(task, lambda kind, payload: send(("event", kind, payload)), lambda: False)
        try:
            send(("result", outcome))
        except Exception as exc:  # noqa: BLE001 - e.g. an output that cannot cross processes
            send(("result", TaskOutcome(error=f"the node's outputs could not be sent back: {exc}",
                                        duration_s=outcome.duration_s, host=outcome.host)))


class _Worker:
    def __init__(self, context: Any) -> None:
        parent, child = context.Pipe(duplex=True)
        # Not daemonic: a daemonic process may not start children, and libraries parallelise with them
        # (scikit-learn's loky, used by AutoGluon's forests). Pools are stopped at exit, and a worker whose
        # parent dies stops itself (_watch_parent).
        self.proc = context.Process(target=_worker_main, args=(child,), daemon=False, name="ledgerflow-worker")
        self.proc.start()
        child.close()
        self.conn: Connection = parent
        self._ready = False
        self._killed = False
        self._kill_lock = threading.Lock()

    def wait_ready(self) -> None:
        if not self._ready:
            msg = self.conn.recv()
            assert msg[0] == "ready", msg
            self._ready = True

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        """Kill the worker and its session; safe to call twice (never signals a pid that was reaped)."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.join(timeout=2)
            self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.kill()


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return tr("did not exit")
    if exitcode < 0:
        try:
            return tr("was killed by signal {name}", name=signal.Signals(-exitcode).name)
        except ValueError:
            return tr("was killed by signal {num}", num=-exitcode)
    return tr("exited with code {code}", code=exitcode)


class _Job:
    def __init__(self, task: NodeTask, on_event: EventSink) -> None:
        self.task = task
        self.on_event = on_event
        self.future: cf.Future[TaskOutcome] = cf.Future()
        self.worker: _Worker | None = None
        self.cancelled = False
        self.lock = threading.Lock()


_OPEN_POOLS: "weakref.WeakSet[LocalProcessExecutor]" = weakref.WeakSet()


@atexit.register
def _close_open_pools() -> None:
    """Runs before multiprocessing joins non-daemonic children at exit, so idle workers never block exit."""
    for pool in list(_OPEN_POOLS):
        pool.close()


class LocalProcessExecutor:
    name = "local-process"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or max(1, min(4, os.cpu_count() or 1))
        self._context = mp.get_context("spawn")
        self._slots = threading.Semaphore(self.max_workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        _OPEN_POOLS.add(self)

    def warm(self, count: int = 1) -> None:
        """Start workers ahead of the first heavy node, so dispatch costs a message, not a process start."""
        with self._lock:
            need = min(count, self.max_workers) - len(self._idle)
            new = [_Worker(self._context) for _ in range(max(0, need))]
        for w in new:
            w.wait_ready()
        with self._lock:
            self._idle.extend(new)

    def _acquire(self) -> _Worker:
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.alive():
                    return w
        w = _Worker(self._context)
        w.wait_ready()
        return w

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed or not worker.alive():
                worker.stop()
            else:
                self._idle.append(worker)

    def submit(self, task: NodeTask, on_event: EventSink) -> TaskHandle:
        job = _Job(task, on_event)
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"ledgerflow-job-{task.title}").start()
        return TaskHandle(job.future, lambda: self._cancel(job))

    def _cancel(self, job: _Job) -> None:
        with job.lock:
            if job.future.done():
                return  # finished already: its worker may be serving another job now
            job.cancelled = True
            worker = job.worker
            if worker is None:  # still waiting for a slot: resolve now, _run will skip it
                job.future.set_result(TaskOutcome(error=tr("cancelled before it started"), cancelled=True))
        if worker is not None:
            worker.kill()

    def _run(self, job: _Job) -> None:
        with self._slots:
            with job.lock:
                if job.cancelled:
                    return  # resolved by _cancel
            try:
                worker = self._acquire()
            except Exception as exc:  # noqa: BLE001
                self._resolve(job, TaskOutcome(error=tr("could not start a worker process: {exc}", exc=exc)))
                return
            with job.lock:
                if job.cancelled:  # cancelled while a worker was being found: give it back unused
                    self._release(worker)
                    return
                job.worker = worker
            try:
                worker.conn.send(job.task)
                while True:
                    # Watch the process too: a child the node forked may keep the pipe open after a crash.
                    ready = wait([worker.conn, worker.proc.sentinel])
                    if worker.conn not in ready:
                        raise EOFError("worker process ended")
                    msg = worker.conn.recv()
                    if msg[0] == "event":
                        job.on_event(msg[1], msg[2])
                    elif msg[0] == "result":
                        with job.lock:
                            job.worker = None
                            late_cancel = job.cancelled  # a kill may be on its way: don't reuse this worker
                        self._resolve(job, msg[1])
                        if late_cancel:
                            worker.kill()
                        else:
                            self._release(worker)
                        return
            except (EOFError, OSError, BrokenPipeError):
                worker.kill()  # the whole session: a crashed worker's children go too
                if job.cancelled:
                    outcome = TaskOutcome(error=tr("cancelled; its worker process was stopped"), cancelled=True)
                else:
                    outcome = TaskOutcome(error=tr(
                        "The worker process running node {title!r} {how}. The node failed; other nodes and the "
                        "runner are unaffected.", title=job.task.title, how=describe_exit(worker.proc.exitcode)))
                self._resolve(job, outcome)
            except Exception as exc:  # noqa: BLE001 - e.g. a node class or input that cannot be pickled
                worker.kill()
                self._resolve(job, TaskOutcome(error=tr(
                    "could not send node {title!r} to a worker process (its class and inputs must be importable "
                    "and picklable): {exc}", title=job.task.title, exc=exc)))

    @staticmethod
    def _resolve(job: _Job, outcome: TaskOutcome) -> None:
        with job.lock:
            if not job.future.done():
                job.future.set_result(outcome)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for w in idle:
            w.stop()
