"""A throwaway PostgreSQL server on 127.0.0.1 for tests: initdb in a temp folder, a free port, a random password.

Tests talk to a real server (no mocks) without depending on a system service. PostgreSQL refuses to run as root,
so as root (here and in CI) the server runs as the `postgres` system user that the postgresql package creates.
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "lf_admin"


def find_bin_dir() -> Path:
    """The folder with initdb and pg_ctl: the newest /usr/lib/postgresql/*/bin, else the one on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                        if Path(p).parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        real = Path(pg_ctl).resolve().parent
        if (real / "initdb").exists():
            return real
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql "
                "(apt-get install postgresql)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    folder: Path

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        """A SQLAlchemy URL without password, as a Read SQL node wants it."""
        return f"postgresql+psycopg://{user or self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", user: str | None = None, password: str | None = None):
        """A psycopg connection in autocommit mode (as the superuser unless told otherwise)."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, dbname=database, user=user or self.user,
                               password=password if password is not None else self.password, autocommit=True,
                               connect_timeout=10)


def _run(cmd: list[str], as_postgres: bool, **kw) -> subprocess.CompletedProcess:
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server for the duration of the block; stop it and delete its files afterwards."""
    bin_dir = find_bin_dir()
    as_postgres = os.geteuid() == 0
    # Under /tmp, not pytest's tmp_path: the postgres user must be able to reach it (pytest's root is 0700 root).
    folder = Path(tempfile.mkdtemp(prefix="ledgerflow-pg-"))
    data, sockets, log = folder / "data", folder / "sock", folder / "server.log"
    password = secrets.token_urlsafe(18)
    started = False
    try:
        sockets.mkdir()
        (folder / "pw").write_text(password + "\n")
        if as_postgres:
            shutil.chown(folder, "postgres", "postgres")
            for p in (sockets, folder / "pw"):
                shutil.chown(p, "postgres", "postgres")
        init = _run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256",
                     f"--pwfile={folder / 'pw'}", "-E", "UTF8", "--no-locale", "--no-sync"], as_postgres, timeout=120)
        if init.returncode != 0:
            pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        (folder / "pw").unlink()
        for attempt in range(3):  # a free port can be taken between asking and binding
            port = free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c synchronous_commit=off "
                    "-c full_page_writes=off -c shared_buffers=16MB -c max_connections=30")
            start = _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", opts,
                          "start"], as_postgres, timeout=120)
            if start.returncode == 0:
                started = True
                break
        if not started:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start:\n{start.stdout}\n{start.stderr}\n{tail}")
        yield PostgresServer("127.0.0.1", port, SUPERUSER, password, folder)
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], as_postgres, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server: PostgresServer, prefix: str = "t_") -> str:
    """A new, empty database on `server`: its SQLAlchemy URL, with the password (for SQLAlchemy engines)."""
    import secrets

    from sqlalchemy.engine import make_url

    name = prefix + secrets.token_hex(6)
    with server.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return make_url(server.url(name)).set(password=server.password).render_as_string(hide_password=False)
