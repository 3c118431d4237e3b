"""README screenshots of views `ledgerflow gui --screenshot` cannot reach: the Automatic features node's
derivation records, a source's preview dialog, and the Experiments view comparing the template's models. Run by `make screenshots` on a virtual screen:

    python docs/screenshot_views.py PROJECT LANG OUT_FOLDER     (PROJECT already run, e.g. out/shots/en)
"""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6 import QtWidgets

from engine.i18n import set_language


def main(project: str, lang: str, out: Path) -> None:
    set_language(lang)
    from app.main import _qt_translator
    from app.main_window import MainWindow
    from app.preferences import Preferences

    qt = QtWidgets.QApplication([])
    _keep = _qt_translator(qt, lang)  # noqa: F841 - Qt's standard buttons in the same language
    w = MainWindow(Preferences(), None)
    w.ask_recover = lambda _r: False
    w.resize(1440, 900)
    w.show()
    w.open_project(project)
    w.dismiss_hint()

    def settle() -> None:
        for _ in range(20):
            qt.processEvents()

    graph = w.document.graph
    auto = next(n.id for n in graph.nodes.values() if n.type_id == "features.auto")
    w.canvas.select([auto])
    w.outputs.show_node(auto)
    w.data_dock.raise_()
    box = w.outputs.data.port_box
    box.setCurrentIndex(box.findText("records"))
    settle()
    w.grab().save(str(out / f"derivation-records-{lang}.png"))

    read = next(n.id for n in graph.nodes.values() if n.type_id.startswith("io.read_"))
    w.canvas.select([read])
    dialog = w.properties.open_preview(read)
    assert dialog is not None and dialog.wait()
    dialog.resize(1000, 620)
    settle()
    dialog.grab().save(str(out / f"preview-{lang}.png"))
    dialog.close()

    view = w.experiments_view
    w.experiments_dock.raise_()
    view.refresh()
    view.select_runs(view.shown_ids())  # every training node of the template, side by side
    view.tabs.setCurrentIndex(2)  # the overlaid ROC and KS curves
    settle()
    w.grab().save(str(out / f"experiments-{lang}.png"))
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
