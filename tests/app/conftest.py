"""Qt tests run on a real Qt with the offscreen platform (no display needed), in English unless a test says so."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_QUICK_BACKEND", "software")
