"""Docked Assets panel: search the asset center, see an asset's versions, details, lineage and stage history,
promote a model version (maker-checker is the service's rule: its refusal is shown as it is), download a version.

Every call to the asset center runs on one background thread, in order (a server may be slow or far away, and the
embedded store reads SQLite), and comes back through a queued signal, so the window never waits on the network.
The connection is opened lazily, on that thread, when the panel is first shown.
"""
from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from app.lineage_graph import LineageGraph
from engine.i18n import N_, tr

KINDS = ("dataset", "feature_view", "model_package", "workflow", "plugin", "report")
STAGES = ("candidate", "validated", "production", "retired")
KIND_LABELS = {"dataset": N_("Dataset"), "feature_view": N_("Feature view"), "model_package": N_("Model package"),
               "workflow": N_("Workflow"), "plugin": N_("Plugin"), "report": N_("Report")}
STAGE_LABELS = {"candidate": N_("candidate"), "validated": N_("validated"), "production": N_("production"),
                "retired": N_("retired")}
# the service decides (maker-checker, roles); these are only the moves worth offering
NEXT_STAGES = {"candidate": ("validated", "retired"), "validated": ("production", "retired"),
               "production": ("retired",)}
COLUMNS = (N_("Name"), N_("Kind"), N_("Version"), N_("Stage"), N_("Owner"), N_("Date"), N_("Tags"), N_("Sensitive"))
_EMPTY = N_("No assets yet. To publish one, connect a table, or the report of an Export ONNX node, to a "
            "Publish asset node and run it; its versions then appear here.")
_NO_MATCH = N_("No asset matches these filters.")
_REF_ROLE = QtCore.Qt.ItemDataRole.UserRole
SEARCH_DELAY_MS = 300


def _date(stamp: str) -> str:
    return (stamp or "")[:16].replace("T", " ")


def _item(text: str) -> QtWidgets.QTableWidgetItem:
    item = QtWidgets.QTableWidgetItem(text)
    item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
    return item


class _Relay(QtCore.QObject):
    done = QtCore.Signal(object, object, str)  # callback, result, error text (queued from the worker thread)


class PromoteDialog(QtWidgets.QDialog):
    """Target stage and a required comment for a stage change."""

    def __init__(self, version: dict, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("promote-dialog")
        self.setWindowTitle(tr("Promote {ref}", ref=version["ref"]))
        self.target = QtWidgets.QComboBox()
        for stage in NEXT_STAGES.get(version.get("stage") or "", ()):
            self.target.addItem(tr(STAGE_LABELS[stage]), stage)
        self.comment = QtWidgets.QPlainTextEdit()
        self.comment.setPlaceholderText(tr("Why: the validation evidence, the ticket, the decision"))
        note = QtWidgets.QLabel(tr("Promotion to validated or production needs an approver who is not the author "
                                   "of the version (maker-checker). The change and the comment are audited."))
        note.setWordWrap(True)
        form = QtWidgets.QFormLayout()
        form.addRow(tr("Current stage:"), QtWidgets.QLabel(tr(STAGE_LABELS.get(version.get("stage") or "", "—"))))
        form.addRow(tr("Move to:"), self.target)
        form.addRow(tr("Comment:"), self.comment)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.comment.textChanged.connect(self._update)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self._update()

    def _update(self) -> None:
        ok = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.comment.toPlainText().strip()) and self.target.count() > 0)

    def choose(self, stage: str, comment: str) -> None:
        """Fill the dialog (tests and scripts)."""
        self.target.setCurrentIndex(self.target.findData(stage))
        self.comment.setPlainText(comment)

    def values(self) -> tuple[str, str]:
        return str(self.target.currentData()), self.comment.toPlainText().strip()


class AssetBrowser(QtWidgets.QWidget):
    """Filters, the assets found (latest version each), the selected asset's versions and the version's details.

    `open_assets` returns a connected assetcenter.connection.Assets (default: connect() with the saved settings);
    `ask_promotion` and `ask_save_path` are the questions a dialog would ask, replaceable by tests."""

    def __init__(self, open_assets: Callable[[], Any] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._open_assets = open_assets or _default_open
        self._assets: Any = None  # touched only on the worker thread
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledgerflow-assets")
        self._relay = _Relay(self)
        self._relay.done.connect(self._deliver, QtCore.Qt.ConnectionType.QueuedConnection)
        self._pending = 0
        self._closed = False
        self._lock = threading.Lock()
        self._loaded = False
        self._results: list[dict] = []
        self._versions: list[dict] = []
        self._history: list[dict] = []
        self.last_error = ""
        self.ask_promotion: Callable[[dict], tuple[str, str] | None] = self._ask_promotion
        self.ask_save_path: Callable[[dict], Path | None] = self._ask_save_path
        self._build()
        self._search_timer = QtCore.QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS, timeout=self.refresh)
        self._update_state()

    # ------------------------------------------------------------------------------------------------ building
    def _build(self) -> None:
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText(tr("Search asset names…"))
        self.search.setClearButtonEnabled(True)
        self.kind_box = QtWidgets.QComboBox()
        self.kind_box.addItem(tr("Any kind"), None)
        for kind in KINDS:
            self.kind_box.addItem(tr(KIND_LABELS[kind]), kind)
        self.stage_box = QtWidgets.QComboBox()
        self.stage_box.addItem(tr("Any stage"), None)
        for stage in STAGES:
            self.stage_box.addItem(tr(STAGE_LABELS[stage]), stage)
        self.stage_box.setToolTip(tr("With a stage chosen, every version in that stage is listed, not only the "
                                     "latest of each asset"))
        self.refresh_button = QtWidgets.QPushButton(tr("Refresh"))
        self.refresh_button.clicked.connect(self.refresh)
        filters = QtWidgets.QHBoxLayout()
        filters.addWidget(self.search, 2)
        for w in (self.kind_box, self.stage_box, self.refresh_button):
            filters.addWidget(w)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.kind_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.stage_box.currentIndexChanged.connect(lambda _i: self.refresh())

        self.connection_label = QtWidgets.QLabel(tr("Not connected yet"))
        self.connection_label.setStyleSheet("color: palette(mid);")
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        status = QtWidgets.QHBoxLayout()
        status.addWidget(self.connection_label)
        status.addWidget(self.message, 1)

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([tr(c) for c in COLUMNS])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_asset_selected)

        self.versions_list = QtWidgets.QListWidget()
        self.versions_list.currentRowChanged.connect(lambda _r: self._show_details())
        self.promote_button = QtWidgets.QPushButton(tr("Promote…"))
        self.promote_button.setToolTip(tr("Move the selected model version to its next stage (needs the approver "
                                          "role; never for your own version)"))
        self.promote_button.clicked.connect(self._on_promote_clicked)
        self.download_button = QtWidgets.QPushButton(tr("Download…"))
        self.download_button.setToolTip(tr("Save the selected version to a file, after its signature and hash "
                                           "are checked"))
        self.download_button.clicked.connect(self._on_download_clicked)
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QtWidgets.QLabel(tr("Versions")))
        ll.addWidget(self.versions_list, 1)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.promote_button)
        buttons.addWidget(self.download_button)
        ll.addLayout(buttons)

        self.details = QtWidgets.QTextBrowser()
        self.details.setOpenLinks(False)
        self.lineage_list = QtWidgets.QListWidget()
        self.lineage_graph = LineageGraph()
        lineage = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        lineage.addWidget(self.lineage_graph)
        lineage.addWidget(self.lineage_list)
        lineage.setStretchFactor(0, 3)
        lineage.setSizes([260, 70])  # the drawing first; the list below keeps the full ids
        self.history_table = QtWidgets.QTableWidget(0, 6)
        self.history_table.setHorizontalHeaderLabels([tr("When"), tr("Version"), tr("From"), tr("To"), tr("By"),
                                                      tr("Comment")])
        self.history_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.verticalHeader().setVisible(False)
        self.history_table.horizontalHeader().setStretchLastSection(True)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self.details, tr("Details"))
        self.tabs.addTab(lineage, tr("Lineage"))
        self.tabs.addTab(self.history_table, tr("Stage history"))

        lower = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        lower.addWidget(left)
        lower.addWidget(self.tabs)
        lower.setStretchFactor(1, 3)
        self._split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self._split.addWidget(self.table)
        self._split.addWidget(lower)
        self._empty = QtWidgets.QLabel(tr(_EMPTY))
        self._empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setStyleSheet("color: palette(mid);")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(filters)
        layout.addLayout(status)
        layout.addWidget(self._empty, 1)
        layout.addWidget(self._split, 1)

    # ------------------------------------------------------------------------------------------------ background
    def _submit(self, work: Callable[[Any], Any], done: Callable[[Any], None]) -> None:
        """Run `work(assets)` on the worker thread; `done(result)` runs on the GUI thread (errors are shown)."""
        if self._closed:
            return
        with self._lock:
            self._pending += 1

        def job() -> None:
            try:
                if self._assets is None:
                    self._assets = self._open_assets()
                result = work(self._assets)
            except Exception as exc:  # noqa: BLE001 - shown in the panel; the app must not die
                self._relay.done.emit(done, None, str(exc) or type(exc).__name__)
            else:
                self._relay.done.emit(done, result, "")

        self._pool.submit(job)

    @QtCore.Slot(object, object, str)
    def _deliver(self, done: Callable[[Any], None], result: Any, error: str) -> None:
        with self._lock:
            self._pending -= 1
        if error:
            self.show_message(error, error=True)
        else:
            done(result)
        self._update_state()

    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    def wait(self, timeout_ms: int = 20_000) -> bool:
        """For tests and scripts: process events until every queued call has come back."""
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        while (self.busy() or self._search_timer.isActive()) and not deadline.hasExpired():
            QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return not self.busy()

    def reconnect(self) -> None:
        """Drop the connection (the settings changed); the next call opens a new one."""
        if self._closed:
            return
        self._pool.submit(self._close_connection)
        self.connection_label.setText(tr("Not connected yet"))
        if self._loaded:
            self.refresh()

    def shutdown(self, wait: bool = False) -> None:
        """Close the connection and stop the worker thread (the window is closing); a call in flight finishes
        on its own."""
        if self._closed:
            return
        self._closed = True
        self._pool.submit(self._close_connection)
        self._pool.shutdown(wait=wait)

    def _close_connection(self) -> None:  # worker thread
        if self._assets is not None:
            try:
                self._assets.close()
            finally:
                self._assets = None

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:  # after the layout settles: a dock tab behind another is shown, then hidden again
            QtCore.QTimer.singleShot(0, self._load_if_visible)

    def dock_visibility(self, visible: bool) -> None:
        """Connect to the dock's visibilityChanged: a dock tab behind another never gets a new showEvent."""
        if visible and not self._loaded:
            QtCore.QTimer.singleShot(0, self._load_if_visible)

    def _load_if_visible(self) -> None:
        if not self._loaded and self.isVisible() and not self.visibleRegion().isEmpty():
            self.refresh()

    @property
    def loaded(self) -> bool:
        """True once the panel has asked the asset center for anything (it stays lazy until shown)."""
        return self._loaded

    def refresh_if_loaded(self) -> None:
        """After a run (a Publish node may have published): reload only a panel someone has looked at."""
        if self._loaded:
            self.refresh()

    # ------------------------------------------------------------------------------------------------ searching
    def filters(self) -> dict[str, Any]:
        stage = self.stage_box.currentData()
        return {"text": self.search.text().strip() or None, "kind": self.kind_box.currentData(), "stage": stage,
                "latest_only": stage is None, "per_page": 200}

    def refresh(self) -> None:
        self._search_timer.stop()
        self._loaded = True
        filters = self.filters()
        if self.connection_label.text() == tr("Not connected yet"):
            self._submit(lambda a: (a.describe(), a.whoami()), self._show_connection)
        self._submit(lambda a: a.search(**filters)["items"], self._show_results)

    def _show_connection(self, result: tuple[str, dict]) -> None:
        where, me = result
        name = me.get("name") or tr("unknown user")
        roles = "; ".join(f"{p}: {', '.join(r)}" for p, r in sorted((me.get("roles") or {}).items()))
        self.connection_label.setText(tr("{where} — {user}", where=where, user=name))
        self.connection_label.setToolTip(tr("Roles: {roles}", roles=roles or tr("none")))

    def _show_results(self, items: list[dict]) -> None:
        keep = self.selected_ref()
        self._results = items
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(items))
        for row, v in enumerate(items):
            cells = (f"{v['project']}/{v['name']}", tr(KIND_LABELS.get(v["kind"], v["kind"])), str(v["version"]),
                     tr(STAGE_LABELS[v["stage"]]) if v.get("stage") in STAGE_LABELS else "", v["owner"],
                     _date(v["created_at"]), ", ".join(v.get("tags") or []), tr("yes") if v["sensitive"] else "")
            for col, text in enumerate(cells):
                item = _item(text)
                item.setData(_REF_ROLE, v["ref"])
                if col == 0 and v.get("description"):
                    item.setToolTip(v["description"])
                self.table.setItem(row, col, item)
        if keep:
            self.select_asset(keep.split("@")[0])
        self._update_state()

    # ------------------------------------------------------------------------------------------------ selecting
    def shown_refs(self) -> list[str]:
        return [self.table.item(r, 0).data(_REF_ROLE) for r in range(self.table.rowCount())]

    def selected_ref(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(_REF_ROLE) if rows else None

    def select_asset(self, asset: str) -> bool:
        """Select the row of `project/name` (any version); False when it is not listed."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == asset:
                self.table.selectRow(row)
                return True
        return False

    def _on_asset_selected(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            self._versions = []
            self.versions_list.clear()
            self._show_details()
            return
        project, _, rest = ref.partition("/")
        name, _, number = rest.rpartition("@")
        self._submit(lambda a: a.versions(project, name), lambda vs: self._show_versions(vs, int(number)))

    def _show_versions(self, versions: list[dict], select: int | None = None) -> None:
        self._versions = sorted(versions, key=lambda v: -v["version"])
        self.versions_list.blockSignals(True)
        self.versions_list.clear()
        for v in self._versions:
            stage = f" · {tr(STAGE_LABELS[v['stage']])}" if v.get("stage") in STAGE_LABELS else ""
            self.versions_list.addItem(tr("version {n} · {owner} · {date}{stage}", n=v["version"], owner=v["owner"],
                                          date=_date(v["created_at"]), stage=stage))
        numbers = [v["version"] for v in self._versions]
        self.versions_list.setCurrentRow(numbers.index(select) if select in numbers else 0 if numbers else -1)
        self.versions_list.blockSignals(False)
        self._show_details()

    def selected_version(self) -> dict | None:
        row = self.versions_list.currentRow()
        return self._versions[row] if 0 <= row < len(self._versions) else None

    def select_version(self, number: int) -> None:
        numbers = [v["version"] for v in self._versions]
        self.versions_list.setCurrentRow(numbers.index(number))

    def _show_details(self) -> None:
        v = self.selected_version()
        self.lineage_list.clear()
        self.lineage_graph.show_version(v)
        self.history_table.setRowCount(0)
        self._history = []
        if v is None:
            self.details.clear()
            self._update_state()
            return
        esc = html.escape
        rows = [(tr("Reference"), v["ref"]), (tr("Kind"), tr(KIND_LABELS.get(v["kind"], v["kind"]))),
                (tr("Stage"), tr(STAGE_LABELS[v["stage"]]) if v.get("stage") in STAGE_LABELS else "—"),
                (tr("Owner"), v["owner"]), (tr("Published"), _date(v["created_at"])),
                (tr("Size"), tr("{n:,} bytes", n=v["size"])), (tr("SHA-256"), v["content_sha256"]),
                (tr("Signature"), f"{v['signature'].get('alg', '')} {v['signature'].get('key_id', '')}"),
                (tr("Encrypted at rest"), tr("yes") if v["sensitive"] else tr("no")),
                (tr("Tags"), ", ".join(v.get("tags") or []) or "—")]
        parts = [f"<p>{esc(v.get('description') or tr('No description.'))}</p><table>"]
        parts += [f"<tr><th align='left'>{esc(k)}</th><td>{esc(str(val))}</td></tr>" for k, val in rows]
        parts.append(f"</table><h4>{esc(tr('Metadata'))}</h4><pre>"
                     f"{esc(json.dumps(v.get('metadata') or {}, indent=2, ensure_ascii=False, sort_keys=True))}</pre>")
        self.details.setHtml("".join(parts))
        for link in v.get("lineage") or []:
            self.lineage_list.addItem(tr("{relation} ← {kind} {target}", relation=link.get("relation"),
                                         kind=link.get("kind"), target=link.get("target")))
        if not v.get("lineage"):
            self.lineage_list.addItem(tr("No lineage recorded."))
        if v["kind"] == "model_package":
            ref = v["ref"]
            self._submit(lambda a: a.history(ref), lambda h: self._show_history(ref, h))
        self._update_state()

    def _show_history(self, ref: str, history: list[dict]) -> None:
        current = self.selected_version()
        if current is None or current["ref"].split("@")[0] != ref.split("@")[0]:
            return
        self._history = history
        self.history_table.setRowCount(len(history))
        for row, h in enumerate(history):
            cells = (_date(h.get("at") or ""), str(h.get("version")),
                     tr(STAGE_LABELS[h["from"]]) if h.get("from") in STAGE_LABELS else "—",
                     tr(STAGE_LABELS[h["to"]]) if h.get("to") in STAGE_LABELS else str(h.get("to")),
                     str(h.get("by") or ""), str(h.get("comment") or ""))
            for col, text in enumerate(cells):
                self.history_table.setItem(row, col, _item(text))

    def history_rows(self) -> list[dict]:
        return list(self._history)

    def lineage_texts(self) -> list[str]:
        return [self.lineage_list.item(i).text() for i in range(self.lineage_list.count())]

    # ------------------------------------------------------------------------------------------------ actions
    def _ask_promotion(self, version: dict) -> tuple[str, str] | None:
        dialog = PromoteDialog(version, self)
        return dialog.values() if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted else None

    def _ask_save_path(self, version: dict) -> Path | None:
        suggested = f"{version['name']}-v{version['version']}"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, tr("Download {ref}", ref=version["ref"]), suggested)
        return Path(path) if path else None

    def _on_promote_clicked(self) -> None:
        v = self.selected_version()
        if v is None:
            return
        answer = self.ask_promotion(v)
        if answer is None:
            return
        to, comment = answer
        self.promote(v["ref"], to, comment)

    def promote(self, ref: str, to: str, comment: str) -> None:
        """Ask the asset center to move `ref` to `to`; its refusal (roles, maker-checker) is shown as it is."""
        def done(info: dict) -> None:
            self.show_message(tr("{ref} is now {stage}.", ref=info["ref"],
                                 stage=tr(STAGE_LABELS.get(info.get("stage") or "", str(info.get("stage"))))))
            self._after_change(info)
        self._submit(lambda a: a.promote(ref, to, comment), done)

    def _after_change(self, info: dict) -> None:
        project, name = info["project"], info["name"]
        self._submit(lambda a: a.versions(project, name), lambda vs: self._show_versions(vs, info["version"]))
        filters = self.filters()
        self._submit(lambda a: a.search(**filters)["items"], self._show_results)

    def _on_download_clicked(self) -> None:
        v = self.selected_version()
        if v is None:
            return
        target = self.ask_save_path(v)
        if target is not None:
            self.download(v["ref"], target)

    def download(self, ref: str, target: Path) -> None:
        self._submit(lambda a: a.fetch(ref, target),
                     lambda info: self.show_message(tr("Saved {ref} to {path} (signature and SHA-256 checked).",
                                                       ref=info["ref"], path=target)))

    # ------------------------------------------------------------------------------------------------ state
    def show_message(self, text: str, error: bool = False) -> None:
        self.last_error = text if error else ""
        self.message.setText(text)
        self.message.setStyleSheet("color: #c62828;" if error else "color: #2e7d32;")

    def empty_text(self) -> str:
        return self._empty.text() if self._empty.isVisibleTo(self) else ""

    def _update_state(self) -> None:
        has_rows = self.table.rowCount() > 0
        filtered = any(self.filters()[k] for k in ("text", "kind", "stage"))
        self._empty.setText(tr(_NO_MATCH) if filtered else tr(_EMPTY))
        self._empty.setVisible(not has_rows)
        self._split.setVisible(has_rows)
        v = self.selected_version()
        self.promote_button.setEnabled(bool(v and NEXT_STAGES.get(v.get("stage") or "")))
        self.download_button.setEnabled(v is not None)


def _default_open() -> Any:
    from assetcenter.connection import connect

    return connect()
