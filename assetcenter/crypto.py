"""Envelope encryption of blob streams: a fresh data key per blob, wrapped by a key-encryption key (KEK).

Why envelope encryption: rotating the KEK then only re-wraps a 32-byte data key per blob (`rewrap`), the blob's
ciphertext on disk never changes, so its stored hash, the signed manifest and the audit trail stay valid.

Stream format 1 (what `encrypt_stream` yields, as one byte stream): the plaintext is cut into `chunk_size` pieces
(1 MiB), each sealed as its own frame `nonce || ciphertext || tag`; only the last piece may be shorter, and an empty
blob is one empty final frame. Each frame is authenticated with associated data binding the algorithm, the chunk
size, the caller's `context` (the version's content hash), the frame index and a final-frame flag, so flipping a
byte, truncating (even at a frame boundary), dropping, reordering, duplicating or splicing frames between blobs,
using another data key or another context all fail with IntegrityError. Memory stays constant (about two chunks)
whatever the blob size.

Algorithms: AES-256-GCM (random 96-bit nonce per frame), and for banks that require 国密 algorithms
SM4-CBC-HMAC-SM3: SM4-CBC with PKCS#7 padding and a random IV per frame, then HMAC-SM3 over the associated data,
IV and ciphertext (encrypt-then-MAC; the MAC is checked before anything is decrypted). SM4 and SM3 run in OpenSSL
(through `cryptography`) when it has them, which is ~300x faster than pure Python and constant-time; otherwise the
pure-Python gmssl implementation is used (same bytes: the tests check one against the other).

Decrypted output is released frame by frame as each frame verifies: a truncation is only detected at the end of
the stream, so a caller must not trust (commit, load, hand on) the output until the iterator finished without error.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag

from engine.errors import LedgerflowError
from engine.i18n import tr

if TYPE_CHECKING:  # keys.py imports this module for its ciphers
    from assetcenter.keys import KeyProvider

AES_GCM = "AES-256-GCM"
SM4_CBC_HMAC_SM3 = "SM4-CBC-HMAC-SM3"
ALGORITHMS = (AES_GCM, SM4_CBC_HMAC_SM3)
FORMAT = 1
CHUNK_SIZE = 1 << 20
DATA_KEY_BYTES = 32
_MIN_CHUNK, _MAX_CHUNK = 1 << 10, 1 << 26  # bounds on a header's chunk_size: no huge buffers from a crafted header
_FRAME_DOMAIN = b"ledgerflow.assetcenter.blob.v1\x00"


class IntegrityError(LedgerflowError):
    """Encrypted data that does not authenticate: tampered, truncated, reordered, or the wrong key or context."""


class _Cipher:
    """An authenticated cipher under one 32-byte key: seal(plaintext, aad) -> nonce || body; open() reverses it."""

    name: str
    nonce_bytes: int

    def seal(self, plaintext: bytes | memoryview, aad: bytes) -> bytes | bytearray:
        raise NotImplementedError

    def open(self, sealed: bytes | memoryview, aad: bytes) -> bytes:
        """The plaintext, or IntegrityError (with no detail: the caller names what failed)."""
        raise NotImplementedError

    def sealed_size(self, plaintext_bytes: int) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:  # never the key
        return f"<{type(self).__name__} {self.name}>"


class _AesGcm(_Cipher):
    name = AES_GCM
    nonce_bytes = 12

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self._into = hasattr(self._aead, "encrypt_into")  # cryptography >= 45: no copy to prepend the nonce

    def seal(self, plaintext, aad):
        nonce = os.urandom(self.nonce_bytes)
        if not self._into:
            return nonce + self._aead.encrypt(nonce, plaintext, aad)
        out = bytearray(self.sealed_size(len(plaintext)))
        out[:self.nonce_bytes] = nonce
        with memoryview(out) as view, view[self.nonce_bytes:] as body:
            self._aead.encrypt_into(nonce, plaintext, aad, body)
        return out

    def open(self, sealed, aad):
        if len(sealed) < self.nonce_bytes + 16:
            raise IntegrityError("short")
        try:
            with memoryview(sealed) as view, view[self.nonce_bytes:] as body:  # no copy of the frame
                return self._aead.decrypt(bytes(view[:self.nonce_bytes]), body, aad)
        except InvalidTag:
            raise IntegrityError("tag") from None

    def sealed_size(self, plaintext_bytes):
        return self.nonce_bytes + plaintext_bytes + 16


def _openssl_has_sm4_sm3() -> bool:
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers import algorithms, modes

        return bool(backend.cipher_supported(algorithms.SM4(bytes(16)), modes.CBC(bytes(16)))
                    and backend.hash_supported(hashes.SM3()))
    except Exception:  # an OpenSSL built without the SM algorithms, or an older cryptography
        return False


OPENSSL_SM = _openssl_has_sm4_sm3()


class _Sm4CbcHmacSm3(_Cipher):
    """SM4-CBC (PKCS#7) + HMAC-SM3, encrypt-then-MAC. The 32-byte key is split by HMAC-SM3 into an SM4 key and a
    MAC key, so one key never serves two purposes. `use_openssl=False` forces gmssl (tests compare the two)."""

    name = SM4_CBC_HMAC_SM3
    nonce_bytes = 16  # the CBC IV
    _TAG = 32

    def __init__(self, key: bytes, use_openssl: bool | None = None) -> None:
        self._openssl = OPENSSL_SM if use_openssl is None else use_openssl
        self._enc_key = self._hmac(key, b"ledgerflow sm4 encryption key")[:16]
        self._mac_key = self._hmac(key, b"ledgerflow hmac-sm3 key")

    def _hmac(self, key: bytes, data: bytes) -> bytes:
        if self._openssl:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives import hmac as chmac

            h = chmac.HMAC(key, hashes.SM3())
            h.update(data)
            return h.finalize()
        return _gmssl_hmac_sm3(key, data)

    def _mac(self, aad: bytes, iv_and_ct: bytes | memoryview) -> bytes:
        return self._hmac(self._mac_key, struct.pack(">Q", len(aad)) + aad + bytes(iv_and_ct))

    def seal(self, plaintext, aad):
        iv = os.urandom(self.nonce_bytes)
        if self._openssl:
            from cryptography.hazmat.primitives import padding
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            padder = padding.PKCS7(128).padder()
            enc = Cipher(algorithms.SM4(self._enc_key), modes.CBC(iv)).encryptor()
            body = iv + enc.update(padder.update(bytes(plaintext)) + padder.finalize()) + enc.finalize()
        else:
            from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

            sm4 = CryptSM4(SM4_ENCRYPT)  # PKCS#7 padding by default
            sm4.set_key(self._enc_key, SM4_ENCRYPT)
            body = iv + sm4.crypt_cbc(iv, bytes(plaintext))
        return body + self._mac(aad, body)

    def open(self, sealed, aad):
        n = len(sealed) - self.nonce_bytes - self._TAG
        if n < 16 or n % 16:
            raise IntegrityError("length")
        body, tag = sealed[:-self._TAG], sealed[-self._TAG:]
        if not hmac.compare_digest(self._mac(aad, body), bytes(tag)):
            raise IntegrityError("tag")
        iv, ct = bytes(body[:self.nonce_bytes]), bytes(body[self.nonce_bytes:])
        try:
            if self._openssl:
                from cryptography.hazmat.primitives import padding
                from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

                dec = Cipher(algorithms.SM4(self._enc_key), modes.CBC(iv)).decryptor()
                unpadder = padding.PKCS7(128).unpadder()
                return unpadder.update(dec.update(ct) + dec.finalize()) + unpadder.finalize()
            from gmssl.sm4 import SM4_DECRYPT, CryptSM4

            sm4 = CryptSM4(SM4_DECRYPT)
            sm4.set_key(self._enc_key, SM4_DECRYPT)
            if not _gmssl_padding_ok(sm4, iv, ct):
                raise ValueError("padding")
            return sm4.crypt_cbc(iv, ct)
        except ValueError:  # authenticated but badly padded: only a bug or a forged MAC key gets here
            raise IntegrityError("padding") from None

    def sealed_size(self, plaintext_bytes):
        return self.nonce_bytes + (plaintext_bytes // 16 + 1) * 16 + self._TAG


def _gmssl_hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over gmssl's pure-Python SM3 (64-byte blocks)."""
    from gmssl import sm3

    def digest(message: bytes) -> bytes:
        return bytes.fromhex(sm3.sm3_hash(list(message)))

    if len(key) > 64:
        key = digest(key)
    key = key.ljust(64, b"\x00")
    inner = digest(bytes(b ^ 0x36 for b in key) + data)
    return digest(bytes(b ^ 0x5C for b in key) + inner)


def _gmssl_padding_ok(sm4, iv: bytes, ct: bytes) -> bool:
    """gmssl strips PKCS#7 padding without checking it; check the last block's padding ourselves."""
    from gmssl.func import bytes_to_list, list_to_bytes

    block = list_to_bytes(sm4.one_round(sm4.sk, bytes_to_list(ct[-16:])))  # sk: the decryption round keys
    last = bytes(a ^ b for a, b in zip(block, ct[-32:-16] if len(ct) > 16 else iv, strict=True))
    pad = last[-1]
    return 1 <= pad <= 16 and last.endswith(bytes([pad]) * pad)


def cipher(alg: str, key: bytes) -> _Cipher:
    """The authenticated cipher `alg` (one of ALGORITHMS) under a 32-byte key; used for frames and key wrapping."""
    if alg not in ALGORITHMS:
        raise LedgerflowError(tr("Unknown encryption algorithm {alg}; choose one of {choices}",
                                 alg=_printable(alg), choices=", ".join(ALGORITHMS)))
    if not isinstance(key, (bytes, bytearray)) or len(key) != DATA_KEY_BYTES:
        raise IntegrityError(tr("An encryption key must be {n} bytes", n=DATA_KEY_BYTES))
    return _AesGcm(bytes(key)) if alg == AES_GCM else _Sm4CbcHmacSm3(bytes(key))


def _printable(value: object, limit: int = 40) -> str:
    """A short, safe rendering of an untrusted header value for an error message."""
    text = str(value)
    return text[:limit] if text.isprintable() else "?"


def _frame_prefix(alg: str, chunk_size: int, context: bytes) -> bytes:
    return (_FRAME_DOMAIN + alg.encode("ascii") + b"\x00" + struct.pack(">II", chunk_size, len(context))
            + context)


def _check_context(context: bytes) -> bytes:
    if not isinstance(context, (bytes, bytearray)):
        raise TypeError("context must be bytes (the version's content hash)")
    return bytes(context)


def encrypt_stream(chunks: Iterable[bytes], provider: "KeyProvider", alg: str,
                   context: bytes) -> tuple[dict, Iterator[bytes]]:
    """Encrypt a stream under a fresh data key. Returns (header, ciphertext chunks); the header (to store with the
    version) holds the data key wrapped by the provider's current KEK, never the key itself. The data key is made
    and wrapped now, so a KEK problem shows before any byte is read."""
    context = _check_context(context)
    data_key = os.urandom(DATA_KEY_BYTES)
    frame_cipher = cipher(alg, data_key)
    header = {"alg": alg, "wrapped_key": provider.wrap(data_key, alg=alg), "chunk_size": CHUNK_SIZE,
              "format": FORMAT}
    del data_key
    return header, _seal_frames(chunks, frame_cipher, _frame_prefix(alg, CHUNK_SIZE, context), CHUNK_SIZE)


def _seal_frames(chunks: Iterable[bytes], frame_cipher: _Cipher, prefix: bytes, size: int) -> Iterator[bytes]:
    pending = None  # a whole chunk-sized piece, sealed (not final) once more data shows up: the no-copy path
    buf = bytearray()  # otherwise pieces are gathered here and cut into chunks
    index = 0
    for piece in chunks:
        if not piece:
            continue
        if pending is not None:
            yield frame_cipher.seal(pending, prefix + struct.pack(">QB", index, 0))
            index += 1
            pending = None
        if not buf and len(piece) == size:
            pending = piece
            continue
        buf += piece
        if len(buf) <= size:
            continue
        pos = 0
        with memoryview(buf) as view:
            while len(buf) - pos > size:  # a full chunk with more data after it: not the final frame
                yield frame_cipher.seal(view[pos:pos + size], prefix + struct.pack(">QB", index, 0))
                index += 1
                pos += size
        del buf[:pos]
    yield frame_cipher.seal(pending if pending is not None else bytes(buf), prefix + struct.pack(">QB", index, 1))


def _parse_header(header: dict) -> tuple[str, int, dict]:
    if not isinstance(header, dict):
        raise IntegrityError(tr("The encryption header is not an object"))
    if header.get("format") != FORMAT:
        raise IntegrityError(tr("Unsupported encryption format {format}; this Ledgerflow reads format {ours}",
                                format=_printable(header.get("format")), ours=FORMAT))
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise IntegrityError(tr("Unknown encryption algorithm {alg}; choose one of {choices}",
                                alg=_printable(alg), choices=", ".join(ALGORITHMS)))
    size = header.get("chunk_size")
    if type(size) is not int or not _MIN_CHUNK <= size <= _MAX_CHUNK:
        raise IntegrityError(tr("The encryption header has an invalid chunk size"))
    wrapped = header.get("wrapped_key")
    if not isinstance(wrapped, dict):
        raise IntegrityError(tr("The encryption header has no wrapped data key"))
    return alg, size, wrapped


def decrypt_stream(chunks: Iterable[bytes], provider: "KeyProvider", header: dict,
                   context: bytes) -> Iterator[bytes]:
    """Decrypt what `encrypt_stream` produced (in chunks of any size). The header is checked and the data key
    unwrapped now (KeyUnavailable, IntegrityError); each frame is then verified before its plaintext is yielded, and
    the stream's end is checked last, so only a fully consumed iterator proves the whole blob authentic."""
    context = _check_context(context)
    alg, size, wrapped = _parse_header(header)
    frame_cipher = cipher(alg, provider.unwrap(wrapped))
    return _open_frames(chunks, frame_cipher, _frame_prefix(alg, size, context), size)


def _open_frames(chunks: Iterable[bytes], frame_cipher: _Cipher, prefix: bytes, size: int) -> Iterator[bytes]:
    full = frame_cipher.sealed_size(size)
    buf = bytearray()
    index = 0

    def open_frame(frame, final: bool) -> bytes:
        try:
            return frame_cipher.open(frame, prefix + struct.pack(">QB", index, int(final)))
        except IntegrityError:
            raise IntegrityError(tr(
                "Encrypted data failed authentication at chunk {index}: it was altered, truncated, reordered or "
                "spliced, or the data key or context is wrong", index=index)) from None

    pending = None  # a whole frame-sized piece (see frame_size): opened once more data shows up, no copy
    for piece in chunks:
        if not piece:
            continue
        if pending is not None:
            yield open_frame(pending, final=False)
            index += 1
            pending = None
        if not buf and len(piece) == full:
            pending = piece
            continue
        buf += piece
        if len(buf) <= full:
            continue
        pos = 0
        with memoryview(buf) as view:
            while len(buf) - pos > full:
                yield open_frame(view[pos:pos + full], final=False)
                index += 1
                pos += full
        del buf[:pos]
    if pending is not None:
        yield open_frame(pending, final=True)
        return
    if not buf:
        raise IntegrityError(tr("Encrypted data is truncated: chunk {index} (the final one) is missing",
                                index=index))
    yield open_frame(bytes(buf), final=True)


def frame_size(header: dict) -> int:
    """Bytes per full frame of an encrypted blob: read the stored blob in pieces of this size and decryption
    copies nothing."""
    alg, size, _ = _parse_header(header)
    return cipher(alg, bytes(DATA_KEY_BYTES)).sealed_size(size)


def rewrap(header: dict, provider: "KeyProvider") -> dict:
    """The same header with its data key re-wrapped under the provider's current KEK (key rotation): the blob's
    ciphertext is untouched. A header already under the current KEK comes back unchanged (a copy)."""
    alg, _, wrapped = _parse_header(header)
    if wrapped.get("kek_id") == provider.current_id():
        return dict(header)
    data_key = provider.unwrap(wrapped)
    out = dict(header)
    out["wrapped_key"] = provider.wrap(data_key, alg=alg)
    return out


def needs_rewrap(header: dict, provider: "KeyProvider") -> bool:
    """True when the header's data key is wrapped by a KEK other than the provider's current one."""
    _, _, wrapped = _parse_header(header)
    return wrapped.get("kek_id") != provider.current_id()


def context_for(content_sha256: str) -> bytes:
    """The context bytes for a version: its content hash (hex), so a blob cannot be swapped into another version."""
    return hashlib.sha256(b"ledgerflow.assetcenter.context\x00" + content_sha256.encode("ascii")).digest()
