"""Graph model: typed connections, cycles, undo/redo, events and per-node/per-field validation."""
from __future__ import annotations

import pytest

from engine import commands as c
from engine import events as ev
from engine.errors import GraphError, PortTypeMismatch
from engine.graph import Edge, Graph


def chain(graph: Graph, *type_ids: str) -> list[str]:
    ids = [graph.add_node(t).id for t in type_ids]
    return ids


def test_connect_incompatible_ports_names_both_ports_and_types(registry):
    g = Graph(registry)
    src = g.add_node("toy.const", title="Source")
    ev_ = g.add_node("evaluate.evaluate", title="Eval")
    with pytest.raises(PortTypeMismatch) as exc:
        g.add_edge(Edge(src.id, "table", ev_.id, "model"))
    msg = str(exc.value)
    assert "Source.table (Table)" in msg and "Eval.model (Model)" in msg


def test_unknown_port_and_occupied_input_are_refused(registry):
    g = Graph(registry)
    a, b, d = g.add_node("toy.const"), g.add_node("toy.const"), g.add_node("toy.add")
    with pytest.raises(GraphError, match="no output port 'nope'"):
        g.add_edge(Edge(a.id, "nope", d.id, "table"))
    g.add_edge(Edge(a.id, "table", d.id, "table"))
    with pytest.raises(GraphError, match="already connected"):
        g.add_edge(Edge(b.id, "table", d.id, "table"))


def test_cycle_is_refused(registry):
    g = Graph(registry)
    a, b = g.add_node("toy.add"), g.add_node("toy.add")
    g.add_edge(Edge(a.id, "table", b.id, "table"))
    with pytest.raises(GraphError, match="cycle"):
        g.add_edge(Edge(b.id, "table", a.id, "table"))


def test_titles_are_unique_and_ids_are_uuids(registry):
    g = Graph(registry)
    a, b = g.add_node("toy.const"), g.add_node("toy.const")
    assert a.title == "Const" and b.title == "Const 2"
    assert len(a.id) == 36 and a.id != b.id


def test_undo_redo_replays_the_command_list(registry):
    g = Graph(registry)
    stack = c.UndoStack(g)
    add_a = stack.push(c.AddNode("toy.const"))
    add_b = stack.push(c.AddNode("toy.add"))
    stack.push(c.Connect(add_a.node_id, "table", add_b.node_id, "table"))
    stack.push(c.SetSettings(add_b.node_id, {"n": 5}))
    stack.push(c.UpdateNode(add_b.node_id, {"title": "Plus five", "position": (10.0, 20.0)}))
    stack.push(c.RemoveNode(add_a.node_id))
    assert list(g.nodes) == [add_b.node_id] and not g.edges

    stack.undo()  # the removed node comes back with its edge
    assert add_a.node_id in g.nodes and len(g.edges) == 1
    stack.undo()
    assert g.nodes[add_b.node_id].title == "Add"
    stack.undo()
    assert g.nodes[add_b.node_id].settings["n"] == 1
    stack.undo()
    assert not g.edges
    stack.redo()
    stack.redo()
    assert g.nodes[add_b.node_id].settings["n"] == 5 and len(g.edges) == 1
    while stack.undo():
        pass
    assert not g.nodes
    while stack.redo():
        pass
    assert set(g.nodes) == {add_b.node_id} and not g.edges


def test_connect_rewires_an_occupied_input_and_undo_restores_it(registry):
    g = Graph(registry)
    stack = c.UndoStack(g)
    a, b, d = (stack.push(c.AddNode(t)).node_id for t in ("toy.const", "toy.const", "toy.add"))
    stack.push(c.Connect(a, "table", d, "table"))
    stack.push(c.Connect(b, "table", d, "table"))
    assert g.edges == {Edge(b, "table", d, "table")}
    stack.undo()
    assert g.edges == {Edge(a, "table", d, "table")}


def test_failed_command_leaves_graph_and_stack_unchanged(registry):
    g = Graph(registry)
    stack = c.UndoStack(g)
    a = stack.push(c.AddNode("toy.const")).node_id
    e = stack.push(c.AddNode("evaluate.evaluate")).node_id
    with pytest.raises(PortTypeMismatch):
        stack.push(c.Connect(a, "table", e, "model"))
    assert not g.edges and stack.undo().label == "add node"


def test_change_events_are_plain_python(registry):
    g = Graph(registry)
    seen: list[str] = []
    for name in (ev.NODE_ADDED, ev.EDGE_ADDED, ev.SETTINGS_CHANGED, ev.NODE_CHANGED, ev.EDGE_REMOVED,
                 ev.NODE_REMOVED):
        g.events.subscribe(name, lambda name=name, **kw: seen.append(name))
    stack = c.UndoStack(g)
    a = stack.push(c.AddNode("toy.const")).node_id
    b = stack.push(c.AddNode("toy.add")).node_id
    stack.push(c.Connect(a, "table", b, "table"))
    stack.push(c.SetSettings(b, {"n": 2}))
    stack.push(c.UpdateNode(b, {"position": (1.0, 1.0)}))
    stack.push(c.RemoveNode(a))
    assert seen == ["node_added", "node_added", "edge_added", "settings_changed", "node_changed",
                    "edge_removed", "node_removed"]


def test_a_failing_listener_does_not_break_the_graph(registry):
    g = Graph(registry)
    g.events.subscribe(ev.NODE_ADDED, lambda **kw: 1 / 0)
    assert g.add_node("toy.const").id in g.nodes


def test_validation_reports_per_node_and_field(registry):
    g = Graph(registry)
    src = g.add_node("toy.const", {"value": 5000}, title="Big")  # le=1000
    add = g.add_node("toy.add", {"n": "many", "bogus": 1}, title="Adder")  # not an int, unknown key
    split = g.add_node("features.split", {"test_fraction": 1.5}, title="Split it")
    issues = {(i.node_title, i.field, i.code) for i in g.validate()}
    assert ("Big", "value", "settings") in issues
    assert ("Adder", "n", "settings") in issues
    assert ("Adder", "bogus", "settings") in issues
    assert ("Adder", "input:table", "missing_input") in issues
    assert ("Split it", "test_fraction", "settings") in issues
    assert ("Split it", "input:table", "missing_input") in issues
    assert not any(i[0] == "Big" and i[2] == "missing_input" for i in issues)
    del src, add, split


def test_validation_reports_cycles_and_type_mismatch_from_a_loaded_file(registry):
    g = Graph(registry)
    a, b = g.add_node("toy.add", title="A"), g.add_node("toy.add", title="B")
    g.add_edge(Edge(a.id, "table", b.id, "table"), check=False)
    g.add_edge(Edge(b.id, "table", a.id, "table"), check=False)
    ev_ = g.add_node("evaluate.evaluate", title="E")
    g.add_edge(Edge(a.id, "table", ev_.id, "model"), check=False)
    codes = {(i.node_title, i.code) for i in g.validate()}
    assert {("A", "cycle"), ("B", "cycle"), ("E", "type_mismatch")} <= codes


def test_find_by_title_id_or_prefix(registry):
    g = Graph(registry)
    a = g.add_node("toy.const", title="Source")
    assert g.find("Source") is a and g.find(a.id) is a and g.find(a.id[:8]) is a
    with pytest.raises(GraphError, match="No node 'nope'"):
        g.find("nope")


def test_validation_catches_hand_edited_edges(registry):
    g = Graph(registry)
    a, b, d = g.add_node("toy.const", title="A"), g.add_node("toy.const", title="B"), g.add_node("toy.add", title="D")
    g.add_edge(Edge(a.id, "tabel", d.id, "table"), check=False)
    g.add_edge(Edge(b.id, "table", d.id, "table"), check=False)
    codes = {(i.field, i.code) for i in g.validate()}
    assert ("input:table", "unknown_port") in codes and ("input:table", "duplicate_input") in codes
