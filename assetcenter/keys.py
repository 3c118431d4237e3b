"""Key-encryption keys (KEKs): they wrap each blob's data key; the blobs themselves never see a KEK.

Why an interface: a bank may keep its KEKs in a cloud KMS or an HSM. Anything with `current_id`, `wrap` and
`unwrap` (KeyProvider) can replace the two local providers here:
- KeyFileProvider: a JSON key file (mode 0600, in the asset center's keys/ folder, created atomically) that keeps
  every KEK it ever had, so old data keys still unwrap after `rotate()`;
- EnvKeyProvider: LEDGERFLOW_ASSETCENTER_KEKS="id1:base64,id2:base64" (32-byte keys; the first is current), for
  deployments whose secret store injects environment variables.

Key bytes never appear in a repr, a str or an error message; only key ids do.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from assetcenter.crypto import AES_GCM, ALGORITHMS, IntegrityError, cipher
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.signing import read_private_file

KEK_ENV = "LEDGERFLOW_ASSETCENTER_KEKS"
KEY_FILE_NAME = "kek.json"
KEK_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_WRAP_DOMAIN = b"ledgerflow.assetcenter.kek.v1\x00"


class KeyUnavailable(LedgerflowError):
    """The KEK a data key was wrapped with is not held by this provider (lost, not configured, or retired)."""


class KeyConfigError(LedgerflowError):
    """A key file or key variable that cannot be used: malformed, wrong size, or readable by others."""


@runtime_checkable
class KeyProvider(Protocol):
    """Holds key-encryption keys (KEKs); a cloud KMS or HSM can implement the same methods."""

    def current_id(self) -> str:
        """The id of the KEK that new data keys are wrapped with."""

    def wrap(self, data_key: bytes, alg: str = AES_GCM) -> dict:
        """{"kek_id", "alg", "nonce", "wrapped"} (base64 strings): the data key sealed under the current KEK.
        `alg` is the blob's algorithm, so SM4 blobs get SM4-wrapped keys; a KMS may wrap with its own."""

    def unwrap(self, wrapped: dict) -> bytes:
        """The data key; KeyUnavailable naming the kek_id when that KEK is not held, IntegrityError when the
        wrapped key was altered."""


def valid_key_id(kek_id: object) -> bool:
    return isinstance(kek_id, str) and bool(_KEY_ID.match(kek_id))


def new_key_id() -> str:
    """A fresh, sortable KEK id: kYYYYMMDD-<8 hex>."""
    return f"k{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(4)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes | None:
    """Strict base64 text -> bytes; None for anything else (no exception to leak what was given)."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _wrap_aad(alg: str, kek_id: str) -> bytes:
    return _WRAP_DOMAIN + alg.encode("ascii") + b"\x00" + kek_id.encode("ascii")


class _LocalKeys:
    """KEKs held in this process: wrapping is an authenticated cipher under the KEK, with the KEK id bound in."""

    source = "?"  # for messages: where the keys come from (a path or a variable name), never the keys

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._current = ""

    def _lookup(self, kek_id: str) -> bytes | None:
        return self._keys.get(kek_id)

    def current_id(self) -> str:
        return self._current

    def key_ids(self) -> list[str]:
        """Every KEK id held (the current one included)."""
        return list(self._keys)

    def wrap(self, data_key: bytes, alg: str = AES_GCM) -> dict:
        if alg not in ALGORITHMS:
            raise LedgerflowError(tr("Unknown encryption algorithm {alg}; choose one of {choices}",
                                     alg=str(alg)[:40], choices=", ".join(ALGORITHMS)))
        if not isinstance(data_key, (bytes, bytearray)) or len(data_key) != KEK_BYTES:
            raise LedgerflowError(tr("A data key must be {n} bytes", n=KEK_BYTES))
        kek_id = self.current_id()
        kek = self._lookup(kek_id)
        if kek is None:  # only if the key file was edited under us
            raise KeyUnavailable(tr("The current key-encryption key {kek_id} is missing from {source}",
                                    kek_id=kek_id, source=self.source))
        c = cipher(alg, kek)
        sealed = c.seal(bytes(data_key), _wrap_aad(alg, kek_id))
        return {"kek_id": kek_id, "alg": alg, "nonce": _b64(sealed[:c.nonce_bytes]),
                "wrapped": _b64(sealed[c.nonce_bytes:])}

    def unwrap(self, wrapped: dict) -> bytes:
        if not isinstance(wrapped, dict):
            raise IntegrityError(tr("The wrapped data key is not an object"))
        kek_id, alg = wrapped.get("kek_id"), wrapped.get("alg")
        if not valid_key_id(kek_id):
            raise IntegrityError(tr("The wrapped data key names no valid key-encryption key id"))
        if alg not in ALGORITHMS:
            raise IntegrityError(tr("The wrapped data key for {kek_id} uses an unknown algorithm", kek_id=kek_id))
        kek = self._lookup(kek_id)
        if kek is None:
            raise KeyUnavailable(tr(
                "The key-encryption key {kek_id} is not available from {source}; restore it (it may have been "
                "rotated out) to decrypt this data", kek_id=kek_id, source=self.source))
        nonce, body = unb64(wrapped.get("nonce")), unb64(wrapped.get("wrapped"))
        if nonce is None or body is None:
            raise IntegrityError(tr("The wrapped data key for {kek_id} is not valid base64", kek_id=kek_id))
        try:
            data_key = cipher(alg, kek).open(nonce + body, _wrap_aad(alg, kek_id))
        except IntegrityError:
            raise IntegrityError(tr("The wrapped data key for {kek_id} failed authentication: it was altered, or "
                                    "the key-encryption key with that id is not the one it was wrapped with",
                                    kek_id=kek_id)) from None
        if len(data_key) != KEK_BYTES:
            raise IntegrityError(tr("The wrapped data key for {kek_id} has the wrong size", kek_id=kek_id))
        return data_key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r}, current={self._current!r}, keys={list(self._keys)!r})"

    __str__ = __repr__


# --- the key file ----------------------------------------------------------------------------------------------------

def _new_file_bytes(kek_id: str | None = None) -> bytes:
    kek_id = kek_id or new_key_id()
    doc = {"format": 1, "current": kek_id, "keys": {kek_id: _b64(secrets.token_bytes(KEK_BYTES))}}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _write_private(path: Path, data: bytes, *, replace: bool) -> None:
    """Write a 0600 file atomically (temp, fsync, rename, fsync the folder). replace=False never overwrites: the
    existing file wins (FileExistsError)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _check_private(path: Path, st: os.stat_result) -> None:
    if os.name == "posix" and (st.st_uid != os.geteuid() or st.st_mode & 0o077):
        raise KeyConfigError(tr("The key file {path} must belong to you and be readable by you only "
                                "(chmod 600 {path})", path=path))


def _parse_key_file(path: Path, raw: bytes) -> tuple[str, dict[str, bytes]]:
    def bad(why: str) -> KeyConfigError:
        return KeyConfigError(tr("The key file {path} is damaged: {why}. Restore it from your backup; without it "
                                 "encrypted assets cannot be read", path=path, why=why))

    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad(tr("it is not JSON")) from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("keys"), dict):
        raise bad(tr("it is not a format-1 key file"))
    keys: dict[str, bytes] = {}
    for kek_id, text in doc["keys"].items():
        if not valid_key_id(kek_id):
            raise bad(tr("a key id is not valid"))
        key = unb64(text)
        if key is None or len(key) != KEK_BYTES:
            raise bad(tr("key {kek_id} is not {n} bytes of base64", kek_id=kek_id, n=KEK_BYTES))
        keys[kek_id] = key
    current = doc.get("current")
    if current not in keys:
        raise bad(tr("the current key id is not one of its keys"))
    return current, keys


def _encode_key_file(current: str, keys: dict[str, bytes]) -> bytes:
    doc = {"format": 1, "current": current, "keys": {k: _b64(v) for k, v in keys.items()}}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


class KeyFileProvider(_LocalKeys):
    """KEKs in a JSON key file {"format": 1, "current": id, "keys": {id: base64(32 bytes)}}, mode 0600.

    Back this file up: losing it loses every encrypted asset. It is re-read when it changes on disk, so a server
    picks up a rotation done by the CLI without a restart.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.source = str(self.path)
        self._stamp: tuple | None = None
        self._load()

    @classmethod
    def create(cls, path: Path) -> "KeyFileProvider":
        """Create a new key file with one fresh KEK; refuses to replace an existing one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            _write_private(path, _new_file_bytes(), replace=False)
        except FileExistsError:
            raise KeyConfigError(tr("The key file {path} already exists; it is never replaced (that would lose "
                                    "its keys)", path=path)) from None
        return cls(path)

    @classmethod
    def open_or_create(cls, path: Path) -> "KeyFileProvider":
        """Open the key file, creating it once (atomically: the first of concurrent creators wins)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            read_private_file(path, _new_file_bytes)
        except OSError as exc:
            raise KeyConfigError(tr("Cannot read or create the key file {path}: {exc}", path=path,
                                    exc=exc.strerror or type(exc).__name__)) from None
        return cls(path)

    def _load(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                raw, st = fh.read(), os.fstat(fh.fileno())
        except FileNotFoundError:
            raise KeyConfigError(tr("The key file {path} does not exist", path=self.path)) from None
        except OSError as exc:
            raise KeyConfigError(tr("Cannot read the key file {path}: {exc}", path=self.path,
                                    exc=exc.strerror or type(exc).__name__)) from None
        _check_private(self.path, st)
        current, keys = _parse_key_file(self.path, raw)
        self._keys = keys  # keys before current: a concurrent wrap never sees a current id it cannot find
        self._current = current
        self._stamp = (st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return  # keep what we hold; the next successful stat reloads
        if (st.st_ino, st.st_size, st.st_mtime_ns) != self._stamp:
            self._load()

    def current_id(self) -> str:
        self._refresh()
        return self._current

    def _lookup(self, kek_id: str) -> bytes | None:
        if kek_id not in self._keys:
            self._refresh()
        return self._keys.get(kek_id)

    def rotate(self) -> str:
        """Add a fresh KEK and make it current; older KEKs stay for unwrapping. Returns the new id. Serialised
        across processes by a lock file, and the key file is re-read under the lock, so no key is ever lost."""
        from filelock import FileLock

        with FileLock(str(self.path.with_name(self.path.name + ".lock"))):
            self._load()
            kek_id = new_key_id()
            while kek_id in self._keys:
                kek_id = new_key_id()
            keys = dict(self._keys)
            keys[kek_id] = secrets.token_bytes(KEK_BYTES)
            _write_private(self.path, _encode_key_file(kek_id, keys), replace=True)
            self._load()
        return kek_id


# --- the environment -------------------------------------------------------------------------------------------------

class EnvKeyProvider(_LocalKeys):
    """KEKs from an environment variable: "id1:base64,id2:base64" (each key 32 bytes; the first is current).
    Rotation is done where the variable is set: put a new key first and keep the old ones after it."""

    def __init__(self, value: str | None = None, variable: str = KEK_ENV) -> None:
        super().__init__()
        self.source = variable
        if value is None:
            value = os.environ.get(variable)
        if value is None:
            raise KeyConfigError(tr("{var} is not set", var=variable))
        self._current, self._keys = self._parse(value, variable)

    @staticmethod
    def _parse(value: str, var: str) -> tuple[str, dict[str, bytes]]:
        entries = [e.strip() for e in value.split(",")]
        if not any(entries):
            raise KeyConfigError(tr("{var} is empty; set it to ID:BASE64[,ID:BASE64...] with 32-byte keys, the "
                                    "current key first", var=var))
        keys: dict[str, bytes] = {}
        for n, entry in enumerate(entries, start=1):
            kek_id, sep, text = entry.partition(":")
            kek_id = kek_id.strip()
            if not sep:
                raise KeyConfigError(tr("{var}: entry {n} is not ID:BASE64", var=var, n=n))
            if not valid_key_id(kek_id):
                raise KeyConfigError(tr("{var}: entry {n} has an invalid key id (use letters, digits, '.', '_' "
                                        "and '-', at most 64)", var=var, n=n))
            if kek_id in keys:
                raise KeyConfigError(tr("{var}: key id {kek_id} appears twice", var=var, kek_id=kek_id))
            key = unb64(text.strip())
            if key is None:
                raise KeyConfigError(tr("{var}: the key of {kek_id} is not valid base64", var=var, kek_id=kek_id))
            if len(key) != KEK_BYTES:
                raise KeyConfigError(tr("{var}: the key of {kek_id} is {got} bytes; it must be {n}", var=var,
                                        kek_id=kek_id, got=len(key), n=KEK_BYTES))
            keys[kek_id] = key
        return next(iter(keys)), keys

    def rotate(self) -> str:
        raise KeyConfigError(tr("Keys from {var} are rotated where the variable is set: put a new ID:BASE64 first "
                                "and keep the old keys after it, then re-wrap", var=self.source))


def new_env_entry(kek_id: str | None = None) -> str:
    """A fresh "id:base64" entry for LEDGERFLOW_ASSETCENTER_KEKS (for operators setting up or rotating)."""
    kek_id = kek_id or new_key_id()
    if not valid_key_id(kek_id):
        raise KeyConfigError(tr("Invalid key id {kek_id}", kek_id=str(kek_id)[:64]))
    return f"{kek_id}:{_b64(secrets.token_bytes(KEK_BYTES))}"


def provider_from_env_or_file(keys_dir: Path) -> KeyProvider:
    """KEKs from LEDGERFLOW_ASSETCENTER_KEKS when it is set (even empty: a mistake is reported, not ignored), else
    from keys_dir/kek.json, created on first use."""
    if KEK_ENV in os.environ:
        return EnvKeyProvider()
    return KeyFileProvider.open_or_create(Path(keys_dir) / KEY_FILE_NAME)
