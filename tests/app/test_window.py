"""Window-level behaviour: language choice, autosave and crash recovery, bad projects, the first-run hint."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.autosave import find_recovery
from app.menus import switch_language
from app.preferences import Preferences
from engine.i18n import set_language
from workbench import close, drop_node, empty_project, make_window


def test_language_switch_persists_and_rebuilds_in_chinese(qtbot, tmp_path):
    w = make_window(qtbot)
    w.language_actions["zh_CN"].trigger()
    assert Preferences.load().language == "zh_CN"
    assert w.language_actions["zh_CN"].isChecked() and w.language_box.currentData() == "zh_CN"
    assert "简体中文" in w.statusBar().currentMessage()
    close(w)
    set_language(Preferences.load().language)  # what the next start does
    try:
        w2 = make_window(qtbot, Preferences.load())
        menus = [a.text() for a in w2.menuBar().actions()]
        assert "文件(&F)" in menus or any("文件" in m for m in menus)
        assert w2.palette_dock.windowTitle() == "节点"
        titles = {i.text(0).split("\n")[0] for i in w2.palette.items()}
        assert "拆分" in titles or any("\u4e00" <= ch <= "\u9fff" for t in titles for ch in t)
        assert w2.open_project(empty_project(tmp_path / "zh"))
        nid = drop_node(w2, "features.split", (0, 0))
        assert any("\u4e00" <= ch <= "\u9fff" for ch in w2.document.graph.nodes[nid].title)
        close(w2)
    finally:
        set_language("en")
        switch_back = Preferences.load()
        switch_back.language = "en"
        switch_back.save()


def test_switching_to_the_current_language_does_nothing(qtbot):
    w = make_window(qtbot)
    switch_language(w, "en")
    assert w.statusBar().currentMessage() == ""
    close(w)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_autosave_is_offered_after_a_crash(qtbot, tmp_path):
    path = empty_project(tmp_path / "crash")
    w = make_window(qtbot)
    assert w.open_project(path)
    nid = drop_node(w, "io.read_csv", (0, 0))
    autosave = w.autosaver.autosave_path
    w.autosave()
    left_behind = autosave.read_text("utf-8")
    close(w)  # a clean close removes the autosave and the marker...
    assert not autosave.exists() and find_recovery(path) is None

    def crash_evidence() -> None:
        """What a crashed session leaves: its autosave, and a marker naming a process that is gone."""
        autosave.write_text(left_behind, "utf-8")
        (autosave.parent / "workbench.open").write_text(json.dumps({"pid": _dead_pid()}), "utf-8")

    crash_evidence()
    assert find_recovery(path) is not None
    declined = make_window(qtbot)
    asked = []
    declined.ask_recover = lambda r: asked.append(r) or False
    assert declined.open_project(path)
    assert asked and nid not in declined.document.graph.nodes and not declined.document.dirty
    close(declined)

    crash_evidence()
    w2 = make_window(qtbot)
    w2.ask_recover = lambda r: True
    assert w2.open_project(path)
    assert nid in w2.document.graph.nodes and w2.document.dirty
    assert w2.document.project.path == path.resolve()
    assert w2.save()
    assert [n["id"] for n in json.loads(path.read_text("utf-8"))["nodes"]] == [nid]
    close(w2)
    assert find_recovery(path) is None


def test_a_corrupt_project_is_reported_and_the_window_stays_usable(qtbot, tmp_path):
    bad = tmp_path / "bad" / "project.lflow"
    bad.parent.mkdir()
    bad.write_text('{"format_version": 1, "nodes": [', "utf-8")
    w = make_window(qtbot)
    assert not w.open_project(bad)
    assert "line 1" in w.statusBar().currentMessage()
    assert w.document is None and not w.actions_["run_all"].isEnabled()
    assert w.open_project(empty_project(tmp_path / "good"))
    close(w)


def test_first_run_hint_is_dismissed_for_good(qtbot, tmp_path):
    w = make_window(qtbot)
    assert w.open_project(empty_project(tmp_path / "hint"))
    w.show_hint()
    assert w.hint.isVisible() and "Run all" in w.hint_label.text()
    w.dismiss_hint()
    assert not w.hint.isVisible() and Preferences.load().tour_done
    close(w)
    prefs = Preferences.load()
    prefs.tour_done = False
    prefs.save()


def test_recent_projects_are_remembered(qtbot, tmp_path):
    path = empty_project(tmp_path / "recent")
    w = make_window(qtbot)
    assert w.open_project(path)
    assert Preferences.load().recent[0] == str(path.resolve())
    close(w)


def test_editing_is_paused_while_a_run_is_in_progress(qtbot, tmp_path):
    w = make_window(qtbot)
    assert w.open_project(empty_project(tmp_path / "lock"))
    nid = drop_node(w, "features.split", (0, 0))
    w.document.running = True
    try:
        assert w.canvas.add_node("io.read_csv") is None
        assert "running" in w.canvas.last_refusal
        assert w.canvas.rename(nid, "Still allowed")
    finally:
        w.document.running = False
    close(w)


@pytest.fixture(autouse=True)
def _english():
    set_language("en")
    yield
    set_language("en")


def test_window_title_marks_unsaved_changes(qtbot, tmp_path):
    w = make_window(qtbot)
    assert w.open_project(empty_project(tmp_path / "title"))
    assert not w.windowTitle().startswith("•")
    drop_node(w, "features.split", (0, 0))
    assert w.windowTitle().startswith("•")
    assert w.save()
    assert not w.windowTitle().startswith("•")
    close(w)


def test_the_view_is_saved_with_the_project_and_restored(qtbot, tmp_path):
    path = empty_project(tmp_path / "view")
    w = make_window(qtbot)
    assert w.open_project(path)
    drop_node(w, "features.split", (0, 0))
    drop_node(w, "io.read_csv", (2000, 900))
    viewer = w.canvas.viewer
    viewer._set_viewer_zoom(240)
    viewer._set_viewer_pan(120, 40)
    state = w.canvas.view_state()
    assert w.save()
    close(w)
    w2 = make_window(qtbot)
    assert w2.open_project(path)

    def restored() -> bool:  # Qt's fit keeps a 2 px margin: the same view within a pixel or two
        now = w2.canvas.view_state()
        return (abs(now["zoom"] - state["zoom"]) / state["zoom"] < 0.02
                and all(abs(a - b) < 5 for a, b in zip(now["center"], state["center"])))

    qtbot.waitUntil(restored, timeout=3000)
    close(w2)
