"""Scheduler and cache: concurrency, partial runs, failure isolation, content-addressed caching, verification."""
from __future__ import annotations

import shutil

import polars as pl
import pytest

from engine import commands as c
from engine import events as ev
from engine.errors import LedgerflowError
from engine.graph import Edge
from engine.project import Project
from engine.scheduler import NodeState, Session, ValidationFailed


def link(g, src, dst, sp="table", dp="table"):
    g.add_edge(Edge(src, sp, dst, dp))


@pytest.fixture
def diamond(project):
    """const → add1 → {add2, add3} → concat; plus an independent const2 → add4 branch."""
    g = project.graph
    n = {k: g.add_node(t, title=k).id for k, t in [("const", "toy.const"), ("add1", "toy.add"), ("add2", "toy.add"),
                                                   ("add3", "toy.add"), ("concat", "toy.concat"),
                                                   ("const2", "toy.const"), ("add4", "toy.add")]}
    link(g, n["const"], n["add1"])
    link(g, n["add1"], n["add2"])
    link(g, n["add1"], n["add3"])
    link(g, n["add2"], n["concat"], dp="a")
    link(g, n["add3"], n["concat"], dp="b")
    link(g, n["const2"], n["add4"])
    g.replace_settings(n["const2"], {"value": 2, "rows": 3})  # distinct content, so distinct cache keys
    project.save()
    return n


def test_run_all_then_unchanged_rerun_executes_nothing(project, diamond):
    with Session(project) as s:
        first = s.run()
        assert first.ok and len(first.executed) == 7
        assert s.output(diamond["concat"], "table")["x"].to_list() == [3] * 6
        again = s.run()
        assert again.ok and again.executed == [] and all(r.cached for r in again.nodes.values())


def test_editing_settings_reruns_exactly_the_node_and_its_descendants(project, diamond):
    with Session(project) as s:
        s.run()
        c.UndoStack(project.graph).push(c.SetSettings(diamond["add2"], {"n": 10}))
        assert s.status[diamond["add2"]].state is NodeState.STALE
        assert s.status[diamond["concat"]].state is NodeState.STALE
        assert s.status[diamond["add3"]].state is NodeState.DONE
        report = s.run()
        assert sorted(report.executed) == sorted([diamond["add2"], diamond["concat"]])
        assert sorted(s.output(diamond["concat"], "table")["x"].to_list()) == [3, 3, 3, 12, 12, 12]


def test_reopening_shows_previous_results_without_recomputation(project, diamond, registry):
    with Session(project) as s:
        s.run()
    reopened = Project.load(project.path, registry)
    with Session(reopened) as s2:
        assert all(st.state is NodeState.DONE and st.cached for st in s2.status.values())
        assert s2.output(diamond["add4"], "table")["x"].to_list() == [3, 3, 3]
        assert s2.run().executed == []


def test_states_idle_stale_done(project, diamond):
    with Session(project) as s:
        assert {st.state for st in s.status.values()} == {NodeState.IDLE}
        seen: list[tuple[str, str]] = []
        project.graph.events.subscribe(ev.STATE_CHANGED, lambda node_id, status: seen.append((node_id, status.state.value)))
        s.run()
        states_of_add1 = [st for nid, st in seen if nid == diamond["add1"]]
        assert states_of_add1 == ["queued", "running", "done"]
        project.graph.add_edge(Edge(diamond["add4"], "table", project.graph.add_node("toy.add").id, "table"))
        assert s.status[diamond["add4"]].state is NodeState.DONE  # upstream of the new edge is untouched


def test_until_and_only(project, diamond):
    project.graph.replace_settings(diamond["add3"], {"n": 2})  # else it shares add2's cache key
    with Session(project) as s:
        report = s.run(until="add2")
        assert set(report.nodes) == {diamond["const"], diamond["add1"], diamond["add2"]}
        assert s.status[diamond["add3"]].state is NodeState.IDLE
        only = s.run(only="add3")
        assert only.executed == [diamond["add3"]]
        with pytest.raises(LedgerflowError, match="Run up to"):
            s.run(only="add4")  # its upstream const2 has no results yet


def test_independent_branches_run_concurrently(project):
    g = project.graph
    src = g.add_node("toy.const").id
    for _ in range(2):  # both must be inside compute at the same time, or the barrier times out and fails
        b = g.add_node("toy.barrier", {"name": f"{project.path}-conc", "parties": 2}).id
        link(g, src, b)
    with Session(project) as s:
        assert s.run().ok


def test_a_failure_stops_only_its_descendants(project, diamond):
    g = project.graph
    fail = g.add_node("toy.fail", title="Boom").id
    after = g.add_node("toy.add", title="After boom").id
    link(g, diamond["add1"], fail)
    link(g, fail, after)
    with Session(project) as s:
        report = s.run()
        assert not report.ok
        assert report.nodes[fail].status == "failed" and "ValueError: boom" in report.nodes[fail].error
        assert report.nodes[after].status == "skipped" and "Boom" in report.nodes[after].error
        assert report.nodes[diamond["add4"]].status == "done"
        assert report.nodes[diamond["add2"]].status == "done"
        record = s.runlog.records(node_id=fail)[0]
        assert record["outcome"] == "failed" and "Traceback" in record["traceback"] and "boom" in record["traceback"]
        assert s.status[fail].traceback and "raise ValueError" in s.status[fail].traceback


def test_input_errors_are_shown_without_traceback_but_recorded(project):
    g = project.graph
    src = g.add_node("toy.const").id
    f = g.add_node("toy.fail", {"kind": "input"}).id
    link(g, src, f)
    with Session(project) as s:
        s.run()
        assert s.status[f].error == "column 'y' is missing" and s.status[f].traceback is None


def test_invalid_settings_block_the_run_with_field_names(project, diamond):
    project.graph.replace_settings(diamond["const"], {"value": -1})
    with Session(project) as s, pytest.raises(ValidationFailed) as exc:
        s.run()
    assert "const [value]" in str(exc.value)


def test_run_records_capture_lineage(project, diamond):
    with Session(project) as s:
        s.run()
        rec = s.runlog.records(node_id=diamond["add1"])[0]
        up = s.runlog.records(node_id=diamond["const"])[0]
    assert rec["inputs"] == {"table": up["outputs"]["table"]}
    assert rec["settings"] == {"n": 1} and rec["seed"] == 42 and rec["outcome"] == "done"
    assert rec["user"] and rec["host"] and rec["started_at"] <= rec["ended_at"]
    assert rec["packages"]["polars"] == pl.__version__ and "python" in rec["packages"]
    assert rec["type_id"] == "toy.add" and rec["type_version"] == 1 and rec["plugin"] == "toy-plugin 1.0"
    assert len(rec["cache_key"]) == 64


def test_source_file_change_invalidates_the_cache(project, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n7,8\n")
    g = project.graph
    r = g.add_node("io.read_csv", {"path": str(data)}).id
    a = g.add_node("features.split", {"test_fraction": 0.5}).id
    link(g, r, a)
    with Session(project) as s:
        assert s.run().ok
        assert s.run().executed == []
        data.write_text("a,b\n1,2\n3,4\n5,6\n")
        assert sorted(s.run().executed) == sorted([r, a])


def test_tampered_artifact_is_detected_and_recomputed(project, diamond):
    with Session(project) as s:
        s.run()
        digest = s.status[diamond["add1"]].outputs["table"]
        folder = s.store._folder(digest)
        (folder / "table.parquet").write_bytes(b"PAR1 not really")
        s.graph.replace_settings(diamond["add2"], {"n": 4})  # add2 must load add1's output
        warnings: list[str] = []
        project.graph.events.subscribe(ev.LOG, lambda node_id, level, message: warnings.append(message))
        report = s.run()
        assert report.ok
        assert diamond["add1"] in report.executed
        assert any("failed verification" in w for w in warnings)
        assert s.output(diamond["add2"], "table")["x"].to_list() == [6, 6, 6]


def test_writer_receipt_rewrites_a_deleted_output(project, tmp_path):
    g = project.graph
    src = g.add_node("toy.const").id
    w = g.add_node("io.write_csv", {"path": "out/x.csv"}).id
    link(g, src, w)
    with Session(project) as s:
        s.run()
        out = project.directory / "out" / "x.csv"
        assert out.read_text().startswith("x\n")
        assert s.run().executed == []
        out.unlink()
        assert s.run().executed == [w] and out.exists()


def test_missing_source_file_fails_that_node_only(project, diamond, tmp_path):
    g = project.graph
    r = g.add_node("io.read_csv", {"path": str(tmp_path / "missing.csv")}, title="Reader").id
    with Session(project) as s:
        report = s.run()
        assert report.nodes[r].status == "failed" and "File not found" in report.nodes[r].error
        assert report.nodes[diamond["concat"]].status == "done"


def test_model_outputs_are_stored_natively_and_flow_downstream(project):
    g = project.graph
    src = g.add_node("toy.const", {"value": 2}).id
    m = g.add_node("toy.model").id
    u = g.add_node("toy.use_model").id
    link(g, src, m)
    link(g, m, u, sp="model", dp="model")
    with Session(project) as s:
        assert s.run().ok
        assert s.output(u, "table").to_dicts() == [{"weight": 6, "rows": 3}]
        model = s.output(m, "model")
        assert (model.path / "weights.txt").read_text() == "6"
    shutil.rmtree(project.state_dir / "tmp")  # scratch folders are not needed after the run
    with Session(project) as s2:
        assert s2.output(m, "model").info == {"rows": 3}


def test_disabled_nodes_and_descendants_are_not_run(project, diamond):
    project.graph.update_node(diamond["add1"], disabled=True)
    with Session(project) as s:
        report = s.run()
        assert diamond["add1"] not in report.nodes and diamond["concat"] not in report.nodes
        assert report.nodes[diamond["add4"]].status == "done"


def test_a_tampered_artifact_in_a_fully_cached_run_is_quarantined_and_recomputed(project, diamond):
    with Session(project) as s:
        s.run()
        digest = s.status[diamond["concat"]].outputs["table"]
        target = s.store._folder(digest) / "table.parquet"
        target.chmod(0o644)
        target.write_bytes(b"PAR1 forged")
        report = s.run()  # concat has no consumer: only the cache-hit verification can catch this
        assert report.executed == [diamond["concat"]]
        assert any(p.name.startswith(digest) for p in (project.state_dir / "quarantine").iterdir())
        assert s.run().executed == []  # repaired for good, not recomputed on every run
        assert s.output(diamond["concat"], "table").height == 6


def test_cache_entries_signed_by_another_user_are_not_trusted(project, diamond, tmp_path, monkeypatch):
    from engine import signing

    with Session(project) as s:
        s.run()
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "someone-else"))
    signing._load_key.cache_clear()
    try:
        with Session(project) as s2:
            assert {st.state for st in s2.status.values()} == {NodeState.STALE}
            assert len(s2.run().executed) == 7
    finally:
        monkeypatch.undo()
        signing._load_key.cache_clear()


def test_artifacts_are_read_only(project, diamond):
    with Session(project) as s:
        s.run()
        folder = s.store._folder(s.status[diamond["add1"]].outputs["table"])
        assert not (folder / "table.parquet").stat().st_mode & 0o222


def test_records_for_failed_before_execution_skipped_and_source_lineage(project, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    g = project.graph
    r = g.add_node("io.read_csv", {"path": str(data)}, title="Reader").id
    a = g.add_node("features.split", {"test_fraction": 0.5}, title="Splitter").id
    link(g, r, a)
    with Session(project) as s:
        s.run()
        rec = s.runlog.records(node_id=r)[0]
        assert rec["inputs"] == {"source_data": s.files.hash(data)}
        data.unlink()
        s.run()
        failed = s.runlog.records(node_id=r)[0]
        skipped = s.runlog.records(node_id=a)[0]
    assert failed["outcome"] == "failed" and "File not found" in failed["error"]
    assert skipped["outcome"] == "skipped" and "Reader" in skipped["error"]


def test_a_second_concurrent_run_is_refused(project, diamond):
    with Session(project) as s:
        s._run_lock.acquire()
        try:
            with pytest.raises(LedgerflowError, match="already in progress"):
                s.run()
        finally:
            s._run_lock.release()


def test_an_unreachable_dask_scheduler_fails_before_any_node_starts(project):
    g = project.graph
    src = g.add_node("toy.const").id
    heavy = g.add_node("toy.sleep").id
    link(g, src, heavy)
    from engine import executors  # noqa: F401

    with Session(project, scheduler_address="tcp://127.0.0.1:1") as s:
        import engine.executors.dask as dask_mod

        original = dask_mod.DaskExecutor.__init__
        dask_mod.DaskExecutor.__init__ = lambda self, address, timeout=2: original(self, address, timeout=2)
        try:
            with pytest.raises(LedgerflowError, match="Cannot reach the Dask scheduler"):
                s.run()
        finally:
            dask_mod.DaskExecutor.__init__ = original
        assert s.status[heavy].state is NodeState.CANCELLED
        with s.db.connect() as conn:
            row = conn.exec_driver_sql("select outcome, ended_at from runs").first()
        assert row[0] == "failed" and row[1]


def test_a_source_file_changed_during_the_run_is_not_cached_under_the_old_key(project, tmp_path, monkeypatch):
    from nodes.io.csv_reader import ReadCSV

    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    r = project.graph.add_node("io.read_csv", {"path": str(data)}, title="Reader").id
    original = ReadCSV.compute

    def read_then_someone_edits(self, inputs, settings, ctx):
        out = original(self, inputs, settings, ctx)
        data.write_text("a,b\n9,9\n9,9\n9,9\n")
        return out

    monkeypatch.setattr(ReadCSV, "compute", read_then_someone_edits)
    with Session(project) as s:
        report = s.run()
        assert report.nodes[r].status == "failed" and "changed while it was being read" in report.nodes[r].error
        monkeypatch.undo()
        assert s.run().ok
        assert s.output(r, "table")["a"].to_list() == [9, 9, 9]
