"""The audit trail on SQLite and on a real PostgreSQL server: an intact chain verifies, and every kind of tampering
(a row edited, deleted or swapped with raw SQL, the whole chain rewritten consistently with recomputed hashes, the tail
truncated, a checkpoint line forged or edited) is detected, with the first problem naming the first broken entry.
Concurrent appenders, threads and processes, keep one valid chain."""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, text

from assetcenter import audit as audit_module
from assetcenter.audit import AuditLog
from assetcenter.db import GENESIS, make_engine
from assetcenter.home import AssetHome

ROOT = Path(audit_module.__file__).resolve().parents[1]  # the repository, for child processes
FIELDS = ("seq", "at", "actor", "action", "asset", "version", "remote", "before_hash", "after_hash", "details_json")
N = 8  # entries in a tampering test's chain, with a checkpoint after each


# -- a signer independent of assetcenter.signatures ----------------------------------------------------------------
class LocalSigner:
    """A minimal Ed25519 signer satisfying the Signer protocol (algorithm, key_id, sign, public_key)."""

    algorithm = "ed25519"

    def __init__(self, private: Ed25519PrivateKey | None = None) -> None:
        self._private = private or Ed25519PrivateKey.generate()
        self._raw = self._private.public_key().public_bytes_raw()
        self.key_id = hashlib.sha256(self._raw).hexdigest()[:16]

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def public_key(self) -> dict:
        return {"alg": "ed25519", "key_id": self.key_id, "public": base64.b64encode(self._raw).decode()}

    def private_raw(self) -> bytes:
        return self._private.private_bytes_raw()


def local_verify(public: dict, data: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public["public"])).verify(signature, data)
        return True
    except InvalidSignature:
        return False


def checkpoint_bytes(line: dict) -> bytes:
    """What a checkpoint signature covers, written out here from the documented format."""
    doc = {"kind": "ledgerflow-audit-checkpoint", **{k: line[k] for k in ("seq", "hash", "at", "alg", "key_id")}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def reference_hash(prev_hash: str, row: dict) -> str:
    """hash = SHA-256(prev_hash + canonical JSON of the entry's other fields), as db.py documents it."""
    body = {name: row[name] for name in FIELDS}
    return hashlib.sha256((prev_hash + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                                  ensure_ascii=False)).encode()).hexdigest()


# -- backends (the PostgreSQL server and fresh databases come from tests/assetcenter/conftest.py) ------------------
@dataclass
class Backend:
    name: str
    url: str
    engine: Engine
    checkpoints: Path
    signer: LocalSigner

    def log(self) -> AuditLog:
        return AuditLog(self.engine, self.checkpoints, self.signer)

    def keys(self) -> dict[str, dict]:
        return {self.signer.key_id: self.signer.public_key()}

    def sql(self, statement: str, **params: object) -> list:
        with self.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [dict(r._mapping) for r in result] if result.returns_rows else []

    def rows(self) -> list[dict]:
        return self.sql("SELECT * FROM audit ORDER BY seq")

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.checkpoints.read_text().splitlines() if line.strip()]

    def write_lines(self, lines: list[dict]) -> None:
        self.checkpoints.write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        home = AssetHome(tmp_path / "home")
        url, checkpoints = home.db_url(), home.checkpoints
    else:
        url = request.getfixturevalue("fresh_pg_url")
        checkpoints = tmp_path / "audit" / "checkpoints.jsonl"
    engine = make_engine(url)
    yield Backend(request.param, url, engine, checkpoints, LocalSigner())
    engine.dispose()


def append(log: AuditLog, i: int, **extra: object) -> None:
    with log.engine.begin() as conn:
        log.append(conn, actor=f"user{i % 3}", action="publish", asset=f"risk/model-{i}", version=i,
                   remote="127.0.0.1", before_hash=None if i == 1 else hashlib.sha256(b"%d" % (i - 1)).hexdigest(),
                   after_hash=hashlib.sha256(b"%d" % i).hexdigest(), details={"n": i, "comment": "审批 ok"},
                   **extra)
    log.checkpoint()


def chain(backend: Backend, n: int = N) -> AuditLog:
    log = backend.log()
    for i in range(1, n + 1):
        append(log, i)
    return log


# -- intact ------------------------------------------------------------------------------------------------------
def test_append_and_verify_an_intact_chain(backend: Backend) -> None:
    log = chain(backend, 5)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[2].details == {"n": 3, "comment": "审批 ok"} and entries[2].asset == "risk/model-3"
    assert entries[2].version == 3 and entries[2].remote == "127.0.0.1" and entries[2].actor == "user0"
    assert [e.seq for e in log.entries(after_seq=2, limit=2)] == [3, 4]
    prev = GENESIS
    for row in backend.rows():  # the stored hashes follow the documented formula, computed independently here
        assert row["prev_hash"] == prev and row["hash"] == reference_hash(prev, row)
        prev = row["hash"]
    assert log.head() == (5, prev)

    lines = backend.lines()
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line["hash"] for line in lines] == [e.hash for e in entries]
    for line in lines:
        assert line["key_id"] == backend.signer.key_id and line["alg"] == "ed25519"
        assert local_verify(backend.signer.public_key(), checkpoint_bytes(line), base64.b64decode(line["signature"]))
    log.checkpoint()  # nothing new: no duplicate line
    assert len(backend.lines()) == 5

    assert log.verify(backend.keys()) == []
    # A fresh engine and log object (a restarted server) agree; checkpoint lines in any order are fine too.
    backend.write_lines(list(reversed(lines)))
    other = make_engine(backend.url)
    try:
        assert AuditLog(other, backend.checkpoints, LocalSigner()).verify(backend.keys()) == []
    finally:
        other.dispose()


def test_an_empty_log_verifies_and_a_rolled_back_append_leaves_no_trace(backend: Backend) -> None:
    log = backend.log()
    log.checkpoint()
    assert log.verify(backend.keys()) == [] and backend.checkpoints.read_text() == ""  # nothing to sign yet
    with pytest.raises(RuntimeError), backend.engine.begin() as conn:
        log.append(conn, actor="alice", action="publish", asset="a")
        raise RuntimeError("the publish failed after the audit append")
    assert log.entries() == [] and log.head() == (0, GENESIS)
    append(log, 1)
    assert [e.seq for e in log.entries()] == [1] and log.entries()[0].prev_hash == GENESIS
    assert log.verify(backend.keys()) == []


@pytest.mark.parametrize("details", [{"password": "hunter2"}, {"nested": {"API_Key": "k"}},
                                     {"items": [{"token": "abc.def"}]}, {"client_secret": "s"}])
def test_secrets_are_refused_in_details(backend: Backend, details: dict) -> None:
    log = backend.log()
    with pytest.raises(ValueError, match="secrets"), backend.engine.begin() as conn:
        log.append(conn, actor="alice", action="token.issue", details=details)
    assert log.entries() == [] and log.head() == (0, GENESIS)


def test_field_limits_are_the_same_on_both_backends(backend: Backend) -> None:
    log = backend.log()
    for bad in ({"actor": "a" * 129}, {"action": ""}, {"remote": "r" * 129}, {"version": "3"}):
        with pytest.raises(ValueError), backend.engine.begin() as conn:
            log.append(conn, **{"actor": "alice", "action": "publish", **bad})
    assert log.entries() == []


def test_checkpoints_signed_by_the_signing_module(tmp_path: Path) -> None:
    """The real signers of assetcenter.signatures (Ed25519 and the SM2 option) drive the same checkpoints."""
    signatures = pytest.importorskip("assetcenter.signatures")
    home = AssetHome(tmp_path / "home")
    engine = make_engine(home.db_url())
    try:
        for alg in ("ed25519", "sm2"):
            signer = signatures.load_signer(home.keys, alg)
            log = AuditLog(engine, home.checkpoints, signer)
            with engine.begin() as conn:
                log.append(conn, actor="alice", action=f"publish.{alg}")
            log.checkpoint()
        keys = signatures.public_keys(home.keys)
        log = AuditLog(engine, home.checkpoints, signer)
        assert {line["alg"] for line in map(json.loads, home.checkpoints.read_text().splitlines())} == {"ed25519",
                                                                                                        "sm2"}
        assert log.verify(keys) == []
        lines = home.checkpoints.read_text().splitlines()
        edited = json.loads(lines[1])
        edited["at"] = "2000-01-01T00:00:00.000000+00:00"
        home.checkpoints.write_text(lines[0] + "\n" + json.dumps(edited) + "\n")
        problems = log.verify(keys)
        assert len(problems) == 1 and problems[0].startswith("Audit entry 2:") and "invalid signature" in problems[0]
    finally:
        engine.dispose()


# -- tampering ---------------------------------------------------------------------------------------------------
def swap_contents(b: Backend, i: int, j: int) -> None:
    rows = {r["seq"]: r for r in b.rows()}
    for target, source in ((i, rows[j]), (j, rows[i])):
        values = {k: v for k, v in source.items() if k != "seq"}
        b.sql("UPDATE audit SET at=:at, actor=:actor, action=:action, asset=:asset, version=:version, "
              "remote=:remote, before_hash=:before_hash, after_hash=:after_hash, details_json=:details_json, "
              "prev_hash=:prev_hash, hash=:hash WHERE seq=:seq", seq=target, **values)


def rewrite_from(b: Backend, start: int) -> None:
    """What a database superuser can do: change an entry and recompute every later hash and the head."""
    b.sql("UPDATE audit SET actor='mallory', details_json='{}' WHERE seq=:s", s=start)
    prev = GENESIS
    for row in b.rows():
        if row["seq"] >= start:
            new = reference_hash(prev, row)
            b.sql("UPDATE audit SET prev_hash=:p, hash=:h WHERE seq=:s", p=prev, h=new, s=row["seq"])
            row["hash"] = new
        prev = row["hash"]
    b.sql("UPDATE audit_head SET seq=(SELECT MAX(seq) FROM audit), hash=:h WHERE id=1", h=prev)


def truncate_after(b: Backend, last: int, fix_head: bool) -> None:
    b.sql("DELETE FROM audit WHERE seq > :s", s=last)
    if fix_head:
        b.sql("UPDATE audit_head SET seq=:s, hash=(SELECT hash FROM audit WHERE seq=:s) WHERE id=1", s=last)


def edit_checkpoint(b: Backend, seq: int) -> None:
    lines = b.lines()
    for line in lines:
        if line["seq"] == seq:
            line["hash"] = hashlib.sha256(b"forged").hexdigest()
    b.write_lines(lines)


def resign_with_own_key_under_trusted_id(b: Backend) -> None:
    """After rewriting the chain, the attacker re-signs the checkpoints, but only has their own key."""
    rewrite_from(b, 4)
    hashes = {r["seq"]: r["hash"] for r in b.rows()}
    attacker = LocalSigner()
    lines = b.lines()
    for line in lines:
        if line["seq"] >= 4:
            line["hash"] = hashes[line["seq"]]
            line["signature"] = base64.b64encode(attacker.sign(checkpoint_bytes(line))).decode()
    b.write_lines(lines)


def append_line_signed_by_unknown_key(b: Backend) -> None:
    attacker = LocalSigner()
    line = {"seq": N, "hash": hashlib.sha256(b"x").hexdigest(), "at": "2030-01-01T00:00:00.000000+00:00",
            "alg": "ed25519", "key_id": attacker.key_id}
    line["signature"] = base64.b64encode(attacker.sign(checkpoint_bytes(line))).decode()
    b.write_lines([*b.lines(), line])


TAMPERS = {
    # name: (tamper, the first broken seq, a phrase of the first problem)
    "edit_actor": (lambda b: b.sql("UPDATE audit SET actor='mallory' WHERE seq=4"), 4, "edited"),
    "edit_details": (lambda b: b.sql("UPDATE audit SET details_json=:d WHERE seq=6", d='{"n":99}'), 6, "edited"),
    "edit_version": (lambda b: b.sql("UPDATE audit SET version=version+100 WHERE seq=2"), 2, "edited"),
    "edit_stored_hash": (lambda b: b.sql("UPDATE audit SET hash=:h WHERE seq=3", h="f" * 64), 3, "edited"),
    "delete_middle_row": (lambda b: b.sql("DELETE FROM audit WHERE seq=5"), 5, "missing"),
    "delete_first_row": (lambda b: b.sql("DELETE FROM audit WHERE seq=1"), 1, "missing"),
    "swap_two_rows": (lambda b: swap_contents(b, 3, 6), 3, "link to the previous entry"),
    "rewrite_whole_chain": (lambda b: rewrite_from(b, 4), 4, "differs from the signed checkpoint"),
    "rewrite_and_resign": (resign_with_own_key_under_trusted_id, 4, "invalid signature"),
    "truncate_tail_and_head": (lambda b: truncate_after(b, 6, fix_head=True), 7, "truncated"),
    "truncate_tail_only": (lambda b: truncate_after(b, 6, fix_head=False), 7, "head records entry 8"),
    "head_moved": (lambda b: b.sql("UPDATE audit_head SET seq=9 WHERE id=1"), 9, "head records entry 9"),
    "head_moved_back": (lambda b: b.sql("UPDATE audit_head SET seq=5, hash=(SELECT hash FROM audit WHERE seq=5) "
                                        "WHERE id=1"), 6, "beyond the chain's head"),
    "row_before_the_first": (lambda b: b.sql("INSERT INTO audit SELECT 0, at, actor, action, asset, version, remote, "
                                             "before_hash, after_hash, details_json, prev_hash, hash FROM audit "
                                             "WHERE seq=1"), 0, "out of place"),
    "edit_checkpoint_line": (lambda b: edit_checkpoint(b, 5), 5, "invalid signature"),
    "checkpoint_by_unknown_key": (append_line_signed_by_unknown_key, N, "unknown key"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampering_is_detected_at_the_first_broken_entry(backend: Backend, tamper: str) -> None:
    log = chain(backend)
    assert log.verify(backend.keys()) == []  # untouched: never a false alarm
    action, first, phrase = TAMPERS[tamper]
    action(backend)
    problems = log.problems(backend.keys())
    assert problems, f"{tamper} went undetected"
    assert problems[0].seq == first, problems
    assert problems[0].message.startswith(f"Audit entry {first}:") and phrase in problems[0].message, problems
    assert log.verify(backend.keys()) == [p.message for p in problems]


def test_a_consistent_rewrite_fools_the_chain_but_not_the_checkpoints(backend: Backend) -> None:
    log = chain(backend)
    rewrite_from(backend, 4)
    problems = log.verify(backend.keys())
    assert len(problems) == N - 3  # entries 4..8, each against its checkpoint; the chain itself is consistent
    assert all("signed checkpoint" in p for p in problems)
    assert "after entry 3" in problems[0]  # the last entry still matching a checkpoint


def test_a_torn_checkpoint_line_is_reported_and_later_lines_stay_readable(backend: Backend) -> None:
    log = chain(backend, 2)
    with open(backend.checkpoints, "a") as fh:
        fh.write('{"seq": 3, "hash": "ab')  # a crash in the middle of a write
    append(log, 3)
    problems = log.problems(backend.keys())
    assert [p.seq for p in problems] == [None] and "line 3 is malformed" in problems[0].message
    assert [line.get("seq") for line in map(_maybe_json, backend.checkpoints.read_text().splitlines())] == [
        1, 2, None, 3]


def _maybe_json(text_line: str) -> dict:
    try:
        return json.loads(text_line)
    except ValueError:
        return {}


# -- concurrency -------------------------------------------------------------------------------------------------
def assert_one_valid_chain(backend: Backend, log: AuditLog, expected: set[tuple[int, int]]) -> None:
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, len(expected) + 1))
    assert {(e.details["worker"], e.details["n"]) for e in entries} == expected
    assert log.verify(backend.keys()) == []
    seqs = [line["seq"] for line in backend.lines()]
    assert seqs == sorted(set(seqs)) and seqs[-1] == len(expected)  # written in order, the last covers the head


def test_threads_appending_concurrently_keep_one_chain(backend: Backend) -> None:
    log = backend.log()
    workers, per_worker = 4, 12
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            barrier.wait()
            for n in range(per_worker):
                with backend.engine.begin() as conn:
                    log.append(conn, actor=f"worker{w}", action="publish", details={"worker": w, "n": n})
                log.checkpoint()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    done = threading.Event()
    reports: list[list[str]] = []

    def verify_meanwhile() -> None:  # verify runs while others append: never a false alarm
        while not done.is_set():
            reports.append(log.verify(backend.keys()))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    checker = threading.Thread(target=verify_meanwhile)
    for t in [*threads, checker]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    checker.join(timeout=120)
    assert not errors, errors
    assert reports and all(report == [] for report in reports), [r for r in reports if r][:1]
    assert_one_valid_chain(backend, log, {(w, n) for w in range(workers) for n in range(per_worker)})


APPENDER = """
import base64, hashlib, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from assetcenter.audit import AuditLog
from assetcenter.db import make_engine

class Signer:
    algorithm = "ed25519"
    def __init__(self, raw):
        self._key = Ed25519PrivateKey.from_private_bytes(raw)
        self.key_id = hashlib.sha256(self._key.public_key().public_bytes_raw()).hexdigest()[:16]
    def sign(self, data):
        return self._key.sign(data)
    def public_key(self):
        raise NotImplementedError

worker, count = int(sys.argv[1]), int(sys.argv[2])
engine = make_engine(sys.stdin.readline().strip())
log = AuditLog(engine, Path(sys.argv[3]), Signer(Path(sys.argv[4]).read_bytes()))
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
for n in range(count):
    with engine.begin() as conn:
        log.append(conn, actor=f"process{worker}", action="publish", details={"worker": worker, "n": n})
    log.checkpoint()
engine.dispose()
print("done", flush=True)
"""


def test_two_processes_appending_concurrently_keep_one_chain(backend: Backend, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(backend.signer.private_raw())
    os.chmod(key_file, 0o600)
    per_process = 20
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", APPENDER, str(w), str(per_process), str(backend.checkpoints),
                                  str(key_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                 cwd=ROOT) for w in range(2)]
    try:
        for child in children:  # the URL (with the password) goes through stdin, not the command line
            child.stdin.write(backend.url + "\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # start both at once
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, _ = child.communicate(timeout=120)
            assert child.returncode == 0 and out.strip() == "done"
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert_one_valid_chain(backend, backend.log(), {(w, n) for w in range(2) for n in range(per_process)})
