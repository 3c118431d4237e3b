"""The executor interface and the one function every executor calls to run a node.

`execute_task` is the same everywhere (thread, worker process, Dask worker): build the settings model and context,
call compute, check the outputs. Executors only differ in where it runs, how events travel back and how a running
task is stopped.
"""
from __future__ import annotations

import concurrent.futures as cf
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from pydantic import ValidationError

from engine.errors import Cancelled, LedgerflowError
from engine.i18n import tr
from engine.sdk import Context, Node

# (kind, payload): kind is "progress" (payload: (fraction, message)) or "log" (payload: (level, message))
EventSink = Callable[[str, Any], None]


@dataclass
class NodeTask:
    """Everything a worker needs to run one node; plain data plus the node class (pickled by reference)."""

    node_cls: type[Node]
    settings: dict[str, Any]
    inputs: dict[str, Any]
    node_id: str
    title: str
    seed: int
    project_dir: str | None
    workdir: str | None = None  # None: the worker makes its own (remote hosts)
    resources: dict[str, float] = field(default_factory=dict)
    transport: bool = False  # encode Model values etc. for a host without our filesystem
    lineage: dict[str, Any] = field(default_factory=dict)  # see Context.lineage


@dataclass
class TaskOutcome:
    outputs: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    cancelled: bool = False
    duration_s: float = 0.0
    host: str = ""
    # True when the error is a user-facing input problem, so the traceback is noise.
    input_error: bool = False


class TaskHandle:
    """A submitted task: its future and a way to stop it."""

    def __init__(self, future: "cf.Future[TaskOutcome]", cancel: Callable[[], None]) -> None:
        self.future = future
        self._cancel = cancel

    def cancel(self) -> None:
        self._cancel()


class Executor(Protocol):
    name: str

    def submit(self, task: NodeTask, on_event: EventSink) -> TaskHandle: ...

    def close(self) -> None: ...


def execute_task(task: NodeTask, emit: EventSink, is_cancelled: Callable[[], bool]) -> TaskOutcome:
    """Run one node's compute and return its outcome; never raises for errors inside the node."""
    import tempfile

    t0 = time.perf_counter()
    host = socket.gethostname()
    workdir = Path(task.workdir) if task.workdir else Path(tempfile.mkdtemp(prefix="ledgerflow-"))
    try:
        cls = task.node_cls
        settings = cls.Settings.model_validate(task.settings)
        inputs = task.inputs
        if task.transport:
            inputs = {p: cls.input_ports[p].type.from_transport(v, workdir) if p in cls.input_ports else v
                      for p, v in inputs.items()}
        ctx = Context(node_id=task.node_id, title=task.title, seed=task.seed, workdir=workdir,
                      project_dir=Path(task.project_dir) if task.project_dir else None, resources=task.resources,
                      lineage=task.lineage,
                      on_progress=lambda f, m: emit("progress", (f, m)),
                      on_log=lambda lvl, m: emit("log", (lvl, m)), is_cancelled=is_cancelled)
        outputs = cls().compute(inputs, settings, ctx)
        if outputs is None:
            outputs = {}
        if not isinstance(outputs, dict):
            raise TypeError(f"compute() must return a dict of output port -> value, got {type(outputs).__name__}")
        missing = set(cls.output_ports) - set(outputs)
        extra = set(outputs) - set(cls.output_ports)
        if missing or extra:
            raise TypeError(f"compute() returned ports {sorted(outputs)}, expected {sorted(cls.output_ports)}")
        for port, value in outputs.items():
            try:
                cls.output_ports[port].type.check(value)
            except TypeError as exc:
                raise TypeError(f"output port {port!r}: {exc}") from None
        if task.transport:
            outputs = {p: cls.output_ports[p].type.to_transport(v) for p, v in outputs.items()}
        return TaskOutcome(outputs=outputs, duration_s=time.perf_counter() - t0, host=host)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        return TaskOutcome(error=tr("Invalid settings: {problems}", problems=problems), input_error=True,
                           duration_s=time.perf_counter() - t0, host=host)
    except Cancelled as exc:
        return TaskOutcome(error=str(exc), cancelled=True, duration_s=time.perf_counter() - t0, host=host)
    except LedgerflowError as exc:
        return TaskOutcome(error=str(exc), traceback=traceback.format_exc(), input_error=True,
                           duration_s=time.perf_counter() - t0, host=host)
    except BaseException as exc:  # noqa: BLE001 - the node's failure is data, reported with its traceback
        if isinstance(exc, KeyboardInterrupt):
            raise
        return TaskOutcome(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                           duration_s=time.perf_counter() - t0, host=host)


def run_inline(node_cls: type[Node], inputs: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
               *, seed: int = 42, project_dir: Path | None = None, workdir: Path | None = None,
               emit: EventSink | None = None) -> TaskOutcome:
    """Run one node's compute in this process, outside any project (tests, `ledgerflow profile`)."""
    import tempfile

    workdir = Path(workdir or tempfile.mkdtemp(prefix="ledgerflow-"))
    task = NodeTask(node_cls=node_cls, settings=settings or {}, inputs=inputs or {}, node_id="inline",
                    title=node_cls.title or node_cls.__name__, seed=seed,
                    project_dir=str(project_dir) if project_dir else None, workdir=str(workdir))
    return execute_task(task, emit or (lambda kind, payload: None), lambda: False)
