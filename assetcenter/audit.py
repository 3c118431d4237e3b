"""The tamper-evident audit trail: a hash chain in the database plus signed checkpoints outside it.

Why both: each entry's hash covers the previous entry's hash, so editing, deleting or reordering rows breaks the
chain. But a database superuser could rewrite the whole chain consistently (recomputing every hash). Signed
checkpoints of the chain head, appended to a file outside the database with a key the database never sees, catch
that: a rewritten chain no longer matches the hash a checkpoint signed at that seq, and a truncated chain misses the
entries a checkpoint covers.

entry hash = SHA-256(prev_hash + canonical JSON of the entry's other stored fields), details as stored (raw text).
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, select, update

from assetcenter.db import GENESIS, audit, audit_head
from engine.fileio import canonical_json, fsync_dir
from engine.i18n import tr

CHECKPOINT_KIND = "ledgerflow-audit-checkpoint"  # domain separation: a checkpoint signature is never a manifest's
_BATCH = 2000
_LIMITS = {"actor": 128, "action": 64, "asset": 255, "remote": 128, "before_hash": 64, "after_hash": 64}
# Keys that would put a secret in the trail (which everyone with audit access reads). Matched on lowercased keys.
_SECRET_EXACT = {"token", "api_key", "apikey", "data_key", "kek", "credentials"}
_SECRET_PARTS = ("password", "passwd", "secret", "passphrase", "private_key", "authorization")


class Signer(Protocol):
    """As assetcenter.signatures.Signer (restated so this module stands alone)."""
    algorithm: str
    key_id: str

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> dict: ...


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    asset: str | None
    version: int | None
    remote: str | None
    before_hash: str | None
    after_hash: str | None
    details: dict = field(hash=False)
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditProblem:
    """One finding of `AuditLog.problems`: the entry it concerns (None when no seq can be named) and a message."""
    seq: int | None
    message: str


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The chained hash of a stored row (a mapping with the audit table's columns; `hash`/`prev_hash` ignored)."""
    body = {name: row[name] for name in ("seq", "at", "actor", "action", "asset", "version", "remote",
                                        "before_hash", "after_hash", "details_json")}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def _check_no_secrets(value: Any, where: str = "details") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            low = str(key).lower()
            if low in _SECRET_EXACT or any(part in low for part in _SECRET_PARTS):
                raise ValueError(f"audit {where} must not hold secrets: refusing the key {key!r}")
            _check_no_secrets(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_no_secrets(item, where)


def _to_entry(row: Any) -> AuditEntry:
    try:
        details = json.loads(row.details_json)
    except (TypeError, ValueError):
        details = {"unreadable_details": row.details_json}
    return AuditEntry(seq=row.seq, at=row.at, actor=row.actor, action=row.action, asset=row.asset,
                      version=row.version, remote=row.remote, before_hash=row.before_hash,
                      after_hash=row.after_hash, details=details if isinstance(details, dict) else {"value": details},
                      prev_hash=row.prev_hash, hash=row.hash)


def checkpoint_payload(line: dict) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical_json({"kind": CHECKPOINT_KIND, "seq": line["seq"], "hash": line["hash"], "at": line["at"],
                           "alg": line["alg"], "key_id": line["key_id"]}).encode("utf-8")


def verify_public(public: dict, data: bytes, signature: bytes) -> bool:
    """Check a signature with a public key dict {"alg", "key_id", "public": base64 of the raw key}; False (never an
    exception) for a bad signature or an unusable key. Ed25519 is checked here, so the audit log does not depend on
    the signing module; other algorithms (SM2) by assetcenter.signatures."""
    alg = public.get("alg")
    if alg != "ed25519":
        try:
            from assetcenter.signatures import verify_signature  # lazily: the SM2 option lives there
        except ImportError:
            return False
        return bool(verify_signature(public, data, signature))
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(public["public"], validate=True)
        if public.get("key_id") != hashlib.sha256(raw).hexdigest()[:16]:
            return False  # a key filed under another key's id
        Ed25519PublicKey.from_public_bytes(raw).verify(bytes(signature), data)
        return True
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error):
        return False


class AuditLog:
    """Append entries inside the caller's transaction; write signed checkpoints after commit; verify everything."""

    def __init__(self, engine: Engine, checkpoints: Path, signer: Signer) -> None:
        self.engine = engine
        self.checkpoints = Path(checkpoints)
        self.signer = signer

    # -- writing -------------------------------------------------------------------------------------------------
    def append(self, conn: Connection, *, actor: str, action: str, asset: str | None = None,
               version: int | None = None, remote: str | None = None, before_hash: str | None = None,
               after_hash: str | None = None, details: dict | None = None) -> AuditEntry:
        """Append one entry inside the caller's transaction (it becomes durable, and visible, when they commit).

        The head row is updated first: that takes the write lock on SQLite and the row lock on PostgreSQL, so
        concurrent appenders (threads or processes) queue up and the chain never forks. `details` must not hold
        secrets (keys such as "password" or "token" are refused)."""
        values = {"actor": actor, "action": action, "asset": asset, "remote": remote, "before_hash": before_hash,
                  "after_hash": after_hash}
        for name, limit in _LIMITS.items():
            if values[name] is not None and (not isinstance(values[name], str) or len(values[name]) > limit):
                raise ValueError(f"audit field {name} must be text of at most {limit} characters")
        if not actor or not action:
            raise ValueError("an audit entry needs an actor and an action")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValueError("audit field version must be an integer")
        details = dict(details or {})
        _check_no_secrets(details)
        head = conn.execute(update(audit_head).where(audit_head.c.id == 1)
                            .values(seq=audit_head.c.seq + 1)
                            .returning(audit_head.c.seq, audit_head.c.hash)).one()
        row = {"seq": head.seq, "at": now_iso(), **values, "version": version,
               "details_json": canonical_json(details), "prev_hash": head.hash}
        row["hash"] = entry_hash(head.hash, row)
        conn.execute(audit.insert().values(**row))
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=row["hash"]))
        return _to_entry(_Row(row))

    def record(self, **fields: Any) -> AuditEntry:
        """Append one entry in a transaction of its own, commit it and write a checkpoint (for events that change
        nothing else, such as a blocked download)."""
        with self.engine.begin() as conn:
            entry = self.append(conn, **fields)
        self.checkpoint()
        return entry

    def checkpoint(self) -> None:
        """Append a signed line {"seq", "hash", "at", "alg", "key_id", "signature"} for the committed head to the
        checkpoint file (append + fsync), unless the last line already covers it. Call it after committing.

        The file is locked while the head is read and the line written, so lines from concurrent writers stay in
        seq order."""
        self.checkpoints.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.checkpoints, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.engine.connect() as conn:
                head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                                    .where(audit_head.c.id == 1)).one()
            if head.seq == 0:
                return
            tail = _tail(fd)
            last = _parse_last_line(tail)
            if last is not None and last.get("seq") == head.seq and last.get("hash") == head.hash:
                return
            line = {"seq": head.seq, "hash": head.hash, "at": now_iso(), "alg": self.signer.algorithm,
                    "key_id": self.signer.key_id}
            line["signature"] = base64.b64encode(self.signer.sign(checkpoint_payload(line))).decode("ascii")
            data = (json.dumps(line, sort_keys=True) + "\n").encode("utf-8")
            if tail and not tail.endswith(b"\n"):
                data = b"\n" + data  # a line torn by a crash stays on its own line
            os.write(fd, data)
            os.fsync(fd)
            if not tail:  # the file's first line: make its directory entry durable too
                fsync_dir(self.checkpoints.parent)
        finally:
            os.close(fd)  # also releases the lock

    # -- reading -------------------------------------------------------------------------------------------------
    def entries(self, after_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        query = select(audit).where(audit.c.seq > after_seq).order_by(audit.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_to_entry(row) for row in conn.execute(query)]

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the chain's head as the database states it."""
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        return row.seq, row.hash

    # -- verifying -----------------------------------------------------------------------------------------------
    def verify(self, public_keys: dict[str, dict]) -> list[str]:
        """[] when intact; else human-readable problems, the first naming the first broken entry.

        `public_keys` maps key_id -> {"alg", "key_id", "public"}: the keys trusted to sign checkpoints (old keys
        included after a rotation)."""
        return [p.message for p in self.problems(public_keys)]

    def problems(self, public_keys: dict[str, dict]) -> list[AuditProblem]:
        """Like `verify`, with the seq of each problem; sorted by seq (problems without one come last).

        Safe while others append: checkpoints are read first, then the head, and only entries up to that head are
        checked (an entry and its head are committed together; a checkpoint never runs ahead of the head)."""
        found: list[AuditProblem] = []
        checkpoints = self._read_checkpoints(public_keys, found)  # seq -> (line number, signed hash)
        head_seq, head_hash = self.head()
        stored: dict[int, str] = {}
        expected, prev, last_seq = 1, GENESIS, 0
        for row in self._rows(upto=head_seq):
            if row.seq < expected:  # only possible before entry 1: seq is the key and rows come in order
                found.append(AuditProblem(row.seq, tr(
                    "Audit entry {seq}: out of place (the chain starts at entry 1)", seq=row.seq)))
            elif row.seq > expected:
                found.append(AuditProblem(expected, tr(
                    "Audit entry {seq}: missing (the chain jumps from entry {before} to {after}; rows were deleted)",
                    seq=expected, before=expected - 1, after=row.seq)))
            if row.prev_hash != prev:
                found.append(AuditProblem(row.seq, tr(
                    "Audit entry {seq}: its link to the previous entry is broken (rows were deleted, reordered or "
                    "replaced)", seq=row.seq)))
            if entry_hash(row.prev_hash, row._mapping) != row.hash:
                found.append(AuditProblem(row.seq, tr(
                    "Audit entry {seq}: its content does not match its hash (the row was edited)", seq=row.seq)))
            if row.seq in checkpoints:
                stored[row.seq] = row.hash
            expected, prev, last_seq = row.seq + 1, row.hash, row.seq
        if last_seq != head_seq:
            found.append(AuditProblem(last_seq + 1, tr(
                "Audit entry {seq}: the chain ends at entry {last} but its head records entry {head} (rows were "
                "removed or the head was altered)", seq=last_seq + 1, last=last_seq, head=head_seq)))
        elif prev != head_hash:
            found.append(AuditProblem(last_seq, tr(
                "Audit entry {seq}: its hash differs from the one the chain's head records (the head or the entry "
                "was altered)", seq=last_seq)))
        beyond = self._last_seq()
        later_head = self.head()[0]
        if beyond > later_head:  # rows no head covers, even counting appends made since: the head was moved back
            found.append(AuditProblem(later_head + 1, tr(
                "Audit entry {seq}: lies beyond the chain's head at entry {head} (the head was moved back)",
                seq=later_head + 1, head=later_head)))
        matched = 0
        for seq in sorted(checkpoints):
            line_no, signed = checkpoints[seq]
            if seq > last_seq:
                found.append(AuditProblem(last_seq + 1, tr(
                    "Audit entry {seq}: missing, although the signed checkpoint on line {line} covers the chain up "
                    "to entry {covered} (the chain was truncated)", seq=last_seq + 1, line=line_no, covered=seq)))
                break
            if seq not in stored:
                found.append(AuditProblem(seq, tr(
                    "Audit entry {seq}: missing, although the signed checkpoint on line {line} covers it (rows were "
                    "deleted)", seq=seq, line=line_no)))
            elif stored[seq] != signed:
                found.append(AuditProblem(seq, tr(
                    "Audit entry {seq}: differs from the signed checkpoint on line {line} (the chain was rewritten "
                    "after entry {good})", seq=seq, line=line_no, good=matched)))
            else:
                matched = seq
        return sorted(found, key=lambda p: (p.seq is None, p.seq or 0))

    def _rows(self, upto: int) -> Iterator[Any]:
        """Rows with seq <= upto, in seq order, a batch at a time (the log can be long)."""
        after: int | None = None
        with self.engine.connect() as conn:
            while True:
                query = select(audit).where(audit.c.seq <= upto).order_by(audit.c.seq).limit(_BATCH)
                rows = conn.execute(query if after is None else query.where(audit.c.seq > after)).all()
                yield from rows
                if len(rows) < _BATCH:
                    return
                after = rows[-1].seq

    def _last_seq(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(audit.c.seq))).scalar() or 0

    def _read_checkpoints(self, public_keys: dict[str, dict],
                          found: list[AuditProblem]) -> dict[int, tuple[int, str]]:
        """Validly signed checkpoints by seq; each bad line is added to `found`."""
        good: dict[int, tuple[int, str]] = {}
        try:
            fd = os.open(self.checkpoints, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return good
        with os.fdopen(fd, "rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                line = _parse_line(raw)
                seq = line.get("seq") if line else None
                seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else None
                if line is None or seq is None or not isinstance(line.get("hash"), str):
                    found.append(AuditProblem(None, tr("Audit checkpoint line {line} is malformed", line=line_no)))
                    continue
                public = public_keys.get(line.get("key_id"))  # type: ignore[arg-type]
                if public is None:
                    found.append(AuditProblem(seq, tr(
                        "Audit entry {seq}: the checkpoint on line {line} is signed by an unknown key {key_id}",
                        seq=seq, line=line_no, key_id=str(line.get("key_id"))[:40])))
                    continue
                if not _signature_ok(public, line):
                    found.append(AuditProblem(seq, tr(
                        "Audit entry {seq}: the checkpoint on line {line} has an invalid signature (forged or "
                        "edited)", seq=seq, line=line_no)))
                    continue
                if seq in good and good[seq][1] != line["hash"]:
                    found.append(AuditProblem(seq, tr(
                        "Audit entry {seq}: two validly signed checkpoints disagree (lines {a} and {b})",
                        seq=seq, a=good[seq][0], b=line_no)))
                    continue
                good.setdefault(seq, (line_no, line["hash"]))
        return good


class _Row:
    """Attribute access over a freshly built row dict (so `append` can reuse `_to_entry`)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


def _signature_ok(public: dict, line: dict) -> bool:
    if (line.get("alg") != public.get("alg") or line.get("key_id") != public.get("key_id")
            or not isinstance(line.get("at"), str)):
        return False
    try:
        signature = base64.b64decode(line["signature"], validate=True)
        payload = checkpoint_payload(line)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False
    return verify_public(public, payload, signature)


def _parse_line(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None



def _tail(fd: int, size: int = 4096) -> bytes:
    end = os.lseek(fd, 0, os.SEEK_END)
    return os.pread(fd, min(size, end), max(0, end - size))


def _parse_last_line(tail: bytes) -> dict | None:
    lines = [part for part in tail.split(b"\n") if part.strip()]
    return _parse_line(lines[-1]) if lines else None
