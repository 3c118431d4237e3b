"""Pan and zoom frame times on a 500-node canvas: ours against plain NodeGraphQt drawing the same graph.

Each frame applies one zoom or pan step the way the mouse wheel and middle-drag do (NodeGraphQt's own viewer
methods), then repaints the viewport synchronously; the frame time is the wall time of that repaint. Target: p95
<= 16.7 ms (60 frames per second). The anchor is NodeGraphQt's own canvas, built with its API, in the same run.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.common import report
from bench.gui_common import large_project, nodegraphqt_canvas, qt_app, scratch_folder

FRAMES = 160


def frame_times(viewer, widget) -> list[float]:  # noqa: ANN001
    """Zoom in in steps, pan across, zoom back out: the motions of an analyst finding a node."""
    from PySide6 import QtCore, QtWidgets

    widget.resize(1400, 900)
    widget.show()
    settle = QtCore.QElapsedTimer()
    settle.start()
    while settle.elapsed() < 500:  # the user looks at the opened project before panning
        QtWidgets.QApplication.processEvents()
    times: list[float] = []
    steps = [("zoom", 120)] * 40 + [("pan", (25, 10))] * 40 + [("pan", (-30, -5))] * 40 + [("zoom", -120)] * 40
    for kind, arg in steps[:FRAMES]:
        if kind == "zoom":
            viewer._set_viewer_zoom(arg)
        else:
            viewer._set_viewer_pan(*arg)
        t0 = time.perf_counter()
        viewer.viewport().repaint()
        times.append(time.perf_counter() - t0)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def ours(path: Path) -> list[float]:
    from app.main_window import MainWindow
    from app.preferences import Preferences

    window = MainWindow(Preferences())
    assert window.open_project(path)
    window.canvas.fit()
    times = frame_times(window.canvas.viewer, window)
    window.document.dirty = False
    window.close()
    return times


def anchor(path: Path) -> list[float]:
    graph, made, _ = nodegraphqt_canvas(path)
    graph.viewer().zoom_to_nodes([n.view for n in made.values()])
    times = frame_times(graph.viewer(), graph.widget)
    graph.widget.close()
    return times


def main() -> dict:
    app = qt_app()  # noqa: F841
    with scratch_folder("lf-bench-frames-") as folder:
        path, n_nodes, _ = large_project(folder)
        mine, theirs = ours(path), anchor(path)
        ours_p95, anchor_p95 = p95(mine) * 1000, p95(theirs) * 1000
        report(f"pan/zoom p95 frame, {n_nodes} nodes (ms)", ours_p95, anchor_p95, "ms", "p95 <= 16.7 ms",
               ours_p95 <= 16.7)
        print(f"{'':<44} median ours {statistics.median(mine) * 1000:.2f} ms, NodeGraphQt "
              f"{statistics.median(theirs) * 1000:.2f} ms over {len(mine)} frames")
        return {"ours_p95_ms": ours_p95, "nodegraphqt_p95_ms": anchor_p95}


if __name__ == "__main__":
    main()
