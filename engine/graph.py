"""The graph model: nodes with stable UUIDs, typed edges, change events and validation.

This is the single source of truth (ARCHITECTURE.md §1). Mutate it through `engine.commands` to get undo/redo;
the methods here are the primitive operations those commands call.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any, Iterable

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from engine import events as ev
from engine.errors import GraphError, PortTypeMismatch
from engine.events import EventBus
from engine.i18n import tr
from engine.ports import PortType
from engine.registry import Registry
from engine.sdk import Node, PortSpec


@dataclass
class NodeInstance:
    id: str
    type_id: str
    type_version: int
    title: str
    settings: dict[str, Any]
    position: tuple[float, float] = (0.0, 0.0)
    disabled: bool = False
    plugin: dict[str, str] = field(default_factory=dict)
    # Set when the type is not installed (or is newer than installed): the node is kept verbatim.
    placeholder_reason: str | None = None
    raw: dict[str, Any] | None = field(default=None, repr=False)  # the node as read from the file

    def __post_init__(self) -> None:
        self.position = (float(self.position[0]), float(self.position[1]))

    @property
    def is_placeholder(self) -> bool:
        return self.placeholder_reason is not None


@dataclass(frozen=True, order=True)
class Edge:
    src: str
    src_port: str
    dst: str
    dst_port: str


@dataclass(frozen=True)
class ValidationIssue:
    node_id: str
    node_title: str
    field: str  # a settings field path, "input:<port>", or "" for the node as a whole
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.node_title}" + (f" [{self.field}]" if self.field else "")
        return f"{where}: {self.message}"


def default_settings(cls: type[Node]) -> dict[str, Any]:
    """The JSON form of every settings field that has a default."""
    out: dict[str, Any] = {}
    for name, f in cls.Settings.model_fields.items():
        if not f.is_required():
            out[name] = to_jsonable_python(f.get_default(call_default_factory=True))
    return out


class Graph:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.nodes: dict[str, NodeInstance] = {}
        self.edges: set[Edge] = set()
        self._in: dict[str, set[Edge]] = {}  # adjacency indexes: lookups stay O(degree) in big graphs
        self._out: dict[str, set[Edge]] = {}
        self.events = EventBus()

    # ---- lookups -------------------------------------------------------------------------------
    def node(self, node_id: str) -> NodeInstance:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(tr("No node with id {id} in this project", id=node_id)) from None

    def find(self, ref: str) -> NodeInstance:
        """A node by id, id prefix (>= 6 chars) or exact title: what a CLI user types."""
        if ref in self.nodes:
            return self.nodes[ref]
        by_title = [n for n in self.nodes.values() if n.title == ref]
        if len(by_title) == 1:
            return by_title[0]
        by_prefix = [n for n in self.nodes.values() if len(ref) >= 6 and n.id.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_title) > 1:
            raise GraphError(tr("Several nodes are titled {ref!r}; use the node id instead", ref=ref))
        titles = ", ".join(sorted(repr(n.title) for n in self.nodes.values()))
        raise GraphError(tr("No node {ref!r} in this project. Nodes: {titles}", ref=ref, titles=titles))

    def node_class(self, node_id: str) -> type[Node] | None:
        inst = self.node(node_id)
        return None if inst.is_placeholder else self.registry.get(inst.type_id)

    def input_ports(self, node_id: str) -> dict[str, PortSpec]:
        cls = self.node_class(node_id)
        if cls is not None:
            return cls.input_ports
        return {e.dst_port: PortSpec(e.dst_port, PortType) for e in self._in.get(node_id, ())}

    def output_ports(self, node_id: str) -> dict[str, PortSpec]:
        cls = self.node_class(node_id)
        if cls is not None:
            return cls.output_ports
        return {e.src_port: PortSpec(e.src_port, PortType) for e in self._out.get(node_id, ())}

    def incoming(self, node_id: str) -> list[Edge]:
        return sorted(self._in.get(node_id, ()))

    def outgoing(self, node_id: str) -> list[Edge]:
        return sorted(self._out.get(node_id, ()))

    def upstream(self, *node_ids: str) -> set[str]:
        """All ancestors of the given nodes (not including them unless one is an ancestor of another)."""
        seen: set[str] = set()
        stack = list(node_ids)
        while stack:
            for e in self._in.get(stack.pop(), ()):
                if e.src not in seen:
                    seen.add(e.src)
                    stack.append(e.src)
        return seen

    def downstream(self, *node_ids: str) -> set[str]:
        seen: set[str] = set()
        stack = list(node_ids)
        while stack:
            for e in self._out.get(stack.pop(), ()):
                if e.dst not in seen:
                    seen.add(e.dst)
                    stack.append(e.dst)
        return seen

    def topological_order(self, subset: Iterable[str] | None = None) -> list[str]:
        ids = set(subset) if subset is not None else set(self.nodes)
        ts: TopologicalSorter[str] = TopologicalSorter()
        for nid in sorted(ids):
            ts.add(nid, *sorted(e.src for e in self.incoming(nid) if e.src in ids))
        try:
            return list(ts.static_order())
        except CycleError as exc:
            cycle = exc.args[1]
            names = " → ".join(self.nodes[n].title for n in cycle)
            raise GraphError(tr("The workflow has a cycle: {names}", names=names)) from None

    # ---- primitive mutations (use engine.commands for undoable edits) --------------------------
    def add_node(
        self,
        type_id: str,
        settings: dict[str, Any] | None = None,
        *,
        title: str | None = None,
        position: tuple[float, float] = (0.0, 0.0),
        node_id: str | None = None,
    ) -> NodeInstance:
        cls = self.registry.get(type_id)
        if cls is None:
            raise GraphError(tr("Unknown node type {type_id!r}; run 'ledgerflow nodes' to list them", type_id=type_id))
        nid = node_id or str(uuid.uuid4())
        if nid in self.nodes:
            raise GraphError(f"node id {nid} already exists")
        prov = self.registry.provenance(cls.type_id)
        inst = NodeInstance(
            id=nid,
            type_id=cls.type_id,
            type_version=cls.version,
            title=title or self.unique_title(tr(cls.title)),
            settings=cls.scrub_settings({**default_settings(cls), **copy.deepcopy(settings or {})}),
            position=position,
            plugin={"distribution": prov.distribution, "version": prov.version},
        )
        self.insert_node(inst)
        return inst

    def insert_node(self, inst: NodeInstance) -> None:
        """Insert a prepared node (used by project loading and undo of a removal)."""
        self.nodes[inst.id] = inst
        self.events.emit(ev.NODE_ADDED, node=inst)

    def unique_title(self, base: str, also_taken: Iterable[str] = ()) -> str:
        """`base`, or `base 2`, `base 3`… : the first title no node has (nor any in `also_taken`, for a batch)."""
        taken = {n.title for n in self.nodes.values()} | set(also_taken)
        if base not in taken:
            return base
        i = 2
        while f"{base} {i}" in taken:
            i += 1
        return f"{base} {i}"

    def remove_node(self, node_id: str) -> tuple[NodeInstance, list[Edge]]:
        inst = self.node(node_id)
        removed = [*self._in.get(node_id, ()), *self._out.get(node_id, ())]
        for e in sorted(removed):
            self.remove_edge(e)
        self._in.pop(node_id, None)
        self._out.pop(node_id, None)
        del self.nodes[node_id]
        self.events.emit(ev.NODE_REMOVED, node=inst)
        return inst, removed

    def check_edge(self, edge: Edge) -> None:
        """Raise a GraphError saying exactly why `edge` cannot be added."""
        src, dst = self.node(edge.src), self.node(edge.dst)
        outs, ins = self.output_ports(edge.src), self.input_ports(edge.dst)
        if not src.is_placeholder and edge.src_port not in outs:
            raise GraphError(tr("Node {title!r} has no output port {port!r} (it has: {ports})",
                                title=src.title, port=edge.src_port, ports=", ".join(outs) or "-"))
        if not dst.is_placeholder and edge.dst_port not in ins:
            raise GraphError(tr("Node {title!r} has no input port {port!r} (it has: {ports})",
                                title=dst.title, port=edge.dst_port, ports=", ".join(ins) or "-"))
        if edge.src == edge.dst or edge.src in self.downstream(edge.dst):
            raise GraphError(tr("Connecting {a!r} to {b!r} would create a cycle", a=src.title, b=dst.title))
        if edge.src_port in outs and edge.dst_port in ins:
            out_t, in_t = outs[edge.src_port].type, ins[edge.dst_port].type
            if not in_t.accepts(out_t):
                raise PortTypeMismatch(tr(
                    "Cannot connect {src}.{sp} ({st}) to {dst}.{dp} ({dt}): a {st} output cannot feed a {dt} input",
                    src=src.title, sp=edge.src_port, st=out_t.type_name,
                    dst=dst.title, dp=edge.dst_port, dt=in_t.type_name))
        for e in self._in.get(edge.dst, ()):
            if e.dst_port == edge.dst_port:
                raise GraphError(tr("Input {title}.{port} is already connected; disconnect it first",
                                    title=dst.title, port=edge.dst_port))

    def add_edge(self, edge: Edge, *, check: bool = True) -> None:
        if check:
            self.check_edge(edge)
        self.edges.add(edge)
        self._in.setdefault(edge.dst, set()).add(edge)
        self._out.setdefault(edge.src, set()).add(edge)
        self.events.emit(ev.EDGE_ADDED, edge=edge)

    def remove_edge(self, edge: Edge) -> None:
        if edge not in self.edges:
            raise GraphError(f"no such connection: {edge}")
        self.edges.discard(edge)
        self._in[edge.dst].discard(edge)
        self._out[edge.src].discard(edge)
        self.events.emit(ev.EDGE_REMOVED, edge=edge)

    def replace_settings(self, node_id: str, settings: dict[str, Any]) -> None:
        inst = self.node(node_id)
        cls = self.node_class(node_id)
        settings = copy.deepcopy(settings)
        inst.settings = cls.scrub_settings(settings) if cls is not None else settings
        self.events.emit(ev.SETTINGS_CHANGED, node=inst)

    def update_node(self, node_id: str, **changes: Any) -> None:
        """Change title, position or disabled."""
        inst = self.node(node_id)
        for key, value in changes.items():
            if key not in ("title", "position", "disabled"):
                raise GraphError(f"cannot change {key!r} this way")
            setattr(inst, key, (float(value[0]), float(value[1])) if key == "position" else value)
        self.events.emit(ev.NODE_CHANGED, node=inst, changes=changes)

    # ---- validation ----------------------------------------------------------------------------
    def validated_settings(self, node_id: str) -> Any:
        """The node's settings as its pydantic model; raises ValidationError."""
        cls = self.node_class(node_id)
        assert cls is not None
        return cls.Settings.model_validate(self.node(node_id).settings)

    def validate(self) -> list[ValidationIssue]:
        """Every problem that would stop a run, reported per node and per field."""
        issues: list[ValidationIssue] = []

        def add(inst: NodeInstance, field_: str, code: str, message: str) -> None:
            issues.append(ValidationIssue(inst.id, inst.title, field_, code, message))

        try:
            self.topological_order()
        except GraphError as exc:
            for nid in _cycle_members(self):
                add(self.nodes[nid], "", "cycle", str(exc))
        for inst in sorted(self.nodes.values(), key=lambda n: n.title):
            if inst.is_placeholder:
                add(inst, "", "unknown_type", inst.placeholder_reason or "")
                continue
            cls = self.registry.get(inst.type_id)
            assert cls is not None
            try:
                cls.Settings.model_validate(inst.settings)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"]) or "settings"
                    add(inst, loc, "settings", f"{err['msg']} (got {err.get('input')!r})")
            connected: dict[str, Edge] = {}
            for e in self.incoming(inst.id):
                if e.dst_port in connected:
                    add(inst, f"input:{e.dst_port}", "duplicate_input",
                        tr("Input {port!r} has more than one connection; keep one", port=e.dst_port))
                connected[e.dst_port] = e
                src = self.nodes[e.src]
                if not src.is_placeholder and e.src_port not in self.output_ports(e.src):
                    add(inst, f"input:{e.dst_port}", "unknown_port",
                        tr("{src!r} has no output port {port!r}", src=src.title, port=e.src_port))
            for name, spec in cls.input_ports.items():
                if spec.required and name not in connected:
                    add(inst, f"input:{name}", "missing_input",
                        tr("Required input {port!r} ({type}) is not connected", port=name, type=spec.type.type_name))
            for name, e in connected.items():
                if name not in cls.input_ports:
                    add(inst, f"input:{name}", "unknown_port", tr("Node has no input port {port!r}", port=name))
                    continue
                src_ports = self.output_ports(e.src)
                if e.src_port in src_ports and not cls.input_ports[name].type.accepts(src_ports[e.src_port].type):
                    st, dt = src_ports[e.src_port].type.type_name, cls.input_ports[name].type.type_name
                    add(inst, f"input:{name}", "type_mismatch", tr(
                        "{src}.{sp} ({st}) cannot feed {port!r} ({dt})",
                        src=self.nodes[e.src].title, sp=e.src_port, st=st, port=name, dt=dt))
        return issues


def _cycle_members(graph: Graph) -> set[str]:
    """Nodes that sit on a cycle (strongly connected components of size > 1)."""
    return {n for n in graph.nodes if n in graph.downstream(n)}
