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
import threading
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Callable

from engine.errors import LedgerflowError
from engine.fileio import canonical_json
from engine.i18n import tr


def ledgerflow_home() -> Path:
    """Per-user state outside any project (LEDGERFLOW_HOME, else ~/.local/share/ledgerflow)."""
    return Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".local" / "share" / "ledgerflow")


_KEY_BYTES = 32
_key_lock = threading.Lock()


def read_private_file(path: Path, make: Callable[[], bytes]) -> tuple[bytes, os.stat_result]:
    """Read a per-user key file, creating it first (mode 0600, atomically: the first of concurrent creators wins)
    with `make()` when missing. Returns the bytes and the file's stat, for the caller's ownership checks; raises
    OSError."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(make())
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # first writer wins; a concurrent process reads the winner's key
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(), os.fstat(fh.fileno())


@lru_cache(maxsize=4)
def _load_key(path: Path) -> bytes:
    """Read (creating once, atomically) the key; refuse one that others could read or that is malformed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key, st = read_private_file(path, lambda: os.urandom(_KEY_BYTES))
    except OSError as exc:
        raise LedgerflowError(tr("Cannot read or create the cache signing key {path}: {exc}. Set LEDGERFLOW_HOME "
                                 "to a folder you can write.", path=path, exc=exc.strerror or exc)) from None
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise LedgerflowError(tr("The cache signing key {path} must belong to you and be readable by you only "
                                 "(chmod 600 {path})", path=path))
    if len(key) != _KEY_BYTES:
        raise LedgerflowError(tr("The cache signing key {path} is damaged; delete it and Ledgerflow will make a new "
                                 "one (cached results will then be recomputed)", path=path))
    return key


def _key() -> bytes:
    with _key_lock:
        return _load_key(ledgerflow_home() / "cache-signing.key")


def sign(payload: object) -> str:
    """HMAC-SHA256 of the canonical JSON of `payload` under this user's key."""
    key = _key()
    return hmac.new(key, canonical_json(payload).encode("utf-8"), hashlib.sha256).hexdigest()


def verify(payload: object, mac: object) -> bool:
    """True only for a well-formed MAC that matches (compared in constant time)."""
    return isinstance(mac, str) and len(mac) == 64 and mac.isascii() and hmac.compare_digest(sign(payload), mac)
