"""One NodeGraphQt class per registered node type, built from the node's declaration (ARCHITECTURE.md §4).

The canvas class only draws: ports typed and coloured by port type, the translated title, an icon. Settings live
in the engine graph and the side properties panel; nothing about computation is on the canvas.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from NodeGraphQt import BaseNode

from app.canvas.node_item import StatusNodeItem
from engine.graph import Graph
from engine.i18n import N_, tr
from engine.ports import PortType
from engine.registry import Registry
from engine.sdk import Node

IDENTIFIER = "ledgerflow"
PLACEHOLDER_TYPE = f"{IDENTIFIER}.Placeholder"
ICONS = Path(__file__).resolve().parent.parent.parent / "resources" / "icons"
CATEGORY_COLORS = {  # muted node body colours per category, readable with white text
    "Data sources": (38, 70, 83), "Data sinks": (38, 70, 83), "Features": (52, 73, 94),
    "Modeling": (74, 55, 99), "Evaluation": (99, 60, 45), "Exploration": (30, 78, 92),
}


# Port ids of the built-in nodes, marked for translation so the canvas labels read in the user's language (the id
# stays the key in project files). A plugin's ports show their id unless its strings are in the catalog.
# Port names as drawn on the canvas. Most are their own msgid; where a port name is also a metric or column word
# with another meaning ("alerts": the alert count), the label gets its own wording.
PORT_LABELS = {"table": N_("table"), "train": N_("train"), "test": N_("test"), "model": N_("model"),
               "leaderboard": N_("leaderboard"), "report": N_("report"), "alerts": N_("alert list"),
               "entities": N_("entity rows"), "events": N_("events"), "previous": N_("previous"),
               "transform": N_("transform"), "records": N_("records"), "left": N_("left"), "right": N_("right"),
               "valid": N_("validation"), "feature_importance": N_("feature importance"),
               "reference": N_("reference"), "holdout": N_("holdout"), "scorecard": N_("scorecard")}


def port_label(name: str) -> str:
    return tr(PORT_LABELS.get(name, name))


def rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def class_name(type_id: str) -> str:
    """A Python identifier from a type id ('io.read_csv' -> 'io__read_csv'); NodeGraphQt types are identifier.Name."""
    return re.sub(r"\W", "_", type_id.replace(".", "__"))


def port_tooltip(name: str, port_type: type[PortType], description: str = "") -> str:
    text = f"{port_label(name)}: {port_type.type_name}"
    return text + (f" — {tr(description)}" if description else "")


def icon_path(icon: str) -> str | None:
    path = ICONS / f"{icon}.svg"
    return str(path) if icon and path.exists() else None


class LedgerflowNode(BaseNode):
    """Base of generated canvas classes; `node_cls` is the engine node type it draws."""

    __identifier__ = IDENTIFIER
    NODE_NAME = "Node"
    node_cls: type[Node] | None = None

    def __init__(self, defer_draw: bool = False) -> None:
        super().__init__(qgraphics_item=StatusNodeItem)
        self.engine_id = ""
        if defer_draw:  # bulk loading: lay the node out once, when it enters the scene (see finish_deferred_draw)
            self.view.draw_node = _no_layout
        cls = self.node_cls
        if cls is None:
            return
        for name, spec in cls.input_ports.items():
            self.add_input(name, color=rgb(spec.type.color))
        for name, spec in cls.output_ports.items():
            self.add_output(name, multi_output=True, color=rgb(spec.type.color))
        self.set_color(*CATEGORY_COLORS.get(cls.category, (55, 65, 81)))
        self.view.base_tooltip = tr(cls.description) if cls.description else ""
        for specs, get_port, get_label in ((cls.input_ports, self.get_input, self.view.get_input_text_item),
                                           (cls.output_ports, self.get_output, self.view.get_output_text_item)):
            for spec in specs.values():
                port = get_port(spec.name)
                port.view.setToolTip(port_tooltip(spec.name, spec.type, spec.description))
                if (label := port_label(spec.name)) != spec.name:  # relaying out text is slow; only when it differs
                    get_label(port.view).setPlainText(label)
        icon = icon_path(cls.icon)
        if icon:
            self.set_icon(icon)

    @property
    def item(self) -> StatusNodeItem:
        return self.view  # type: ignore[return-value]

    def finish_deferred_draw(self) -> None:
        self.view.__dict__.pop("draw_node", None)


def _no_layout() -> None:
    """Stands in for NodeItem.draw_node while ports are added: NodeGraphQt re-lays the node out after every port."""


class PlaceholderNode(LedgerflowNode):
    """A node whose type is not installed: drawn with a dashed amber frame and the ports its edges use."""

    NODE_NAME = "Placeholder"

    def __init__(self, defer_draw: bool = False) -> None:
        super().__init__(defer_draw)

    def add_edge_ports(self, inputs: list[str], outputs: list[str], reason: str) -> None:
        for name in inputs:
            self.add_input(name)
        for name in outputs:
            self.add_output(name, multi_output=True)
        self.set_color(90, 70, 30)
        self.item.placeholder = True
        self.item.base_tooltip = reason


def build_canvas_classes(registry: Registry) -> dict[str, type[LedgerflowNode]]:
    """engine type id -> generated canvas class (plus the placeholder class under PLACEHOLDER_TYPE)."""
    classes: dict[str, type[LedgerflowNode]] = {PLACEHOLDER_TYPE: PlaceholderNode}
    for cls in registry.all():
        attrs: dict[str, Any] = {"NODE_NAME": tr(cls.title), "node_cls": cls, "__doc__": cls.description}
        classes[cls.type_id] = type(class_name(cls.type_id), (LedgerflowNode,), attrs)
    return classes


def placeholder_ports(graph: Graph, node_id: str) -> tuple[list[str], list[str]]:
    return (sorted({e.dst_port for e in graph.incoming(node_id)}),
            sorted({e.src_port for e in graph.outgoing(node_id)}))
