"""Opening a project of 500 nodes and 750 edges in the workbench, against NodeGraphQt's own API.

Ours: `MainWindow.open_project` end to end (read and validate the file, open the session and its cache index,
draw the canvas in bulk). Anchor: the same graph built with NodeGraphQt's public API (`create_node` per node,
`connect_to` per edge), whose `get_unique_name` rescans every node on each creation. Target: ours <= 1 s.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.common import report
from bench.gui_common import large_project, qt_app


def plain_nodegraphqt(project_path: Path) -> float:
    from NodeGraphQt import NodeGraph

    from app.canvas.node_types import build_canvas_classes
    from engine.project import Project

    project = Project.load(project_path)
    classes = build_canvas_classes(project.graph.registry)
    graph = NodeGraph()
    graph.register_nodes(list(classes.values()))
    t0 = time.perf_counter()
    made = {}
    for inst in project.graph.nodes.values():
        made[inst.id] = graph.create_node(classes[inst.type_id].type_, name=inst.title, pos=list(inst.position),
                                          selected=False, push_undo=False)
    for e in project.graph.edges:
        made[e.src].get_output(e.src_port).connect_to(made[e.dst].get_input(e.dst_port), push_undo=False)
    elapsed = time.perf_counter() - t0
    graph.close()
    return elapsed


def ours(project_path: Path) -> float:
    from PySide6 import QtWidgets

    from app.main_window import MainWindow
    from app.preferences import Preferences

    window = MainWindow(Preferences())
    window.ask_save_changes = lambda: QtWidgets.QMessageBox.StandardButton.Discard
    t0 = time.perf_counter()
    assert window.open_project(project_path)
    QtWidgets.QApplication.processEvents()
    elapsed = time.perf_counter() - t0
    assert len(window.canvas.canvas_edges()) == len(window.document.graph.edges)
    window.close()
    return elapsed


def main() -> dict:
    app = qt_app()  # noqa: F841
    folder = Path(tempfile.mkdtemp(prefix="lf-bench-open-"))
    try:
        path, n_nodes, n_edges = large_project(folder)
        ours(path)  # warm imports and the registry
        mine = min(ours(path) for _ in range(3))
        anchor = plain_nodegraphqt(path)
        report(f"open project, {n_nodes} nodes / {n_edges} edges (s)", mine, anchor, "s", "<= 1 s", mine <= 1.0)
        big, n2, e2 = large_project(folder / "x2", scale=2)
        mine2 = ours(big)
        anchor2 = plain_nodegraphqt(big)
        report(f"open project, {n2} nodes / {e2} edges (s)", mine2, anchor2, "s", "(scaling check)", True)
        return {"ours_s": mine, "nodegraphqt_s": anchor, "ours_1000_s": mine2, "nodegraphqt_1000_s": anchor2}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
