"""The local signing key: cache entries are HMAC-signed so results are only trusted where they were computed.

The verification digest of an artifact lives in the project's own database, so a hash check alone cannot tell a
crafted project (folder plus database) from a genuine one. An HMAC with a per-user key kept outside the project
can: cache entries that this user's Ledgerflow did not write are treated as not cached, and recomputed, before any
model format that runs code on load is opened. Shared, signed artifacts come with the asset center.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache
from pathlib import Path

from engine.fileio import canonical_json


def ledgerflow_home() -> Path:
    """Per-user state outside any project (LEDGERFLOW_HOME, else ~/.local/share/ledgerflow)."""
    return Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".local" / "share" / "ledgerflow")


@lru_cache(maxsize=4)
def _key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
        try:
            os.link(tmp, path)  # first writer wins; a concurrent process reads the winner's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()


def sign(payload: object) -> str:
    """HMAC-SHA256 of the canonical JSON of `payload` under this user's key."""
    key = _key(ledgerflow_home() / "cache-signing.key")
    return hmac.new(key, canonical_json(payload).encode("utf-8"), hashlib.sha256).hexdigest()


def verify(payload: object, mac: str | None) -> bool:
    return bool(mac) and hmac.compare_digest(sign(payload), mac)  # type: ignore[arg-type]
