"""Asset center upload and download of a 1 GiB blob against a plain file copy on the same disk (target ≥ 0.5× its
throughput).

The anchor is what an analyst would otherwise do: copy the file, fsync'd so both sides pay for durability (a
published version survives a power cut). Ours:
- embedded: `AssetCenter.publish` from the file (hash, write, fsync, rename, sign, audit) and `AssetCenter.fetch`
  to a file (signature and row checked first, the content hash checked while streaming, fsync, atomic rename);
- over HTTP on loopback: the client streams the file to a real uvicorn server and fetches it back, verifying the
  signed manifest and the hash before the file appears (bench/assetcenter_http.py).
Three interleaved rounds; the medians count. The source file is in the page cache for both sides.

Run: `PYTHONPATH=. .venv/bin/python -m bench.assetcenter_blobs` (needs ~10 GiB free in the temp folder).
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import report

SIZE = 1 << 30
CHUNK = 1 << 20
REPEAT = 3


def _write_source(path: Path) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as fh:
        for i in range(SIZE // CHUNK):
            fh.write(block[i % 251:] + block[:i % 251])  # varied, incompressible
        fh.flush()
        os.fsync(fh.fileno())


def _copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
        fout.flush()
        os.fsync(fout.fileno())


def _chunks(path: Path):
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def main() -> dict:
    from assetcenter.service import AssetCenter

    folder = Path(tempfile.mkdtemp(prefix="lf-bench-blobs-"))
    try:
        src = folder / "source.bin"
        _write_source(src)
        center = AssetCenter(folder / "home")
        with center.engine.begin() as conn:  # a real user row: versions reference their author
            uid = center.accounts.create_user(conn, "bench")
            center.accounts.grant(conn, uid, "admin")
        who = center.accounts.principal(uid)
        # Interleaved (copy, upload, download; three rounds), every output kept until the end: this disk absorbs a
        # burst of writes fast and then slows, so whichever side ran first, or deleted its output at once, would win.
        copies, ups, downs = [], [], []
        for i in range(REPEAT):
            copies.append(_timed(lambda: _copy(src, folder / f"copy-{i}.bin")))
            # a different last byte each round, so every upload stores a new blob (no content-address shortcut)
            ups.append(_timed(lambda: center.publish(who, project="bench", kind="dataset", name=f"big-{i}",
                                                     chunks=_varied(src, i))))
            downs.append(_timed(lambda: center.fetch(who, f"bench/big-{i}@1", folder / f"fetched-{i}.bin")))
        center.close()
        copy_s, up_s, down_s = (statistics.median(x) for x in (copies, ups, downs))
        mib = SIZE / (1 << 20)
        report("asset upload 1 GiB, embedded (MiB/s)", mib / up_s, mib / copy_s, "MiB/s", ">= 0.5x copy",
               up_s <= 2 * copy_s)
        report("asset download 1 GiB, embedded (MiB/s)", mib / down_s, mib / copy_s, "MiB/s", ">= 0.5x copy",
               down_s <= 2 * copy_s)
        result = {"copy_s": copy_s, "upload_s": up_s, "download_s": down_s}
        result.update(_over_http(folder, src))
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _varied(src: Path, i: int):
    last = None
    for block in _chunks(src):
        if last is not None:
            yield last
        last = block
    if last is not None:
        yield last[:-1] + bytes([(last[-1] + i + 1) % 256])


def _over_http(folder: Path, src: Path) -> dict:
    """The same through the HTTP server and client (bench/assetcenter_http.py), with its own interleaved copies."""
    from bench.assetcenter_http import measure

    copy_s, up_s, down_s = measure(folder, src, REPEAT)
    mib = SIZE / (1 << 20)
    report("asset upload 1 GiB, HTTP loopback (MiB/s)", mib / up_s, mib / copy_s, "MiB/s", ">= 0.5x copy",
           up_s <= 2 * copy_s)
    report("asset download 1 GiB, HTTP loopback (MiB/s)", mib / down_s, mib / copy_s, "MiB/s", ">= 0.5x copy",
           down_s <= 2 * copy_s)
    return {"http_copy_s": copy_s, "http_upload_s": up_s, "http_download_s": down_s}


if __name__ == "__main__":
    main()
