"""The labeling workspace on real Qt over a real label store: records labeled by hotkeys (with previous, change and
undo), text marks made through the view's API and by Shift+arrows, boxes drawn, moved, resized and deleted with
the mouse; then the stored labels are checked. Also: a stale version shows the conflict and keeps the comment, a
skip stores its reason, and `ledgerflow label --screenshot` writes the window."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.labeling.controls import SkipDialog
from app.labeling.record_view import format_value
from app.labeling.text_view import OffsetMap
from app.labeling.window import LabelingWindow
from engine.labels.store import open_label_store
from engine.project import STATE_DIR
from engine.templates import SAMPLE_DATA

Key, Left = QtCore.Qt.Key, QtCore.Qt.MouseButton.LeftButton
ROOT = Path(__file__).resolve().parents[2]
ME = "ann"


def labels(*names: str) -> list[dict]:
    colors = ["#2e9d5b", "#e0a100", "#d1495b"]
    return [{"name": n, "color": colors[i], "hotkey": str(i + 1)} for i, n in enumerate(names)]


@pytest.fixture
def project(tmp_path):
    store = open_label_store(tmp_path / STATE_DIR)
    rows = pl.read_csv(SAMPLE_DATA, n_rows=5).select("customer_id", "age", "annual_income", "debt_to_income",
                                                     "loan_purpose").to_dicts()
    store.create_task("loans", {"kind": "record", "labels": labels("approve", "review", "decline"),
                                "instructions": "Decide **each** application."},
                      [{"fields": r} for r in rows], prelabels=[None, None, None, {"labels": ["decline"]}, None],
                      confidences=[None, None, None, 0.9, None], external_ids=[r["customer_id"] for r in rows])
    texts = ["Sarah Jones was charged $35.00 twice.", "客户😀张伟\r\n转账 500 元 to 6222 0210."]
    store.create_task("complaints", {"kind": "spans", "labels": labels("person", "amount", "account")},
                      [{"text": t} for t in texts])
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(img).rectangle((50, 60, 150, 120), fill="black")
    (tmp_path / "scans").mkdir()
    img.save(tmp_path / "scans" / "a.png")
    store.create_task("scans", {"kind": "boxes", "labels": labels("signature", "stamp")},
                      [{"image": "scans/a.png"}])
    yield tmp_path, store
    store.close()


@pytest.fixture
def window(project, qtbot):
    folder, store = project
    win = LabelingWindow(folder, labeler=ME, store=store)
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    qtbot.waitExposed(win)
    return win


def value_at(store, task: str, position: int, who: str = ME):
    ann = store.item(task, position, who)["annotation"]
    return ann and {k: ann[k] for k in ("value", "status", "comment", "skip_reason")}


def press(qtbot, page, *keys, modifier=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """Keys go to whatever has focus, as a labeler's would (the view, the comment box)."""
    for key in keys:
        target = QtWidgets.QApplication.focusWidget() or page
        qtbot.keyClick(target, key, modifier)


def test_task_list_shows_tasks_with_my_progress(window, project):
    _, store = project
    tree = window.tasks.table
    assert [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())] == ["loans", "complaints", "scans"]
    assert tree.topLevelItem(0).text(1) == "Records" and tree.topLevelItem(0).text(3) == "0 of 5 done"
    store.save("loans", store.item("loans", 0)["item_id"], ME, {"labels": ["review"]}, 0)
    window.show_tasks()
    assert tree.topLevelItem(0).text(3) == "1 of 5 done"
    tree.setCurrentItem(tree.topLevelItem(2))
    window.tasks.open_button.click()
    assert window.stack.currentWidget() is window.page and window.page.kind == "boxes"


def test_records_by_hotkeys_previous_change_and_undo(window, project, qtbot):
    _, store = project
    assert window.open_task("loans")
    page = window.page
    assert page.record_view.card_text("annual_income") == format_value(149600.0) == "149,600"
    assert page.where.text() == "Item 1 of 5  ·  ID C0000001"
    press(qtbot, page, "1", Key.Key_Return)  # item 1: approve
    press(qtbot, page, "3", Key.Key_Right)  # item 2: decline, → also saves
    press(qtbot, page, "2", Key.Key_Enter)  # item 3: review
    assert page.item["position"] == 3 and page.progress.text.text() == "3 of 5 done"
    assert [value_at(store, "loans", p)["value"] for p in range(3)] == [
        {"labels": ["approve"]}, {"labels": ["decline"]}, {"labels": ["review"]}]

    # item 4 carries the model's pre-label: shown with its confidence, preselected
    assert page.suggestion.isVisible() and "decline" in page.suggestion.text() and "90% sure" in page.suggestion.text()
    assert page.labels.chosen() == ["decline"]

    press(qtbot, page, Key.Key_Left)  # back to item 3: my label is shown
    assert page.item["position"] == 2 and page.labels.chosen() == ["review"]
    press(qtbot, page, "1", Key.Key_Return)  # change it; Enter goes forward to where I was
    assert value_at(store, "loans", 2)["value"] == {"labels": ["approve"]}
    assert page.item["position"] == 3 and page.progress.text.text() == "3 of 5 done"

    press(qtbot, page, "2", "3")  # an edit on screen is undone first, without touching the store
    press(qtbot, page, "z", modifier=QtCore.Qt.KeyboardModifier.ControlModifier)
    assert page.labels.chosen() == ["review"]
    press(qtbot, page, "z", modifier=QtCore.Qt.KeyboardModifier.ControlModifier)
    press(qtbot, page, "z", modifier=QtCore.Qt.KeyboardModifier.ControlModifier)  # nothing left on screen: store undo
    assert value_at(store, "loans", 2)["value"] == {"labels": ["review"]}  # the change is reverted
    assert page.item["position"] == 2 and page.labels.chosen() == ["review"]
    assert "Undone" in page.banner.text()

    press(qtbot, page, Key.Key_Right, Key.Key_Return)  # unchanged item 3: on; item 4: Enter confirms the model
    assert value_at(store, "loans", 3)["value"] == {"labels": ["decline"]}
    assert page.progress.text.text() == "4 of 5 done"
    press(qtbot, page, Key.Key_Return)  # item 5 with no label: asked to choose, nothing stored
    assert page.banner.level == "warning" and value_at(store, "loans", 4) is None


def test_conflict_shows_message_reloads_and_keeps_comment(window, project, qtbot):
    _, store = project
    window.open_task("loans")
    page = window.page
    first = page.item
    # the same labeler in another window saves item 1 first
    store.save("loans", first["item_id"], ME, {"labels": ["approve"]}, 0, "from the other window")
    press(qtbot, page, "3", "c")
    assert QtWidgets.QApplication.focusWidget() is page.comment
    qtbot.keyClicks(page.comment, "income looks wrong")
    press(qtbot, page, Key.Key_Return)  # Enter in the comment box saves, as on the item
    assert page.banner.level == "error" and "Not saved" in page.banner.text()
    assert "still in the comment box" in page.banner.text()
    assert page.item["position"] == 0 and page.labels.chosen() == ["approve"]  # what is stored now
    assert page.comment.text() == "income looks wrong"
    assert value_at(store, "loans", 0)["value"] == {"labels": ["approve"]}  # nothing overwritten
    press(qtbot, page, "3", Key.Key_Return)  # now based on the reloaded version: saved
    assert value_at(store, "loans", 0) == {"value": {"labels": ["decline"]}, "status": "submitted",
                                           "comment": "income looks wrong", "skip_reason": None}


def test_skip_stores_the_reason(window, project, qtbot):
    _, store = project
    window.open_task("loans")
    page = window.page
    page.ask_skip_reason = lambda: None  # cancelled: nothing happens
    press(qtbot, page, "s")
    assert page.item["position"] == 0 and value_at(store, "loans", 0) is None
    page.ask_skip_reason = lambda: "Not sure which label fits"
    press(qtbot, page, "s")
    assert value_at(store, "loans", 0)["status"] == "skipped"
    assert value_at(store, "loans", 0)["skip_reason"] == "Not sure which label fits"
    assert page.item["position"] == 1 and page.progress.text.text() == "1 of 5 done"


def test_skip_dialog_reasons(qtbot):
    dialog = SkipDialog()
    qtbot.addWidget(dialog)
    assert dialog.reason().startswith("Cannot read it")
    dialog.choices[1].setChecked(True)
    assert dialog.reason() == "Not sure which label fits"
    qtbot.keyClicks(dialog.other_text, "duplicate of item 12")
    assert dialog.other.isChecked() and dialog.reason() == "duplicate of item 12"
    dialog.other_text.clear()
    dialog._accept()  # an empty "other" reason is not accepted
    assert dialog.result() != QtWidgets.QDialog.DialogCode.Accepted


def test_offset_map_handles_surrogates_and_crlf():
    text = "a😀b\r\nc"
    m = OffsetMap(text)
    assert [m.qt(i) for i in range(len(text) + 1)] == [0, 1, 3, 4, 4, 5, 6]
    assert m.py(4) == 3 and m.py(2) == 1 and m.py(6) == 6


def test_spans_by_api_by_keyboard_and_mouse(window, project, qtbot):
    _, store = project
    window.open_task("complaints")
    page, view = window.page, window.page.text_view
    text = "Sarah Jones was charged $35.00 twice."
    assert view.text == text
    view.select_range(0, 12)  # "Sarah Jones " as a mouse drag would leave it: the space is trimmed
    press(qtbot, page, "1")
    # keyboard only: caret to "$", Shift+Right over "$35.00", then the amount key
    press(qtbot, page, Key.Key_Home)
    press(qtbot, page, *[Key.Key_Right] * text.index("$"))
    press(qtbot, page, *[Key.Key_Right] * len("$35.00"), modifier=QtCore.Qt.KeyboardModifier.ShiftModifier)
    press(qtbot, page, "2")
    assert view.spans() == [{"start": 0, "end": 11, "label": "person"}, {"start": 24, "end": 30, "label": "amount"}]
    # a wrong mark, then removed: click it, Delete
    view.select_range(31, 36)
    press(qtbot, page, "3")
    assert len(view.spans()) == 3
    cursor = view.editor.textCursor()
    cursor.setPosition(33)
    qtbot.mouseClick(view.editor.viewport(), Left, pos=view.editor.cursorRect(cursor).center())
    assert view.selected == 2
    press(qtbot, page, Key.Key_Delete)
    assert [s["label"] for s in view.spans()] == ["person", "amount"]
    press(qtbot, page, Key.Key_Return)
    assert value_at(store, "complaints", 0)["value"] == {"spans": [{"start": 0, "end": 11, "label": "person"},
                                                                   {"start": 24, "end": 30, "label": "amount"}]}

    # second text: an emoji (two UTF-16 units) and a CRLF before the marks; offsets stay Python offsets
    second = "客户😀张伟\r\n转账 500 元 to 6222 0210."
    assert page.item["position"] == 1 and view.text == second
    view.select_range(second.index("张伟"), second.index("张伟") + 2)
    press(qtbot, page, "1")
    press(qtbot, page, Key.Key_End, modifier=QtCore.Qt.KeyboardModifier.ControlModifier)
    press(qtbot, page, Key.Key_Left)  # before the final "."
    press(qtbot, page, *[Key.Key_Left] * len("6222 0210"), modifier=QtCore.Qt.KeyboardModifier.ShiftModifier)
    press(qtbot, page, "3")
    press(qtbot, page, Key.Key_Return)
    spans = value_at(store, "complaints", 1)["value"]["spans"]
    assert [(second[s["start"]:s["end"]], s["label"]) for s in spans] == [("张伟", "person"), ("6222 0210", "account")]
    assert "All done" in page.done_label.text()


def drag(qtbot, view, start, end) -> None:
    """A left-button drag between two image pixels."""
    a, b = view.view_point(*start), view.view_point(*end)
    qtbot.mousePress(view.viewport(), Left, pos=a)
    qtbot.mouseMove(view.viewport(), pos=(a + b) / 2)
    qtbot.mouseMove(view.viewport(), pos=b)
    qtbot.mouseRelease(view.viewport(), Left, pos=b)


def test_boxes_draw_move_resize_delete(window, project, qtbot):
    _, store = project
    window.open_task("scans")
    page, view = window.page, window.page.image_view
    assert not view.missing and view.image_size.width() == 400
    zoom = view.zoom()
    press(qtbot, page, "+")
    assert view.zoom() > zoom
    press(qtbot, page, "0")  # back to the whole image
    assert view.zoom() == pytest.approx(zoom)
    tol = 2 / view.zoom() + 0.5  # a screen pixel or two, in image pixels

    # zoom with the wheel, pan with the middle button and with Space held: no box is drawn meanwhile
    at = view.view_point(200, 150)
    wheel = QtGui.QWheelEvent(QtCore.QPointF(at), QtCore.QPointF(view.viewport().mapToGlobal(at)), QtCore.QPoint(),
                              QtCore.QPoint(0, 360), QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() == pytest.approx(zoom * 1.2 ** 3)
    bars = view.horizontalScrollBar(), view.verticalScrollBar()
    before = [b.value() for b in bars]
    qtbot.mousePress(view.viewport(), QtCore.Qt.MouseButton.MiddleButton, pos=at)
    qtbot.mouseMove(view.viewport(), pos=at + QtCore.QPoint(-40, -30))
    qtbot.mouseRelease(view.viewport(), QtCore.Qt.MouseButton.MiddleButton, pos=at + QtCore.QPoint(-40, -30))
    assert [b.value() for b in bars] == [before[0] + 40, before[1] + 30]
    qtbot.keyPress(view, Key.Key_Space)
    drag(qtbot, view, (200, 150), (180, 140))
    qtbot.keyRelease(view, Key.Key_Space)
    assert view.boxes == [] and [b.value() for b in bars] != [before[0] + 40, before[1] + 30]
    press(qtbot, page, "0")

    drag(qtbot, view, (50, 60), (150, 120))
    assert len(view.boxes) == 1 and view.boxes[0]["label"] == "signature" and view.selected == 0
    press(qtbot, page, "2")  # the label key relabels the drawn box
    assert view.boxes[0]["label"] == "stamp"
    drag(qtbot, view, (100, 90), (130, 110))  # move by (30, 20)
    box = view.boxes[0]
    assert (box["x"], box["y"]) == (pytest.approx(80, abs=tol), pytest.approx(80, abs=tol))
    assert (box["w"], box["h"]) == (pytest.approx(100, abs=tol), pytest.approx(60, abs=tol))
    drag(qtbot, view, (box["x"] + box["w"], box["y"] + box["h"]), (220, 200))  # bottom-right handle
    box = view.boxes[0]
    assert (box["w"], box["h"]) == (pytest.approx(140, abs=tol), pytest.approx(120, abs=tol))
    drag(qtbot, view, (300, 200), (380, 280))  # a second box, with the last used label
    assert len(view.boxes) == 2 and view.boxes[1]["label"] == "stamp"
    press(qtbot, page, Key.Key_Delete)
    assert len(view.boxes) == 1
    drag(qtbot, view, (5, 5), (6, 6))  # a click on the image: no box
    assert len(view.boxes) == 1
    press(qtbot, page, Key.Key_Return)
    stored = value_at(store, "scans", 0)["value"]["boxes"]
    assert len(stored) == 1 and stored[0]["label"] == "stamp"
    assert [stored[0][k] for k in ("x", "y", "w", "h")] == [pytest.approx(v, abs=tol) for v in (80, 80, 140, 120)]


def test_label_command_saves_a_screenshot(project, tmp_path):
    folder, _ = project
    target = tmp_path / "shot.png"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "label", str(folder), "--task", "complaints",
                           "--labeler", ME, "--screenshot", str(target)], check=False, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(target) as img:
        assert img.size[0] > 800 and img.size[1] > 500
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "label", str(folder), "--task", "nope",
                          "--screenshot", str(target)], check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "no labeling task named 'nope'" in bad.stderr


def test_workbench_opens_labeling_for_its_project(project, qtbot):
    from workbench import close, empty_project, make_window

    folder, _ = project
    w = make_window(qtbot)
    assert not w.actions_["labeling"].isEnabled()  # no project open
    assert w.open_project(empty_project(folder))
    assert w.actions_["labeling"].isEnabled()
    w.actions_["labeling"].trigger()
    labeling = w.labeling_window  # deletes itself on close
    assert labeling.project_dir == folder.resolve() and labeling.tasks.table.topLevelItemCount() == 3
    labeling.close()
    close(w)


def test_multi_label_text_and_a_rejected_label_coming_back(window, project, qtbot):
    _, store = project
    store.create_task("topics", {"kind": "text", "multi": True, "labels": labels("fees", "service", "fraud")},
                      [{"text": "Charged twice and nobody answers."}, {"text": "Card used abroad."}])
    assert window.open_task("topics")
    page = window.page
    assert page.text_view.text == "Charged twice and nobody answers." and not page.text_view.chips.isVisible()
    press(qtbot, page, "1", "2", "3", "3")  # toggles: fees, service, fraud on, fraud off
    assert page.labels.chosen() == ["fees", "service"]
    press(qtbot, page, Key.Key_Return)
    first = store.item("topics", 0, ME)["annotation"]
    assert first["value"] == {"labels": ["fees", "service"]}

    store.reject(first["annotation_id"], "rev", "fraud too: the card was copied")
    assert window.open_task("topics")  # the rejected item comes back first, with the reviewer's reason
    assert page.item["position"] == 0 and page.banner.level == "warning"
    assert "rev sent this label back: fraud too" in page.banner.text()
    press(qtbot, page, "3", Key.Key_Return)
    assert value_at(store, "topics", 0) == {"value": {"labels": ["fees", "service", "fraud"]},
                                            "status": "submitted", "comment": None, "skip_reason": None}


def test_missing_image_is_named_and_cannot_be_saved(window, project, qtbot):
    _, store = project
    store.create_task("lost", {"kind": "image", "labels": labels("id card", "other")}, [{"image": "scans/gone.png"}])
    window.open_task("lost")
    page = window.page
    assert "gone.png" in page.image_view.missing
    press(qtbot, page, "1", Key.Key_Return)
    assert page.banner.level == "warning" and value_at(store, "lost", 0) is None
    page.ask_skip_reason = lambda: "Cannot read it"
    press(qtbot, page, "s")
    assert value_at(store, "lost", 0)["status"] == "skipped"
