"""Synthetic sample data with a known generating process, for demos, tests and benchmarks.

The names are re-exported lazily (PEP 562) so that ``python -m resources.sampledata.credit`` does not import
the module twice (runpy warns when the package already imported the module it is about to run).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resources.sampledata.credit import (
        APPLICATION_COLUMNS,
        CHINESE_HEADERS,
        TRANSACTION_COLUMNS,
        TRUE_COEFFICIENTS,
        generate_applications,
        generate_transactions,
        true_logit,
        write_gbk_csv,
    )

__all__ = [
    "APPLICATION_COLUMNS",
    "CHINESE_HEADERS",
    "TRANSACTION_COLUMNS",
    "TRUE_COEFFICIENTS",
    "generate_applications",
    "generate_transactions",
    "true_logit",
    "write_gbk_csv",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from resources.sampledata import credit

        return getattr(credit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
