"""The Dask executor against a real `dask scheduler` and `dask worker`s on 127.0.0.1."""
from __future__ import annotations

import pytest

from engine import events as ev
from engine.errors import LedgerflowError
from engine.executors.dask import DaskExecutor
from engine.graph import Edge
from engine.scheduler import Session


def test_gpu_nodes_go_only_to_gpu_workers(project, dask_cluster):
    g = project.graph
    probes = []
    for i in range(4):
        src = g.add_node("toy.const", {"value": i}).id
        probe = g.add_node("toy.where", title=f"probe {i}").id
        g.add_edge(Edge(src, "table", probe, "table"))
        probes.append(probe)
    progress: list[str] = []
    g.events.subscribe(ev.PROGRESS, lambda node_id, fraction, message: progress.append(message))
    with Session(project, scheduler_address=dask_cluster) as s:
        report = s.run()
        assert report.ok, report
        for p in probes:
            assert s.output(p, "table").to_dicts() == [{"worker": "gpu-worker", "gpu": 1.0}]
        rec = s.runlog.records(node_id=probes[0])[0]
        assert rec["executor"] == "dask" and "tcp://127.0.0.1" in rec["host"]
    assert "probing" in progress  # progress events travel back from the worker


def test_models_travel_to_and_from_remote_workers(project, dask_cluster):
    g = project.graph
    src = g.add_node("toy.const", {"value": 5}).id
    m = g.add_node("toy.model").id
    u = g.add_node("toy.use_model").id
    g.add_edge(Edge(src, "table", m, "table"))
    g.add_edge(Edge(m, "model", u, "model"))
    with Session(project, scheduler_address=dask_cluster) as s:
        assert s.run().ok
        assert s.output(u, "table").to_dicts() == [{"weight": 15, "rows": 3}]
        assert (s.output(m, "model").path / "weights.txt").read_text() == "15"
        assert s.run().executed == []


def test_an_unreachable_scheduler_is_reported_clearly():
    with pytest.raises(LedgerflowError, match="Cannot reach the Dask scheduler at tcp://127.0.0.1:1"):
        DaskExecutor("tcp://127.0.0.1:1", timeout=2)
