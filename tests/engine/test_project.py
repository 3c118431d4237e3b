"""Project file: stable JSON, atomic writes, placeholders, migrations, and clear errors on bad files."""
from __future__ import annotations

import json
import os

import pytest

from engine.errors import ProjectFileError
from engine.graph import Edge
from engine.project import FORMAT_VERSION, Project


def build(project: Project) -> tuple[str, str]:
    g = project.graph
    a = g.add_node("toy.const", {"value": 7}, position=(10, 20))
    b = g.add_node("toy.add", {"n": 2})
    g.add_edge(Edge(a.id, "table", b.id, "table"))
    return a.id, b.id


def test_round_trip_is_byte_stable_with_sorted_keys(project, registry):
    a, b = build(project)
    path = project.save()
    first = path.read_bytes()
    again = Project.load(path, registry)
    again.save()
    assert path.read_bytes() == first
    doc = json.loads(first)
    assert doc["format_version"] == FORMAT_VERSION
    assert list(doc) == sorted(doc)
    node = next(n for n in doc["nodes"] if n["id"] == a)
    assert node["type_id"] == "toy.const" and node["type_version"] == 1
    assert node["plugin"] == {"distribution": "toy-plugin", "version": "1.0"}
    assert again.graph.edges == {Edge(a, "table", b, "table")}
    assert again.graph.nodes[a].position == (10.0, 20.0)


def test_unknown_node_type_is_a_placeholder_that_saves_back_unchanged(project, registry, tmp_path):
    a, b = build(project)
    c = project.graph.add_node("toy.add").id
    path = project.save()
    doc = json.loads(path.read_text())
    alien = {"id": "alien-1", "type_id": "acme.magic", "type_version": 3, "title": "Magic",
             "settings": {"spell": ["x", {"deep": 1}]}, "position": [5, 6],
             "plugin": {"distribution": "acme-nodes", "version": "2.1", "extra": "kept"}}
    doc["nodes"].append(alien)
    doc["edges"].append({"from": {"node": b, "port": "table"}, "to": {"node": "alien-1", "port": "in"}})
    doc["edges"].append({"from": {"node": "alien-1", "port": "out"}, "to": {"node": c, "port": "zzz"}})
    path.write_text(json.dumps(doc))
    loaded = Project.load(path, registry)
    inst = loaded.graph.nodes["alien-1"]
    assert inst.is_placeholder and "acme-nodes 2.1" in inst.placeholder_reason
    issues = [i for i in loaded.graph.validate() if i.node_id == "alien-1"]
    assert issues and issues[0].code == "unknown_type"
    loaded.save()
    saved = json.loads(path.read_text())
    assert next(n for n in saved["nodes"] if n["id"] == "alien-1") == alien
    assert {"from": {"node": b, "port": "table"}, "to": {"node": "alien-1", "port": "in"}} in saved["edges"]
    assert {"from": {"node": "alien-1", "port": "out"}, "to": {"node": c, "port": "zzz"}} in saved["edges"]


def test_newer_format_is_refused_naming_both_versions(project, registry):
    path = project.save()
    doc = json.loads(path.read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError) as exc:
        Project.load(path, registry)
    assert f"format {FORMAT_VERSION + 1}" in str(exc.value) and f"format {FORMAT_VERSION} or older" in str(exc.value)


@pytest.mark.parametrize("cut", [1, 40, -3])
def test_truncated_file_gives_position_and_is_left_untouched(project, registry, cut):
    build(project)
    path = project.save()
    text = path.read_text()
    broken = text[:cut] if cut > 0 else text[:cut - 30]
    path.write_text(broken)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    with pytest.raises(ProjectFileError) as exc:
        Project.load(path, registry)
    assert "line" in str(exc.value) and "column" in str(exc.value) and "left unchanged" in str(exc.value)
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_structural_errors_name_the_json_path(project, registry):
    path = project.save()
    doc = json.loads(path.read_text())
    doc["nodes"] = [{"id": "x", "type_id": "toy.const", "title": "X"}]  # no type_version
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match=r"nodes\[0\]\.type_version"):
        Project.load(path, registry)


def test_edge_to_missing_node_and_missing_or_empty_file(project, registry, tmp_path):
    path = project.save()
    doc = json.loads(path.read_text())
    doc["edges"] = [{"from": {"node": "ghost", "port": "t"}, "to": {"node": "ghost2", "port": "t"}}]
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match=r"edges\[0\]\.from names node ghost"):
        Project.load(path, registry)
    with pytest.raises(ProjectFileError, match="does not exist"):
        Project.load(tmp_path / "nowhere", registry)
    path.write_text("")
    with pytest.raises(ProjectFileError, match="empty"):
        Project.load(path, registry)


def test_old_version_is_migrated_and_legacy_id_is_resolved(project, registry):
    path = project.save()
    doc = json.loads(path.read_text())
    doc["nodes"] = [{"id": "n1", "type_id": "toy.old_name", "type_version": 1, "title": "Old",
                     "settings": {"cutoff": 0.3}}]
    path.write_text(json.dumps(doc))
    loaded = Project.load(path, registry)
    inst = loaded.graph.nodes["n1"]
    assert inst.type_id == "toy.renamed" and inst.type_version == 2 and inst.settings == {"threshold": 0.3}
    assert not loaded.graph.validate()


def test_newer_node_version_is_kept_as_placeholder(project, registry):
    path = project.save()
    doc = json.loads(path.read_text())
    doc["nodes"] = [{"id": "n1", "type_id": "toy.const", "type_version": 9, "title": "Future",
                     "settings": {"value": 1, "new_field": True}}]
    path.write_text(json.dumps(doc))
    inst = Project.load(path, registry).graph.nodes["n1"]
    assert inst.is_placeholder and "version 9" in inst.placeholder_reason


def test_a_failed_save_leaves_the_previous_file_intact(project, registry, monkeypatch):
    build(project)
    path = project.save()
    before = path.read_bytes()
    project.graph.add_node("toy.const", title="Another")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        project.save()
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
