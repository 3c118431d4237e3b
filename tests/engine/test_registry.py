"""Plugin discovery: entry points with provenance, a plugins folder, and broken plugins logged and skipped."""
from __future__ import annotations

from importlib.metadata import EntryPoint

from engine.registry import Registry, default_registry


def test_the_example_plugin_registers_through_its_entry_point():
    reg = default_registry()
    cls = reg.get("example.ratio")
    assert cls is not None and cls.__module__ == "ledgerflow_example"
    prov = reg.provenance("example.ratio")
    assert (prov.distribution, prov.version) == ("ledgerflow-example-plugin", "1.0.0")


def test_a_broken_entry_point_is_logged_and_skipped(caplog):
    reg = Registry()
    reg.load_entry_point(EntryPoint("broken", "no_such_module_xyz:NODES", "ledgerflow.nodes"))
    reg.load_entry_point(EntryPoint("not-nodes", "json:dumps", "ledgerflow.nodes"))
    assert len(reg.errors) == 2 and "no_such_module_xyz" in reg.errors[0]
    assert "failed to load" in caplog.text
    assert reg.all() == []


def test_plugins_folder_for_frozen_builds(tmp_path):
    (tmp_path / "good.py").write_text(
        "from engine.sdk import Node, node\nfrom engine.ports import Table\n"
        "@node('folder.good', title='Good', category='X')\n"
        "class Good(Node):\n    'A node from a folder.'\n    outputs = {'t': Table}\nNODES = [Good]\n")
    (tmp_path / "bad.py").write_text("raise RuntimeError('plugin import exploded')\n")
    reg = Registry()
    reg.load_folder(tmp_path)
    assert reg.get("folder.good") is not None
    assert reg.provenance("folder.good").distribution == "plugins/good.py"
    assert any("exploded" in e for e in reg.errors)


def test_duplicate_type_ids_are_refused():
    import pytest

    from toynodes import Const

    reg = Registry()
    reg.register(Const)

    class Other(Const):
        pass

    with pytest.raises(ValueError, match="registered twice"):
        reg.register(Other)


def test_heavy_nodes_from_a_plugins_folder_run_in_worker_processes(tmp_path, monkeypatch):
    from engine.executors.process import LocalProcessExecutor
    from engine.project import Project
    from engine.scheduler import Session

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "heavy_one.py").write_text(
        "import os\nimport polars as pl\nfrom engine.sdk import Node, node\nfrom engine.ports import Table\n"
        "@node('folder.pid', title='Pid', category='X', heavy=True)\n"
        "class Pid(Node):\n    'Where did I run?'\n    outputs = {'table': Table}\n"
        "    def compute(self, inputs, settings, ctx):\n"
        "        return {'table': pl.DataFrame({'pid': [os.getpid()]})}\nNODES = [Pid]\n")
    monkeypatch.setenv("LEDGERFLOW_PLUGIN_DIR", str(folder))
    reg = Registry()
    reg.load_folder(folder)
    project = Project.new(tmp_path / "p", "t", reg)
    nid = project.graph.add_node("folder.pid").id
    pool = LocalProcessExecutor(max_workers=1)
    try:
        with Session(project, heavy_executor=pool) as s:
            assert s.run().ok, s.status[nid].error
            assert s.output(nid, "table")["pid"][0] != __import__("os").getpid()
    finally:
        pool.close()
