"""A real redis-server on loopback for tests: a free port, a random password, no persistence, a temp folder.

`redis_server()` is a plain context manager (usable outside pytest); `redis_process` (session) and `redis_url`
(per test: empties the database and sets LEDGERFLOW_REDIS_PASSWORD) are fixtures for a conftest to import.
"""
from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

PASSWORD_ENV = "LEDGERFLOW_REDIS_PASSWORD"


@dataclass(frozen=True)
class RedisServer:
    url: str  # without the password
    password: str
    port: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(timeout: float = 15.0) -> Iterator[RedisServer]:
    """Start redis-server, wait until it answers PING, yield it, shut it down."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("install redis-server (apt-get install redis-server)")
    password, port = secrets.token_hex(16), _free_port()
    with tempfile.TemporaryDirectory(prefix="lf-redis-") as folder:
        # --requirepass goes through stdin (config "-"), so the password never shows in `ps`
        args = [binary, "-", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", folder]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=folder)
        assert proc.stdin is not None
        proc.stdin.write(f"requirepass {password}\n".encode())
        proc.stdin.close()
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_connect_timeout=1)
        try:
            end = time.monotonic() + timeout
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > end:
                        pytest.fail(f"redis-server did not start on 127.0.0.1:{port}")
                    time.sleep(0.05)
            yield RedisServer(url=f"redis://127.0.0.1:{port}/0", password=password, port=port)
        finally:
            client.close()
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_process: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's URL (no password in it) with the password in the environment and an empty database."""
    import redis

    monkeypatch.setenv(PASSWORD_ENV, redis_process.password)
    with redis.Redis(host="127.0.0.1", port=redis_process.port, password=redis_process.password) as client:
        client.flushdb()
    return redis_process.url
