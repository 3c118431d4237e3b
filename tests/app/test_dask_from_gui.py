"""The workbench sends heavy nodes to the Dask scheduler set in Settings ▸ Dask scheduler (a real loopback one)."""
from __future__ import annotations

import nodes
from app.preferences import Preferences
from engine.graph import Edge
from engine.project import Project
from engine.registry import Provenance, Registry
from toynodes import TOY_NODES
from workbench import close, make_window, wait_run


def test_heavy_nodes_run_on_the_configured_dask_scheduler(qtbot, tmp_path, dask_cluster):
    registry = Registry()
    for cls in nodes.NODES:
        registry.register(cls, Provenance("ledgerflow", "0"))
    for cls in TOY_NODES:
        registry.register(cls, Provenance("toy-plugin", "1.0"))
    project = Project.new(tmp_path / "dask", "Dask", registry)
    const = project.graph.add_node("toy.const", {"rows": 5})
    sleep = project.graph.add_node("toy.sleep", {"seconds": 0.1}, position=(300, 0))
    project.graph.add_edge(Edge(const.id, "table", sleep.id, "table"))
    project.save()

    w = make_window(qtbot, Preferences(scheduler_address=dask_cluster), registry)
    assert w.open_project(project.path)
    w.actions_["run_all"].trigger()
    wait_run(qtbot, w, timeout=120_000)
    session = w.document.session
    assert session.status[sleep.id].state.value == "done", w.run_label.text()
    (record,) = [r for r in session.runlog.records(sleep.id)]
    assert record["executor"] == "dask"
    close(w)
