"""The asset center's operations, each with its permission check and audit entry.

The embedded store (the app and the CLI with no server configured) and the HTTP server (assetcenter/server.py) are
two front ends of this one class, so a rule (deny by default, maker-checker, signature checks before any byte is
served, audit of every change and of every sensitive read) exists once.

A version is immutable. Its signed manifest binds the asset's identity, the version number, the content and stored
hashes, size, encryption parameters, metadata, lineage and author; every read re-checks the signature and that the
database row still says what the manifest says, and the content hash is checked as the bytes stream out.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from assetcenter import db
from assetcenter.audit import AuditLog
from assetcenter.auth import Accounts, bootstrap_admin
from assetcenter.blobs import BlobHashMismatch, BlobStore, BlobTooLarge, hashing
from assetcenter.crypto import AES_GCM, SM4_CBC_HMAC_SM3, decrypt_stream, encrypt_stream, needs_rewrap, rewrap
from assetcenter.crypto import IntegrityError as CryptoIntegrityError
from assetcenter.home import AssetHome
from assetcenter.keys import KeyFileProvider, KeyProvider, provider_from_env_or_file
from assetcenter.rbac import (Forbidden, Permission, Principal, allowed, check_maker_checker, projects_allowed,
                              require)
from assetcenter.signatures import load_signer, public_keys, sign_document, verify_document
from engine.errors import ArtifactIntegrityError, LedgerflowError
from engine.fileio import atomic_write_text, canonical_json
from engine.i18n import tr

MAX_UPLOAD_BYTES = 64 << 30  # per version; the server may set less
MANIFEST_FORMAT = "ledgerflow-asset-version/1"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,199}\Z")
PROJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
TAG_RE = re.compile(r"[\w.:/-]{1,64}\Z")
SENSITIVE_CLASSES = frozenset({"C2", "C3"})  # the Profile node's personal-data classes (nodes/explore/pii.py)
_PROMOTIONS = {("candidate", "validated"), ("validated", "production")}


# A center's algorithms, fixed when it is created (`assetcenter init --crypto gm`): "gm" is the 国密 suite.
CRYPTO_FILE = "crypto.json"
CRYPTO_PROFILES = {"standard": {"signature": "ed25519", "encryption": AES_GCM},
                   "gm": {"signature": "sm2", "encryption": SM4_CBC_HMAC_SM3}}


def crypto_profile(home: AssetHome) -> dict[str, str]:
    """The algorithms of the center at `home`: its crypto.json, else the standard suite."""
    path = home.root / CRYPTO_FILE
    if not path.exists():
        return dict(CRYPTO_PROFILES["standard"])
    doc = json.loads(path.read_text("utf-8"))
    name = doc.get("profile")
    if name not in CRYPTO_PROFILES:
        raise LedgerflowError(tr("{path} names an unknown crypto profile {name!r}", path=path, name=str(name)[:40]))
    return dict(CRYPTO_PROFILES[name])


def set_crypto_profile(home: AssetHome, name: str) -> None:
    """Choose the algorithms of a new center; an existing center keeps its own (its keys and signatures use it)."""
    if name not in CRYPTO_PROFILES:
        raise LedgerflowError(tr("Unknown crypto profile {name!r}; use one of {names}", name=name,
                                 names=", ".join(CRYPTO_PROFILES)))
    path = home.root / CRYPTO_FILE
    if path.exists() or (home.root / "assetcenter.db").exists():
        current = json.loads(path.read_text("utf-8")).get("profile") if path.exists() else "standard"
        if current != name:
            raise LedgerflowError(tr("The asset center at {home} already uses the {current} crypto profile",
                                     home=home.root, current=current))
        return
    atomic_write_text(path, json.dumps({"profile": name}))


class AssetError(LedgerflowError):
    """A request the asset center refuses: unknown asset, bad name, bad stage change."""


class AssetNotFound(AssetError):
    """No such asset or version (HTTP 404)."""


class TamperedError(LedgerflowError):
    """A stored version no longer matches its signed manifest, or its bytes no longer match their hash."""


@dataclass(frozen=True)
class VersionInfo:
    """One published version as callers see it (never the wrapped data key)."""

    id: int
    project: str
    kind: str
    name: str
    number: int
    content_sha256: str
    size: int
    sensitive: bool
    stage: str | None
    description: str
    owner: str
    created_at: str
    metadata: dict[str, Any]
    tags: list[str]
    lineage: list[dict[str, str]]
    signature: dict[str, str]

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.name}@{self.number}"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.ref, "project": self.project, "kind": self.kind, "name": self.name,
                "version": self.number, "content_sha256": self.content_sha256, "size": self.size,
                "sensitive": self.sensitive, "stage": self.stage, "description": self.description,
                "owner": self.owner, "created_at": self.created_at, "metadata": self.metadata, "tags": self.tags,
                "lineage": self.lineage, "signature": self.signature}


@dataclass
class Page:
    items: list[VersionInfo]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class Query:
    """Search filters; all optional. `text` matches the name (case-insensitive substring)."""

    text: str | None = None
    kind: str | None = None
    tag: str | None = None
    owner: str | None = None
    project: str | None = None
    stage: str | None = None
    since: str | None = None  # ISO date or timestamp, inclusive
    until: str | None = None  # exclusive
    latest_only: bool = False
    page: int = 1
    per_page: int = 50


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _check(pattern: re.Pattern, value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise AssetError(tr("Invalid {what}: {value!r}", what=what, value=str(value)[:80]))
    return value


def _plain_text(value: str, what: str) -> str:
    """Text any backend can store: no NUL and no unpaired surrogate (PostgreSQL refuses both)."""
    if not isinstance(value, str) or "\x00" in value:
        raise AssetError(tr("Invalid {what}: it holds a NUL character or is not text", what=what))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AssetError(tr("Invalid {what}: it is not valid Unicode text", what=what)) from None
    return value


def parse_ref(ref: str) -> tuple[str, str, int | None]:
    """"project/name@3" (or "project/name", the latest) -> (project, name, number | None)."""
    body, _, number = ref.partition("@")
    project, sep, name = body.partition("/")
    if not sep:
        raise AssetError(tr("An asset reference is project/name[@version]; got {ref!r}", ref=ref[:120]))
    if number and not number.isdigit():
        raise AssetError(tr("A version is a whole number; got {ref!r}", ref=ref[:120]))
    return _check(PROJECT_RE, project, tr("project")), _check(NAME_RE, name, tr("asset name")), \
        (int(number) if number else None)


def classified_sensitive(metadata: dict[str, Any] | None) -> bool:
    """True when the Profile node flagged any column C2/C3 (metadata["sensitivity"]: column -> class)."""
    classes = (metadata or {}).get("sensitivity") or {}
    return isinstance(classes, dict) and bool(SENSITIVE_CLASSES & {str(v) for v in classes.values()})


def _limited(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise BlobTooLarge(tr("The upload is larger than the limit of {n:,} bytes", n=limit))
        yield chunk


def _checked(chunks: Iterable[bytes], expected_sha256: str, ref: str) -> Iterator[bytes]:
    """Pass bytes through and fail at the end if they are not the ones the manifest names."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
        yield chunk
    if h.hexdigest() != expected_sha256:
        raise TamperedError(tr("Asset {ref}: the content no longer matches its SHA-256", ref=ref))


class AssetCenter:
    """One asset center: a home folder (blobs, keys, audit checkpoints) and a database (SQLite or PostgreSQL)."""

    def __init__(self, home: AssetHome | Path, *, db_url: str | None = None, keys: KeyProvider | None = None,
                 signature_algorithm: str | None = None, encryption_algorithm: str | None = None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.home = home if isinstance(home, AssetHome) else AssetHome(Path(home))
        profile = crypto_profile(self.home)
        signature_algorithm = signature_algorithm or profile["signature"]
        encryption_algorithm = encryption_algorithm or profile["encryption"]
        self.engine = db.make_engine(db_url or self.home.db_url())
        self.blobs = BlobStore(self.home.blobs, self.home.tmp)
        self.signer = load_signer(self.home.keys, signature_algorithm)
        self.audit = AuditLog(self.engine, self.home.checkpoints, self.signer)
        self.accounts = Accounts(self.engine)
        self.encryption_algorithm = encryption_algorithm
        self.max_upload_bytes = max_upload_bytes
        self._keys = keys

    def close(self) -> None:
        self.engine.dispose()

    # ---- keys ------------------------------------------------------------------------------------------------
    @property
    def keys(self) -> KeyProvider:
        """Key-encryption keys, loaded on first need (a store with no sensitive data never needs them)."""
        if self._keys is None:
            self._keys = provider_from_env_or_file(self.home.keys)
        return self._keys

    def trusted_keys(self) -> dict[str, dict]:
        """Public signing keys this center accepts (its current key and any it used before)."""
        keys = public_keys(self.home.keys)
        own = self.signer.public_key()
        return {**keys, own["key_id"]: own}

    # ---- publishing ------------------------------------------------------------------------------------------
    def publish(self, who: Principal, *, project: str, kind: str, name: str, chunks: Iterable[bytes],
                description: str = "", tags: Iterable[str] = (), metadata: dict[str, Any] | None = None,
                sensitive: bool | None = None, lineage: Iterable[tuple[str, str, str]] = (),
                remote: str | None = None, expected_sha256: str | None = None) -> VersionInfo:
        """Store the bytes, then (only when they are complete and verified) make the new version visible."""
        require(who, Permission.ASSET_PUBLISH, _check(PROJECT_RE, project, tr("project")))
        _check(NAME_RE, name, tr("asset name"))
        if kind not in db.KINDS:
            raise AssetError(tr("Unknown asset kind {kind!r}; use one of {kinds}", kind=str(kind)[:40],
                                kinds=", ".join(db.KINDS)))
        tags = sorted({_check(TAG_RE, t, tr("tag")) for t in tags})
        metadata = dict(metadata or {})
        _plain_text(description, tr("description"))
        _plain_text(json.dumps(metadata, ensure_ascii=False, default=str), tr("metadata"))
        links = sorted({(_plain_text(str(r), tr("lineage")), _plain_text(str(k), tr("lineage")),
                         _plain_text(str(t), tr("lineage"))) for r, k, t in lineage})
        sensitive = bool(sensitive) or classified_sensitive(metadata)
        content = hashlib.sha256()
        counted = {"size": 0}

        def plain() -> Iterator[bytes]:
            for chunk in hashing(_limited(chunks, self.max_upload_bytes), content):
                counted["size"] += len(chunk)
                yield chunk

        encryption = None
        stream: Iterable[bytes] = _limited(chunks, self.max_upload_bytes)
        if sensitive:
            context = os.urandom(16)
            header, stream = encrypt_stream(plain(), self.keys, self.encryption_algorithm, context)
            encryption = {**header, "context": base64.b64encode(context).decode()}
        limit = self.max_upload_bytes + (self.max_upload_bytes >> 6) + (1 << 20)  # room for encryption framing
        try:  # unencrypted, the announced hash is checked before the blob is committed
            stored = self.blobs.write(stream, max_bytes=limit,
                                      expected_sha256=expected_sha256.lower() if expected_sha256 and not encryption
                                      else None)
        except BlobHashMismatch:
            raise TamperedError(tr("The upload's SHA-256 is not the {want} the client announced; nothing was "
                                   "published", want=str(expected_sha256)[:64])) from None
        if encryption is None:  # the stored bytes are the content: one SHA-256 pass, not two
            content_sha, counted["size"] = stored.sha256, stored.size
        else:
            content_sha = content.hexdigest()
        if expected_sha256 and content_sha != expected_sha256.lower():
            self._discard(stored.sha256)
            raise TamperedError(tr("The upload's SHA-256 is {got}, not the {want} the client announced; nothing was "
                                   "published", got=content_sha, want=expected_sha256[:64]))
        for attempt in range(5):  # two publishers racing for the same next number: the loser retries
            try:
                version_id = self._commit_version(who, project, kind, name, description, tags, metadata, links,
                                                  sensitive, encryption, content_sha, stored.sha256,
                                                  counted["size"], remote)
                break
            except DBIntegrityError:
                if attempt == 4:
                    self._discard(stored.sha256)
                    raise
        self.audit.checkpoint()
        return self._info_by_id(version_id)

    def _commit_version(self, who: Principal, project: str, kind: str, name: str, description: str,
                        tags: list[str], metadata: dict, links: list[tuple[str, str, str]], sensitive: bool,
                        encryption: dict | None, content_sha: str, stored_sha: str, size: int,
                        remote: str | None) -> int:
        with self.engine.begin() as conn:
            asset = conn.execute(select(db.assets).where(db.assets.c.project == project,
                                                         db.assets.c.name == name)).first()
            stamp = now_iso()
            if asset is None:
                asset_id = conn.execute(insert(db.assets).values(project=project, kind=kind, name=name,
                                                                 owner_id=who.user_id, created_at=stamp)
                                        ).inserted_primary_key[0]
            else:
                if asset.kind != kind:
                    raise AssetError(tr("Asset {project}/{name} is a {kind}; it cannot take a {other} version",
                                        project=project, name=name, kind=asset.kind, other=kind))
                asset_id = asset.id
            number = (conn.execute(select(func.max(db.versions.c.number))
                                   .where(db.versions.c.asset_id == asset_id)).scalar() or 0) + 1
            stage = "candidate" if kind == "model_package" else None
            manifest = {"format": MANIFEST_FORMAT, "project": project, "kind": kind, "name": name,
                        "version": number, "content_sha256": content_sha, "stored_sha256": stored_sha,
                        "size": size, "sensitive": sensitive,
                        "encryption": {"alg": encryption["alg"], "context": encryption["context"],
                                       "format": encryption["format"], "chunk_size": encryption["chunk_size"]}
                        if encryption else None,
                        "metadata": metadata, "description": description, "owner": who.name,
                        "created_at": stamp, "lineage": [list(link) for link in links]}
            signature = sign_document(self.signer, manifest)
            conn.execute(update(db.assets).where(db.assets.c.id == asset_id).values(latest_number=number))
            version_id = conn.execute(insert(db.versions).values(
                asset_id=asset_id, number=number, content_sha256=content_sha, stored_sha256=stored_sha, size=size,
                sensitive=sensitive, encryption_json=json.dumps(encryption) if encryption else None,
                metadata_json=canonical_json(metadata), description=description, owner_id=who.user_id,
                created_at=stamp, manifest_json=canonical_json(manifest), signature_json=canonical_json(signature),
                stage=stage)).inserted_primary_key[0]
            for tag in tags:
                conn.execute(insert(db.version_tags).values(version_id=version_id, tag=tag))
            for relation, target_kind, target in links:
                conn.execute(insert(db.lineage).values(version_id=version_id, relation=relation[:32],
                                                       target_kind=target_kind[:16], target=target[:128]))
            if stage:
                conn.execute(insert(db.stage_events).values(version_id=version_id, from_stage=None, to_stage=stage,
                                                            actor_id=who.user_id, comment=tr("published"),
                                                            at=stamp))
            self.audit.append(conn, actor=who.name, action="publish", asset=f"{project}/{name}", version=number,
                              remote=remote, after_hash=content_sha,
                              details={"kind": kind, "size": size, "sensitive": sensitive, "tags": tags})
        return version_id

    def _discard(self, stored_sha: str) -> None:
        """Remove a blob nothing refers to (a refused or lost upload); a blob any version uses stays."""
        with self.engine.connect() as conn:
            used = conn.execute(select(db.versions.c.id).where(db.versions.c.stored_sha256 == stored_sha)).first()
        if used is None:
            path = self.blobs.path(stored_sha)
            path.unlink(missing_ok=True)

    # ---- reading ---------------------------------------------------------------------------------------------
    def resolve(self, who: Principal, ref: str) -> VersionInfo:
        """The version `ref` names (the latest when it names no number); Forbidden/AssetError otherwise."""
        project, name, number = parse_ref(ref)
        require(who, Permission.ASSET_READ, project)
        with self.engine.connect() as conn:
            q = (select(db.versions.c.id).join(db.assets, db.assets.c.id == db.versions.c.asset_id)
                 .where(db.assets.c.project == project, db.assets.c.name == name))
            q = q.where(db.versions.c.number == number) if number else q.order_by(db.versions.c.number.desc())
            row = conn.execute(q.limit(1)).first()
        if row is None:
            raise AssetNotFound(tr("No asset version {ref}", ref=ref))
        return self._info_by_id(row.id)

    def open(self, who: Principal, ref: str, remote: str | None = None) -> tuple[VersionInfo, Iterator[bytes]]:
        """The version and its plaintext bytes. The signature and the row are checked before the first byte; the
        stored and content hashes as the bytes stream (a mismatch raises TamperedError at the end)."""
        info = self.resolve(who, ref)
        if info.sensitive:
            require(who, Permission.ASSET_READ_SENSITIVE, info.project)
        row = self._version_row(info.id)
        problem = self._row_problem(row)
        if problem:
            self.audit.record(actor=who.name, action="blocked_read", asset=f"{info.project}/{info.name}",
                              version=info.number, remote=remote, details={"reason": problem[:500]})
            raise TamperedError(tr("Asset {ref} was blocked: {problem}", ref=info.ref, problem=problem))
        # unencrypted, the stored hash is the content hash that _guarded checks: hashing twice would halve the speed
        chunks: Iterator[bytes] = self.blobs.read_chunks(row.stored_sha256, verify=bool(row.encryption_json))
        if row.encryption_json:
            header = json.loads(row.encryption_json)
            context = base64.b64decode(header["context"])
            chunks = decrypt_stream(chunks, self.keys, {k: v for k, v in header.items() if k != "context"}, context)
        if info.sensitive:
            self.audit.record(actor=who.name, action="read_sensitive", asset=f"{info.project}/{info.name}",
                              version=info.number, remote=remote, before_hash=info.content_sha256)
        return info, self._guarded(who, info, chunks, remote)

    def _guarded(self, who: Principal, info: VersionInfo, chunks: Iterator[bytes],
                 remote: str | None) -> Iterator[bytes]:
        """The bytes, checked against the content hash; damage found while streaming is audited and raised."""
        try:
            yield from _checked(chunks, info.content_sha256, info.ref)
        except (ArtifactIntegrityError, CryptoIntegrityError, TamperedError) as exc:
            self.audit.record(actor=who.name, action="blocked_read", asset=f"{info.project}/{info.name}",
                              version=info.number, remote=remote, details={"reason": str(exc)[:500]})
            raise TamperedError(tr("Asset {ref} was blocked: {problem}", ref=info.ref, problem=str(exc))) from None

    def fetch(self, who: Principal, ref: str, target: Path, remote: str | None = None) -> VersionInfo:
        """Write the version to `target` atomically: a temp file beside it, renamed only once fully verified."""
        info, chunks = self.open(who, ref, remote)
        target = Path(target)
        tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.part")
        try:
            with open(tmp, "xb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def manifest(self, who: Principal, ref: str) -> tuple[dict, dict]:
        """The signed manifest and its signature, for a client to verify with the center's public keys."""
        info = self.resolve(who, ref)
        row = self._version_row(info.id)
        return json.loads(row.manifest_json), json.loads(row.signature_json)

    # ---- search ----------------------------------------------------------------------------------------------
    def search(self, who: Principal, query: Query = Query()) -> Page:
        """Versions the caller may read, newest first, filtered and paged."""
        for value in (query.text, query.kind, query.tag, query.owner, query.project, query.stage, query.since,
                      query.until):
            if value is not None:
                _plain_text(value, tr("search filter"))
        visible = projects_allowed(who, Permission.ASSET_READ)
        page, per_page = max(1, query.page), min(max(1, query.per_page), 500)
        if not visible:
            return Page([], 0, page, per_page)
        v, a = db.versions, db.assets
        cond = []
        if db.ALL_PROJECTS not in visible:
            cond.append(a.c.project.in_(sorted(visible)))
        if query.project:
            cond.append(a.c.project == query.project)
        if query.kind:
            cond.append(a.c.kind == query.kind)
        if query.text:
            cond.append(func.lower(a.c.name).contains(query.text.lower(), autoescape=True))
        if query.owner:
            cond.append(v.c.owner_id == select(db.users.c.id).where(db.users.c.name == query.owner)
                        .scalar_subquery())
        if query.stage:
            cond.append(v.c.stage == query.stage)
        if query.since:
            cond.append(v.c.created_at >= query.since)
        if query.until:
            cond.append(v.c.created_at < query.until)
        if query.tag:
            cond.append(v.c.id.in_(select(db.version_tags.c.version_id).where(db.version_tags.c.tag == query.tag)))
        if query.latest_only:
            cond.append(v.c.number == a.c.latest_number)
        base = select(v.c.id).join(a, a.c.id == v.c.asset_id).where(and_(*cond)) if cond else \
            select(v.c.id).join(a, a.c.id == v.c.asset_id)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(base.subquery())).scalar() or 0
            # LIMIT/OFFSET as literals (validated ints): with bound ones SQLite's planner cannot weigh them and walks
            # the whole created_at index even when a filter matches a few rows (100 ms instead of 5 at 100k)
            ids = [r.id for r in conn.execute(base.order_by(v.c.created_at.desc(), v.c.id.desc())
                                              .limit(literal_column(str(int(per_page))))
                                              .offset(literal_column(str(int((page - 1) * per_page))))).all()]
            items = self._infos(conn, ids)
        return Page(items, total, page, per_page)

    def versions(self, who: Principal, project: str, name: str) -> list[VersionInfo]:
        require(who, Permission.ASSET_READ, project)
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(
                select(db.versions.c.id).join(db.assets, db.assets.c.id == db.versions.c.asset_id)
                .where(db.assets.c.project == project, db.assets.c.name == name)
                .order_by(db.versions.c.number)).all()]
            return self._infos(conn, ids)

    # ---- labels and stages -----------------------------------------------------------------------------------
    def tag(self, who: Principal, ref: str, add: Iterable[str] = (), remove: Iterable[str] = (),
            remote: str | None = None) -> VersionInfo:
        """Add or remove labels; the signed manifest and the content never change."""
        info = self.resolve(who, ref)
        require(who, Permission.LABEL_WRITE, info.project)
        add = sorted({_check(TAG_RE, t, tr("tag")) for t in add} - set(info.tags))
        remove = sorted({_check(TAG_RE, t, tr("tag")) for t in remove} & set(info.tags))
        with self.engine.begin() as conn:
            for t in add:
                conn.execute(insert(db.version_tags).values(version_id=info.id, tag=t))
            for t in remove:
                conn.execute(db.version_tags.delete().where(db.version_tags.c.version_id == info.id,
                                                            db.version_tags.c.tag == t))
            self.audit.append(conn, actor=who.name, action="tag", asset=f"{info.project}/{info.name}",
                              version=info.number, remote=remote, details={"added": add, "removed": remove})
        self.audit.checkpoint()
        return self._info_by_id(info.id)

    def promote(self, who: Principal, ref: str, to_stage: str, comment: str,
                remote: str | None = None) -> VersionInfo:
        """Move a model version to its next stage: validated and production need an approver who is not the
        author (maker-checker); any stage can be retired. Promoting to production retires the previous one."""
        info = self.resolve(who, ref)
        if info.kind != "model_package" or info.stage is None:
            raise AssetError(tr("Only model packages move through stages; {ref} is a {kind}", ref=info.ref,
                                kind=info.kind))
        comment = _plain_text(comment or "", tr("comment")).strip()
        if not comment:
            raise AssetError(tr("A stage change needs a comment"))
        if to_stage == "retired":
            require(who, Permission.STAGE_RETIRE, info.project)
            if info.stage == "retired":
                raise AssetError(tr("{ref} is already retired", ref=info.ref))
        elif (info.stage, to_stage) in _PROMOTIONS:
            require(who, Permission.STAGE_APPROVE, info.project)
            with self.engine.connect() as conn:
                author = conn.execute(select(db.versions.c.owner_id).where(db.versions.c.id == info.id)).scalar()
            check_maker_checker(author, who.user_id)
        else:
            raise AssetError(tr("{ref} is {stage}: it cannot move to {target} (candidate → validated → production; "
                                "any stage → retired)", ref=info.ref, stage=info.stage, target=str(to_stage)[:20]))
        with self.engine.begin() as conn:
            changed = [(info.id, info.stage, to_stage, comment)]
            if to_stage == "production":
                for old in conn.execute(select(db.versions.c.id, db.versions.c.number)
                                        .where(db.versions.c.asset_id == select(db.versions.c.asset_id)
                                               .where(db.versions.c.id == info.id).scalar_subquery(),
                                               db.versions.c.stage == "production")).all():
                    changed.append((old.id, "production", "retired",
                                    tr("superseded by version {n}", n=info.number)))
            stamp = now_iso()
            for vid, before, after, text in changed:
                done = conn.execute(update(db.versions).where(db.versions.c.id == vid, db.versions.c.stage == before)
                                    .values(stage=after))
                if done.rowcount != 1:  # someone else moved it meanwhile
                    raise AssetError(tr("{ref} changed stage meanwhile; reload and try again", ref=info.ref))
                conn.execute(insert(db.stage_events).values(version_id=vid, from_stage=before, to_stage=after,
                                                            actor_id=who.user_id, comment=text, at=stamp))
                number = conn.execute(select(db.versions.c.number).where(db.versions.c.id == vid)).scalar()
                self.audit.append(conn, actor=who.name, action="stage", asset=f"{info.project}/{info.name}",
                                  version=number, remote=remote,
                                  before_hash=_state_hash(vid, before), after_hash=_state_hash(vid, after),
                                  details={"from": before, "to": after, "comment": text[:1000]})
        self.audit.checkpoint()
        return self._info_by_id(info.id)

    def history(self, who: Principal, ref: str) -> list[dict[str, Any]]:
        """Every stage change of the asset's versions, oldest first, with who approved and why."""
        info = self.resolve(who, ref)
        e, v, u = db.stage_events, db.versions, db.users
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(e.c.at, e.c.from_stage, e.c.to_stage, e.c.comment, v.c.number, u.c.name)
                .join(v, v.c.id == e.c.version_id).join(u, u.c.id == e.c.actor_id)
                .where(v.c.asset_id == select(v.c.asset_id).where(v.c.id == info.id).scalar_subquery())
                .order_by(e.c.id)).all()
        return [{"at": r.at, "version": r.number, "from": r.from_stage, "to": r.to_stage, "by": r.name,
                 "comment": r.comment} for r in rows]

    def record_label_events(self, who: Principal, project: str, source: str, events: list[dict[str, Any]],
                            remote: str | None = None) -> dict[str, int]:
        """Labeling work into the audit log, exactly once per event (assetcenter/label_events.py)."""
        from assetcenter import label_events

        return label_events.record(self, who, project, label_events.parse_batch(source, events), remote=remote)

    # ---- accounts (each change audited) ----------------------------------------------------------------------
    def init(self) -> str:
        """Create the first admin and return a one-time token (24 h); refused once any user exists."""
        token = bootstrap_admin(self.engine, self.accounts._hasher)
        self.audit.record(actor="admin", action="init", details={"user": "admin", "role": "admin"})
        return token

    def authenticate(self, token: str) -> Principal:
        return self.accounts.authenticate(token)

    def redeem(self, token: str, label: str = "", expires_in: timedelta | None = None,
               remote: str | None = None) -> tuple[Principal, str]:
        """Exchange a one-time token (from init) for a normal one."""
        principal, new = self.accounts.redeem(token, label=label, expires_in=expires_in)
        self.audit.record(actor=principal.name, action="redeem_token", remote=remote, details={"label": label})
        return principal, new

    def create_user(self, who: Principal, name: str, password: str | None = None,
                    remote: str | None = None) -> int:
        require(who, Permission.USER_ADMIN, db.ALL_PROJECTS)
        with self.engine.begin() as conn:
            user_id = self.accounts.create_user(conn, name, password)
            self.audit.append(conn, actor=who.name, action="create_user", remote=remote,
                              details={"user": name, "login": "password" if password is not None else "token"})
        self.audit.checkpoint()
        return user_id

    def grant(self, who: Principal, user: str, role: str, project: str = db.ALL_PROJECTS,
              remote: str | None = None, revoke: bool = False) -> None:
        require(who, Permission.USER_ADMIN, db.ALL_PROJECTS)
        with self.engine.begin() as conn:
            user_id = self.accounts.user_id(conn, user)
            (self.accounts.revoke_role if revoke else self.accounts.grant)(conn, user_id, role, project)
            self.audit.append(conn, actor=who.name, action="revoke_role" if revoke else "grant_role",
                              remote=remote, details={"user": user, "role": role, "project": project})
        self.audit.checkpoint()

    def issue_token(self, who: Principal, user: str | None = None, label: str = "",
                    expires_in: timedelta | None = None, remote: str | None = None) -> str:
        """A token for `user` (admins) or for oneself (everyone); the secret is returned once, never logged."""
        with self.engine.begin() as conn:
            user_id = who.user_id if user in (None, who.name) else self.accounts.user_id(conn, user)
            # TOKEN_SELF is granted by a binding on any project; USER_ADMIN only by one on "*"
            require(who, Permission.TOKEN_SELF if user_id == who.user_id else Permission.USER_ADMIN,
                    db.ALL_PROJECTS)
            token = self.accounts.issue_token(conn, user_id, label=label, expires_in=expires_in)
            self.audit.append(conn, actor=who.name, action="issue_token", remote=remote,
                              details={"user": user or who.name, "label": label, "token_ref": token.split(".")[0]})
        self.audit.checkpoint()
        return token

    def revoke_token(self, who: Principal, token_id: str, remote: str | None = None) -> None:
        admin = allowed(who, Permission.USER_ADMIN, db.ALL_PROJECTS)
        if not admin:
            require(who, Permission.TOKEN_SELF, db.ALL_PROJECTS)
        with self.engine.begin() as conn:
            self.accounts.revoke_token(conn, token_id, owner_id=None if admin else who.user_id)
            self.audit.append(conn, actor=who.name, action="revoke_token", remote=remote,
                              details={"token_ref": token_id[:32]})
        self.audit.checkpoint()

    def audit_entries(self, who: Principal, after_seq: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        require(who, Permission.AUDIT_READ, db.ALL_PROJECTS)
        return [dict(e.__dict__) for e in self.audit.entries(after_seq=after_seq, limit=min(max(1, limit), 5000))]

    # ---- integrity -------------------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Every problem found, the first naming the first broken item: the audit chain and its checkpoints,
        each version's signature and row, each blob's hash, and the audit's publish entries against the
        versions they announced (a deleted or rolled-back version)."""
        problems = list(self.audit.verify(self.trusted_keys()))
        with self.engine.connect() as conn:
            rows = conn.execute(select(db.versions, db.assets.c.project, db.assets.c.name, db.assets.c.kind)
                                .join(db.assets, db.assets.c.id == db.versions.c.asset_id)
                                .order_by(db.versions.c.id)).all()
            published = conn.execute(select(db.audit.c.seq, db.audit.c.asset, db.audit.c.version,
                                            db.audit.c.after_hash).where(db.audit.c.action == "publish")
                                     .order_by(db.audit.c.seq)).all()
        by_ref = {}
        for row in rows:
            ref = f"{row.project}/{row.name}@{row.number}"
            by_ref[ref] = row.content_sha256
            problem = self._row_problem(row)
            if problem:
                problems.append(tr("version {ref}: {problem}", ref=ref, problem=problem))
                continue
            blob = self.blobs.verify(row.stored_sha256, row.size if not row.encryption_json else None)
            if blob:
                problems.append(tr("version {ref}: blob {sha}: {problem}", ref=ref, sha=row.stored_sha256[:16],
                                   problem=blob))
        for entry in published:
            ref = f"{entry.asset}@{entry.version}"
            if ref not in by_ref:
                problems.append(tr("audit entry {seq}: it records the publication of {ref}, which is gone",
                                   seq=entry.seq, ref=ref))
            elif by_ref[ref] != entry.after_hash:
                problems.append(tr("audit entry {seq}: {ref} now has other content than it was published with",
                                   seq=entry.seq, ref=ref))
        return problems

    def rotate_keys(self, who: Principal, remote: str | None = None) -> int:
        """A new key-encryption key becomes current and every data key is re-wrapped under it; no blob is
        rewritten. Returns how many versions were re-wrapped."""
        require(who, Permission.USER_ADMIN, db.ALL_PROJECTS)
        provider = self.keys
        if isinstance(provider, KeyFileProvider):
            provider.rotate()
        count = 0
        with self.engine.begin() as conn:
            for row in conn.execute(select(db.versions.c.id, db.versions.c.encryption_json)
                                    .where(db.versions.c.encryption_json.is_not(None))).all():
                header = json.loads(row.encryption_json)
                inner = {k: v for k, v in header.items() if k != "context"}
                if needs_rewrap(inner, provider):
                    conn.execute(update(db.versions).where(db.versions.c.id == row.id).values(
                        encryption_json=json.dumps({**rewrap(inner, provider), "context": header["context"]})))
                    count += 1
            self.audit.append(conn, actor=who.name, action="rotate_keys", remote=remote,
                              details={"rewrapped": count, "kek_id": provider.current_id()})
        self.audit.checkpoint()
        return count

    # ---- rows to infos ---------------------------------------------------------------------------------------
    def _version_row(self, version_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(db.versions, db.assets.c.project, db.assets.c.name, db.assets.c.kind)
                                .join(db.assets, db.assets.c.id == db.versions.c.asset_id)
                                .where(db.versions.c.id == version_id)).one()

    def _row_problem(self, row: Any) -> str | None:
        """Why a version row cannot be trusted (None when its signature verifies and it says what it signed)."""
        try:
            manifest, signature = json.loads(row.manifest_json), json.loads(row.signature_json)
        except (TypeError, ValueError):
            return tr("its manifest or signature is not valid JSON")
        if not verify_document(self.trusted_keys(), manifest, signature):
            return tr("its manifest signature does not verify")
        header = json.loads(row.encryption_json) if row.encryption_json else None
        expected = {"project": row.project, "kind": row.kind, "name": row.name, "version": row.number,
                    "content_sha256": row.content_sha256, "stored_sha256": row.stored_sha256, "size": row.size,
                    "sensitive": bool(row.sensitive), "description": row.description,
                    "metadata": json.loads(row.metadata_json),
                    "encryption": {k: header[k] for k in ("alg", "context", "format", "chunk_size")}
                    if header else None}
        changed = [k for k, value in expected.items() if manifest.get(k) != value]
        if changed:
            return tr("its row differs from the signed manifest in {fields}", fields=", ".join(changed))
        return None

    def _info_by_id(self, version_id: int) -> VersionInfo:
        with self.engine.connect() as conn:
            return self._infos(conn, [version_id])[0]

    def _infos(self, conn: Any, ids: list[int]) -> list[VersionInfo]:
        if not ids:
            return []
        v, a, u = db.versions, db.assets, db.users
        rows = {r.id: r for r in conn.execute(
            select(v.c.id, v.c.number, v.c.content_sha256, v.c.size, v.c.sensitive, v.c.stage, v.c.description,
                   v.c.created_at, v.c.metadata_json, v.c.signature_json, a.c.project, a.c.kind, a.c.name,
                   u.c.name.label("owner"))
            .join(a, a.c.id == v.c.asset_id).join(u, u.c.id == v.c.owner_id).where(v.c.id.in_(ids))).all()}
        tags: dict[int, list[str]] = {}
        for r in conn.execute(select(db.version_tags).where(db.version_tags.c.version_id.in_(ids))
                              .order_by(db.version_tags.c.tag)).all():
            tags.setdefault(r.version_id, []).append(r.tag)
        links: dict[int, list[dict[str, str]]] = {}
        for r in conn.execute(select(db.lineage).where(db.lineage.c.version_id.in_(ids))).all():
            links.setdefault(r.version_id, []).append({"relation": r.relation, "kind": r.target_kind,
                                                       "target": r.target})
        out = []
        for i in ids:
            r = rows[i]
            sig = json.loads(r.signature_json)
            out.append(VersionInfo(
                id=r.id, project=r.project, kind=r.kind, name=r.name, number=r.number,
                content_sha256=r.content_sha256, size=r.size, sensitive=bool(r.sensitive), stage=r.stage,
                description=r.description, owner=r.owner, created_at=r.created_at,
                metadata=json.loads(r.metadata_json), tags=tags.get(i, []), lineage=links.get(i, []),
                signature={"alg": sig.get("alg", ""), "key_id": sig.get("key_id", "")}))
        return out


def _state_hash(version_id: int, stage: str | None) -> str:
    """The before/after hash of a stage change: what the version's mutable state was and became."""
    return hashlib.sha256(canonical_json({"version_id": version_id, "stage": stage}).encode()).hexdigest()


__all__ = ["AssetCenter", "AssetError", "AssetNotFound", "Forbidden", "Page", "Query", "TamperedError", "VersionInfo", "parse_ref"]
