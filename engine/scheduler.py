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
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine import events as ev
from engine.db import open_db
from engine.errors import ArtifactIntegrityError, LedgerflowError
from engine.executors.base import Executor, NodeTask, TaskHandle, TaskOutcome, execute_task
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


@dataclass
class _Run:
    """The working state of one run, passed between its steps."""

    run_id: str
    keys: dict[str, str | Exception]
    targets: set[str]
    order: list[str]
    only: str | None = None
    results: dict[str, NodeRunResult] = field(default_factory=dict)
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    scratch: list[Path] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    done_ok: set[str] = field(default_factory=set)
    waiting: list[str] = field(default_factory=list)
    running: dict[cf.Future, tuple[str, TaskHandle, str, float]] = field(default_factory=dict)
    inlined: set[str] = field(default_factory=set)  # nodes run in the scheduler's own thread


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
        self.files = FileFingerprints(project.state_dir / "fingerprints.json")
        self.store = ArtifactStore(project.state_dir, self.db, self.files)
        self.runlog = RunLog(self.db)
        self.status: dict[str, NodeStatus] = {}
        self._light = light_executor or InProcessExecutor()
        self._heavy = heavy_executor
        self._owned = {"light": light_executor is None, "heavy": heavy_executor is None}  # close only what we made
        self._scheduler_address = scheduler_address
        self._cancel = threading.Event()  # set from any thread (a signal handler too); the run loop acts on it
        self._run_lock = threading.Lock()
        self._sources: dict[str, str] = {}  # node id -> source data fingerprint, for run records
        self._unsubscribe = [self.graph.events.subscribe(name, self._on_graph_change) for name in
                             (ev.SETTINGS_CHANGED, ev.EDGE_ADDED, ev.EDGE_REMOVED, ev.NODE_ADDED, ev.NODE_CHANGED)]
        self._unsubscribe.append(self.graph.events.subscribe(ev.NODE_REMOVED,
                                                             lambda node: self.status.pop(node.id, None)))
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
        for unsubscribe in self._unsubscribe:  # a closed session no longer reacts to edits
            unsubscribe()
        if self._owned["light"]:
            self._light.close()
        if self._heavy is not None and self._owned["heavy"]:
            self._heavy.close()
        self.files.save()
        self.store.close()
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
            self._sources.pop(nid, None)
            try:
                if cls is None:
                    raise LedgerflowError(inst.placeholder_reason or "unknown node type")
                settings = cls.Settings.model_validate(inst.settings)
                source = cls.fingerprint(settings, fctx)
                if source:
                    self._sources[nid] = source
                parts = [CACHE_SCHEME, cls.type_id, str(cls.version),
                         canonical_json(settings.model_dump(mode="json")), str(self.seed_for(nid)), source or ""]
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
        if receipt is not None or cls.receipt.__func__ is not Node.receipt.__func__:  # a writer: is its file intact?
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
        """Ask the current run to stop: queued nodes are cancelled, running ones stopped. Safe from any thread
        and from a signal handler (it only sets a flag)."""
        self._cancel.set()

    def _targets(self, until: str | None, only: str | None) -> set[str]:
        if only:
            return {self.graph.find(only).id}
        if until:
            nid = self.graph.find(until).id
            return {nid} | self.graph.upstream(nid)
        return set(self.graph.nodes)

    def run(self, *, until: str | None = None, only: str | None = None) -> RunReport:
        """Run all nodes, a node and its ancestors (`until`), or one node (`only`, upstream must be cached)."""
        if not self._run_lock.acquire(blocking=False):
            raise LedgerflowError(tr("A run of this project is already in progress"))
        try:
            return self._run(until, only)
        finally:
            self._run_lock.release()

    def _run(self, until: str | None, only: str | None) -> RunReport:
        self._cancel.clear()
        targets = self._targets(until, only)
        for nid in list(targets):  # a disabled node and its descendants are left out
            if self.graph.nodes[nid].disabled:
                targets -= {nid} | self.graph.downstream(nid)
        issues = [i for i in self.graph.validate() if i.node_id in targets]
        if issues:
            raise ValidationFailed(issues)
        keys = self.cache_keys(targets)
        executor_name = self._heavy.name if self._heavy else ("dask" if self._scheduler_address else "local-process")
        r = _Run(run_id=self.runlog.start_run(target=only or until or "all", executor=executor_name),
                 keys=keys, targets=targets, order=self.graph.topological_order(targets), only=only)
        outcome = "failed"
        try:
            self._classify(r)
            self._load_cached_inputs(r)
            if any(self.graph.node_class(n).heavy for n in r.waiting):  # type: ignore[union-attr]
                _ = self.heavy_executor  # connect (e.g. to Dask) before any node starts: a bad address fails cleanly
            self._front(r)
            report = RunReport(r.run_id, {n: r.results[n] for n in r.order if n in r.results},
                               cancelled=self._cancel.is_set())
            outcome = "cancelled" if report.cancelled else ("ok" if report.ok else "failed")
        except BaseException:
            self._abort(r)
            raise
        finally:
            for path in r.scratch:
                shutil.rmtree(path, ignore_errors=True)
            self.runlog.finish_run(r.run_id, outcome)
        self.graph.events.emit(ev.RUN_FINISHED, report=report)
        return report

    def _finish(self, r: "_Run", nid: str, state: NodeState, status: str | None = None, **kw: Any) -> None:
        inst = self.graph.nodes[nid]
        self._set(nid, state, progress=None, **kw)
        st = self._status(nid)
        r.results[nid] = NodeRunResult(nid, inst.title, inst.type_id, status or state.value, st.cached,
                                       st.duration_s, st.error, st.traceback)

    def _classify(self, r: "_Run") -> None:
        """Step 1: which target nodes are cached (their artifacts verified), which must run, which cannot."""
        for nid in r.order:
            key = r.keys[nid]
            if isinstance(key, UpstreamUnavailable):
                r.waiting.append(nid)  # the front marks it skipped, naming the failed upstream
            elif isinstance(key, Exception):
                r.failed.add(nid)
                self._finish(r, nid, NodeState.FAILED, cached=False, error=str(key), traceback=None, duration_s=0.0)
                self._record_unexecuted(r, nid, "failed", str(key))
            elif (outs := self._verified_hit(nid, key)) is not None:
                self._finish(r, nid, NodeState.DONE, cached=True, cache_key=key, outputs=outs, error=None,
                             traceback=None)
            else:
                r.waiting.append(nid)
        for nid in set(r.keys) - r.targets:  # upstream of `only`: must already have results
            key = r.keys[nid]
            outs = self._verified_hit(nid, key) if isinstance(key, str) else None
            if outs is None:
                raise LedgerflowError(tr("Cannot run only {node!r}: upstream node {up!r} has no results. Run up to "
                                         "{node!r} instead.", node=self.graph.find(r.only or "").title,
                                         up=self.graph.nodes[nid].title))
            self._set(nid, NodeState.DONE, cached=True, cache_key=key, outputs=outs)

    def _verified_hit(self, nid: str, key: str) -> dict[str, str] | None:
        """Outputs of a signed cache entry whose artifacts pass verification; a damaged one is dropped."""
        cls = self.graph.node_class(nid)
        if cls is None or (outs := self._cache_hit(cls, nid, key)) is None:
            return None
        try:
            for port, digest in outs.items():
                self.store.verify(cls.output_ports[port].type, digest)
        except ArtifactIntegrityError as exc:
            self._distrust(nid, key, outs, exc)
            return None
        return outs

    def _distrust(self, nid: str, key: str, outputs: dict[str, str], exc: Exception) -> None:
        msg = tr("Cached result of {title!r} failed verification and will be recomputed: {exc}",
                 title=self.graph.nodes[nid].title, exc=exc)
        log.warning(msg)
        self.graph.events.emit(ev.LOG, node_id=nid, level=logging.WARNING, message=msg)
        self.store.forget(key)
        cls = self.graph.node_class(nid)
        for port, digest in outputs.items():
            try:
                self.store.verify(cls.output_ports[port].type, digest)  # type: ignore[union-attr]
            except ArtifactIntegrityError:
                self.store.quarantine_artifact(digest)

    def _load_cached_inputs(self, r: "_Run") -> None:
        """Step 2: load the cached inputs of nodes that will run; a damaged one re-runs its producer."""
        pending = set(r.waiting)
        for nid in reversed(self.graph.topological_order(set(r.keys))):
            if nid not in pending:
                continue
            for e in self.graph.incoming(nid):
                if e.src in pending or (e.src, e.src_port) in r.values or e.src in r.failed:
                    continue
                cls = self.graph.node_class(e.src)
                st = self._status(e.src)
                try:
                    r.values[(e.src, e.src_port)] = self.store.get(cls.output_ports[e.src_port].type,  # type: ignore
                                                                   st.outputs[e.src_port])
                except ArtifactIntegrityError as exc:  # changed since step 1
                    self._distrust(e.src, r.keys[e.src], dict(st.outputs), exc)  # type: ignore[arg-type]
                    if e.src not in r.targets:
                        raise LedgerflowError(str(exc)) from None
                    pending.add(e.src)
                    self._set(e.src, NodeState.STALE, cached=False, outputs={})
        r.waiting = [n for n in r.order if n in pending]
        for nid in r.waiting:
            self._set(nid, NodeState.QUEUED, cached=False, error=None, traceback=None, duration_s=None,
                      progress=None, message="")
        r.done_ok = ({n for n in r.order if n not in pending and n not in r.failed}
                     | (set(r.keys) - r.targets))

    def _front(self, r: "_Run") -> None:
        """Step 3: run every node whose inputs are ready, concurrently, until none is left.

        Only the children of nodes that just finished are re-examined, so scheduling stays linear in graph size.
        """
        cancel_sent = False
        candidates = set(r.waiting)
        while r.waiting or r.running:
            if self._cancel.is_set():
                for nid in r.waiting:
                    self._finish(r, nid, NodeState.CANCELLED, error=tr("cancelled before it started"))
                    self._record_unexecuted(r, nid, "cancelled", tr("cancelled before it started"))
                r.waiting, candidates = [], set()
                if not cancel_sent:
                    for _, handle, _, _ in r.running.values():
                        handle.cancel()
                    cancel_sent = True
            ready = self._ready(r, candidates)
            candidates = set()
            # A lone light node with nothing else running gains nothing from a thread: run it right here.
            inline = (len(ready) == 1 and not r.running and self._owned["light"]
                      and not self.graph.node_class(ready[0]).heavy)  # type: ignore[union-attr]
            for nid in ready:
                t0 = time.perf_counter()
                if inline:
                    r.inlined.add(nid)
                handle, started = self._submit(nid, r.keys[nid], r.values, r.scratch, inline,  # type: ignore[arg-type]
                                               self._lineage(nid, r))
                r.running[handle.future] = (nid, handle, started, t0)
                if self._cancel.is_set():
                    handle.cancel()
            if not r.running:
                continue
            done, _ = cf.wait(list(r.running), timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                nid, _, started, t0 = r.running[fut]
                outcome: TaskOutcome = fut.result()
                if not outcome.duration_s:  # a killed or crashed worker reports none
                    outcome.duration_s = time.perf_counter() - t0
                ok = self._complete(r, nid, outcome, started)
                del r.running[fut]
                if ok:
                    r.done_ok.add(nid)
                    self._finish(r, nid, NodeState.DONE)
                else:
                    r.failed.add(nid)
                    self._finish(r, nid, NodeState.CANCELLED if outcome.cancelled else NodeState.FAILED)
                candidates |= {e.dst for e in self.graph.outgoing(nid)}
                self._release_values(nid, r.values, r.waiting, r.running)

    def _ready(self, r: "_Run", candidates: set[str]) -> list[str]:
        """Waiting candidates whose inputs are all available, in order; those behind a failure are skipped."""
        ready: list[str] = []
        for nid in [n for n in r.waiting if n in candidates]:
            parents = {e.src for e in self.graph.incoming(nid)}
            if parents & r.failed:
                r.waiting.remove(nid)
                r.failed.add(nid)
                names = ", ".join(sorted(repr(self.graph.nodes[p].title) for p in parents & r.failed))
                error = tr("not run: upstream node {names} failed", names=names)
                self._finish(r, nid, NodeState.STALE, status="skipped", error=error)
                self._record_unexecuted(r, nid, "skipped", error)
                ready.extend(self._ready(r, {e.dst for e in self.graph.outgoing(nid)}))  # its own descendants
            elif parents <= r.done_ok:
                r.waiting.remove(nid)
                ready.append(nid)
        return ready

    def _abort(self, r: "_Run") -> None:
        """An unexpected error in the run loop: stop what is running and leave no node 'running' or 'queued'."""
        for _, handle, _, _ in r.running.values():
            handle.cancel()
        cf.wait(list(r.running), timeout=10)
        for nid in r.order:
            if self._status(nid).state in (NodeState.QUEUED, NodeState.RUNNING):
                self._set(nid, NodeState.CANCELLED, progress=None, error=tr("the run stopped on an internal error"))

    def _record_unexecuted(self, r: "_Run", nid: str, outcome: str, error: str) -> None:
        """A run record for a node that failed before executing, was skipped, or was cancelled while queued."""
        inst = self.graph.nodes[nid]
        prov = self.graph.registry.provenance(inst.type_id)
        key = r.keys.get(nid)
        stamp = now_iso()
        with self.db.begin() as conn:
            self.runlog.record(conn, NodeExecution(
                run_id=r.run_id, node_id=nid, node_title=inst.title, type_id=inst.type_id,
                type_version=inst.type_version, plugin=f"{prov.distribution} {prov.version}", executor="none",
                started_at=stamp, ended_at=stamp, duration_s=0.0, settings=inst.settings,
                cache_key=key if isinstance(key, str) else "", inputs=self._input_hashes(nid, r), outputs={},
                seed=self.seed_for(nid), outcome=outcome, error=error))

    def _source_changed(self, cls: type[Node], settings: Any, nid: str) -> bool:
        """True when a source file no longer has the hash its cache key was computed from (a stat, usually)."""
        try:
            return cls.fingerprint(settings, FingerprintContext(self.project.directory, self.files)) != \
                self._sources[nid]
        except (LedgerflowError, OSError):
            return True

    def _input_hashes(self, nid: str, r: "_Run") -> dict[str, str]:
        """Lineage of one execution: upstream artifact digests per port (only from upstream results available in
        this run), and the source data's own hash."""
        inputs = {e.dst_port: self._status(e.src).outputs.get(e.src_port, "") if e.src in r.done_ok else ""
                  for e in self.graph.incoming(nid)}
        if nid in self._sources:
            inputs["source_data"] = self._sources[nid]
        return inputs

    def _release_values(self, nid: str, values: dict, waiting: list[str], running: dict) -> None:
        """Drop in-memory outputs nobody still needs (big tables should not pile up in a long run)."""
        still = set(waiting) | {v[0] for v in running.values()}
        for key in [k for k in values if k[0] != nid]:
            consumers = {e.dst for e in self.graph.outgoing(key[0])}
            if not consumers & still:
                del values[key]

    def _lineage(self, nid: str, r: "_Run") -> dict[str, Any]:
        """Context.lineage for one execution: this run, and per input port the upstream artifact's digest, node
        and the run that produced it (for a cache hit, the earlier run whose execution stored it)."""
        inputs = {}
        for e in self.graph.incoming(nid):
            digest = self._status(e.src).outputs.get(e.src_port, "") if e.src in r.done_ok else ""
            key = r.keys.get(e.src)
            inputs[e.dst_port] = {"digest": digest or None, "node_id": e.src,
                                  "run_id": self.runlog.producing_run(key) if isinstance(key, str) else None}
        return {"run_id": r.run_id, "node_id": nid, "inputs": inputs}

    def _submit(self, nid: str, key: str, values: dict, scratch: list[Path],
                inline: bool = False, lineage: dict[str, Any] | None = None) -> tuple[TaskHandle, str]:
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
                        resources=cls.resources(), lineage=lineage or {})

        def on_event(kind: str, payload: Any) -> None:
            st = self._status(nid)
            if kind == "progress":
                st.progress, st.message = payload[0], payload[1]
                self.graph.events.emit(ev.PROGRESS, node_id=nid, fraction=payload[0], message=payload[1])
            elif kind == "log":
                st.logs.append((payload[0], payload[1]))
                self.graph.events.emit(ev.LOG, node_id=nid, level=payload[0], message=payload[1])

        started = now_iso()
        if inline:
            self._set(nid, NodeState.RUNNING, progress=0.0)
            done: cf.Future[TaskOutcome] = cf.Future()
            done.set_result(execute_task(task, on_event, self._cancel.is_set))
            return TaskHandle(done, lambda: None), started
        handle = executor.submit(task, on_event)
        self._set(nid, NodeState.RUNNING, progress=0.0)
        return handle, started

    def _complete(self, r: "_Run", nid: str, outcome: TaskOutcome, started: str) -> bool:
        """Store a finished node's outputs, index them and write its run record in one transaction.

        Returns True on success. Never raises: a failure to store or record fails this node, with the reason.
        """
        inst = self.graph.nodes[nid]
        cls = self.graph.node_class(nid)
        assert cls is not None
        key = r.keys[nid]
        assert isinstance(key, str)
        settings_model = cls.Settings.model_validate(inst.settings)
        outputs: dict[str, str] = {}
        receipt: str | None = None
        error, tb = outcome.error, outcome.traceback
        if error is None and nid in self._sources and self._source_changed(cls, settings_model, nid):
            error = tr("The source data of {title!r} changed while it was being read; its result was not kept. "
                       "Run again.", title=inst.title)
            outcome.input_error = True
        if error is None and outcome.outputs is not None:
            try:
                for port, value in outcome.outputs.items():
                    outputs[port] = self.store.put(cls.output_ports[port].type, value)
                    r.values[(nid, port)] = value
                receipt = cls.receipt(settings_model, FingerprintContext(self.project.directory, self.files))
            except Exception as exc:  # noqa: BLE001 - e.g. disk full while storing
                error, tb, outputs = tr("could not store the outputs: {exc}", exc=exc), traceback.format_exc(), {}
        if outcome.input_error:
            tb = None  # the message says what to fix; keep the status readable (the record keeps it)
        state = "done" if error is None else ("cancelled" if outcome.cancelled else "failed")
        prov = self.graph.registry.provenance(cls.type_id)
        inline = nid in r.inlined
        execution = NodeExecution(
            run_id=r.run_id, node_id=nid, node_title=inst.title, type_id=cls.type_id, type_version=cls.version,
            plugin=f"{prov.distribution} {prov.version}",
            executor="in-process" if inline else (self.heavy_executor.name if cls.heavy else self._light.name),
            started_at=started, ended_at=now_iso(), duration_s=outcome.duration_s,
            settings=settings_model.model_dump(mode="json"), cache_key=key, inputs=self._input_hashes(nid, r),
            outputs=outputs, seed=self.seed_for(nid), outcome=state, error=error,
            traceback=outcome.traceback or tb, host=outcome.host)
        try:
            with self.db.begin() as conn:
                if error is None:
                    self.store.record(conn, nid, cls.type_id, key, outputs, receipt, outcome.duration_s)
                self.runlog.record(conn, execution)
        except Exception as exc:  # noqa: BLE001 - e.g. database locked, signing key unreadable
            error, tb, outputs = tr("could not record the result: {exc}", exc=exc), traceback.format_exc(), {}
        st = self._status(nid)
        st.duration_s = outcome.duration_s
        st.error, st.traceback = error, tb
        if error is None:
            st.outputs, st.cache_key, st.cached = outputs, key, False
            return True
        st.outputs, st.cache_key = {}, None
        return False
