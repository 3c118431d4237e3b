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
    from distributed import Client

    with Client(dask_cluster, timeout=30) as client:
        gpu_address = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "gpu-worker")
    with Session(project, scheduler_address=dask_cluster) as s:
        report = s.run()
        assert report.ok, report
        for p in probes:
            assert s.output(p, "table")["gpu"].to_list() == [1.0]
            rec = s.runlog.records(node_id=p)[0]
            assert rec["executor"] == "dask" and f"({gpu_address})" in rec["host"]
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


def test_a_crash_on_a_dask_worker_fails_one_node_and_the_worker_survives(project, dask_cluster):
    g = project.graph
    src = g.add_node("toy.const", {"value": 9}).id
    crash = g.add_node("toy.crash", {"mode": "segv"}, title="Crasher").id
    ok = g.add_node("toy.sleep", {"seconds": 0.0}, title="Fine").id
    g.add_edge(Edge(src, "table", crash, "table"))
    g.add_edge(Edge(src, "table", ok, "table"))
    with Session(project, scheduler_address=dask_cluster) as s:
        report = s.run()
        assert report.nodes[crash].status == "failed"
        assert "killed by signal SIGSEGV" in report.nodes[crash].error
        assert report.nodes[ok].status == "done"


def test_cancel_stops_a_stuck_node_on_a_dask_worker(project, dask_cluster):
    import threading

    from engine.scheduler import NodeState

    g = project.graph
    src = g.add_node("toy.const", {"value": 11}).id
    stuck = g.add_node("toy.sleep", {"seconds": 300, "cooperative": False}, title="Stuck").id
    g.add_edge(Edge(src, "table", stuck, "table"))
    with Session(project, scheduler_address=dask_cluster) as s:
        def on_state(node_id, status):
            if node_id == stuck and status.state is NodeState.RUNNING:
                threading.Timer(1.0, s.cancel).start()

        g.events.subscribe(ev.STATE_CHANGED, on_state)
        assert s.run().nodes[stuck].status == "cancelled"
        g.remove_node(stuck)
        probe = g.add_node("toy.sleep", {"seconds": 0.0}, title="After").id
        g.add_edge(Edge(src, "table", probe, "table"))
        # both workers are single-threaded: had the stuck node kept its thread, this would wait for minutes
        assert s.run().nodes[probe].status == "done"
