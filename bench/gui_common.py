"""Shared set-up of the GUI benchmarks: an offscreen Qt (unless a display is set) and a large project."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from engine.graph import Edge, Graph
from engine.project import Project
from engine.registry import default_registry


def qt_app():  # noqa: ANN201 - a QApplication
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("LEDGERFLOW_HOME", tempfile.mkdtemp(prefix="lf-bench-home-"))
    from PySide6 import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


# node mix of a large bank workflow: per 50 nodes, 2 readers, 11 splits, 5 AutoML, 22 predictions, 5 evaluations
# and 5 writers; their connected inputs make exactly 1.5 edges per node (500 nodes, 750 edges)
PATTERN = (["io.read_csv"] * 2 + ["features.split"] * 11 + ["automl.autogluon"] * 5 + ["automl.predict"] * 22
           + ["evaluate.evaluate"] * 5 + ["io.write_csv"] * 5)
ROWS = 25


def large_project(folder: Path, scale: int = 1, seed: int = 7) -> tuple[Path, int, int]:
    """A project of 500*scale nodes on a left-to-right grid, each input wired to a nearby earlier node of the right
    type, as analysts lay flows out (pipes are short; a flow is read left to right)."""
    rng = random.Random(seed)
    graph = Graph(default_registry())
    producers: dict[str, list[tuple[str, str, int, int]]] = {"Table": [], "Model": []}
    order = [PATTERN[(i * 7) % len(PATTERN)] for i in range(len(PATTERN))]  # mix the types within each column
    for k in range(500 * scale):
        type_id = order[k % len(order)]
        col, row = divmod(k, ROWS)
        cls = graph.registry.get(type_id)
        assert cls is not None
        settings = {"path": f"data/in-{k}.csv"} if type_id == "io.read_csv" else \
            {"path": f"out/{k}.csv"} if type_id == "io.write_csv" else \
            {"label": "default"} if type_id == "automl.autogluon" else {}
        inst = graph.add_node(type_id, settings, position=(col * 300.0, row * 130.0))
        for port, spec in cls.input_ports.items():
            pool = producers[spec.type.type_name]
            near = [p for p in pool[-60:] if abs(p[3] - row) <= 3 and p[2] >= col - 2] or pool[-5:]
            src, src_port, _, _ = rng.choice(near)
            graph.add_edge(Edge(src, src_port, inst.id, port), check=False)
        for port, spec in cls.output_ports.items():
            if spec.type.type_name in producers:
                producers[spec.type.type_name].append((inst.id, port, col, row))
    project = Project(folder / "project.lflow", graph, name="Large")
    project.save()
    return project.path, len(graph.nodes), len(graph.edges)
