"""Where the desktop's asset center is and who is using it: one facade, so nodes and the app never care whether
they talk to the embedded store or to a shared server.

Settings come from the environment first (LEDGERFLOW_ASSETCENTER_URL, LEDGERFLOW_ASSETCENTER_CA,
LEDGERFLOW_ASSETCENTER_HOME), so a CI job or a Dask worker is configured like the CLI, and otherwise from the small
JSON file `assetcenter.json` in the user's Ledgerflow folder, which the app's connection dialog writes. That file
holds the URL and the CA file only: the token is a credential, so it lives in LEDGERFLOW_TOKEN or in the operating
system's keyring (service "ledgerflow-assetcenter", user = the server URL), never in a file or a project.

With no URL, `connect()` opens the embedded store (assetcenter.local); with one, an HTTPS client
(assetcenter.client) that verifies every download against the server's pinned signing key. Both expose the same
methods and JSON shapes, plus `publish_file` and `whoami` added here.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from assetcenter.client import AssetClient, ClientError, NotFound, normalise_url
from assetcenter.local import EmbeddedAssets as _EmbeddedBase
from assetcenter.local import open_embedded
from engine.errors import LedgerflowError
from engine.fileio import atomic_write_text
from engine.i18n import tr
from engine.signing import ledgerflow_home

URL_ENV = "LEDGERFLOW_ASSETCENTER_URL"
CA_ENV = "LEDGERFLOW_ASSETCENTER_CA"
HOME_ENV = "LEDGERFLOW_ASSETCENTER_HOME"
TOKEN_ENV = "LEDGERFLOW_TOKEN"
LABELS_URL_ENV = "LEDGERFLOW_LABELS_URL"
SETTINGS_FILE = "assetcenter.json"
KEYRING_SERVICE = "ledgerflow-assetcenter"


class AssetConnectionError(LedgerflowError):
    """The asset center connection is not configured well enough to use (missing token, bad URL, no keyring)."""


class KeyringUnavailable(AssetConnectionError):
    """No working OS keyring on this machine: the token cannot be stored (and is never written to a file)."""


@dataclass(frozen=True)
class ConnectionSettings:
    """url None: the embedded store at `home` (None: the default folder in the user's data directory)."""

    url: str | None = None
    ca_file: str | None = None
    home: Path | None = None
    labels_url: str | None = None  # the shared label database (assetcenter/labeling.py); used with a server only

    @property
    def embedded(self) -> bool:
        return not self.url

    def describe(self) -> str:
        """One line for the user: which asset center this is."""
        if self.url:
            return tr("server {url}", url=self.url)
        from assetcenter.home import default_home

        return tr("embedded store at {path}", path=self.home or default_home())


def check_labels_url(url: str) -> str:
    """A shared label database URL as it may be saved: PostgreSQL, and no password in it."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise AssetConnectionError(tr("The shared label database must be a URL such as "
                                      "postgresql+psycopg://labeler@db.bank.internal/labels")) from None
    if not parsed.drivername.startswith("postgresql"):
        raise AssetConnectionError(tr("The shared label database must be PostgreSQL (got {driver})",
                                      driver=parsed.drivername))
    if parsed.password:
        raise AssetConnectionError(tr("Leave the password out of the shared label database URL: PostgreSQL reads "
                                      "it from PGPASSWORD or ~/.pgpass, and Ledgerflow never stores it in a file"))
    return parsed.render_as_string(hide_password=False)


def settings_path() -> Path:
    return ledgerflow_home() / SETTINGS_FILE


def _clean(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def load_settings() -> ConnectionSettings:
    """The environment's settings when LEDGERFLOW_ASSETCENTER_URL or _HOME is set, else the saved file's."""
    env_url, env_ca, env_home, env_labels = (_clean(os.environ.get(k))
                                             for k in (URL_ENV, CA_ENV, HOME_ENV, LABELS_URL_ENV))
    home = Path(env_home).expanduser() if env_home else None
    if env_url or env_home:
        return ConnectionSettings(url=env_url, ca_file=env_ca, home=home, labels_url=env_labels)
    try:
        doc = json.loads(settings_path().read_text("utf-8"))
    except FileNotFoundError:
        doc = {}
    except (OSError, ValueError) as exc:
        raise AssetConnectionError(tr("Cannot read the asset center settings {path}: {exc}; fix or remove the file",
                                  path=settings_path(), exc=exc)) from None
    if not isinstance(doc, dict):
        doc = {}
    return ConnectionSettings(url=_clean(doc.get("url")), ca_file=env_ca or _clean(doc.get("ca_file")), home=home,
                              labels_url=env_labels or _clean(doc.get("labels_url")))


def save_settings(settings: ConnectionSettings) -> None:
    """Write the URL, the CA file and the shared label database (never a token or password) to the user's settings
    file, atomically."""
    url = normalise_url(settings.url) if settings.url else None
    if settings.ca_file and not Path(settings.ca_file).is_file():
        raise AssetConnectionError(tr("The CA certificate file {path} does not exist", path=settings.ca_file))
    labels = check_labels_url(settings.labels_url) if _clean(settings.labels_url) else None
    atomic_write_text(settings_path(), json.dumps({"url": url, "ca_file": settings.ca_file or None,
                                                   "labels_url": labels}, indent=2, sort_keys=True))


# ---- the token ------------------------------------------------------------------------------------------------
def _keyring() -> Any:
    """The keyring module when a real backend works here; KeyringUnavailable saying so otherwise."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        raise KeyringUnavailable(tr("The 'keyring' package is not installed, so the token cannot be kept in the "
                                    "operating system's keyring. Set LEDGERFLOW_TOKEN in the environment instead; "
                                    "Ledgerflow never writes the token to a file.")) from None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        raise KeyringUnavailable(tr("No operating-system keyring is available on this machine (e.g. no Secret "
                                    "Service on Linux), so the token cannot be stored. Set LEDGERFLOW_TOKEN in the "
                                    "environment instead; Ledgerflow never writes the token to a file."))
    return keyring


def keyring_status() -> str | None:
    """None when tokens can be stored; else the reason (for the settings dialog)."""
    try:
        _keyring()
    except KeyringUnavailable as exc:
        return str(exc)
    return None


def _account(url: str) -> str:
    return normalise_url(url)


def store_token(url: str, token: str) -> None:
    """Keep `token` for `url` in the OS keyring (replacing any earlier one)."""
    keyring = _keyring()
    token = (token or "").strip()
    if not token:
        raise AssetConnectionError(tr("The token is empty"))
    try:
        keyring.set_password(KEYRING_SERVICE, _account(url), token)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(tr("The keyring refused to store the token: {exc}", exc=type(exc).__name__)) \
            from None


def forget_token(url: str) -> bool:
    """Remove the stored token for `url`; False when there was none."""
    keyring = _keyring()
    try:
        keyring.delete_password(KEYRING_SERVICE, _account(url))
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(tr("The keyring refused to remove the token: {exc}", exc=type(exc).__name__)) \
            from None
    return True


def find_token(url: str) -> str | None:
    """LEDGERFLOW_TOKEN, else the keyring's token for `url`, else None (a missing keyring is not an error here)."""
    token = _clean(os.environ.get(TOKEN_ENV))
    if token:
        return token
    try:
        keyring = _keyring()
        return _clean(keyring.get_password(KEYRING_SERVICE, _account(url)))
    except KeyringUnavailable:
        return None
    except Exception:  # noqa: BLE001 - a locked or broken keyring: treated as "no stored token", said by connect
        return None


# ---- the facade -----------------------------------------------------------------------------------------------
class Assets(Protocol):
    """What nodes and the app use; version and page dicts as in VersionInfo.as_json()."""

    def publish_file(self, path: Path, *, project: str, kind: str, name: str, description: str = "",
                     tags: Iterable[str] = (), metadata: dict[str, Any] | None = None,
                     lineage: Iterable[tuple[str, str, str]] = (), sensitive: bool = False) -> dict: ...
    def search(self, **filters: Any) -> dict: ...
    def versions(self, project: str, name: str) -> list[dict]: ...
    def info(self, ref: str) -> dict: ...
    def fetch(self, ref: str, target: str | Path) -> dict: ...
    def promote(self, ref: str, to: str, comment: str) -> dict: ...
    def history(self, ref: str) -> list[dict]: ...
    def whoami(self) -> dict: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


def latest_version(assets: Assets, project: str, name: str) -> dict | None:
    """The newest version of project/name, or None when the asset does not exist yet."""
    try:
        found = assets.versions(project, name)
    except NotFound:
        return None
    return max(found, key=lambda v: v["version"]) if found else None


class _PublishFile:
    """`publish_file`, the facade's one publishing call, over the front end's own `publish`."""

    def publish_file(self, path: Path, *, project: str, kind: str, name: str, description: str = "",
                     tags: Iterable[str] = (), metadata: dict[str, Any] | None = None,
                     lineage: Iterable[tuple[str, str, str]] = (), sensitive: bool = False) -> dict:
        return self.publish(Path(path), project=project, kind=kind, name=name, description=description,
                            tags=tags, metadata=metadata, lineage=lineage, sensitive=sensitive)


class EmbeddedAssets(_PublishFile, _EmbeddedBase):
    """The embedded store (an AssetCenter and the acting Principal) behind the facade."""

    def whoami(self) -> dict:
        return {"name": self.principal.name,
                "roles": {project: sorted(roles) for project, roles in self.principal.roles.items()}}

    def describe(self) -> str:
        return tr("embedded store at {path}", path=self.center.home.root)


class RemoteAssets(_PublishFile, AssetClient):
    """A shared server over HTTPS behind the facade."""

    def whoami(self) -> dict:
        """The token's user and role bindings (GET /v1/whoami; AuthFailed for a bad token)."""
        doc = self._json("GET", "/v1/whoami")
        return {"name": doc.get("name"), "roles": doc.get("roles") or {}}

    def describe(self) -> str:
        return tr("server {url}", url=self.url)


def connect(settings: ConnectionSettings | None = None, token: str | None = None) -> Assets:
    """Open the configured asset center (the caller closes it). `token` overrides the stored one (the settings
    dialog's "Test connection" before saving)."""
    settings = settings or load_settings()
    if settings.embedded:
        return EmbeddedAssets(*open_embedded(settings.home))
    url = settings.url or ""
    token = _clean(token) or find_token(url)
    if not token:
        hint = keyring_status()
        raise AssetConnectionError(tr(
            "No token for the asset center {url}: enter one under Settings ▸ Asset center connection… (it is kept in "
            "the operating system's keyring) or set LEDGERFLOW_TOKEN.", url=url) + (f" {hint}" if hint else ""))
    try:
        return RemoteAssets(url, token, settings.ca_file)
    except ClientError as exc:
        raise AssetConnectionError(str(exc)) from None


__all__ = [
    "LABELS_URL_ENV",
    "AssetConnectionError",
    "Assets",
    "ConnectionSettings",
    "EmbeddedAssets",
    "KeyringUnavailable",
    "RemoteAssets",
    "check_labels_url",
    "connect",
    "find_token",
    "forget_token",
    "keyring_status",
    "latest_version",
    "load_settings",
    "save_settings",
    "settings_path",
    "store_token",
]
