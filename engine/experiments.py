"""Experiments: every execution of a training node (any node with a Model output) is an experiment run.

Nothing is stored twice. A run is the node's run record (engine/runlog.py: settings, input fingerprints, packages,
seed, user, host, times, outcome, output digests) plus what its outputs measured, summarised into the record's
`metrics_json` when it is written (`summarize_outputs`): model metadata and validation metrics from a Model's info,
metrics and compact ROC/KS curves from an evaluation Report. An evaluation is linked to the model it scored through
the fingerprints: the evaluation record names the digests of its Model inputs, the training record names the digest
of its Model output.

Curves travel in an evaluation Report as two tables with fixed, untranslated names (`ROC_TABLE`, `KS_TABLE`,
built by `curve_tables`), because `Report.metrics` holds scalars only. A report without them still records its
metrics; the curves are simply absent.

Candidates: a reviewer marks one run of a training node as the candidate for promotion. Marks are an append-only
audit trail (who, when, host, note); replacing the current candidate must be asked for explicitly.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import numbers
import re
import socket
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy import Engine, insert, or_, select

from engine import db
from engine.errors import LedgerflowError
from engine.i18n import tr

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from engine.project import Project
    from engine.registry import Registry

ROC_TABLE = "_roc_curve"  # columns fpr, tpr
# columns score, cum_neg, cum_pos (cumulative shares of negatives/positives at or below score) and optionally share
# (of all rows at or below score), which puts models with differently scaled scores on one axis
KS_TABLE = "_ks_curve"
MAX_CURVE_POINTS = 200
KEY_METRICS = ("auc", "ks", "gini", "rmse", "r2", "accuracy")  # the headline metrics of a run, in this order
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MODEL_INFO_KEYS = ("label", "problem_type", "best_model", "eval_metric", "positive_class", "train_rows")


class UnknownRun(LedgerflowError):
    """A run id that names no experiment run of the project."""


class CandidateConflict(LedgerflowError):
    """Marking a run while another run of the same node is the candidate, without asking to replace it."""


# ---- curves carried by evaluation reports --------------------------------------------------------------------


def _thin(n: int, max_points: int) -> "np.ndarray":
    import numpy as np

    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def curve_tables(y: "np.ndarray", score: "np.ndarray", max_points: int = MAX_CURVE_POINTS) -> dict[str, "pl.DataFrame"]:
    """Compact ROC and KS curves (at most `max_points` each) for `report.tables`, so runs can be overlaid later.

    `y` is 1 for the positive class and 0 otherwise; `score` the positive-class probability. The KS curve keeps
    the point of maximum separation exactly.
    """
    import numpy as np
    import polars as pl
    from sklearn.metrics import roc_curve

    y = np.asarray(y).astype(int)
    s = np.asarray(score, dtype=float)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
    keep = _thin(len(fpr), max_points)
    roc = pl.DataFrame({"fpr": fpr[keep].astype(float), "tpr": tpr[keep].astype(float)})
    order = np.sort(s)
    pos = np.searchsorted(np.sort(s[y == 1]), order, side="right") / max(1, int((y == 1).sum()))
    neg = np.searchsorted(np.sort(s[y == 0]), order, side="right") / max(1, int((y == 0).sum()))
    idx = _thin(len(order), max_points - 1)
    idx = np.unique(np.append(idx, int(np.argmax(np.abs(neg - pos))))) if len(order) else idx
    share = np.searchsorted(order, order, side="right") / max(1, len(order))
    ks = pl.DataFrame({"score": order[idx].astype(float), "cum_neg": neg[idx].astype(float),
                       "cum_pos": pos[idx].astype(float), "share": share[idx].astype(float)})
    return {ROC_TABLE: roc, KS_TABLE: ks}


# ---- what a record's outputs measured (written with the run record) -----------------------------------------


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or (isinstance(value, numbers.Real)
                                                                 and math.isfinite(float(value)))


def _scalars(d: Any) -> dict[str, Any]:
    return {str(k): v for k, v in d.items() if _scalar(v)} if isinstance(d, dict) else {}


def _artifact(root: Path, digest: str) -> Path | None:
    """The folder of a stored artifact; digests come from the store, but are checked before naming a path."""
    return root / digest[:2] / digest if isinstance(digest, str) and _HEX64.match(digest) else None


def _curves(folder: Path, names: list[str]) -> dict[str, dict[str, list[float]]]:
    import polars as pl

    wanted = {ROC_TABLE: ("roc", ("fpr", "tpr")), KS_TABLE: ("ks", ("score", "cum_neg", "cum_pos"))}
    curves: dict[str, dict[str, list[float]]] = {}
    for i, name in enumerate(names):
        if name not in wanted:
            continue
        key, columns = wanted[name]
        frame = pl.read_parquet(folder / "tables" / f"{i}.parquet")
        if set(columns) <= set(frame.columns) and frame.height <= 4 * MAX_CURVE_POINTS:
            kept = [*columns, *(["share"] if key == "ks" and "share" in frame.columns else [])]
            curves[key] = {c: [round(float(v), 6) for v in frame[c].to_list()] for c in kept}
    return curves


def summarize_outputs(artifacts: Path, outputs: dict[str, str], inputs: dict[str, str]) -> dict[str, Any]:
    """What one execution's outputs measured, read back from the artifacts just stored (JSON and Parquet only).

    {"models": {port: {digest, flavor, label, problem_type, best_model, n_features, metrics, ...}},
     "evaluations": {port: {title, metrics, curves, models: [digests of the Model inputs it scored]}}}
    Empty when no output is a Model or an evaluation Report. Generic: no node type is named here.
    """
    models: dict[str, Any] = {}
    evaluations: dict[str, Any] = {}
    for port, digest in outputs.items():
        folder = _artifact(artifacts, digest)
        if folder is None:
            continue
        if (folder / "model.json").is_file():
            meta = json.loads((folder / "model.json").read_text("utf-8"))
            info = meta.get("info") or {}
            models[port] = {"digest": digest, "flavor": meta.get("flavor"),
                            **{k: info[k] for k in _MODEL_INFO_KEYS if k in info and _scalar(info[k])},
                            "n_features": len(info.get("features") or []),
                            "metrics": _scalars(info.get("metrics"))}
        elif (folder / "report.json").is_file():
            doc = json.loads((folder / "report.json").read_text("utf-8"))
            if doc.get("kind") != "evaluation":
                continue
            scored = [d for d in inputs.values() if (f := _artifact(artifacts, d)) and (f / "model.json").is_file()]
            evaluations[port] = {"digest": digest, "title": doc.get("title", ""),
                                 "metrics": _scalars(doc.get("metrics")),
                                 "curves": _curves(folder, list(doc.get("tables", []))), "models": scored}
    summary: dict[str, Any] = {}
    if models:
        summary["models"] = models
    if evaluations:
        summary["evaluations"] = evaluations
    return summary


# ---- query API ---------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """One evaluation of a run's model: which node scored it, in which record, and what it measured."""

    record_id: int
    node_id: str
    node_title: str
    title: str
    started_at: str
    metrics: dict[str, Any]
    curves: dict[str, dict[str, list[float]]]
    data: list[str] = field(default_factory=list)  # fingerprints of the data it scored (its non-model inputs)
    in_sample: bool = False  # it scored data the model was trained on (optimistic metrics)


@dataclass
class ExperimentRun:
    id: int  # the run record's id: unique within the project
    project: str
    run_id: str  # the workflow run this execution belonged to
    node_id: str
    node_title: str
    type_id: str
    type_version: int
    plugin: str
    user: str
    host: str
    executor: str
    started_at: str
    ended_at: str
    duration_s: float
    outcome: str
    error: str | None
    seed: int
    settings: dict[str, Any]
    inputs: dict[str, str]  # data fingerprints per input port (and "source_data")
    outputs: dict[str, str]
    packages: dict[str, str]
    environment: str
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    candidate: bool = False

    @property
    def model(self) -> dict[str, Any]:
        """The first Model output's summary ({} for a run that produced none, e.g. a failed one)."""
        return next(iter(self.models.values()), {})

    @property
    def model_name(self) -> str:
        m = self.model
        return str(m.get("best_model") or m.get("flavor") or "")

    @property
    def metrics(self) -> dict[str, float]:
        """Numeric metrics, flattened: "<evaluating node>.<name>" per evaluation, then "validation.<name>" from
        the model (several Model outputs are told apart by port)."""
        flat: dict[str, float] = {}
        for e in self.evaluations:  # held-out evaluations first (see Experiments._run)
            for k, v in e.metrics.items():
                if _number(v):
                    flat[f"{e.node_title}.{k}"] = _plain(v)
        many = len(self.models) > 1
        for port, m in self.models.items():
            for k, v in m.get("metrics", {}).items():
                if _number(v):
                    flat[f"{port}.validation.{k}" if many else f"validation.{k}"] = _plain(v)
        return flat

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["model_name"], doc["metrics"] = self.model_name, self.metrics
        return doc


def key_metrics(run: ExperimentRun, limit: int = 3) -> list[tuple[str, float]]:
    """A run's headline metrics: from its first evaluation (held-out data first) where it has them, else
    validation ones."""
    metrics = run.metrics
    sources = [f"{e.node_title}." for e in run.evaluations] + ["validation.", ""]
    picked: list[tuple[str, float]] = []
    for name in KEY_METRICS:
        key = next((s + name for s in sources if s + name in metrics), None) or \
            next((k for k in metrics if k.rsplit(".", 1)[-1] == name), None)
        if key is not None and len(picked) < limit:
            picked.append((key, metrics[key]))
    return picked


def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _plain(v: Any) -> float:
    """A metric as a plain Python number (counts stay integers, so they show without decimals)."""
    return int(v) if isinstance(v, numbers.Integral) else float(v)


@dataclass(frozen=True)
class MetricCondition:
    """`name op value`, e.g. Evaluate.auc >= 0.7. A name without a dot matches that metric from any source."""

    name: str
    op: str
    value: float

    _OPS = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__, "<": float.__lt__, "=": float.__eq__}

    @classmethod
    def parse(cls, text: str) -> "MetricCondition":
        m = re.match(r"^\s*([^<>=]+?)\s*(>=|<=|>|<|=)\s*(\S+)\s*$", text)
        try:
            if m is None:
                raise ValueError
            return cls(m.group(1), m.group(2), float(m.group(3)))
        except ValueError:
            raise LedgerflowError(tr("A metric condition looks like auc>=0.7 or Evaluate.ks>0.3 (got {got!r})",
                                     got=text)) from None

    def matches(self, metrics: dict[str, float]) -> bool:
        values = [v for k, v in metrics.items() if k == self.name or ("." not in self.name and
                                                                        k.rsplit(".", 1)[-1] == self.name)]
        return any(self._OPS[self.op](float(v), self.value) for v in values)

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value:g}"


@dataclass
class RunFilter:
    node: str | None = None  # node id or title
    type_id: str | None = None
    user: str | None = None
    since: str | None = None  # ISO date or date-time; UTC unless it names an offset
    until: str | None = None  # inclusive: a bare date means the whole day
    outcome: str | None = None  # done | failed | cancelled | skipped
    metrics: Sequence[MetricCondition] = ()
    text: str | None = None  # case-insensitive, in node, type, model, user, settings and error
    candidates_only: bool = False

    def __post_init__(self) -> None:  # bad dates fail when the filter is made, not half-way through a listing
        self._since = _bound(self.since, end=False) if self.since else None
        self._until = _bound(self.until, end=True) if self.until else None

    def matches(self, run: ExperimentRun) -> bool:
        return not (
            (self.node and self.node not in (run.node_id, run.node_title)) or
            (self.type_id and run.type_id != self.type_id) or (self.user and run.user != self.user) or
            (self.outcome and run.outcome != self.outcome) or (self._since and run.started_at < self._since) or
            (self._until and run.started_at >= self._until) or (self.candidates_only and not run.candidate) or
            (self.metrics and not all(c.matches(run.metrics) for c in self.metrics)) or
            (self.text and not _has_text(run, self.text)))


def _has_text(run: ExperimentRun, text: str) -> bool:
    hay = " ".join([run.node_title, run.node_id, run.type_id, run.model_name, run.user, run.host, run.outcome,
                    run.error or "", json.dumps(run.settings, ensure_ascii=False)])
    return text.casefold() in hay.casefold()


def _bound(text: str, end: bool) -> str:
    """An ISO date/date-time as a UTC timestamp string comparable with the records' `started_at`."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day = _dt.datetime.fromisoformat(text.strip()).replace(tzinfo=_dt.timezone.utc)
            moment = day + _dt.timedelta(days=1) if end else day
        else:
            moment = _dt.datetime.fromisoformat(text.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise LedgerflowError(tr("Dates look like 2024-05-31 or 2024-05-31T14:00 (got {got!r})",
                                 got=text)) from None
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class ParamRow:
    name: str
    values: list[Any]
    differs: bool


@dataclass
class Comparison:
    runs: list[ExperimentRun]
    metrics: list[tuple[str, list[float | None]]]  # every metric any of the runs has, in a stable order
    params: list[ParamRow]  # every setting (flattened, dotted) and the seed, flagged where the runs differ
    data: list[ParamRow]  # input data fingerprints per port
    packages: list[ParamRow]  # package versions that differ

    @property
    def param_diff(self) -> list[ParamRow]:
        return [p for p in self.params if p.differs]

    def to_json(self) -> dict[str, Any]:
        return {"runs": [r.to_json() for r in self.runs],
                "metrics": {name: values for name, values in self.metrics},
                "parameters": {p.name: p.values for p in self.param_diff},
                "data": {p.name: p.values for p in self.data if p.differs},
                "packages": {p.name: p.values for p in self.packages if p.differs}}


@dataclass
class CandidateEvent:
    id: int
    project: str
    node_id: str
    record_id: int
    action: str
    user: str
    host: str
    at: str
    note: str


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _rows(per_run: list[dict[str, Any]], only_differing: bool = False) -> list[ParamRow]:
    names: list[str] = []
    for d in per_run:
        names.extend(k for k in d if k not in names)
    rows = []
    for name in names:
        values = [d.get(name) for d in per_run]
        differs = any(json.dumps(v, sort_keys=True, default=str) != json.dumps(values[0], sort_keys=True, default=str)
                      for v in values)
        if differs or not only_differing:
            rows.append(ParamRow(name, values, differs))
    return rows


def compare_runs(runs: list[ExperimentRun]) -> Comparison:
    """Side by side: every metric, the settings (flagged where they differ), data fingerprints, packages."""
    names: list[str] = []
    for run in runs:  # each run lists held-out evaluations first, validation last
        names.extend(k for k in run.metrics if k not in names)
    names.sort(key=lambda k: k.startswith("validation.") or ".validation." in k)  # stable: keeps that order
    metrics = [(n, [run.metrics.get(n) for run in runs]) for n in names]
    params = _rows([{**_flatten(run.settings), "seed": run.seed} for run in runs])
    return Comparison(runs, metrics, params, _rows([run.inputs for run in runs]),
                      _rows([run.packages for run in runs], only_differing=True))


class Experiments:
    """Experiment runs of one project, read from its database. Cheap to create; holds no connection."""

    def __init__(self, engine: Engine, *, project: str = "", registry: "Registry | None" = None) -> None:
        self.db = engine
        self.project = project
        self._registry = registry

    @classmethod
    def for_project(cls, project: "Project", engine: Engine) -> "Experiments":
        return cls(engine, project=project.name, registry=project.graph.registry)

    # -- reading ----------------------------------------------------------------------------------------------

    def _training_types(self) -> set[str]:
        """Registered node types with a Model output (so failed trainings, which stored nothing, count too)."""
        from engine.ports import Model

        if self._registry is None:
            return set()
        return {cls.type_id for cls in self._registry.all()
                if any(issubclass(p.type, Model) for p in cls.output_ports.values())}

    def _required_inputs(self, record: dict[str, Any]) -> dict[str, str]:
        """A record's input digests by port, without its node type's optional ports: Evaluate's `reference` (the
        training table, for PSI) or a trainer's `valid` rows are not what the node scored or learned from, so they
        must not make a held-out evaluation look in-sample."""
        inputs = json.loads(record["inputs_json"])
        cls = self._registry.get(record["type_id"]) if self._registry is not None else None
        if cls is None:
            return inputs
        return {port: d for port, d in inputs.items()
                if port not in cls.input_ports or cls.input_ports[port].required}

    def _load(self) -> tuple[list[dict[str, Any]], dict[str, list[Evaluation]]]:
        """Training records (newest first) and, per model digest, the evaluations that scored it (newest first)."""
        t = db.run_records
        cond = t.c.metrics_json != "{}"
        types = self._training_types()
        if types:
            cond = or_(cond, t.c.type_id.in_(sorted(types)))
        with self.db.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(t).where(cond).order_by(t.c.id.desc()))]
        training, by_model = [], {}
        for r in rows:
            r["summary"] = json.loads(r["metrics_json"] or "{}")
            inputs = self._required_inputs(r)
            for e in r["summary"].get("evaluations", {}).values():
                scored = set(e.get("models", []))
                ev = Evaluation(r["id"], r["node_id"], r["node_title"], e.get("title", ""), r["started_at"],
                                e.get("metrics", {}), e.get("curves", {}),
                                data=[d for d in inputs.values() if d and d not in scored])
                for digest in scored:
                    by_model.setdefault(digest, []).append(ev)
            if r["summary"].get("models") or r["type_id"] in types:
                training.append(r)
        return training, by_model

    def _run(self, r: dict[str, Any], by_model: dict[str, list[Evaluation]], candidates: set[int]) -> ExperimentRun:
        models = r["summary"].get("models", {})
        trained_on = set(self._required_inputs(r).values())
        evaluations: list[Evaluation] = []
        seen: set[str] = set()
        for m in models.values():
            for ev in by_model.get(m["digest"], []):  # newest first: the latest evaluation per evaluating node
                if ev.node_id not in seen and ev.record_id != r["id"]:
                    seen.add(ev.node_id)
                    evaluations.append(replace(ev, in_sample=bool(set(ev.data) & trained_on)))
        # held-out evaluations first, so headline metrics come from data the model did not see, in a stable order
        evaluations.sort(key=lambda e: (e.in_sample, e.node_title, e.node_id))
        own = r["summary"].get("evaluations", {})
        for port, e in own.items():  # a training node's own evaluation report (it knows on which data)
            evaluations.append(Evaluation(r["id"], r["node_id"], r["node_title"] if len(own) == 1 else
                                          f"{r['node_title']} {port}", e.get("title", ""), r["started_at"],
                                          e.get("metrics", {}), e.get("curves", {})))
        titles = [e.node_title for e in evaluations]
        evaluations = [replace(e, node_title=f"{e.node_title} ({e.node_id[:6]})") if titles.count(e.node_title) > 1
                       else e for e in evaluations]  # two evaluating nodes with one title keep apart in metrics
        return ExperimentRun(
            id=r["id"], project=self.project, run_id=r["run_id"], node_id=r["node_id"], node_title=r["node_title"],
            type_id=r["type_id"], type_version=r["type_version"], plugin=r["plugin"], user=r["user"], host=r["host"],
            executor=r["executor"], started_at=r["started_at"], ended_at=r["ended_at"], duration_s=r["duration_s"],
            outcome=r["outcome"], error=r["error"], seed=r["seed"], settings=json.loads(r["settings_json"]),
            inputs=json.loads(r["inputs_json"]), outputs=json.loads(r["outputs_json"]),
            packages=json.loads(r["packages_json"]), environment=r["environment"], models=models,
            evaluations=evaluations, candidate=r["id"] in candidates)

    def runs(self, flt: RunFilter | None = None) -> list[ExperimentRun]:
        """Experiment runs matching `flt`, newest first."""
        training, by_model = self._load()
        candidates = set(self.candidates().values())
        runs = [self._run(r, by_model, candidates) for r in training]
        return [r for r in runs if flt.matches(r)] if flt else runs

    def get(self, run_id: int | str) -> ExperimentRun:
        return self.get_many([run_id])[0]

    def get_many(self, ids: Iterable[int | str]) -> list[ExperimentRun]:
        """Runs by id, in the order given; UnknownRun names every id that is not an experiment run here."""
        wanted = []
        for raw in ids:
            try:
                wanted.append(int(str(raw).strip().lstrip("#")))
            except ValueError:
                raise UnknownRun(tr("{id!r} is not a run id: run ids are numbers, as `ledgerflow experiments "
                                    "list` shows them", id=str(raw))) from None
        training, by_model = self._load()
        rows = {r["id"]: r for r in training}
        missing = [str(i) for i in wanted if i not in rows]
        if missing:
            raise UnknownRun(tr("No training run with id {ids} in project {project!r}; `ledgerflow experiments "
                                "list` shows the run ids", ids=", ".join(missing), project=self.project))
        candidates = set(self.candidates().values())
        return [self._run(rows[i], by_model, candidates) for i in wanted]

    def compare(self, ids: Iterable[int | str]) -> Comparison:
        """Side by side: every metric, the settings (flagged where they differ), data fingerprints, packages."""
        return compare_runs(self.get_many(ids))

    # -- candidates -------------------------------------------------------------------------------------------

    def history(self, node_id: str | None = None) -> list[CandidateEvent]:
        """Every mark and unmark, oldest first (the audit trail)."""
        t = db.candidate_events
        q = select(t).order_by(t.c.id)
        if node_id:
            q = q.where(t.c.node_id == node_id)
        with self.db.connect() as conn:
            return [CandidateEvent(**dict(r._mapping)) for r in conn.execute(q)]

    def candidates(self) -> dict[str, int]:
        """node id -> record id of its current candidate."""
        current: dict[str, int] = {}
        for e in self.history():
            if e.action == "mark":
                current[e.node_id] = e.record_id
            elif current.get(e.node_id) == e.record_id:
                del current[e.node_id]
        return current

    def _append(self, run: ExperimentRun, action: str, note: str) -> CandidateEvent:
        from engine.runlog import os_user
        from engine.store import now_iso

        row = dict(project=self.project, node_id=run.node_id, record_id=run.id, action=action, user=os_user(),
                   host=socket.gethostname(), at=now_iso(), note=note)
        with self.db.begin() as conn:
            new_id = conn.execute(insert(db.candidate_events).values(**row)).inserted_primary_key[0]
        return CandidateEvent(id=new_id, **row)

    def mark_candidate(self, run_id: int | str, note: str = "", *, replace: bool = False) -> CandidateEvent:
        """Make a successful run the candidate of its node. Another current candidate is replaced only with
        `replace=True`; the earlier mark stays in the history either way."""
        run = self.get(run_id)
        if run.outcome != "done":
            raise LedgerflowError(tr("Run {id} of {node!r} ended {outcome}; only a successful run can be the "
                                     "candidate", id=run.id, node=run.node_title, outcome=run.outcome))
        with self._marking():
            current = self.candidates().get(run.node_id)
            if current == run.id:
                raise LedgerflowError(tr("Run {id} is already the candidate of {node!r}", id=run.id,
                                         node=run.node_title))
            if current is not None and not replace:
                raise CandidateConflict(tr("Run {current} is the candidate of {node!r}; replace it explicitly to "
                                           "make run {id} the candidate", current=current, node=run.node_title,
                                           id=run.id))
            return self._append(run, "mark", note)

    def unmark_candidate(self, run_id: int | str, note: str = "") -> CandidateEvent:
        run = self.get(run_id)
        with self._marking():
            if self.candidates().get(run.node_id) != run.id:
                raise LedgerflowError(tr("Run {id} is not the candidate of {node!r}", id=run.id,
                                         node=run.node_title))
            return self._append(run, "unmark", note)

    def _marking(self) -> Any:
        """Check-then-append as one step across processes: two reviewers marking at the same instant must not
        both see "no candidate" and both mark (the second one must be asked to replace)."""
        from filelock import FileLock

        folder = db.state_dir_of(self.db)
        return FileLock(str(folder / "candidates.lock")) if folder is not None else contextlib.nullcontext()


def open_experiments(project: "Project") -> tuple[Experiments, Engine]:
    """Experiments of a project plus its database engine (dispose it when done)."""
    engine = db.open_db(project.state_dir)
    return Experiments.for_project(project, engine), engine
