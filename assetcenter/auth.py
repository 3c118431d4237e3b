"""Users, passwords and API tokens of the asset center: argon2 hashes only, expiring, revocable, one-time tokens.

Why it looks like this:
- A token is "<id>.<secret>": the 16-hex id finds the row, the secret (32 random bytes) is checked against its
  argon2id hash. Neither a token nor a password is ever stored, logged, or put in an exception or repr.
- Every failed authentication takes the same path and costs the same: an unknown user or token is checked against
  a dummy hash made with the same parameters, every condition (expired, revoked, used, disabled) is evaluated after
  the hash check, and callers get one generic message. Nothing tells a prober which part was wrong.
- Writes take the caller's connection, so the service can append the audit entry in the same transaction.
- There are no default credentials: `bootstrap_admin` creates the first admin once and returns a one-time token.
"""
from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from assetcenter.db import ALL_PROJECTS, ROLES, role_bindings, tokens, users
from assetcenter.rbac import Permission, Principal, require
from engine.errors import LedgerflowError
from engine.i18n import tr

log = logging.getLogger(__name__)

TOKEN_ID_HEX = 16
TOKEN_SECRET_BYTES = 32
ONE_TIME_TTL = timedelta(hours=24)  # a one-time token (the init token) never lives longer unless asked
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # bounds the work an anonymous login can cause
MAX_LABEL_CHARS = 255
_TOKEN_ID = re.compile(rf"[0-9a-f]{{{TOKEN_ID_HEX}}}")
# token_urlsafe(32) gives 43 characters of the URL-safe base64 alphabet (no ".", so the split is unambiguous).
_TOKEN = re.compile(rf"([0-9a-f]{{{TOKEN_ID_HEX}}})\.([A-Za-z0-9_-]{{43}})")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class AuthError(LedgerflowError):
    """Authentication failed. One message for every cause, so a caller learns nothing about which part was wrong."""

    def __init__(self) -> None:
        super().__init__(tr("Authentication failed: the credentials are not valid, have expired or were revoked."))


class AccountError(LedgerflowError):
    """A refused account change: bad user name, weak password, unknown user, role or token, a second init."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its secret or hash."""

    id: str
    user_id: int
    label: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    one_time: bool
    used_at: str | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")  # 32 characters, sorts as time


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    """Users, role bindings and tokens in the asset center's database.

    `hasher` defaults to argon2-cffi's recommended argon2id parameters; tests pass cheaper ones. `clock` returns the
    current aware datetime (tests move it to check expiry without sleeping).
    """

    def __init__(self, engine: Engine, hasher: PasswordHasher | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._hasher = hasher or PasswordHasher()
        self._clock = clock or _utc_now
        # Made now, not on the first failed attempt, so that attempt costs no more than any other.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(TOKEN_SECRET_BYTES))

    def __repr__(self) -> str:
        return f"Accounts({self._engine.url.render_as_string(hide_password=True)!r})"

    # --- hashing: unknown users and tokens are checked against _dummy_hash, made with the same parameters ---
    def _verify(self, stored: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return False

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return an aware datetime")
        return now

    # --- users and roles -----------------------------------------------------------------------------------
    def create_user(self, conn: Connection, name: str, password: str | None = None) -> int:
        """Create a user (password optional: without one the user signs in with tokens only); returns the id."""
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
            raise AccountError(tr("A user name is 1 to 128 letters, digits, '.', '_', '@' or '-', starting with a "
                                  "letter or digit."))
        password_hash = self._hash_password(password) if password is not None else None
        if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
            raise AccountError(tr("A user named {name} already exists.", name=name))
        try:
            result = conn.execute(users.insert().values(name=name, password_hash=password_hash,
                                                        created_at=_iso(self._now()), disabled=False))
        except IntegrityError:  # a concurrent create won the race; its message would carry the hash
            raise AccountError(tr("A user named {name} already exists.", name=name)) from None
        user_id = int(result.inserted_primary_key[0])
        log.info("asset center user %s created (id %d)", name, user_id)
        return user_id

    def _hash_password(self, password: str) -> str:
        if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
            raise AccountError(tr("A password needs {low} to {high} characters.", low=MIN_PASSWORD_CHARS,
                                  high=MAX_PASSWORD_CHARS))
        return self._hasher.hash(password)

    def set_password(self, conn: Connection, user_id: int, password: str) -> None:
        self._user_row(conn, user_id)
        conn.execute(update(users).where(users.c.id == user_id).values(password_hash=self._hash_password(password)))
        log.info("asset center password changed for user id %d", user_id)

    def set_disabled(self, conn: Connection, user_id: int, disabled: bool = True) -> None:
        """Disable (or enable) a user. Disabling also revokes every live token: re-enabling needs new tokens."""
        self._user_row(conn, user_id)
        if disabled:
            self._refuse_last_admin(conn, user_id)
            conn.execute(update(tokens).where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
                         .values(revoked_at=_iso(self._now())))
        conn.execute(update(users).where(users.c.id == user_id).values(disabled=bool(disabled)))
        log.info("asset center user id %d %s", user_id, "disabled" if disabled else "enabled")

    def grant(self, conn: Connection, user_id: int, role: str, project: str = ALL_PROJECTS) -> None:
        """Bind `role` to the user on `project` ("*": every project). Granting an existing binding is a no-op."""
        self._check_binding(role, project)
        self._user_row(conn, user_id)
        exists = conn.execute(select(role_bindings.c.role).where(
            role_bindings.c.user_id == user_id, role_bindings.c.project == project,
            role_bindings.c.role == role)).first()
        if exists is None:
            conn.execute(role_bindings.insert().values(user_id=user_id, project=project, role=role))
            log.info("asset center role %s on %s granted to user id %d", role, project, user_id)

    def revoke_role(self, conn: Connection, user_id: int, role: str, project: str = ALL_PROJECTS) -> None:
        """Remove one binding (absent: no-op). The last enabled admin on "*" cannot lose that role."""
        self._check_binding(role, project)
        if role == "admin" and project == ALL_PROJECTS:
            self._refuse_last_admin(conn, user_id)
        conn.execute(delete(role_bindings).where(role_bindings.c.user_id == user_id,
                                                 role_bindings.c.project == project, role_bindings.c.role == role))
        log.info("asset center role %s on %s revoked from user id %d", role, project, user_id)

    @staticmethod
    def _check_binding(role: str, project: str) -> None:
        if role not in ROLES:
            raise AccountError(tr("Unknown role {role}; the roles are {roles}.", role=str(role)[:64],
                                  roles=", ".join(ROLES)))
        if project != ALL_PROJECTS and not (isinstance(project, str) and _PROJECT.fullmatch(project)):
            raise AccountError(tr("A project is '*' or 1 to 128 letters, digits, '.', '_' or '-', starting with "
                                  "a letter or digit."))

    def _refuse_last_admin(self, conn: Connection, user_id: int) -> None:
        """Keep at least one enabled global admin: otherwise nobody could manage users again."""
        others = conn.execute(
            select(func.count()).select_from(role_bindings.join(users, users.c.id == role_bindings.c.user_id))
            .where(role_bindings.c.role == "admin", role_bindings.c.project == ALL_PROJECTS,
                   users.c.disabled.is_(False), users.c.id != user_id)).scalar_one()
        is_admin = conn.execute(select(role_bindings.c.role).where(
            role_bindings.c.user_id == user_id, role_bindings.c.role == "admin",
            role_bindings.c.project == ALL_PROJECTS)).first() is not None
        if is_admin and others == 0:
            raise AccountError(tr("This is the last enabled admin; grant admin on '*' to another user first."))

    def _user_row(self, conn: Connection, user_id: int):
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
        if row is None:
            raise AccountError(tr("No user with id {id}.", id=user_id))
        return row

    def user_id(self, conn: Connection, name: str) -> int:
        row = conn.execute(select(users.c.id).where(users.c.name == name)).first()
        if row is None:
            raise AccountError(tr("No user named {name}.", name=str(name)[:128]))
        return int(row.id)

    def principal(self, user_id: int) -> Principal:
        """The user's identity and role bindings, read now (a change of roles applies to the next request)."""
        with self._engine.connect() as conn:
            return self._principal(conn, user_id)

    def _principal(self, conn: Connection, user_id: int) -> Principal:
        user = self._user_row(conn, user_id)
        roles: dict[str, set[str]] = {}
        for row in conn.execute(select(role_bindings.c.project, role_bindings.c.role)
                                .where(role_bindings.c.user_id == user_id)):
            roles.setdefault(row.project, set()).add(row.role)
        return Principal(int(user.id), user.name, {p: frozenset(r) for p, r in roles.items()})

    # --- tokens --------------------------------------------------------------------------------------------
    def issue_token(self, conn: Connection, user_id: int, label: str = "", expires_in: timedelta | None = None,
                    one_time: bool = False) -> str:
        """Create a token and return "<id>.<secret>": the only time the secret exists outside its holder.

        A one-time token works for one authentication (e.g. to redeem it for a normal token) and expires after
        ONE_TIME_TTL unless `expires_in` says otherwise.
        """
        user = self._user_row(conn, user_id)
        if user.disabled:
            raise AccountError(tr("User {name} is disabled.", name=user.name))
        if expires_in is None and one_time:
            expires_in = ONE_TIME_TTL
        if expires_in is not None and expires_in <= timedelta(0):
            raise AccountError(tr("A token's lifetime must be positive."))
        label = str(label)
        if len(label) > MAX_LABEL_CHARS:
            raise AccountError(tr("A token label has at most {n} characters.", n=MAX_LABEL_CHARS))
        now = self._now()
        token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
        secret = secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        conn.execute(tokens.insert().values(
            id=token_id, user_id=user_id, secret_hash=self._hasher.hash(secret), label=label, created_at=_iso(now),
            expires_at=_iso(now + expires_in) if expires_in is not None else None, revoked_at=None,
            one_time=bool(one_time), used_at=None))
        log.info("asset center token %s issued for user id %d%s", token_id, user_id, " (one-time)" if one_time else "")
        return f"{token_id}.{secret}"

    def revoke_token(self, conn: Connection, token_id: str, owner_id: int | None = None) -> None:
        """Revoke a token by id; with `owner_id`, only that user's (self-service). Revoking twice keeps the first time."""
        if not isinstance(token_id, str) or not _TOKEN_ID.fullmatch(token_id):
            # never echo the value: a user may paste a whole token where its id belongs
            raise AccountError(tr("A token id is {n} hexadecimal characters (the part before the dot).",
                                  n=TOKEN_ID_HEX))
        where = [tokens.c.id == token_id]
        if owner_id is not None:
            where.append(tokens.c.user_id == owner_id)
        if conn.execute(select(tokens.c.id).where(*where)).first() is None:
            raise AccountError(tr("No token {id}.", id=token_id))
        conn.execute(update(tokens).where(*where, tokens.c.revoked_at.is_(None)).values(revoked_at=_iso(self._now())))
        log.info("asset center token %s revoked", token_id)

    def list_tokens(self, conn: Connection, user_id: int) -> list[TokenInfo]:
        rows = conn.execute(select(tokens).where(tokens.c.user_id == user_id).order_by(tokens.c.created_at))
        return [TokenInfo(r.id, int(r.user_id), r.label, r.created_at, r.expires_at, r.revoked_at, bool(r.one_time),
                          r.used_at) for r in rows]

    # --- authentication ------------------------------------------------------------------------------------
    def authenticate(self, token: str) -> Principal:
        """The principal of a valid token; AuthError (generic) otherwise. Consumes a one-time token."""
        with self._engine.begin() as conn:
            return self._authenticate(conn, token)

    def redeem(self, token: str, label: str = "", expires_in: timedelta | None = None) -> tuple[Principal, str]:
        """Exchange a valid token (typically the one-time init token) for a new normal token, in one transaction:
        the one-time token is consumed only if the new token is created."""
        with self._engine.begin() as conn:
            principal = self._authenticate(conn, token)
            require(principal, Permission.TOKEN_SELF, ALL_PROJECTS)
            return principal, self.issue_token(conn, principal.user_id, label=label, expires_in=expires_in)

    def _authenticate(self, conn: Connection, token: str) -> Principal:
        now = self._now()
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        token_id, secret = (match.group(1), match.group(2)) if match else ("", "")
        # The same query and the same argon2 work whether or not the token is well formed or exists.
        row = conn.execute(select(tokens, users.c.disabled).join(users, users.c.id == tokens.c.user_id)
                           .where(tokens.c.id == token_id)).first()
        ok = self._verify(row.secret_hash if row is not None else self._dummy_hash, secret)
        ok = (ok and row is not None and not row.disabled and row.revoked_at is None
              and (row.expires_at is None or datetime.fromisoformat(row.expires_at) > now)
              and not (row.one_time and row.used_at is not None))
        if ok and row.one_time:  # the conditional update lets exactly one of two concurrent uses through
            used = conn.execute(update(tokens).where(tokens.c.id == token_id, tokens.c.used_at.is_(None))
                                .values(used_at=_iso(now)))
            ok = used.rowcount == 1
        if not ok:
            log.info("asset center token authentication failed")
            raise AuthError()
        if self._hasher.check_needs_rehash(row.secret_hash):  # parameters were raised since it was issued
            conn.execute(update(tokens).where(tokens.c.id == token_id)
                         .values(secret_hash=self._hasher.hash(secret)))
        return self._principal(conn, int(row.user_id))

    def login(self, name: str, password: str) -> Principal:
        """The principal for a user name and password; AuthError (generic) otherwise."""
        with self._engine.begin() as conn:
            name_ok = isinstance(name, str) and len(name) <= 128
            password_ok = isinstance(password, str) and len(password) <= MAX_PASSWORD_CHARS
            row = conn.execute(select(users).where(users.c.name == (name if name_ok else ""))).first()
            stored = row.password_hash if row is not None else None
            ok = self._verify(stored or self._dummy_hash, password if password_ok else "")
            ok = ok and password_ok and stored is not None and not row.disabled
            if not ok:
                log.info("asset center password login failed")
                raise AuthError()
            if self._hasher.check_needs_rehash(stored):
                conn.execute(update(users).where(users.c.id == row.id)
                             .values(password_hash=self._hasher.hash(password)))
            return self._principal(conn, int(row.id))


def bootstrap_admin(engine: Engine, hasher: PasswordHasher | None = None,
                    clock: Callable[[], datetime] | None = None) -> str:
    """Create the first user, "admin" with the admin role on every project, and return its one-time token
    (24 h). Refused once any user exists: there are no default credentials and init cannot be replayed."""
    accounts = Accounts(engine, hasher, clock)
    refused = tr("The asset center already has users; the first admin is created only once. Ask an admin for "
                 "an account or a token.")
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).limit(1)).first() is not None:
            raise AccountError(refused)
        try:
            user_id = accounts.create_user(conn, "admin")
        except AccountError:  # a concurrent init created it first
            raise AccountError(refused) from None
        accounts.grant(conn, user_id, "admin", ALL_PROJECTS)
        return accounts.issue_token(conn, user_id, label="init", expires_in=ONE_TIME_TTL, one_time=True)
