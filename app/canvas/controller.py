"""Binds the engine graph (the source of truth) to a NodeGraphQt canvas (ARCHITECTURE.md §4).

Engine events draw the canvas; canvas gestures become engine commands. The canvas never changes itself: when the
user drags a pipe, the controller pushes `Connect`, and the engine's `edge_added` event draws it. When the engine
refuses, the canvas is re-synced from the engine and the reason is shown. Canvas nodes carry their engine UUID, and
projects are saved by the engine only (never NodeGraphQt's `serialize_session`, whose ids change on every load).

Large projects are built in bulk: nodes are inserted with their titles precomputed, bypassing NodeGraphQt's
`get_unique_name`, which rescans every node and makes its own loading quadratic.
"""
from __future__ import annotations

import copy
import gc
import json
import logging
import uuid
from typing import Any, Iterable

from NodeGraphQt import BackdropNode, NodeGraph
from NodeGraphQt.base.commands import NodeAddedCmd, PortConnectedCmd, PortDisconnectedCmd
from NodeGraphQt.constants import PortTypeEnum
from PySide6 import QtCore, QtGui, QtWidgets

from app.bridge import EngineBridge
from app.canvas.node_types import (PLACEHOLDER_TYPE, LedgerflowNode, PlaceholderNode, build_canvas_classes,
                                   placeholder_ports)
from app.canvas.viewer import NODE_MIME, CanvasViewer
from app.document import Document
from engine.commands import AddNode, Batch, Command, Connect, Disconnect, RemoveNode, UpdateNode
from engine.errors import LedgerflowError
from engine.graph import Edge, NodeInstance
from engine.i18n import tr

log = logging.getLogger("ledgerflow.app")
CLIPBOARD_MIME = "application/x-ledgerflow-nodes+json"
PASTE_OFFSET = 40.0


class CanvasController(QtCore.QObject):
    selection_changed = QtCore.Signal(list)  # engine ids of the selected nodes
    node_activated = QtCore.Signal(str)  # double click: open the node's output
    context_requested = QtCore.Signal(str, QtCore.QPoint, QtCore.QPointF)  # engine id or "", global pos, scene pos
    refused = QtCore.Signal(str)  # why an edit was refused (shown as a tooltip and in the status bar)

    def __init__(self, document: Document, bridge: EngineBridge, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.bridge = bridge
        viewer = CanvasViewer(undo_stack=QtGui.QUndoStack(self))
        self.graph = NodeGraph(viewer=viewer)
        self.viewer: CanvasViewer = viewer
        self.graph.set_pipe_style(0)  # curved pipes: crossings stay readable in dense flows
        self._classes = build_canvas_classes(document.graph.registry)
        self._types_by_canvas = {c.type_: t for t, c in self._classes.items() if t != PLACEHOLDER_TYPE}
        self.graph.register_nodes(list(self._classes.values()))
        self._by_engine: dict[str, LedgerflowNode] = {}
        viewer.node_count = lambda: len(self._by_engine)
        self.last_refusal = ""
        self._rewire_canvas_signals()
        self._connect_bridge()
        self.build()

    # ---- wiring --------------------------------------------------------------------------------
    def _rewire_canvas_signals(self) -> None:
        """Route NodeGraphQt's gesture signals to engine commands instead of its own undo stack."""
        v, g = self.viewer, self.graph
        for signal, own in ((v.connection_changed, g._on_connection_changed),
                            (v.connection_sliced, g._on_connection_sliced),
                            (v.moved_nodes, g._on_nodes_moved),
                            (v.node_name_changed, g._on_node_name_changed),
                            (v.search_triggered, g._on_search_triggered),
                            (v.data_dropped, g._on_node_data_dropped)):
            signal.disconnect(own)
        v.connection_changed.connect(self._on_connection_changed)
        v.connection_sliced.connect(lambda ports: self._on_connection_changed(ports, []))
        v.moved_nodes.connect(self._on_nodes_moved)
        v.node_name_changed.connect(self._on_name_edited)
        v.search_triggered.connect(self._on_search_triggered)
        v.node_selection_changed.connect(lambda *_: self._selection_touched())
        v.node_double_clicked.connect(self._on_double_clicked)
        v.context_requested.connect(self._on_context)
        v.data_dropped.connect(self._on_dropped)
        v.node_backdrop_updated.connect(lambda *_: self._backdrops_touched())

    def _selection_touched(self) -> None:
        self.viewer.overview.invalidate()
        self.selection_changed.emit(self.selected_ids())

    def _backdrops_touched(self) -> None:
        self.document.dirty = True  # backdrops live in the project's meta section, outside the undo history
        self.viewer.overview.invalidate()

    def _connect_bridge(self) -> None:
        b = self.bridge
        for signal in (b.node_added, b.node_removed, b.edge_added, b.edge_removed, b.node_changed, b.state_changed,
                       b.progress):
            signal.connect(lambda *_: self.viewer.overview.invalidate())
        b.node_added.connect(self._on_node_added)
        b.node_removed.connect(self._on_node_removed)
        b.edge_added.connect(self._on_edge_added)
        b.edge_removed.connect(self._on_edge_removed)
        b.node_changed.connect(self._on_node_changed)
        b.state_changed.connect(self._on_state_changed)
        b.progress.connect(self._on_progress)

    # ---- building ------------------------------------------------------------------------------
    def build(self) -> None:
        """Draw the whole engine graph at once (bulk path; no per-node name scans, no undo entries)."""
        eg = self.document.graph
        scene = self.viewer.scene()
        scene.setItemIndexMethod(QtWidgets.QGraphicsScene.ItemIndexMethod.NoIndex)  # index once, not per item
        gc_was_on = gc.isenabled()
        gc.disable()  # tens of thousands of new objects, none garbage: collecting them again and again is waste
        try:
            for inst in eg.nodes.values():
                self._create(inst)
            for edge in eg.edges:
                self._ensure_connected(edge)
        finally:
            if gc_was_on:
                gc.enable()
            scene.setItemIndexMethod(QtWidgets.QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        for nid, status in self.document.session.status.items():
            self._paint_state(nid, status.state.value, status.cached, None, status.error, "")
        self._restore_backdrops()

    def _create(self, inst: NodeInstance) -> LedgerflowNode:
        if inst.id in self._by_engine:
            return self._by_engine[inst.id]
        cls = self._classes.get(inst.type_id) if not inst.is_placeholder else None
        node = (cls or PlaceholderNode)(defer_draw=True)
        if cls is None:
            ins, outs = placeholder_ports(self.document.graph, inst.id)
            node.add_edge_ports(ins, outs, inst.placeholder_reason or tr("Unknown node type"))
        self._insert(node, inst.title, inst.position)
        node.engine_id = inst.id
        node.model.disabled = inst.disabled
        node.view.disabled = inst.disabled
        self._by_engine[inst.id] = node
        return node

    def _insert(self, node: LedgerflowNode, name: str, pos: tuple[float, float]) -> None:
        """`NodeGraph.add_node` without its `get_unique_name` scan and undo entry (engine titles are the names)."""
        g = self.graph
        wid_types = node.model.__dict__.pop("_TEMP_property_widget_types")
        prop_attrs = node.model.__dict__.pop("_TEMP_property_attrs")
        node.model.__dict__.pop("_TEMP_accept_connection_types", None)
        node.model.__dict__.pop("_TEMP_reject_connection_types", None)
        if g.model.get_node_common_properties(node.type_) is None:
            attrs = {node.type_: {n: {"widget_type": wt} for n, wt in wid_types.items()}}
            for pname, pattrs in prop_attrs.items():
                attrs[node.type_][pname].update(pattrs)
            g.model.set_node_common_properties(attrs)
        node._graph = g
        node.model._graph_model = g.model
        node.NODE_NAME = name
        node.model.name = name
        node.model.selected = False
        node.model.layout_direction = g.layout_direction()
        node.update()
        node.finish_deferred_draw()
        NodeAddedCmd(g, node, pos=[float(pos[0]), float(pos[1])], emit_signal=False).redo()

    # ---- engine -> canvas ----------------------------------------------------------------------
    def _on_node_added(self, inst: NodeInstance) -> None:
        self._create(inst)

    def _on_node_removed(self, inst: NodeInstance) -> None:
        node = self._by_engine.pop(inst.id, None)
        if node is not None:
            for port in [*node.input_ports(), *node.output_ports()]:
                for other in list(port.connected_ports()):
                    PortDisconnectedCmd(port, other, False).redo()
            self.graph.model.nodes.pop(node.id, None)
            node.view.delete()
            self.selection_changed.emit(self.selected_ids())

    def _on_edge_added(self, edge: Edge) -> None:
        self._ensure_connected(edge)

    def _on_edge_removed(self, edge: Edge) -> None:
        self._ensure_disconnected(edge)

    def _on_node_changed(self, node_id: str, changes: dict) -> None:
        node = self._by_engine.get(node_id)
        if node is None:
            return
        inst = self.document.graph.nodes[node_id]
        if "title" in changes and node.model.name != inst.title:
            node.model.name = inst.title
            node.view.name = inst.title
        if "position" in changes and tuple(node.view.xy_pos) != inst.position:
            node.model.pos = list(inst.position)
            node.view.xy_pos = list(inst.position)
        if "disabled" in changes:
            node.model.disabled = inst.disabled
            node.view.disabled = inst.disabled

    def _on_state_changed(self, node_id: str, snap: dict) -> None:
        self._paint_state(node_id, snap["state"], snap["cached"], snap["progress"], snap["error"], snap["message"])

    def _on_progress(self, node_id: str, fraction: float | None, message: str) -> None:
        node = self._by_engine.get(node_id)
        if node is not None and node.item.run_state == "running":
            node.item.set_run_state("running", progress=fraction, message=message)

    def _paint_state(self, node_id: str, state: str, cached: bool, progress: float | None, error: str | None,
                     message: str) -> None:
        node = self._by_engine.get(node_id)
        if node is not None:
            node.item.set_run_state(state, cached=cached, progress=progress, error=error, message=message)

    # ---- canvas -> engine ----------------------------------------------------------------------
    def push(self, command: Command, touched: Iterable[str] = ()) -> bool:
        """Push an engine command; on refusal, re-sync the touched nodes from the engine and say why."""
        try:
            self.document.push(command)
            return True
        except LedgerflowError as exc:
            self._refuse(str(exc), touched)
        except Exception as exc:  # noqa: BLE001 - a bug in one edit must not take the app down
            log.exception("edit failed")
            self._refuse(tr("The edit failed: {exc}", exc=exc), touched)
        return False

    def _refuse(self, reason: str, touched: Iterable[str]) -> None:
        self.last_refusal = reason
        self.resync(touched)
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), reason, self.viewer)
        self.refused.emit(reason)

    def _edge_of(self, a: Any, b: Any) -> Edge | None:
        """The engine edge for two port items (either order)."""
        out, inp = (a, b) if a.port_type == PortTypeEnum.OUT.value else (b, a)
        src, dst = self.engine_id(out.node.id), self.engine_id(inp.node.id)
        return Edge(src, out.name, dst, inp.name) if src and dst else None

    def _on_connection_changed(self, disconnected: list, connected: list) -> None:
        removed = [e for e in (self._edge_of(a, b) for a, b in disconnected) if e]
        added = [e for e in (self._edge_of(a, b) for a, b in connected) if e]
        # Connect already rewires an input that has an edge; only drop edges that no new edge replaces.
        replaced = {(e.dst, e.dst_port) for e in added}
        cmds: list[Command] = [Disconnect(e) for e in removed if e in self.document.graph.edges
                               and (e.dst, e.dst_port) not in replaced]
        cmds += [Connect(e.src, e.src_port, e.dst, e.dst_port) for e in added]
        touched = {n for e in removed + added for n in (e.src, e.dst)}
        if not cmds:
            self.resync(touched)
            return
        self.push(cmds[0] if len(cmds) == 1 else Batch(cmds, label="connect"), touched)

    def _on_nodes_moved(self, moved: dict) -> None:
        cmds: list[Command] = []
        for view in moved:
            nid = self.engine_id(view.id)
            if nid:
                cmds.append(UpdateNode(nid, {"position": tuple(float(v) for v in view.xy_pos)}))
            elif isinstance(self.graph.model.nodes.get(view.id), BackdropNode):
                self._backdrops_touched()
        if cmds:
            self.push(Batch(cmds, label="move") if len(cmds) > 1 else cmds[0], [c.node_id for c in cmds])  # type: ignore[attr-defined]

    def _on_name_edited(self, canvas_id: str, name: str) -> None:
        nid = self.engine_id(canvas_id)
        if nid and name.strip() and name != self.document.graph.nodes[nid].title:
            self.rename(nid, name.strip())
        elif nid:
            self._on_node_changed(nid, {"title": True})

    def rename(self, node_id: str, title: str) -> bool:
        ok = self.push(UpdateNode(node_id, {"title": title}), [node_id])
        if not ok:
            self._on_node_changed(node_id, {"title": True})
        return ok

    def set_disabled(self, node_ids: list[str], disabled: bool) -> bool:
        cmds: list[Command] = [UpdateNode(n, {"disabled": disabled}) for n in node_ids]
        return bool(cmds) and self.push(Batch(cmds, label="disable") if len(cmds) > 1 else cmds[0], node_ids)

    def _on_search_triggered(self, canvas_type: str, pos: Any) -> None:
        type_id = self._types_by_canvas.get(canvas_type)
        if type_id:
            self.add_node(type_id, (float(pos[0]), float(pos[1])))

    def _on_dropped(self, mime: QtCore.QMimeData, pos: QtCore.QPoint) -> None:
        if mime.hasFormat(NODE_MIME):
            type_id = bytes(mime.data(NODE_MIME).data()).decode("utf-8")
            self.add_node(type_id, (float(pos.x()), float(pos.y())))

    def add_node(self, type_id: str, position: tuple[float, float] | None = None) -> str | None:
        """Add a node of a type at a scene position (default: the centre of the view); returns its engine id."""
        if position is None:
            c = self.viewer.mapToScene(self.viewer.viewport().rect().center())
            position = (c.x() - 80, c.y() - 40)
        cmd = AddNode(type_id, position=position)
        if not self.push(cmd):
            return None
        assert cmd.node_id
        self.select([cmd.node_id])
        return cmd.node_id

    def connect_ports(self, src: str, src_port: str, dst: str, dst_port: str) -> bool:
        """Connect as a pipe drag would (used by keyboard-less scripting and tests)."""
        out = self._by_engine[src].get_output(src_port)
        inp = self._by_engine[dst].get_input(dst_port)
        self._on_connection_changed([], [(out.view, inp.view)])
        return Edge(src, src_port, dst, dst_port) in self.document.graph.edges

    def delete_selected(self) -> bool:
        ids = self.selected_ids()
        backdrops = [n for n in self.graph.selected_nodes() if isinstance(n, BackdropNode)]
        if ids and not self.push(Batch([RemoveNode(n) for n in ids], label="delete"), ids):
            return False
        for bd in backdrops:
            self.graph.remove_node(bd, push_undo=False)
            self._backdrops_touched()
        return bool(ids or backdrops)

    def select_all(self) -> None:
        self.select(list(self._by_engine))

    # ---- copy / paste --------------------------------------------------------------------------
    def copy_selected(self) -> int:
        """Copy the selected nodes (type, title, settings, position) and the edges among them, as JSON."""
        eg = self.document.graph
        ids = [n for n in self.selected_ids() if not eg.nodes[n].is_placeholder]
        if not ids:
            return 0
        doc = {"ledgerflow_clipboard": 1,
               "nodes": [{"ref": n, "type_id": eg.nodes[n].type_id, "title": eg.nodes[n].title,
                          "settings": copy.deepcopy(eg.nodes[n].settings), "position": list(eg.nodes[n].position)}
                         for n in ids],
               "edges": [[e.src, e.src_port, e.dst, e.dst_port] for e in eg.edges if e.src in ids and e.dst in ids]}
        mime = QtCore.QMimeData()
        mime.setData(CLIPBOARD_MIME, json.dumps(doc).encode("utf-8"))
        QtWidgets.QApplication.clipboard().setMimeData(mime)
        return len(ids)

    def paste(self) -> list[str]:
        """Paste copied nodes with new ids, offset, unique titles and the edges among them, as one undo step."""
        mime = QtWidgets.QApplication.clipboard().mimeData()
        if mime is None or not mime.hasFormat(CLIPBOARD_MIME):
            return []
        try:
            batch, new_ids = self._paste_commands(json.loads(bytes(mime.data(CLIPBOARD_MIME).data()).decode("utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError):
            self._refuse(tr("The clipboard does not hold Ledgerflow nodes"), [])
            return []
        if not batch.commands or not self.push(batch):
            return []
        self.select(new_ids)
        return new_ids

    def _paste_commands(self, doc: dict) -> tuple[Batch, list[str]]:
        """The commands that paste a clipboard document; raises on any malformed part (nothing is pushed)."""
        eg = self.document.graph
        nodes, edges = list(doc["nodes"]), list(doc["edges"])
        new_ids = {str(n["ref"]): str(uuid.uuid4()) for n in nodes}
        titles: list[str] = []
        cmds: list[Command] = []
        for n in nodes:
            title = eg.unique_title(str(n["title"]), titles)
            titles.append(title)
            x, y = (float(v) for v in n["position"])
            settings = n["settings"]
            if not isinstance(settings, dict):
                raise TypeError("settings must be an object")
            cmds.append(AddNode(str(n["type_id"]), settings, title=title, node_id=new_ids[str(n["ref"])],
                                position=(x + PASTE_OFFSET, y + PASTE_OFFSET)))
        for src, src_port, dst, dst_port in edges:
            if src in new_ids and dst in new_ids:
                cmds.append(Connect(new_ids[src], str(src_port), new_ids[dst], str(dst_port)))
        return Batch(cmds, label="paste"), list(new_ids.values())

    def duplicate_selected(self) -> list[str]:
        return self.paste() if self.copy_selected() else []

    # ---- backdrops -----------------------------------------------------------------------------
    def add_backdrop(self, title: str) -> BackdropNode:
        """A titled group around the selected nodes (or at the view centre)."""
        selected = [n for n in self.graph.selected_nodes() if isinstance(n, LedgerflowNode)]
        bd = self.graph.create_node(BackdropNode.type_, name=title, push_undo=False)
        if selected:
            bd.wrap_nodes(selected)
        self._backdrops_touched()
        return bd

    def backdrops_doc(self) -> list[dict[str, Any]]:
        return [{"title": bd.name(), "position": list(bd.pos()), "size": list(bd.size()),
                 "color": list(bd.color())[:3]}
                for bd in self.graph.all_nodes() if isinstance(bd, BackdropNode)]

    def store_canvas_state(self) -> None:
        """What only the canvas knows (backdrops, the view) goes into the project's meta section before a save."""
        self.store_backdrops()
        self.store_view()

    def store_backdrops(self) -> None:
        """Backdrops are canvas-only; they are kept in the project's meta section."""
        docs = self.backdrops_doc()
        if docs or "backdrops" in self.document.project.meta:
            self.document.project.meta["backdrops"] = docs

    def _restore_backdrops(self) -> None:
        docs = self.document.project.meta.get("backdrops", [])
        if not isinstance(docs, list):
            log.warning("ignoring the project's backdrops: meta.backdrops is not a list")
            return
        for doc in docs:
            try:
                title, pos, size = str(doc["title"]), [float(v) for v in doc["position"]], \
                    [float(v) for v in doc["size"]]
                color = [int(v) for v in doc.get("color", ())][:3]
                bd = self.graph.create_node(BackdropNode.type_, name=title, push_undo=False, selected=False)
                if len(color) == 3:
                    bd.set_color(*color)
                bd.set_pos(*pos)
                bd.set_size(*size)
                bd.view.setZValue(-2)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("skipping a malformed backdrop in the project: %s", exc)

    # ---- selection and lookups -----------------------------------------------------------------
    def engine_id(self, canvas_id: str) -> str:
        node = self.graph.model.nodes.get(canvas_id)
        return getattr(node, "engine_id", "") if node is not None else ""

    def canvas_node(self, engine_id: str) -> LedgerflowNode:
        return self._by_engine[engine_id]

    def selected_ids(self) -> list[str]:
        return [n.engine_id for n in self.graph.selected_nodes() if isinstance(n, LedgerflowNode) and n.engine_id]

    def select(self, node_ids: list[str]) -> None:
        for n in self.graph.selected_nodes():
            n.set_selected(False)
        for nid in node_ids:
            if nid in self._by_engine:
                self._by_engine[nid].set_selected(True)
        self.selection_changed.emit(self.selected_ids())

    def _on_double_clicked(self, canvas_id: str) -> None:
        nid = self.engine_id(canvas_id)
        if nid:
            self.node_activated.emit(nid)

    def _on_context(self, canvas_id: str, global_pos: QtCore.QPoint, scene_pos: QtCore.QPointF) -> None:
        nid = self.engine_id(canvas_id) if canvas_id else ""
        if nid and nid not in self.selected_ids():
            self.select([nid])
        self.context_requested.emit(nid, global_pos, scene_pos)

    def fit(self) -> None:
        nodes = [n for n in self.graph.all_nodes()]
        if nodes:
            self.viewer.zoom_to_nodes([n.view for n in nodes])

    def view_state(self) -> dict[str, Any]:
        """Where the user was looking (zoom and centre), saved with the project like editors do."""
        center = self.viewer.mapToScene(self.viewer.viewport().rect().center())
        return {"zoom": round(self.viewer.transform().m11(), 4), "center": [round(center.x(), 1),
                                                                           round(center.y(), 1)]}

    def restore_view(self) -> None:
        """Reopen where the user left off; a project without a saved view is fitted (a small one) or shown at
        100 % from its first nodes (a large one, whose whole outline would be unreadable)."""
        doc = self.document.project.meta.get("view")
        try:
            zoom, (x, y) = float(doc["zoom"]), (float(v) for v in doc["center"])  # type: ignore[index]
            if not 0.01 <= zoom <= 10:
                raise ValueError(zoom)
        except (TypeError, KeyError, ValueError):
            if len(self._by_engine) < 150:
                self.fit()
                return
            rect = QtCore.QRectF()
            for node in self._by_engine.values():
                rect = rect.united(node.view.sceneBoundingRect())
            vp = self.viewer.viewport().rect()
            zoom, x, y = 1.0, rect.left() + vp.width() / 2 - 40, rect.top() + vp.height() / 2 - 40
        vp = self.viewer.viewport().rect()
        w, h = vp.width() / zoom, vp.height() / zoom
        self.viewer._scene_range = QtCore.QRectF(x - w / 2, y - h / 2, w, h)
        self.viewer._update_scene()

    def store_view(self) -> None:
        self.document.project.meta["view"] = self.view_state()

    # ---- keeping the canvas equal to the engine ------------------------------------------------
    def _ports(self, edge: Edge) -> tuple[Any, Any] | None:
        src, dst = self._by_engine.get(edge.src), self._by_engine.get(edge.dst)
        if src is None or dst is None:
            return None
        out, inp = src.get_output(edge.src_port), dst.get_input(edge.dst_port)
        return (out, inp) if out is not None and inp is not None else None

    def _ensure_connected(self, edge: Edge) -> None:
        ports = self._ports(edge)
        if ports is None:
            return
        out, inp = ports
        if inp not in out.connected_ports():
            PortConnectedCmd(out, inp, False).redo()
        elif inp.view not in out.view.connected_ports:
            out.view.connect_to(inp.view)

    def _ensure_disconnected(self, edge: Edge) -> None:
        ports = self._ports(edge)
        if ports is None:
            return
        out, inp = ports
        if inp in out.connected_ports():
            PortDisconnectedCmd(out, inp, False).redo()
        out.view.disconnect_from(inp.view)

    def resync(self, node_ids: Iterable[str]) -> None:
        """Make the pipes of these nodes equal to the engine's edges (after a refused or partial gesture)."""
        eg = self.document.graph
        for nid in set(node_ids):
            node = self._by_engine.get(nid)
            if node is None:
                continue
            wanted = set(eg.incoming(nid)) | set(eg.outgoing(nid))
            for port in [*node.input_ports(), *node.output_ports()]:
                for other in list(port.connected_ports()):
                    pair = (port, other) if port.type_() == PortTypeEnum.OUT.value else (other, port)
                    e = Edge(pair[0].node().engine_id, pair[0].name(), pair[1].node().engine_id, pair[1].name())
                    if e not in wanted:
                        self._ensure_disconnected(e)
                for pv in list(port.view.connected_ports):  # a pipe the viewer drew that no model edge backs
                    other_node = self.graph.model.nodes.get(pv.node.id)
                    other = None
                    if other_node is not None:
                        other = (other_node.get_input(pv.name) if port.type_() == PortTypeEnum.OUT.value
                                 else other_node.get_output(pv.name))
                    if other is None or other not in port.connected_ports():
                        port.view.disconnect_from(pv)
            for e in wanted:
                self._ensure_connected(e)

    def canvas_edges(self) -> set[Edge]:
        """The edges the canvas shows (from its pipes), for tests and consistency checks."""
        edges = set()
        for node in self._by_engine.values():
            for port in node.input_ports():
                for pv in port.view.connected_ports:
                    src = self.engine_id(pv.node.id)
                    edges.add(Edge(src, pv.name, node.engine_id, port.name()))
        return edges

    def close(self) -> None:
        for b_signal, slot in ((self.bridge.node_added, self._on_node_added),
                               (self.bridge.node_removed, self._on_node_removed),
                               (self.bridge.edge_added, self._on_edge_added),
                               (self.bridge.edge_removed, self._on_edge_removed),
                               (self.bridge.node_changed, self._on_node_changed),
                               (self.bridge.state_changed, self._on_state_changed),
                               (self.bridge.progress, self._on_progress)):
            try:
                b_signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
