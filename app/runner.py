"""Runs the workflow off the GUI thread and reports back through Qt signals.

The scheduler's own loop runs in one background thread (heavy nodes go on to worker processes or Dask); the GUI
thread only ever sets the cancel flag, so the window keeps painting and answering input during AutoML.
"""
from __future__ import annotations

import logging
import threading
import traceback

from PySide6 import QtCore

from app.document import Document
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.scheduler import RunReport, Session

log = logging.getLogger("ledgerflow.app")


class RunController(QtCore.QObject):
    started = QtCore.Signal(str)  # a description of what runs
    finished = QtCore.Signal(object)  # RunReport
    failed = QtCore.Signal(str)  # a run that could not start or stopped on an error
    _done = QtCore.Signal(object, str)  # report or None, error text: crosses from the worker thread (queued)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._document: Document | None = None
        self._session: Session | None = None  # the session the run uses, even if the document gets a new one
        self._done.connect(self._on_done, QtCore.Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, document: Document, *, until: str | None = None, only: str | None = None) -> bool:
        """Start a run; False when one is already running."""
        if self._thread is not None:
            return False
        self._document, self._session = document, document.session
        document.running = True
        what = only or until
        self.started.emit(tr("Running up to {node}", node=document.graph.nodes[what].title) if until else
                          tr("Running {node}", node=document.graph.nodes[what].title) if only else
                          tr("Running the workflow"))
        self._thread = threading.Thread(target=self._work, args=(document.session, until, only), name="ledgerflow-run",
                                        daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        if self._session is not None and self._thread is not None:
            self._session.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run thread ends (for closing the window and tests); True when it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _work(self, session: Session, until: str | None, only: str | None) -> None:
        try:
            report = session.run(until=until, only=only)
        except LedgerflowError as exc:
            self._done.emit(None, str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user; the app must not die
            log.error("run failed: %s", traceback.format_exc())
            self._done.emit(None, tr("The run stopped on an internal error: {exc}", exc=exc))
        else:
            self._done.emit(report, "")

    @QtCore.Slot(object, str)
    def _on_done(self, report: RunReport | None, error: str) -> None:
        if self._thread is not None:
            self._thread.join()
        self._thread, self._session = None, None
        if self._document is not None:
            self._document.running = False
        if report is None:
            self.failed.emit(error)
        else:
            self.finished.emit(report)
