"""The HTTP half of bench/assetcenter_blobs.py: a real uvicorn server on loopback and the real client.

The client hashes the file before sending (the server refuses bytes that do not match the announced SHA-256), so
an upload reads the file twice; a download verifies the signed manifest with the pinned key and the content hash
before the file appears. Interleaved with a plain fsync'd copy, as in the embedded half.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path


def measure(folder: Path, src: Path, repeat: int) -> tuple[float, float, float]:
    """Median seconds of (copy, upload, download) of `src` through the HTTP API, interleaved."""
    from assetcenter.client import AssetClient
    from assetcenter.home import AssetHome
    from assetcenter.server import create_app
    from assetcenter.server_thread import ServerThread
    from assetcenter.service import AssetCenter
    from bench.assetcenter_blobs import _copy, _varied

    sources = []  # one file per round, differing in the last byte (a new blob each time), published by path as the
    for i in range(repeat):  # CLI does: the client hashes the file, then streams it
        path = folder / f"http-source-{i}.bin"
        with open(path, "wb") as fh:
            for block in _varied(src, 100 + i):
                fh.write(block)
        sources.append(path)
    center = AssetCenter(AssetHome(folder / "http-home"))
    one_time = center.init()
    copies, ups, downs = [], [], []
    with ServerThread(create_app(center)) as server:
        _, token = center.redeem(one_time, label="bench")
        client = AssetClient(server.url, token, trust_file=folder / "trust.json", timeout=600)
        for i in range(repeat):
            t0 = time.perf_counter()
            _copy(src, folder / f"http-copy-{i}.bin")
            copies.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.publish(sources[i], project="bench", kind="dataset", name=f"web-{i}")
            ups.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.fetch(f"bench/web-{i}@1", folder / f"http-fetched-{i}.bin")
            downs.append(time.perf_counter() - t0)
    center.close()
    return statistics.median(copies), statistics.median(ups), statistics.median(downs)
