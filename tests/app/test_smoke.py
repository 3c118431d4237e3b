"""Smoke tests of the real `ledgerflow gui` process: the pinned Qt stack starts, draws pipes and takes a screenshot.

A breaking Qt upgrade (PySide6 6.12.0 kills NodeGraphQt 0.6.44 with a refcount fatal error while drawing pipes)
shows up here as a dead subprocess rather than a hung test run.
"""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from PySide6 import QtGui

from engine.templates import create_project

BIN = Path(sys.executable).parent


def test_the_qt_stack_is_the_pinned_one():
    assert version("pyside6-essentials") == "6.11.3", "NodeGraphQt 0.6.44 crashes on PySide6 6.12.0 pipe drawing"
    assert version("nodegraphqt") == "0.6.44"


def test_gui_opens_the_sample_project_draws_it_and_saves_a_screenshot(tmp_path):
    project = create_project(tmp_path / "sample", "credit-risk")
    shot = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([str(BIN / "ledgerflow"), "gui", str(project.directory), "--screenshot", str(shot)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = QtGui.QImage(str(shot))
    assert not image.isNull() and image.width() >= 1000 and image.height() >= 600
    # the canvas is not blank: pipes and nodes give it many distinct colours
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50


def test_gui_reports_a_missing_project_without_crashing(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([str(BIN / "ledgerflow"), "gui", str(tmp_path / "nowhere"), "--screenshot",
                           str(tmp_path / "x.png")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "nowhere" in proc.stderr
