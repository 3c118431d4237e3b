"""The workbench's per-user preferences (language, recent projects, first-run tour) in one small JSON file.

Kept beside the engine's per-user state (LEDGERFLOW_HOME) rather than in QSettings, so tests and CI get an isolated
home by setting one variable, and the file is plain, atomic and diffable.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.fileio import atomic_write_text
from engine.i18n import SUPPORTED_LANGUAGES
from engine.signing import ledgerflow_home

log = logging.getLogger("ledgerflow.app")
MAX_RECENT = 10


@dataclass
class Preferences:
    language: str = "en"
    recent: list[str] = field(default_factory=list)
    tour_done: bool = False
    scheduler_address: str = ""

    @staticmethod
    def path() -> Path:
        return ledgerflow_home() / "workbench.json"

    @classmethod
    def load(cls) -> "Preferences":
        """Read the preferences; a missing or unreadable file gives the defaults (and a log line, never a crash)."""
        try:
            doc = json.loads(cls.path().read_text("utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable preferences %s: %s", cls.path(), exc)
            return cls()
        prefs = cls()
        if doc.get("language") in SUPPORTED_LANGUAGES:
            prefs.language = doc["language"]
        prefs.recent = [str(p) for p in doc.get("recent", []) if isinstance(p, str)][:MAX_RECENT]
        prefs.tour_done = bool(doc.get("tour_done", False))
        prefs.scheduler_address = str(doc.get("scheduler_address", ""))
        return prefs

    def save(self) -> None:
        try:
            atomic_write_text(self.path(), json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False))
        except OSError as exc:
            log.warning("could not save preferences to %s: %s", self.path(), exc)

    def add_recent(self, project_path: Path | str) -> None:
        p = str(Path(project_path).resolve())
        self.recent = [p, *[r for r in self.recent if r != p]][:MAX_RECENT]
