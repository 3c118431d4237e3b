"""The credit-risk sample run from the workbench against the same run headless, in one process.

Ours: `MainWindow.run_all` until the window reports the run done (engine events crossing into Qt, canvas states,
progress and logs drawn, the report shown). Anchor: `Session.run()` with no GUI. Both start from a fresh copy of
the project (nothing cached) and the same AutoML budget. Target: GUI <= 1.1x headless.
"""
from __future__ import annotations

import time
from pathlib import Path

from bench.common import report
from bench.gui_common import qt_app, scratch_folder


def headless(folder: Path, time_limit: int) -> float:
    from engine.project import Project
    from engine.scheduler import Session
    from engine.templates import create_project

    create_project(folder, "credit-risk", time_limit_s=time_limit)
    with Session(Project.load(folder)) as session:
        t0 = time.perf_counter()
        result = session.run()
        elapsed = time.perf_counter() - t0
    assert result.ok
    return elapsed


def in_gui(folder: Path, time_limit: int) -> float:
    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.preferences import Preferences
    from engine.templates import create_project

    create_project(folder, "credit-risk", time_limit_s=time_limit)
    window = MainWindow(Preferences())
    window.resize(1400, 900)
    window.show()
    assert window.open_project(folder)
    QtWidgets.QApplication.processEvents()
    loop = QtCore.QEventLoop()
    done: list = []
    window.run_done.connect(lambda rep: (done.append(rep), loop.quit()))
    t0 = time.perf_counter()
    window.run_all()
    loop.exec()
    elapsed = time.perf_counter() - t0
    assert done and done[0] is not None and done[0].ok, window.run_label.text()
    window.close()
    return elapsed


def main(time_limit: int = 30) -> dict:
    app = qt_app()  # noqa: F841
    with scratch_folder("lf-bench-run-") as folder:
        ours = in_gui(folder / "gui", time_limit)  # first: any warm-up cost falls on the GUI, not the anchor
        anchor = headless(folder / "headless", time_limit)
        report("credit-risk run, GUI vs headless (s)", ours, anchor, "s", "<= 1.1x headless", ours <= 1.1 * anchor)
        return {"gui_s": ours, "headless_s": anchor}


if __name__ == "__main__":
    main()
