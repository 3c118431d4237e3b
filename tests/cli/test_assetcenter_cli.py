"""`ledgerflow assetcenter …` and `ledgerflow assets …` end to end, each command in its own process: init and its
one-time token, the zero-setup embedded store, verify after tampering, and a real server over TLS."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from postgres_server import free_port
from tls_cert import self_signed
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"[0-9a-f]{16}\.[A-Za-z0-9_-]{43}")
PAYLOAD = os.urandom(300_000) + b"\x00end"  # binary, several chunks
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("LEDGERFLOW_ASSETCENTER_URL", "LEDGERFLOW_TOKEN", "LEDGERFLOW_ASSETCENTER_CA",
                          "LEDGERFLOW_ASSETCENTER_DB")}


def lf(*args: str, rc: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """`ledgerflow …` (engine.cli's entry point) in its own process; asserts the exit code."""
    out = subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120,
                         check=False, cwd=ROOT, env={**CLEAN_ENV, "PYTHONPATH": str(ROOT), **(env or {})})
    assert out.returncode == rc, f"rc={out.returncode}\nstdout:{out.stdout}\nstderr:{out.stderr}"
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def flip_blob_byte(home: Path, sha256: str, offset: int = 1000) -> None:
    blob = home / "blobs" / sha256[:2] / sha256[2:4] / sha256
    data = bytearray(blob.read_bytes())
    data[offset] ^= 0x01
    blob.chmod(0o600)
    blob.write_bytes(bytes(data))


def test_init_prints_the_token_once_and_refuses_a_second_init(tmp_path):
    home = tmp_path / "center"
    first = lf("assetcenter", "init", "--home", str(home), rc=0)
    tokens = TOKEN.findall(first.stdout)
    assert len(tokens) == 1 and first.stdout.count(tokens[0]) == 1 and tokens[0] not in first.stderr
    assert "redeem" in first.stdout and (home / "assetcenter.db").exists()
    again = lf("assetcenter", "init", "--home", str(home), rc=1)
    assert "already has users" in again.stderr and not TOKEN.search(again.stdout + again.stderr)
    # the one-time token works exactly once: redeemed for a normal token, then refused
    redeemed = lf("assetcenter", "redeem", "--home", str(home), rc=0, env={"LEDGERFLOW_TOKEN": tokens[0]})
    new = TOKEN.findall(redeemed.stdout)
    assert len(new) == 1 and new[0] != tokens[0]
    refused = lf("assetcenter", "redeem", "--home", str(home), rc=1, env={"LEDGERFLOW_TOKEN": tokens[0]})
    assert "Authentication failed" in refused.stderr and tokens[0] not in refused.stderr
    # after init the OS user is not a user of this store: the embedded commands need the token
    denied = lf("assets", "list", "--home", str(home), rc=1)
    assert "LEDGERFLOW_TOKEN" in denied.stderr
    lf("assets", "list", "--home", str(home), "--json", rc=0, env={"LEDGERFLOW_TOKEN": new[0]})


def test_embedded_zero_setup_round_trip_verify_and_tampering(tmp_path):
    env = {"LEDGERFLOW_HOME": str(tmp_path / "lfhome")}  # no --home: the default embedded store
    src = tmp_path / "data.bin"
    src.write_bytes(PAYLOAD)
    one = json.loads(lf("assets", "publish", str(src), "--kind", "dataset", "--name", "loans", "--tag", "retail",
                        "--description", "loan book", "--json", rc=0, env=env).stdout)
    assert one["ref"] == "default/loans@1" and one["size"] == len(PAYLOAD) and one["tags"] == ["retail"]
    src.write_bytes(PAYLOAD + b"v2")
    lf("assets", "publish", str(src), "--kind", "dataset", "--name", "loans", "--project", "default", rc=0, env=env)
    page = json.loads(lf("assets", "list", "--tag", "retail", "--json", rc=0, env=env).stdout)
    assert page["total"] == 1 and page["items"][0]["ref"] == "default/loans@1"
    assert "default/loans@2" in lf("assets", "list", "--text", "LOA", rc=0, env=env).stdout
    out = tmp_path / "out"
    out.mkdir()
    lf("assets", "get", "loans@1", "-o", str(out / "v1.bin"), rc=0, env=env)
    lf("assets", "get", "default/loans", "-o", str(out / "latest.bin"), rc=0, env=env)
    assert (out / "v1.bin").read_bytes() == PAYLOAD and (out / "latest.bin").read_bytes() == PAYLOAD + b"v2"

    home = tmp_path / "lfhome" / "assetcenter"
    assert lf("assetcenter", "verify", "--home", str(home), rc=0).stdout.strip() == "ok"
    missing = lf("assets", "get", "loans@9", "-o", str(out / "nine.bin"), rc=1, env=env)
    assert "loans@9" in missing.stderr
    lf("assets", "get", "a/b/c", "-o", str(out / "x.bin"), rc=2, env=env)  # not a reference: usage

    flip_blob_byte(home, one["content_sha256"])
    broken = lf("assetcenter", "verify", "--home", str(home), rc=1)
    assert "default/loans@1" in broken.stderr.splitlines()[0] and "ok" not in broken.stdout
    blocked = lf("assets", "get", "loans@1", "-o", str(out / "bad.bin"), rc=1, env=env)
    assert "blocked" in blocked.stderr
    assert not (out / "bad.bin").exists() and leftovers(out) == [] and not (out / "nine.bin").exists()
    lf("assets", "get", "loans@2", "-o", str(out / "v2.bin"), rc=0, env=env)  # untouched data still served


# ---- a real server, over TLS ------------------------------------------------------------------------------------
def test_server_mode_over_tls_with_a_redeemed_token(tmp_path):
    home = tmp_path / "center"
    one_time = TOKEN.findall(lf("assetcenter", "init", "--home", str(home), rc=0).stdout)[0]
    cert, key = self_signed(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "engine.cli", "assetcenter", "serve", "--home", str(home),
                               "--host", "127.0.0.1", "--port", str(port), "--tls-cert", str(cert), "--tls-key",
                               str(key), "--max-upload-mb", "16"], cwd=ROOT, env={**CLEAN_ENV, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while True:
            assert server.poll() is None, server.stdout.read().decode(errors="replace")
            try:
                if httpx.get(f"{url}/v1/health", verify=str(cert), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        env = {"LEDGERFLOW_ASSETCENTER_URL": url, "LEDGERFLOW_ASSETCENTER_CA": str(cert),
               "LEDGERFLOW_HOME": str(tmp_path / "client-home")}
        token = TOKEN.findall(lf("assetcenter", "redeem", rc=0, env={**env, "LEDGERFLOW_TOKEN": one_time}).stdout)[0]
        env["LEDGERFLOW_TOKEN"] = token
        lf("assets", "list", rc=2, env={**env, "LEDGERFLOW_TOKEN": ""})  # a server without a token: usage
        lf("assets", "list", "--home", str(home), rc=2, env=env)  # server and --home: usage

        src = tmp_path / "model.zip"
        src.write_bytes(PAYLOAD)
        info = json.loads(lf("assets", "publish", str(src), "--kind", "model_package", "--name", "pd-model",
                             "--project", "risk", "--tag", "pd", "--json", rc=0, env=env).stdout)
        assert info["ref"] == "risk/pd-model@1" and info["stage"] == "candidate" and info["owner"] == "admin"
        page = json.loads(lf("assets", "list", "--project", "risk", "--json", rc=0, env=env).stdout)
        assert [v["ref"] for v in page["items"]] == ["risk/pd-model@1"]
        lf("assets", "get", "risk/pd-model@1", "-o", str(tmp_path / "back.zip"), rc=0, env=env)
        assert (tmp_path / "back.zip").read_bytes() == PAYLOAD
        pins = json.loads((tmp_path / "client-home" / "assetcenter-trust.json").read_text())
        assert list(pins) == [url] and info["signature"]["key_id"] in pins[url]
        # maker-checker: the author cannot approve its own model, whatever its role
        refused = lf("assets", "promote", "risk/pd-model@1", "--to", "validated", "--comment", "fine", rc=1,
                     env=env)
        assert "author" in refused.stderr
        history = lf("assets", "history", "risk/pd-model", "--json", rc=0, env=env)
        assert [e["to"] for e in json.loads(history.stdout)] == ["candidate"]
        bad = lf("assets", "list", rc=1, env={**env, "LEDGERFLOW_TOKEN": token[:-1] + "x"})
        assert "Authentication failed" in bad.stderr and token[:-1] not in bad.stderr
        untrusted = lf("assets", "list", rc=1, env={**env, "LEDGERFLOW_ASSETCENTER_CA": ""})  # system CAs only
        assert "certificate" in untrusted.stderr.lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        server.stdout.close()
    assert lf("assetcenter", "verify", "--home", str(home), rc=0).stdout.strip() == "ok"


@pytest.mark.parametrize("args", [["assets", "publish", "/nonexistent/file", "--kind", "dataset", "--name", "x"],
                                  ["assets", "publish", __file__, "--kind", "spreadsheet", "--name", "x"],
                                  ["assets", "promote", "x@1", "--to", "candidate", "--comment", "c"],
                                  ["assetcenter", "serve", "--tls-cert", __file__]])
def test_usage_errors_exit_2(tmp_path, args):
    lf(*args, rc=2, env={"LEDGERFLOW_HOME": str(tmp_path)})
