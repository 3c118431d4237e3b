"""Model packages as one blob: a deterministic tar, and a safe way back to a folder.

Deterministic, so the same package always has the same content hash (and re-publishing it creates no version):
members sorted by name, mtime 0, owner 0/0 with no names, mode 0644, no compression. Unpacking trusts nothing in
the archive: only plain files with plain names (no folders, absolute paths, `..`, links or devices) are written,
each created exclusively inside the target folder, within a size budget.
"""
from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

from engine.errors import ArtifactIntegrityError, NodeInputError
from engine.i18n import tr

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")
MAX_MEMBERS = 64
_CHUNK = 1 << 20


def pack_folder(folder: Path, target: Path) -> None:
    """Write the files of `folder` (flat: a model package has no subfolders) as a deterministic tar."""
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    for p in entries:
        if p.is_symlink() or not p.is_file():
            raise NodeInputError(tr("Model package {path}: {name} is not a plain file; a package holds files only",
                                    path=folder, name=p.name))
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for p in entries:
            info = tarfile.TarInfo(p.name)
            info.size = p.stat().st_size
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            with open(p, "rb") as fh:
                tar.addfile(info, fh)


def unpack_safely(archive: Path, target: Path, max_bytes: int = 16 << 30) -> list[str]:
    """Extract the plain files of `archive` into the new folder `target`; ArtifactIntegrityError naming the first
    member that is not a plain file with a plain name. Returns the names written."""
    target.mkdir(parents=True, exist_ok=False)
    written: list[str] = []
    total = 0
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                name = member.name
                if not member.isreg() or not _PLAIN_NAME.match(name) or name in written:
                    raise ArtifactIntegrityError(tr(
                        "The model package archive holds {name!r}, which is not a plain file with a plain name "
                        "(absolute paths, '..', folders, links and devices are refused); nothing was used",
                        name=name[:120]))
                if len(written) >= MAX_MEMBERS:
                    raise ArtifactIntegrityError(tr("The model package archive holds more than {n} files",
                                                    n=MAX_MEMBERS))
                total += member.size
                if total > max_bytes:
                    raise ArtifactIntegrityError(tr("The model package archive unpacks to more than {n:,} bytes",
                                                    n=max_bytes))
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has one
                fd = os.open(target / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                written.append(name)
    except (tarfile.TarError, EOFError, io.UnsupportedOperation) as exc:
        raise ArtifactIntegrityError(tr("The model package archive cannot be read: {exc}", exc=exc)) from None
    return written
