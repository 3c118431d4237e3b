"""The blob folder and the home layout: write/read/verify round trips, size limits, failing and killed writers (a
real child process SIGKILLed at several byte offsets), temp-file cleanup that spares live writers, damage detection
and digests that can never become a path outside the store."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from assetcenter import blobs
from assetcenter.blobs import (BlobHashMismatch, BlobNotFound, BlobStore, BlobTooLarge, InvalidDigest, StoredBlob,
                               hashing)
from assetcenter.home import AssetHome, default_home
from engine.errors import ArtifactIntegrityError, LedgerflowError

ROOT = Path(blobs.__file__).resolve().parents[1]  # the repository, for child processes


@pytest.fixture
def home(tmp_path: Path) -> AssetHome:
    return AssetHome(tmp_path / "home")


@pytest.fixture
def store(home: AssetHome) -> BlobStore:
    return BlobStore(home.blobs, home.tmp)


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def split(data: bytes, sizes: tuple[int, ...] = (1, 7, 4096, 65536, 100_003)) -> list[bytes]:
    """`data` cut into chunks of varied sizes (uneven, to catch off-by-one bugs at chunk edges)."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        out.append(data[pos:pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return out


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


# -- home layout -------------------------------------------------------------------------------------------------
def test_home_layout_is_private_and_stable(tmp_path: Path) -> None:
    home = AssetHome(tmp_path / "a" / "center")
    for folder in (home.root, home.blobs, home.tmp, home.keys, home.checkpoints.parent):
        assert folder.is_dir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert home.checkpoints == home.root / "audit" / "checkpoints.jsonl"
    assert home.db_url() == f"sqlite:///{home.root / 'assetcenter.db'}"
    again = AssetHome(tmp_path / "a" / "center")  # opening an existing home changes nothing
    assert (again.blobs, again.tmp, again.keys) == (home.blobs, home.tmp, home.keys)


def test_home_refuses_a_key_folder_others_can_enter(tmp_path: Path) -> None:
    home = AssetHome(tmp_path / "h")
    os.chmod(home.keys, 0o755)
    with pytest.raises(LedgerflowError, match="chmod 700"):
        AssetHome(tmp_path / "h")


def test_default_home_is_in_the_ledgerflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "lf"))
    assert default_home() == tmp_path / "lf" / "assetcenter"


# -- round trips -------------------------------------------------------------------------------------------------
def test_write_read_verify(store: BlobStore) -> None:
    data = payload(1_234_567)
    blob = store.write(iter(split(data)), max_bytes=2_000_000)
    sha = hashlib.sha256(data).hexdigest()
    assert blob == StoredBlob(sha, len(data))
    path = store.root / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o400  # content-addressed files are never modified in place
    assert store.exists(sha) and store.verify(sha) is None and store.verify(sha, size=len(data)) is None
    with store.open(sha) as fh:
        assert fh.read() == data
    assert b"".join(store.read_chunks(sha, chunk=65_537)) == data
    assert list(store.digests()) == [sha]
    assert files_under(store.tmp) == []

    # The same content again is deduplicated; an empty blob is a blob too.
    assert store.write([data], max_bytes=len(data)) == blob
    empty = store.write([], max_bytes=0)
    assert empty == StoredBlob(hashlib.sha256(b"").hexdigest(), 0)
    assert sorted(store.digests()) == sorted([sha, empty.sha256])
    assert len(files_under(store.root)) == 2 and files_under(store.tmp) == []


def test_hashing_tees_a_stream(store: BlobStore) -> None:
    data = payload(300_000, seed=2)
    h = hashlib.sha256()
    blob = store.write(hashing(split(data), h), max_bytes=len(data))
    assert h.hexdigest() == blob.sha256 == hashlib.sha256(data).hexdigest()


def test_declared_hash_is_checked_before_commit(store: BlobStore) -> None:
    data = payload(50_000, seed=3)
    with pytest.raises(BlobHashMismatch, match="not to the declared"):
        store.write(split(data), max_bytes=10**6, expected_sha256=hashlib.sha256(b"other").hexdigest())
    assert list(store.digests()) == [] and files_under(store.tmp) == []
    good = hashlib.sha256(data).hexdigest()
    assert store.write(split(data), max_bytes=10**6, expected_sha256=good).sha256 == good


# -- refused and failed writes leave nothing ---------------------------------------------------------------------
def test_size_limit(store: BlobStore) -> None:
    data = payload(100_000, seed=4)
    assert store.write(split(data), max_bytes=len(data)).size == len(data)  # exactly at the limit: accepted
    bigger = payload(100_001, seed=5)
    with pytest.raises(BlobTooLarge, match="100000 bytes"):
        store.write(split(bigger), max_bytes=100_000)
    with pytest.raises(BlobTooLarge):
        store.write([bigger], max_bytes=100_000)  # one oversized chunk is refused before it is written
    assert list(store.digests()) == [hashlib.sha256(data).hexdigest()]
    assert not store.exists(hashlib.sha256(bigger).hexdigest())
    assert files_under(store.tmp) == []


def test_stream_that_fails_midway_leaves_nothing(store: BlobStore) -> None:
    def broken():
        yield b"x" * 70_000
        yield b"y" * 70_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.write(broken(), max_bytes=10**6)
    with pytest.raises(TypeError, match="bytes"):
        store.write([b"ok", "text"], max_bytes=10**6)  # type: ignore[list-item]
    assert list(store.digests()) == [] and files_under(store.root) == [] and files_under(store.tmp) == []
    assert store.clean_tmp() == 0


# -- killed writers ----------------------------------------------------------------------------------------------
TOTAL = 600_000
# The child streams TOTAL bytes into a blob and pauses once exactly `stop_at` bytes are on disk (every yielded chunk
# has been written when the generator is resumed), until the parent says "go" or kills it.
WRITER = """
import random, sys
from pathlib import Path
from assetcenter.blobs import BlobStore

root, tmp, stop_at, total = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = random.Random(9).randbytes(total)

def chunks():
    sent = 0
    while True:
        if sent == stop_at:
            print("paused", flush=True)
            if sys.stdin.readline().strip() != "go":
                return
        if sent == total:
            return
        step = min(65536, total - sent, stop_at - sent if sent < stop_at else total)
        yield data[sent:sent + step]
        sent += step

print(BlobStore(root, tmp).write(chunks(), max_bytes=total).sha256, flush=True)
"""


def start_writer(store: BlobStore, stop_at: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), str(store.tmp), str(stop_at),
                              str(TOTAL)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                             cwd=ROOT)
    assert child.stdout.readline().strip() == "paused", "the writer did not reach its pause"
    return child


@pytest.mark.parametrize("offset", [0, 1, 65_536 + 123, TOTAL])  # TOTAL: every byte written, not yet committed
def test_sigkill_mid_write_never_exposes_a_blob(store: BlobStore, offset: int) -> None:
    child = start_writer(store, offset)
    try:
        temps = files_under(store.tmp)
        assert len(temps) == 1 and temps[0].stat().st_size == offset  # really mid-write at this offset
        assert store.clean_tmp() == 0 and files_under(store.tmp) == temps  # a live writer's file is spared
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    sha = hashlib.sha256(random.Random(9).randbytes(TOTAL)).hexdigest()
    assert not store.exists(sha) and list(store.digests()) == [] and files_under(store.root) == []
    assert [p.stat().st_size for p in files_under(store.tmp)] == [offset]  # only the temp file is left
    assert store.clean_tmp() == 1
    assert files_under(store.tmp) == [] and store.clean_tmp() == 0


def test_paused_writer_that_goes_on_commits_a_verified_blob(store: BlobStore) -> None:
    """The control for the kill test: the same child, allowed to finish, does publish its blob."""
    child = start_writer(store, 65_536 + 123)
    out, _ = child.communicate("go\n", timeout=60)
    assert child.returncode == 0
    sha = hashlib.sha256(random.Random(9).randbytes(TOTAL)).hexdigest()
    assert out.strip() == sha
    assert list(store.digests()) == [sha] and store.verify(sha, size=TOTAL) is None
    assert files_under(store.tmp) == []


def test_clean_tmp_leaves_foreign_files_alone(store: BlobStore) -> None:
    (store.tmp / "notes.txt").write_text("not ours")
    (store.tmp / "blob-0123.part").write_text("not our naming pattern")
    assert store.clean_tmp() == 0
    assert len(files_under(store.tmp)) == 2


# -- damage detection --------------------------------------------------------------------------------------------
def test_damage_is_detected_and_a_rewrite_repairs_it(store: BlobStore) -> None:
    data = payload(200_000, seed=6)
    sha = store.write(split(data), max_bytes=10**6).sha256
    path = store.path(sha)
    os.chmod(path, 0o600)
    with open(path, "r+b") as fh:  # flip one byte in the middle
        fh.seek(100_000)
        byte = fh.read(1)
        fh.seek(100_000)
        fh.write(bytes([byte[0] ^ 0x01]))
    assert store.verify(sha).startswith("hash mismatch")
    with pytest.raises(ArtifactIntegrityError, match="damaged"):
        b"".join(store.read_chunks(sha))
    assert b"".join(store.read_chunks(sha, verify=False)) != data

    with open(path, "r+b") as fh:
        fh.truncate(150_000)
    assert store.verify(sha, size=len(data)).startswith("size mismatch")
    assert store.verify(sha).startswith("hash mismatch")

    assert store.write(split(data), max_bytes=10**6).sha256 == sha  # publishing the bytes again heals the copy
    assert store.verify(sha, size=len(data)) is None and path.read_bytes() == data

    path.unlink()
    assert store.verify(sha) == "missing" and not store.exists(sha)
    with pytest.raises(BlobNotFound):
        store.open(sha)
    with pytest.raises(BlobNotFound):
        store.read_chunks(sha)


def test_a_symlink_in_place_of_a_blob_is_not_followed(store: BlobStore, tmp_path: Path) -> None:
    data = b"genuine"
    sha = store.write([data], max_bytes=100).sha256
    outside = tmp_path / "outside.bin"
    outside.write_bytes(data)  # same bytes, so only the link itself is wrong
    store.path(sha).unlink()
    store.path(sha).symlink_to(outside)
    assert store.verify(sha) == "not a regular file"
    assert not store.exists(sha) and list(store.digests()) == []
    with pytest.raises(ArtifactIntegrityError):
        store.open(sha)


# -- hostile digests ---------------------------------------------------------------------------------------------
BAD_DIGESTS = [
    "../../../../etc/passwd", "..", "", "/" + "a" * 63, "a" * 63, "a" * 65, "A" * 64, "g" * 64,
    "ab/cd/" + "0" * 58, "0" * 64 + "\n", "0" * 63 + "\x00", " " + "0" * 63, "０" * 64, None, 123, b"0" * 64,
    "..%2f" + "0" * 59,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=repr)
def test_malformed_digests_are_refused_everywhere(store: BlobStore, digest: object) -> None:
    for call in (store.path, store.open, store.read_chunks, store.verify, store.exists):
        with pytest.raises(InvalidDigest):
            call(digest)  # type: ignore[arg-type]
    if digest is not None:  # None means "no declared hash"
        with pytest.raises(InvalidDigest):
            store.write([b"x"], max_bytes=10, expected_sha256=digest)  # type: ignore[arg-type]
    assert files_under(store.root) == [] and files_under(store.tmp) == []


def test_stray_files_in_the_blob_folder_are_never_listed(store: BlobStore) -> None:
    sha = store.write([b"real"], max_bytes=10).sha256
    (store.root / sha[:2] / sha[2:4] / ("f" * 64)).write_bytes(b"wrong folder for this name")
    (store.root / sha[:2] / sha[2:4] / "README").write_text("x")
    (store.root / "zz").mkdir()
    assert list(store.digests()) == [sha]
