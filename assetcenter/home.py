"""The folder layout of one asset center, so the app, the CLI and the server agree on where everything lives.

    <root>/assetcenter.db             the embedded SQLite database (a shared server may use PostgreSQL instead)
    <root>/blobs/ab/cd/<sha256>        content-addressed blobs (assetcenter/blobs.py)
    <root>/tmp/                        uploads in progress; on the same filesystem as blobs/ so a rename commits them
    <root>/keys/                       the signing key and the key-encryption keys
    <root>/audit/checkpoints.jsonl     signed audit checkpoints, outside the database (assetcenter/audit.py)

Every folder is created private (0700): blobs may hold sensitive data and keys/ holds secrets. An existing keys/
folder that others can enter is refused rather than silently trusted.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from assetcenter.db import sqlite_url
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.signing import ledgerflow_home

_PRIVATE = 0o700


def default_home() -> Path:
    """The embedded asset center's folder in the user's data directory (works with no setup)."""
    return ledgerflow_home() / "assetcenter"


def _private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing, with mode 0700 regardless of the umask."""
    if not path.is_dir():
        try:
            path.mkdir(parents=True, exist_ok=True, mode=_PRIVATE)
            os.chmod(path, _PRIVATE)  # mkdir's mode is reduced by the umask
        except OSError as exc:
            raise LedgerflowError(tr("Cannot create the asset center folder {path}: {exc}", path=path,
                                     exc=exc.strerror or exc)) from None
    return path


class AssetHome:
    """Folder layout of one asset center: <root>/assetcenter.db (embedded), blobs/, tmp/ (same filesystem as
    blobs, for atomic renames), keys/ (0700: signing key, key-encryption keys), audit/checkpoints.jsonl."""

    def __init__(self, root: Path) -> None:
        self.root = _private_dir(Path(root).expanduser().absolute())
        self.blobs = _private_dir(self.root / "blobs")
        self.tmp = _private_dir(self.root / "tmp")
        self.keys = _private_dir(self.root / "keys")
        self.audit = _private_dir(self.root / "audit")
        self.checkpoints = self.audit / "checkpoints.jsonl"
        self._check_keys_private()
        if os.stat(self.blobs).st_dev != os.stat(self.tmp).st_dev:
            raise LedgerflowError(tr("The asset center folders {blobs} and {tmp} are on different filesystems; "
                                     "uploads are committed by renaming, so they must share one",
                                     blobs=self.blobs, tmp=self.tmp))

    def _check_keys_private(self) -> None:
        st = os.lstat(self.keys)
        if not stat.S_ISDIR(st.st_mode):
            raise LedgerflowError(tr("{path} must be a folder, not a link or a file", path=self.keys))
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise LedgerflowError(tr("The asset center key folder {path} must belong to you and be accessible by "
                                     "you only (chmod 700 {path})", path=self.keys))

    def db_url(self) -> str:
        """The SQLAlchemy URL of the embedded database."""
        return sqlite_url(self.root)

    def __repr__(self) -> str:
        return f"AssetHome({str(self.root)!r})"
