"""The HTTP client against a real server on loopback: round trip, and the checks it makes itself before a
downloaded file appears: content hash (server-side blob damage), the pinned signing key (trust on first use), and
no partial file or token leaking anywhere."""
from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher

from postgres_server import free_port
from assetcenter.client import (
    AssetClient,
    AuthFailed,
    ClientError,
    Refused,
    TrustError,
    VerificationFailed,
)
from assetcenter.home import AssetHome
from assetcenter.server import create_app
from assetcenter.service import AssetCenter
from assetcenter.signatures import KEY_FILES

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
DATA = os.urandom(200_000) + b"tail"



def open_center(home: Path) -> AssetCenter:
    center = AssetCenter(AssetHome(home))
    center.accounts._hasher = FAST  # cheap argon2 parameters for tests; same code path
    return center


@contextlib.contextmanager
def served(center: AssetCenter, port: int) -> Iterator[str]:
    """uvicorn serving create_app(center) on 127.0.0.1:port in a thread, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(create_app(center), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def admin_token(center: AssetCenter, name: str = "root", role: str = "admin", project: str = "*") -> str:
    with center.engine.begin() as conn:
        uid = center.accounts.create_user(conn, name)
        center.accounts.grant(conn, uid, role, project)
        return center.accounts.issue_token(conn, uid, label="test")


@pytest.fixture
def setup(tmp_path):
    center = open_center(tmp_path / "home")
    token = admin_token(center)
    port = free_port()
    with served(center, port) as url:
        client = AssetClient(url, token, trust_file=tmp_path / "trust.json")
        yield center, client, token, tmp_path
        client.close()
    center.close()


def blob_path(center: AssetCenter, sha: str) -> Path:
    return center.home.blobs / sha[:2] / sha[2:4] / sha


def test_round_trip_pins_the_key_and_never_shows_the_token(setup):
    _, client, token, tmp = setup
    info = client.publish([DATA[:70_000], DATA[70_000:]], project="risk", kind="dataset", name="loans",
                          tags=["q1"], description="loan book", metadata={"rows": 3, "note": "äöü 中文"},
                          lineage=[("derived_from", "dataset", "risk/raw@1")])
    assert info["ref"] == "risk/loans@1" and info["size"] == len(DATA) and info["tags"] == ["q1"]
    assert info["metadata"]["note"] == "äöü 中文" and info["lineage"][0]["target"] == "risk/raw@1"
    src = tmp / "v2.bin"
    src.write_bytes(DATA + b"2")
    assert client.publish(src, project="risk", kind="dataset", name="loans")["version"] == 2
    assert client.search(project="risk", tag="q1")["total"] == 1
    assert [v["version"] for v in client.versions("risk", "loans")] == [1, 2]
    assert client.info("risk/loans")["version"] == 2

    got = client.fetch("risk/loans@1", tmp / "out.bin")
    assert (tmp / "out.bin").read_bytes() == DATA and got["version"] == 1
    pinned = client.trust.pinned(client.url)
    assert list(pinned) == [info["signature"]["key_id"]]
    assert stat.S_IMODE((tmp / "trust.json").stat().st_mode) == 0o600
    assert client.verify() == []

    assert token not in repr(client) and token.split(".")[1] not in repr(client.__dict__)
    bad = AssetClient(client.url, token[:-2] + "xx", trust_file=tmp / "trust.json")
    with pytest.raises(AuthFailed) as caught:
        bad.search()
    assert token[:-2] not in str(caught.value) and caught.value.status == 401
    bad.close()
    with pytest.raises(ClientError, match="plain http"):
        AssetClient("http://assets.example.com", token)
    with pytest.raises(ClientError, match="malformed") as caught:
        AssetClient(client.url, "hunter2 with spaces")
    assert "hunter2" not in str(caught.value)


def test_fetch_refuses_content_damaged_on_the_server_and_leaves_nothing(setup):
    center, client, _, tmp = setup
    info = client.publish(DATA, project="risk", kind="dataset", name="loans")
    blob = blob_path(center, info["content_sha256"])
    damaged = bytearray(blob.read_bytes())
    damaged[150_000] ^= 0x40
    blob.chmod(0o600)
    blob.write_bytes(bytes(damaged))
    out = tmp / "downloads"
    out.mkdir()
    with pytest.raises(VerificationFailed):
        client.fetch("risk/loans@1", out / "loans.bin")
    assert list(out.iterdir()) == []  # neither the file nor a temp file
    entries = client.audit()
    assert any(e["action"] == "blocked_read" for e in entries)  # the server audited the damaged read
    assert any("risk/loans@1" in p for p in client.verify())


def test_fetch_refuses_a_server_whose_signing_key_changed(tmp_path):
    home = tmp_path / "home"
    center = open_center(home)
    token = admin_token(center)
    port = free_port()
    trust = tmp_path / "trust.json"
    with served(center, port) as url, AssetClient(url, token, trust_file=trust) as client:
        first = client.publish(DATA, project="risk", kind="dataset", name="loans")
        client.fetch("risk/loans@1", tmp_path / "ok.bin")  # first use: the key is pinned
    center.close()
    (home / "keys" / KEY_FILES["ed25519"]).unlink()  # the server now signs with a new key
    center = open_center(home)
    out = tmp_path / "downloads"
    out.mkdir()
    with served(center, port) as url, AssetClient(url, token, trust_file=trust) as client:
        second = client.publish(DATA + b"!", project="risk", kind="dataset", name="loans")
        old_key, new_key = first["signature"]["key_id"], second["signature"]["key_id"]
        assert old_key != new_key
        with pytest.raises(TrustError) as caught:
            client.fetch("risk/loans@2", out / "loans.bin")
        assert old_key in str(caught.value) and new_key in str(caught.value)
        assert list(out.iterdir()) == []
        assert list(client.trust.pinned(url)) == [old_key]  # a later key never replaces the pin
        with AssetClient(url, token, trust_file=tmp_path / "other-trust.json") as fresh:  # new machine: pins it
            fresh.fetch("risk/loans@2", out / "loans.bin")
        assert (out / "loans.bin").read_bytes() == DATA + b"!"
    center.close()


def test_refusals_carry_the_servers_message(setup):
    center, client, _, tmp = setup
    viewer = admin_token(center, "vera", "viewer", "risk")
    with AssetClient(client.url, viewer, trust_file=tmp / "trust.json") as as_viewer:
        with pytest.raises(Refused, match="vera"):
            as_viewer.publish(b"x", project="risk", kind="dataset", name="nope")
        assert as_viewer.search()["total"] == 0
    with pytest.raises(ClientError, match="kind"):
        client.publish(b"x", project="risk", kind="spreadsheet", name="nope")
