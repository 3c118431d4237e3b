"""Actions, menus, the toolbar and the canvas context menu of the main window.

Kept apart from the window so the window module stays about lifecycle and state, and every user-visible label is
found in one place for translators.
"""
from __future__ import annotations

import html
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6 import QtCore, QtGui, QtWidgets

from app.document import Document
from engine.i18n import SUPPORTED_LANGUAGES, current_language, tr

if TYPE_CHECKING:
    from app.main_window import MainWindow

LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}
SP = QtWidgets.QStyle.StandardPixmap


def _action(window: QtWidgets.QWidget, text: str, slot: Callable[[], object], shortcut: str | QtGui.QKeySequence |
            None = None, icon: SP | None = None, tip: str = "") -> QtGui.QAction:
    action = QtGui.QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QtGui.QKeySequence(shortcut))
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    return action


def build_actions(w: "MainWindow") -> dict[str, QtGui.QAction]:
    K = QtGui.QKeySequence.StandardKey

    def canvas(fn: Callable[..., object]) -> Callable[[], object]:
        return lambda: fn(w.canvas) if w.canvas else None

    def zoom(step: float) -> Callable[[], object]:
        return lambda: w.canvas.graph.set_zoom(w.canvas.graph.get_zoom() + step) if w.canvas else None

    a = {
        "new": _action(w, tr("&New project…"), lambda: new_project(w), K.New, SP.SP_FileIcon,
                       tr("Create an empty project in a folder")),
        "new_sample": _action(w, tr("New from &sample…"), lambda: new_sample_project(w), None, None,
                              tr("Create the credit-risk sample project in a folder")),
        "open": _action(w, tr("&Open…"), lambda: open_project_dialog(w), K.Open, SP.SP_DialogOpenButton,
                        tr("Open a project")),
        "save": _action(w, tr("&Save"), w.save, K.Save, SP.SP_DialogSaveButton, tr("Save the project")),
        "save_as": _action(w, tr("Save &as…"), w.save_as, K.SaveAs),
        "quit": _action(w, tr("&Quit"), w.close, K.Quit),
        "undo": _action(w, tr("&Undo"), w.undo, K.Undo, SP.SP_ArrowBack, tr("Undo the last edit")),
        "redo": _action(w, tr("&Redo"), w.redo, K.Redo, SP.SP_ArrowForward, tr("Redo the edit")),
        "copy": _action(w, tr("&Copy"), canvas(lambda c: c.copy_selected()), K.Copy),
        "paste": _action(w, tr("&Paste"), canvas(lambda c: c.paste()), K.Paste),
        "duplicate": _action(w, tr("D&uplicate"), canvas(lambda c: c.duplicate_selected()), "Ctrl+D"),
        "delete": _action(w, tr("&Delete"), canvas(lambda c: c.delete_selected()), K.Delete),
        "select_all": _action(w, tr("Select &all"), canvas(lambda c: c.select_all()), K.SelectAll),
        "add_backdrop": _action(w, tr("Add &backdrop…"), lambda: add_backdrop(w), "Ctrl+G", None,
                                tr("Group the selected nodes under a titled backdrop")),
        "run_all": _action(w, tr("Run &all"), w.run_all, "F5", SP.SP_MediaPlay,
                           tr("Run the workflow (only what changed is recomputed)")),
        "run_to": _action(w, tr("Run &to selected"), w.run_to_selected, "F6", SP.SP_MediaSeekForward,
                          tr("Run the selected node and everything it needs")),
        "run_only": _action(w, tr("Run selected &only"), w.run_selected_only, "Shift+F6", None,
                            tr("Run just the selected node; its inputs must have results")),
        "cancel": _action(w, tr("&Cancel run"), w.cancel_run, "Esc", SP.SP_MediaStop, tr("Stop the running workflow")),
        "zoom_in": _action(w, tr("Zoom &in"), zoom(0.1), K.ZoomIn, None, tr("Zoom in (Ctrl++ or the wheel)")),
        "zoom_out": _action(w, tr("Zoom &out"), zoom(-0.1), K.ZoomOut, None, tr("Zoom out (Ctrl+- or the wheel)")),
        "fit": _action(w, tr("&Fit to view"), canvas(lambda c: c.fit()), "F", None, tr("Show the whole workflow")),
        "labeling": _action(w, tr("&Labeling…"), w.open_labeling, None, None,
                            tr("Label this project's records, texts and images, one item at a time")),
        "tour": _action(w, tr("&Quick tour"), w.show_hint),
        "about": _action(w, tr("&About Ledgerflow"), lambda: about(w)),
        "scheduler": _action(w, tr("&Dask scheduler…"), lambda: configure_scheduler(w), None, None,
                             tr("Send heavy nodes to a Dask cluster")),
        "asset_connection": _action(w, tr("&Asset center connection…"), lambda: asset_connection(w), None, None,
                                    tr("Server URL and token of the shared asset center (empty: the embedded "
                                       "store)")),
    }
    a["fit"].setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
    return a


def build_menus(w: "MainWindow") -> None:
    a, mb = w.actions_, w.menuBar()
    file_menu = mb.addMenu(tr("&File"))
    for name in ("new", "new_sample", "open"):
        file_menu.addAction(a[name])
    w.recent_menu = file_menu.addMenu(tr("Open &recent"))
    w.recent_menu.aboutToShow.connect(lambda: fill_recent(w))
    file_menu.addSeparator()
    for name in ("save", "save_as"):
        file_menu.addAction(a[name])
    file_menu.addSeparator()
    file_menu.addAction(a["labeling"])
    file_menu.addSeparator()
    file_menu.addAction(a["quit"])
    edit = mb.addMenu(tr("&Edit"))
    for name in ("undo", "redo", None, "copy", "paste", "duplicate", "delete", "select_all", None, "add_backdrop"):
        edit.addSeparator() if name is None else edit.addAction(a[name])
    run = mb.addMenu(tr("&Run"))
    for name in ("run_all", "run_to", "run_only", "cancel"):
        run.addAction(a[name])
    view = mb.addMenu(tr("&View"))
    for name in ("zoom_in", "zoom_out", "fit"):
        view.addAction(a[name])
    view.addSeparator()
    for dock in (w.palette_dock, w.properties_dock, w.data_dock, w.report_dock, w.log_dock, w.experiments_dock,
                 w.assets_dock):
        view.addAction(dock.toggleViewAction())
    settings = mb.addMenu(tr("&Settings"))
    lang_menu = settings.addMenu(tr("&Language"))
    group = QtGui.QActionGroup(w)
    w.language_actions = {}
    for lang in SUPPORTED_LANGUAGES:
        act = QtGui.QAction(LANGUAGE_NAMES.get(lang, lang), w, checkable=True)
        act.setChecked(lang == current_language())
        act.triggered.connect(lambda _c=False, lang=lang: switch_language(w, lang))
        group.addAction(act)
        lang_menu.addAction(act)
        w.language_actions[lang] = act
    settings.addAction(a["scheduler"])
    settings.addAction(a["asset_connection"])
    help_menu = mb.addMenu(tr("&Help"))
    help_menu.addAction(a["tour"])
    help_menu.addAction(a["about"])

    tb = w.addToolBar(tr("Main"))
    tb.setObjectName("main-toolbar")
    tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tb.setIconSize(QtCore.QSize(18, 18))
    for name in ("new", "open", "save", None, "undo", "redo", None, "run_all", "run_to", "cancel", None,
                 "zoom_out", "zoom_in", "fit"):
        tb.addSeparator() if name is None else tb.addAction(a[name])
    lang_box = QtWidgets.QComboBox()
    lang_box.setToolTip(tr("Language (applies after a restart)"))
    for lang in SUPPORTED_LANGUAGES:
        lang_box.addItem(LANGUAGE_NAMES.get(lang, lang), lang)
    lang_box.setCurrentIndex(list(SUPPORTED_LANGUAGES).index(current_language()))
    lang_box.activated.connect(lambda i: switch_language(w, lang_box.itemData(i)))
    spacer = QtWidgets.QWidget()
    spacer.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
    tb.addWidget(spacer)
    tb.addWidget(lang_box)
    w.language_box = lang_box


def context_menu(w: "MainWindow", node_id: str, scene_pos: QtCore.QPointF) -> QtWidgets.QMenu:
    menu = QtWidgets.QMenu(w)
    doc, canvas = w.document, w.canvas
    if not node_id or doc is None or canvas is None:
        add = menu.addMenu(tr("Add node"))
        for cls in w.registry.all():
            act = add.addAction(tr(cls.title))
            act.triggered.connect(lambda _c=False, t=cls.type_id: canvas and canvas.add_node(
                t, (scene_pos.x(), scene_pos.y())))
        menu.addAction(w.actions_["paste"])
        menu.addAction(w.actions_["add_backdrop"])
        menu.addAction(w.actions_["fit"])
        return menu
    inst = doc.graph.nodes[node_id]
    running = w.runner.running
    menu.addAction(tr("Run to here"), lambda: w._start_run(until=node_id)).setEnabled(not running)
    menu.addAction(tr("Run this node"), lambda: w._start_run(only=node_id)).setEnabled(not running)
    menu.addAction(tr("Open output"), lambda: w.open_output(node_id))
    menu.addSeparator()
    menu.addAction(tr("Rename…"), lambda: w.rename_node(node_id))
    menu.addAction(tr("Enable") if inst.disabled else tr("Disable"),
                   lambda: canvas.set_disabled(canvas.selected_ids() or [node_id], not inst.disabled))
    menu.addAction(w.actions_["duplicate"])
    menu.addAction(w.actions_["delete"])
    menu.addSeparator()
    menu.addAction(tr("Help"), lambda: w.node_help(node_id))
    return menu


def node_help_html(doc: Document, node_id: str) -> str:
    """What a node does, its ports and its settings, from its declaration (translated)."""
    inst = doc.graph.nodes[node_id]
    cls = doc.graph.node_class(node_id)
    esc = html.escape
    if cls is None:
        return f"<b>{esc(inst.title)}</b><p>{esc(inst.placeholder_reason or '')}</p>"
    parts = [f"<h3>{esc(tr(cls.title))}</h3><p>{esc(tr(cls.description))}</p>",
             f"<p><small>{esc(cls.type_id)} v{cls.version}</small></p>"]
    for label, ports in ((tr("Inputs"), cls.input_ports), (tr("Outputs"), cls.output_ports)):
        if ports:
            parts.append(f"<b>{esc(label)}</b><ul>")
            parts.extend(f"<li>{esc(tr(p.name))}: {esc(p.type.type_name)}</li>" for p in ports.values())
            parts.append("</ul>")
    fields = cls.Settings.model_fields
    if fields:
        parts.append(f"<b>{esc(tr('Settings'))}</b><ul>")
        for name, f in fields.items():
            desc = f" — {esc(tr(f.description))}" if f.description else ""
            parts.append(f"<li>{esc(tr(f.title or name))}{desc}</li>")
        parts.append("</ul>")
    return "".join(parts)


# ---- file actions --------------------------------------------------------------------------------
def open_project_dialog(w: "MainWindow") -> None:
    path, _ = QtWidgets.QFileDialog.getOpenFileName(w, tr("Open a project"), "", tr("Ledgerflow projects "
                                                                                     "(project.lflow *.lflow)"))
    if path:
        w.open_project(path)


def fill_recent(w: "MainWindow") -> None:
    w.recent_menu.clear()
    recent = [p for p in w.prefs.recent if Path(p).exists()]
    if not recent:
        w.recent_menu.addAction(tr("No recent projects")).setEnabled(False)
    for p in recent:
        w.recent_menu.addAction(p, lambda p=p: w.open_project(p))


def _empty_folder(w: "MainWindow", title: str) -> Path | None:
    folder = QtWidgets.QFileDialog.getExistingDirectory(w, title)
    if not folder:
        return None
    path = Path(folder)
    try:
        if path.exists() and any(path.iterdir()):
            w.error(title, tr("{dir} is not empty; choose an empty folder", dir=path))
            return None
    except OSError as exc:
        w.error(title, str(exc))
        return None
    return path


def new_project(w: "MainWindow") -> None:
    from engine.project import Project

    folder = _empty_folder(w, tr("Create a project in an empty folder"))
    if folder is None:
        return
    name, ok = QtWidgets.QInputDialog.getText(w, tr("New project"), tr("Project name:"), text=folder.name)
    if not ok:
        return
    project = Project.new(folder, name.strip() or folder.name, w.registry)
    try:
        project.save()
    except OSError as exc:
        w.error(tr("Cannot create the project"), str(exc))
        return
    w.open_project(project.path)


def new_sample_project(w: "MainWindow") -> None:
    from engine.errors import LedgerflowError
    from engine.templates import create_project

    folder = _empty_folder(w, tr("Create the sample project in an empty folder"))
    if folder is None:
        return
    try:
        project = create_project(folder, "credit-risk")
    except (LedgerflowError, OSError) as exc:
        w.error(tr("Cannot create the project"), str(exc))
        return
    w.open_project(project.path)


def add_backdrop(w: "MainWindow") -> None:
    if w.canvas is None:
        return
    title, ok = QtWidgets.QInputDialog.getText(w, tr("Add backdrop"), tr("Title:"), text=tr("Group"))
    if ok:
        w.canvas.add_backdrop(title.strip() or tr("Group"))


def configure_scheduler(w: "MainWindow") -> None:
    address, ok = QtWidgets.QInputDialog.getText(
        w, tr("Dask scheduler"), tr("Scheduler address for heavy nodes (empty: local worker processes), e.g. "
                                    "tcp://10.0.0.5:8786. Applies to projects opened afterwards."),
        text=w.prefs.scheduler_address)
    if ok:
        w.prefs.scheduler_address = address.strip()
        w.prefs.save()


def asset_connection(w: "MainWindow") -> None:
    from app.asset_settings import edit_connection

    edit_connection(w, w.asset_browser.reconnect)


def switch_language(w: "MainWindow", lang: str) -> None:
    """Persist the language; the window is rebuilt in it on the next start (offered right away)."""
    if lang == w.prefs.language and lang == current_language():
        return
    w.prefs.language = lang
    w.prefs.save()
    for code, act in getattr(w, "language_actions", {}).items():
        act.setChecked(code == lang)
    box = getattr(w, "language_box", None)
    if box is not None:
        box.setCurrentIndex(list(SUPPORTED_LANGUAGES).index(lang))
    w.statusBar().showMessage(tr("Language saved: {name}. It applies when Ledgerflow restarts.",
                                 name=LANGUAGE_NAMES.get(lang, lang)), 10000)
    if QtWidgets.QApplication.platformName() == "offscreen":
        return
    answer = QtWidgets.QMessageBox.question(w, tr("Restart now?"), tr(
        "The language changes when Ledgerflow restarts. Restart now? Unsaved changes will be asked about first."))
    if answer == QtWidgets.QMessageBox.StandardButton.Yes:
        restart(w)


def restart(w: "MainWindow") -> None:
    project = str(w.document.project.path) if w.document else None
    if not w.maybe_close_document():
        return
    args = ["gui", project] if project else ["gui"]  # no --lang: the saved choice applies
    QtCore.QProcess.startDetached(sys.executable, ["-m", "engine.cli", *args], os.getcwd())
    w.close()


def about(w: "MainWindow") -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("ledgerflow")
    except PackageNotFoundError:  # running from a source tree that is not installed
        release = "dev"
    QtWidgets.QMessageBox.about(w, tr("About Ledgerflow"), tr(
        "<b>Ledgerflow {version}</b><p>A low-code machine-learning workbench for banks: traceable datasets, "
        "audited runs, explainable models.</p>", version=release))
