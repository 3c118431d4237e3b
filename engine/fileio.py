"""Content hashing, canonical JSON and atomic writes: the one place the engine touches bytes on disk.

Why one module: the cache key, the artifact store, run records and the project file must all agree on what
"the same content" means, and every write must be crash-safe (temp file, fsync, rename).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
# mkstemp creates 0600 files; finished files get the usual mode for this process's umask instead.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) so equal settings always hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable: the directory entry itself must reach the disk too."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class atomic_output_path:
    """Context manager giving a temp path beside `target`; on success it is renamed over `target`.

    For writers (polars, pyarrow) that want a path rather than bytes.
    """

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(self.tmp, _FILE_MODE)
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)


class FileFingerprints:
    """Content hashes of source files with a size+mtime+ctime fast path.

    The fast path only skips re-reading a file whose size, mtime and ctime are all unchanged; any change, including
    a same-size rewrite (which bumps ctime), re-hashes the content. The memo lives in a JSON file beside the cache.
    """

    def __init__(self, memo_path: Path | None = None) -> None:
        self.memo_path = memo_path
        self._memo: dict[str, list] = {}
        if memo_path and memo_path.exists():
            try:
                self._memo = json.loads(memo_path.read_text("utf-8"))
            except (OSError, ValueError):
                self._memo = {}
        self._dirty = False

    def hash(self, path: Path) -> str:
        path = Path(os.path.abspath(path))  # no symlink resolution: a syscall per call on the hot path
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = self._memo.get(str(path))
        if known and known[:3] == stamp:
            return known[3]
        digest = sha256_file(path)
        self._memo[str(path)] = [*stamp, digest]
        self._dirty = True
        return digest

    def remember(self, path: Path, digest: str) -> None:
        """Record a hash just computed elsewhere (a fresh artifact), so its first verification is a stat."""
        st = os.stat(path)
        self._memo[os.path.abspath(path)] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest]
        self._dirty = True

    def forget_under(self, folder: Path) -> None:
        prefix = os.path.abspath(folder) + os.sep
        for key in [k for k in self._memo if k.startswith(prefix)]:
            del self._memo[key]
        self._dirty = True

    def save(self) -> None:
        """Write the memo atomically, dropping entries for files that no longer exist."""
        if self.memo_path and self._dirty:
            self._memo = {k: v for k, v in self._memo.items() if os.path.exists(k)}
            atomic_write_text(self.memo_path, json.dumps(self._memo, sort_keys=True))
            self._dirty = False
