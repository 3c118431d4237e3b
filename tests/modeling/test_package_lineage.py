"""A model package names the data and the run that trained its model, through the engine's run lineage.

A real project run: Read → Split → LightGBM → Export ONNX. The package's manifest must carry the training table's
content digest (the one the run records hold), the run that trained the model and the run that exported it; when
only the export changes, the model comes from the cache and the package still names the earlier training run.
"""
from __future__ import annotations

import json

from engine.graph import Edge
from engine.project import Project
from engine.scheduler import Session
from engine.templates import SAMPLE_DATA


def test_manifest_names_training_data_and_runs(tmp_path):
    project = Project.new(tmp_path / "proj", "Lineage")
    g = project.graph
    read = g.add_node("io.read_csv", {"path": str(SAMPLE_DATA)}, title="Read").id
    split = g.add_node("features.split", {"test_fraction": 0.3, "stratify_by": "default"}, title="Split").id
    gbm = g.add_node("automl.lightgbm", {"label": "default", "n_estimators": 20}, title="GBM").id
    export = g.add_node("export.onnx", {"folder": "out", "package_name": "first"}, title="Export").id
    g.add_edge(Edge(read, "table", split, "table"))
    g.add_edge(Edge(split, "train", gbm, "train"))
    g.add_edge(Edge(gbm, "model", export, "model"))
    g.add_edge(Edge(split, "test", export, "holdout"))
    project.save()
    with Session(project) as s:
        first = s.run()
        assert first.ok, {n: r.error for n, r in first.nodes.items()}
        train_digest = s.runlog.records(node_id=split)[0]["outputs"]["train"]
        model_digest = s.runlog.records(node_id=gbm)[0]["outputs"]["model"]
        g.replace_settings(export, {"folder": "out", "package_name": "second"})
        second = s.run()
        assert second.ok and gbm not in second.executed and export in second.executed
    one = json.loads((tmp_path / "proj" / "out" / "first" / "manifest.json").read_text("utf-8"))["lineage"]
    two = json.loads((tmp_path / "proj" / "out" / "second" / "manifest.json").read_text("utf-8"))["lineage"]
    assert one["training_data_fingerprint"] == train_digest and len(train_digest) == 64
    assert one["training_data_node"] == split
    assert one["model_artifact"] == model_digest
    assert one["training_run_id"] == first.run_id and one["export_run_id"] == first.run_id
    # the model was a cache hit: still trained by the first run, exported by the second
    assert two["training_run_id"] == first.run_id and two["export_run_id"] == second.run_id
    assert two["training_data_fingerprint"] == train_digest and two["model_artifact"] == model_digest
