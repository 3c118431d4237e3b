"""The review workspace on real Qt over a real label store (SQLite in tmp_path): two labelers label a record task,
a third person reviews it by keyboard (disagreements first: accept, reject with a reason through the dialog,
resolve a conflict), the rejected label goes back to its labeler with the reason shown, is relabeled and then
accepted. Also: maker-checker refusals, a label changed under the reviewer's eyes, the agreement view's figures
against compute_agreement, a spans task showing each labeler's marks, and `ledgerflow label --review`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from app.labeling.agreement_view import VALUE_ROLE, headline_text
from app.labeling.controls import ReasonDialog
from app.labeling.window import LabelingWindow
from engine.labels.agreement import compute_agreement
from engine.labels.store import open_label_store
from engine.project import STATE_DIR

Key = QtCore.Qt.Key
ROOT = Path(__file__).resolve().parents[2]
REVIEWER = "rita"
RECORDS = [{"fields": {"customer_id": f"C{i}", "annual_income": 40_000 + 1000 * i, "loan_purpose": p}}
           for i, p in enumerate(["car", "home", "education", "car"])]
# (ann's label, bob's label) per item; None = not labeled
VOTES = [("approve", "approve"), ("approve", "decline"), ("review", "review"), ("decline", None)]


def labels(*names: str) -> list[dict]:
    colors = ["#2e9d5b", "#e0a100", "#d1495b"]
    return [{"name": n, "color": colors[i], "hotkey": str(i + 1)} for i, n in enumerate(names)]


@pytest.fixture
def team(tmp_path):
    """A record task labeled by ann and bob (overlap 2): they disagree on item 1 only."""
    store = open_label_store(tmp_path / STATE_DIR)
    store.create_task("loans", {"kind": "record", "labels": labels("approve", "review", "decline")}, RECORDS,
                      overlap=2, labelers=["ann", "bob"], prelabels=[None, {"labels": ["review"]}, None, None],
                      confidences=[None, 0.7, None, None])
    for position, pair in enumerate(VOTES):
        item_id = store.item("loans", position)["item_id"]
        for who, label in zip(("ann", "bob"), pair, strict=True):
            if label is not None:
                store.save("loans", item_id, who, {"labels": [label]}, 0,
                           "income checked" if (who, position) == ("bob", 1) else None)
    yield tmp_path, store
    store.close()


def open_window(qtbot, folder, store, who: str) -> LabelingWindow:
    win = LabelingWindow(folder, labeler=who, store=store)
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: not win.agreements_pending(), timeout=30_000)  # computed on a worker thread
    return win


def opened(qtbot, win, opening: bool = True) -> bool:
    """The review page's queue is read on a worker thread: wait until it is shown."""
    qtbot.waitUntil(lambda: not win.review.loading, timeout=30_000)
    return opening


def press(qtbot, page, *keys) -> None:
    """Keys go to whatever has focus in the page's window, as a reviewer's would (offscreen, a closed dialog can
    stay the "active window" for a while, so the window's own focus widget is asked)."""
    for key in keys:
        target = QtWidgets.QApplication.focusWidget()
        if target is None or target.window() is not page.window():
            target = page.window().focusWidget() or page
        qtbot.keyClick(target, key)


def answer(qtbot, act, text: str = "", choice: int | None = None, cancel: bool = False) -> ReasonDialog:
    """Run `act` (which opens a reason dialog) and answer the dialog as a person would: pick a common reason or
    type one, then Enter (or Esc to cancel)."""
    seen: dict[str, ReasonDialog] = {}

    def drive() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        seen["dialog"] = dialog
        try:
            if choice is not None:
                qtbot.keyClick(dialog, str(choice + 1))
            if text:
                qtbot.keyClicks(dialog.other_text, text)
            target = dialog.other_text if dialog.other.isChecked() else dialog
            qtbot.keyClick(target, Key.Key_Escape if cancel else Key.Key_Return)
        finally:
            if dialog.isVisible():
                dialog.reject()

    QtCore.QTimer.singleShot(0, drive)
    act()
    assert isinstance(seen.get("dialog"), ReasonDialog)
    return seen["dialog"]


def state(store, position: int, who: str) -> tuple[str, dict | None]:
    ann = store.item("loans", position, who)["annotation"]
    return ann["status"], ann.get("review")


def cards(page) -> list[str]:
    return [card.ann["labeler"] for card in page.cards]


def test_review_reject_relabel_accept(team, qtbot):
    folder, store = team
    win = open_window(qtbot, folder, store, REVIEWER)
    tree = win.tasks.table
    report = compute_agreement([(r["position"], r["labeler"], r["value"]) for r in store.labeled_rows("loans")],
                               "record", labels=["approve", "review", "decline"])
    assert tree.headerItem().text(5) == "Waiting for review" and tree.topLevelItem(0).text(5) == "7"
    assert tree.topLevelItem(0).text(6) == headline_text(report) == f"Cohen's kappa {report.headline.overall:.2f}"

    win.tasks.review_button.click()
    # the queue is read on a worker thread (seconds at 100,000 waiting labels): the page says so meanwhile
    assert win.review.loading and win.review.views.currentWidget() is win.review.done_label
    assert win.review.done_label.text() == "Reading the labels waiting for review…"
    opened(qtbot, win)
    page = win.review
    assert win.stack.currentWidget() is page and page.progress.text.text() == "0 of 7 labels reviewed"
    # the disagreeing item first, with its badge, both labels side by side, the comment and the model's suggestion
    assert page.entry["position"] == 1 and [e["position"] for e in page.queue] == [1, 0, 2, 3]
    assert page.badge.text() == "Labelers disagree · disagreement 1.00"
    assert cards(page) == ["ann", "bob"] and "decline" in page.cards[1].value.text()
    assert page.cards[1].comment.text() == "Comment: “income checked”"
    assert page.suggestion.text() == "The model suggested: review (70% sure)"
    assert page.record_view.card_text("annual_income") == "41,000"
    assert page.buttons.resolve.isEnabled()

    # resolve the conflict: keep bob's label, ann's goes back with the standard reason and a note
    press(qtbot, page, "2")
    assert page.chosen == 1
    answer(qtbot, lambda: press(qtbot, page, "c"), text="income is below the limit")
    assert state(store, 1, "bob")[0] == "accepted"
    status, review = state(store, 1, "ann")
    assert status == "rejected" and review["reviewer"] == REVIEWER
    assert review["reason"] == "Reviewer chose bob's label — income is below the limit"
    assert page.entry["position"] == 0  # on to the next item

    # agreeing item: A accepts ann's, then bob's is chosen and A accepts it; then the next item
    assert page.badge.text() == "Labelers agree" and page.chosen == 0
    press(qtbot, page, "a")
    assert state(store, 0, "ann")[0] == "accepted" and page.entry["position"] == 0 and page.chosen == 1
    press(qtbot, page, "a")
    assert state(store, 0, "bob")[0] == "accepted" and page.entry["position"] == 2

    # reject ann's label of item 2 through the dialog with a common reason
    dialog = answer(qtbot, lambda: press(qtbot, page, "r"), choice=2)
    assert "ann" in dialog.question.text()
    status, review = state(store, 2, "ann")
    assert status == "rejected" and review["reason"] == "The data says otherwise: look at the fields again"
    assert page.entry["position"] == 2 and page.chosen == 1  # bob's label of the item is still waiting
    assert page.progress.text.text() == "5 of 7 labels reviewed"
    trail = page.trail.toPlainText()
    assert trail.index("rita sent ann's label back: The data says") < trail.index("ann labeled it: review")

    # a cancelled dialog decides nothing
    press(qtbot, page, Key.Key_Left)
    assert page.entry["position"] == 0
    answer(qtbot, lambda: press(qtbot, page, "r"), text="never sent", cancel=True)
    assert page.entry["position"] == 0 and state(store, 0, "ann")[0] == "accepted"

    rows = {(r["position"], r["labeler"]): r for r in store.labeled_rows("loans", statuses=("accepted",))}
    assert set(rows) == {(0, "ann"), (0, "bob"), (1, "bob")} and {r["reviewer"] for r in rows.values()} == {REVIEWER}
    decisions = [(e["who"], e["what"], e["position"]) for e in store.events("loans") if e["what"] in ("accept",
                                                                                                     "reject")]
    assert decisions == [(REVIEWER, "accept", 1), (REVIEWER, "reject", 1), (REVIEWER, "accept", 0),
                         (REVIEWER, "accept", 0), (REVIEWER, "reject", 2)]

    # ann gets her rejected labels back first, with the reviewer's reason in plain view, and relabels
    ann = open_window(qtbot, folder, store, "ann")
    assert "1 sent back to you" not in ann.tasks.table.topLevelItem(0).text(3)
    assert "2 sent back to you" in ann.tasks.table.topLevelItem(0).text(3)
    assert ann.open_task("loans")
    labeling = ann.page
    assert labeling.item["position"] == 1 and labeling.banner.level == "warning" and labeling.banner.isVisible()
    assert "rita sent this label back: Reviewer chose bob's label — income is below the limit" in labeling.banner.text()
    assert labeling.labels.chosen() == ["approve"]  # her label as it was
    press(qtbot, labeling, "3", Key.Key_Return)
    assert state(store, 1, "ann")[0] == "submitted"
    assert labeling.item["position"] == 2 and "look at the fields again" in labeling.banner.text()
    press(qtbot, labeling, "2", Key.Key_Return)

    # the reviewer reloads: the relabeled items are back in the queue, and are accepted
    assert opened(qtbot, win, win.open_review("loans"))
    assert [e["position"] for e in page.queue] == [1, 2, 3] and page.badge.text() == "Labelers agree"
    assert page.chosen == 0 and page.cards[0].ann["value"] == {"labels": ["decline"]}
    press(qtbot, page, "a")
    assert state(store, 1, "ann")[0] == "accepted" and page.entry["position"] == 2  # item 1 settled: on
    press(qtbot, page, Key.Key_Left)
    assert page.trail.toPlainText().startswith(page.trail.toPlainText().split("\n")[0])
    assert "rita accepted ann's label" in page.trail.toPlainText().split("\n")[1]  # newest first


def test_maker_checker_and_a_label_changed_meanwhile(team, qtbot):
    folder, store = team
    win = open_window(qtbot, folder, store, "ann")  # ann labels, and is asked to review too
    asked: list[str] = []
    win.review.ask_reject_reason = lambda who: asked.append(who) or "no"
    assert opened(qtbot, win, win.open_review("loans"))
    page = win.review
    assert page.entry["position"] == 1 and page.chosen == 1  # bob's label is offered first, not her own
    assert "(your own label)" in page.cards[0].head.text()
    press(qtbot, page, "1", "a")
    assert page.banner.level == "error" and "Maker-checker: ann made this label" in page.banner.text()
    press(qtbot, page, "r")
    assert asked == [] and "Maker-checker" in page.banner.text()
    press(qtbot, page, "c")
    assert "Maker-checker" in page.banner.text()
    assert state(store, 1, "ann")[0] == "submitted"
    press(qtbot, page, "2", "a")  # and she keeps going with bob's label
    assert state(store, 1, "bob")[0] == "accepted" and page.banner.level == "info"

    # rita's screen shows bob's item-0 label; bob changes it before she decides
    rita = open_window(qtbot, folder, store, REVIEWER)
    assert opened(qtbot, rita, rita.open_review("loans"))
    review = rita.review
    assert review.entry["position"] == 1 and review.chosen == 0
    press(qtbot, review, "n")
    assert review.entry["position"] == 0
    press(qtbot, review, "2")
    shown = review.selected()
    store.save("loans", review.entry["item_id"], "bob", {"labels": ["decline"]}, shown["version"])
    press(qtbot, review, "a")
    assert state(store, 0, "bob")[0] == "submitted"  # nothing accepted unseen
    assert review.banner.level == "error" and "bob's label changed since it was shown: bob changed it" in \
        review.banner.text()
    # reloaded: disagreeing now, so item 0 moves to the front, with bob's new label on his card
    assert review.entry["position"] == 0 and review.queue[0]["position"] == 0
    assert review.badge.text().startswith("Labelers disagree")
    assert review.cards[1].ann["value"] == {"labels": ["decline"]}
    press(qtbot, review, "2", "a")
    assert state(store, 0, "bob")[0] == "accepted"


def test_agreement_view_shows_compute_agreements_figures(team, qtbot):
    folder, store = team
    win = open_window(qtbot, folder, store, REVIEWER)
    win.tasks.agreement_button.click()
    view = win.agreement
    assert win.stack.currentWidget() is view
    qtbot.waitUntil(lambda: not win.agreements_pending(), timeout=30_000)
    report = compute_agreement([(r["position"], r["labeler"], r["value"]) for r in store.labeled_rows("loans")],
                               "record", labels=["approve", "review", "decline"])
    kappa, share = report.measures["kappa"], report.measures["agreement"]
    assert view.headline.text() == f"Agreement: Cohen's kappa {kappa.overall:.2f}"
    assert "Items labeled by two or more people: 3" in view.facts.text()
    assert "Items where they disagree: 1" in view.facts.text()
    for name in ("approve", "review", "decline"):
        cell = view.cell(view.per_label, name, "Cohen's kappa")
        expected = kappa.per_label[name]
        assert cell.data(VALUE_ROLE) == (None if expected is None else pytest.approx(expected, abs=1e-4))
        assert cell.text() == ("n/a" if expected is None else f"{expected:.2f}")
    for who in ("ann", "bob"):
        assert view.cell(view.per_labeler, who, "Cohen's kappa").data(VALUE_ROLE) == pytest.approx(
            kappa.per_labeler[who], abs=1e-4)
        assert view.cell(view.per_labeler, who, "Share of agreeing labeler pairs").data(VALUE_ROLE) == \
            pytest.approx(share.per_labeler[who], abs=1e-4) == pytest.approx(2 / 3, abs=1e-4)
    qtbot.keyClick(view, Key.Key_R)  # R: on to the review page
    opened(qtbot, win)
    assert win.stack.currentWidget() is win.review
    win.show_agreement("loans")
    qtbot.keyClick(view, Key.Key_Escape)
    assert win.stack.currentWidget() is win.tasks


def test_spans_review_shows_each_labelers_marks(tmp_path, qtbot):
    store = open_label_store(tmp_path / STATE_DIR)
    try:
        text = "Sarah Jones was charged $35.00 twice."
        store.create_task("complaints", {"kind": "spans", "labels": labels("person", "amount")}, [{"text": text}],
                          overlap=2)
        item_id = store.item("complaints", 0)["item_id"]
        first = [{"start": 0, "end": 11, "label": "person"}, {"start": 24, "end": 30, "label": "amount"}]
        second = [{"start": 0, "end": 5, "label": "person"}]
        store.save("complaints", item_id, "ann", {"spans": first}, 0)
        store.save("complaints", item_id, "bob", {"spans": second}, 0)
        win = open_window(qtbot, tmp_path, store, REVIEWER)
        assert opened(qtbot, win, win.open_review("complaints"))
        page = win.review
        assert page.views.currentWidget() is page.text_view and page.text_view.text == text
        assert page.text_view.spans() == first and len(page.text_view.editor.extraSelections()) == 2
        assert page.cards[0].value.text() == "2 marks: amount, person"
        press(qtbot, page, "2")
        assert page.text_view.spans() == second and len(page.text_view.editor.extraSelections()) == 1
        press(qtbot, page, "3")  # no third labeler: said so, nothing changes
        assert page.chosen == 1 and "press 1 to 2" in page.banner.text()
        answer(qtbot, lambda: press(qtbot, page, "c"))  # keep bob's marks, no note
        assert store.item("complaints", 0, "bob")["annotation"]["status"] == "accepted"
        ann = store.item("complaints", 0, "ann")["annotation"]
        assert ann["status"] == "rejected" and ann["review"]["reason"] == "Reviewer chose bob's label"
        assert "Nothing waits" not in page.done_label.text() and page.views.currentWidget() is page.done_label
    finally:
        store.close()


def test_reason_dialog_optional_note(qtbot):
    dialog = ReasonDialog("Resolve", "Keep it?", (), "Resolve", required=False)
    qtbot.addWidget(dialog)
    assert not dialog.other.isVisible() and dialog.reason() == ""
    dialog._accept()
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted
    strict = ReasonDialog("Reject", "Why?", ("a", "b"), "Send back")
    qtbot.addWidget(strict)
    strict.other.setChecked(True)
    strict._accept()  # required and empty: stays open
    assert strict.result() != QtWidgets.QDialog.DialogCode.Accepted


def test_label_command_opens_the_review_page(team, tmp_path):
    folder, _ = team
    target = tmp_path / "review.png"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "label", str(folder), "--review", "--labeler",
                           REVIEWER, "--screenshot", str(target)], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(target) as img:
        assert img.size[0] > 800 and img.size[1] > 500
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "label", str(folder), "--review", "--task", "nope",
                          "--screenshot", str(target)], check=False, cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "no labeling task named 'nope'" in bad.stderr
