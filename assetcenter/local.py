"""The embedded asset center: zero-setup use from the CLI and the app, on one machine's folder.

Who is acting? The embedded store is a folder in the user's data directory, so access to that folder is the trust
boundary: with no users yet, the operating-system user becomes the first admin (no token to print or keep). Once
users exist (for example after `ledgerflow assetcenter init`), LEDGERFLOW_TOKEN authenticates when set, else the
operating-system user acts as the asset center user of the same name, else the caller is refused.

`EmbeddedAssets` gives the embedded store the same methods and JSON shapes as `assetcenter.client.AssetClient`, so
the CLI and the desktop have one code path for both deployments. It only delegates: every rule stays in
assetcenter/service.py.
"""
from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from sqlalchemy import select

from assetcenter import db
from assetcenter.auth import AccountError
from assetcenter.client import CHUNK, split_ref
from assetcenter.home import AssetHome, default_home
from assetcenter.rbac import Principal
from assetcenter.service import AssetCenter, Query
from engine.errors import LedgerflowError
from engine.i18n import tr

TOKEN_ENV = "LEDGERFLOW_TOKEN"
_NAME_FIRST = re.compile(r"^[^A-Za-z0-9]+")
_NAME_REST = re.compile(r"[^A-Za-z0-9._@-]+")


def os_user_name() -> str:
    """The operating-system user, as a valid asset center user name ("DOMAIN\\Jane Doe" -> "DOMAIN_Jane_Doe")."""
    try:
        raw = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (a container with an unnamed uid)
        raw = f"uid{os.getuid()}" if hasattr(os, "getuid") else "user"
    name = _NAME_FIRST.sub("", _NAME_REST.sub("_", raw))[:128]
    return name or "user"


def open_embedded(home: str | Path | None = None) -> tuple[AssetCenter, Principal]:
    """The embedded asset center at `home` (default: the user's data directory) and who is acting on it."""
    center = AssetCenter(AssetHome(Path(home) if home else default_home()))
    try:
        return center, embedded_principal(center)
    except BaseException:
        center.close()
        raise


def embedded_principal(center: AssetCenter) -> Principal:
    """See the module docstring: first use makes the OS user admin; later, LEDGERFLOW_TOKEN or the OS user."""
    name = os_user_name()
    if not _has_users(center):
        try:
            return _bootstrap_os_user(center, name)
        except AccountError:
            pass  # another process created the first user meanwhile: decide as for an existing store
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return center.authenticate(token)
    with center.engine.connect() as conn:
        row = conn.execute(select(db.users.c.id, db.users.c.disabled).where(db.users.c.name == name)).first()
    if row is not None and not row.disabled:
        return center.accounts.principal(int(row.id))
    raise LedgerflowError(tr(
        "The asset center at {home} has users, and the operating-system user {user} is not one of them. Set "
        "LEDGERFLOW_TOKEN to a token an admin issued for you (after 'ledgerflow assetcenter init': the token "
        "'ledgerflow assetcenter redeem' gives for its one-time token).", home=center.home.root, user=name))


def _has_users(center: AssetCenter) -> bool:
    with center.engine.connect() as conn:
        return conn.execute(select(db.users.c.id).limit(1)).first() is not None


def _bootstrap_os_user(center: AssetCenter, name: str) -> Principal:
    """Make `name` the first user, admin on every project, in one audited transaction that re-checks that no user
    exists (a concurrent first use loses with AccountError)."""
    with center.engine.begin() as conn:
        if conn.execute(select(db.users.c.id).limit(1)).first() is not None:
            raise AccountError(tr("The asset center already has users"))
        user_id = center.accounts.create_user(conn, name)
        center.accounts.grant(conn, user_id, "admin", db.ALL_PROJECTS)
        center.audit.append(conn, actor=name, action="init",
                            details={"user": name, "role": "admin", "mode": "embedded"})
    center.audit.checkpoint()
    return center.accounts.principal(user_id)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


class EmbeddedAssets:
    """The embedded store behind AssetClient's methods and reply shapes (version dicts, page dicts)."""

    def __init__(self, center: AssetCenter, principal: Principal) -> None:
        self.center = center
        self.principal = principal

    @classmethod
    def open(cls, home: str | Path | None = None) -> EmbeddedAssets:
        return cls(*open_embedded(home))

    def __repr__(self) -> str:
        return f"EmbeddedAssets({str(self.center.home.root)!r}, user={self.principal.name!r})"

    @property
    def url(self) -> str:
        return str(self.center.home.root)

    def close(self) -> None:
        self.center.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _ref(ref: str) -> str:
        project, name, number = split_ref(ref)
        return f"{project}/{name}" + (f"@{number}" if number is not None else "")

    def publish(self, source: str | Path | bytes | Iterable[bytes], *, project: str = "default", kind: str,
                name: str, description: str = "", tags: Iterable[str] = (), sensitive: bool = False,
                metadata: dict[str, Any] | None = None, lineage: Iterable[tuple[str, str, str]] = ()) -> dict:
        if isinstance(source, (str, Path)):
            chunks: Iterable[bytes] = _file_chunks(Path(source))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            chunks = [bytes(source)]
        else:
            chunks = source
        return self.center.publish(self.principal, project=project, kind=kind, name=name, chunks=chunks,
                                   description=description, tags=tags, metadata=metadata, sensitive=sensitive,
                                   lineage=lineage).as_json()

    def search(self, **filters: Any) -> dict:
        page = self.center.search(self.principal, Query(**{k: v for k, v in filters.items() if v is not None}))
        return {"items": [v.as_json() for v in page.items], "total": page.total, "page": page.page,
                "per_page": page.per_page}

    def versions(self, project: str, name: str) -> list[dict]:
        return [v.as_json() for v in self.center.versions(self.principal, project, name)]

    def info(self, ref: str) -> dict:
        return self.center.resolve(self.principal, self._ref(ref)).as_json()

    def fetch(self, ref: str, target: str | Path) -> dict:
        """Written atomically, after the service checked the signature, the row and the content hash."""
        return self.center.fetch(self.principal, self._ref(ref), Path(target)).as_json()

    def history(self, ref: str) -> list[dict]:
        return self.center.history(self.principal, self._ref(ref))

    def tag(self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict:
        return self.center.tag(self.principal, self._ref(ref), add=add, remove=remove).as_json()

    def promote(self, ref: str, to: str, comment: str) -> dict:
        return self.center.promote(self.principal, self._ref(ref), to, comment).as_json()

    def create_user(self, name: str, password: str | None = None) -> int:
        return self.center.create_user(self.principal, name, password)

    def grant(self, user: str, role: str, project: str = "*", revoke: bool = False) -> None:
        self.center.grant(self.principal, user, role, project, revoke=revoke)

    def issue_token(self, user: str | None = None, label: str = "", expires_in_days: int | None = None) -> str:
        expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
        return self.center.issue_token(self.principal, user, label=label, expires_in=expires)

    def revoke_token(self, token_id: str) -> None:
        self.center.revoke_token(self.principal, token_id)

    def record_label_events(self, project: str, source: str, events: list[dict]) -> dict:
        return self.center.record_label_events(self.principal, project, source, events)

    def audit(self, after_seq: int = 0, limit: int = 500) -> list[dict]:
        return self.center.audit_entries(self.principal, after_seq=after_seq, limit=limit)

    def verify(self) -> list[str]:
        from assetcenter.rbac import Permission, require

        require(self.principal, Permission.VERIFY, db.ALL_PROJECTS)
        return self.center.verify()


__all__ = ["EmbeddedAssets", "embedded_principal", "open_embedded", "os_user_name"]
