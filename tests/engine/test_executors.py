"""Heavy nodes in worker processes: hard cancel, crash isolation, the runner surviving, streamed progress."""
from __future__ import annotations

import os
import threading

import psutil
import pytest

from engine import events as ev
from engine.executors.process import LocalProcessExecutor
from engine.graph import Edge
from engine.scheduler import NodeState, Session


@pytest.fixture
def pool():
    ex = LocalProcessExecutor(max_workers=2)
    yield ex
    ex.close()


def heavy_pair(project, heavy_type, settings):
    g = project.graph
    src = g.add_node("toy.const").id
    heavy = g.add_node(heavy_type, settings, title="Heavy").id
    sibling = g.add_node("toy.sleep", {"seconds": 0.0}, title="Sibling").id
    g.add_edge(Edge(src, "table", heavy, "table"))
    g.add_edge(Edge(src, "table", sibling, "table"))
    return heavy, sibling


@pytest.mark.parametrize("mode,expected", [("exit", "exited with code 3"), ("segv", "killed by signal SIGSEGV")])
def test_a_crashing_worker_fails_only_its_node_and_the_runner_survives(project, pool, mode, expected):
    heavy, sibling = heavy_pair(project, "toy.crash", {"mode": mode})
    with Session(project, heavy_executor=pool) as s:
        report = s.run()
        assert report.nodes[heavy].status == "failed"
        assert expected in report.nodes[heavy].error and "'Heavy'" in report.nodes[heavy].error
        assert report.nodes[sibling].status == "done"
        project.graph.replace_settings(sibling, {"seconds": 0.1})
        assert s.run().nodes[sibling].status == "done"  # the pool replaced the dead worker


def test_cancel_kills_a_non_cooperative_heavy_node(project, pool):
    heavy, sibling = heavy_pair(project, "toy.sleep", {"seconds": 120, "cooperative": False})
    with Session(project, heavy_executor=pool) as s:
        pids: list[int] = []

        def on_state(node_id, status):
            if node_id == heavy and status.state is NodeState.RUNNING:
                threading.Timer(0.5, s.cancel).start()

        project.graph.events.subscribe(ev.STATE_CHANGED, on_state)
        pool.warm(2)
        pids.extend(w.proc.pid for w in pool._idle)
        report = s.run()  # returns only once the sleeping worker is gone
        assert report.cancelled
        assert report.nodes[heavy].status == "cancelled"
        assert s.status[heavy].state is NodeState.CANCELLED
        rec = s.runlog.records(node_id=heavy)[0]
        assert rec["outcome"] == "cancelled"
    assert len(pids) == 2 and sum(not psutil.pid_exists(p) for p in pids) == 1  # the sleeper's worker is gone


def test_progress_and_logs_stream_from_the_worker(project, pool):
    g = project.graph
    src = g.add_node("toy.const").id
    w = g.add_node("toy.where").id
    g.add_edge(Edge(src, "table", w, "table"))
    progress: list[tuple[float, str]] = []
    project.graph.events.subscribe(ev.PROGRESS, lambda node_id, fraction, message: progress.append((fraction, message)))
    with Session(project, heavy_executor=pool) as s:
        assert s.run().ok
        assert s.output(w, "table")["pid"][0] != os.getpid()
    assert (0.5, "probing") in progress


def test_heavy_node_runs_in_another_process(project, pool):
    heavy, _ = heavy_pair(project, "toy.sleep", {"seconds": 0.0})
    with Session(project, heavy_executor=pool) as s:
        s.run()
        assert s.output(heavy, "table")["pid"][0] != os.getpid()
