"""A small encrypted vault for passwords on this machine, so project files only ever hold a reference.

Why: projects are shared, versioned and e-mailed; a database password in one would leak with it. Settings hold
"vault:<id>" (a value encrypted in `ledgerflow_home()/vault.json`) or "env:NAME" (read from the environment, for
servers and CI). The Fernet key lives beside the vault in `vault.key` (mode 0600, like the cache signing key), so
copying the vault file alone reveals nothing. Writers take a file lock and replace the file atomically.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from engine.errors import LedgerflowError
from engine.fileio import atomic_write_text, canonical_json
from engine.i18n import tr
from engine.signing import ledgerflow_home, read_private_file

VAULT_FILE = "vault.json"
KEY_FILE = "vault.key"
_LOCK_FILE = "vault.lock"
_FORMAT = 1
_VAULT_REF = re.compile(r"vault:([0-9a-f]{32})")
_ENV_REF = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")


def is_reference(text: str) -> bool:
    """True for a well-formed "vault:<32 hex>" or "env:NAME" reference (never for a plain password)."""
    return bool(_VAULT_REF.fullmatch(text) or _ENV_REF.fullmatch(text))


def put_secret(value: str, *, label: str = "") -> str:
    """Encrypt `value` into this machine's vault and return its reference "vault:<id>"."""
    if not isinstance(value, str):
        raise TypeError("a secret must be a str")
    sid = uuid.uuid4().hex
    token = _fernet().encrypt(_payload(sid, value)).decode("ascii")
    with _lock():
        entries = _read_entries()
        entries[sid] = {"label": str(label), "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "token": token}
        _write_entries(entries)
    return f"vault:{sid}"


def get_secret(ref: str) -> str:
    """The secret a reference names: a vault entry of this machine, or an environment variable."""
    env = _ENV_REF.fullmatch(ref) if isinstance(ref, str) else None
    if env:
        value = os.environ.get(env.group(1))
        if value is None:
            raise LedgerflowError(tr("The environment variable {name} is not set (the password is read from it)",
                                     name=env.group(1)))
        return value
    sid = _vault_id(ref)
    entry = _read_entries().get(sid)
    if entry is None:
        raise LedgerflowError(tr("Secret {ref} is not in this machine's vault; enter the password again on this "
                                 "computer (vaults are per machine and per user)", ref=ref))
    from cryptography.fernet import InvalidToken

    try:
        data = json.loads(_fernet().decrypt(str(entry.get("token", "")).encode("ascii")))
    except (InvalidToken, ValueError, UnicodeError):
        data = None
    if not isinstance(data, dict) or data.get("id") != sid or not isinstance(data.get("value"), str):
        raise LedgerflowError(tr("Secret {ref} cannot be decrypted with this machine's vault key ({path} was "
                                 "replaced or the vault was copied from elsewhere); enter the password again",
                                 ref=ref, path=ledgerflow_home() / KEY_FILE))
    return data["value"]


def delete_secret(ref: str) -> bool:
    """Remove a vault entry; True when it existed. env: references have nothing to delete."""
    if isinstance(ref, str) and _ENV_REF.fullmatch(ref):
        return False
    sid = _vault_id(ref)
    with _lock():
        entries = _read_entries()
        if sid not in entries:
            return False
        del entries[sid]
        _write_entries(entries)
    return True


# ---- storage ----------------------------------------------------------------------------------------------------

def _vault_id(ref: object) -> str:
    """The hex id of a vault reference; the message never repeats a malformed value (it may be a password)."""
    m = _VAULT_REF.fullmatch(ref) if isinstance(ref, str) else None
    if not m:
        raise LedgerflowError(tr("Not a secret reference: expected vault:<id> or env:NAME"))
    return m.group(1)


def _payload(sid: str, value: str) -> bytes:
    """The id is encrypted with the value, so an entry moved to another id in vault.json does not decrypt."""
    return canonical_json({"id": sid, "value": value}).encode("utf-8")


def _home() -> Path:
    home = ledgerflow_home()
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise LedgerflowError(tr("Cannot create {path}: {exc}. Set LEDGERFLOW_HOME to a folder you can write.",
                                 path=home, exc=exc.strerror or exc)) from None
    return home


def _lock():
    """An inter-process lock, so two windows saving passwords at once do not lose one of them."""
    from filelock import FileLock

    return FileLock(str(_home() / _LOCK_FILE), timeout=30)


def _read_entries() -> dict[str, dict[str, Any]]:
    path = _home() / VAULT_FILE
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LedgerflowError(tr("Cannot read the vault {path}: {exc}", path=path, exc=exc.strerror or exc)) from None
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    entries = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == _FORMAT else None
    if not isinstance(entries, dict):
        raise LedgerflowError(tr("The vault {path} is damaged; move it away and enter the passwords again",
                                 path=path))
    return {k: v for k, v in entries.items() if _VAULT_REF.fullmatch(f"vault:{k}") and isinstance(v, dict)}


def _write_entries(entries: dict[str, dict[str, Any]]) -> None:
    path = _home() / VAULT_FILE
    atomic_write_text(path, json.dumps({"format": _FORMAT, "entries": entries}, sort_keys=True, indent=1) + "\n")
    os.chmod(path, 0o600)  # values are encrypted; labels and ids are nobody else's business either


def _fernet():
    try:
        from cryptography.fernet import Fernet
    except ImportError:
        raise LedgerflowError(tr("The vault needs the 'cryptography' package: pip install cryptography")) from None
    return Fernet(_load_key(_home() / KEY_FILE))


def _load_key(path: Path) -> bytes:
    """Read (creating once, atomically, mode 0600) the vault key; refuse one others could read or a damaged one."""
    try:
        key, st = read_private_file(path, lambda: base64.urlsafe_b64encode(os.urandom(32)))
        key = key.strip()
    except OSError as exc:
        raise LedgerflowError(tr("Cannot read or create the vault key {path}: {exc}. Set LEDGERFLOW_HOME to a "
                                 "folder you can write.", path=path, exc=exc.strerror or exc)) from None
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise LedgerflowError(tr("The vault key {path} must belong to you and be readable by you only "
                                 "(chmod 600 {path})", path=path))
    try:
        ok = len(base64.urlsafe_b64decode(key)) == 32
    except ValueError:
        ok = False
    if not ok:
        raise LedgerflowError(tr("The vault key {path} is damaged; passwords saved with it cannot be read. Move it "
                                 "and {vault} away and enter the passwords again.", path=path,
                                 vault=path.with_name(VAULT_FILE)))
    return key


__all__ = ["KEY_FILE", "VAULT_FILE", "delete_secret", "get_secret", "is_reference", "put_secret"]
