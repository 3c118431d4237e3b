"""Run the asset center app with uvicorn in a background thread, on a port the OS picks.

Why: tests (and a desktop app that wants to share its embedded store on loopback) need a real HTTP server they can
start in milliseconds and stop cleanly, without a subprocess. Port 0 lets the kernel choose a free port, so two
test runs never race for one.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from engine.errors import LedgerflowError
from engine.i18n import tr


class ServerThread:
    """`with ServerThread(app) as server: httpx.get(server.url + "/v1/health")`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, tls_cert: Path | None = None,
                 tls_key: Path | None = None, start_timeout: float = 30.0) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, ssl_certfile=str(tls_cert) if tls_cert else None,
                                ssl_keyfile=str(tls_key) if tls_key else None, proxy_headers=False,
                                server_header=False, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="assetcenter-server", daemon=True)
        self._scheme = "https" if tls_cert else "http"
        self._host = host
        self._timeout = start_timeout
        self.port = port

    @property
    def url(self) -> str:
        return f"{self._scheme}://{self._host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LedgerflowError(tr("The asset center server did not start on {host}", host=self._host))
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
