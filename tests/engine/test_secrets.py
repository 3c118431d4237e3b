"""The local vault: encrypted at rest, key and vault readable by the owner only, env: references, clear errors,
and concurrent writers that do not lose each other's entries."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import secrets
from engine.errors import LedgerflowError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("LEDGERFLOW_HOME", str(folder))
    return folder


def test_round_trip_and_references_are_unique(home):
    a = secrets.put_secret("s3cret-Ä密码", label="risk db")
    b = secrets.put_secret("s3cret-Ä密码")
    assert a != b
    for ref in (a, b):
        assert ref.startswith("vault:") and len(ref) == len("vault:") + 32
        assert secrets.is_reference(ref)
    assert secrets.get_secret(a) == "s3cret-Ä密码"
    assert secrets.get_secret(b) == "s3cret-Ä密码"
    assert secrets.get_secret(secrets.put_secret("")) == ""


def test_files_are_private_and_the_value_is_not_stored_in_plain_text(home):
    value = "PlainTextNeedle-12345"
    ref = secrets.put_secret(value, label="warehouse")
    vault, key = home / secrets.VAULT_FILE, home / secrets.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    raw = vault.read_bytes()
    assert value.encode() not in raw and value.encode() not in key.read_bytes()
    doc = json.loads(raw)
    entry = doc["entries"][ref.removeprefix("vault:")]
    assert entry["label"] == "warehouse" and entry["token"]


def test_unknown_and_deleted_entries(home):
    ref = secrets.put_secret("x")
    other = secrets.put_secret("y")
    assert secrets.delete_secret(ref) is True
    assert secrets.delete_secret(ref) is False
    with pytest.raises(LedgerflowError, match="not in this machine's vault"):
        secrets.get_secret(ref)
    assert secrets.get_secret(other) == "y"
    with pytest.raises(LedgerflowError, match="not in this machine's vault"):
        secrets.get_secret("vault:" + "0" * 32)


@pytest.mark.parametrize("bad", ["hunter2", "vault:../../etc/passwd", "vault:ABCDEF", "vault:" + "g" * 32,
                                 "env:1BAD", "env:", ""])
def test_malformed_references_are_refused_without_echoing_them(home, bad):
    assert not secrets.is_reference(bad)
    with pytest.raises(LedgerflowError) as info:
        secrets.get_secret(bad)
    assert "vault:<id> or env:NAME" in str(info.value)
    if len(bad) > 5:  # "env:" and "" are part of the fixed message itself
        assert bad not in str(info.value)
    with pytest.raises(LedgerflowError):
        secrets.delete_secret(bad)


def test_env_references(home, monkeypatch):
    monkeypatch.setenv("LF_TEST_DB_PASSWORD", "from-env")
    assert secrets.get_secret("env:LF_TEST_DB_PASSWORD") == "from-env"
    monkeypatch.delenv("LF_TEST_DB_PASSWORD")
    with pytest.raises(LedgerflowError, match="LF_TEST_DB_PASSWORD is not set"):
        secrets.get_secret("env:LF_TEST_DB_PASSWORD")
    assert secrets.delete_secret("env:LF_TEST_DB_PASSWORD") is False
    assert not (home / secrets.VAULT_FILE).exists()


def test_a_replaced_key_cannot_decrypt_and_says_so(home):
    ref = secrets.put_secret("x")
    key = home / secrets.KEY_FILE
    key.unlink()
    secrets.put_secret("y")  # makes a fresh key
    with pytest.raises(LedgerflowError, match="cannot be decrypted"):
        secrets.get_secret(ref)


def test_an_entry_moved_to_another_id_does_not_decrypt(home):
    a, b = secrets.put_secret("alpha"), secrets.put_secret("beta")
    vault = home / secrets.VAULT_FILE
    doc = json.loads(vault.read_text())
    ida, idb = a.removeprefix("vault:"), b.removeprefix("vault:")
    doc["entries"][ida]["token"] = doc["entries"][idb]["token"]
    vault.write_text(json.dumps(doc))
    with pytest.raises(LedgerflowError, match="cannot be decrypted"):
        secrets.get_secret(a)
    assert secrets.get_secret(b) == "beta"


def test_key_readable_by_others_is_refused(home):
    secrets.put_secret("x")
    os.chmod(home / secrets.KEY_FILE, 0o644)
    with pytest.raises(LedgerflowError, match="chmod 600"):
        secrets.put_secret("y")


def test_damaged_vault_is_reported_and_left_alone(home):
    secrets.put_secret("x")
    vault = home / secrets.VAULT_FILE
    vault.write_text("{not json")
    with pytest.raises(LedgerflowError, match="damaged"):
        secrets.put_secret("y")
    assert vault.read_text() == "{not json"


def test_concurrent_writers_keep_every_entry(home):
    code = ("import sys\nfrom engine import secrets\n"
            "for i in range(8):\n    print(secrets.put_secret(f'{sys.argv[1]}-{i}'))\n")
    env = {**os.environ, "LEDGERFLOW_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    procs = [subprocess.Popen([sys.executable, "-c", code, f"w{n}"], env=env, stdout=subprocess.PIPE, text=True)
             for n in range(4)]
    refs: dict[str, str] = {}
    for n, p in enumerate(procs):
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        lines = out.split()
        assert len(lines) == 8
        refs.update({ref: f"w{n}-{i}" for i, ref in enumerate(lines)})
    assert len(refs) == 32
    assert {ref: secrets.get_secret(ref) for ref in refs} == refs
    assert len(json.loads((home / secrets.VAULT_FILE).read_text())["entries"]) == 32
