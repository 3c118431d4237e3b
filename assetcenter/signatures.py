"""Signatures over version manifests and audit checkpoints: Ed25519, and SM2 (with SM3) for 国密 deployments.

Why signatures and not only hashes: a hash stored in the database proves nothing to someone who can rewrite the
database. A signature made with a key kept outside it (keys/, mode 0600) can only be forged by someone who also
holds the key, and anyone holding just the public key can check it.

Keys are identified by key_id = the first 16 hex chars of SHA-256 over the raw public key (Ed25519: 32 bytes;
SM2: the uncompressed point 04||x||y). Verification re-derives the key_id from the public key, so a key stored under
the wrong id is never trusted. SM2 signing uses gmssl (pure Python, not constant-time) with nonces from `secrets`
(gmssl's own default nonce uses `random`, which would leak the private key); signatures are r||s (64 bytes) with the
standard default user id 1234567812345678, interoperable with OpenSSL's SM2.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Protocol, runtime_checkable

from assetcenter.keys import unb64
from engine.errors import LedgerflowError
from engine.fileio import canonical_json
from engine.i18n import tr
from engine.signing import read_private_file

ALGORITHMS = ("ed25519", "sm2")
KEY_FILES = {"ed25519": "signing-ed25519.pem", "sm2": "signing-sm2.key"}

# The SM2 recommended curve (GB/T 32918.5), as gmssl names its parameters.
_SM2_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
_SM2_A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
_SM2_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
_SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


class SignatureKeyError(LedgerflowError):
    """A signing key file that cannot be used (unreadable, readable by others, damaged) or an unknown algorithm."""


@runtime_checkable
class Signer(Protocol):
    algorithm: str  # "ed25519" | "sm2"
    key_id: str  # hex SHA-256 of the public key, first 16 chars

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> dict: ...  # {"alg", "key_id", "public": base64}


def key_id_of(public_bytes: bytes) -> str:
    return hashlib.sha256(public_bytes).hexdigest()[:16]


def _public_dict(alg: str, public_bytes: bytes) -> dict:
    return {"alg": alg, "key_id": key_id_of(public_bytes), "public": base64.b64encode(public_bytes).decode("ascii")}


class Ed25519Signer:
    algorithm = "ed25519"

    def __init__(self, private_key) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = private_key
        self._public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id_of(self._public)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data))

    def public_key(self) -> dict:
        return _public_dict(self.algorithm, self._public)

    def __repr__(self) -> str:  # never the private key
        return f"<{type(self).__name__} key_id={self.key_id}>"

    __str__ = __repr__


def _sm2(private_hex: str | None, public_xy: bytes):
    from gmssl.sm2 import CryptSM2

    crypt = CryptSM2(private_key=private_hex, public_key="")
    crypt.public_key = public_xy.hex()  # set after init: gmssl's lstrip("04") would corrupt some keys
    return crypt


def _sm2_on_curve(point: bytes) -> bool:
    if len(point) != 65 or point[0] != 4:
        return False
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    return x < _SM2_P and y < _SM2_P and (y * y - (x * x * x + _SM2_A * x + _SM2_B)) % _SM2_P == 0


class Sm2Signer:
    algorithm = "sm2"

    def __init__(self, d: int) -> None:
        from gmssl.sm2 import default_ecc_table

        if not 1 <= d <= _SM2_N - 2:
            raise SignatureKeyError(tr("The SM2 private key is out of range"))
        self._d_hex = f"{d:064x}"
        xy = _sm2(self._d_hex, b"")._kg(d, default_ecc_table["g"])
        self._public = b"\x04" + bytes.fromhex(xy)
        self.key_id = key_id_of(self._public)
        self._crypt = _sm2(self._d_hex, self._public[1:])

    def sign(self, data: bytes) -> bytes:
        while True:
            k = secrets.randbelow(_SM2_N - 1) + 1
            sig = self._crypt.sign_with_sm3(bytes(data), f"{k:064x}")
            if sig:  # None when r = 0, r + k = n or s = 0: draw another nonce
                return bytes.fromhex(sig)

    def public_key(self) -> dict:
        return _public_dict(self.algorithm, self._public)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} key_id={self.key_id}>"

    __str__ = __repr__


def _new_ed25519_pem() -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _new_sm2_hex() -> bytes:
    return f"{secrets.randbelow(_SM2_N - 2) + 1:064x}\n".encode("ascii")


def load_signer(keys_dir: Path, algorithm: str = "ed25519") -> Ed25519Signer | Sm2Signer:
    """The asset center's signing key for `algorithm`, created once (mode 0600, atomically: concurrent first uses
    agree on one key) in keys_dir. Back it up: verifying old versions needs its public key (see public_keys)."""
    if algorithm not in ALGORITHMS:
        raise SignatureKeyError(tr("Unknown signature algorithm {alg}; choose one of {choices}",
                                   alg=str(algorithm)[:40], choices=", ".join(ALGORITHMS)))
    keys_dir = Path(keys_dir)
    path = keys_dir / KEY_FILES[algorithm]
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        raw, st = read_private_file(path, _new_ed25519_pem if algorithm == "ed25519" else _new_sm2_hex)
    except OSError as exc:
        raise SignatureKeyError(tr("Cannot read or create the signing key {path}: {exc}", path=path,
                                   exc=exc.strerror or type(exc).__name__)) from None
    if os.name == "posix" and (st.st_uid != os.geteuid() or st.st_mode & 0o077):
        raise SignatureKeyError(tr("The signing key {path} must belong to you and be readable by you only "
                                   "(chmod 600 {path})", path=path))
    damaged = SignatureKeyError(tr("The signing key {path} is damaged; restore it from your backup", path=path))
    if algorithm == "ed25519":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(raw, password=None)
        except (ValueError, TypeError):
            raise damaged from None
        if not isinstance(key, Ed25519PrivateKey):
            raise damaged
        return Ed25519Signer(key)
    try:
        d = int(raw.decode("ascii").strip(), 16)
    except (UnicodeDecodeError, ValueError):
        raise damaged from None
    if not 1 <= d <= _SM2_N - 2:
        raise damaged
    return Sm2Signer(d)


def public_keys(keys_dir: Path) -> dict[str, dict]:
    """The public keys (by key_id) of the signing keys present in keys_dir; creates nothing."""
    found: dict[str, dict] = {}
    for alg, name in KEY_FILES.items():
        if (Path(keys_dir) / name).exists():
            pub = load_signer(keys_dir, alg).public_key()
            found[pub["key_id"]] = pub
    return found


def verify_signature(public: dict, data: bytes, signature: bytes) -> bool:
    """True only if `signature` over `data` verifies under `public` ({"alg", "key_id", "public"}) and the key_id
    matches the key. Never raises for a bad signature, key or input: any of those is simply False."""
    try:
        if not isinstance(public, dict) or not isinstance(signature, (bytes, bytearray)):
            return False
        raw = unb64(public.get("public"))
        if raw is None or public.get("key_id") != key_id_of(raw):
            return False
        alg = public.get("alg")
        if alg == "ed25519":
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            if len(raw) != 32 or len(signature) != 64:
                return False
            try:
                Ed25519PublicKey.from_public_bytes(raw).verify(bytes(signature), bytes(data))
                return True
            except InvalidSignature:
                return False
        if alg == "sm2":
            if len(signature) != 64 or not _sm2_on_curve(raw):
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if not (1 <= r < _SM2_N and 1 <= s < _SM2_N):
                return False
            return bool(_sm2(None, raw[1:]).verify_with_sm3(bytes(signature).hex(), bytes(data)))
        return False
    except Exception:  # a malformed key or signature that slipped past the checks: not valid, never a crash
        return False


def document_bytes(doc: dict) -> bytes:
    """What sign_document signs: the canonical JSON (sorted keys, no whitespace, UTF-8) of the document."""
    return canonical_json(doc).encode("utf-8")


def sign_document(signer: Signer, doc: dict) -> dict:
    """{"alg", "key_id", "signature": base64} over the canonical JSON of `doc`."""
    return {"alg": signer.algorithm, "key_id": signer.key_id,
            "signature": base64.b64encode(signer.sign(document_bytes(doc))).decode("ascii")}


def verify_document(public_keys: dict[str, dict], doc: dict, sig: dict) -> bool:
    """True only if `sig` is a valid signature over `doc` by one of `public_keys` (a dict by key_id), with the
    algorithm the signature claims. Never raises for bad input."""
    if not isinstance(sig, dict) or not isinstance(public_keys, dict):
        return False
    public = public_keys.get(sig.get("key_id")) if isinstance(sig.get("key_id"), str) else None
    signature = unb64(sig.get("signature"))
    if public is None or signature is None or not isinstance(public, dict):
        return False
    if public.get("alg") != sig.get("alg") or public.get("key_id") != sig.get("key_id"):
        return False
    try:
        data = document_bytes(doc)
    except (TypeError, ValueError):
        return False
    return verify_signature(public, data, signature)
