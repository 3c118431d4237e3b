"""The properties panel: an editor generated from the selected node's pydantic settings model.

Node types declare their settings once (types, constraints, titles, widget hints) and the panel derives its widgets
from that, so a plugin gets a usable editor without writing Qt code. Every edit becomes one undoable command handed
to `push` (the panel never mutates the graph), and the graph's own validation is shown inline under each field, so
the user sees exactly what a run would refuse.
"""
from __future__ import annotations

import csv
import json
import logging
import types
import typing
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Union

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python
from PySide6 import QtCore, QtGui, QtWidgets

from engine.commands import Command, SetSettings, UpdateNode
from engine.errors import LedgerflowError
from engine.graph import Graph, NodeInstance
from engine.i18n import tr
from engine.sdk import Node

if typing.TYPE_CHECKING:
    from app.preview import PreviewDialog

log = logging.getLogger("ledgerflow.app.properties")

Kind = Literal["choice", "bool", "int", "float", "text", "file", "save-file", "folder", "column", "choices",
               "strings", "json", "multiline", "secret", "label-schema"]
Commit = Callable[[Any], None]
Fail = Callable[[str], None]
ProjectDir = Callable[[], "Path | None"]

_INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
_FLOAT_LIMIT = 1e9  # wide enough for any setting, narrow enough for a sensible spin box width
_DECIMALS = 4

_STYLE = """
QLabel[role="error"] { color: #c62828; }
QLabel#issues { background: #fdecea; color: #8a1c1c; border: 1px solid #f1aeb5; border-radius: 3px; padding: 6px; }
QLabel#placeholder { background: #fff4e5; color: #663c00; border: 1px solid #ffcc80; border-radius: 3px;
                     padding: 6px; }
QLabel#node-type { font-weight: bold; }
*[error="true"] { border: 1px solid #c62828; }
"""


# --------------------------------------------------------------------------------------------- field description

@dataclass(frozen=True)
class FieldSpec:
    """What the panel needs to know about one settings field, read once from its pydantic FieldInfo."""

    name: str
    kind: Kind
    title: str
    tooltip: str
    optional: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    file_filter: str = ""
    port: str = ""  # column pickers: the input port whose table lists the columns ("" = the first connected)
    container: type | None = None  # list/dict for JSON editors: what an empty text stands for


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """(`X`, True) for `X | None`; unions of several types stay whole (they get a JSON editor)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) < len(args)
        return annotation, len(rest) < len(args)
    return annotation, False


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    """Numeric bounds from annotated_types constraints (Ge/Gt/Le/Lt, or an Interval carrying several)."""
    out: dict[str, Any] = {}
    for m in metadata:
        for attr, key, exclusive in (("ge", "minimum", False), ("gt", "minimum", True),
                                     ("le", "maximum", False), ("lt", "maximum", True)):
            bound = getattr(m, attr, None)
            if bound is not None:
                out[key] = float(bound)
                out["min_exclusive" if key == "minimum" else "max_exclusive"] = exclusive
    return out


def describe_field(name: str, info: FieldInfo) -> FieldSpec:
    """Pick the editor kind for a field from its annotation, constraints and `json_schema_extra` hints."""
    annotation, optional = _strip_optional(info.annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    widget = extra.get("widget")
    base: dict[str, Any] = {
        "name": name,
        "title": tr(info.title) if info.title else name,
        "tooltip": tr(info.description) if info.description else "",
        "optional": optional,
    }
    if widget == "label-schema":  # a list of labels (name, colour, hotkey): app/label_schema_editor.py
        return FieldSpec(kind="label-schema", **base)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return FieldSpec(kind="choice", choices=args, **base)
    if annotation is bool:
        return FieldSpec(kind="bool", **base)
    if annotation in (int, float):
        return FieldSpec(kind="int" if annotation is int else "float", **_bounds(info.metadata), **base)
    if annotation is str:
        kind = widget if widget in ("file", "save-file", "folder", "column", "multiline", "secret") else "text"
        return FieldSpec(kind=kind, file_filter=str(extra.get("filter", "")), port=str(extra.get("port", "")), **base)
    if origin is list and len(args) == 1 and typing.get_origin(args[0]) is Literal:
        return FieldSpec(kind="choices", choices=typing.get_args(args[0]), **base)
    if origin is list and args == (str,):
        return FieldSpec(kind="strings", **base)
    return FieldSpec(kind="json", container=origin if origin in (list, dict) else None, **base)


# --------------------------------------------------------------------------------------------- small Qt helpers

@contextmanager
def _blocked(*widgets: QtCore.QObject | None) -> Iterator[None]:
    """Programmatic updates must not look like user edits (they would push commands)."""
    saved = [(w, w.blockSignals(True)) for w in widgets if w is not None]
    try:
        yield
    finally:
        for w, before in saved:
            w.blockSignals(before)


def _mark(widget: QtWidgets.QWidget, error: bool) -> None:
    """Toggle the red border (a dynamic property the panel's style sheet matches; re-polish to apply it)."""
    if bool(widget.property("error")) == error:
        return
    widget.setProperty("error", error)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def _hbox(*widgets: QtWidgets.QWidget) -> QtWidgets.QWidget:
    box = QtWidgets.QWidget()
    layout = QtWidgets.QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w)
    layout.setStretch(0, 1)
    return box


class _WheelGuard(QtCore.QObject):
    """Scrolling the panel must not change (and push a command for) every spin box or combo under the pointer."""

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QtCore.QEvent.Type.Wheel and isinstance(obj, QtWidgets.QWidget) and not obj.hasFocus():
            event.ignore()  # ignored + filtered: Qt hands the wheel to the parent, so the scroll area scrolls
            return True
        return False


def format_string_list(values: list[str]) -> str:
    """Comma-separated, quoting items that are empty or contain a comma or quote (null markers include '')."""
    def one(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if (not v or "," in v or '"' in v) else v

    return ", ".join(one(str(v)) for v in values)


def parse_string_list(text: str) -> list[str]:
    """Inverse of `format_string_list`; an empty text is the empty list."""
    if not text.strip():
        return []
    return [item.strip() for item in next(csv.reader([text], skipinitialspace=True))]


def project_relative(path: str, project: Path | None) -> str:
    """Paths inside the project folder are stored relative to it, so the project can be moved or shared."""
    if project is None:
        return path
    try:
        return Path(path).resolve().relative_to(Path(project).resolve()).as_posix()
    except (ValueError, OSError):
        return path


# --------------------------------------------------------------------------------------------- field editors

class FieldEditor(ABC):
    """Binds one settings field to widgets: `load` shows a stored JSON value, user edits call `commit`.

    `input` is the widget that takes focus, gets the red border and is what `PropertiesPanel.editor` returns;
    `widget` is what goes into the form row (the input plus any buttons).
    """

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        self.spec = spec
        self._commit = commit
        self._fail = fail
        self.input: QtWidgets.QWidget = QtWidgets.QWidget()
        self.widget: QtWidgets.QWidget = self.input

    @abstractmethod
    def load(self, value: Any) -> None:
        """Show a stored value without emitting the signals that commit."""

    def set_columns(self, columns: list[str]) -> None:
        """Only column pickers use the upstream column names; other editors ignore them."""

    def _empty(self, text: str) -> Any:
        """What a blank text means: None (the default) for optional fields, else the blank text itself."""
        return None if self.spec.optional and not text.strip() else text


class ChoiceEditor(FieldEditor):
    """A `Literal[...]` field: a combo of the allowed values (plus a blank for None when optional)."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.combo = QtWidgets.QComboBox()
        if spec.optional:
            self.combo.addItem("", None)
        for choice in spec.choices:
            self.combo.addItem(str(choice), choice)
        self.combo.currentIndexChanged.connect(lambda i: self._commit(self.combo.itemData(i)) if i >= 0 else None)
        self.input = self.widget = self.combo

    def load(self, value: Any) -> None:
        index = next((i for i in range(self.combo.count()) if self.combo.itemData(i) == value), -1)
        with _blocked(self.combo):
            self.combo.setCurrentIndex(index)


class BoolEditor(FieldEditor):
    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.check = QtWidgets.QCheckBox()
        # no text (the form label names it): keep it indicator-sized so a click beside it does not miss
        self.check.setSizePolicy(QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Fixed)
        self.check.toggled.connect(lambda on: self._commit(bool(on)))
        self.input = self.widget = self.check

    def load(self, value: Any) -> None:
        with _blocked(self.check):
            self.check.setChecked(bool(value))


class NumberEditor(FieldEditor):
    """An int or float field as a spin box bounded by the field's constraints.

    Keyboard tracking is off, so typing commits once (Enter or focus out), not per keystroke. Optional numbers get
    a check box meaning "leave it empty" (for `seed`: use the project seed).
    """

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.spin = self._int_spin() if spec.kind == "int" else self._float_spin()
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(self._on_value)
        self.input = self.widget = self.spin
        self.default: QtWidgets.QCheckBox | None = None
        if spec.optional:
            text = tr("Use project seed") if spec.name == "seed" else tr("Use default")
            self.default = QtWidgets.QCheckBox(text)
            self.default.setObjectName(f"default:{spec.name}")
            self.default.setToolTip(spec.tooltip)
            self.default.toggled.connect(self._on_default)
            self.widget = _hbox(self.spin, self.default)

    def _int_spin(self) -> QtWidgets.QSpinBox:
        s = self.spec
        lo = -_INT_LIMIT if s.minimum is None else int(s.minimum) + (1 if s.min_exclusive else 0)
        hi = _INT_LIMIT if s.maximum is None else int(s.maximum) - (1 if s.max_exclusive else 0)
        spin = QtWidgets.QSpinBox()
        spin.setRange(max(lo, -_INT_LIMIT), min(hi, _INT_LIMIT))
        return spin

    def _float_spin(self) -> QtWidgets.QDoubleSpinBox:
        s, step = self.spec, 10.0 ** -_DECIMALS
        lo = -_FLOAT_LIMIT if s.minimum is None else s.minimum + (step if s.min_exclusive else 0.0)
        hi = _FLOAT_LIMIT if s.maximum is None else s.maximum - (step if s.max_exclusive else 0.0)
        spin = QtWidgets.QDoubleSpinBox()
        spin.setDecimals(_DECIMALS)
        spin.setRange(lo, hi)
        spin.setSingleStep(0.05 if hi - lo <= 1.0 else 1.0)  # fractions step in 5 % increments
        return spin

    def _on_value(self, value: float) -> None:
        if self.default is None or not self.default.isChecked():
            self._commit(self._number(value))

    def _on_default(self, use_default: bool) -> None:
        self.spin.setEnabled(not use_default)
        self._commit(None if use_default else self._number(self.spin.value()))

    def _number(self, value: float) -> int | float:
        return int(value) if self.spec.kind == "int" else float(value)

    def load(self, value: Any) -> None:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        with _blocked(self.spin, self.default):
            if is_number:
                self.spin.setValue(self._number(value))
            elif value is None:  # shown disabled; a sensible start when the user unticks "default"
                self.spin.setValue(self._number(min(max(0, self.spin.minimum()), self.spin.maximum())))
            if self.default is not None:
                self.default.setChecked(value is None)
                self.spin.setEnabled(value is not None)


class TextEditor(FieldEditor):
    """A `str` field as a line edit (committing on editingFinished); file fields add a Browse… button."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail, project_dir: ProjectDir | None = None) -> None:
        super().__init__(spec, commit, fail)
        self._project_dir = project_dir
        self.edit = QtWidgets.QLineEdit()
        self.edit.editingFinished.connect(lambda: self._commit(self._value(self.edit.text())))
        self.input = self.widget = self.edit
        if spec.kind in ("file", "save-file", "folder"):
            browse = QtWidgets.QPushButton(tr("Browse…"))
            browse.setObjectName(f"browse:{spec.name}")
            browse.clicked.connect(self._browse)
            self.widget = _hbox(self.edit, browse)

    def _value(self, text: str) -> Any:
        return self._empty(text.strip() if self.spec.kind in ("file", "save-file", "folder") else text)

    def load(self, value: Any) -> None:
        with _blocked(self.edit):
            self.edit.setText("" if value is None else str(value))

    def _project(self) -> Path | None:
        return self._project_dir() if self._project_dir is not None else None

    def _start(self) -> str:
        """Open the dialog at the current file, else in the project folder."""
        project, current = self._project(), self.edit.text().strip()
        if current:
            p = Path(current).expanduser()
            return str(p if p.is_absolute() or project is None else Path(project) / p)
        return str(project) if project is not None else ""

    def _browse(self) -> None:
        filters = ";;".join(f for f in (self.spec.file_filter, tr("All files (*)")) if f)
        if self.spec.kind == "folder":
            path = QtWidgets.QFileDialog.getExistingDirectory(self.widget, tr("Choose a folder"), self._start())
        elif self.spec.kind == "file":
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self.widget, tr("Choose a file"), self._start(), filters)
        else:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self.widget, tr("Save as"), self._start(), filters)
        if path:
            value = project_relative(path, self._project())
            with _blocked(self.edit):
                self.edit.setText(value)
            self._commit(value)


class ColumnEditor(FieldEditor):
    """A column name: an editable combo of the upstream columns (any name may be typed; blank is None)."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.combo = QtWidgets.QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        line = self.combo.lineEdit()
        if spec.optional:
            line.setPlaceholderText(tr("(not set)"))
        self.combo.currentIndexChanged.connect(lambda _i: self._commit_text())
        line.editingFinished.connect(self._commit_text)
        self.input = self.widget = self.combo

    def _commit_text(self) -> None:
        self._commit(self._empty(self.combo.currentText().strip()))

    def set_columns(self, columns: list[str]) -> None:
        text = self.combo.currentText()
        with _blocked(self.combo):
            self.combo.clear()
            if self.spec.optional:
                self.combo.addItem("")
            self.combo.addItems([str(c) for c in columns])
            self._show(text)

    def _show(self, text: str) -> None:
        # a typed name that is no column sits at index -1, so picking any listed entry later is a change
        self.combo.setCurrentIndex(self.combo.findText(text))
        self.combo.setEditText(text)

    def load(self, value: Any) -> None:
        with _blocked(self.combo):
            self._show("" if value is None else str(value))


class ChoicesEditor(FieldEditor):
    """A `list[Literal[...]]` field: a compact list of check boxes, committed as the ticked values in order."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.list = QtWidgets.QListWidget()
        for choice in spec.choices:
            item = QtWidgets.QListWidgetItem(str(choice))
            item.setData(QtCore.Qt.ItemDataRole.UserRole, choice)
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Unchecked)
            self.list.addItem(item)
        rows = min(len(spec.choices), 5)
        self.list.setMaximumHeight(rows * max(self.list.sizeHintForRow(0), 18) + 2 * self.list.frameWidth() + 4)
        self.list.itemChanged.connect(lambda _item: self._commit(self.checked()))
        self.input = self.widget = self.list

    def checked(self) -> list[Any]:
        return [self.list.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.list.count())
                if self.list.item(i).checkState() == QtCore.Qt.CheckState.Checked]

    def load(self, value: Any) -> None:
        chosen = value if isinstance(value, list) else []
        with _blocked(self.list):
            for i in range(self.list.count()):
                item = self.list.item(i)
                on = item.data(QtCore.Qt.ItemDataRole.UserRole) in chosen
                item.setCheckState(QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked)


class StringListEditor(FieldEditor):
    """A `list[str]` field as comma-separated text (quote an item to keep a comma or an empty marker)."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.edit = QtWidgets.QLineEdit()
        self.edit.setPlaceholderText(tr("comma-separated"))
        self.edit.editingFinished.connect(self._on_finished)
        self.input = self.widget = self.edit

    def _on_finished(self) -> None:
        try:
            self._commit(parse_string_list(self.edit.text()))
        except csv.Error as exc:
            self._fail(tr("Cannot read the list: {error}", error=str(exc)))

    def load(self, value: Any) -> None:
        with _blocked(self.edit):
            self.edit.setText(format_string_list(value) if isinstance(value, list) else "")


class JsonEditor(FieldEditor):
    """Anything else (dicts, unions, nested models) as one line of JSON; a parse error is shown, not pushed."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.edit = QtWidgets.QLineEdit()
        self.edit.setPlaceholderText(tr("JSON value"))
        self.edit.editingFinished.connect(self._on_finished)
        self.input = self.widget = self.edit

    def _on_finished(self) -> None:
        text = self.edit.text().strip()
        if not text and (self.spec.optional or self.spec.container is not None):
            self._commit(None if self.spec.optional else self.spec.container())
            return
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self._fail(tr("Not valid JSON: {error} (column {column})", error=exc.msg, column=exc.colno))
            return
        self._commit(value)

    def load(self, value: Any) -> None:
        with _blocked(self.edit):
            self.edit.setText("" if value is None else json.dumps(value, ensure_ascii=False))


class MultilineEditor(FieldEditor):
    """Long text (an SQL query): a plain-text box committed when it loses focus or on Ctrl+Enter."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.box = QtWidgets.QPlainTextEdit()
        self.box.setTabChangesFocus(True)
        self.box.setMinimumHeight(90)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.box.setFont(font)
        self.box.installEventFilter(_CommitOnLeave(self.box, self._finish))
        self.input = self.widget = self.box

    def _finish(self) -> None:
        self._commit(self._empty(self.box.toPlainText()))

    def load(self, value: Any) -> None:
        with _blocked(self.box):
            self.box.setPlainText("" if value is None else str(value))


class _CommitOnLeave(QtCore.QObject):
    def __init__(self, parent: QtCore.QObject, finish: Callable[[], None]) -> None:
        super().__init__(parent)
        self._finish = finish

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QtCore.QEvent.Type.FocusOut:
            self._finish()
        elif (event.type() == QtCore.QEvent.Type.KeyPress and event.key() in (QtCore.Qt.Key.Key_Return,
              QtCore.Qt.Key.Key_Enter) and event.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier):
            self._finish()
            return True
        return False


class SecretEditor(FieldEditor):
    """A password: typed into a masked box and stored in this computer's encrypted vault; the setting (and so the
    project file) only ever holds the vault reference. `env:NAME` is kept as typed (read from the environment)."""

    def __init__(self, spec: FieldSpec, commit: Commit, fail: Fail) -> None:
        super().__init__(spec, commit, fail)
        self.line = QtWidgets.QLineEdit()
        self.line.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.line.editingFinished.connect(self._on_finished)
        self.clear = QtWidgets.QToolButton()
        self.clear.setText(tr("Forget"))
        self.clear.setObjectName(f"forget:{spec.name}")
        self.clear.setToolTip(tr("Remove the stored password from this node"))
        self.clear.clicked.connect(lambda: self._commit(""))
        self.input = self.line
        self.widget = _hbox(self.line, self.clear)
        self._stored = ""

    def _on_finished(self) -> None:
        text = self.line.text()
        if not text:
            return
        if text.startswith("env:"):
            ref = text
        else:
            from engine.secrets import put_secret

            try:
                ref = put_secret(text, label=self.spec.title)
            except LedgerflowError as exc:
                self._fail(str(exc))
                return
        with _blocked(self.line):
            self.line.clear()
        self._commit(ref)

    def load(self, value: Any) -> None:
        self._stored = str(value or "")
        with _blocked(self.line):
            self.line.clear()
        if self._stored.startswith("env:"):
            hint = tr("read from the environment variable {name}", name=self._stored[4:])
        elif self._stored:
            hint = tr("stored in this computer's vault; type to replace")
        else:
            hint = tr("type the password (kept in the encrypted vault, never in the project)")
        self.line.setPlaceholderText(hint)
        self.clear.setEnabled(bool(self._stored))


def make_editor(spec: FieldSpec, commit: Commit, fail: Fail, project_dir: ProjectDir | None = None) -> FieldEditor:
    if spec.kind == "label-schema":
        from app.label_schema_editor import LabelSchemaEditor  # imports this module: import when first needed

        return LabelSchemaEditor(spec, commit, fail)
    if spec.kind == "multiline":
        return MultilineEditor(spec, commit, fail)
    if spec.kind == "secret":
        return SecretEditor(spec, commit, fail)
    if spec.kind == "choice":
        return ChoiceEditor(spec, commit, fail)
    if spec.kind == "bool":
        return BoolEditor(spec, commit, fail)
    if spec.kind in ("int", "float"):
        return NumberEditor(spec, commit, fail)
    if spec.kind in ("text", "file", "save-file", "folder"):
        return TextEditor(spec, commit, fail, project_dir)
    if spec.kind == "column":
        return ColumnEditor(spec, commit, fail)
    if spec.kind == "choices":
        return ChoicesEditor(spec, commit, fail)
    if spec.kind == "strings":
        return StringListEditor(spec, commit, fail)
    return JsonEditor(spec, commit, fail)


# --------------------------------------------------------------------------------------------- the panel

class PropertiesPanel(QtWidgets.QWidget):
    """Edits the shown node's title and settings through commands; shows validation problems inline.

    Widgets are rebuilt only when another node (or node type) is shown; `refresh` just re-reads values, so focus
    and scroll position survive undo/redo.
    """

    def __init__(
        self,
        graph: Graph,
        push: Callable[[Command], object],
        columns_for: Callable[[str], list[str]],
        parent: QtWidgets.QWidget | None = None,
        *,
        project_dir: ProjectDir | None = None,
    ) -> None:
        super().__init__(parent)
        self.graph = graph
        self._push = push
        self._columns_for = columns_for
        self._project_dir = project_dir
        self._node_id: str | None = None
        self._built_for: tuple[str, str, bool] | None = None
        self._editors: dict[str, FieldEditor] = {}
        self._error_labels: dict[str, QtWidgets.QLabel] = {}
        self._local_errors: dict[str, str] = {}  # parse or push errors, per field, until the next good commit
        self._header_error = ""
        self._title_edit: QtWidgets.QLineEdit | None = None
        self._issues: QtWidgets.QLabel | None = None
        self._raw: QtWidgets.QPlainTextEdit | None = None
        self._wheel_guard = _WheelGuard(self)
        self.preview_dialog: PreviewDialog | None = None

        self.setObjectName("properties")
        self.setStyleSheet(_STYLE)
        self._empty = QtWidgets.QLabel(tr("Select a node to edit its settings."))
        self._empty.setObjectName("empty")
        self._empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._scroll = QtWidgets.QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self._stack = QtWidgets.QStackedWidget()
        self._stack.addWidget(self._empty)
        self._stack.addWidget(self._scroll)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)

    # ---- public API ----------------------------------------------------------------------------------------
    @property
    def node_id(self) -> str | None:
        return self._node_id

    def set_graph(self, graph: Graph) -> None:
        """Edit another project's graph (the window keeps one panel across projects)."""
        self.show_node(None)
        self.graph = graph

    def show_node(self, node_id: str | None) -> None:
        """Show a node's editor (None or an id no longer in the graph: the empty state)."""
        self._release_focus()  # a half-typed value is committed to the node it was typed for
        self._node_id = node_id if node_id in self.graph.nodes else None
        self._local_errors.clear()
        self._header_error = ""
        self._build()
        if self._node_id is not None:
            self._load()

    def refresh(self) -> None:
        """Re-read the shown node from the graph (after undo/redo or an outside change); pushes nothing."""
        inst = self.graph.nodes.get(self._node_id) if self._node_id else None
        if inst is None or (inst.id, inst.type_id, inst.is_placeholder) != self._built_for:
            self.show_node(inst.id if inst else None)
            return
        self._local_errors.clear()
        self._header_error = ""
        self._load()

    def editor(self, field: str) -> QtWidgets.QWidget:
        """The input widget of a settings field (spin box, combo, line edit, check box, list)."""
        return self._editor(field).input

    def title_editor(self) -> QtWidgets.QLineEdit:
        if self._title_edit is None:
            raise KeyError("no node is shown")
        return self._title_edit

    def error_text(self, field: str) -> str:
        """The inline error under a field ('' when none); `general_text` has the node-wide problems."""
        label = self._error_labels.get(field)
        return label.text() if label is not None else ""

    def general_text(self) -> str:
        """The box at the top: unconnected inputs, cycles, title problems."""
        return self._issues.text() if self._issues is not None else ""

    def set_field(self, field: str, value: Any) -> None:
        """Change a field as if the user had edited it: one SetSettings command (nothing when unchanged)."""
        self._editor(field)
        assert self._node_id is not None
        self._commit(self._node_id, field, to_jsonable_python(value))

    # ---- building ------------------------------------------------------------------------------------------
    def _editor(self, field: str) -> FieldEditor:
        try:
            return self._editors[field]
        except KeyError:
            raise KeyError(f"no editable field {field!r} for the shown node") from None

    def _release_focus(self) -> None:
        focus = QtWidgets.QApplication.focusWidget()
        if focus is not None and self.isAncestorOf(focus):
            focus.clearFocus()

    def _build(self) -> None:
        self._editors.clear()
        self._error_labels.clear()
        self._title_edit = self._issues = self._raw = None
        self._built_for = None
        old = self._scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        if self._node_id is None:
            self._stack.setCurrentWidget(self._empty)
            return
        inst = self.graph.node(self._node_id)
        cls = self.graph.node_class(inst.id)
        content = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(content)
        layout.addWidget(self._header(inst, cls))
        self._issues = QtWidgets.QLabel()
        self._issues.setObjectName("issues")
        self._issues.setWordWrap(True)
        self._issues.hide()
        layout.addWidget(self._issues)
        if cls is None:
            layout.addWidget(self._placeholder(inst))
        else:
            layout.addLayout(self._form(inst.id, cls))
        layout.addStretch(1)
        self._scroll.setWidget(content)
        self._stack.setCurrentWidget(self._scroll)
        self._built_for = (inst.id, inst.type_id, inst.is_placeholder)

    def _header(self, inst: NodeInstance, cls: type[Node] | None) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self._title_edit = QtWidgets.QLineEdit()
        self._title_edit.setObjectName("node-title")
        self._title_edit.setToolTip(tr("Node title"))
        self._title_edit.editingFinished.connect(partial(self._commit_title, inst.id))
        kind = QtWidgets.QLabel(tr(cls.title) if cls is not None else inst.type_id)
        kind.setObjectName("node-type")
        layout.addWidget(self._title_edit)
        layout.addWidget(kind)
        if cls is not None and cls.description:
            about = QtWidgets.QLabel(tr(cls.description))
            about.setObjectName("node-description")
            about.setWordWrap(True)
            layout.addWidget(about)
        if cls is not None and cls.has_preview():
            button = QtWidgets.QPushButton(tr("Preview data…"))
            button.setObjectName("preview")
            button.setToolTip(tr("Show the columns, their types and the first rows without running the flow"))
            button.clicked.connect(partial(self.open_preview, inst.id))
            layout.addWidget(button, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        return box

    def open_preview(self, node_id: str) -> "PreviewDialog | None":
        """The source's schema and first rows; type overrides chosen there are undoable setting changes."""
        from app.preview import PreviewDialog

        cls = self.graph.node_class(node_id)
        if cls is None or node_id not in self.graph.nodes:
            return None
        if self.preview_dialog is not None:
            self.preview_dialog.close()
        self.preview_dialog = PreviewDialog(
            cls, self.graph.node(node_id).title, lambda: self.graph.node(node_id).settings,
            self._project_dir() if self._project_dir else None,
            lambda types: self._commit(node_id, "column_types", types), self)
        self.preview_dialog.show()
        return self.preview_dialog

    def _placeholder(self, inst: NodeInstance) -> QtWidgets.QWidget:
        """A node whose type is missing keeps its settings verbatim: show why, and the settings read-only."""
        box = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        warning = QtWidgets.QLabel(tr("This node cannot be edited: {reason}", reason=inst.placeholder_reason or ""))
        warning.setObjectName("placeholder")
        warning.setWordWrap(True)
        layout.addWidget(warning)
        layout.addWidget(QtWidgets.QLabel(tr("Settings (read-only)")))
        self._raw = QtWidgets.QPlainTextEdit()
        self._raw.setObjectName("raw-settings")
        self._raw.setReadOnly(True)
        layout.addWidget(self._raw)
        return box

    def _form(self, node_id: str, cls: type[Node]) -> QtWidgets.QFormLayout:
        form = QtWidgets.QFormLayout()
        form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name, info in cls.Settings.model_fields.items():
            spec = describe_field(name, info)
            ed = make_editor(spec, partial(self._commit, node_id, name), partial(self._fail, name),
                             self._project_dir)
            ed.input.setObjectName(f"field:{name}")
            ed.input.setToolTip(spec.tooltip)
            if isinstance(ed.input, (QtWidgets.QAbstractSpinBox, QtWidgets.QComboBox)):
                ed.input.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
                ed.input.installEventFilter(self._wheel_guard)
            label = QtWidgets.QLabel(spec.title)
            label.setToolTip(spec.tooltip)
            label.setBuddy(ed.input)
            error = QtWidgets.QLabel()
            error.setObjectName(f"error:{name}")
            error.setProperty("role", "error")
            error.setWordWrap(True)
            error.hide()
            cell = QtWidgets.QWidget()
            column = QtWidgets.QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(ed.widget)
            column.addWidget(error)
            form.addRow(label, cell)
            self._editors[name] = ed
            self._error_labels[name] = error
        return form

    # ---- loading values and problems ---------------------------------------------------------------------
    def _load(self, skip: set[str] | frozenset[str] = frozenset()) -> None:
        """Show the graph's values (except fields whose rejected text the user should still see) and problems."""
        assert self._node_id is not None
        inst = self.graph.node(self._node_id)
        if self._title_edit is not None:
            with _blocked(self._title_edit):
                self._title_edit.setText(inst.title)
        if self._raw is not None:
            self._raw.setPlainText(json.dumps(inst.settings, indent=2, ensure_ascii=False, default=str))
        by_port: dict[str, list[str]] = {}
        for name, ed in self._editors.items():
            if ed.spec.kind == "column" and ed.spec.port not in by_port:
                by_port[ed.spec.port] = self._columns(inst.id, ed.spec.port)
            ed.set_columns(by_port.get(ed.spec.port, []))
            if name not in skip:
                ed.load(inst.settings[name] if name in inst.settings else self._default(inst.id, name))
        self._show_problems()

    def _default(self, node_id: str, name: str) -> Any:
        """What an unset field means (a hand-written or template project may leave fields out)."""
        cls = self.graph.node_class(node_id)
        if cls is None or name not in cls.Settings.model_fields:
            return None
        default = cls.Settings.model_fields[name].get_default(call_default_factory=True)
        return None if default is PydanticUndefined else default

    def _columns(self, node_id: str, port: str = "") -> list[str]:
        """Upstream column names for column pickers (of one input port when the field names it); a failure there
        must not break editing."""
        try:
            return list(self._columns_for(node_id, port) if port else self._columns_for(node_id))
        except Exception:  # noqa: BLE001 - the provider belongs to the app shell; log and offer free text
            log.exception("columns_for(%s) failed", node_id)
            return []

    def _show_problems(self) -> None:
        if self._node_id is None or self._issues is None:
            return
        inst = self.graph.node(self._node_id)
        per_field: dict[str, list[str]] = {}
        general = [self._header_error] if self._header_error else []
        for issue in self.graph.validate():
            if issue.node_id != inst.id:
                continue
            top = issue.field.split(".", 1)[0]
            if top in self._editors:
                # an unset field's message would quote the whole settings dict as "(got {...})"
                text = issue.message if top in inst.settings else issue.message.split(" (got ", 1)[0]
                per_field.setdefault(top, []).append(text)
            elif not (inst.is_placeholder and issue.code == "unknown_type"):  # the warning box says it already
                general.append(issue.message)
        for name, label in self._error_labels.items():
            messages = [m for m in (self._local_errors.get(name), *per_field.get(name, ())) if m]
            label.setText("\n".join(messages))
            label.setVisible(bool(messages))
            _mark(self._editors[name].input, bool(messages))
        self._issues.setText("\n".join(general))
        self._issues.setVisible(bool(general))

    # ---- committing --------------------------------------------------------------------------------------
    def _commit(self, node_id: str, field: str, value: Any) -> None:
        """One command per real change; engine errors are shown inline, never raised out of a Qt slot."""
        inst = self.graph.nodes.get(node_id)
        if inst is None:
            return
        self._local_errors.pop(field, None)
        if field in inst.settings and inst.settings[field] == value:
            self._after_commit(node_id, changed=False)
            return
        try:
            self._push(SetSettings(node_id, {field: value}))
        except LedgerflowError as exc:
            self._local_errors[field] = str(exc)
            self._after_commit(node_id, changed=False)
            return
        self._after_commit(node_id, changed=True)

    def _after_commit(self, node_id: str, *, changed: bool) -> None:
        if node_id != self._node_id:
            return
        if changed:
            self._load(skip=set(self._local_errors))
        else:
            self._show_problems()

    def _fail(self, field: str, message: str) -> None:
        self._local_errors[field] = message
        self._show_problems()

    def _commit_title(self, node_id: str) -> None:
        inst = self.graph.nodes.get(node_id)
        if inst is None or self._title_edit is None or node_id != self._node_id:
            return
        title = self._title_edit.text().strip()
        self._header_error = ""
        if not title:
            self._header_error = tr("A node needs a title")
        elif title != inst.title:
            try:
                self._push(UpdateNode(node_id, {"title": title}))
            except LedgerflowError as exc:
                self._header_error = str(exc)
            else:
                self._load(skip=set(self._local_errors))
                return
        self._show_problems()
