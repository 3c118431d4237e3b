"""Content-addressed artifact store and cache index.

Each output value is saved by its port type into a staging folder, hashed, and moved to
`.ledgerflow/artifacts/<digest>`: the folder name *is* the content hash, so verification before a load is a
re-hash and a compare (memoised per file by size, mtime and ctime, so an unchanged file is not re-read).
Artifact files are made read-only. A tampered or corrupt artifact is refused (ArtifactIntegrityError), moved to
quarantine and recomputed. Cache entries are HMAC-signed with a per-user key (engine/signing.py), so entries
this user did not write are not trusted.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select

from engine import db, signing
from engine.errors import ArtifactIntegrityError
from engine.fileio import FileFingerprints, sha256_file
from engine.ports import PortType

log = logging.getLogger("ledgerflow.store")

# Statements built once: SQLAlchemy then reuses their compiled form (a measurable share of per-node overhead).
_PUT_OUTPUT = insert(db.cache_outputs).prefix_with("OR REPLACE")
_PUT_ENTRY = insert(db.cache_entries).prefix_with("OR REPLACE")
_PUT_RESULT = insert(db.node_results).prefix_with("OR REPLACE")
_DROP_OUTPUTS = delete(db.cache_outputs).where(db.cache_outputs.c.cache_key == bindparam("key"))
_SCRATCH_MAX_AGE_S = 24 * 3600
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _entry_payload(cache_key: str, outputs: dict[str, str], receipt: str | None) -> dict:
    return {"cache_key": cache_key, "outputs": outputs, "receipt": receipt}


class ArtifactStore:
    def __init__(self, state_dir: Path, engine: Engine, files: FileFingerprints | None = None) -> None:
        self.root = state_dir / "artifacts"
        self.quarantine = state_dir / "quarantine"
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = engine
        self.files = files or FileFingerprints()
        # Scratch space lives in a folder per open session, locked while the session lives: a sweep removes only
        # folders whose owner is gone, never those of a long run in another process.
        tmp_root = state_dir / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        self._sweep_scratch(tmp_root)
        self.tmp = tmp_root / uuid.uuid4().hex
        self.tmp.mkdir()
        self._lock_fd = os.open(self.tmp / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    @staticmethod
    def _sweep_scratch(tmp_root: Path) -> None:
        for entry in tmp_root.iterdir():
            try:
                fd = os.open(entry / ".lock", os.O_RDWR)
            except OSError:  # no lock file: not a session folder (or one a concurrent session just removed)
                try:
                    stale = time.time() - entry.lstat().st_mtime > _SCRATCH_MAX_AGE_S
                except FileNotFoundError:
                    continue
                if stale:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its session is alive
            finally:
                os.close(fd)
            shutil.rmtree(entry, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.close(self._lock_fd)

    def scratch_dir(self, create: bool = True) -> Path:
        """A fresh folder for a node's working files (named by a random id, never by user input)."""
        path = self.tmp / uuid.uuid4().hex
        if create:
            path.mkdir()
        return path

    def _folder(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArtifactIntegrityError(f"malformed artifact digest {digest!r}")
        return self.root / digest[:2] / digest

    def _digest(self, port_type: type[PortType], folder: Path, memo: bool = True) -> tuple[str, dict[Path, str]]:
        """sha256 over the port type and every (relative path, file hash) in sorted order; also the file hashes."""
        h = hashlib.sha256(port_type.type_name.encode("utf-8") + b"\x00")
        hashes: dict[Path, str] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder)
            hashes[rel] = self.files.hash(path) if memo else sha256_file(path)
            h.update(rel.as_posix().encode("utf-8") + b"\x00" + hashes[rel].encode("ascii") + b"\x00")
        return h.hexdigest(), hashes

    def put(self, port_type: type[PortType], value: Any) -> str:
        """Save a value and return its digest; the index rows are written by `record` in the run's transaction."""
        stage = self.scratch_dir()
        try:
            port_type.save(value, stage)
            for path in stage.rglob("*"):
                if path.is_file():
                    path.chmod(_READ_ONLY)  # nodes get paths into the store; they must not write there
            digest, hashes = self._digest(port_type, stage, memo=False)
            target = self._folder(digest)
            if target.exists():
                try:
                    self.verify(port_type, digest)
                    shutil.rmtree(stage)
                    return digest
                except ArtifactIntegrityError:
                    self.quarantine_artifact(digest)  # a damaged copy must not shadow the fresh one
            target.parent.mkdir(exist_ok=True)
            try:
                os.rename(stage, target)  # atomic on one filesystem: the artifact appears whole or not at all
            except OSError:
                if not target.exists():
                    raise
                self.verify(port_type, digest)  # the same content, stored a moment ago by a concurrent run
                shutil.rmtree(stage)
                return digest
            for rel, file_hash in hashes.items():  # same inodes: the first verification is a stat per file
                self.files.remember(target / rel, file_hash)
            return digest
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    def exists(self, digest: str) -> bool:
        return self._folder(digest).is_dir()

    def verify(self, port_type: type[PortType], digest: str) -> Path:
        folder = self._folder(digest)
        if not folder.is_dir():
            raise ArtifactIntegrityError(f"artifact {digest[:12]} is missing from {self.root}")
        actual, _ = self._digest(port_type, folder)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"artifact {digest[:12]} failed verification: its content hash is now {actual[:12]} "
                f"(the files under {folder} were changed or corrupted)")
        return folder

    def get(self, port_type: type[PortType], digest: str) -> Any:
        """Load a value after verifying its content hash; formats that run code on load are only opened then."""
        return port_type.load(self.verify(port_type, digest))

    def quarantine_artifact(self, digest: str) -> None:
        """Move a damaged artifact aside (kept for investigation), so it is neither loaded nor reused."""
        folder = self._folder(digest)
        if folder.is_dir():
            self.quarantine.mkdir(exist_ok=True)
            self.files.forget_under(folder)
            os.rename(folder, self.quarantine / f"{digest}-{uuid.uuid4().hex[:8]}")
            log.warning("artifact %s moved to %s", digest[:12], self.quarantine)

    # ---- cache index ---------------------------------------------------------------------------
    def lookup(self, cache_key: str) -> tuple[dict[str, str], str | None] | None:
        """(port -> digest, receipt) for a signed, completed cache key whose artifacts exist, else None."""
        with self.db.connect() as conn:
            entry = conn.execute(select(db.cache_entries).where(db.cache_entries.c.cache_key == cache_key)).first()
            if entry is None:
                return None
            rows = conn.execute(select(db.cache_outputs).where(db.cache_outputs.c.cache_key == cache_key)).all()
        outputs = {r.port: r.digest for r in rows}
        if not signing.verify(_entry_payload(cache_key, outputs, entry.receipt), entry.mac):
            log.warning("cache entry %s is not signed by this user; it will be recomputed", cache_key[:12])
            return None
        if not all(self.exists(d) for d in outputs.values()):
            return None
        return outputs, entry.receipt

    def record(self, conn: Connection, node_id: str, type_id: str, cache_key: str, outputs: dict[str, str],
               receipt: str | None, duration_s: float) -> None:
        """Index a completed node's outputs under its cache key (inside the caller's transaction)."""
        stamp = now_iso()
        conn.execute(_DROP_OUTPUTS, {"key": cache_key})
        if outputs:
            conn.execute(_PUT_OUTPUT, [{"cache_key": cache_key, "port": p, "digest": d} for p, d in outputs.items()])
        conn.execute(_PUT_ENTRY, {"cache_key": cache_key, "type_id": type_id, "receipt": receipt,
                                  "duration_s": duration_s, "created_at": stamp,
                                  "mac": signing.sign(_entry_payload(cache_key, outputs, receipt))})
        conn.execute(_PUT_RESULT, {"node_id": node_id, "cache_key": cache_key, "updated_at": stamp})

    def forget(self, cache_key: str) -> None:
        """Drop a cache entry whose artifacts failed verification, so the node re-runs."""
        with self.db.begin() as conn:
            conn.execute(delete(db.cache_outputs).where(db.cache_outputs.c.cache_key == cache_key))
            conn.execute(delete(db.cache_entries).where(db.cache_entries.c.cache_key == cache_key))

    def last_keys(self) -> dict[str, str]:
        with self.db.connect() as conn:
            return {r.node_id: r.cache_key for r in conn.execute(select(db.node_results)).all()}
