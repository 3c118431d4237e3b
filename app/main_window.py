"""The workbench window: canvas in the centre, palette, properties and viewers docked around it.

The window owns one `Document` at a time. All edits go through its undo stack; runs go through `RunController`
on a background thread; engine events arrive through one `EngineBridge`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from PySide6 import QtCore, QtGui, QtWidgets

from app.asset_browser import AssetBrowser
from app.autosave import Autosaver, Recovery, find_recovery, load_recovered
from app.bridge import EngineBridge
from app.canvas.controller import CanvasController
from app.document import Document
from app.experiments_view import ExperimentsView
from app.menus import build_actions, build_menus
from app.outputs import DataPanel, OutputPresenter, upstream_columns
from app.palette import NodePalette
from app.preferences import Preferences
from app.properties import PropertiesPanel
from app.runner import RunController
from app.viewers.log_view import LogViewer
from app.viewers.report_view import ReportViewer
from engine.errors import LedgerflowError
from engine.graph import Graph
from engine.i18n import tr
from engine.project import PROJECT_FILE, Project, project_file
from engine.registry import Registry, default_registry
from engine.scheduler import RunReport

log = logging.getLogger("ledgerflow.app")
AUTOSAVE_MS = 30_000


class MainWindow(QtWidgets.QMainWindow):
    project_opened = QtCore.Signal(str)
    run_done = QtCore.Signal(object)  # RunReport or None (a run that could not start)

    def __init__(self, prefs: Preferences | None = None, registry: Registry | None = None) -> None:
        super().__init__()
        self.prefs = prefs or Preferences.load()
        self.registry = registry or default_registry()
        self.document: Document | None = None
        self.bridge: EngineBridge | None = None
        self.canvas: CanvasController | None = None
        self.autosaver: Autosaver | None = None
        # How to answer the questions a dialog would ask; tests and --screenshot replace these.
        self.ask_recover: Callable[[Recovery], bool] = self._ask_recover
        self.ask_save_changes: Callable[[], QtWidgets.QMessageBox.StandardButton] = self._ask_save_changes
        self.setWindowTitle(tr("Ledgerflow"))
        self.setWindowIcon(QtGui.QIcon(str(Path(__file__).resolve().parent.parent / "resources" / "icons" /
                                           "ledgerflow.svg")))
        self.resize(1440, 900)
        self.runner = RunController(self)
        self.runner.started.connect(self._on_run_started)
        self.runner.finished.connect(self._on_run_finished)
        self.runner.failed.connect(self._on_run_failed)
        self._run_t0 = 0.0
        self._build_docks()
        self.actions_ = build_actions(self)
        build_menus(self)
        self._build_central()
        self._build_status_bar()
        self.autosave_timer = QtCore.QTimer(self, interval=AUTOSAVE_MS, timeout=self.autosave)
        self.autosave_timer.start()
        self._update_actions()

    # ---- layout --------------------------------------------------------------------------------
    def _dock(self, name: str, title: str, widget: QtWidgets.QWidget,
              area: QtCore.Qt.DockWidgetArea) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        Area = QtCore.Qt.DockWidgetArea
        self.palette = NodePalette(self.registry)
        self.palette.add_requested.connect(self.add_node)
        self.palette_dock = self._dock("palette", tr("Nodes"), self.palette, Area.LeftDockWidgetArea)
        self.properties = PropertiesPanel(Graph(self.registry), self._push_from_panel,  # empty until a project opens
                                          self._columns_for, project_dir=self._project_dir)
        self.properties_dock = self._dock("properties", tr("Properties"), self.properties, Area.RightDockWidgetArea)
        self.data_panel = DataPanel()
        self.report_view = ReportViewer()
        self.log_view = LogViewer()
        self.data_dock = self._dock("data", tr("Data"), self.data_panel, Area.BottomDockWidgetArea)
        self.report_dock = self._dock("report", tr("Report"), self.report_view, Area.BottomDockWidgetArea)
        self.log_dock = self._dock("log", tr("Log"), self.log_view, Area.BottomDockWidgetArea)
        self.experiments_view = ExperimentsView()
        self.experiments_dock = self._dock("experiments", tr("Experiments"), self.experiments_view,
                                           Area.BottomDockWidgetArea)
        self.tabifyDockWidget(self.data_dock, self.report_dock)
        self.tabifyDockWidget(self.report_dock, self.log_dock)
        self.tabifyDockWidget(self.log_dock, self.experiments_dock)
        self.asset_browser = AssetBrowser()  # connects to the asset center only when first shown
        self.assets_dock = self._dock("assets", tr("Assets"), self.asset_browser, Area.BottomDockWidgetArea)
        self.tabifyDockWidget(self.experiments_dock, self.assets_dock)
        self.assets_dock.visibilityChanged.connect(self.asset_browser.dock_visibility)
        self.data_dock.raise_()
        self.resizeDocks([self.palette_dock, self.properties_dock], [250, 330], QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([self.data_dock], [360], QtCore.Qt.Orientation.Vertical)
        self.outputs = OutputPresenter(self.data_panel, self.report_view, self.log_view, self)

    def _build_central(self) -> None:
        self.central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(self.central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.hint = QtWidgets.QFrame(objectName="hint")
        self.hint.setStyleSheet("#hint{background:#fff7d6;border-bottom:1px solid #e5c86b}"
                                "#hint QLabel{color:#3b2f00}")
        hl = QtWidgets.QHBoxLayout(self.hint)
        hl.setContentsMargins(12, 6, 8, 6)
        self.hint_label = QtWidgets.QLabel()
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        hint_close = QtWidgets.QPushButton(tr("Got it"))
        hint_close.clicked.connect(self.dismiss_hint)
        hl.addWidget(self.hint_label, 1)
        hl.addWidget(hint_close)
        self.hint.setVisible(False)
        layout.addWidget(self.hint)
        self.canvas_holder = QtWidgets.QStackedWidget()
        empty = QtWidgets.QLabel(tr("Open a project (Ctrl+O) or create one from the sample (File ▸ New from "
                                    "sample) to start."))
        empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        empty.setWordWrap(True)
        self.canvas_holder.addWidget(empty)
        layout.addWidget(self.canvas_holder, 1)
        self.setCentralWidget(self.central)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.run_label = QtWidgets.QLabel(tr("Ready"))
        self.run_progress = QtWidgets.QProgressBar(maximumWidth=180, textVisible=False)
        self.run_progress.setRange(0, 0)
        self.run_progress.setVisible(False)
        bar.addPermanentWidget(self.run_label)
        bar.addPermanentWidget(self.run_progress)

    # ---- first-run hint ------------------------------------------------------------------------
    def show_hint(self) -> None:
        self.hint_label.setText(tr(
            "<b>Welcome to Ledgerflow.</b> This sample profiles credit applications, splits them, derives ratio "
            "features and WOE-bins them on the training part, then trains AutoML, a points scorecard and a "
            "gradient-boosting model, evaluates all three, exports the boosting model as a verified ONNX package "
            "and writes predictions with reason codes. Press <b>Run all</b> (F5) to run it, then click an "
            "<b>Evaluate</b> node to see its report, or open the <b>Experiments</b> tab to compare the models. Drag "
            "nodes from the palette on the left; connect ports by dragging from an output to an input; press Tab on "
            "the canvas to search nodes."))
        self.hint.setVisible(True)

    def dismiss_hint(self) -> None:
        self.hint.setVisible(False)
        if not self.prefs.tour_done:
            self.prefs.tour_done = True
            self.prefs.save()

    # ---- project lifecycle ---------------------------------------------------------------------
    def open_project(self, path: str | Path) -> bool:
        """Open a project (offering an autosave left by a crash); False, with a message, when it cannot."""
        if not self.maybe_close_document():
            return False
        file = project_file(Path(path))
        try:
            recovery = find_recovery(file)
            recovered = recovery is not None and self.ask_recover(recovery)
            project = (load_recovered(file, recovery, self.registry) if recovered and recovery
                       else Project.load(file, self.registry))
            document = Document(project, scheduler_address=self.prefs.scheduler_address or None)
        except LedgerflowError as exc:
            self.error(tr("Cannot open the project"), str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - a damaged project must not take the app down
            log.exception("open failed")
            self.error(tr("Cannot open the project"), tr("{path}: {exc}", path=file, exc=exc))
            return False
        document.dirty = recovered  # recovered edits are not in the project file until saved
        try:
            self._attach(document)
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed section a plugin wrote; never half-attached
            log.exception("cannot show the project")
            self._detach()
            self.error(tr("Cannot open the project"), tr("{path}: {exc}", path=file, exc=exc))
            return False
        self.prefs.add_recent(document.project.path)
        self.prefs.save()
        self.project_opened.emit(str(document.project.path))
        return True

    def _attach(self, document: Document) -> None:
        self.document = document
        self.bridge = EngineBridge(document.graph, self)
        self.canvas = CanvasController(document, self.bridge, self)
        self.canvas.selection_changed.connect(self._on_selection)
        self.canvas.node_activated.connect(self.open_output)
        self.canvas.context_requested.connect(self._on_context_menu)
        self.canvas.refused.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.bridge.settings_changed.connect(self._on_settings_changed)
        self.bridge.node_changed.connect(lambda nid, _c: self._on_settings_changed(nid))
        document.after_change.append(self._update_actions)
        self.bridge.log.connect(self.outputs.append_log)
        self.bridge.state_changed.connect(self._on_state_changed)
        self.properties.set_graph(document.graph)
        self.outputs.set_document(document)
        widget = self.canvas.graph.widget
        self.canvas_holder.addWidget(widget)
        self.canvas_holder.setCurrentWidget(widget)
        self.autosaver = Autosaver(document.project)
        self.autosaver.mark_open()
        self._install_canvas_shortcuts(widget)
        self.experiments_view.set_project(document.project, document.session.db)
        self._update_title()
        self._update_actions()
        QtCore.QTimer.singleShot(0, self.canvas.restore_view)

    def _install_canvas_shortcuts(self, widget: QtWidgets.QWidget) -> None:
        """Delete, copy, paste and duplicate act on the canvas only (not on text in the properties panel)."""
        for name in ("delete", "copy", "paste", "duplicate", "select_all", "fit"):
            action = self.actions_[name]
            action.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
            widget.addAction(action)

    def maybe_close_document(self) -> bool:
        """Close the open document, asking about unsaved changes first; False when the user cancels (or a run
        does not stop)."""
        doc = self.document
        if doc is None:
            return True
        if doc.dirty:
            answer = self.ask_save_changes()
            if answer == QtWidgets.QMessageBox.StandardButton.Cancel:
                return False
            if answer == QtWidgets.QMessageBox.StandardButton.Save and not self.save():
                return False
        if self.runner.running:
            self.runner.cancel()
            if not self.runner.wait(60):
                self.error(tr("The run is still stopping"), tr("A node has not stopped yet; try again in a moment."))
                return False
            QtCore.QCoreApplication.processEvents()  # deliver the run's last events before the session closes
        self._detach()
        return True

    def _detach(self) -> None:
        doc = self.document
        if doc is None:
            return
        if self.autosaver:
            self.autosaver.close()
        if self.canvas:
            self.canvas.close()
            widget = self.canvas.graph.widget
            self.canvas_holder.removeWidget(widget)
            widget.deleteLater()
            self.canvas.deleteLater()
        if self.bridge:
            self.bridge.close()
            self.bridge.deleteLater()
        self.properties.show_node(None)
        self.outputs.set_document(None)
        self.report_view.set_report(None)
        self.experiments_view.set_project(None, None)
        doc.close()
        self.document, self.canvas, self.bridge, self.autosaver = None, None, None, None
        self._update_title()
        self._update_actions()

    def save(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        try:
            if self.canvas:
                self.canvas.store_canvas_state()
            doc.save()
        except (OSError, LedgerflowError) as exc:
            self.error(tr("Cannot save the project"), str(exc))
            return False
        if self.autosaver:
            self.autosaver.discard()
        self.statusBar().showMessage(tr("Saved {path}", path=doc.project.path), 5000)
        self._update_title()
        return True

    def save_as(self, folder: str | None = None) -> bool:
        doc = self.document
        if doc is None:
            return False
        folder = folder or QtWidgets.QFileDialog.getExistingDirectory(self, tr("Save the project in a folder"))
        if not folder:
            return False
        target = Path(folder) / PROJECT_FILE
        if target.exists() and target.resolve() != doc.project.path:
            self.error(tr("Cannot save the project"), tr("{path} already holds a project; choose another folder",
                                                         path=folder))
            return False
        old_autosaver = self.autosaver
        try:
            if self.canvas:
                self.canvas.store_canvas_state()
            doc.save(target)
        except (OSError, LedgerflowError) as exc:
            self.error(tr("Cannot save the project"), str(exc))
            return False
        if old_autosaver:
            old_autosaver.close()
        self.autosaver = Autosaver(doc.project)
        self.autosaver.mark_open()
        self.outputs.set_document(doc)
        self.prefs.add_recent(doc.project.path)
        self.prefs.save()
        self._update_title()
        return True

    def autosave(self) -> None:
        if self.document is not None and self.document.dirty and self.autosaver is not None:
            if self.canvas:
                self.canvas.store_canvas_state()
            self.autosaver.save()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self.maybe_close_document():
            self.asset_browser.shutdown()
            event.accept()
        else:
            event.ignore()

    # ---- dialogs -------------------------------------------------------------------------------
    def error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(message.splitlines()[0] if message else title, 10000)
        log.warning("%s: %s", title, message)
        if self.isVisible() and QtWidgets.QApplication.platformName() != "offscreen":
            QtWidgets.QMessageBox.critical(self, title, message)

    def _ask_recover(self, recovery: Recovery) -> bool:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(recovery.saved_at))
        answer = QtWidgets.QMessageBox.question(
            self, tr("Recover unsaved changes?"),
            tr("Ledgerflow did not close normally last time. An autosaved version of this project from {when} has "
               "changes that were not saved. Open the autosaved version?", when=when))
        return answer == QtWidgets.QMessageBox.StandardButton.Yes

    def _ask_save_changes(self) -> QtWidgets.QMessageBox.StandardButton:
        B = QtWidgets.QMessageBox.StandardButton
        return QtWidgets.QMessageBox.question(
            self, tr("Save changes?"), tr("The project has unsaved changes. Save them before closing?"),
            B.Save | B.Discard | B.Cancel, B.Save)

    # ---- editing -------------------------------------------------------------------------------
    def add_node(self, type_id: str) -> str | None:
        return self.canvas.add_node(type_id) if self.canvas else None

    def _push_from_panel(self, command):  # noqa: ANN001, ANN202 - engine Command in, engine Command out
        if self.document is None:
            raise LedgerflowError(tr("No project is open"))
        return self.document.push(command)

    def _columns_for(self, node_id: str, port: str = "") -> list[str]:
        return upstream_columns(self.document, node_id, port) if self.document else []

    def _project_dir(self) -> Path | None:
        return self.document.project.directory if self.document else None

    def undo(self) -> None:
        self._guarded(lambda: self.document.undo() if self.document else None)

    def redo(self) -> None:
        self._guarded(lambda: self.document.redo() if self.document else None)

    def _guarded(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except LedgerflowError as exc:
            self.statusBar().showMessage(str(exc), 8000)
        self.properties.refresh()
        self._update_actions()

    def _on_selection(self, ids: list[str]) -> None:
        node_id = ids[0] if len(ids) == 1 else None
        self.properties.show_node(node_id)
        self.outputs.show_node(node_id)
        self._update_actions()

    def _on_settings_changed(self, node_id: str) -> None:
        if self.properties.node_id == node_id:
            self.properties.refresh()
        self._update_title()
        self._update_actions()

    def _on_state_changed(self, node_id: str, snap: dict) -> None:
        if node_id == self.outputs.node_id and snap["state"] in ("done", "failed", "cancelled", "stale"):
            self.outputs.show_node(node_id)

    def open_output(self, node_id: str) -> None:
        """Show a node's output in the right viewer (report first, then data), and its log when it failed."""
        if self.canvas:
            self.canvas.select([node_id])
        doc = self.document
        st = doc.session.status.get(node_id) if doc else None
        cls = doc.graph.node_class(node_id) if doc else None
        if st is None or cls is None or st.state.value == "failed":
            self.log_dock.raise_()
            return
        types = {cls.output_ports[p].type.type_name for p in st.outputs}
        (self.report_dock if "Report" in types else self.data_dock if "Table" in types else self.log_dock).raise_()

    # ---- running -------------------------------------------------------------------------------
    def run_all(self) -> None:
        self._start_run()

    def run_to_selected(self) -> None:
        ids = self.canvas.selected_ids() if self.canvas else []
        if ids:
            self._start_run(until=ids[0])

    def run_selected_only(self) -> None:
        ids = self.canvas.selected_ids() if self.canvas else []
        if ids:
            self._start_run(only=ids[0])

    def _start_run(self, until: str | None = None, only: str | None = None) -> None:
        if self.document is None:
            return
        self._run_t0 = time.perf_counter()
        if not self.runner.start(self.document, until=until, only=only):
            self.statusBar().showMessage(tr("A run is already in progress"), 5000)
        self._update_actions()

    def cancel_run(self) -> None:
        if self.runner.running:
            self.runner.cancel()
            self.run_label.setText(tr("Cancelling…"))

    def _on_run_started(self, what: str) -> None:
        self.run_label.setText(what)
        self.run_progress.setVisible(True)
        self._update_actions()

    def _on_run_finished(self, report: RunReport) -> None:
        self.run_progress.setVisible(False)
        self.experiments_view.refresh()
        self.asset_browser.refresh_if_loaded()  # a Publish node may have published
        results = list(report.nodes.values())
        done = sum(r.status == "done" for r in results)
        cached = sum(r.cached for r in results)
        failed = [r.title for r in results if r.status == "failed"]
        secs = time.perf_counter() - self._run_t0
        if report.cancelled:
            text = tr("Run cancelled after {secs:.1f} s", secs=secs)
        elif failed:
            text = tr("Run finished with errors in {nodes} ({secs:.1f} s)", nodes=", ".join(failed), secs=secs)
        else:
            text = tr("Run finished: {done} nodes done ({cached} from cache) in {secs:.1f} s", done=done,
                      cached=cached, secs=secs)
        self.run_label.setText(text)
        if self.canvas and not self.canvas.selected_ids() and (nid := self.outputs.first_report_node()):
            self.canvas.select([nid])
            self.open_output(nid)
        elif self.outputs.node_id:
            self.outputs.show_node(self.outputs.node_id)
        self.properties.refresh()
        self._update_actions()
        self.run_done.emit(report)

    def _on_run_failed(self, message: str) -> None:
        self.run_progress.setVisible(False)
        self.run_label.setText(tr("Run not started"))
        self.error(tr("The workflow cannot run"), message)
        self._update_actions()
        self.run_done.emit(None)

    def open_labeling(self) -> None:
        """The labeling window of the open project (File ▸ Labeling…), as `ledgerflow label` shows it."""
        if self.document is None:
            return
        from app.labeling import LabelingWindow

        window = LabelingWindow(self.document.project.directory)
        window.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.labeling_window = window  # kept alive while open
        window.show()

    # ---- context menu, help --------------------------------------------------------------------
    def _on_context_menu(self, node_id: str, global_pos: QtCore.QPoint, scene_pos: QtCore.QPointF) -> None:
        from app.menus import context_menu

        menu = context_menu(self, node_id, scene_pos)
        menu.exec(global_pos)
        menu.deleteLater()  # its actions hold the canvas; do not keep one menu per right-click

    def rename_node(self, node_id: str) -> None:
        if not self.document or not self.canvas:
            return
        old = self.document.graph.nodes[node_id].title
        new, ok = QtWidgets.QInputDialog.getText(self, tr("Rename node"), tr("New title:"), text=old)
        if ok and new.strip() and new.strip() != old:
            self.canvas.rename(node_id, new.strip())

    def node_help(self, node_id: str) -> None:
        from app.menus import node_help_html

        if self.document:
            QtWidgets.QMessageBox.information(self, tr("Node help"), node_help_html(self.document, node_id))

    # ---- state of actions and title ------------------------------------------------------------
    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle(tr("Ledgerflow"))
        else:
            title = tr("{project} — {folder} — Ledgerflow", project=doc.project.name, folder=doc.project.directory)
            self.setWindowTitle(("• " if doc.dirty else "") + title)

    def _update_actions(self) -> None:
        a, doc = self.actions_, self.document
        has_doc, running = doc is not None, self.runner.running
        selected = bool(self.canvas and self.canvas.selected_ids())
        for name in ("save", "labeling", "add_backdrop", "zoom_in", "zoom_out", "fit", "select_all", "paste"):
            a[name].setEnabled(has_doc)
        a["save_as"].setEnabled(has_doc and not running)
        a["run_all"].setEnabled(has_doc and not running)
        a["run_to"].setEnabled(has_doc and not running and selected)
        a["run_only"].setEnabled(has_doc and not running and selected)
        a["cancel"].setEnabled(running)
        a["undo"].setEnabled(has_doc and not running and doc.undo_stack.can_undo)  # type: ignore[union-attr]
        a["redo"].setEnabled(has_doc and not running and doc.undo_stack.can_redo)  # type: ignore[union-attr]
        for name in ("delete", "copy", "duplicate"):
            a[name].setEnabled(selected)
        self._update_title()
