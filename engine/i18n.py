"""Translation of user-visible engine strings (node titles, descriptions, settings labels, errors).

Catalogs are gettext `.po` files under `resources/translations/<lang>/ledgerflow.po`, read with polib so
translators use standard tools (Poedit, Weblate) and no compile step is needed. The Qt app uses the same catalogs.
Strings are written in English in the code; `tr()` looks them up in the active language at display time.
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

SUPPORTED_LANGUAGES = ("en", "zh_CN")
_TRANSLATIONS = Path(__file__).resolve().parent.parent / "resources" / "translations"
_state = threading.local()
_default_lang = os.environ.get("LEDGERFLOW_LANG", "en")


def set_language(lang: str) -> None:
    """Set the process-wide language (the app calls this once at start-up, before any window is built)."""
    global _default_lang
    if lang not in SUPPORTED_LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; choose one of {', '.join(SUPPORTED_LANGUAGES)}")
    _default_lang = lang
    os.environ["LEDGERFLOW_LANG"] = lang  # worker processes started later write their reports in it too


def current_language() -> str:
    return getattr(_state, "lang", None) or _default_lang


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """msgid -> msgstr for a language; empty for English (the source language) or a missing catalog."""
    path = _TRANSLATIONS / lang / "ledgerflow.po"
    if lang == "en" or not path.exists():
        return {}
    import polib

    return {e.msgid: e.msgstr for e in polib.pofile(str(path)) if e.msgstr and not e.obsolete and "fuzzy" not in e.flags}


def tr(text: str, lang: str | None = None, **fmt: object) -> str:
    """Translate `text` into the active (or given) language; `fmt` fills `{name}` placeholders after translation."""
    translated = catalog(lang or current_language()).get(text, text)
    return translated.format(**fmt) if fmt else translated


def N_(text: str) -> str:
    """Mark a string for extraction without translating it now (class attributes, module constants)."""
    return text
