"""The scheduler: cache-aware, concurrent execution of a graph (ARCHITECTURE.md §3).

A `Session` is one opened project: its graph, artifact store, run log and executors. `run()` computes every
node's cache key, loads what is cached (verified), and runs the rest as a ready-set front: all nodes whose inputs
are available run at once, light ones in threads, heavy ones in worker processes or on Dask. A failure stops only
its descendants.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine import events as ev
from engine.db import open_db
from engine.errors import ArtifactIntegrityError, LedgerflowError
from engine.executors.base import Executor, NodeTask, TaskHandle, TaskOutcome
from engine.executors.inprocess import InProcessExecutor
from engine.fileio import FileFingerprints, canonical_json, sha256_text
from engine.graph import ValidationIssue
from engine.i18n import tr
from engine.project import Project
from engine.runlog import NodeExecution, RunLog
from engine.sdk import FingerprintContext, Node
from engine.store import ArtifactStore, now_iso

log = logging.getLogger("ledgerflow.scheduler")
CACHE_SCHEME = "ledgerflow-cache-v1"


class NodeState(str, Enum):
    IDLE = "idle"
    STALE = "stale"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class NodeStatus:
    state: NodeState = NodeState.IDLE
    cached: bool = False
    cache_key: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # port -> artifact digest
    error: str | None = None
    traceback: str | None = None
    duration_s: float | None = None
    progress: float | None = None
    message: str = ""
    logs: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2000))


@dataclass
class NodeRunResult:
    node_id: str
    title: str
    type_id: str
    status: str
    cached: bool
    duration_s: float | None
    error: str | None
    traceback: str | None = None


@dataclass
class RunReport:
    run_id: str
    nodes: dict[str, NodeRunResult]
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(r.status == NodeState.DONE.value for r in self.nodes.values())

    @property
    def executed(self) -> list[str]:
        return [r.node_id for r in self.nodes.values() if r.status == NodeState.DONE.value and not r.cached]


class UpstreamUnavailable(LedgerflowError):
    """A node cannot be keyed (or run) because an ancestor cannot: it is skipped, not failed."""


class ValidationFailed(LedgerflowError):
    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__(tr("The workflow is not valid:") + "\n" + "\n".join(f"  - {i}" for i in issues))


class Session:
    def __init__(self, project: Project, *, heavy_executor: Executor | None = None,
                 light_executor: Executor | None = None, scheduler_address: str | None = None) -> None:
        self.project = project
        self.graph = project.graph
        self.db = open_db(project.state_dir)
        self.store = ArtifactStore(project.state_dir, self.db)
        self.runlog = RunLog(self.db)
        self.files = FileFingerprints(project.state_dir / "fingerprints.json")
        self.status: dict[str, NodeStatus] = {}
        self._light = light_executor or InProcessExecutor()
        self._heavy = heavy_executor
        self._owned = {"light": light_executor is None, "heavy": heavy_executor is None}  # close only what we made
        self._scheduler_address = scheduler_address
        self._cancel = threading.Event()
        self._running: dict[str, TaskHandle] = {}
        self._lock = threading.Lock()
        for name in (ev.SETTINGS_CHANGED, ev.EDGE_ADDED, ev.EDGE_REMOVED, ev.NODE_ADDED, ev.NODE_CHANGED):
            self.graph.events.subscribe(name, self._on_graph_change)
        self.graph.events.subscribe(ev.NODE_REMOVED, lambda node: self.status.pop(node.id, None))
        self.refresh()

    # ---- executors -----------------------------------------------------------------------------
    @property
    def heavy_executor(self) -> Executor:
        if self._heavy is None:
            if self._scheduler_address:
                from engine.executors.dask import DaskExecutor

                self._heavy = DaskExecutor(self._scheduler_address)
            else:
                from engine.executors.process import LocalProcessExecutor

                self._heavy = LocalProcessExecutor()
        return self._heavy

    def close(self) -> None:
        if self._owned["light"]:
            self._light.close()
        if self._heavy is not None and self._owned["heavy"]:
            self._heavy.close()
        self.files.save()
        self.db.dispose()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- status --------------------------------------------------------------------------------
    def _status(self, node_id: str) -> NodeStatus:
        return self.status.setdefault(node_id, NodeStatus())

    def _set(self, node_id: str, state: NodeState, **changes: Any) -> None:
        st = self._status(node_id)
        st.state = state
        for k, v in changes.items():
            setattr(st, k, v)
        self.graph.events.emit(ev.STATE_CHANGED, node_id=node_id, status=st)

    def _on_graph_change(self, **payload: Any) -> None:
        """Any edit makes the touched node and everything downstream stale (if it had results)."""
        if "edge" in payload:
            start = payload["edge"].dst
        else:
            start = payload["node"].id
            if set(payload.get("changes", {})) <= {"position", "title"} and "changes" in payload:
                return
        if start not in self.graph.nodes:
            return
        for nid in {start} | self.graph.downstream(start):
            st = self._status(nid)
            if st.state in (NodeState.DONE, NodeState.FAILED, NodeState.CANCELLED):
                self._set(nid, NodeState.STALE, cached=False)

    # ---- cache keys ----------------------------------------------------------------------------
    def cache_keys(self, node_ids: set[str]) -> dict[str, str | Exception]:
        """key = sha256(type_id, type_version, canonical settings, seed, source fingerprint, upstream keys).

        Computed for the given nodes and all their ancestors; a node whose key cannot be computed (invalid
        settings, unreadable source file, placeholder) maps to the exception saying why.
        """
        needed = set(node_ids) | self.graph.upstream(*node_ids)
        keys: dict[str, str | Exception] = {}
        fctx = FingerprintContext(self.project.directory, self.files)
        for nid in self.graph.topological_order(needed):
            inst = self.graph.nodes[nid]
            cls = self.graph.node_class(nid)
            try:
                if cls is None:
                    raise LedgerflowError(inst.placeholder_reason or "unknown node type")
                settings = cls.Settings.model_validate(inst.settings)
                parts = [CACHE_SCHEME, cls.type_id, str(cls.version),
                         canonical_json(settings.model_dump(mode="json")), str(self.seed_for(nid)),
                         cls.fingerprint(settings, fctx) or ""]
                incoming = {e.dst_port: e for e in self.graph.incoming(nid)}
                for port in cls.input_ports:
                    e = incoming.get(port)
                    if e is None:
                        parts.append(f"{port}=")
                        continue
                    up = keys[e.src]
                    if isinstance(up, Exception):
                        raise UpstreamUnavailable(tr("not run: upstream node {title!r} failed",
                                                     title=self.graph.nodes[e.src].title))
                    parts.append(f"{port}={up}:{e.src_port}")
                keys[nid] = sha256_text(*parts)
            except (LedgerflowError, ValidationError, OSError) as exc:
                keys[nid] = exc
        self.files.save()
        return keys

    def seed_for(self, node_id: str) -> int:
        """A node's seed: its own `seed` setting when it has one, else the project seed."""
        own = self.graph.nodes[node_id].settings.get("seed")
        return int(own) if isinstance(own, int) else int(self.project.seed)

    def _cache_hit(self, cls: type[Node], nid: str, key: str) -> dict[str, str] | None:
        hit = self.store.lookup(key)
        if hit is None:
            return None
        outputs, receipt = hit
        if set(outputs) != set(cls.output_ports):
            return None
        if receipt is not None or cls.receipt is not Node.receipt:
            settings = cls.Settings.model_validate(self.graph.nodes[nid].settings)
            try:
                current = cls.receipt(settings, FingerprintContext(self.project.directory, self.files))
            except OSError:
                current = None
            if current != receipt:
                return None
        return outputs

    def refresh(self) -> dict[str, NodeStatus]:
        """Recompute every node's state from the cache: reopening a project shows its last results at once."""
        try:
            keys = self.cache_keys(set(self.graph.nodes))
        except LedgerflowError:  # a cycle: nothing can be keyed until it is fixed
            keys = {}
        last = self.store.last_keys()
        for nid in self.graph.nodes:
            key = keys.get(nid)
            cls = self.graph.node_class(nid)
            if isinstance(key, str) and cls is not None and (outs := self._cache_hit(cls, nid, key)) is not None:
                self._set(nid, NodeState.DONE, cached=True, cache_key=key, outputs=outs, error=None)
            elif nid in last:
                self._set(nid, NodeState.STALE, cached=False, cache_key=None, outputs={})
            else:
                self._set(nid, NodeState.IDLE, cached=False, cache_key=None, outputs={})
        return self.status

    # ---- outputs -------------------------------------------------------------------------------
    def output(self, node_id: str, port: str) -> Any:
        """A node's stored output value, verified before it is loaded."""
        cls = self.graph.node_class(node_id)
        st = self._status(node_id)
        if cls is None or port not in st.outputs:
            raise LedgerflowError(tr("Node {title!r} has no result for port {port!r}; run it first",
                                     title=self.graph.node(node_id).title, port=port))
        return self.store.get(cls.output_ports[port].type, st.outputs[port])

    # ---- running -------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        with self._lock:
            handles = list(self._running.values())
        for h in handles:
            h.cancel()

    def _targets(self, until: str | None, only: str | None) -> set[str]:
        if only:
            return {self.graph.find(only).id}
        if until:
            nid = self.graph.find(until).id
            return {nid} | self.graph.upstream(nid)
        return set(self.graph.nodes)

    def run(self, *, until: str | None = None, only: str | None = None) -> RunReport:
        """Run all nodes, a node and its ancestors (`until`), or one node (`only`, upstream must be cached)."""
        self._cancel.clear()
        targets = self._targets(until, only)
        for nid in list(targets):  # a disabled node and its descendants are left out
            if self.graph.nodes[nid].disabled:
                targets -= {nid} | self.graph.downstream(nid)
        issues = [i for i in self.graph.validate() if i.node_id in targets]
        if issues:
            raise ValidationFailed(issues)
        order = self.graph.topological_order(targets)
        keys = self.cache_keys(targets)
        executor_name = self._heavy.name if self._heavy else ("dask" if self._scheduler_address else "local-process")
        run_id = self.runlog.start_run(target=only or until or "all", executor=executor_name)
        results: dict[str, NodeRunResult] = {}
        values: dict[tuple[str, str], Any] = {}
        scratch: list[Path] = []
        to_run: list[str] = []
        failed: set[str] = set()

        def finish(nid: str, state: NodeState, **kw: Any) -> None:
            inst = self.graph.nodes[nid]
            self._set(nid, state, progress=None, **kw)
            st = self._status(nid)
            results[nid] = NodeRunResult(nid, inst.title, inst.type_id, state.value, st.cached, st.duration_s,
                                         st.error, st.traceback)

        # 1. cached or not
        for nid in order:
            key = keys[nid]
            cls = self.graph.node_class(nid)
            if isinstance(key, UpstreamUnavailable):
                to_run.append(nid)  # the front below marks it skipped, naming the failed upstream
                continue
            if isinstance(key, Exception):
                failed.add(nid)
                finish(nid, NodeState.FAILED, cached=False, error=str(key), traceback=None, duration_s=0.0)
                continue
            assert cls is not None
            outs = self._cache_hit(cls, nid, key)
            if outs is not None:
                finish(nid, NodeState.DONE, cached=True, cache_key=key, outputs=outs, error=None, traceback=None)
            else:
                to_run.append(nid)
        # upstream of `only` outside the targets must already have results
        for nid in set(keys) - targets:
            key = keys[nid]
            cls = self.graph.node_class(nid)
            outs = self._cache_hit(cls, nid, key) if isinstance(key, str) and cls else None
            if outs is None:
                raise LedgerflowError(tr("Cannot run only {node!r}: upstream node {up!r} has no results. Run up to "
                                         "{node!r} instead.", node=self.graph.find(only or "").title,
                                         up=self.graph.nodes[nid].title))
            self._set(nid, NodeState.DONE, cached=True, cache_key=key, outputs=outs)

        # 2. load (and verify) cached inputs of nodes that will run; a tampered artifact re-runs its producer
        pending_set = set(to_run)
        for nid in reversed(self.graph.topological_order(set(keys))):
            if nid not in pending_set:
                continue
            for e in self.graph.incoming(nid):
                if e.src in pending_set or (e.src, e.src_port) in values or e.src in failed:
                    continue
                cls = self.graph.node_class(e.src)
                st = self._status(e.src)
                try:
                    values[(e.src, e.src_port)] = self.store.get(cls.output_ports[e.src_port].type,
                                                                 st.outputs[e.src_port])
                except ArtifactIntegrityError as exc:
                    msg = tr("Cached result of {title!r} failed verification and will be recomputed: {exc}",
                             title=self.graph.nodes[e.src].title, exc=exc)
                    log.warning(msg)
                    self.graph.events.emit(ev.LOG, node_id=e.src, level=logging.WARNING, message=msg)
                    self.store.forget(keys[e.src])  # type: ignore[arg-type]
                    if e.src not in targets:
                        raise LedgerflowError(msg) from None
                    pending_set.add(e.src)
                    self._set(e.src, NodeState.STALE, cached=False, outputs={})
        to_run = [n for n in order if n in pending_set]
        for nid in to_run:
            self._set(nid, NodeState.QUEUED, cached=False, error=None, traceback=None, duration_s=None,
                      progress=None, message="")

        # 3. the ready-set front
        running: dict[cf.Future, tuple[str, TaskHandle, str, float]] = {}
        waiting = list(to_run)
        done_ok = {n for n in order if n not in pending_set and n not in failed}
        done_ok |= set(keys) - targets
        try:
            while waiting or running:
                if self._cancel.is_set():
                    for nid in waiting:
                        finish(nid, NodeState.CANCELLED, error=tr("cancelled before it started"))
                    waiting = []
                for nid in list(waiting):
                    parents = {e.src for e in self.graph.incoming(nid)}
                    if parents & failed:
                        waiting.remove(nid)
                        failed.add(nid)
                        bad = sorted(self.graph.nodes[p].title for p in parents & failed)
                        finish(nid, NodeState.STALE, error=tr("not run: upstream node {names} failed",
                                                              names=", ".join(repr(b) for b in bad)))
                        results[nid].status = "skipped"
                    elif parents <= done_ok:
                        waiting.remove(nid)
                        fut, handle, started = self._submit(nid, keys[nid], values, scratch)  # type: ignore[arg-type]
                        running[fut] = (nid, handle, started, time.perf_counter())
                if not running:
                    continue
                done, _ = cf.wait(list(running), timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    nid, handle, started, t0 = running.pop(fut)
                    with self._lock:
                        self._running.pop(nid, None)
                    outcome: TaskOutcome = fut.result()
                    ok = self._complete(run_id, nid, keys[nid], outcome, values, started)  # type: ignore[arg-type]
                    if ok:
                        done_ok.add(nid)
                        finish(nid, NodeState.DONE)
                    elif outcome.cancelled:
                        failed.add(nid)
                        finish(nid, NodeState.CANCELLED)
                    else:
                        failed.add(nid)
                        finish(nid, NodeState.FAILED)
                    self._release_values(nid, values, waiting, running)
        finally:
            for path in scratch:
                shutil.rmtree(path, ignore_errors=True)
        cancelled = self._cancel.is_set()
        report = RunReport(run_id, {n: results[n] for n in order if n in results}, cancelled=cancelled)
        self.runlog.finish_run(run_id, "cancelled" if cancelled else ("ok" if report.ok else "failed"))
        self.graph.events.emit(ev.RUN_FINISHED, report=report)
        return report

    def _release_values(self, nid: str, values: dict, waiting: list[str], running: dict) -> None:
        """Drop in-memory outputs nobody still needs (big tables should not pile up in a long run)."""
        still = set(waiting) | {v[0] for v in running.values()}
        for key in [k for k in values if k[0] != nid]:
            consumers = {e.dst for e in self.graph.outgoing(key[0])}
            if not consumers & still:
                del values[key]

    def _submit(self, nid: str, key: str, values: dict, scratch: list[Path]) -> tuple[cf.Future, TaskHandle, str]:
        inst = self.graph.nodes[nid]
        cls = self.graph.node_class(nid)
        assert cls is not None
        settings = cls.Settings.model_validate(inst.settings).model_dump(mode="json")
        inputs = {e.dst_port: values[(e.src, e.src_port)] for e in self.graph.incoming(nid)}
        workdir = self.store.scratch_dir(create=False)  # the node's Context creates it only if used
        scratch.append(workdir)
        executor = self.heavy_executor if cls.heavy else self._light
        task = NodeTask(node_cls=cls, settings=settings, inputs=inputs, node_id=nid, title=inst.title,
                        seed=self.seed_for(nid), project_dir=str(self.project.directory), workdir=str(workdir),
                        resources=cls.resources())

        def on_event(kind: str, payload: Any) -> None:
            st = self._status(nid)
            if kind == "progress":
                st.progress, st.message = payload[0], payload[1]
                self.graph.events.emit(ev.PROGRESS, node_id=nid, fraction=payload[0], message=payload[1])
            elif kind == "log":
                st.logs.append((payload[0], payload[1]))
                self.graph.events.emit(ev.LOG, node_id=nid, level=payload[0], message=payload[1])

        started = now_iso()
        handle = executor.submit(task, on_event)
        with self._lock:
            self._running[nid] = handle
        if self._cancel.is_set():
            handle.cancel()
        self._set(nid, NodeState.RUNNING, progress=0.0)
        return handle.future, handle, started

    def _complete(self, run_id: str, nid: str, key: str, outcome: TaskOutcome, values: dict, started: str) -> bool:
        """Store a finished node's outputs, index them and write its run record in one transaction."""
        inst = self.graph.nodes[nid]
        cls = self.graph.node_class(nid)
        assert cls is not None
        settings_model = cls.Settings.model_validate(inst.settings)
        inputs = {e.dst_port: self._status(e.src).outputs.get(e.src_port, "") for e in self.graph.incoming(nid)}
        outputs: dict[str, str] = {}
        receipt: str | None = None
        error, tb = outcome.error, outcome.traceback
        if error is None and outcome.outputs is not None:
            try:
                for port, value in outcome.outputs.items():
                    outputs[port] = self.store.put(cls.output_ports[port].type, value)
                    values[(nid, port)] = value
                receipt = cls.receipt(settings_model, FingerprintContext(self.project.directory, self.files))
            except Exception as exc:  # noqa: BLE001 - e.g. disk full while storing
                import traceback as _tb

                error, tb = tr("could not store the outputs: {exc}", exc=exc), _tb.format_exc()
                outputs = {}
        if outcome.input_error:
            tb = None  # the message says what to fix; keep the status readable (the record keeps it)
        state = "done" if error is None else ("cancelled" if outcome.cancelled else "failed")
        prov = self.graph.registry.provenance(cls.type_id)
        execution = NodeExecution(
            run_id=run_id, node_id=nid, node_title=inst.title, type_id=cls.type_id, type_version=cls.version,
            plugin=f"{prov.distribution} {prov.version}",
            executor=self.heavy_executor.name if cls.heavy else self._light.name, started_at=started,
            ended_at=now_iso(), duration_s=outcome.duration_s, settings=settings_model.model_dump(mode="json"),
            cache_key=key, inputs=inputs, outputs=outputs, seed=self.seed_for(nid), outcome=state, error=error,
            traceback=outcome.traceback or tb, host=outcome.host)
        with self.db.begin() as conn:
            if error is None:
                self.store.record(conn, nid, cls.type_id, key, outputs, receipt, outcome.duration_s)
            self.runlog.record(conn, execution)
        st = self._status(nid)
        st.duration_s = outcome.duration_s
        st.error, st.traceback = error, tb
        if error is None:
            st.outputs, st.cache_key, st.cached = outputs, key, False
            return True
        st.outputs, st.cache_key = {}, None
        return False
