"""Start the workbench: `ledgerflow gui [PROJECT] [--lang zh_CN|en] [--run] [--screenshot FILE.png]`.

The language is chosen before any widget exists (every label is translated when built): the command line wins,
then the saved preference. `--screenshot` waits until the window is idle (and the run, with `--run`, is over),
saves a PNG of the main window and exits; the docs' screenshots and the CI smoke test use it.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("ledgerflow.app")


def _qt_translator(app: object, lang: str) -> object | None:
    """Qt's own strings (file dialogs, standard buttons) in the chosen language."""
    from PySide6 import QtCore

    if lang == "en":
        return None
    translator = QtCore.QTranslator(app)  # type: ignore[arg-type]
    path = QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.TranslationsPath)
    if translator.load(QtCore.QLocale(lang), "qtbase", "_", path) or translator.load(f"qt_{lang}", path):
        QtCore.QCoreApplication.installTranslator(translator)
        return translator
    return None


def make_application(language: str, scale: float = 1.0) -> tuple[Any, Any]:
    """The QApplication in `language` (Fusion style, Qt's own strings translated, a CJK font first for Chinese),
    its font `scale`d; returns (app, translator): keep the translator alive as long as the app."""
    from PySide6 import QtGui, QtWidgets

    from engine.i18n import set_language

    set_language(language)
    QtWidgets.QApplication.setApplicationName("Ledgerflow")
    QtWidgets.QApplication.setOrganizationName("Ledgerflow")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    translator = _qt_translator(app, language)
    font = QtGui.QFont(app.font())
    if scale != 1.0:
        font.setPointSizeF(max(font.pointSizeF(), 10.5) * scale)
    if language.startswith("zh"):
        font.setFamilies(["Noto Sans CJK SC", "Noto Sans", "Microsoft YaHei", "PingFang SC", font.family()])
    app.setFont(font)
    return app, translator


def run_gui(project: str | None = None, *, lang: str | None = None, run: bool = False,
            screenshot: str | None = None) -> int:

    from app.preferences import Preferences

    prefs = Preferences.load()
    app, _translator = make_application(lang or prefs.language)  # noqa: F841 - kept alive for the app's lifetime

    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow

    window = MainWindow(prefs)
    if screenshot:  # unattended: never block on a question
        from PySide6.QtWidgets import QMessageBox

        window.ask_recover = lambda _r: False
        window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    window.show()
    if project:
        if not window.open_project(project):
            print(window.statusBar().currentMessage(), file=sys.stderr)
            if screenshot:
                return 2
        elif not prefs.tour_done:
            window.show_hint()

    exit_code = 0

    def take_screenshot() -> None:
        nonlocal exit_code
        window.activateWindow()
        QtWidgets.QApplication.processEvents()
        pixmap = window.grab()
        target = Path(screenshot).expanduser()  # type: ignore[arg-type]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not pixmap.save(str(target), "PNG"):
            print(f"could not write {target}", file=sys.stderr)
            exit_code = 2
        window.close()
        app.quit()

    def when_idle() -> None:
        if screenshot:
            QtCore.QTimer.singleShot(800, take_screenshot)

    if run and window.document is not None:
        window.run_done.connect(lambda report: (setattr_exit(report), when_idle()))

        def setattr_exit(report: object) -> None:
            nonlocal exit_code
            exit_code = 0 if report is not None and getattr(report, "ok", False) else 1

        QtCore.QTimer.singleShot(300, window.run_all)
    else:
        when_idle()
    rc = app.exec()
    return exit_code or rc
