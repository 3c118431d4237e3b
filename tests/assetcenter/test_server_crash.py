"""Crash safety: the server process is killed (SIGKILL) in the middle of an 8 MiB streamed upload, at several byte
offsets, and restarted on the same home. No partial or unverifiable version may ever become visible, no unfinished
upload may survive the restart, `verify` must pass, and the next upload must work. SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from postgres_server import free_port, new_database
from assetcenter.service import AssetCenter

SIZE = 8 << 20
CHUNK = 64 << 10
# bytes the server has received when it dies: none (headers only), one chunk, mid-way, all but the last chunk,
# and all of it (killed while storing, hashing or committing: the version is either complete or absent)
OFFSETS = [0, CHUNK, 3 << 20, SIZE - CHUNK, SIZE]
DATA = os.urandom(SIZE)
DIGEST = hashlib.sha256(DATA).hexdigest()
ROOT = Path(__file__).resolve().parents[2]
SERVE = ("import sys; from pathlib import Path; from assetcenter.server import serve; "
         "serve(Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), db_url=sys.argv[3] or None)")



class ServerProcess:
    """`ledgerflow assetcenter serve` as its own process (serve() is what the CLI calls), so it can be killed."""

    def __init__(self, home: Path, db_url: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(home), str(self.port), db_url or ""],
                                     cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise AssertionError("the server exited: " + self.proc.stderr.read().decode(errors="replace"))
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc.stderr.close()


class SlowUpload(threading.Thread):
    """Streams DATA (chunked, no length) and stops after `offset` bytes until released."""

    def __init__(self, url: str, token: str, name: str, offset: int) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.name, self.offset = url, token, name, offset
        self.reached, self.release = threading.Event(), threading.Event()
        self.outcome: object = None

    def body(self):
        for start in range(0, SIZE + 1, CHUNK):
            if start >= self.offset and not self.reached.is_set():
                self.reached.set()
                self.release.wait(timeout=60)
            if start < SIZE:
                yield DATA[start:start + CHUNK]

    def run(self) -> None:
        try:
            self.outcome = httpx.post(f"{self.url}/v1/assets/risk/{self.name}/versions", params={"kind": "dataset"},
                                      content=self.body(), timeout=60,
                                      headers={"Authorization": f"Bearer {self.token}", "X-Content-SHA256": DIGEST})
        except httpx.TransportError as exc:
            self.outcome = exc


def wait_for_part_file(home: Path, size: int) -> None:
    """Until the server has written exactly `size` bytes of the upload to its temp file (all the client sent)."""
    deadline = time.monotonic() + 60
    while True:
        sizes = []
        for part in (home / "tmp").glob("blob-*.part"):
            try:
                sizes.append(part.stat().st_size)
            except FileNotFoundError:
                pass
        if size in sizes:
            return
        assert time.monotonic() < deadline, f"the server never held {size} bytes of the upload (saw {sizes})"
        time.sleep(0.01)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = None
    if request.param == "postgresql":
        url = new_database(request.getfixturevalue("pg"), "acc_")
    home = tmp_path / "home"
    center = AssetCenter(home, db_url=url)
    with center.engine.begin() as conn:
        uid = center.accounts.create_user(conn, "root")
        center.accounts.grant(conn, uid, "admin")
        token = center.accounts.issue_token(conn, uid, label="crash")
    center.close()
    return home, url, token


def test_killing_the_server_mid_upload_never_exposes_a_partial_version(store):
    home, url, token = store
    auth = {"Authorization": f"Bearer {token}"}
    server = ServerProcess(home, url)
    try:
        for i, offset in enumerate(OFFSETS):
            upload = SlowUpload(server.url, token, f"big-{i}", offset)
            upload.start()
            assert upload.reached.wait(timeout=60)
            if offset < SIZE:
                wait_for_part_file(home, offset)
            server.kill()
            if offset < SIZE:  # the kill really interrupted a write: its temp file is left behind
                assert list((home / "tmp").glob("blob-*.part"))
            upload.release.set()
            upload.join(timeout=60)
            assert not upload.is_alive()

            server = ServerProcess(home, url)  # the same home, as an operator would restart it
            assert list((home / "tmp").glob("blob-*.part")) == [], "an unfinished upload survived the restart"
            found = httpx.get(f"{server.url}/v1/versions", params={"text": f"big-{i}"}, headers=auth).json()
            if offset < SIZE:
                assert found["total"] == 0, (offset, found)
            for item in found["items"]:  # at most the complete upload, and then byte-identical
                assert (item["size"], item["content_sha256"]) == (SIZE, DIGEST)
                got = httpx.get(f"{server.url}/v1/assets/risk/big-{i}/versions/{item['version']}/content",
                                headers=auth, timeout=60)
                assert hashlib.sha256(got.content).hexdigest() == DIGEST
            if isinstance(upload.outcome, httpx.Response):  # acknowledged before the kill: it must be there
                assert upload.outcome.status_code == 201 and found["total"] == 1
            center = AssetCenter(home, db_url=url)
            try:
                assert center.verify() == [], offset
            finally:
                center.close()
        fresh = httpx.post(f"{server.url}/v1/assets/risk/after-crash/versions", params={"kind": "dataset"},
                           content=DATA, headers={**auth, "X-Content-SHA256": DIGEST}, timeout=60)
        assert fresh.status_code == 201, fresh.text
        got = httpx.get(f"{server.url}/v1/assets/risk/after-crash/versions/1/content", headers=auth, timeout=60)
        assert got.content == DATA
    finally:
        server.stop()
