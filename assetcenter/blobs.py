"""The content-addressed blob folder: every stored file is named by the SHA-256 of its bytes.

Why content addressing: a name that *is* the hash cannot point at other bytes, identical uploads share one file,
and `verify` needs nothing but the file itself. Paths are built only from a validated 64-hex digest, never from an
asset name or id, so path traversal is impossible by construction.

Why this write protocol (temp file, fsync, rename, fsync the folder): a blob appears under its final name only
once every byte is on disk. A crash or kill at any point leaves at most a temp file in tmp/, which is never listed
and which `clean_tmp()` removes. A writer holds an exclusive lock (flock) on its temp file for the whole write,
so `clean_tmp()` can run while other processes upload: it removes only files whose writer is gone (the kernel
drops the lock of a killed process).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.fileio import fsync_dir
from engine.errors import ArtifactIntegrityError, LedgerflowError
from engine.i18n import tr

_DIGEST = re.compile(r"[0-9a-f]{64}")
_TEMP = re.compile(r"blob-[0-9a-f]{32}\.part")
_CHUNK = 1 << 20
_BLOB_MODE = 0o400  # content-addressed files never change; a repair replaces the file by rename


class InvalidDigest(LedgerflowError):
    """A blob reference that is not a SHA-256 digest (64 lowercase hex characters)."""


class BlobTooLarge(LedgerflowError):
    """An upload past the size limit; nothing was stored."""


class BlobHashMismatch(LedgerflowError):
    """An upload whose bytes do not hash to the digest the client declared; nothing was stored."""


class BlobNotFound(LedgerflowError):
    """No blob with this digest in the store."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str  # of the stored bytes
    size: int


def hashing(chunks: Iterable[bytes], into: hashlib._Hash) -> Iterator[bytes]:
    """Pass `chunks` through unchanged, feeding each into the hash `into` (hash while streaming elsewhere)."""
    for chunk in chunks:
        into.update(chunk)
        yield chunk


def check_digest(sha256: object) -> str:
    """Return `sha256` if it is a well-formed digest; otherwise raise InvalidDigest (never build a path from it)."""
    if not isinstance(sha256, str) or not _DIGEST.fullmatch(sha256):
        shown = repr(sha256)
        raise InvalidDigest(tr("{value} is not a SHA-256 digest (64 lowercase hexadecimal characters)",
                               value=shown if len(shown) <= 80 else shown[:77] + "..."))
    return sha256



def _make_dir(path: Path) -> None:
    """Create one folder level (0700) and make its entry durable in the parent."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    fsync_dir(path.parent)


class BlobStore:
    """A folder of blobs at root/ab/cd/<sha256>, with uploads staged in `tmp` (same filesystem as root)."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = Path(root)
        self.tmp = Path(tmp)
        for folder in (self.root, self.tmp):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.stat(self.root).st_dev != os.stat(self.tmp).st_dev:
            raise LedgerflowError(tr("The blob folder {root} and its temporary folder {tmp} must be on the same "
                                     "filesystem", root=self.root, tmp=self.tmp))

    # -- paths ---------------------------------------------------------------------------------------------------
    def path(self, sha256: str) -> Path:
        """The file of a blob; the only way a path is built, and only from a validated digest."""
        digest = check_digest(sha256)
        return self.root / digest[:2] / digest[2:4] / digest

    # -- writing -------------------------------------------------------------------------------------------------
    def _new_temp(self) -> tuple[int, Path]:
        """Create and lock a fresh temp file (O_EXCL, 0600). Retries if `clean_tmp` removed it before we locked."""
        while True:
            tmp = self.tmp / f"blob-{uuid.uuid4().hex}.part"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                return fd, tmp
            os.close(fd)  # a concurrent clean_tmp unlinked it between open and lock

    def write(self, chunks: Iterable[bytes], max_bytes: int, expected_sha256: str | None = None) -> StoredBlob:
        """Stream `chunks` into the store and return the blob's digest and size.

        Refuses (BlobTooLarge) past `max_bytes` and, when `expected_sha256` is given, bytes that hash to anything
        else (BlobHashMismatch); either way, and on any error from `chunks`, nothing is stored and the temp file is
        removed. If the blob already exists it is kept when intact and replaced by the new copy when damaged.
        """
        if expected_sha256 is not None:
            check_digest(expected_sha256)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = self._new_temp()
        try:
            with os.fdopen(fd, "wb", buffering=0) as fh:
                for chunk in chunks:
                    if not isinstance(chunk, (bytes, bytearray, memoryview)):
                        raise TypeError(f"blob chunks must be bytes, not {type(chunk).__name__}")
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(tr("The upload is larger than the limit of {limit} bytes",
                                              limit=max_bytes))
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:  # unbuffered writes may be short
                        view = view[fh.write(view):]
                os.fsync(fh.fileno())
                sha = digest.hexdigest()
                if expected_sha256 is not None and sha != expected_sha256:
                    raise BlobHashMismatch(tr("The upload hashes to {actual}, not to the declared {expected}",
                                              actual=sha, expected=expected_sha256))
                self._commit(tmp, sha, size)  # still under the temp file's lock
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredBlob(sha, size)

    def _commit(self, tmp: Path, sha: str, size: int) -> None:
        final = self.path(sha)
        _make_dir(final.parent.parent)
        _make_dir(final.parent)
        if self.verify(sha, size) is None:
            tmp.unlink()  # an intact copy is already there: keep it
            return
        os.chmod(tmp, _BLOB_MODE)
        os.replace(tmp, final)  # new, or a repair of a damaged copy
        fsync_dir(final.parent)

    # -- reading -------------------------------------------------------------------------------------------------
    def open(self, sha256: str) -> BinaryIO:
        """The blob's bytes for reading (symbolic links are not followed)."""
        path = self.path(sha256)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(tr("Blob {sha256} is not in the store", sha256=sha256)) from None
        except OSError as exc:
            raise ArtifactIntegrityError(tr("Blob {sha256} cannot be opened: {exc}", sha256=sha256,
                                            exc=exc.strerror or exc)) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArtifactIntegrityError(tr("Blob {sha256} is not a regular file", sha256=sha256))
        return os.fdopen(fd, "rb")

    def read_chunks(self, sha256: str, chunk: int = _CHUNK, verify: bool = True) -> Iterator[bytes]:
        """Yield the blob's bytes. With `verify`, the bytes are hashed on the way and ArtifactIntegrityError is
        raised after the last chunk if they do not match the digest, so a consumer never *completes* on bad data."""
        fh = self.open(sha256)  # errors surface here, before the first chunk is asked for
        return self._chunks(fh, sha256, chunk, verify)

    @staticmethod
    def _chunks(fh: BinaryIO, sha256: str, chunk: int, verify: bool) -> Iterator[bytes]:
        digest = hashlib.sha256()
        with fh:
            while block := fh.read(chunk):
                if verify:
                    digest.update(block)
                yield block
        if verify and digest.hexdigest() != sha256:
            raise ArtifactIntegrityError(tr("Blob {sha256} is damaged: its content hashes to {actual}",
                                            sha256=sha256, actual=digest.hexdigest()))

    # -- checking ------------------------------------------------------------------------------------------------
    def verify(self, sha256: str, size: int | None = None) -> str | None:
        """None if the blob is present and its bytes hash to its name (and have `size`, when given); else why not."""
        path = self.path(sha256)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return tr("missing")
        if not stat.S_ISREG(st.st_mode):
            return tr("not a regular file")
        if size is not None and st.st_size != size:
            return tr("size mismatch: {actual} bytes instead of {expected}", actual=st.st_size, expected=size)
        digest = hashlib.sha256()
        try:
            with self.open(sha256) as fh:
                while block := fh.read(_CHUNK):
                    digest.update(block)
        except LedgerflowError as exc:
            return str(exc)
        if digest.hexdigest() != sha256:
            return tr("hash mismatch: the content hashes to {actual}", actual=digest.hexdigest())
        return None

    def exists(self, sha256: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self.path(sha256)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest, in sorted order (temp files and stray names are never listed)."""
        for top in sorted(_names(self.root)):
            if len(top) != 2:
                continue
            for mid in sorted(_names(self.root / top)):
                if len(mid) != 2:
                    continue
                for name in sorted(_names(self.root / top / mid)):
                    if _DIGEST.fullmatch(name) and name.startswith(top + mid) and self.exists(name):
                        yield name

    def clean_tmp(self) -> int:
        """Remove temp files left by interrupted writes; returns how many. Files still locked by a live writer
        (this process or another) are left alone."""
        removed = 0
        for name in _names(self.tmp):
            if not _TEMP.fullmatch(name):
                continue
            path = self.tmp / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # gone meanwhile, or not a regular file of ours
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live writer holds it
            try:
                if os.fstat(fd).st_nlink > 0 and os.stat(path).st_ino == os.fstat(fd).st_ino:
                    os.unlink(path)  # still locked: a writer cannot grab it between the check and the unlink
                    removed += 1
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return removed


def _names(folder: Path) -> list[str]:
    """Names of the real (non-link) folders and files directly in `folder`; empty if it is missing."""
    try:
        with os.scandir(folder) as it:
            return [e.name for e in it if not e.is_symlink()]
    except (FileNotFoundError, NotADirectoryError):
        return []
