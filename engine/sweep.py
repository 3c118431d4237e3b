"""Sweeps: run the part of a workflow that depends on some settings over a parameter grid and/or several datasets,
concurrently, and put what each member measured in one comparison table.

Why members are whole Sessions on copies of the project graph (same node ids, same project folder): every member's
node executions are then ordinary run records of the project's own nodes (the Experiments view lists them, a
reviewer can mark the best one as candidate), they share the project's content-addressed cache, and they run through
the very same executors as `ledgerflow run` (one heavy executor, local worker processes or Dask, shared by all
members). Each member's run is tagged with the sweep in `runs.target` (`sweep:<sweep id>:<member id>`).

What is shared is computed once, before the members start: the nodes that no varied setting reaches (stage
"shared"), then per dataset the nodes that only the dataset reaches (stage "shared:<dataset>"). The members then
find those results in the cache, so twenty members on one table read and split it once, not twenty times at once.
A member that fails, or whose settings are invalid, is recorded with its error; the others go on.
"""
from __future__ import annotations

import concurrent.futures as cf
import copy
import dataclasses
import itertools
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import LedgerflowError
from engine.executors.base import Executor
from engine.fileio import atomic_output_path, canonical_json
from engine.graph import Graph
from engine.i18n import tr
from engine.ports import ReportPort
from engine.project import Project
from engine.runlog import RunLog
from engine.sdk import Node

TARGET_PREFIX = "sweep:"  # runs.target of every run a sweep makes: sweep:<sweep id>:<member id | shared[:<dataset>]>
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "logloss", "log_loss", "brier", "ece", "psi", "max_abs_diff"})
FIXED_COLUMNS = ("member", "dataset", "status", "error", "duration_s", "run_id")


class SweepSpecError(LedgerflowError):
    """The sweep spec cannot be applied to this project (unknown node or setting, bad file, nothing to vary)."""


class SweepSpec(BaseModel):
    """What to vary, where the metrics come from, and how many members run at once.

    Keys are `<node>.<setting>`, the node named by id, id prefix or exact title (as `ledgerflow run --until`).
    `grid` values are crossed (cartesian product); `datasets` keys are zipped (dataset i takes the i-th value of
    every key, e.g. a train and a test path) and every dataset is crossed with every grid point.
    """

    model_config = ConfigDict(extra="forbid")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    datasets: dict[str, list[Any]] = Field(default_factory=dict)
    metrics_from: list[str] = Field(default_factory=list)
    primary_metric: str | None = None
    lower_is_better: bool | None = None  # None: lower is better for error metrics (LOWER_IS_BETTER), else higher
    max_parallel: int = Field(2, ge=1, le=256)

    @field_validator("grid", "datasets")
    @classmethod
    def _values_listed(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in axes.items():
            if not values:
                raise ValueError(tr("{key!r} lists no values", key=key))
            seen = [canonical_json(v) for v in values]
            if len(set(seen)) != len(seen):  # two identical members would race to store the same results
                raise ValueError(tr("{key!r} lists the same value twice", key=key))
        return axes

    @model_validator(mode="after")
    def _something_varies(self) -> "SweepSpec":
        if not self.grid and not self.datasets:
            raise ValueError(tr("a sweep needs a 'grid' or 'datasets' to vary"))
        lengths = {len(v) for v in self.datasets.values()}
        if len(lengths) > 1:
            raise ValueError(tr("every 'datasets' key must list the same number of values (dataset i takes the "
                                "i-th value of each key)"))
        overlap = set(self.grid) & set(self.datasets)
        if overlap:
            raise ValueError(tr("{keys} is in both 'grid' and 'datasets'", keys=", ".join(sorted(overlap))))
        return self

    @classmethod
    def load(cls, path: Path | str) -> "SweepSpec":
        """Read a spec from a JSON file; every problem is a SweepSpecError naming the file."""
        path = Path(path).expanduser()
        try:
            doc = json.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise SweepSpecError(tr("Cannot read the sweep spec {path}: {exc}", path=path,
                                    exc=exc.strerror or exc)) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SweepSpecError(tr("The sweep spec {path} is not valid JSON: {exc}", path=path, exc=exc)) from None
        return cls.parse(doc, where=str(path))

    @classmethod
    def parse(cls, doc: Any, where: str | None = None) -> "SweepSpec":
        where = where or tr("The sweep spec")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
                                 for e in exc.errors())
            raise SweepSpecError(tr("{where} is invalid: {problems}", where=where, problems=problems)) from None


@dataclass(frozen=True)
class Axis:
    """One varied setting: the spec's key and the node and setting it names."""

    key: str
    node_id: str
    setting: str


@dataclass
class Member:
    member_id: str
    params: dict[str, Any]  # grid key -> value
    dataset_index: int | None
    dataset: str | None  # a short label of the dataset values, for the table


@dataclass
class MemberResult:
    member_id: str
    params: dict[str, Any]
    dataset: str | None
    status: str  # ok | failed | invalid | cancelled
    error: str | None = None
    duration_s: float = 0.0
    run_id: str | None = None
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)  # (node title, metric) -> value


@dataclass
class SweepPlan:
    """The resolved spec: which nodes run in each member, which are shared, and the members themselves."""

    project: Project
    spec: SweepSpec
    grid: list[Axis]
    datasets: list[Axis]
    member_nodes: set[str]  # every node a member runs (varied, downstream, and what they need)
    shared: set[str]  # reached by no varied setting: computed once for the whole sweep
    per_dataset: set[str]  # reached by the dataset only: computed once per dataset
    metric_nodes: set[str] | None  # explicit metrics_from; None: every evaluation report among member nodes
    members: list[Member]
    dataset_settings: list[dict[str, dict[str, Any]]]  # per dataset index: node id -> full settings


@dataclass
class SweepResult:
    sweep_id: str
    members: list[MemberResult]
    table: Any  # polars.DataFrame
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(m.status == "ok" for m in self.members)

    def write(self, path: Path | str) -> Path:
        """Write the comparison table atomically as CSV or Parquet (by the file's suffix)."""
        return write_table(self.table, path)


# ---- planning ----------------------------------------------------------------------------------------------------

def _is_writer(cls: type[Node]) -> bool:
    return cls.receipt.__func__ is not Node.receipt.__func__  # type: ignore[attr-defined]


def _axis(graph: Graph, key: str, section: str) -> Axis:
    ref, dot, setting = key.rpartition(".")
    if not dot or not ref or not setting:
        raise SweepSpecError(tr("{section} key {key!r} must be <node>.<setting>, e.g. \"Split.test_fraction\"",
                                section=section, key=key))
    try:
        inst = graph.find(ref)
    except LedgerflowError as exc:
        raise SweepSpecError(tr("{section} key {key!r}: {exc}", section=section, key=key, exc=exc)) from None
    cls = graph.node_class(inst.id)
    if cls is None:
        raise SweepSpecError(tr("{section} key {key!r}: node {title!r} cannot run here ({why})", section=section,
                                key=key, title=inst.title, why=inst.placeholder_reason))
    if setting not in cls.Settings.model_fields:
        raise SweepSpecError(tr("{section} key {key!r}: node {title!r} has no setting {setting!r} (it has: {names})",
                                section=section, key=key, title=inst.title, setting=setting,
                                names=", ".join(cls.Settings.model_fields) or "-"))
    if inst.disabled:
        raise SweepSpecError(tr("{section} key {key!r}: node {title!r} is disabled", section=section, key=key,
                                title=inst.title))
    if _is_writer(cls):
        raise SweepSpecError(tr("{section} key {key!r}: node {title!r} writes files; every member would overwrite "
                                "them", section=section, key=key, title=inst.title))
    return Axis(key, inst.id, setting)


def _label(values: list[Any]) -> str:
    return " | ".join(v if isinstance(v, str) else canonical_json(v) for v in values)


def plan_sweep(project: Project, spec: SweepSpec) -> SweepPlan:
    """Resolve the spec against the project; raise SweepSpecError naming the first problem."""
    graph = project.graph
    grid = [_axis(graph, k, "grid") for k in spec.grid]
    datasets = [_axis(graph, k, "datasets") for k in spec.datasets]
    axes = grid + datasets
    if len({(a.node_id, a.setting) for a in axes}) != len(axes):
        raise SweepSpecError(tr("Two sweep keys name the same node setting"))
    varied = {a.node_id for a in axes}
    sub = varied | graph.downstream(*varied)
    # Writers (and what follows them) are left out: every member would write the same file at the same time.
    for nid in list(sub):
        cls = graph.node_class(nid)
        if nid in sub and (cls is None or _is_writer(cls) or graph.nodes[nid].disabled):
            sub -= {nid} | graph.downstream(nid)
    metric_nodes: set[str] | None = None
    if spec.metrics_from:
        metric_nodes = set()
        for ref in spec.metrics_from:
            try:
                nid = graph.find(ref).id
            except LedgerflowError as exc:
                raise SweepSpecError(tr("metrics_from {ref!r}: {exc}", ref=ref, exc=exc)) from None
            if nid not in sub:
                raise SweepSpecError(tr("metrics_from {ref!r}: no varied setting reaches this node, so it would "
                                        "measure the same thing in every member", ref=ref))
            if not any(p.type is ReportPort for p in graph.output_ports(nid).values()):
                raise SweepSpecError(tr("metrics_from {ref!r}: node {title!r} has no Report output", ref=ref,
                                        title=graph.nodes[nid].title))
            metric_nodes.add(nid)
        sub &= metric_nodes | graph.upstream(*metric_nodes)  # only what the metrics need
    for a in axes:
        if a.node_id not in sub:
            raise SweepSpecError(tr("{key!r}: node {title!r} would not run in the sweep (it follows a disabled node "
                                    "or a file writer, or feeds no metrics_from node)", key=a.key,
                                    title=graph.nodes[a.node_id].title))
    member_nodes = sub | graph.upstream(*sub)
    for nid in sorted(member_nodes):
        if graph.nodes[nid].disabled:
            raise SweepSpecError(tr("Node {title!r} is disabled, but the sweep needs it; enable it first",
                                    title=graph.nodes[nid].title))
    grid_reach = {a.node_id for a in grid} | graph.downstream(*(a.node_id for a in grid))
    data_reach = {a.node_id for a in datasets} | graph.downstream(*(a.node_id for a in datasets))
    shared = member_nodes - grid_reach - data_reach
    per_dataset = (member_nodes - grid_reach) & data_reach

    n_datasets = len(next(iter(spec.datasets.values()))) if spec.datasets else 0
    dataset_settings: list[dict[str, dict[str, Any]]] = []
    for i in range(n_datasets):
        over: dict[str, dict[str, Any]] = {}
        for a in datasets:
            over.setdefault(a.node_id, {})[a.setting] = spec.datasets[a.key][i]
        dataset_settings.append({nid: _merged(graph, nid, values) for nid, values in over.items()})

    points = list(itertools.product(*(spec.grid[a.key] for a in grid))) if grid else [()]
    members: list[Member] = []
    for d in (range(n_datasets) if n_datasets else [None]):
        label = None
        if d is not None:  # the stored (scrubbed) values: a password in a URL never reaches the table
            label = _label([dataset_settings[d][a.node_id][a.setting] for a in datasets])
        for point in points:
            members.append(Member(f"m{len(members) + 1:03d}", {a.key: v for a, v in zip(grid, point)}, d, label))
    return SweepPlan(project, spec, grid, datasets, member_nodes, shared, per_dataset, metric_nodes, members,
                     dataset_settings)


def _merged(graph: Graph, nid: str, values: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A node's settings with sweep values applied, scrubbed like any edit (secrets go to the vault)."""
    cls = graph.node_class(nid)
    assert cls is not None
    return cls.scrub_settings({**copy.deepcopy(base if base is not None else graph.nodes[nid].settings),
                               **copy.deepcopy(values)})


def _settings_problems(graph: Graph, settings: dict[str, dict[str, Any]]) -> str | None:
    """Why these node settings are invalid (per node and field), or None."""
    problems = []
    for nid, values in settings.items():
        cls = graph.node_class(nid)
        assert cls is not None
        try:
            cls.Settings.model_validate(values)
        except ValidationError as exc:
            for e in exc.errors():
                where = ".".join(str(p) for p in e["loc"]) or "settings"
                problems.append(f"{graph.nodes[nid].title}.{where}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(problems) or None


def subproject(project: Project, keep: set[str], settings: dict[str, dict[str, Any]]) -> Project:
    """A copy of the project restricted to `keep`, with some nodes' settings replaced; same folder, so the same
    cache and run log. The original graph is not touched."""
    source = project.graph
    graph = Graph(source.registry)
    for nid in sorted(keep):
        inst = source.nodes[nid]
        graph.insert_node(dataclasses.replace(inst, settings=copy.deepcopy(settings.get(nid, inst.settings))))
    for e in source.edges:
        if e.src in keep and e.dst in keep:
            graph.add_edge(e, check=False)
    return Project(project.path, graph, name=project.name, seed=project.seed, meta=copy.deepcopy(project.meta))


# ---- running -----------------------------------------------------------------------------------------------------

class _TaggedRunLog(RunLog):
    """The session's run log, with the sweep's tag as the run's target (what the Experiments view groups by)."""

    def __init__(self, runlog: RunLog, tag: str) -> None:
        super().__init__(runlog.db)
        self._tag = tag

    def start_run(self, target: str, executor: str) -> str:
        return super().start_run(self._tag, executor)


class Sweep:
    """Run a sweep plan. `cancel()` (any thread) stops the running members and skips the rest."""

    def __init__(self, project: Project, spec: SweepSpec, *, scheduler_address: str | None = None,
                 heavy_executor: Executor | None = None,
                 on_member: Callable[[MemberResult], None] | None = None) -> None:
        self.plan = plan_sweep(project, spec)
        self.sweep_id = str(uuid.uuid4())
        self._scheduler_address = scheduler_address
        self._heavy = heavy_executor
        self._owns_heavy = heavy_executor is None
        self._on_member = on_member
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._active: set[Any] = set()  # running Sessions

    def cancel(self) -> None:
        self._cancel.set()
        self._cancel_active()

    def _cancel_active(self) -> None:
        with self._lock:
            for session in self._active:
                session.cancel()

    def _heavy_executor(self) -> Executor | None:
        """One executor for all members, made before anything runs so a bad Dask address fails the sweep cleanly."""
        if self._heavy is None:
            graph = self.plan.project.graph
            needs = any((cls := graph.node_class(n)) is not None and cls.heavy for n in self.plan.member_nodes)
            if self._scheduler_address:
                from engine.executors.dask import DaskExecutor

                self._heavy = DaskExecutor(self._scheduler_address)
            elif needs:
                from engine.executors.process import LocalProcessExecutor

                self._heavy = LocalProcessExecutor(max_workers=self.plan.spec.max_parallel)
        return self._heavy

    def run(self) -> SweepResult:
        plan = self.plan
        results: dict[str, MemberResult] = {}
        pool = cf.ThreadPoolExecutor(max_workers=plan.spec.max_parallel, thread_name_prefix="ledgerflow-sweep")
        try:
            self._heavy_executor()
            blocked = self._run_shared(pool)
            futures: dict[cf.Future, Member] = {}
            for m in plan.members:
                why = blocked.get(m.dataset_index) or blocked.get("all")
                settings = self._member_settings(m)
                invalid = _settings_problems(plan.project.graph, settings)
                if why or invalid:
                    results[m.member_id] = self._report(MemberResult(
                        m.member_id, m.params, m.dataset, "invalid" if invalid else "failed", invalid or why))
                    continue
                futures[pool.submit(self._run_member, m, settings)] = m
            self._wait(futures, lambda fut, m: results.__setitem__(m.member_id, self._report(fut.result())))
        except BaseException:  # e.g. KeyboardInterrupt: stop the members still running before leaving
            self.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if self._owns_heavy and self._heavy is not None:
                self._heavy.close()
        ordered = [results[m.member_id] for m in plan.members]
        return SweepResult(self.sweep_id, ordered, comparison_table(plan, ordered), self._cancel.is_set())

    def _report(self, result: MemberResult) -> MemberResult:
        if self._on_member is not None:
            self._on_member(result)
        return result

    def _wait(self, futures: dict[cf.Future, Any], on_done: Callable[[cf.Future, Any], None]) -> None:
        """Wait for jobs, re-sending a cancel to running sessions (a session that was starting clears the flag)."""
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                on_done(fut, futures[fut])
            if self._cancel.is_set():
                self._cancel_active()

    def _member_settings(self, m: Member) -> dict[str, dict[str, Any]]:
        """The full settings of every node the member changes (dataset values first, then its grid point)."""
        plan = self.plan
        graph = plan.project.graph
        settings = dict(plan.dataset_settings[m.dataset_index]) if m.dataset_index is not None else {}
        by_node: dict[str, dict[str, Any]] = {}
        for a in plan.grid:
            by_node.setdefault(a.node_id, {})[a.setting] = m.params[a.key]
        for nid, values in by_node.items():
            settings[nid] = _merged(graph, nid, values, settings.get(nid))
        return settings

    def _run_shared(self, pool: cf.ThreadPoolExecutor) -> dict[Any, str]:
        """Compute the shared nodes once, then each dataset's own nodes once. Returns why members cannot run:
        {"all": error} or {dataset index: error}. A cancelled stage blocks nothing: its members see the cancel."""
        plan = self.plan
        groups: dict[Any, int] = {}
        for m in plan.members:
            groups[m.dataset_index] = groups.get(m.dataset_index, 0) + 1
        blocked: dict[Any, str] = {}

        def on_done(fut: cf.Future, key: Any) -> None:
            status, error, *_ = fut.result()
            if status not in ("ok", "cancelled"):
                blocked[key] = (tr("not run: a shared step failed: {error}", error=error) if key == "all" else
                                tr("not run: a step shared by this dataset failed: {error}", error=error))

        if plan.shared and len(plan.members) > 1:
            tag = f"{TARGET_PREFIX}{self.sweep_id}:shared"
            self._wait({pool.submit(self._run_graph, plan.shared, {}, tag): "all"}, on_done)
            if blocked:
                return blocked
        jobs = {}
        for d, count in groups.items():
            if not plan.per_dataset or d is None or count < 2:
                continue  # a dataset with a single member has nothing to share
            settings = plan.dataset_settings[d]
            if _settings_problems(plan.project.graph, settings):
                continue  # its members report the problem themselves
            tag = f"{TARGET_PREFIX}{self.sweep_id}:shared:{d + 1}"
            jobs[pool.submit(self._run_graph, plan.shared | plan.per_dataset, settings, tag)] = d
        self._wait(jobs, on_done)
        return blocked

    def _run_member(self, m: Member, settings: dict[str, dict[str, Any]]) -> MemberResult:
        tag = f"{TARGET_PREFIX}{self.sweep_id}:{m.member_id}"
        status, error, run_id, duration, metrics = self._run_graph(self.plan.member_nodes, settings, tag,
                                                                   collect=True)
        return MemberResult(m.member_id, m.params, m.dataset, status, error, duration, run_id, metrics)

    def _run_graph(self, nodes: set[str], settings: dict[str, dict[str, Any]], tag: str, collect: bool = False
                   ) -> tuple[str, str | None, str | None, float, dict[tuple[str, str], float]]:
        """Run a sub-project through a Session: (status, error, run id, seconds, metrics). Never raises."""
        from engine.scheduler import Session, ValidationFailed

        if self._cancel.is_set():
            return "cancelled", tr("cancelled before it started"), None, 0.0, {}
        t0 = time.perf_counter()
        project = subproject(self.plan.project, nodes, settings)
        session = None
        try:
            session = Session(project, heavy_executor=self._heavy)
            session.runlog = _TaggedRunLog(session.runlog, tag)
            with self._lock:
                self._active.add(session)
            if self._cancel.is_set():
                return "cancelled", tr("cancelled before it started"), None, 0.0, {}
            report = session.run()
            duration = time.perf_counter() - t0
            if report.cancelled:
                return "cancelled", tr("cancelled"), report.run_id, duration, {}
            metrics = self._metrics(session, report) if collect else {}
            if report.ok:
                return "ok", None, report.run_id, duration, metrics
            failed = [r for r in report.nodes.values() if r.status in ("failed", "cancelled")]
            error = "; ".join(f"{r.title}: {r.error}" for r in failed) or tr("the run did not finish")
            return "failed", error, report.run_id, duration, metrics
        except ValidationFailed as exc:
            return "invalid", str(exc), None, time.perf_counter() - t0, {}
        except LedgerflowError as exc:
            return "failed", str(exc), None, time.perf_counter() - t0, {}
        except Exception as exc:  # noqa: BLE001 - one member's unexpected error must not stop the others
            return "failed", f"{type(exc).__name__}: {exc}", None, time.perf_counter() - t0, {}
        finally:
            if session is not None:
                with self._lock:
                    self._active.discard(session)
                session.close()

    def _metrics(self, session: Any, report: Any) -> dict[tuple[str, str], float]:
        """Numeric metrics of the member's reports: those of `metrics_from`, else every evaluation report."""
        wanted = self.plan.metric_nodes
        out: dict[tuple[str, str], float] = {}
        titles = [r.title for r in report.nodes.values()]
        for nid, res in report.nodes.items():
            # two nodes sharing a title keep apart by a short id, as in the Experiments view
            label = res.title if titles.count(res.title) == 1 else f"{res.title} [{nid[:6]}]"
            cls = session.graph.node_class(nid)
            if cls is None or res.status != "done" or (wanted is not None and nid not in wanted):
                continue
            if wanted is None and nid in self.plan.shared:
                continue  # reached by no varied setting: it measures the same thing in every member
            for port, spec in cls.output_ports.items():
                if spec.type is not ReportPort:
                    continue
                try:
                    rep = session.output(nid, port)
                except LedgerflowError:
                    continue
                if wanted is None and rep.kind != "evaluation":
                    continue
                for name, value in rep.metrics.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                        out[(label, str(name))] = float(value)
        return out


def run_sweep(project: Project, spec: SweepSpec, **kwargs: Any) -> SweepResult:
    return Sweep(project, spec, **kwargs).run()


def parse_target(target: str) -> tuple[str, str] | None:
    """(sweep id, member id or "shared[:<dataset>]") of a run a sweep made, from its `runs.target`; else None.
    For views that group run records by sweep."""
    if not target.startswith(TARGET_PREFIX):
        return None
    sweep_id, _, member = target[len(TARGET_PREFIX):].partition(":")
    return (sweep_id, member) if sweep_id and member else None


# ---- the comparison table ----------------------------------------------------------------------------------------

def _column(name: str, values: list[Any]) -> Any:
    """A table column; values that polars cannot hold in one type (mixed, nested) become their JSON text."""
    import polars as pl

    if all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
        try:
            return pl.Series(name, values, strict=True)
        except (TypeError, pl.exceptions.PolarsError):
            pass
    return pl.Series(name, [None if v is None else (v if isinstance(v, str) else canonical_json(v))
                            for v in values], dtype=pl.String)


def comparison_table(plan: SweepPlan, results: list[MemberResult]) -> Any:
    """One row per member: its varied settings, dataset, status, error, seconds, run id and one column per metric,
    best first when a primary metric is given."""
    import polars as pl

    titles = {t for r in results for t, _ in r.metrics}
    names: list[tuple[str, str]] = sorted({k for r in results for k in r.metrics})

    def metric_column(key: tuple[str, str]) -> str:
        name = key[1] if len(titles) <= 1 else f"{key[0]}.{key[1]}"
        return f"metric.{name}" if name in FIXED_COLUMNS or name in plan.spec.grid else name

    cols = [pl.Series("member", [r.member_id for r in results], dtype=pl.String)]
    cols += [_column(a.key, [r.params.get(a.key) for r in results]) for a in plan.grid]
    if plan.datasets:
        cols.append(pl.Series("dataset", [r.dataset for r in results], dtype=pl.String))
    cols += [pl.Series("status", [r.status for r in results], dtype=pl.String),
             pl.Series("error", [r.error for r in results], dtype=pl.String),
             pl.Series("duration_s", [round(r.duration_s, 4) for r in results], dtype=pl.Float64),
             pl.Series("run_id", [r.run_id for r in results], dtype=pl.String)]
    cols += [pl.Series(metric_column(k), [r.metrics.get(k) for r in results], dtype=pl.Float64) for k in names]
    table = pl.DataFrame(cols)
    primary = plan.spec.primary_metric
    if primary:
        column = primary if primary in table.columns else next(
            (metric_column(k) for k in names if k[1] == primary), None)
        if column is None:
            return table  # no member measured it (all failed, say): keep member order
        lower = plan.spec.lower_is_better
        if lower is None:
            lower = primary.rsplit(".", 1)[-1].lower() in LOWER_IS_BETTER
        table = table.sort(column, descending=not lower, nulls_last=True, maintain_order=True)
    return table


def table_path(path: Path | str) -> Path:
    """Where the table will go; refused before the sweep runs unless it is a .csv or .parquet file."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise SweepSpecError(tr("Write the sweep table to a .csv or .parquet file (got {path})", path=path))
    return path


def write_table(table: Any, path: Path | str) -> Path:
    """Write atomically: a reader never sees half a table. CSV or Parquet, by suffix."""
    path = table_path(path)
    with atomic_output_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            table.write_csv(tmp)
        else:
            table.write_parquet(tmp)
    return path
