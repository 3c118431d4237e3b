"""Users, argon2 hashing and tokens on a real SQLite file and a real PostgreSQL server: secrets never stored (the
database's bytes are searched), expiry, revocation, one-time tokens, the init bootstrap, one failure path with the
same argon2 work for every cause, and no secret in any repr, message or log."""
from __future__ import annotations

import logging
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from postgres_server import new_database
from assetcenter import db
from assetcenter.auth import (
    ONE_TIME_TTL,
    AccountError,
    Accounts,
    AuthError,
    bootstrap_admin,
)
from assetcenter.rbac import Forbidden, Permission, allowed

PASSWORD = "Corr3ct-horse-battery-staple"
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}  # tests only: the default is argon2-cffi's recommended
FAST_HASHER = PasswordHasher(**FAST)


class CountingHasher(PasswordHasher):
    """A cheap real argon2id hasher that records which hashes were verified."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(**{**FAST, "time_cost": time_cost})
        self.verified: list[str] = []

    def verify(self, hash, password) -> bool:
        self.verified.append(hash)
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def pg_server(pg):
    """The session's PostgreSQL server (tests/conftest.py)."""
    return pg


class Store:
    """One fresh database: its engine, a clock, a hasher and the Accounts over them."""

    def __init__(self, engine, backend: str, folder: Path | None, server=None) -> None:
        self.engine, self.backend, self.folder, self.server = engine, backend, folder, server
        self.clock = Clock()
        self.hasher = CountingHasher()
        self.accounts = Accounts(engine, hasher=self.hasher, clock=self.clock)
        self.database = make_url(str(engine.url)).database

    def stored_bytes(self) -> bytes:
        """Every byte the database keeps on disk (SQLite file, WAL and shm; PostgreSQL's data folder)."""
        if self.backend == "sqlite":
            return b"".join(p.read_bytes() for p in sorted(self.folder.iterdir()) if p.is_file())
        with self.server.connect() as conn:
            conn.execute("CHECKPOINT")  # flush shared buffers and the WAL into the data files
        data = self.server.folder / "data"
        return b"".join(p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file())

    def all_text(self) -> str:
        """Every value of every table, as text."""
        out = []
        with self.engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                out += [repr(tuple(row)) for row in conn.execute(select(table))]
        return "\n".join(out)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        folder = tmp_path / "home"
        folder.mkdir()
        result = Store(db.make_engine(db.sqlite_url(folder)), "sqlite", folder)
    else:
        server = request.getfixturevalue("pg_server")
        result = Store(db.make_engine(new_database(server, "ac_")), "postgresql", None, server)
    yield result
    result.engine.dispose()


def make_user(store: Store, name: str = "ana", role: str = "analyst", project: str = "risk",
              password: str | None = PASSWORD) -> int:
    with store.engine.begin() as conn:
        user_id = store.accounts.create_user(conn, name, password)
        store.accounts.grant(conn, user_id, role, project)
    return user_id


def issue(store: Store, user_id: int, **kw) -> str:
    with store.engine.begin() as conn:
        return store.accounts.issue_token(conn, user_id, **kw)


def assert_refused(store: Store, token) -> str:
    with pytest.raises(AuthError) as err:
        store.accounts.authenticate(token)
    return str(err.value)


def test_token_round_trip_and_format(store):
    user_id = make_user(store)
    token = issue(store, user_id, label="laptop")
    token_id, secret = token.split(".")
    assert len(token_id) == 16 and int(token_id, 16) >= 0
    assert len(secret) == 43  # 32 random bytes, URL-safe base64
    who = store.accounts.authenticate(token)
    assert (who.user_id, who.name, who.roles) == (user_id, "ana", {"risk": frozenset({"analyst"})})
    assert allowed(who, Permission.ASSET_PUBLISH, "risk") and not allowed(who, Permission.ASSET_PUBLISH, "cards")
    assert store.accounts.authenticate(token) == who  # a normal token keeps working
    assert store.accounts.login("ana", PASSWORD) == who
    with store.engine.connect() as conn:
        [info] = store.accounts.list_tokens(conn, user_id)
    assert (info.id, info.label, info.one_time, info.expires_at, info.revoked_at) == (token_id, "laptop", False,
                                                                                      None, None)


def test_secrets_and_passwords_are_never_stored(store):
    init = bootstrap_admin(store.engine, FAST_HASHER)
    user_id = make_user(store, password=PASSWORD)
    tokens = [issue(store, user_id), issue(store, user_id, one_time=True), init]
    store.accounts.authenticate(tokens[1])  # marks it used: another write to the row
    with store.engine.begin() as conn:
        store.accounts.set_password(conn, user_id, PASSWORD + "-new")
    secrets_ = [t.split(".")[1] for t in tokens] + [PASSWORD, PASSWORD + "-new"]

    values, raw = store.all_text(), store.stored_bytes()
    assert "$argon2id$" in values and tokens[0].split(".")[0] in values  # the probes can find what is there
    assert b"$argon2id$" in raw
    for secret in secrets_:
        assert secret not in values
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw


def test_expired_tokens_fail(store):
    user_id = make_user(store)
    token = issue(store, user_id, expires_in=timedelta(hours=1))
    store.clock.now += timedelta(minutes=59)
    store.accounts.authenticate(token)
    store.clock.now += timedelta(minutes=1)  # exactly at expiry: no longer valid
    assert_refused(store, token)
    with store.engine.begin() as conn, pytest.raises(AccountError, match="positive"):
        store.accounts.issue_token(conn, user_id, expires_in=timedelta(0))


def test_revoked_tokens_fail(store):
    user_id, other = make_user(store), make_user(store, "otto")
    token, kept = issue(store, user_id), issue(store, user_id)
    token_id = token.split(".")[0]
    with store.engine.begin() as conn, pytest.raises(AccountError, match="No token"):
        store.accounts.revoke_token(conn, token_id, owner_id=other)  # not someone else's token
    store.accounts.authenticate(token)
    with store.engine.begin() as conn:
        store.accounts.revoke_token(conn, token_id, owner_id=user_id)
    assert_refused(store, token)
    store.accounts.authenticate(kept)  # only that token
    with store.engine.begin() as conn:
        first = store.accounts.list_tokens(conn, user_id)[0].revoked_at
        store.clock.now += timedelta(hours=1)
        store.accounts.revoke_token(conn, token_id)  # again: the first revocation time is kept
        assert store.accounts.list_tokens(conn, user_id)[0].revoked_at == first
        with pytest.raises(AccountError) as err:
            store.accounts.revoke_token(conn, kept)  # a whole token pasted as an id: refused, not echoed
    assert kept.split(".")[1] not in str(err.value)


def test_one_time_tokens_work_once(store):
    user_id = make_user(store)
    token = issue(store, user_id, one_time=True)
    store.accounts.authenticate(token)
    assert_refused(store, token)
    with store.engine.connect() as conn:
        [info] = store.accounts.list_tokens(conn, user_id)
    assert info.one_time and info.used_at is not None
    # without an explicit lifetime a one-time token expires after ONE_TIME_TTL
    unused = issue(store, user_id, one_time=True)
    store.clock.now += ONE_TIME_TTL
    assert_refused(store, unused)


def test_one_time_token_used_concurrently_lets_exactly_one_through(store):
    user_id = make_user(store)
    token = issue(store, user_id, one_time=True)
    results: list[str] = []

    def use() -> None:
        try:
            store.accounts.authenticate(token)
            results.append("ok")
        except AuthError:
            results.append("refused")

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "refused", "refused", "refused"]


def test_redeem_exchanges_a_one_time_token(store):
    user_id = make_user(store)
    once = issue(store, user_id, one_time=True)
    who, token = store.accounts.redeem(once, label="cli", expires_in=timedelta(days=30))
    assert who.user_id == user_id and store.accounts.authenticate(token).user_id == user_id
    assert_refused(store, once)
    with pytest.raises(AuthError):
        store.accounts.redeem(once)
    # a user without any role binding cannot issue tokens: the one-time token stays unused (one transaction)
    with store.engine.begin() as conn:
        nobody = store.accounts.create_user(conn, "nobody")
        unbound = store.accounts.issue_token(conn, nobody, one_time=True)
    with pytest.raises(Forbidden):
        store.accounts.redeem(unbound)
    with store.engine.connect() as conn:
        assert [t.used_at for t in store.accounts.list_tokens(conn, nobody)] == [None]


def test_bootstrap_admin_once(store):
    token = bootstrap_admin(store.engine, FAST_HASHER, store.clock)
    with pytest.raises(AccountError, match="already has users"):
        bootstrap_admin(store.engine, FAST_HASHER, store.clock)
    who = store.accounts.authenticate(token)
    assert who.name == "admin" and who.roles == {"*": frozenset({"admin"})}
    assert all(allowed(who, p, "any-project") for p in Permission)
    assert_refused(store, token)  # one-time
    with store.engine.connect() as conn:
        [info] = store.accounts.list_tokens(conn, who.user_id)
    assert info.one_time and datetime.fromisoformat(info.expires_at) == store.clock.now + timedelta(hours=24)
    with pytest.raises(AuthError):  # no default password
        store.accounts.login("admin", "")


def test_last_admin_cannot_be_removed(store):
    bootstrap_admin(store.engine, FAST_HASHER, store.clock)
    with store.engine.begin() as conn:
        admin = store.accounts.user_id(conn, "admin")
        with pytest.raises(AccountError, match="last enabled admin"):
            store.accounts.revoke_role(conn, admin, "admin")
        with pytest.raises(AccountError, match="last enabled admin"):
            store.accounts.set_disabled(conn, admin)
    second = make_user(store, "root2", "admin", "*")
    with store.engine.begin() as conn:
        store.accounts.revoke_role(conn, admin, "admin")
        with pytest.raises(AccountError, match="last enabled admin"):
            store.accounts.set_disabled(conn, second)


def test_disabled_users_cannot_authenticate(store):
    user_id = make_user(store)
    token = issue(store, user_id)
    with store.engine.begin() as conn:
        store.accounts.set_disabled(conn, user_id)
    assert_refused(store, token)
    with pytest.raises(AuthError):
        store.accounts.login("ana", PASSWORD)
    with store.engine.begin() as conn:
        store.accounts.set_disabled(conn, user_id, False)
    store.accounts.login("ana", PASSWORD)
    assert_refused(store, token)  # disabling revoked the tokens for good
    with store.engine.connect() as conn:
        assert all(t.revoked_at for t in store.accounts.list_tokens(conn, user_id))


def test_every_failure_looks_the_same_and_costs_one_argon2_check(store):
    """Unknown id, wrong secret, malformed, expired, revoked, used, disabled; unknown user, wrong or missing
    password: the same message, and each one verifies exactly one hash made with the live parameters."""
    user_id = make_user(store)
    make_user(store, "tokens-only", password=None)
    good = issue(store, user_id)
    with store.engine.connect() as conn:
        real_hash_params = conn.execute(text("SELECT secret_hash FROM tokens")).scalar_one().rsplit("$", 2)[0]
    expired = issue(store, user_id, expires_in=timedelta(seconds=1))
    revoked = issue(store, user_id)
    used = issue(store, user_id, one_time=True)
    store.accounts.authenticate(used)
    with store.engine.begin() as conn:
        store.accounts.revoke_token(conn, revoked.split(".")[0])
    store.clock.now += timedelta(seconds=5)
    good_id, good_secret = good.split(".")
    bad_tokens = [
        secrets.token_hex(8) + "." + good_secret,  # unknown id
        good_id + "." + secrets.token_urlsafe(32),  # wrong secret
        good_id, "", ".", good + ".x", good + "A", good_id.upper() + "." + good_secret, "x" * 10_000, None, 42,
        expired, revoked, used,
    ]
    messages = set()
    for token in bad_tokens:
        store.hasher.verified.clear()
        messages.add(assert_refused(store, token))
        assert len(store.hasher.verified) == 1, token
        assert store.hasher.verified[0].rsplit("$", 2)[0] == real_hash_params
    for name, password in [("ana", "wrong password!"), ("nobody", PASSWORD), ("tokens-only", PASSWORD),
                           ("ana", "x" * 100_000), ("x" * 1000, PASSWORD), (None, None)]:
        store.hasher.verified.clear()
        with pytest.raises(AuthError) as err:
            store.accounts.login(name, password)
        messages.add(str(err.value))
        assert len(store.hasher.verified) == 1 and store.hasher.verified[0].rsplit("$", 2)[0] == real_hash_params
    assert len(messages) == 1
    [message] = messages
    for word in ("unknown", "password is wrong", "expired token", "revoked token", "no such"):
        assert word not in message.lower()


def test_hashes_are_upgraded_when_parameters_rise(store):
    user_id = make_user(store)
    token = issue(store, user_id)
    stronger = Accounts(store.engine, hasher=CountingHasher(time_cost=2), clock=store.clock)
    stronger.authenticate(token)
    stronger.login("ana", PASSWORD)
    with store.engine.connect() as conn:
        token_hash = conn.execute(select(db.tokens.c.secret_hash)).scalar_one()
        password_hash = conn.execute(select(db.users.c.password_hash)).scalar_one()
    assert "t=2" in token_hash and "t=2" in password_hash
    stronger.authenticate(token)  # still valid after the upgrade
    stronger.login("ana", PASSWORD)


def test_default_parameters_are_argon2_cffi_recommended(tmp_path):
    """Only tests lower the cost, through the constructor; the default is argon2id with 64 MiB, t=3, p=4."""
    engine = db.make_engine(db.sqlite_url(tmp_path))
    token = bootstrap_admin(engine)
    with engine.begin() as conn:
        user_id = Accounts(engine).create_user(conn, "ana", PASSWORD)
    assert Accounts(engine).authenticate(token).name == "admin" and Accounts(engine).login("ana", PASSWORD)
    with engine.connect() as conn:
        stored = [conn.execute(select(db.tokens.c.secret_hash)).scalar_one(),
                  conn.execute(select(db.users.c.password_hash).where(db.users.c.id == user_id)).scalar_one()]
    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in stored), stored
    engine.dispose()


def test_account_input_is_validated(store):
    with store.engine.begin() as conn:
        for bad in ("", "../admin", "a b", "x" * 129, "-lead", None):
            with pytest.raises(AccountError, match="user name"):
                store.accounts.create_user(conn, bad)
        with pytest.raises(AccountError, match="password") as err:
            store.accounts.create_user(conn, "shorty", "short-pw")
        assert "short-pw" not in str(err.value)
        user_id = store.accounts.create_user(conn, "ana")
        with pytest.raises(AccountError, match="already exists"):
            store.accounts.create_user(conn, "ana", PASSWORD)
        with pytest.raises(AccountError, match="label"):
            store.accounts.issue_token(conn, user_id, label="x" * 256)
        with pytest.raises(AccountError, match="No user"):
            store.accounts.issue_token(conn, 424242)


def test_no_secret_in_repr_messages_or_logs(store, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # SQL statements and their parameters too
    accounts = Accounts(store.engine, hasher=PasswordHasher(**FAST), clock=store.clock)
    wrong = "Wr0ng-but-close-password"
    with store.engine.begin() as conn:
        user_id = accounts.create_user(conn, "ana", PASSWORD)
        accounts.grant(conn, user_id, "viewer", "risk")
        token = accounts.issue_token(conn, user_id, label="laptop")
        once = accounts.issue_token(conn, user_id, one_time=True)
        infos = accounts.list_tokens(conn, user_id)
    who = accounts.authenticate(token)
    accounts.login("ana", PASSWORD)
    _, redeemed = accounts.redeem(once)
    errors = []
    for attempt in (lambda: accounts.login("ana", wrong), lambda: accounts.authenticate(token + "x"),
                    lambda: accounts.authenticate(once)):
        with pytest.raises(AuthError) as err:
            attempt()
        errors.append(err.value)
    with store.engine.begin() as conn:
        accounts.revoke_token(conn, token.split(".")[0])
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # SQL and parameters were logged
    assert any(r.name == "assetcenter.auth" for r in caplog.records)
    shown = "\n".join([caplog.text, repr(accounts), str(accounts), repr(who), str(who), repr(infos),
                       *(repr(e) for e in errors), *(str(e) for e in errors),
                       *(repr(e.__cause__) + repr(e.__context__) for e in errors)])
    for secret in (token.split(".")[1], once.split(".")[1], redeemed.split(".")[1], PASSWORD, wrong):
        assert secret not in shown
    assert token.split(".")[0] in caplog.text  # token ids (not secret) are logged, so the check can see them
    if store.backend == "postgresql":
        assert store.server.password not in repr(accounts)
