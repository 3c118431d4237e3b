"""The review page: a reviewer (team lead, checker) goes through the labels waiting for review, the items where the
labelers disagree first, one item at a time and keyboard first.

The item is shown read-only with the labeling views (record cards, text with marks, image with boxes) and every
labeler's label beside it; 1-9 picks a labeler (their marks are then the ones drawn). A accepts the picked label,
R sends it back to its labeler with a reason, C resolves a conflict (accept the picked label, send the differing
ones back with "Reviewer chose …'s label"), N or → goes on, ← back. The item's trail (who did what, when) is shown
beside it.

Maker-checker is the store's rule (a reviewer never decides on their own label); the page says so plainly and keeps
going. The store's accept/reject take no version, so before deciding the page checks that the label is still the one
on screen: a label changed meanwhile is never accepted unseen, the reviewer is told who changed it and the queue
reloads.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import html
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.labeling.controls import (
    Banner,
    Progress,
    ReasonDialog,
    Suggestion,
    back_and_title,
    item_views,
    page_layout,
    panel_browser,
    side_column,
)
from app.labeling.text_view import tint
from engine.errors import LedgerflowError
from engine.i18n import N_, tr
from engine.labels.schema import LabelSchema
from engine.labels.store import (
    LabelConflict,
    LabelStore,
    disagreements,
)

Key = QtCore.Qt.Key
NO_FOCUS = QtCore.Qt.FocusPolicy.NoFocus
_CLASSIFY = ("record", "text", "image")
# the reasons most rejections have; "Other" takes free text
REJECT_REASONS = (N_("The label does not follow the instructions"),
                  N_("Marks or boxes are missing or in the wrong place"),
                  N_("The data says otherwise: look at the fields again"),
                  N_("Please explain your choice in a comment"))
RESOLVED_REASON = N_("Reviewer chose {labeler}'s label")
_STATUS = {"submitted": (N_("waiting for review"), "#2f6fde"), "accepted": (N_("accepted"), "#2e8540"),
           "rejected": (N_("sent back"), "#b3261e")}
_EVENTS_PAGE = 1000
_TRAIL_MAX = 40


def _percent(confidence: float | None) -> str:
    return "" if confidence is None else tr(" ({percent}% sure)", percent=round(100 * confidence))


def when_text(at: str | None) -> str:
    """A stored UTC time as the reviewer's local 'YYYY-MM-DD HH:MM'."""
    if not at:
        return ""
    try:
        return dt.datetime.fromisoformat(at).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return at


def value_text(kind: str, value: dict[str, Any] | None) -> str:
    """A label in a few words: 'approve', '3 marks: amount ×2, person', '2 boxes: stamp, signature'."""
    if value is None:
        return tr("no label")
    if kind in _CLASSIFY:
        return ", ".join(value.get("labels", [])) or tr("no label")
    marks = value.get("spans" if kind == "spans" else "boxes", [])
    counts = Counter(m["label"] for m in marks)
    parts = ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in sorted(counts.items()))
    if kind == "spans":
        return tr("{count} marks: {labels}", count=len(marks), labels=parts) if marks else tr("nothing marked")
    return tr("{count} boxes: {labels}", count=len(marks), labels=parts) if marks else tr("no boxes")


def _piece(text: str, span: dict[str, Any], limit: int = 40) -> str:
    piece = text[span["start"]:span["end"]].replace("\n", " ")
    return piece if len(piece) <= limit else piece[:limit - 1] + "…"


class LabelerCard(QtWidgets.QFrame):
    """One labeler's label of the item: number key, name, status, the label, their comment. Click picks it."""

    clicked = QtCore.Signal()

    def __init__(self, number: int, ann: dict[str, Any], kind: str, colors: dict[str, str], own: bool,
                 text: str | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.ann = ann
        self.setObjectName("labelerCard")
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        status, color = _STATUS.get(ann["status"], (ann["status"], "#5b6575"))
        head = (f"<span style='background:#1d2430;color:white;padding:0 6px'>&nbsp;{number}&nbsp;</span>&nbsp; "
                f"<b>{html.escape(ann['labeler'])}</b> &nbsp;<span style='color:{color}'>{html.escape(tr(status))}"
                f"</span>")
        if own:
            head += f" &nbsp;<span style='color:#7a1f16'>{html.escape(tr('(your own label)'))}</span>"
        self.head = QtWidgets.QLabel(head)
        self.value = QtWidgets.QLabel()
        self.value.setWordWrap(True)
        font = QtGui.QFont(self.value.font())
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.value.setFont(font)
        value = ann.get("value")
        if kind in _CLASSIFY and value and value.get("labels"):
            self.value.setText(" ".join(
                f"<span style='background:{tint(colors.get(name, '#888888'), 0.35).name()};"
                f"border:1px solid {colors.get(name, '#888888')}'>&nbsp;{html.escape(name)}&nbsp;</span>"
                for name in value["labels"]))
        else:
            self.value.setText(html.escape(value_text(kind, value)))
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(3)
        layout.addWidget(self.head)
        layout.addWidget(self.value)
        self.marks = QtWidgets.QLabel(wordWrap=True)  # spans: the marked words themselves, to compare at a glance
        if kind == "spans" and text is not None and value and value.get("spans"):
            self.marks.setText(" ".join(
                f"<span style='background:{tint(colors.get(m['label'], '#888888'), 0.35).name()}'>"
                f"&nbsp;{html.escape(_piece(text, m))}&nbsp;</span><span style='color:#5b6575'>&nbsp;"
                f"{html.escape(m['label'])}</span>&nbsp;&nbsp;" for m in value["spans"]))
        self.marks.setVisible(bool(self.marks.text()))
        layout.addWidget(self.marks)
        self.comment = QtWidgets.QLabel(wordWrap=True)
        self.comment.setStyleSheet("color:#3d4654;font-style:italic")
        if ann.get("comment"):
            self.comment.setText(tr("Comment: “{comment}”", comment=ann["comment"]))
        self.comment.setVisible(bool(ann.get("comment")))
        layout.addWidget(self.comment)
        self.set_selected(False)

    def set_selected(self, on: bool) -> None:
        border = "3px solid #2f6fde" if on else "1px solid #d9dee7"
        background = "#eef4ff" if on else "#ffffff"
        self.setStyleSheet(f"#labelerCard{{border:{border};border-radius:8px;background:{background}}}")

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        self.clicked.emit()
        super().mousePressEvent(event)


class ReviewButtons(QtWidgets.QWidget):
    """Previous, Accept, Reject, Resolve conflict and Next, with their keys on them."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)

        def button(text: str, tip: str, style: str = "") -> QtWidgets.QPushButton:
            b = QtWidgets.QPushButton(text, focusPolicy=NO_FOCUS, toolTip=tip)
            b.setMinimumHeight(40)
            if style:
                b.setStyleSheet(style)
            return b

        self.previous = button(tr("← Previous"), tr("The previous item in the queue (←)"))
        self.accept = button(tr("Accept (A)"), tr("Accept the chosen labeler's label (A)"),
                             "QPushButton{background:#2e8540;color:white;font-weight:bold;border-radius:6px;"
                             "padding:6px 16px}QPushButton:disabled{background:#a7cdb1}")
        self.reject = button(tr("Reject… (R)"), tr("Send the chosen label back to its labeler, with a reason (R)"),
                             "QPushButton{background:#b3261e;color:white;font-weight:bold;border-radius:6px;"
                             "padding:6px 16px}QPushButton:disabled{background:#e2a9a5}")
        self.resolve = button(tr("Resolve conflict… (C)"), tr("Accept the chosen label and send the differing "
                                                               "ones back (C)"))
        self.next = button(tr("Next  (N, →)"), tr("The next item in the queue (N or →)"))
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.previous)
        layout.addStretch(1)
        for b in (self.accept, self.reject, self.resolve):
            layout.addWidget(b)
        layout.addStretch(1)
        layout.addWidget(self.next)


def review_keys_html() -> str:
    rows = [(tr("1-9"), tr("choose a labeler (their marks are shown)")), (tr("A"), tr("accept the chosen label")),
            (tr("R"), tr("reject it, with a reason")), (tr("C"), tr("resolve a conflict: keep the chosen label")),
            (tr("N or →"), tr("next item")), (tr("←"), tr("previous item"))]
    cells = "".join(f"<tr><td style='padding:2px 10px 2px 0'><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


class _QueueRelay(QtCore.QObject):
    """Carries a review queue read on a worker thread back to the GUI thread: (generation, queue or reason)."""

    done = QtCore.Signal(int, object)


class ReviewPage(QtWidgets.QWidget):
    """The review queue of one task, one item at a time, for one reviewer."""

    back_requested = QtCore.Signal()
    agreement_requested = QtCore.Signal(str)

    def __init__(self, reviewer: str, base_dir: Path, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.reviewer, self.base_dir = reviewer, base_dir
        self.store: LabelStore | None = None
        self.task = ""
        self.schema: LabelSchema | None = None
        self.kind = ""
        self.items_total = 0
        self.queue: list[dict[str, Any]] = []
        self.index = -1
        self.chosen = 0  # which labeler's card is picked
        self.cards: list[LabelerCard] = []
        self._loading = self._loaded = 0  # generations of the queue asked for and received
        self._relay = _QueueRelay(self)
        self._relay.done.connect(self._on_queue, QtCore.Qt.ConnectionType.QueuedConnection)
        self._events: dict[int, list[dict[str, Any]]] = {}
        self._last_event = 0
        self._image_path: str | None = None  # the scan on screen: same scan, other labeler -> keep the zoom
        # replaced by tests and unattended runs: how to ask for a rejection reason and a resolution note
        self.ask_reject_reason: Callable[[str], str | None] = self._ask_reject_reason
        self.ask_resolve_note: Callable[[str], str | None] = self._ask_resolve_note
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self._build()

    # ---- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.back, self.title = back_and_title(self)
        self.agreement_button = QtWidgets.QPushButton(focusPolicy=NO_FOCUS)
        self.agreement_button.setToolTip(tr("Agreement per label and per labeler"))
        self.agreement_button.clicked.connect(lambda: self.agreement_requested.emit(self.task))
        self.progress = Progress()
        self.progress.setMinimumWidth(260)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.back)
        top.addSpacing(12)
        top.addWidget(self.title, 1)
        top.addWidget(self.agreement_button)
        top.addSpacing(12)
        top.addWidget(self.progress)

        self.banner = Banner()
        self.where = QtWidgets.QLabel()
        self.where.setStyleSheet("color:#5b6575")
        self.badge = QtWidgets.QLabel()
        where_row = QtWidgets.QHBoxLayout()
        where_row.addWidget(self.where, 1)
        where_row.addWidget(self.badge)
        self.showing = QtWidgets.QLabel()  # spans and boxes: whose marks are drawn on the item
        self.showing.setStyleSheet("QLabel{color:#173a7a;font-weight:bold}")
        (self.record_view, self.text_view, self.image_view, self.done_label,
         self.views) = item_views(self.title.font())
        self.buttons = ReviewButtons()
        self.buttons.previous.clicked.connect(self.previous)
        self.buttons.next.clicked.connect(self.next)
        self.buttons.accept.clicked.connect(self.accept)
        self.buttons.reject.clicked.connect(self.reject)
        self.buttons.resolve.clicked.connect(self.resolve)
        center = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.banner)
        cl.addLayout(where_row)
        cl.addWidget(self.showing)
        cl.addWidget(self.views, 1)
        cl.addWidget(self.buttons)

        self.cards_box = QtWidgets.QWidget()
        self.cards_layout = QtWidgets.QVBoxLayout(self.cards_box)
        self.cards_layout.setContentsMargins(0, 0, 0, 0)
        self.cards_layout.setSpacing(6)
        self.suggestion = Suggestion()
        self.trail = panel_browser()
        self.keys = QtWidgets.QLabel(review_keys_html(), wordWrap=True)
        self.keys.setStyleSheet("color:#4a5361")
        side = side_column([(tr("Labels (1-9 to choose)"), self.cards_box, 0), ("", self.suggestion, 0),
                            (tr("History of this item"), self.trail, 1), (tr("Keys"), self.keys, 0)], 340, 440)
        page_layout(self, top, center, side)

    # ---- opening a task ----------------------------------------------------------------------------
    def open_task(self, store: LabelStore, task: str, agreement: str = "") -> None:
        """Load the task's review queue (disagreeing items first) and show its first item; raises LabelStoreError."""
        self.store, self.task = store, task
        self.schema = store.schema(task)
        self.kind = self.schema.kind
        self.title.setText(tr("Review: {task}", task=task))
        self.agreement_button.setText(tr("Agreement: {headline}", headline=agreement) if agreement else
                                      tr("Agreement…"))
        self._events, self._last_event, self._image_path = {}, 0, None
        self.banner.show_message("")
        self.queue, self.index = [], -1
        self._update_progress()
        self._loading += 1
        generation = self._loading
        self.done_label.setText(tr("Reading the labels waiting for review…"))
        self.views.setCurrentWidget(self.done_label)
        for widget in (self.badge, self.showing):
            widget.setVisible(False)
        self._set_enabled(False)

        def work() -> None:  # at 100,000 waiting labels the queue takes seconds: never on the GUI thread
            try:
                result: Any = store.review_queue(task, payloads=False)
            except Exception as exc:  # noqa: BLE001 - shown on the page
                result = str(exc) or type(exc).__name__
            with contextlib.suppress(RuntimeError):  # the page was closed meanwhile
                self._relay.done.emit(generation, result)

        threading.Thread(target=work, name="review-queue", daemon=True).start()

    @property
    def loading(self) -> bool:
        """True until the queue opened last has been read (tests and screenshots wait for it)."""
        return self._loaded != self._loading

    def _on_queue(self, generation: int, result: Any) -> None:
        if generation != self._loading:  # another task was opened since
            return
        self._loaded = generation
        if isinstance(result, str):
            self._show_done()
            self.done_label.setText(tr("The review queue could not be read: {reason}", reason=result))
            return
        self.queue = result
        if self.queue:
            self._show(0)
        else:
            self._show_done()

    @property
    def colors(self) -> dict[str, str]:
        return {label.name: label.color for label in self.schema.labels} if self.schema else {}

    @property
    def entry(self) -> dict[str, Any] | None:
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def selected(self) -> dict[str, Any] | None:
        entry = self.entry
        if entry is None or not 0 <= self.chosen < len(entry["annotations"]):
            return None
        return entry["annotations"][self.chosen]

    def _update_progress(self) -> None:
        assert self.store is not None
        summary = self.store.task_summary(self.task)
        self.items_total = int(summary["items"])
        reviewed = int(summary["accepted"]) + int(summary["rejected"])
        total = reviewed + int(summary["submitted"])
        self.progress.set_progress(reviewed, total)
        self.progress.text.setText(tr("{done} of {total} labels reviewed", done=f"{reviewed:,}",
                                      total=f"{total:,}"))

    # ---- showing an item -------------------------------------------------------------------------
    def _show(self, index: int, chosen: int | None = None) -> None:
        self.index = index
        entry = self.queue[index]
        if "payload" not in entry:  # the queue is read without payloads; each item's is read as it is shown
            assert self.store is not None
            item = self.store.item(self.task, entry["position"])
            entry.update(payload=item["payload"], prelabel=item["prelabel"], confidence=item["confidence"])
        anns = entry["annotations"]
        if chosen is None:  # the first label still waiting that this reviewer may decide on
            waiting = [i for i, a in enumerate(anns) if a["status"] == "submitted" and a["labeler"] != self.reviewer]
            chosen = waiting[0] if waiting else 0
        self.chosen = max(0, min(chosen, len(anns) - 1))
        where = tr("Item {number} of {total}", number=f"{entry['position'] + 1:,}", total=f"{self.items_total:,}")
        where += "  ·  " + tr("In the review queue: {index} of {count}", index=index + 1, count=len(self.queue))
        self.where.setText(where)
        self._show_badge(entry)
        self._fill_cards(entry)
        self._show_value()
        self._show_suggestion(entry)
        self._show_trail(entry)
        self._set_enabled(True)
        self.focus_item()

    def _show_badge(self, entry: dict[str, Any]) -> None:
        labeled = [a for a in entry["annotations"] if a["status"] in ("submitted", "accepted")]
        if entry["disagreement"] > 0:
            text, style = (tr("Labelers disagree · disagreement {score}", score=f"{entry['disagreement']:.2f}"),
                           "background:#fdecea;border:1px solid #e6a19a;color:#7a1f16")
            tip = tr("0 = all labelers gave the same label, 1 = no two labelers agree at all.")
        elif len(labeled) >= 2:
            text, style, tip = tr("Labelers agree"), "background:#eef6ee;border:1px solid #a8d0a8;color:#1e4620", ""
        else:
            text, style, tip = tr("One label"), "background:#f1f3f6;border:1px solid #d0d5dd;color:#3d4654", ""
        self.badge.setText(text)
        self.badge.setToolTip(tip)
        self.badge.setStyleSheet(f"QLabel{{{style};border-radius:10px;padding:4px 12px;font-weight:bold}}")
        self.badge.setVisible(True)

    def _fill_cards(self, entry: dict[str, Any]) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        for i, ann in enumerate(entry["annotations"]):
            card = LabelerCard(i + 1, ann, self.kind, self.colors, ann["labeler"] == self.reviewer,
                               entry["payload"].get("text"))
            card.clicked.connect(lambda i=i: self.choose(i))
            self.cards_layout.addWidget(card)
            self.cards.append(card)
        for i, card in enumerate(self.cards):
            card.set_selected(i == self.chosen)

    def _show_value(self) -> None:
        """The item, with the chosen labeler's marks for spans and boxes (classification labels are on the cards)."""
        entry = self.entry
        assert entry is not None and self.schema is not None
        ann = self.selected() or {}
        value = ann.get("value") or {}
        payload = entry["payload"]
        if self.kind == "record":
            self.record_view.set_fields(payload["fields"])
            self.views.setCurrentWidget(self.record_view)
        elif self.kind in ("text", "spans"):
            self.text_view.set_text(payload["text"], value.get("spans") if self.kind == "spans" else None,
                                    self.colors, False)
            self.views.setCurrentWidget(self.text_view)
        else:
            path = Path(payload["image"])
            path = path if path.is_absolute() else self.base_dir / path
            if not self.image_view.missing and self._image_path == str(path):
                self.image_view.set_boxes(value.get("boxes") or [])  # same scan: keep the zoom, swap the boxes
            else:
                self.image_view.set_image(str(path), value.get("boxes") if self.kind == "boxes" else None,
                                          self.colors, "", False)
                self._image_path = str(path)
            self.views.setCurrentWidget(self.image_view)
        for i, card in enumerate(self.cards):
            card.set_selected(i == self.chosen)
        count = len(entry["annotations"])
        if self.kind in ("spans", "boxes") and ann:
            text = tr("Shown: the marks of {labeler} ({number}).", labeler=ann["labeler"], number=self.chosen + 1)
            if count > 1:
                text += " " + tr("Press 1 to {count} to see another labeler's.", count=count)
            self.showing.setText(text)
        self.showing.setVisible(self.kind in ("spans", "boxes") and bool(ann))

    def _show_suggestion(self, entry: dict[str, Any]) -> None:
        pre = entry.get("prelabel")
        if pre is None:
            self.suggestion.show_suggestion(None)
            return
        self.suggestion.show_suggestion(tr("The model suggested: {label}{sure}",
                                           label=value_text(self.kind, pre), sure=_percent(entry.get("confidence"))))

    def _show_done(self) -> None:
        self.index = len(self.queue)
        self.done_label.setText(tr("Nothing waits for review in “{task}”.", task=self.task) if not self.queue else
                                tr("You reached the end of the review queue of “{task}”.\n\nPress ← to go back, "
                                   "or ← Tasks.", task=self.task))
        self.views.setCurrentWidget(self.done_label)
        self.where.setText("")
        self.badge.setVisible(False)
        self.showing.setVisible(False)
        self.suggestion.show_suggestion(None)
        self._fill_cards({"annotations": []})
        self.trail.setHtml("")
        self._set_enabled(False)
        self.setFocus()

    def _set_enabled(self, on: bool) -> None:
        for b in (self.buttons.accept, self.buttons.reject, self.buttons.next):
            b.setEnabled(on)
        self.buttons.resolve.setEnabled(on and (self.entry or {}).get("disagreement", 0) > 0)
        self.buttons.previous.setEnabled(self.index > 0)

    def focus_item(self) -> None:
        view = self.views.currentWidget()
        (self.text_view.editor if view is self.text_view else view).setFocus()

    # ---- the trail ---------------------------------------------------------------------------------
    def _load_events(self) -> None:
        """New events of the task since the last look (append-only, so paging on from the last id is enough)."""
        assert self.store is not None
        while True:
            page = self.store.events(self.task, after_id=self._last_event, limit=_EVENTS_PAGE)
            for evt in page:
                if evt["item_id"] is not None:
                    self._events.setdefault(evt["item_id"], []).append(evt)
            if page:
                self._last_event = page[-1]["id"]
            if len(page) < _EVENTS_PAGE:
                return

    def item_events(self, item_id: int) -> list[dict[str, Any]]:
        """The item's trail, newest first."""
        self._load_events()
        return list(reversed(self._events.get(item_id, [])))

    def _show_trail(self, entry: dict[str, Any]) -> None:
        whose = {a["annotation_id"]: a["labeler"] for a in entry["annotations"]}
        lines = []
        for evt in self.item_events(entry["item_id"])[:_TRAIL_MAX]:
            lines.append(f"<p style='margin:0 0 6px 0'><span style='color:#5b6575'>{html.escape(when_text(evt['at']))}"
                         f"</span><br>{html.escape(self.event_text(evt, whose.get(evt['annotation_id'], '?')))}</p>")
        self.trail.setHtml("".join(lines) or html.escape(tr("Nothing recorded yet.")))

    def event_text(self, evt: dict[str, Any], labeler: str) -> str:
        after = evt.get("after") or {}
        who, what = evt["who"], evt["what"]
        if what == "save":
            return tr("{who} labeled it: {label}", who=who, label=value_text(self.kind, after.get("value")))
        if what == "skip":
            return tr("{who} skipped it: {reason}", who=who, reason=after.get("skip_reason") or "—")
        if what == "undo":
            return tr("{who} undid a change", who=who)
        if what == "accept":
            return tr("{who} accepted {labeler}'s label", who=who, labeler=labeler)
        if what == "reject":
            return tr("{who} sent {labeler}'s label back: {reason}", who=who, labeler=labeler,
                      reason=after.get("reason") or "—")
        return f"{who}: {what}"

    # ---- choosing and moving -------------------------------------------------------------------------
    def choose(self, index: int) -> None:
        entry = self.entry
        if entry is None:
            return
        if not 0 <= index < len(entry["annotations"]):
            self.banner.show_message(tr("This item has {count} labels: press 1 to {count}.",
                                        count=len(entry["annotations"])), "info")
            return
        self.chosen = index
        self._show_value()
        self.focus_item()

    def next(self) -> None:
        if self.index + 1 < len(self.queue):
            self.banner.show_message("")
            self._show(self.index + 1)
        elif self.queue:
            self._show_done()

    def previous(self) -> None:
        if self.index > 0:
            self.banner.show_message("")
            self._show(min(self.index, len(self.queue)) - 1)
        else:
            self.banner.show_message(tr("This is the first item in the queue."), "info")

    # ---- decisions -----------------------------------------------------------------------------------
    def _own(self, ann: dict[str, Any]) -> str:
        """The store's maker-checker message (same words), for checks made before a dialog opens."""
        assert self.entry is not None
        return tr("Maker-checker: {reviewer} made this label (item {position} of task '{task}') and cannot review "
                  "it; another reviewer must.", reviewer=self.reviewer, position=self.entry["position"],
                  task=self.task)

    def _refused(self, message: str) -> None:
        self.banner.show_message(message, "error", strong=True)
        self.focus_item()

    def _still_current(self, anns: list[dict[str, Any]]) -> bool:
        """False (and the queue reloaded) when one of these labels changed since it was shown."""
        assert self.store is not None and self.entry is not None
        for ann in anns:
            now = self.store.item(self.task, self.entry["position"], ann["labeler"])["annotation"]
            if now is None or now["version"] != ann["version"]:
                self._conflict(tr("{labeler}'s label changed since it was shown: {who} changed it at {when} (now "
                                  "'{status}'). Nothing was decided; the queue has been reloaded, look again.",
                                  labeler=ann["labeler"], who=(now or {}).get("updated_by", "?"),
                                  when=when_text((now or {}).get("updated_at")), status=(now or {}).get("status")))
                return False
        return True

    def accept(self) -> bool:
        ann = self.selected()
        if ann is None or self.store is None:
            return False
        if not self._still_current([ann]):
            return False
        try:
            self.store.accept(ann["annotation_id"], self.reviewer, expected_version=ann["version"])
        except LabelConflict as exc:
            self._conflict(str(exc))
            return False
        except LedgerflowError as exc:
            self._refused(str(exc))
            return False
        self._decided(tr("Accepted {labeler}'s label.", labeler=ann["labeler"]))
        return True

    def reject(self) -> bool:
        ann = self.selected()
        if ann is None or self.store is None:
            return False
        if ann["labeler"] == self.reviewer:
            self._refused(self._own(ann))
            return False
        if ann["status"] not in ("submitted", "accepted"):
            self._refused(tr("{labeler}'s label is already sent back.", labeler=ann["labeler"]))
            return False
        reason = (self.ask_reject_reason(ann["labeler"]) or "").strip()
        self._after_dialog()
        if not reason or not self._still_current([ann]):
            return False
        try:
            self.store.reject(ann["annotation_id"], self.reviewer, reason, expected_version=ann["version"])
        except LabelConflict as exc:
            self._conflict(str(exc))
            return False
        except LedgerflowError as exc:
            self._refused(str(exc))
            return False
        self._decided(tr("Sent {labeler}'s label back: {reason}", labeler=ann["labeler"], reason=reason))
        return True

    def resolve(self) -> bool:
        """Keep the chosen label: accept it (and the labels that agree with it), send the differing ones back."""
        entry, chosen, store = self.entry, self.selected(), self.store
        if entry is None or chosen is None or store is None or self.schema is None:
            return False
        if chosen["value"] is None or chosen["status"] not in ("submitted", "accepted"):
            self._refused(tr("Choose a label that is not sent back (1-9), then resolve."))
            return False
        labeled = [a for a in entry["annotations"] if a["status"] in ("submitted", "accepted") and a["value"]]
        differing = disagreements(self.schema, [(a["annotation_id"], a["labeler"], a["value"]) for a in labeled]
                                  + [(a["annotation_id"], "\x00chosen", chosen["value"]) for a in labeled])
        agree = [a for a in labeled if a["annotation_id"] not in differing]
        send_back = [a for a in labeled if a["annotation_id"] in differing]
        if not send_back:
            self._refused(tr("The labelers agree on this item: there is no conflict to resolve. Accept the labels "
                             "(A)."))
            return False
        mine = [a for a in agree + send_back if a["labeler"] == self.reviewer]
        if mine:
            self._refused(self._own(mine[0]))
            return False
        note = self.ask_resolve_note(chosen["labeler"])
        self._after_dialog()
        if note is None or not self._still_current(agree + send_back):
            return False
        reason = tr(RESOLVED_REASON, labeler=chosen["labeler"])
        if note.strip():
            reason += " — " + note.strip()
        try:
            for ann in agree:
                if ann["status"] == "submitted":
                    store.accept(ann["annotation_id"], self.reviewer, note.strip() or None,
                                 expected_version=ann["version"])
            for ann in send_back:
                store.reject(ann["annotation_id"], self.reviewer, reason, expected_version=ann["version"])
        except LabelConflict as exc:
            self._conflict(str(exc))
            return False
        except LedgerflowError as exc:
            self._refused(str(exc))
            self._refresh_entry()
            return False
        self._decided(tr("Conflict resolved: kept {labeler}'s label, sent {count} back.", labeler=chosen["labeler"],
                         count=len(send_back)))
        return True

    def _refresh_entry(self) -> dict[str, Any]:
        """Re-read the current item's labels (one indexed read per labeler, not the whole queue)."""
        assert self.store is not None and self.entry is not None
        entry = self.entry
        fresh = []
        for ann in entry["annotations"]:
            now = self.store.item(self.task, entry["position"], ann["labeler"])["annotation"]
            fresh.append(now if now is not None else ann)
        entry["annotations"] = fresh
        return entry

    def _decided(self, message: str) -> None:
        """After a decision: the next label of this item still waiting, else the next item."""
        entry = self._refresh_entry()
        self._update_progress()
        self.banner.show_message(message, "info")
        waiting = [i for i, a in enumerate(entry["annotations"])
                   if a["status"] == "submitted" and a["labeler"] != self.reviewer]
        if waiting:
            self._show(self.index, waiting[0])
        elif self.index + 1 < len(self.queue):
            self._show(self.index + 1)
        else:
            self._show_done()
            self.banner.show_message(message, "info")

    def _conflict(self, message: str) -> None:
        """A label changed meanwhile: say who and when, reload the queue, stay on the same item where possible."""
        assert self.store is not None
        item_id = (self.entry or {}).get("item_id")
        self.queue = self.store.review_queue(self.task, payloads=False)
        self._update_progress()
        ids = [e["item_id"] for e in self.queue]
        if item_id in ids:
            self._show(ids.index(item_id))
        elif self.queue:
            self._show(min(max(self.index, 0), len(self.queue) - 1))
        else:
            self._show_done()
        self.banner.show_message(message, "error", strong=True)
        if self.isVisible() and QtWidgets.QApplication.platformName() != "offscreen":
            QtWidgets.QMessageBox.warning(self, tr("Not decided"), message)

    # ---- dialogs -------------------------------------------------------------------------------------
    def _after_dialog(self) -> None:
        """Keys go back to the item once a dialog closes (the dialog's window may still count as active)."""
        self.window().activateWindow()
        self.focus_item()

    def _ask_reject_reason(self, labeler: str) -> str | None:
        return ReasonDialog(tr("Send the label back"), tr("Why do you send {labeler}'s label back? They will see "
                                                           "your reason.", labeler=labeler),
                            REJECT_REASONS, tr("Send back"), self).ask_reason()

    def _ask_resolve_note(self, labeler: str) -> str | None:
        return ReasonDialog(tr("Resolve the conflict"),
                            tr("Keep {labeler}'s label? The labels that differ go back to their labelers with the "
                               "reason “{reason}”. Add a note for them (optional):", labeler=labeler,
                               reason=tr(RESOLVED_REASON, labeler=labeler)),
                            (), tr("Resolve"), self, required=False, placeholder=tr("Note (optional)")).ask_reason()

    # ---- keys ----------------------------------------------------------------------------------------
    def handle_key(self, event: QtGui.QKeyEvent) -> bool:
        key, mods = event.key(), event.modifiers() & ~QtCore.Qt.KeyboardModifier.KeypadModifier
        plain = mods in (QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.KeyboardModifier.ShiftModifier)
        if key == Key.Key_Right and plain or key == Key.Key_N and plain:
            self.next()
        elif key == Key.Key_Left and plain:
            self.previous()
        elif not plain or self.entry is None:
            return False
        elif Key.Key_1 <= key <= Key.Key_9:
            self.choose(key - Key.Key_1)
        elif key == Key.Key_A:
            self.accept()
        elif key == Key.Key_R:
            self.reject()
        elif key == Key.Key_C:
            self.resolve()
        else:
            return False
        return True

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if not self.handle_key(event):
            super().keyPressEvent(event)


__all__ = ["REJECT_REASONS", "RESOLVED_REASON", "ReviewPage", "value_text"]
