"""Signing keys and signatures over manifests (assetcenter/signatures.py): Ed25519 and SM2, interoperable with
OpenSSL's SM2 where the openssl command has it."""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import subprocess
import threading

import pytest

from assetcenter.signatures import (ALGORITHMS, KEY_FILES, Signer, SignatureKeyError, Sm2Signer, key_id_of,
                                    load_signer, public_keys, sign_document, verify_document, verify_signature)

MANIFEST = {"asset": "credit-scorecard", "kind": "model_package", "version": 3, "size": 12345,
            "content_sha256": "ab" * 32, "tags": ["prod", "风险"],
            "lineage": [{"relation": "trained_on", "target": "7"}]}


@pytest.fixture(scope="module", params=ALGORITHMS)
def signer(request, tmp_path_factory):
    return load_signer(tmp_path_factory.mktemp("keys"), request.param)


@pytest.fixture(scope="module")
def other_signer(signer, tmp_path_factory):
    return load_signer(tmp_path_factory.mktemp("other-keys"), signer.algorithm)


def test_key_is_created_once_private_and_identified_by_its_public_key(tmp_path):
    for alg in ALGORITHMS:
        ids: list[str] = []
        def first_use(ids=ids, alg=alg):
            ids.append(load_signer(tmp_path / "keys", alg).key_id)

        threads = [threading.Thread(target=first_use) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == 4 and len(set(ids)) == 1  # concurrent first uses agree on one key
        path = tmp_path / "keys" / KEY_FILES[alg]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        s = load_signer(tmp_path / "keys", alg)
        assert isinstance(s, Signer) and s.algorithm == alg and s.key_id == ids[0]
        pub = s.public_key()
        raw = base64.b64decode(pub["public"])
        assert pub["alg"] == alg and pub["key_id"] == hashlib.sha256(raw).hexdigest()[:16] == s.key_id
        assert len(raw) == (32 if alg == "ed25519" else 65)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == sorted(KEY_FILES.values())  # no temp files
    assert set(public_keys(tmp_path / "keys")) == {load_signer(tmp_path / "keys", a).key_id for a in ALGORITHMS}


def test_public_keys_creates_nothing(tmp_path):
    assert public_keys(tmp_path) == {} and list(tmp_path.iterdir()) == []


def test_sign_and_verify(signer):
    data = b"checkpoint 41 9f2c"
    sig = signer.sign(data)
    assert verify_signature(signer.public_key(), data, sig)
    assert not verify_signature(signer.public_key(), data + b"!", sig)
    doc_sig = sign_document(signer, MANIFEST)
    assert doc_sig["alg"] == signer.algorithm and doc_sig["key_id"] == signer.key_id
    keys = {signer.key_id: signer.public_key()}
    assert verify_document(keys, MANIFEST, doc_sig)
    assert verify_document(keys, dict(reversed(list(MANIFEST.items()))), doc_sig)  # canonical: key order is moot


@pytest.mark.parametrize("change", [
    lambda d: d.update(version=4), lambda d: d.update(size=12346), lambda d: d.update(extra=None),
    lambda d: d.pop("tags"), lambda d: d["lineage"][0].update(target="8"), lambda d: d.update(version="3"),
])
def test_tampered_document_fails(signer, change):
    sig = sign_document(signer, MANIFEST)
    doc = {k: (list(v) if isinstance(v, list) else v) for k, v in MANIFEST.items()}
    doc["lineage"] = [dict(x) for x in MANIFEST["lineage"]]
    change(doc)
    assert not verify_document({signer.key_id: signer.public_key()}, doc, sig)


def test_tampered_signature_fails(signer):
    sig = sign_document(signer, MANIFEST)
    raw = bytearray(base64.b64decode(sig["signature"]))
    keys = {signer.key_id: signer.public_key()}
    for i in (0, len(raw) // 2, len(raw) - 1):
        bad = bytearray(raw)
        bad[i] ^= 1
        assert not verify_document(keys, MANIFEST, {**sig, "signature": base64.b64encode(bytes(bad)).decode()})


def test_wrong_key_fails(signer, other_signer):
    sig = sign_document(other_signer, MANIFEST)
    assert not verify_document({signer.key_id: signer.public_key()}, MANIFEST, sig)  # an untrusted key
    # the other key's signature relabelled with the trusted key's id
    assert not verify_document({signer.key_id: signer.public_key()}, MANIFEST, {**sig, "key_id": signer.key_id})
    # a trusted key stored under an id that is not its own is never trusted
    mislabelled = {**other_signer.public_key(), "key_id": signer.key_id}
    assert not verify_document({signer.key_id: mislabelled}, MANIFEST, {**sig, "key_id": signer.key_id})
    assert not verify_signature(signer.public_key(), b"data", other_signer.sign(b"data"))


def test_algorithm_mismatch_fails(tmp_path):
    ed, sm2 = load_signer(tmp_path, "ed25519"), load_signer(tmp_path, "sm2")
    sig = sign_document(ed, MANIFEST)
    assert not verify_document({ed.key_id: ed.public_key()}, MANIFEST, {**sig, "alg": "sm2"})
    assert not verify_signature({**sm2.public_key()}, b"x", ed.sign(b"x"))


@pytest.mark.parametrize("public, signature", [
    (None, b"x" * 64), ({}, b"x" * 64), ({"alg": "ed25519", "key_id": "x", "public": "!!"}, b"x" * 64),
    ({"alg": "rsa", "key_id": key_id_of(b"k"), "public": base64.b64encode(b"k").decode()}, b"x" * 64),
    ("signer", b""), ({"alg": "sm2", "key_id": key_id_of(b"\x04" + b"\x01" * 64),
                       "public": base64.b64encode(b"\x04" + b"\x01" * 64).decode()}, b"\x01" * 64),  # not on curve
])
def test_garbage_never_raises(signer, public, signature):
    assert verify_signature(public, b"data", signature) is False
    assert verify_signature(signer.public_key(), b"data", b"") is False
    assert verify_signature(signer.public_key(), b"data", "not bytes") is False  # type: ignore[arg-type]
    assert verify_signature(signer.public_key(), b"data", b"\x00" * 64) is False
    assert verify_document({}, MANIFEST, {}) is False
    assert verify_document(None, MANIFEST, sign_document(signer, MANIFEST)) is False  # type: ignore[arg-type]
    assert verify_document({signer.key_id: signer.public_key()}, MANIFEST,
                           {"alg": signer.algorithm, "key_id": signer.key_id, "signature": "%%%"}) is False
    assert verify_document({signer.key_id: signer.public_key()}, MANIFEST, "sig") is False  # type: ignore[arg-type]


def test_sm2_signature_out_of_range_is_refused():
    """r or s outside [1, n-1] (which gmssl itself does not check) never verify."""
    s = Sm2Signer(12345678901234567890)
    n = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
    sig = s.sign(b"m")
    r, sv = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    assert verify_signature(s.public_key(), b"m", sig)
    for bad in ((0, sv), (r, 0), (n, sv), (r, n), (r + n, sv) if r + n < 2 ** 256 else (r, n + 1),
                (r, sv + n) if sv + n < 2 ** 256 else (n + 1, sv)):
        forged = bad[0].to_bytes(32, "big") + bad[1].to_bytes(32, "big")
        assert not verify_signature(s.public_key(), b"m", forged)


def test_sm2_nonces_are_fresh():
    s = Sm2Signer(987654321)
    assert s.sign(b"same message") != s.sign(b"same message")


def test_sm2_key_whose_point_starts_with_04_still_works():
    """gmssl's CryptSM2 strips a leading "04" from the public key's hex with lstrip, which corrupts keys whose x
    coordinate begins with byte 0x04 (d = 11 is one); the signer and the verifier must not be affected."""
    s = Sm2Signer(11)
    assert s.public_key()["public"] and base64.b64decode(s.public_key()["public"])[:2] == b"\x04\x04"
    sig = sign_document(s, MANIFEST)
    assert verify_document({s.key_id: s.public_key()}, MANIFEST, sig)
    assert not verify_document({s.key_id: s.public_key()}, {**MANIFEST, "version": 9}, sig)


def _openssl_has_sm2() -> bool:
    if not shutil.which("openssl"):
        return False
    out = subprocess.run(["openssl", "list", "-public-key-algorithms"], check=False, capture_output=True, text=True)
    return out.returncode == 0 and "SM2" in out.stdout


_SPKI_SM2_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")  # then 04||x||y
_DISTID = "distid:1234567812345678"


@pytest.mark.skipif(not _openssl_has_sm2(), reason="the openssl command has no SM2")
def test_sm2_interoperates_with_openssl(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    message = tmp_path / "manifest.json"
    message.write_bytes("签名 manifest".encode())
    # ours -> OpenSSL verifies
    ours = load_signer(tmp_path / "keys", "sm2")
    sig = ours.sign(message.read_bytes())
    (tmp_path / "pub.der").write_bytes(_SPKI_SM2_PREFIX + base64.b64decode(ours.public_key()["public"]))
    (tmp_path / "sig.der").write_bytes(encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                                            int.from_bytes(sig[32:], "big")))
    verify = ["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", str(tmp_path / "pub.der"),
              "-rawin", "-digest", "sm3", "-pkeyopt", _DISTID, "-in", str(message), "-sigfile"]
    ok = subprocess.run(verify + [str(tmp_path / "sig.der")], check=False, capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified Successfully" in ok.stdout, ok.stdout + ok.stderr
    (tmp_path / "other.txt").write_bytes(b"another message")
    bad = subprocess.run(verify[:-3] + ["-in", str(tmp_path / "other.txt"), "-sigfile", str(tmp_path / "sig.der")],
                         check=False, capture_output=True, text=True)
    assert bad.returncode != 0  # the check above can fail
    # OpenSSL signs -> we verify
    key = tmp_path / "openssl-sm2.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", str(key)], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    assert pub.startswith(_SPKI_SM2_PREFIX)
    point = pub[len(_SPKI_SM2_PREFIX):]
    subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-digest", "sm3", "-pkeyopt", _DISTID,
                    "-in", str(message), "-out", str(tmp_path / "theirs.der")], check=True, capture_output=True)
    r, s = decode_dss_signature((tmp_path / "theirs.der").read_bytes())
    theirs = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    public = {"alg": "sm2", "key_id": key_id_of(point), "public": base64.b64encode(point).decode()}
    assert verify_signature(public, message.read_bytes(), theirs)
    assert not verify_signature(public, b"another message", theirs)


def test_unknown_algorithm_is_refused(tmp_path):
    with pytest.raises(SignatureKeyError, match="Unknown signature algorithm"):
        load_signer(tmp_path, "rsa")


def test_key_readable_by_others_is_refused(tmp_path):
    for alg in ALGORITHMS:
        load_signer(tmp_path, alg)
        os.chmod(tmp_path / KEY_FILES[alg], 0o640)
        with pytest.raises(SignatureKeyError, match="chmod 600"):
            load_signer(tmp_path, alg)


@pytest.mark.parametrize("alg, content", [
    ("ed25519", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    ("sm2", b"zz-not-hex\n"), ("sm2", b"0" * 64 + b"\n")])
def test_damaged_key_is_refused_without_echoing_it(tmp_path, alg, content):
    path = tmp_path / KEY_FILES[alg]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(SignatureKeyError, match="damaged") as info:
        load_signer(tmp_path, alg)
    assert content.decode().strip() not in str(info.value)


def test_no_private_key_in_repr_str_or_public_key(tmp_path):
    for alg in ALGORITHMS:
        s = load_signer(tmp_path, alg)
        secret_text = (tmp_path / KEY_FILES[alg]).read_text()
        if alg == "ed25519":
            from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat,
                                                                      load_pem_private_key)

            raw = load_pem_private_key(secret_text.encode(), None).private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                                                   NoEncryption())
            body = "".join(secret_text.strip().splitlines()[1:-1])
            forms = [body, raw.hex(), base64.b64encode(raw).decode()]
        else:
            d = secret_text.strip()
            forms = [d, base64.b64encode(bytes.fromhex(d)).decode(), str(int(d, 16))]
        for text in (repr(s), str(s), repr(s.public_key()), repr(sign_document(s, MANIFEST))):
            assert s.key_id in text or "signature" in text
            for form in forms:
                assert form not in text
