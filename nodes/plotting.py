"""Shared matplotlib set-up for nodes that draw report figures (Evaluate, Profile).

Figures are `matplotlib.figure.Figure` objects, never pyplot: no global figure registry, so several nodes can plot
in threads at once, and `Report.add_figure` renders them to PNG straight away.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from engine.i18n import current_language

# Chinese labels need a CJK font. matplotlib's per-glyph fallback does not reach fonts inside .ttc collections
# (how Debian ships Noto CJK), so for Chinese the CJK fonts come first; they carry Latin glyphs too.
_LATIN = ["DejaVu Sans"]
_CJK = ["Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei"]


@lru_cache(maxsize=1)
def configure_fonts() -> None:
    """Once per process, before the first figure (rcParams are process-global)."""
    import matplotlib

    chinese = current_language().startswith("zh")
    matplotlib.rcParams["font.sans-serif"] = _CJK + _LATIN if chinese else _LATIN + _CJK
    matplotlib.rcParams["axes.unicode_minus"] = False


def figure(width: float, height: float) -> Any:
    """A new Figure with the fonts configured."""
    configure_fonts()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))
