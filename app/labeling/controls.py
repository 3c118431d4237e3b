"""The labeling controls: label buttons with their hotkeys, progress, the model's suggestion, the comment, the
buttons for previous / skip / undo / save and next, the reason dialog (skip, reject) and the instructions panel.

Buttons never take keyboard focus: the keys always reach the item and the labeling page, so a labeler can work
the whole task without the mouse.
"""
from __future__ import annotations

from typing import ClassVar

from PySide6 import QtCore, QtGui, QtWidgets

from app.labeling.image_view import ImageView
from app.labeling.record_view import RecordView
from app.labeling.text_view import TextView, tint
from engine.i18n import N_, tr
from engine.labels.schema import LabelSchema

NO_FOCUS = QtCore.Qt.FocusPolicy.NoFocus
# the reasons most skips have; "Other" takes free text
SKIP_REASONS = (N_("Cannot read it (blurred, cut off, wrong language)"), N_("Not sure which label fits"),
                N_("Does not belong in this task"), N_("Contains an error in the data"))


def _button(text: str, tip: str = "") -> QtWidgets.QPushButton:
    button = QtWidgets.QPushButton(text)
    button.setFocusPolicy(NO_FOCUS)
    button.setMinimumHeight(38)
    if tip:
        button.setToolTip(tip)
    return button


def back_and_title(page: QtWidgets.QWidget) -> tuple[QtWidgets.QPushButton, QtWidgets.QLabel]:
    """The "← Tasks" button (emitting the page's back_requested) and the large title every page starts with."""
    back = QtWidgets.QPushButton(tr("← Tasks"), focusPolicy=QtCore.Qt.FocusPolicy.NoFocus)
    back.clicked.connect(page.back_requested.emit)
    title = QtWidgets.QLabel()
    big = QtGui.QFont(title.font())
    big.setPointSizeF(big.pointSizeF() * 1.3)
    big.setBold(True)
    title.setFont(big)
    return back, title


def item_views(font: QtGui.QFont) -> tuple[RecordView, TextView, ImageView, QtWidgets.QLabel,
                                            QtWidgets.QStackedWidget]:
    """The ways an item is shown (record cards, text, image) and the "nothing left" message, in one stack."""
    record, text, image = RecordView(), TextView(), ImageView()
    done = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter, wordWrap=True)
    done.setFont(font)
    stack = QtWidgets.QStackedWidget()
    for view in (record, text, image, done):
        stack.addWidget(view)
    return record, text, image, done, stack


def panel_browser() -> QtWidgets.QTextBrowser:
    """A read-only text panel of the side column (instructions, an item's history)."""
    browser = QtWidgets.QTextBrowser(openExternalLinks=False)
    browser.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
    browser.setStyleSheet("QTextBrowser{background:#fafbfc;border:1px solid #e1e5eb;border-radius:6px;padding:6px}")
    return browser


def side_column(sections: list[tuple[str, QtWidgets.QWidget, int]], min_width: int,
                max_width: int) -> QtWidgets.QWidget:
    """The right-hand column of a page: (heading, widget, stretch) sections; an empty heading shows none."""
    side = QtWidgets.QWidget()
    side.setMinimumWidth(min_width)
    side.setMaximumWidth(max_width)
    layout = QtWidgets.QVBoxLayout(side)
    layout.setContentsMargins(12, 0, 0, 0)
    for title, widget, stretch in sections:
        if title:
            heading = QtWidgets.QLabel(title)
            heading.setStyleSheet("font-weight:bold;color:#1d2430;margin-top:6px")
            layout.addWidget(heading)
        layout.addWidget(widget, stretch)
    return side


def page_layout(page: QtWidgets.QWidget, top: QtWidgets.QLayout, center: QtWidgets.QWidget,
                side: QtWidgets.QWidget) -> None:
    """Title row above, the item in the middle, the side column on the right."""
    body = QtWidgets.QHBoxLayout()
    body.addWidget(center, 1)
    body.addWidget(side)
    layout = QtWidgets.QVBoxLayout(page)
    layout.setContentsMargins(16, 12, 16, 12)
    layout.addLayout(top)
    layout.addLayout(body, 1)


def hotkey_text(key: str | None) -> str:
    return key.upper() if key else ""


class LabelButtons(QtWidgets.QWidget):
    """One big button per label, coloured, with its hotkey; checkable for classification tasks."""

    picked = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.buttons: dict[str, QtWidgets.QPushButton] = {}

    def set_schema(self, schema: LabelSchema, checkable: bool) -> None:
        for button in self.buttons.values():
            button.deleteLater()
        self.buttons = {}
        for label in schema.labels:
            key = hotkey_text(label.hotkey)
            button = _button(f"{key}   {label.name}" if key else label.name,
                             tr("Press {key}", key=key) if key else "")
            button.setCheckable(checkable)
            font = QtGui.QFont(button.font())
            font.setPointSizeF(font.pointSizeF() * 1.15)
            button.setFont(font)
            light, strong = tint(label.color, 0.22).name(), tint(label.color, 0.6).name()
            button.setStyleSheet(
                f"QPushButton{{text-align:left;padding:6px 12px;border:2px solid {label.color};border-radius:6px;"
                f"background:{light};color:#1d2430}}QPushButton:checked{{background:{strong};font-weight:bold}}"
                f"QPushButton:hover{{background:{strong}}}")
            button.clicked.connect(lambda _c=False, name=label.name: self.picked.emit(name))
            self._layout.addWidget(button)
            self.buttons[label.name] = button

    def set_chosen(self, names: list[str]) -> None:
        for name, button in self.buttons.items():
            button.setChecked(name in names)

    def chosen(self) -> list[str]:
        return [name for name, button in self.buttons.items() if button.isCheckable() and button.isChecked()]


class Progress(QtWidgets.QWidget):
    """"123 of 500 done" and a bar: this labeler's own progress in the task."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QtWidgets.QProgressBar(textVisible=False, maximumHeight=10)
        self.text = QtWidgets.QLabel()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        self.done, self.total = 0, 0

    def set_progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(min(done, total))
        self.text.setText(tr("{done} of {total} done", done=f"{done:,}", total=f"{total:,}"))


class ReasonDialog(QtWidgets.QDialog):
    """Why: one of the common reasons (1-9 pick) or the person's own words; Enter confirms.

    With no common reasons it is a single free-text box; `required=False` lets it be confirmed empty (an optional
    note). Used to skip an item, to send a label back, and to note why a conflict was resolved.
    """

    def __init__(self, title: str, question: str, reasons: tuple[str, ...], ok_text: str,
                 parent: QtWidgets.QWidget | None = None, *, required: bool = True,
                 placeholder: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.reasons, self.required = reasons, required
        layout = QtWidgets.QVBoxLayout(self)
        self.question = QtWidgets.QLabel(question, wordWrap=True)
        layout.addWidget(self.question)
        self.group = QtWidgets.QButtonGroup(self)
        self.choices: list[QtWidgets.QRadioButton] = []
        for i, reason in enumerate(reasons):
            radio = QtWidgets.QRadioButton(f"&{i + 1}  {tr(reason)}")
            self.group.addButton(radio, i)
            self.choices.append(radio)
            layout.addWidget(radio)
        self.other = QtWidgets.QRadioButton(tr("&Other:"))
        self.group.addButton(self.other, len(reasons))
        self.other_text = QtWidgets.QLineEdit(placeholderText=placeholder or tr("Your reason"))
        self.other_text.setMinimumWidth(380)
        self.other_text.textEdited.connect(lambda _t: self.other.setChecked(True))
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.other)
        row.addWidget(self.other_text, 1)
        layout.addLayout(row)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok |
                                                  QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText(ok_text)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        if self.choices:
            self.choices[0].setChecked(True)
        else:  # nothing to choose from: only the text box
            self.other.setChecked(True)
            self.other.setVisible(False)
            self.other_text.setFocus()

    def reason(self) -> str:
        if self.other.isChecked():
            return self.other_text.text().strip()
        index = self.group.checkedId()
        return tr(self.reasons[index]) if 0 <= index < len(self.reasons) else ""

    def _accept(self) -> None:
        if self.required and not self.reason():
            self.other_text.setFocus()
            self.other_text.setPlaceholderText(tr("Write a reason, or pick one above") if self.choices else
                                               tr("Write a reason"))
            return
        self.accept()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        """A digit picks that reason (outside the text box), as the numbers on the choices say."""
        index = event.key() - QtCore.Qt.Key.Key_1
        if not self.other_text.hasFocus() and 0 <= index < len(self.choices) and not event.modifiers() & (
                QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.AltModifier):
            self.choices[index].setChecked(True)
            self.choices[index].setFocus()
            return
        super().keyPressEvent(event)

    def ask_reason(self) -> str | None:
        """Show it; the reason, or None when cancelled (deletes the dialog afterwards)."""
        try:
            return self.reason() if self.exec() == QtWidgets.QDialog.DialogCode.Accepted else None
        finally:
            self.deleteLater()


class SkipDialog(ReasonDialog):
    """Why an item is skipped: one of the common reasons or the labeler's own words (1-4 pick, Enter confirms)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(tr("Skip this item"), tr("Why do you skip it?"), SKIP_REASONS, tr("Skip"), parent)

    @classmethod
    def ask(cls, parent: QtWidgets.QWidget | None) -> str | None:
        return cls(parent).ask_reason()


class Suggestion(QtWidgets.QLabel):
    """The model's pre-label and how sure it was; Enter confirms it as it stands."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel{background:#eaf2ff;border:1px solid #a9c4f5;border-radius:6px;padding:8px;"
                           "color:#173a7a}")
        self.setVisible(False)

    def show_suggestion(self, text: str | None) -> None:
        self.setText(text or "")
        self.setVisible(bool(text))


class Banner(QtWidgets.QLabel):
    """A message above the item: a conflict, a rejected label's reason, a hint."""

    STYLES: ClassVar[dict[str, str]] = {"error": "background:#fdecea;border:1px solid #e6a19a;color:#7a1f16",
                                        "warning": "background:#fff7d6;border:1px solid #e5c86b;color:#3b2f00",
                                        "info": "background:#eef6ee;border:1px solid #a8d0a8;color:#1e4620"}

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.level = ""
        self.setVisible(False)

    def show_message(self, text: str, level: str = "info", strong: bool = False) -> None:
        """`strong`: larger and bold, for what must not be overlooked (a label sent back, a maker-checker refusal)."""
        self.level = level if text else ""
        self.setText(text)
        extra = ""
        if strong:
            size = QtWidgets.QApplication.font().pointSizeF()
            extra = f";font-weight:bold;padding:12px{f';font-size:{size * 1.2:.1f}pt' if size > 0 else ''}"
        self.setStyleSheet(f"QLabel{{{self.STYLES.get(level, self.STYLES['info'])};border-radius:6px;padding:8px"
                           f"{extra}}}")
        self.setVisible(bool(text))


class NavButtons(QtWidgets.QWidget):
    """Previous, Skip, Undo and Save and next, with their keys on them."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.previous = _button(tr("← Previous"), tr("Go back to the previous item (←)"))
        self.skip = _button(tr("Skip… (S)"), tr("Skip this item and say why (S)"))
        self.undo = _button(tr("Undo (Ctrl+Z)"), tr("Undo your last change (Ctrl+Z)"))
        self.save = _button(tr("Save and next  ⏎"), tr("Save this label and go to the next item (Enter or →)"))
        self.save.setStyleSheet("QPushButton{background:#2f6fde;color:white;font-weight:bold;border-radius:6px;"
                                "padding:6px 16px}QPushButton:disabled{background:#9db6e6}")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.previous, self.skip, self.undo):
            layout.addWidget(button)
        layout.addStretch(1)
        layout.addWidget(self.save)


def shortcuts_html(kind: str, skip_key: str | None, comment_key: str | None) -> str:
    """The keys for this kind of task, shown under the instructions."""
    rows = [(tr("1-9, letters"), tr("choose a label")), (tr("Enter or →"), tr("save and go to the next item")),
            (tr("←"), tr("previous item")), (tr("Ctrl+Z"), tr("undo"))]
    if kind == "spans":
        rows[1] = (tr("Enter or Alt+→"), tr("save and go to the next item"))
        rows[2] = (tr("Alt+←"), tr("previous item"))
        rows[1:1] = [(tr("Shift+arrows"), tr("select text (arrows move the cursor)")),
                     (tr("Click a mark, Delete"), tr("remove a mark"))]
    elif kind == "boxes":
        rows[1:1] = [(tr("Drag"), tr("draw a box; drag a box or its corners to change it")),
                     (tr("Delete"), tr("remove the selected box")),
                     (tr("Wheel, +/-, 0"), tr("zoom in, out, fit")),
                     (tr("Space+drag"), tr("move the image"))]
    elif kind == "image":
        rows[1:1] = [(tr("Wheel, +/-, 0"), tr("zoom in, out, fit")), (tr("Drag"), tr("move the image"))]
    if skip_key:
        rows.append((skip_key, tr("skip, with a reason")))
    if comment_key:
        rows.append((comment_key, tr("write a comment (Enter saves)")))
    cells = "".join(f"<tr><td style='padding:2px 10px 2px 0'><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"
