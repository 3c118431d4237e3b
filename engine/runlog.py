"""Run records: who ran which node, when, where, with what settings, data and packages, and how it ended.

Lineage and reproducibility are built from these rows, so every execution writes one, success or not. The full
package list is stored once per distinct environment and referenced by digest. What a node's outputs measured (model
and evaluation metrics, ROC/KS curves) is summarised into the same record, for the experiments view.
"""
from __future__ import annotations

import getpass
import json
import logging
import platform
import socket
import uuid
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata as importlib_metadata
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from engine import db
from engine.fileio import canonical_json, sha256_text
from engine.store import now_iso

KEY_PACKAGES = ("ledgerflow", "polars", "pyarrow", "numpy", "pandas", "scikit-learn", "autogluon.tabular",
                "lightgbm", "catboost", "xgboost", "torch", "dask", "distributed", "pydantic")


@lru_cache(maxsize=1)
def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return f"uid:{__import__('os').getuid()}"


@lru_cache(maxsize=1)
def environment() -> tuple[str, str, dict[str, str]]:
    """(digest, python version, {distribution: version}) of the running interpreter."""
    pkgs: dict[str, str] = {}
    for dist in importlib_metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            pkgs[name.lower()] = dist.version
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return sha256_text(py, canonical_json(pkgs)), py, pkgs


@lru_cache(maxsize=64)
def key_packages_json(extra: str | None = None) -> str:
    """Canonical JSON of key_packages, computed once per plugin distribution (it is on every record)."""
    return canonical_json(key_packages(extra))


def key_packages(extra: str | None = None) -> dict[str, str]:
    _, py, pkgs = environment()
    names = KEY_PACKAGES + ((extra.lower(),) if extra else ())
    return {"python": py, **{n: pkgs[n] for n in names if n in pkgs}}


log = logging.getLogger("ledgerflow.runlog")
_INSERT_RECORD = insert(db.run_records)
_HOST = socket.gethostname()


@dataclass
class NodeExecution:
    run_id: str
    node_id: str
    node_title: str
    type_id: str
    type_version: int
    plugin: str
    executor: str
    started_at: str
    ended_at: str
    duration_s: float
    settings: dict[str, Any]
    cache_key: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    seed: int
    outcome: str
    error: str | None = None
    traceback: str | None = None
    host: str | None = None


class RunLog:
    def __init__(self, engine: Engine) -> None:
        self.db = engine
        state = db.state_dir_of(engine)
        self._artifacts = state / "artifacts" if state is not None else None

    def _metrics_json(self, ex: NodeExecution) -> str:
        """What the outputs measured (models, evaluations: engine/experiments.py), read from the artifacts just
        stored. Best effort: a record is never lost because an output could not be summarised."""
        if ex.outcome != "done" or not ex.outputs or self._artifacts is None:
            return "{}"
        from engine.experiments import summarize_outputs

        try:
            return canonical_json(summarize_outputs(self._artifacts, ex.outputs, ex.inputs))
        except Exception:  # noqa: BLE001 - e.g. a malformed report.json from a plugin
            log.warning("could not summarise the outputs of node %s", ex.node_id, exc_info=True)
            return "{}"

    def start_run(self, target: str, executor: str) -> str:
        digest, py, pkgs = environment()
        run_id = str(uuid.uuid4())
        with self.db.begin() as conn:
            # OR IGNORE: two runs starting at once (a sweep's members) may both find the environment new
            conn.execute(insert(db.environments).prefix_with("OR IGNORE").values(
                digest=digest, python=py, packages_json=canonical_json(pkgs)))
            conn.execute(insert(db.runs).values(run_id=run_id, started_at=now_iso(), user=os_user(),
                                                host=socket.gethostname(), target=target, executor=executor,
                                                environment=digest))
        return run_id

    def finish_run(self, run_id: str, outcome: str) -> None:
        with self.db.begin() as conn:
            conn.execute(update(db.runs).where(db.runs.c.run_id == run_id).values(ended_at=now_iso(),
                                                                                  outcome=outcome))

    def record(self, conn: Connection, ex: NodeExecution) -> None:
        """Append one execution's record (inside the caller's transaction, with the cache index rows)."""
        digest, _, _ = environment()
        conn.execute(_INSERT_RECORD, dict(
            run_id=ex.run_id, node_id=ex.node_id, node_title=ex.node_title, type_id=ex.type_id,
            type_version=ex.type_version, plugin=ex.plugin, user=os_user(),
            host=ex.host or _HOST, executor=ex.executor, started_at=ex.started_at,
            ended_at=ex.ended_at, duration_s=ex.duration_s, settings_json=canonical_json(ex.settings),
            cache_key=ex.cache_key, inputs_json=canonical_json(ex.inputs),
            outputs_json=canonical_json(ex.outputs),
            packages_json=key_packages_json(ex.plugin.split(" ")[0]), environment=digest,
            seed=ex.seed, outcome=ex.outcome, error=ex.error, traceback=ex.traceback,
            metrics_json=self._metrics_json(ex)))

    def records(self, node_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        q = select(db.run_records).order_by(db.run_records.c.id.desc())
        if node_id:
            q = q.where(db.run_records.c.node_id == node_id)
        if limit:
            q = q.limit(limit)
        with self.db.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q).all()]
        for r in rows:
            for k in ("settings_json", "inputs_json", "outputs_json", "packages_json", "metrics_json"):
                r[k.removesuffix("_json")] = json.loads(r.pop(k))
        return rows

    def producing_run(self, cache_key: str) -> str | None:
        """The run whose execution last produced the results under `cache_key` (a cache hit has no record of its
        own: its outputs are the ones that execution stored)."""
        q = (select(db.run_records.c.run_id).where(db.run_records.c.cache_key == cache_key)
             .where(db.run_records.c.outcome == "done").order_by(db.run_records.c.id.desc()).limit(1))
        with self.db.connect() as conn:
            row = conn.execute(q).first()
        return row.run_id if row else None

    def environment_packages(self, digest: str) -> dict[str, str]:
        with self.db.connect() as conn:
            row = conn.execute(select(db.environments).where(db.environments.c.digest == digest)).first()
        return json.loads(row.packages_json) if row else {}
