"""Settings ▸ Asset center connection…: the server URL, a private CA file and the token.

The URL and CA file go to the user's `assetcenter.json`; the token goes to the operating system's keyring and
nowhere else (not the settings file, not the project). Where no keyring works, the dialog says so and points to
LEDGERFLOW_TOKEN. "Test connection" connects with what is typed (saved or not) on a background thread and shows
who the asset center says you are.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

from assetcenter.connection import (
    ConnectionSettings,
    connect,
    find_token,
    forget_token,
    keyring_status,
    load_settings,
    save_settings,
    store_token,
)
from engine.errors import LedgerflowError
from engine.i18n import tr


class _Relay(QtCore.QObject):
    done = QtCore.Signal(int, str, bool)  # generation, text, ok


class AssetSettingsDialog(QtWidgets.QDialog):
    """Edit and test the asset center connection; `saved` is True once Save succeeded."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("asset-settings")
        self.setWindowTitle(tr("Asset center connection"))
        self.saved = False
        self._generation = 0
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_tested, QtCore.Qt.ConnectionType.QueuedConnection)
        try:
            current = load_settings()
            problem = ""
        except LedgerflowError as exc:
            current, problem = ConnectionSettings(), str(exc)
        self._home = current.home
        self.url = QtWidgets.QLineEdit(current.url or "")
        self.url.setPlaceholderText(tr("https://assets.example.com:8765 — empty: the embedded store on this "
                                       "computer"))
        self.ca_file = QtWidgets.QLineEdit(current.ca_file or "")
        self.ca_file.setPlaceholderText(tr("Only for a private certificate authority"))
        browse = QtWidgets.QPushButton(tr("Browse…"))
        browse.clicked.connect(self._browse_ca)
        ca_row = QtWidgets.QHBoxLayout()
        ca_row.addWidget(self.ca_file, 1)
        ca_row.addWidget(browse)
        self.labels_url = QtWidgets.QLineEdit(current.labels_url or "")
        self.labels_url.setObjectName("asset-settings-labels-url")
        self.labels_url.setPlaceholderText(tr("postgresql+psycopg://you@db.example.com/labels — empty: labels stay "
                                              "in each project"))
        self.labels_url.setToolTip(tr("Where a team's labels live when connected to a server. No password here: "
                                      "PostgreSQL reads it from PGPASSWORD or ~/.pgpass."))
        self.token = QtWidgets.QLineEdit()
        self.token.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.keyring_problem = keyring_status()
        stored = bool(current.url and find_token(current.url))
        self.token.setPlaceholderText(tr("A token is stored for this server; type to replace it") if stored
                                      else tr("Paste the token an admin issued for you"))
        self.forget_button = QtWidgets.QPushButton(tr("Forget stored token"))
        self.forget_button.clicked.connect(self._forget)
        self.forget_button.setEnabled(self.keyring_problem is None and bool(current.url))
        token_row = QtWidgets.QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.forget_button)
        note = QtWidgets.QLabel(self.keyring_problem or tr(
            "The token is kept in the operating system's keyring, never in a file or a project. "
            "LEDGERFLOW_TOKEN and LEDGERFLOW_ASSETCENTER_URL in the environment take precedence."))
        note.setWordWrap(True)
        note.setStyleSheet("color: #c62828;" if self.keyring_problem else "color: palette(mid);")
        self.result = QtWidgets.QLabel(problem)
        self.result.setObjectName("asset-settings-result")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QtWidgets.QFormLayout()
        form.addRow(tr("Server URL:"), self.url)
        form.addRow(tr("CA certificate:"), ca_row)
        form.addRow(tr("Token:"), token_row)
        form.addRow(tr("Shared label database:"), self.labels_url)
        self.test_button = QtWidgets.QPushButton(tr("Test connection"))
        self.test_button.clicked.connect(self.test_connection)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Save
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(self.test_button, QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.result)
        layout.addWidget(buttons)
        self.resize(680, 290)

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(url=self.url.text().strip() or None, ca_file=self.ca_file.text().strip() or None,
                                  home=self._home, labels_url=self.labels_url.text().strip() or None)

    def _browse_ca(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, tr("CA certificate"), "",
                                                        tr("Certificates (*.pem *.crt);;All files (*)"))
        if path:
            self.ca_file.setText(path)

    def _show(self, text: str, ok: bool) -> None:
        self.result.setText(text)
        self.result.setStyleSheet("color: #2e7d32;" if ok else "color: #c62828;")

    # ---- testing ---------------------------------------------------------------------------------------------
    def test_connection(self) -> None:
        """Connect with the typed values on a thread; the answer (who you are, or why not) appears below."""
        self._generation += 1
        generation, settings, token = self._generation, self.settings(), self.token.text().strip() or None
        self._show(tr("Connecting…"), True)

        def work() -> None:
            try:
                with connect(settings, token=token) as assets:
                    me, where = assets.whoami(), assets.describe()
            except Exception as exc:  # noqa: BLE001 - shown in the dialog
                self._relay.done.emit(generation, str(exc) or type(exc).__name__, False)
                return
            roles = "; ".join(f"{p}: {', '.join(r)}" for p, r in sorted((me.get("roles") or {}).items()))
            self._relay.done.emit(generation, tr("Connected to the {where} as {user} (roles: {roles}).",
                                                 where=where, user=me.get("name") or tr("unknown user"),
                                                 roles=roles or tr("none")), True)

        threading.Thread(target=work, name="ledgerflow-asset-test", daemon=True).start()

    def _on_tested(self, generation: int, text: str, ok: bool) -> None:
        if generation == self._generation:
            self._show(text, ok)

    def wait(self, timeout_ms: int = 20_000) -> bool:
        """For tests: process events until the connection test has answered."""
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        while self.result.text() == tr("Connecting…") and not deadline.hasExpired():
            QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return self.result.text() != tr("Connecting…")

    # ---- saving ----------------------------------------------------------------------------------------------
    def save(self) -> None:
        settings = self.settings()
        token = self.token.text().strip()
        try:
            if token:
                if not settings.url:
                    raise LedgerflowError(tr("A token is for a server: enter the server URL too (the embedded store "
                                             "needs none)"))
                store_token(settings.url, token)  # first: a keyring failure must not half-save
            save_settings(settings)
        except (LedgerflowError, OSError) as exc:
            self._show(str(exc), False)
            return
        self.token.clear()
        self.saved = True
        self.accept()

    def _forget(self) -> None:
        url = self.url.text().strip()
        try:
            removed = forget_token(url) if url else False
        except LedgerflowError as exc:
            self._show(str(exc), False)
            return
        self._show(tr("The stored token was removed.") if removed else tr("No token was stored for this server."),
                   True)


def edit_connection(parent: QtWidgets.QWidget, on_saved: Callable[[], None] | None = None) -> bool:
    """Show the dialog; call `on_saved()` after a successful save. True when saved."""
    dialog = AssetSettingsDialog(parent)
    dialog.exec()
    if dialog.saved and on_saved is not None:
        on_saved()
    return dialog.saved


__all__ = ["AssetSettingsDialog", "edit_connection"]
