"""Opening a project of 500 nodes and 750 edges in the workbench, against NodeGraphQt's own API.

Ours: `MainWindow.open_project` end to end (read and validate the file, open the session and its cache index,
draw the canvas in bulk). Anchor: the same graph built with NodeGraphQt's public API (`create_node` per node,
`connect_to` per edge, its stock node class), whose `get_unique_name` rescans every node on each creation. Target: ours <= 1 s.
"""
from __future__ import annotations

import time
from pathlib import Path

from bench.common import report
from bench.gui_common import large_project, nodegraphqt_canvas, qt_app, scratch_folder


def plain_nodegraphqt(project_path: Path) -> float:
    graph, _, elapsed = nodegraphqt_canvas(project_path)
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
    with scratch_folder("lf-bench-open-") as folder:
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


if __name__ == "__main__":
    main()
