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

    from matplotlib import font_manager

    chinese = current_language().startswith("zh")
    wanted = _CJK + _LATIN if chinese else _LATIN + _CJK
    installed = {f.name for f in font_manager.fontManager.ttflist}
    # An explicit family list, not the generic "sans-serif": only then does matplotlib fall back glyph by glyph,
    # so Chinese column names render in an English report too.
    matplotlib.rcParams["font.family"] = [f for f in wanted if f in installed] or ["sans-serif"]
    matplotlib.rcParams["font.sans-serif"] = wanted
    matplotlib.rcParams["axes.unicode_minus"] = False


def figure(width: float, height: float) -> Any:
    """A new Figure with the fonts configured."""
    configure_fonts()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def text_width_in(labels: list[str], fontsize: float = 10.0) -> float:
    """Approximate width in inches of the longest label (wide CJK glyphs count double), so a figure can set its
    own margins instead of paying for a tight-bounding-box layout pass."""
    import unicodedata

    def units(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    longest = max((units(str(t)) for t in labels), default=0)
    return longest * fontsize * 0.62 / 72


def barh_margins(fig: Any, labels: list[str], width: float, height: float) -> None:
    """Margins for a horizontal bar chart with `labels` on the y axis and a title and x label."""
    left = min(0.6, (text_width_in(labels) + 0.25) / width)
    fig.subplots_adjust(left=left, right=0.97, bottom=min(0.45, 0.55 / height), top=1 - min(0.4, 0.4 / height))
