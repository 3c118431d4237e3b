"""The engine, the node library and the asset center never import Qt: they must run headless, in workers, on Dask
and on a server."""
from __future__ import annotations

import subprocess
import sys


def test_engine_nodes_and_assetcenter_load_no_qt_module():
    code = (
        "import pkgutil, importlib, sys, engine, nodes, assetcenter\n"
        "for pkg in (engine, nodes, assetcenter):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "import engine.cli, engine.executors.dask\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', "
        "'NodeGraphQt', 'qtpy'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt modules loaded by engine/nodes/assetcenter: {out.stdout}"
