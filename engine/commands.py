"""Undoable change commands. Every edit from the canvas or a script goes through `UndoStack.push`.

Undo replays the same command list backwards (ARCHITECTURE.md §1). Commands keep just enough state to reverse
themselves; they never hold widgets.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from engine.graph import Edge, Graph, NodeInstance


class Command:
    label = "edit"

    def do(self, graph: Graph) -> None:
        raise NotImplementedError

    def undo(self, graph: Graph) -> None:
        raise NotImplementedError


@dataclass
class AddNode(Command):
    type_id: str
    settings: dict[str, Any] | None = None
    title: str | None = None
    position: tuple[float, float] = (0.0, 0.0)
    node_id: str | None = None
    label = "add node"

    def do(self, graph: Graph) -> None:
        inst = graph.add_node(self.type_id, self.settings, title=self.title, position=self.position,
                              node_id=self.node_id)
        self.node_id, self.title = inst.id, inst.title  # redo recreates the same id

    def undo(self, graph: Graph) -> None:
        assert self.node_id
        graph.remove_node(self.node_id)


@dataclass
class RemoveNode(Command):
    node_id: str
    _saved: NodeInstance | None = None
    _edges: list[Edge] = field(default_factory=list)
    label = "remove node"

    def do(self, graph: Graph) -> None:
        self._saved, self._edges = graph.remove_node(self.node_id)

    def undo(self, graph: Graph) -> None:
        assert self._saved
        graph.insert_node(self._saved)
        for e in sorted(self._edges):
            graph.add_edge(e, check=False)


@dataclass
class Connect(Command):
    """Connect two ports; an input that is already connected is rewired (and the old edge restored on undo)."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    _replaced: Edge | None = None
    label = "connect"

    def do(self, graph: Graph) -> None:
        self._replaced = next((e for e in graph.incoming(self.dst) if e.dst_port == self.dst_port), None)
        if self._replaced:
            graph.remove_edge(self._replaced)
        try:
            graph.add_edge(Edge(self.src, self.src_port, self.dst, self.dst_port))
        except Exception:
            if self._replaced:
                graph.add_edge(self._replaced, check=False)
            raise

    def undo(self, graph: Graph) -> None:
        graph.remove_edge(Edge(self.src, self.src_port, self.dst, self.dst_port))
        if self._replaced:
            graph.add_edge(self._replaced, check=False)


@dataclass
class Disconnect(Command):
    edge: Edge
    label = "disconnect"

    def do(self, graph: Graph) -> None:
        graph.remove_edge(self.edge)

    def undo(self, graph: Graph) -> None:
        graph.add_edge(self.edge, check=False)


@dataclass
class SetSettings(Command):
    """Merge `changes` into a node's settings. Validation is separate (`Graph.validate`), so a half-typed value
    can be shown inline as an error instead of being rejected outright."""

    node_id: str
    changes: dict[str, Any]
    _before: dict[str, Any] | None = None
    label = "change settings"

    def do(self, graph: Graph) -> None:
        inst = graph.node(self.node_id)
        self._before = copy.deepcopy(inst.settings)
        graph.replace_settings(self.node_id, {**inst.settings, **copy.deepcopy(self.changes)})

    def undo(self, graph: Graph) -> None:
        assert self._before is not None
        graph.replace_settings(self.node_id, self._before)


@dataclass
class UpdateNode(Command):
    """Rename, move or disable a node."""

    node_id: str
    changes: dict[str, Any]
    _before: dict[str, Any] | None = None
    label = "update node"

    def do(self, graph: Graph) -> None:
        inst = graph.node(self.node_id)
        self._before = {k: getattr(inst, k) for k in self.changes}
        graph.update_node(self.node_id, **self.changes)

    def undo(self, graph: Graph) -> None:
        assert self._before is not None
        graph.update_node(self.node_id, **self._before)


@dataclass
class Batch(Command):
    """Several commands undone as one step (paste, delete selection)."""

    commands: list[Command]
    label: str = "batch"  # type: ignore[assignment]

    def do(self, graph: Graph) -> None:
        done: list[Command] = []
        try:
            for c in self.commands:
                c.do(graph)
                done.append(c)
        except Exception:
            for c in reversed(done):
                c.undo(graph)
            raise

    def undo(self, graph: Graph) -> None:
        for c in reversed(self.commands):
            c.undo(graph)


class UndoStack:
    def __init__(self, graph: Graph, limit: int = 500) -> None:
        self.graph = graph
        self.limit = limit
        self._done: list[Command] = []
        self._undone: list[Command] = []

    def push(self, command: Command) -> Command:
        """Execute and record a command. A command that raises leaves the graph and the stack unchanged."""
        command.do(self.graph)
        self._done.append(command)
        del self._done[: -self.limit]
        self._undone.clear()
        return command

    def undo(self) -> Command | None:
        if not self._done:
            return None
        command = self._done.pop()
        command.undo(self.graph)
        self._undone.append(command)
        return command

    def redo(self) -> Command | None:
        if not self._undone:
            return None
        command = self._undone.pop()
        command.do(self.graph)
        self._done.append(command)
        return command

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)
