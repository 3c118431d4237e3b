"""Shared set-up of the GUI benchmarks: an offscreen Qt (unless a display is set) and a large project."""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

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
            if not spec.required:  # optional inputs (a fitted transform) stay unconnected, as they usually are
                continue
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


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def nodegraphqt_canvas(project_path: Path) -> tuple[Any, dict[str, Any], float]:
    """The anchor: the project drawn with NodeGraphQt's public API and its stock node class (same ports), as an
    application without our bulk path would. Returns the graph, canvas nodes by engine id, and build seconds."""
    from NodeGraphQt import BaseNode, NodeGraph

    from engine.project import Project

    project = Project.load(project_path)
    classes = {}
    for cls in project.graph.registry.all():
        def init(self, cls=cls) -> None:  # noqa: ANN001
            BaseNode.__init__(self)
            for name in cls.input_ports:
                self.add_input(name)
            for name in cls.output_ports:
                self.add_output(name)

        attrs = {"__identifier__": "plain", "NODE_NAME": cls.title, "__init__": init}
        classes[cls.type_id] = type(cls.type_id.replace(".", "_"), (BaseNode,), attrs)
    graph = NodeGraph()
    graph.register_nodes(list(classes.values()))
    t0 = time.perf_counter()
    made = {}
    for inst in project.graph.nodes.values():
        made[inst.id] = graph.create_node(classes[inst.type_id].type_, name=inst.title, pos=list(inst.position),
                                          selected=False, push_undo=False)
    for e in project.graph.edges:
        made[e.src].get_output(e.src_port).connect_to(made[e.dst].get_input(e.dst_port), push_undo=False)
    return graph, made, time.perf_counter() - t0
