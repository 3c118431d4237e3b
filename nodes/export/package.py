"""The model package: a folder a scoring service can take as it is, and check before it trusts it.

Layout: `model.onnx` (+ `model.quant.onnx` when quantized), `model_card.html`, and `manifest.json`, which lists
the SHA-256 of every other file. No pickle anywhere: ONNX is a protobuf graph, the rest is JSON and HTML.

Writing is all-or-nothing: the package is built in a temporary folder beside the target and renamed into place;
an existing package of the same name is moved aside only once the new one is complete, and removed after the
rename (restored if the rename fails), so a failed export never leaves a half-written or missing package.

The manifest is also signed with this user's HMAC key (engine/signing.py): anyone can re-hash the files, and the
exporting user's Ledgerflow can also tell that it wrote this manifest itself.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from engine.errors import ArtifactIntegrityError, NodeInputError
from engine.fileio import fsync_dir, sha256_file
from engine.i18n import tr

PACKAGE_FORMAT = "ledgerflow-model-package"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE_FIELD = "signature"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    """A package name is one plain folder name (letters, digits, dot, dash, underscore): never a path."""
    if not NAME_PATTERN.match(name or ""):
        raise NodeInputError(tr("Package name {name!r}: use letters, digits, '.', '-' and '_' only (up to 100, "
                                "not starting with '.' or '-')", name=name))
    return name


def _sign(manifest: dict) -> dict:
    from engine.signing import sign

    return {"algorithm": "HMAC-SHA256", "key": "ledgerflow user signing key", "mac": sign(manifest)}



def write_package(folder: Path, name: str, files: dict[str, bytes], manifest: dict[str, Any]) -> Path:
    """Write `files` and a manifest (given fields + file hashes + signature) as `folder/name`, atomically."""
    check_name(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists() and not (target / MANIFEST).is_file():
        raise NodeInputError(tr("{path} exists and is not a model package; choose another package name",
                                path=target))
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder))
    try:
        entries = {}
        for rel, data in sorted(files.items()):
            if rel == MANIFEST or "/" in rel or rel.startswith("."):
                raise ValueError(f"bad package file name {rel!r}")
            path = tmp / rel
            with open(path, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            entries[rel] = {"sha256": sha256_file(path), "bytes": len(data)}
        doc = {"format": PACKAGE_FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": entries}
        doc[SIGNATURE_FIELD] = _sign(doc)
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a package is meant to be shared
        fsync_dir(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _swap_in(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an old `target` is moved aside first and deleted only after the rename."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(path: Path) -> dict:
    manifest = Path(path) / MANIFEST
    try:
        doc = json.loads(manifest.read_text("utf-8"))
    except FileNotFoundError:
        raise ArtifactIntegrityError(tr("{path} is not a model package: it has no {file}", path=path,
                                        file=MANIFEST)) from None
    except (OSError, ValueError) as exc:
        raise ArtifactIntegrityError(tr("{path} cannot be read: {error}", path=manifest, error=exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != PACKAGE_FORMAT:
        raise ArtifactIntegrityError(tr("{path} is not a Ledgerflow model package manifest", path=manifest))
    if not isinstance(doc.get("format_version"), int) or doc["format_version"] > FORMAT_VERSION:
        raise ArtifactIntegrityError(tr("{path} has package format {v}; this Ledgerflow reads up to {max}",
                                        path=manifest, v=doc.get("format_version"), max=FORMAT_VERSION))
    return doc


def verify_package(path: Path) -> dict:
    """Re-hash every file against the manifest; ArtifactIntegrityError naming the first file that differs, is
    missing or is not listed. Returns the manifest (with `signed_here`: whether this user's key signed it)."""
    from engine.signing import verify

    path = Path(path)
    doc = read_manifest(path)
    listed: dict = doc.get("files") or {}
    present = sorted(p.name for p in path.iterdir() if p.name != MANIFEST)
    for name in present:
        if name not in listed:
            raise ArtifactIntegrityError(tr("Model package {path}: file {file} is not in the manifest",
                                            path=path, file=name))
    for name, entry in sorted(listed.items()):
        file = path / name
        if "/" in name or not file.is_file():
            raise ArtifactIntegrityError(tr("Model package {path}: file {file} is missing", path=path, file=name))
        if sha256_file(file) != entry.get("sha256"):
            raise ArtifactIntegrityError(tr("Model package {path}: file {file} was changed after export (its "
                                            "SHA-256 no longer matches the manifest)", path=path, file=name))
    body = {k: v for k, v in doc.items() if k != SIGNATURE_FIELD}
    mac = (doc.get(SIGNATURE_FIELD) or {}).get("mac")
    return {**doc, "signed_here": verify(body, mac)}
