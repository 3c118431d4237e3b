"""The labeling workspace for business staff: the project's tasks, then one item at a time.

No canvas and no settings: a labeler picks a task and works through it with the keyboard (label keys, Enter for
save and next, ← back, S skip, C comment, Ctrl+Z undo). Every save names the version the screen showed, so a
label changed meanwhile (the same person in another window, a reviewer) is never overwritten: the labeler sees
who changed it, the item reloads, and their typed comment stays in its box.

Store calls run on the GUI thread on purpose: each is one or two indexed statements (the store keeps "next item"
under 50 ms at 100,000 items), and doing them in order keeps version numbers and the screen in step.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.labeling.agreement_view import AgreementView, headline_text, task_agreement
from app.labeling.controls import (
    Banner,
    LabelButtons,
    NavButtons,
    Progress,
    SkipDialog,
    Suggestion,
    back_and_title,
    item_views,
    page_layout,
    panel_browser,
    shortcuts_html,
    side_column,
)
from app.labeling.review_page import ReviewPage
from assetcenter.labeling import (
    LabelAuditForwarder,
    audit_forwarder,
    labels_exist,
    open_project_labels,
)
from engine.errors import LedgerflowError
from engine.i18n import N_, tr
from engine.labels.agreement import AgreementReport
from engine.labels.schema import LabelSchema
from engine.labels.store import (
    LabelConflict,
    LabelStore,
    LabelStoreError,
)
from engine.project import PROJECT_FILE, project_file
from engine.runlog import os_user

log = logging.getLogger("ledgerflow.app.labeling")
Key = QtCore.Qt.Key
KIND_NAMES = {"record": N_("Records"), "text": N_("Texts"), "spans": N_("Texts: mark words"),
              "image": N_("Images"), "boxes": N_("Images: draw boxes")}
_DONE = ("submitted", "accepted", "skipped")  # statuses that count as "done" in the labeler's progress
_CLASSIFY = ("record", "text", "image")


def _percent(confidence: float | None) -> str:
    return "" if confidence is None else tr(" ({percent}% sure)", percent=round(100 * confidence))


class ItemPage(QtWidgets.QWidget):
    """One item of a task, its controls and its instructions; all labeling keys are handled here."""

    back_requested = QtCore.Signal()

    def __init__(self, labeler: str, base_dir: Path, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.labeler, self.base_dir = labeler, base_dir
        self.store: LabelStore | None = None
        self.task = ""
        self.schema: LabelSchema | None = None
        self.kind = ""
        self.item: dict[str, Any] | None = None
        self.trail: list[int] = []  # positions shown in this session, for ← and →
        self.index = -1
        self.local_undo: list[dict[str, Any] | None] = []  # on-screen edits of this item, newest last
        self._last_value: dict[str, Any] | None = None
        self.hotkeys: dict[str, str] = {}
        # replaced by tests and by unattended runs: how to ask for a skip reason
        self.ask_skip_reason: Callable[[], str | None] = lambda: SkipDialog.ask(self)
        self._build()

    # ---- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.back, self.title = back_and_title(self)
        self.progress = Progress()
        self.progress.setMinimumWidth(260)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.back)
        top.addSpacing(12)
        top.addWidget(self.title, 1)
        top.addWidget(self.progress)

        self.banner = Banner()
        self.where = QtWidgets.QLabel()
        self.where.setStyleSheet("color:#5b6575")
        (self.record_view, self.text_view, self.image_view, self.done_label,
         self.views) = item_views(self.title.font())
        for view in (self.text_view, self.image_view):
            view.changed.connect(self._on_view_changed)
            view.message.connect(lambda text: self.banner.show_message(text, "info"))
        self.comment = QtWidgets.QLineEdit(placeholderText=tr("Comment for the reviewer (C), optional"))
        self.comment.setClearButtonEnabled(True)
        # QLineEdit passes Enter on after returnPressed: the page then saves and moves on, as from the item
        self.comment.returnPressed.connect(self.focus_item)
        self.nav = NavButtons()
        self.nav.previous.clicked.connect(self.previous)
        self.nav.skip.clicked.connect(self.skip)
        self.nav.undo.clicked.connect(self.undo)
        self.nav.save.clicked.connect(self.save_and_next)
        center = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.banner)
        cl.addWidget(self.where)
        cl.addWidget(self.views, 1)
        cl.addWidget(self.comment)
        cl.addWidget(self.nav)

        self.labels = LabelButtons()
        self.labels.picked.connect(self.pick)
        self.suggestion = Suggestion()
        self.instructions = panel_browser()
        self.keys = QtWidgets.QLabel(wordWrap=True)
        self.keys.setStyleSheet("color:#4a5361")
        side = side_column([(tr("Labels"), self.labels, 0), ("", self.suggestion, 0),
                            (tr("Instructions"), self.instructions, 1), (tr("Keys"), self.keys, 0)], 300, 420)
        page_layout(self, top, center, side)

    # ---- opening a task ----------------------------------------------------------------------------
    def open_task(self, store: LabelStore, task: str) -> None:
        """Show the labeler's first item of `task` (a rejected label of theirs first); raises LabelStoreError."""
        self.store, self.task = store, task
        self.schema = store.schema(task)
        self.kind = self.schema.kind
        self.hotkeys = {label.hotkey: label.name for label in self.schema.labels if label.hotkey}
        self.title.setText(task)
        self.labels.set_schema(self.schema, checkable=self.kind in _CLASSIFY or self.kind == "boxes")
        self.instructions.setMarkdown(self.schema.instructions or tr("No instructions for this task."))
        self.keys.setText(shortcuts_html(self.kind, None if "s" in self.hotkeys else "S",
                                         None if "c" in self.hotkeys else "C"))
        summary = store.task_summary(task)
        mine = summary["per_labeler"].get(self.labeler, {})
        self.progress.set_progress(int(mine.get("done", 0)), int(summary["items"]))
        self.trail, self.index = [], -1
        first = store.next_item(task, self.labeler)
        if first is None:
            self._show_done()
        else:
            self._go_to(first, append=True)

    # ---- showing an item -------------------------------------------------------------------------
    @property
    def colors(self) -> dict[str, str]:
        return {label.name: label.color for label in self.schema.labels} if self.schema else {}

    def _go_to(self, item: dict[str, Any], append: bool = False) -> None:
        if append:
            self.trail = self.trail[:self.index + 1] + [item["position"]]
            self.index = len(self.trail) - 1
        self.show_item(item)

    def show_item(self, item: dict[str, Any], keep_banner: bool = False) -> None:
        """Put an item on screen: the labeler's own label if they have one, else the model's suggestion."""
        assert self.schema is not None
        self.item = item
        ann = item.get("annotation") or {}
        value = ann.get("value") if ann.get("value") is not None else item.get("prelabel")
        payload = item["payload"]
        first_label = self.schema.labels[0].name
        if self.kind == "record":
            self.record_view.set_fields(payload["fields"])
            self.views.setCurrentWidget(self.record_view)
        elif self.kind in ("text", "spans"):
            self.text_view.set_text(payload["text"], (value or {}).get("spans"), self.colors, self.kind == "spans")
            self.views.setCurrentWidget(self.text_view)
        else:
            path = Path(payload["image"])
            path = path if path.is_absolute() else self.base_dir / path
            current = self.image_view.current_label if self.image_view.current_label in self.colors else first_label
            self.image_view.set_image(str(path), (value or {}).get("boxes"), self.colors, current,
                                      self.kind == "boxes")
            self.views.setCurrentWidget(self.image_view)
        if self.kind in _CLASSIFY:
            self.labels.set_chosen((value or {}).get("labels", []))
        elif self.kind == "boxes":
            self.labels.set_chosen([self.image_view.current_label])
        self.comment.setText(ann.get("comment") or "")
        self.local_undo = []
        self._last_value = self.current_value()
        self._show_status(item, ann, keep_banner)
        self._set_enabled(True)
        self.focus_item()

    def _show_status(self, item: dict[str, Any], ann: dict[str, Any], keep_banner: bool) -> None:
        item_no = item["position"] + 1
        where = tr("Item {number} of {total}", number=f"{item_no:,}", total=f"{item['of']:,}")
        if item.get("external_id"):
            where += "  ·  " + tr("ID {id}", id=item["external_id"])
        self.where.setText(where)
        status = ann.get("status")
        suggestion = None
        if status is None and item.get("prelabel") is not None:
            pre, sure = item["prelabel"], _percent(item.get("confidence"))
            if self.kind in _CLASSIFY:
                suggestion = tr("The model suggests: {labels}{sure}. Press Enter to accept it, or a label key to "
                                "change it.", labels=", ".join(pre.get("labels", [])), sure=sure)
            elif self.kind == "spans":
                suggestion = tr("The model marked {count} words{sure}. Check them, fix what is wrong, then press "
                                "Enter.", count=len(pre.get("spans", [])), sure=sure)
            else:
                suggestion = tr("The model drew {count} boxes{sure}. Check them, fix what is wrong, then press "
                                "Enter.", count=len(pre.get("boxes", [])), sure=sure)
        self.suggestion.show_suggestion(suggestion)
        if keep_banner:
            return
        if status == "rejected":
            review = ann.get("review") or {}
            self.banner.show_message(tr("{reviewer} sent this label back: {reason}", reviewer=review.get(
                "reviewer", "?"), reason=review.get("reason") or "—") + "\n" +
                tr("Your label is shown below. Correct it and press Enter to send it again."), "warning",
                strong=True)
        elif status == "skipped":
            self.banner.show_message(tr("You skipped this item: {reason}", reason=ann.get("skip_reason")), "info")
        elif status in ("submitted", "accepted"):
            self.banner.show_message(tr("You labeled this item. Change it and press Enter to save again.")
                                     if status == "submitted" else
                                     tr("A reviewer accepted this label."), "info")
        else:
            self.banner.show_message("")

    def _show_done(self) -> None:
        self.item = None
        self.done_label.setText(tr("All done! You have no more items in “{task}”.\n\nThank you.", task=self.task))
        self.views.setCurrentWidget(self.done_label)
        self.where.setText("")
        self.suggestion.show_suggestion(None)
        self.banner.show_message("")
        self._set_enabled(False)
        self.setFocus()

    def _set_enabled(self, on: bool) -> None:
        for widget in (self.nav.skip, self.nav.save, self.comment, self.labels):
            widget.setEnabled(on)
        self.nav.previous.setEnabled(bool(self.trail))

    def focus_item(self) -> None:
        view = self.views.currentWidget()
        (self.text_view.editor if view is self.text_view else view).setFocus()

    # ---- the label on screen ---------------------------------------------------------------------
    def current_value(self) -> dict[str, Any] | None:
        if self.kind in _CLASSIFY:
            chosen = self.labels.chosen()
            return {"labels": chosen} if chosen else None
        if self.kind == "spans":
            return {"spans": self.text_view.spans()}
        if self.kind == "boxes":
            return {"boxes": self.image_view.value_boxes()}
        return None

    def _restore_value(self, value: dict[str, Any] | None) -> None:
        if self.kind in _CLASSIFY:
            self.labels.set_chosen((value or {}).get("labels", []))
        elif self.kind == "spans":
            self.text_view.set_spans((value or {}).get("spans", []))
        elif self.kind == "boxes":
            self.image_view.set_boxes((value or {}).get("boxes", []))
        self._last_value = self.current_value()

    def _on_view_changed(self) -> None:
        self.local_undo.append(self._last_value)
        self._last_value = self.current_value()

    def pick(self, name: str) -> None:
        """A label key or button: choose it (classification), mark the selection with it (spans), or give it to the
        selected box and the next ones (boxes)."""
        if self.item is None or self.schema is None:
            return
        if self.kind in _CLASSIFY:
            before = self.current_value()
            chosen = self.labels.chosen() if self.schema.multi else []
            chosen = [n for n in chosen if n != name] if name in chosen else chosen + [name]
            self.labels.set_chosen(chosen)
            if self.current_value() != before:
                self.local_undo.append(before)
                self._last_value = self.current_value()
        elif self.kind == "spans":
            self.text_view.apply_label(name)
        elif self.kind == "boxes":
            self.image_view.apply_label(name)
            self.labels.set_chosen([name])

    # ---- actions ---------------------------------------------------------------------------------
    def save_and_next(self) -> bool:
        item, store = self.item, self.store
        if item is None or store is None:
            return False
        if self.kind in ("image", "boxes") and self.image_view.missing:
            self.banner.show_message(tr("The image cannot be shown, so it cannot be labeled: skip it (S) and say "
                                        "why."), "warning")
            return False
        value = self.current_value()
        if value is None:
            self.banner.show_message(tr("Choose a label first: press its key or click it."), "warning")
            return False
        comment = self.comment.text().strip() or None
        ann = item.get("annotation") or {}
        unchanged = ann.get("status") in ("submitted", "accepted") and ann.get("value") == value and \
            (ann.get("comment") or None) == comment
        if not unchanged:
            try:
                store.save(self.task, item["item_id"], self.labeler, value, item["version"], comment)
            except LabelConflict as exc:
                self._conflict(str(exc))
                return False
            except LedgerflowError as exc:
                self.banner.show_message(str(exc), "error")
                return False
            if ann.get("status") not in _DONE:
                self.progress.set_progress(self.progress.done + 1, self.progress.total)
        self.go_next()
        return True

    def go_next(self) -> None:
        """Forward through items already seen (after going back), then on to the next open one."""
        if self.store is None or self.item is None:
            return
        if self.index < len(self.trail) - 1:
            self.index += 1
            self._load(self.trail[self.index])
            return
        try:
            nxt = self.store.next_item(self.task, self.labeler, after_position=self.item["position"])
        except LedgerflowError as exc:
            self.banner.show_message(str(exc), "error")
            return
        if nxt is None:
            self._show_done()
        else:
            self._go_to(nxt, append=True)

    def previous(self) -> None:
        if self.store is None:
            return
        if self.item is None and self.trail:  # from "all done", back to the last item
            self._load(self.trail[self.index])
        elif self.index > 0:
            self.index -= 1
            self._load(self.trail[self.index])
        elif self.item is not None and self.item["position"] > 0:  # before the first item of this session
            self.trail.insert(0, self.item["position"] - 1)
            self._load(self.trail[0])
        else:
            self.banner.show_message(tr("This is the first item."), "info")

    def _load(self, position: int, keep_banner: bool = False) -> None:
        assert self.store is not None
        self.show_item(self.store.item(self.task, position, self.labeler), keep_banner)

    def skip(self) -> None:
        item, store = self.item, self.store
        if item is None or store is None:
            return
        reason = (self.ask_skip_reason() or "").strip()
        self.focus_item()
        if not reason:
            return
        try:
            store.skip(self.task, item["item_id"], self.labeler, reason, expected_version=item["version"])
        except LabelConflict as exc:
            self._conflict(str(exc))
            return
        except LedgerflowError as exc:
            self.banner.show_message(str(exc), "error")
            return
        if (item.get("annotation") or {}).get("status") not in _DONE:
            self.progress.set_progress(self.progress.done + 1, self.progress.total)
        self.go_next()

    def undo(self) -> None:
        """Undo the last edit on screen; with none, undo the last saved label or skip (whichever item it was)."""
        if self.store is None:
            return
        if self.local_undo:
            self._restore_value(self.local_undo.pop())
            return
        try:
            undone = self.store.undo(self.task, self.labeler)
        except LedgerflowError as exc:
            self.banner.show_message(str(exc), "info")
            return
        position = undone["position"]
        if position in self.trail:
            self.index = self.trail.index(position)
        else:
            self.trail = self.trail[:self.index + 1] + [position]
            self.index = len(self.trail) - 1
        summary = self.store.task_summary(self.task)
        self.progress.set_progress(int(summary["per_labeler"].get(self.labeler, {}).get("done", 0)),
                                   int(summary["items"]))
        self._load(position)
        self.banner.show_message(tr("Undone: item {number} is back as it was.", number=position + 1), "info")

    def _conflict(self, message: str) -> None:
        """Someone changed this label meanwhile: say so, show what is stored now, keep the typed comment."""
        assert self.item is not None
        typed = self.comment.text()
        self._load(self.item["position"], keep_banner=True)
        stored = (self.item.get("annotation") or {}).get("comment") or ""
        text = message
        if typed.strip() and typed != stored:
            self.comment.setText(typed)
            text += "\n" + tr("Your comment is still in the comment box.")
        self.banner.show_message(text, "error")
        if self.isVisible() and QtWidgets.QApplication.platformName() != "offscreen":
            QtWidgets.QMessageBox.warning(self, tr("Not saved"), text)

    # ---- keys ------------------------------------------------------------------------------------
    def handle_key(self, event: QtGui.QKeyEvent) -> bool:
        key, mods = event.key(), event.modifiers() & ~QtCore.Qt.KeyboardModifier.KeypadModifier
        plain = mods in (QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.KeyboardModifier.ShiftModifier)
        if event.matches(QtGui.QKeySequence.StandardKey.Undo):
            self.undo()
        elif key in (Key.Key_Return, Key.Key_Enter) and plain or key == Key.Key_Right and not mods & QtCore.Qt.KeyboardModifier.ShiftModifier:
            self.save_and_next()
        elif key == Key.Key_Left and not mods & QtCore.Qt.KeyboardModifier.ShiftModifier:
            self.previous()
        elif key in (Key.Key_Delete, Key.Key_Backspace) and self.item is not None:
            view = self.views.currentWidget()
            if not (hasattr(view, "delete_selected") and view.delete_selected()):
                self.banner.show_message(tr("Select a mark or a box first, then press Delete."), "info")
        elif key == Key.Key_Escape and self.kind in ("text", "spans"):
            self.text_view.clear_selection()
        elif key == Key.Key_Escape:
            self.image_view.select_box(None)
        elif plain and event.text().strip():
            char = event.text().lower()
            if char in self.hotkeys:
                self.pick(self.hotkeys[char])
            elif char == "s":
                self.skip()
            elif char == "c" and self.item is not None:
                self.comment.setFocus()
                self.comment.selectAll()
            else:
                return False
        else:
            return False
        return True

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if not self.handle_key(event):
            super().keyPressEvent(event)


class TaskList(QtWidgets.QWidget):
    """The project's labeling tasks with this labeler's progress, the labels waiting for review and the team's
    agreement; Enter or double-click opens one for labeling, Review (Alt+R) for review, Agreement (Alt+G) shows the
    figures."""

    open_requested = QtCore.Signal(str)
    review_requested = QtCore.Signal(str)
    agreement_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        heading = QtWidgets.QLabel(tr("Choose a task to label"))
        font = QtGui.QFont(heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        heading.setFont(font)
        self.table = QtWidgets.QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels([tr("Task"), tr("Kind"), tr("Items"), tr("My progress"), tr("Finished by all"),
                                    tr("Waiting for review"), tr("Agreement")])
        self.table.setUniformRowHeights(True)
        self.table.setStyleSheet("QTreeWidget::item{padding:8px 4px}")
        body = QtGui.QFont(self.table.font())
        body.setPointSizeF(body.pointSizeF() * 1.15)
        self.table.setFont(body)
        self.table.itemActivated.connect(lambda item, _c: self.open_requested.emit(item.data(0, _ROLE)))
        self.empty = QtWidgets.QLabel(wordWrap=True)
        self.empty.setStyleSheet("color:#5b6575")
        self.open_button = QtWidgets.QPushButton(tr("Open task  ⏎"))
        self.open_button.setMinimumHeight(38)
        self.open_button.clicked.connect(self._open_current)
        self.review_button = QtWidgets.QPushButton(tr("&Review labels"))
        self.review_button.setMinimumHeight(38)
        self.review_button.setToolTip(tr("Check the labels waiting for review, disagreements first (Alt+R)"))
        self.review_button.clicked.connect(lambda: self._emit_current(self.review_requested))
        self.agreement_button = QtWidgets.QPushButton(tr("A&greement"))
        self.agreement_button.setMinimumHeight(38)
        self.agreement_button.setToolTip(tr("How far the labelers agree, per label and per labeler (Alt+G)"))
        self.agreement_button.clicked.connect(lambda: self._emit_current(self.agreement_requested))
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.addWidget(heading)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.agreement_button)
        row.addWidget(self.review_button)
        row.addStretch(1)
        row.addWidget(self.open_button)
        layout.addLayout(row)

    def fill(self, rows: list[dict[str, Any]], labeler: str, empty_text: str = "") -> None:
        """`rows`: task summaries, each may carry "agreement" (the headline text) for the Agreement column."""
        self.table.clear()
        for summary in rows:
            mine = summary["per_labeler"].get(labeler, {})
            done = int(mine.get("done", 0))
            progress = tr("{done} of {total} done", done=f"{done:,}", total=f"{summary['items']:,}")
            if mine.get("rejected"):  # labels a reviewer sent back to this labeler
                progress += "  ·  " + tr("{count} sent back to you", count=f"{mine['rejected']:,}")
            item = QtWidgets.QTreeWidgetItem([
                summary["name"], tr(KIND_NAMES.get(summary["kind"], summary["kind"])), f"{summary['items']:,}",
                progress, f"{round(100 * summary['progress'])}%", f"{int(summary.get('submitted', 0)):,}",
                summary.get("agreement") or tr("n/a")])
            item.setData(0, _ROLE, summary["name"])
            item.setToolTip(0, summary["name"])
            if summary.get("agreement_tip"):
                item.setToolTip(6, summary["agreement_tip"])
            self.table.addTopLevelItem(item)
        for col in range(self.table.columnCount()):
            self.table.resizeColumnToContents(col)
        # long task names are elided (full name in the tooltip) so the agreement column stays in view
        self.table.setColumnWidth(0, min(max(self.table.columnWidth(0), 260), 380))
        if rows:
            self.table.setCurrentItem(self.table.topLevelItem(0))
        self.empty.setText(empty_text)
        self.empty.setVisible(bool(empty_text))
        for button in (self.open_button, self.review_button, self.agreement_button):
            button.setEnabled(bool(rows))
        self.table.setFocus()

    def _open_current(self) -> None:
        self._emit_current(self.open_requested)

    def _emit_current(self, signal: QtCore.SignalInstance) -> None:
        item = self.table.currentItem()
        if item is not None:
            signal.emit(item.data(0, _ROLE))


_ROLE = QtCore.Qt.ItemDataRole.UserRole


class _AgreementRelay(QtCore.QObject):
    """Carries an agreement computed on a worker thread back to the GUI thread: (task, label digest, report or
    the reason it failed)."""

    done = QtCore.Signal(str, str, object)


class LabelingWindow(QtWidgets.QMainWindow):
    """The task list, the item page, the review page and the agreement view of one project, for one person (who
    labels, or reviews other people's labels: never their own)."""

    def __init__(self, project_dir: str | Path, labeler: str | None = None, store: LabelStore | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.project_dir = project_file(Path(project_dir)).parent.resolve()
        self.labeler = (labeler or "").strip() or os_user()  # the name the Label node records too
        self._own_store = store is None
        self.forwarder: LabelAuditForwarder | None = None
        self._store_problem = self._trail_problem = ""
        self._agreement_cache: dict[str, tuple[str, AgreementReport]] = {}  # task -> (label digest, agreement)
        self._computing: set[tuple[str, str]] = set()
        self._agreement_task = ""
        self._relay = _AgreementRelay(self)
        self._relay.done.connect(self._on_agreement, QtCore.Qt.ConnectionType.QueuedConnection)
        self.store = store if store is not None else self._open_store()
        self.setWindowTitle(tr("Labeling — {project} — Ledgerflow", project=self.project_dir.name))
        self.resize(1360, 860)
        self.tasks = TaskList()
        self.tasks.open_requested.connect(self.open_task)
        self.tasks.review_requested.connect(self.open_review)
        self.tasks.agreement_requested.connect(self.show_agreement)
        self.page = ItemPage(self.labeler, self.project_dir)
        self.page.back_requested.connect(self.show_tasks)
        self.review = ReviewPage(self.labeler, self.project_dir)
        self.review.back_requested.connect(self.show_tasks)
        self.review.agreement_requested.connect(self.show_agreement)
        self.agreement = AgreementView()
        self.agreement.back_requested.connect(self.show_tasks)
        self.agreement.review_requested.connect(self.open_review)
        self.stack = QtWidgets.QStackedWidget()
        for widget in (self.tasks, self.page, self.review, self.agreement):
            self.stack.addWidget(widget)
        self.setCentralWidget(self.stack)
        self.who = QtWidgets.QLabel(tr("Labeling as {name}", name=self.labeler))
        self.trail = QtWidgets.QLabel()
        self.trail.setObjectName("labeling-trail-state")
        self.trail.setStyleSheet("color: #b45309;")
        self.statusBar().addPermanentWidget(self.trail)
        self.statusBar().addPermanentWidget(self.who)
        self._trail_timer = QtCore.QTimer(self, interval=5000, timeout=self._show_trail_state)
        self._trail_timer.start()
        self._show_trail_state()
        self.show_tasks()

    def _open_store(self) -> LabelStore | None:
        """The project's label store: its labels.db, or the team's shared database when connected to an asset
        center (assetcenter/labeling.py). None (nothing created) when no task was ever made in this project, or
        when the shared database cannot be opened (the task list says why). When connected, the labeling trail is
        sent to the asset center's audit log in the background."""
        try:
            if not labels_exist(self.project_dir):
                return None
            store = open_project_labels(self.project_dir)
        except LedgerflowError as exc:
            self._store_problem = str(exc)
            return None
        try:
            self.forwarder = audit_forwarder(store, self.project_dir)
        except Exception as exc:  # noqa: BLE001 - labeling goes on; the trail stays in the label store
            log.warning("the labeling trail will not be sent to the asset center: %s", type(exc).__name__)
            self._trail_problem = str(exc)
        return store

    def _show_trail_state(self) -> None:
        """The status bar says when the labeling trail cannot reach the asset center (it is kept and resent)."""
        problem = self._trail_problem or (self.forwarder.last_error if self.forwarder is not None else None)
        self.trail.setVisible(bool(problem))
        if problem:
            self.trail.setText(tr("Audit log: waiting for the asset center"))
            self.trail.setToolTip(tr("Your work is saved. Its trail is kept and sent to the asset center's audit "
                                     "log when it can be reached: {problem}", problem=problem))

    def show_tasks(self) -> None:
        rows, problem = [], ""
        if self.store is None:
            problem = self._store_problem or tr("This project has no labeling tasks yet. An analyst creates them "
                                                "with a Label node on the canvas.")
        else:
            try:
                rows = [self._summary_with_agreement(name) for name in self.store.task_names()]
            except LedgerflowError as exc:
                problem = str(exc)
            if not rows and not problem:
                problem = tr("This project has no labeling tasks yet. An analyst creates them with a Label node on "
                             "the canvas.")
        self.tasks.fill(rows, self.labeler, problem)
        self.who.setText(tr("Labeling as {name}", name=self.labeler))
        self.stack.setCurrentWidget(self.tasks)

    def _summary_with_agreement(self, name: str) -> dict[str, Any]:
        """A task's summary plus its agreement headline; a task with overlap 1 has one labeler per item, so the
        agreement (which reads every label) is not computed for it."""
        assert self.store is not None
        summary = self.store.task_summary(name)
        if summary["overlap"] < 2:
            summary["agreement"] = tr("n/a")
            summary["agreement_tip"] = tr("Each item is labeled by one person, so there is no agreement to measure.")
        else:
            report = self._agreement(name)
            summary["agreement"] = headline_text(report) if report is not None else tr("computing…")
        return summary

    def _agreement(self, name: str) -> AgreementReport | None:
        """The task's agreement when known for its labels as they are now; else None, and it is computed on a
        worker thread (at 100,000 items it reads every label for seconds) and the pages showing it are refreshed
        when it arrives."""
        assert self.store is not None
        digest = self.store.annotation_digest(name)  # changes with every save and review
        cached = self._agreement_cache.get(name)
        if cached is not None and cached[0] == digest:
            return cached[1]
        if (name, digest) not in self._computing:
            self._computing.add((name, digest))
            store = self.store

            def work() -> None:
                try:
                    result: Any = task_agreement(store, name)
                except Exception as exc:  # noqa: BLE001 - shown where the figure would be
                    result = str(exc) or type(exc).__name__
                with contextlib.suppress(RuntimeError):  # the window was closed meanwhile
                    self._relay.done.emit(name, digest, result)

            threading.Thread(target=work, name="label-agreement", daemon=True).start()
        return None

    def agreements_pending(self) -> bool:
        """True while an agreement is being computed (screenshots and tests wait for it)."""
        return bool(self._computing)

    def _on_agreement(self, name: str, digest: str, result: Any) -> None:
        self._computing.discard((name, digest))
        if isinstance(result, str):
            self.statusBar().showMessage(tr("Agreement of {task} could not be computed: {reason}", task=name,
                                            reason=result), 15000)
            return
        self._agreement_cache[name] = (digest, result)
        current = self.stack.currentWidget()
        if current is self.tasks:
            self.show_tasks()
        elif current is self.review and self.review.task == name:
            self.review.agreement_button.setText(tr("Agreement: {headline}", headline=headline_text(result)))
        elif current is self.agreement and self._agreement_task == name and self.store is not None:
            self.agreement.set_report(name, result, self.store.task_summary(name))

    def open_review(self, name: str) -> bool:
        """The task's review page, as the reviewer (this window's person); False with the reason shown otherwise."""
        if self.store is None:
            return False
        try:
            report = self._agreement(name)
            self.review.open_task(self.store, name, headline_text(report) if report is not None else "")
        except LedgerflowError as exc:
            self._cannot_open(str(exc))
            return False
        self.who.setText(tr("Reviewing as {name}", name=self.labeler))
        self.stack.setCurrentWidget(self.review)
        self.review.focus_item()
        return True

    def show_agreement(self, name: str) -> bool:
        if self.store is None:
            return False
        try:
            report = self._agreement(name)
            if report is None:
                self.agreement.show_pending(name)
            else:
                self.agreement.set_report(name, report, self.store.task_summary(name))
        except LedgerflowError as exc:
            self._cannot_open(str(exc))
            return False
        self._agreement_task = name
        self.stack.setCurrentWidget(self.agreement)
        self.agreement.setFocus()
        return True

    def _cannot_open(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)
        if self.isVisible() and QtWidgets.QApplication.platformName() != "offscreen":
            QtWidgets.QMessageBox.warning(self, tr("Cannot open the task"), message)

    def open_task(self, name: str) -> bool:
        if self.store is None:
            return False
        try:
            self.page.open_task(self.store, name)
        except LabelStoreError as exc:
            self._cannot_open(str(exc))
            return False
        self.who.setText(tr("Labeling as {name}", name=self.labeler))
        self.stack.setCurrentWidget(self.page)
        self.page.focus_item()
        return True

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self._trail_timer.stop()
        if self.forwarder is not None:
            self.forwarder.close(timeout=5.0)  # one last send; what does not go now goes next time
            self.forwarder = None
        if self._own_store and self.store is not None:
            self.store.close()
            self.store = None
        event.accept()


def resolve_project(project: str | None) -> Path | None:
    """The project folder named on the command line, else the current folder when it holds a project."""
    if project:
        return project_file(Path(project)).parent
    here = Path.cwd()
    return here if (here / PROJECT_FILE).is_file() else None


def run_labeling(project: str | None = None, *, task: str | None = None, lang: str | None = None,
                 labeler: str | None = None, screenshot: str | None = None, review: bool = False) -> int:
    """`ledgerflow label`: the labeling window alone (no workbench); `screenshot` saves it with the first item.

    `review`: open the review page of `task` (without one: of the first task with labels waiting for review), with
    `labeler` (default: the login name) as the reviewer."""
    from app.main import make_application
    from app.preferences import Preferences

    # business staff read all day: a size up from the workbench
    app, _translator = make_application(lang or Preferences.load().language, scale=1.1)

    folder = resolve_project(project)
    if folder is None and not screenshot:
        chosen = QtWidgets.QFileDialog.getExistingDirectory(None, tr("Choose a project folder"))
        folder = Path(chosen) if chosen else None
    if folder is None or not folder.is_dir():
        print(tr("No project to label: give a project folder, e.g. ledgerflow label my-project"), file=sys.stderr)
        return 2
    try:
        window = LabelingWindow(folder, labeler)
    except LedgerflowError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if screenshot:
        window.page.ask_skip_reason = lambda: None
        window.review.ask_reject_reason = window.review.ask_resolve_note = lambda _labeler: None
    window.show()
    exit_code = 0
    names = window.store.task_names() if window.store is not None else []
    if task and task not in names:
        print(tr("There is no labeling task named '{name}' in {project} (tasks: {names}).", name=task,
                 project=folder, names=", ".join(names) or "—"), file=sys.stderr)
        if screenshot:
            window.close()
            return 2
    elif review:
        target = task or next((n for n in names if window.store.task_summary(n)["submitted"]), None)
        if target is None and screenshot and names:
            target = names[0]
        if target is not None and not window.open_review(target) and screenshot:
            print(window.statusBar().currentMessage(), file=sys.stderr)
            exit_code = 2
    elif (task or (screenshot and names)) and not window.open_task(task or names[0]) and screenshot:
        print(window.statusBar().currentMessage(), file=sys.stderr)
        exit_code = 2

    waited = [0]

    def take_screenshot() -> None:
        nonlocal exit_code
        if (window.agreements_pending() or window.review.loading) and waited[0] < 150:  # the figures, up to 30 s
            waited[0] += 1
            QtCore.QTimer.singleShot(200, take_screenshot)
            return
        window.activateWindow()
        QtWidgets.QApplication.processEvents()
        target = Path(screenshot).expanduser()  # type: ignore[arg-type]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(target), "PNG"):
            print(f"could not write {target}", file=sys.stderr)
            exit_code = 2
        window.close()
        app.quit()

    if screenshot:
        QtCore.QTimer.singleShot(600, take_screenshot)
    rc = app.exec()
    return exit_code or rc


__all__ = ["ItemPage", "LabelingWindow", "TaskList", "run_labeling"]
