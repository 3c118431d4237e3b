"""The asset center's HTTP client, used by the CLI and the desktop app when a shared server is configured.

Why it checks so much itself: the server is trusted only as far as its signing key. Every download is verified
here, before the file appears: the version's manifest must carry a valid signature by a key this machine pinned
the first time it talked to that server (trust on first use, kept in `assetcenter-trust.json` in the user's
Ledgerflow folder), it must name the version that was asked for, and the bytes must hash to the manifest's SHA-256.
Only then is the temp file renamed onto the target. A server whose key changed is refused, naming the key ids.

The token is sent only in the Authorization header; it never appears in a repr, a log line or an exception.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import ssl
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import quote, urlsplit

import httpx

from assetcenter.signatures import verify_document
from engine.errors import LedgerflowError
from engine.i18n import tr
from engine.signing import ledgerflow_home

CHUNK = 1 << 20
MAX_METADATA_HEADER = 64 << 10  # the server refuses a larger X-Asset-Metadata header
TRUST_FILE = "assetcenter-trust.json"
_TOKEN_CHARS = re.compile(r"[!-~]{1,512}")  # printable ASCII, no spaces: anything else cannot be a header value
_SPOOL_IN_MEMORY = 8 << 20


class ClientError(LedgerflowError):
    """The asset center refused a request or could not be reached; the message is the server's (never a secret)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthFailed(ClientError):
    """HTTP 401: the token is unknown, expired, revoked or already used."""


class Refused(ClientError):
    """HTTP 403: the token's user lacks the permission (or maker-checker refuses)."""


class NotFound(ClientError):
    """HTTP 404: no such asset or version (or not visible to this user)."""


class TooLarge(ClientError):
    """HTTP 413: the upload is over the server's size limit."""


class VerificationFailed(ClientError):
    """A download failed verification (signature, identity or content hash) or the server reported tampering."""


class TrustError(VerificationFailed):
    """The server signs with a key other than the one pinned for it on first use."""


_BY_STATUS: dict[int, type[ClientError]] = {401: AuthFailed, 403: Refused, 404: NotFound, 409: VerificationFailed,
                                            413: TooLarge}


def normalise_url(url: str) -> str:
    """scheme://host:port (lower case, explicit port, no trailing slash): the key trust is pinned under."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(tr("The asset center URL must start with https:// (or http:// on this machine); "
                             "got {url!r}", url=url[:200]))
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ClientError(tr("The asset center URL must not hold a user name, password, query or fragment; "
                             "use LEDGERFLOW_TOKEN for the credential"))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _q(segment: str) -> str:
    """One URL path segment: every reserved character escaped, so a name can never add or climb a level."""
    return quote(str(segment), safe="")


def split_ref(ref: str, default_project: str = "default") -> tuple[str, str, int | None]:
    """"[project/]name[@version]" -> (project, name, number | None), checked as the service checks them."""
    from assetcenter.service import parse_ref  # the one definition of a valid reference

    body = ref.partition("@")[0]
    return parse_ref(ref if "/" in body else f"{default_project}/{ref}")


# ---- trust on first use -------------------------------------------------------------------------------------
class TrustStore:
    """Public signing keys pinned per server URL, in a JSON file (0600, written atomically, under a lock)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else ledgerflow_home() / TRUST_FILE

    def __repr__(self) -> str:
        return f"TrustStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, dict]]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ClientError(tr("Cannot read the pinned asset center keys {path}: {exc}", path=self.path,
                                 exc=exc.strerror or exc)) from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise ClientError(tr("{path} must belong to you and be writable by you only (chmod 600 {path})",
                                     path=self.path))
            try:
                doc = json.loads(fh.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                doc = None
        if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
            raise ClientError(tr("{path} is damaged; remove it to pin each server's key again on next use",
                                 path=self.path))
        return doc

    def _write(self, doc: dict) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(doc, indent=2, sort_keys=True).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def pinned(self, url: str) -> dict[str, dict]:
        return dict(self._read().get(normalise_url(url), {}))

    def pin_first(self, url: str, keys: dict[str, dict]) -> dict[str, dict]:
        """The keys pinned for `url`; on first contact, `keys` become them. Later keys never replace them."""
        url = normalise_url(url)
        with self._locked():
            doc = self._read()
            if url not in doc:
                if not keys or not all(isinstance(k, dict) and k.get("key_id") == kid for kid, k in keys.items()):
                    raise VerificationFailed(tr("The asset center at {url} offered no usable signing key", url=url))
                doc[url] = {kid: {"alg": k.get("alg"), "key_id": kid, "public": k.get("public")}
                            for kid, k in keys.items()}
                self._write(doc)
            return dict(doc[url])

    def forget(self, url: str) -> None:
        """Drop the pin for `url` (after an admin confirmed a deliberate key change out of band)."""
        url = normalise_url(url)
        with self._locked():
            doc = self._read()
            if doc.pop(url, None) is not None:
                self._write(doc)


# ---- the client -----------------------------------------------------------------------------------------------
class _Source:
    """An upload's bytes: hashed in one pass first, then streamed (a file re-read; anything else spooled)."""

    def __init__(self, source: str | Path | bytes | Iterable[bytes]) -> None:
        h, self.size = hashlib.sha256(), 0
        self._path: Path | None = None
        self._spool: IO[bytes] | None = None
        if isinstance(source, (str, Path)):
            self._path = Path(source)
            try:
                with open(self._path, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        h.update(chunk)
                        self.size += len(chunk)
            except OSError as exc:
                raise ClientError(tr("Cannot read {path}: {exc}", path=self._path, exc=exc.strerror or exc)) from None
        else:
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by close()
            for chunk in [source] if isinstance(source, (bytes, bytearray, memoryview)) else source:
                h.update(chunk)
                self.size += len(chunk)
                self._spool.write(chunk)
        self.sha256 = h.hexdigest()

    def chunks(self) -> Iterator[bytes]:
        with (open(self._path, "rb") if self._path else contextlib.nullcontext(self._spool)) as fh:
            fh.seek(0)
            while chunk := fh.read(CHUNK):
                yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


class AssetClient:
    """Talks to one asset center server over HTTPS with a bearer token.

    `ca_file` trusts a private certificate authority (LEDGERFLOW_ASSETCENTER_CA). Plain http:// is accepted only
    for loopback addresses, so a token never crosses a network in clear text. `trust_file` overrides where the
    pinned signing keys live (tests; default: the user's Ledgerflow folder).
    """

    def __init__(self, url: str, token: str, ca_file: str | Path | None = None, *, timeout: float = 60.0,
                 trust_file: str | Path | None = None) -> None:
        self.url = normalise_url(url)
        parts = urlsplit(self.url)
        if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            raise ClientError(tr("Refusing to send a token over plain http:// to {host}; use https://",
                                 host=parts.hostname))
        token = (token or "").strip()
        if not _TOKEN_CHARS.fullmatch(token):
            raise ClientError(tr("The asset center token is empty or malformed (it looks like <id>.<secret>)"))
        verify: ssl.SSLContext | bool = True
        if ca_file:
            if not Path(ca_file).is_file():
                raise ClientError(tr("The CA certificate file {path} does not exist", path=ca_file))
            try:
                verify = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ClientError(tr("Cannot use {path} as a CA certificate: {exc}", path=ca_file, exc=exc)) from None
        self.trust = TrustStore(Path(trust_file) if trust_file else None)
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=httpx.Timeout(timeout, connect=15.0),
                                  headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)

    def __repr__(self) -> str:
        return f"AssetClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport ---------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        _raise_for(response)
        return response

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._send(method, path, **kw)
        try:
            return response.json()
        except ValueError:
            raise ClientError(tr("The asset center at {url} sent a reply that is not JSON", url=self.url),
                              response.status_code) from None

    def _transport_error(self, exc: httpx.HTTPError) -> ClientError:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return ClientError(tr("The asset center at {url} did not answer in time ({reason})", url=self.url,
                                  reason=reason))
        return ClientError(tr("Cannot reach the asset center at {url}: {reason}", url=self.url, reason=reason))

    @staticmethod
    def _version_path(project: str, name: str, number: int | None = None) -> str:
        base = f"/v1/assets/{_q(project)}/{_q(name)}"
        return base + "/versions" + (f"/{int(number)}" if number is not None else "")

    # ---- reading -----------------------------------------------------------------------------------------------
    def health(self) -> dict:
        return self._json("GET", "/v1/health")

    def keys(self) -> dict[str, dict]:
        """The server's public signing keys as it reports them now (not trusted by themselves: see trusted_keys)."""
        return self._json("GET", "/v1/keys")

    def trusted_keys(self) -> dict[str, dict]:
        """The keys pinned for this server; pinned from the server's own answer on first contact."""
        pinned = self.trust.pinned(self.url)
        return pinned or self.trust.pin_first(self.url, self.keys())

    def search(self, *, text: str | None = None, kind: str | None = None, tag: str | None = None,
               owner: str | None = None, project: str | None = None, stage: str | None = None,
               since: str | None = None, until: str | None = None, latest_only: bool = False, page: int = 1,
               per_page: int = 50) -> dict:
        """{"items": [version dicts], "total", "page", "per_page"}, newest first, only what the user may read."""
        params = {"text": text, "kind": kind, "tag": tag, "owner": owner, "project": project, "stage": stage,
                  "since": since, "until": until, "page": page, "per_page": per_page}
        params = {k: v for k, v in params.items() if v not in (None, "")}
        if latest_only:
            params["latest_only"] = "true"
        return self._json("GET", "/v1/versions", params=params)

    def versions(self, project: str, name: str) -> list[dict]:
        return self._json("GET", self._version_path(project, name))

    def info(self, ref: str) -> dict:
        """The version `ref` ("[project/]name[@version]") names; the latest when it names no number."""
        project, name, number = split_ref(ref)
        if number is None:
            found = self.versions(project, name)
            if not found:
                raise NotFound(tr("No asset version {ref}", ref=f"{project}/{name}"), 404)
            return max(found, key=lambda v: v["version"])
        return self._json("GET", self._version_path(project, name, number))

    def manifest(self, ref: str) -> tuple[dict, dict]:
        project, name, number = split_ref(ref)
        if number is None:
            number = self.info(ref)["version"]
        doc = self._json("GET", self._version_path(project, name, number) + "/manifest")
        if not isinstance(doc, dict) or not isinstance(doc.get("manifest"), dict) \
                or not isinstance(doc.get("signature"), dict):
            raise VerificationFailed(tr("The asset center sent no signed manifest for {ref}", ref=ref))
        return doc["manifest"], doc["signature"]

    def verified_manifest(self, ref: str) -> dict:
        """The version's manifest after checking its signature with the pinned keys and that it names `ref`."""
        project, name, number = split_ref(ref)
        info = self.info(ref) if number is None else None
        number = info["version"] if info else number
        manifest, signature = self.manifest(f"{project}/{name}@{number}")
        pinned = self.trusted_keys()
        key_id = signature.get("key_id")
        if key_id not in pinned:
            raise TrustError(tr(
                "The asset center at {url} signed {ref} with key {key}, but the key pinned for this server on first "
                "use is {pinned}. If the server's key was changed on purpose, confirm the new key id with its admin "
                "and remove the server's entry from {file}; otherwise do not use this server.",
                url=self.url, ref=f"{project}/{name}@{number}", key=str(key_id)[:64],
                pinned=", ".join(sorted(pinned)), file=self.trust.path))
        if not verify_document(pinned, manifest, signature):
            raise VerificationFailed(tr("The signature of {ref}'s manifest does not verify; it was not used",
                                        ref=f"{project}/{name}@{number}"))
        named = (manifest.get("project"), manifest.get("name"), manifest.get("version"))
        if named != (project, name, number):
            raise VerificationFailed(tr("The asset center answered {ref} with the signed manifest of another version "
                                        "({other}); it was not used", ref=f"{project}/{name}@{number}",
                                        other="{}/{}@{}".format(*named)))
        sha = manifest.get("content_sha256")
        if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise VerificationFailed(tr("The signed manifest of {ref} names no content hash", ref=f"{project}/{name}"))
        return manifest

    def fetch(self, ref: str, target: str | Path) -> dict:
        """Download a version to `target`. The file appears only when the manifest's signature (pinned key), its
        identity, the content's SHA-256 and size all check out; otherwise nothing is left behind."""
        manifest = self.verified_manifest(ref)
        ref = f"{manifest['project']}/{manifest['name']}@{manifest['version']}"
        target = Path(target)
        tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.part")
        h, size = hashlib.sha256(), 0
        path = self._version_path(manifest["project"], manifest["name"], manifest["version"]) + "/content"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                try:
                    # its own connection, closed afterwards: a server that aborts a damaged stream after the last
                    # byte leaves a connection that must not be reused for the next request
                    with self._http.stream("GET", path, headers={"Connection": "close"}) as response:
                        if response.status_code >= 400:
                            response.read()
                            _raise_for(response)
                        for chunk in response.iter_bytes(CHUNK):
                            h.update(chunk)
                            size += len(chunk)
                            fh.write(chunk)
                except httpx.HTTPError as exc:
                    raise VerificationFailed(tr("The download of {ref} broke off before it was complete ({reason}); "
                                                "nothing was written", ref=ref,
                                                reason=str(exc).splitlines()[0][:200] if str(exc)
                                                else type(exc).__name__)) from None
                if h.hexdigest() != manifest["content_sha256"] or size != manifest.get("size", size):
                    raise VerificationFailed(tr("The bytes received for {ref} do not match its signed SHA-256; "
                                                "nothing was written", ref=ref))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise ClientError(tr("Cannot write {path}: {exc}", path=target, exc=exc.strerror or exc)) from None
        finally:
            tmp.unlink(missing_ok=True)
        return self.info(ref)

    def history(self, ref: str) -> list[dict]:
        project, name, _ = split_ref(ref)
        return self._json("GET", f"/v1/assets/{_q(project)}/{_q(name)}/history")

    # ---- changing ------------------------------------------------------------------------------------------------
    def publish(self, source: str | Path | bytes | Iterable[bytes], *, project: str = "default", kind: str,
                name: str, description: str = "", tags: Iterable[str] = (), sensitive: bool = False,
                metadata: dict[str, Any] | None = None,
                lineage: Iterable[tuple[str, str, str]] = ()) -> dict:
        """Publish a new version from a file path, bytes or chunks: hashed first (one pass), then streamed; the
        server refuses it unless what arrived has that hash. Returns the version dict."""
        # ASCII JSON: a header value cannot carry other characters (\u escapes keep them)
        header = json.dumps({"metadata": metadata or {}, "lineage": [list(link) for link in lineage]},
                            ensure_ascii=True, sort_keys=True, separators=(",", ":"))
        if len(header.encode("utf-8")) > MAX_METADATA_HEADER:
            raise ClientError(tr("The metadata and lineage of an upload must stay under {n} KiB of JSON",
                                 n=MAX_METADATA_HEADER >> 10))
        params: list[tuple[str, str]] = [("kind", kind), ("description", description),
                                         ("sensitive", "true" if sensitive else "false")]
        params += [("tag", t) for t in tags]
        body = _Source(source)
        try:
            # a known length lets the server refuse an oversized upload before any byte is sent
            headers = {"X-Content-SHA256": body.sha256, "Content-Type": "application/octet-stream",
                       "Content-Length": str(body.size), "X-Asset-Metadata": header}
            return self._json("POST", self._version_path(project, name), params=params, headers=headers,
                              content=body.chunks())
        finally:
            body.close()

    def tag(self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict:
        project, name, number = self._numbered(ref)
        return self._json("POST", self._version_path(project, name, number) + "/tags",
                          json={"add": list(add), "remove": list(remove)})

    def promote(self, ref: str, to: str, comment: str) -> dict:
        project, name, number = self._numbered(ref)
        return self._json("POST", self._version_path(project, name, number) + "/stage",
                          json={"to": to, "comment": comment})

    def _numbered(self, ref: str) -> tuple[str, str, int]:
        project, name, number = split_ref(ref)
        return project, name, number if number is not None else self.info(ref)["version"]

    # ---- accounts and administration ---------------------------------------------------------------------------
    def redeem(self, label: str = "") -> str:
        """Exchange this client's one-time token (from `assetcenter init`) for a normal one, returned once."""
        return self._json("POST", "/v1/auth/redeem", json={"label": label})["token"]

    def create_user(self, name: str, password: str | None = None) -> int:
        body: dict[str, Any] = {"name": name}
        if password is not None:
            body["password"] = password
        return self._json("POST", "/v1/users", json=body)["id"]

    def grant(self, user: str, role: str, project: str = "*", revoke: bool = False) -> None:
        self._json("POST", f"/v1/users/{_q(user)}/roles", json={"role": role, "project": project, "revoke": revoke})

    def issue_token(self, user: str | None = None, label: str = "", expires_in_days: int | None = None) -> str:
        body: dict[str, Any] = {"label": label}
        if user is not None:
            body["user"] = user
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return self._json("POST", "/v1/tokens", json=body)["token"]

    def revoke_token(self, token_id: str) -> None:
        self._json("DELETE", f"/v1/tokens/{_q(token_id)}")

    def record_label_events(self, project: str, source: str, events: list[dict]) -> dict:
        """Send a label store's events to the audit log; returns {"recorded", "last_id"}."""
        return self._json("POST", f"/v1/projects/{_q(project)}/label-events",
                          json={"source": source, "events": events})

    def audit(self, after_seq: int = 0, limit: int = 500) -> list[dict]:
        return self._json("GET", "/v1/audit", params={"after_seq": after_seq, "limit": limit})

    def verify(self) -> list[str]:
        """The server's integrity check: [] when intact, else problems, the first naming the first broken item."""
        return list(self._json("POST", "/v1/verify")["problems"])

    def rotate_keys(self) -> int:
        return int(self._json("POST", "/v1/keys/rotate")["rewrapped"])


def _raise_for(response: httpx.Response) -> None:
    """Turn an error reply into the matching ClientError carrying the server's message."""
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'request'}: {d.get('msg', '')}"
                           for d in detail if isinstance(d, dict))
    if not isinstance(detail, str) or not detail:
        detail = tr("the asset center answered HTTP {status}", status=response.status_code)
    cls = _BY_STATUS.get(response.status_code, ClientError)
    raise cls(detail[:2000], response.status_code)


__all__ = ["AssetClient", "AuthFailed", "ClientError", "NotFound", "Refused", "TooLarge", "TrustError",
           "TrustStore", "VerificationFailed", "normalise_url", "split_ref"]
