"""The credit-risk sample run from the workbench against the same run headless, in one process.

Ours: `MainWindow.run_all` until the window reports the run done (engine events crossing into Qt, canvas states,
progress and logs drawn, the report shown). Anchor: `Session.run()` with no GUI. Both start from a fresh copy of
the project (nothing cached) and the same AutoML budget. AutoGluon's own run time varies by several percent between identical runs, so the two
are interleaved (GUI first, so warm-up costs fall on it) and the best of each is compared. Target: GUI <= 1.1x
headless.
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


def main(time_limit: int = 30, rounds: int = 2) -> dict:
    app = qt_app()  # noqa: F841
    gui_runs, headless_runs = [], []
    with scratch_folder("lf-bench-run-") as folder:
        for i in range(rounds):
            gui_runs.append(in_gui(folder / f"gui-{i}", time_limit))
            headless_runs.append(headless(folder / f"headless-{i}", time_limit))
    ours, anchor = min(gui_runs), min(headless_runs)
    report("credit-risk run, GUI vs headless (s)", ours, anchor, "s", "<= 1.1x headless", ours <= 1.1 * anchor)
    print(f"{'':<44} GUI runs {', '.join(f'{t:.1f}' for t in gui_runs)} s; headless runs "
          f"{', '.join(f'{t:.1f}' for t in headless_runs)} s")
    return {"gui_s": gui_runs, "headless_s": headless_runs}


if __name__ == "__main__":
    main()
