"""README screenshots of views `ledgerflow gui --screenshot` cannot reach: the Automatic features node's
derivation records, a source's preview dialog, the Experiments view comparing the template's models, and the Assets
panel on an embedded asset center with a published, approved model. Run by `make screenshots` on a virtual screen:

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

    _populate_assets()
    browser = w.asset_browser
    w.assets_dock.raise_()
    settle()
    browser.refresh()
    assert browser.wait()
    assert browser.select_asset("credit/pd-gbm") and browser.wait()
    browser.tabs.setCurrentIndex(1)  # the lineage graph
    settle()
    w.grab().save(str(out / f"assets-{lang}.png"))
    w.close()


def _populate_assets() -> None:
    """The embedded store (in LEDGERFLOW_HOME) with what a team would have after a week: a loan book, a model
    package trained on it (candidate, then validated by a second person), once; later calls find it there."""
    from assetcenter.local import open_embedded
    from assetcenter.service import Query

    center, admin = open_embedded()
    try:
        if center.search(admin, Query()).total:
            return
        with center.engine.begin() as conn:
            ids = {}
            for name, role in (("ana", "analyst"), ("bo", "approver")):
                ids[name] = center.accounts.create_user(conn, name)
                center.accounts.grant(conn, ids[name], role, "credit")
        ana, bo = (center.accounts.principal(ids[n]) for n in ("ana", "bo"))
        loans = center.publish(ana, project="credit", kind="dataset", name="loans-2024q4",
                               chunks=[b"id,income,default\n" + b"1,52000,0\n" * 500], tags=["retail"],
                               description="Retail loan book, Q4 2024")
        center.publish(ana, project="credit", kind="model_package", name="pd-gbm", chunks=[b"onnx" * 4096],
                       tags=["pd", "retail"], description="Probability of default, LightGBM 300 trees",
                       metadata={"auc": 0.874, "ks": 0.599},
                       lineage=[("trained_on", "version", loans.ref), ("training_run", "run", "4dfce506-2b7e"),
                                ("training_data", "fingerprint", loans.content_sha256)])
        center.promote(bo, "credit/pd-gbm@1", "validated", "Backtest on 2024Q3 holdout: AUC 0.87, PSI 0.04")
    finally:
        center.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
