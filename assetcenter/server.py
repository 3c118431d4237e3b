"""The asset center's HTTP API (v1): FastAPI over one AssetCenter, served by uvicorn (TLS when given a certificate).

Why it is thin: every rule (permissions per project, maker-checker, signatures, audit) lives in
assetcenter/service.py, which the embedded store uses too. This module only authenticates the bearer token,
translates HTTP to service calls and exceptions to status codes, and streams bytes both ways (an upload is never
held in memory: the body is handed to the service chunk by chunk as it arrives).

Deny by default, structurally: each route is registered through `_route`, which records the permission it needs
(`openapi_extra["x-permission"]`, so the OpenAPI document and the RBAC matrix test read the same table) and attaches
the gate that enforces it before the handler runs. `create_app` refuses to build an app holding a /v1 route that
declares no permission (only /v1/health is public).
"""
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import Depends, FastAPI, Header, Request
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import ClientDisconnect

from assetcenter.auth import AccountError, AuthError
from assetcenter.blobs import BlobHashMismatch, BlobTooLarge, InvalidDigest
from assetcenter.home import AssetHome
from assetcenter.label_events import LabelEventsIn, LabelEventsOut
from assetcenter.label_events import record as record_label_events
from assetcenter.rbac import Forbidden, Permission, Principal, allowed, projects_allowed
from assetcenter.server_models import (
    MAX_METADATA_HEADER,
    AuditEntryOut,
    EmptyOut,
    ErrorOut,
    HealthOut,
    IdOut,
    ManifestOut,
    PageOut,
    ProblemsOut,
    RedeemIn,
    RewrappedOut,
    RoleIn,
    StageEventOut,
    StageIn,
    TagsIn,
    Text,
    TokenIn,
    TokenOut,
    UserIn,
    VersionOut,
    WhoAmIOut,
    storable,
)
from assetcenter.service import (
    MAX_UPLOAD_BYTES,
    AssetCenter,
    AssetError,
    AssetNotFound,
    Query,
    TamperedError,
    parse_ref,
)
from engine.errors import LedgerflowError
from engine.i18n import tr

log = logging.getLogger(__name__)

API_TITLE = "Ledgerflow asset center"
API_VERSION = "1"
PERMISSION_KEY = "x-permission"
PUBLIC = "public"  # the declaration of a route that needs no token (only those in PUBLIC_ROUTES may)
PUBLIC_ROUTES = frozenset({("GET", "/v1/health")})
# Routes whose service call authenticates the bearer token itself (redeeming consumes a one-time token, so the
# gate must not authenticate it first); the service checks the declared permission there.
CHECKED_BY_SERVICE = frozenset({("POST", "/v1/auth/redeem")})
_SHA256_HEADER = r"^[0-9a-fA-F]{64}$"
_MAX_JSON_BODY = 1 << 20  # JSON requests are small; only the upload route streams large bodies
_UPLOAD_PATH = re.compile(r"/v1/assets/[^/]+/[^/]+/versions\Z")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Refused request (bad name, bad stage change, bad input)"},
    401: {"model": ErrorOut, "description": "Missing, unknown, expired or revoked token"},
    403: {"model": ErrorOut, "description": "No role binding grants the permission (or maker-checker refuses)"},
    404: {"model": ErrorOut, "description": "No such asset or version"},
    409: {"model": ErrorOut, "description": "Content does not match its hash or signed manifest"},
    413: {"model": ErrorOut, "description": "Body larger than the server's limit"},
}


def _json_errors() -> dict[int | str, dict[str, Any]]:
    """_ERRORS spelled out as JSON, for a route whose success is not JSON (FastAPI would document a model under
    the route's own media type)."""
    ref = {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
    errors = {code: {"description": spec["description"], "content": {"application/json": ref}}
              for code, spec in _ERRORS.items()}
    errors[422] = {"description": "Validation Error",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}
    return errors


_OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@dataclass(frozen=True)
class RouteSpec:
    """One row of the route table: what a caller must hold to use the route (None: public)."""

    method: str
    path: str
    permission: Permission | None


class OctetStream(StreamingResponse):
    media_type = "application/octet-stream"


# ---- the route table ---------------------------------------------------------------------------------------------
def route_table(app: FastAPI) -> list[RouteSpec]:
    """Every /v1 route with the permission it declares; raises if one declares none (deny by default)."""
    table = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1/"):
            continue
        extra = route.openapi_extra or {}
        for method in sorted(route.methods):
            if (method, route.path) in PUBLIC_ROUTES and extra.get(PERMISSION_KEY) == PUBLIC:
                table.append(RouteSpec(method, route.path, None))
            elif extra.get(PERMISSION_KEY) in {p.value for p in Permission}:
                table.append(RouteSpec(method, route.path, Permission(extra[PERMISSION_KEY])))
            else:
                raise RuntimeError(f"route {method} {route.path} declares no permission; every route must")
    return table


def _permitted(principal: Principal, permission: Permission, project: str | None) -> bool:
    """The route-level gate. With a project in the path, the binding must cover that project; without one
    (search, accounts, audit), a binding that grants the permission anywhere lets the request through and the
    service narrows it (search filters by project; global permissions need "*", see rbac)."""
    if project is not None:
        return allowed(principal, permission, project)
    return bool(projects_allowed(principal, permission))


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def _who(request: Request) -> Principal:
    """The principal the route's gate authenticated; there is no other way for a handler to get one."""
    return request.state.principal


# ---- the app -----------------------------------------------------------------------------------------------------
def create_app(center: AssetCenter) -> FastAPI:
    """The v1 API over `center`. Uploads larger than center.max_upload_bytes are refused (413)."""
    app = FastAPI(title=API_TITLE, version=API_VERSION, redirect_slashes=False,
                  description="Shared, signed and audited home for datasets, features, models and workflows. "
                              "Every route except /v1/health needs `Authorization: Bearer <id>.<secret>`; "
                              "each route's `x-permission` names the permission it needs.")
    bearer = HTTPBearer(auto_error=False, description="An asset center token: <id>.<secret>")

    def token_of(credentials: HTTPAuthorizationCredentials | None) -> str:
        if credentials is None or not credentials.credentials:
            raise AuthError()
        return credentials.credentials

    def gate(permission: Permission) -> Callable[..., None]:
        def check(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
            principal = center.authenticate(token_of(credentials))  # a plain def: argon2 runs in the threadpool
            project = request.path_params.get("project")
            if not _permitted(principal, permission, project):
                if project is None:
                    raise Forbidden(tr("User {user} lacks permission {permission} on every project.",
                                       user=principal.name, permission=str(permission)))
                raise Forbidden(tr("User {user} lacks permission {permission} on project {project}.",
                                   user=principal.name, permission=str(permission), project=project))
            request.state.principal = principal
        return check

    def route(method: str, path: str, permission: Permission | None, *, gated: bool = True,
              **kw: Any) -> Callable[[Callable], Callable]:
        """Register a handler with its declared permission and (unless `gated` is False: the handler's service
        call authenticates and checks it itself) the gate enforcing it."""
        if not gated and (method, path) not in CHECKED_BY_SERVICE:
            raise RuntimeError(f"route {method} {path} must be gated")
        extra = {**kw.pop("openapi_extra", {}), PERMISSION_KEY: permission.value if permission else PUBLIC}
        deps = [Depends(gate(permission))] if permission is not None and gated else []
        return app.api_route(path, methods=[method], dependencies=deps, openapi_extra=extra,
                             responses={**_ERRORS, **kw.pop("responses", {})}, **kw)

    def ref_of(project: str, name: str, number: int | None = None) -> str:
        """The service's reference for path parameters, refused unless it parses back to exactly them (a name
        holding '@' or '/' never reaches a lookup)."""
        if parse_ref(f"{project}/{name}") != (project, name, None):
            raise AssetError(tr("Invalid asset name: {value!r}", value=name[:80]))
        return f"{project}/{name}" + (f"@{number}" if number is not None else "")

    Project = Annotated[str, PathParam(max_length=128)]
    Name = Annotated[str, PathParam(max_length=200)]
    Number = Annotated[int, PathParam(ge=1, le=2**31 - 1)]

    @route("GET", "/v1/health", None, response_model=HealthOut)
    def health() -> dict:
        return {"status": "ok"}

    @route("GET", "/v1/keys", Permission.ASSET_READ, response_model=dict[str, dict[str, Any]])
    def keys(request: Request) -> dict:
        """The center's public signing keys by key id, to verify manifests with."""
        return center.trusted_keys()

    @route("GET", "/v1/whoami", Permission.TOKEN_SELF, response_model=WhoAmIOut)
    def whoami(request: Request) -> dict:
        """The token's user and role bindings (project -> roles), for the desktop's connection check."""
        who = _who(request)
        return {"name": who.name, "roles": {project: sorted(roles) for project, roles in who.roles.items()}}

    @route("POST", "/v1/auth/redeem", Permission.TOKEN_SELF, gated=False, response_model=TokenOut)
    def redeem(request: Request, body: RedeemIn,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict:
        """Exchange the bearer token (typically the one-time init token) for a normal one."""
        _, token = center.redeem(token_of(credentials), label=body.label, remote=_remote(request))
        return {"token": token}

    @route("GET", "/v1/versions", Permission.ASSET_READ, response_model=PageOut)
    def search(request: Request, text: Annotated[Text(200) | None, QueryParam()] = None,
               kind: Annotated[Text(32) | None, QueryParam()] = None,
               tag: Annotated[Text(128) | None, QueryParam()] = None,
               owner: Annotated[Text(128) | None, QueryParam()] = None,
               project: Annotated[Text(128) | None, QueryParam()] = None,
               stage: Annotated[Text(16) | None, QueryParam()] = None,
               since: Annotated[Text(40) | None, QueryParam()] = None,
               until: Annotated[Text(40) | None, QueryParam()] = None,
               latest_only: bool = False, page: Annotated[int, QueryParam(ge=1, le=1_000_000)] = 1,
               per_page: Annotated[int, QueryParam(ge=1, le=500)] = 50) -> dict:
        found = center.search(_who(request), Query(text=text, kind=kind, tag=tag, owner=owner, project=project,
                                                   stage=stage, since=since, until=until, latest_only=latest_only,
                                                   page=page, per_page=per_page))
        return {"items": [v.as_json() for v in found.items], "total": found.total, "page": found.page,
                "per_page": found.per_page}

    @route("GET", "/v1/assets/{project}/{name}/versions", Permission.ASSET_READ, response_model=list[VersionOut])
    def versions(request: Request, project: Project, name: Name) -> list[dict]:
        ref_of(project, name)
        return [v.as_json() for v in center.versions(_who(request), project, name)]

    @route("POST", "/v1/assets/{project}/{name}/versions", Permission.ASSET_PUBLISH, status_code=201,
           response_model=VersionOut,
           openapi_extra={"requestBody": {"required": True, "content": _OCTETS,
                                          "description": "The raw bytes, streamed"}})
    async def publish(request: Request, project: Project, name: Name,
                      kind: Annotated[str, QueryParam(max_length=32)],
                      x_content_sha256: Annotated[str, Header(alias="X-Content-SHA256", pattern=_SHA256_HEADER)],
                      description: Annotated[Text(4000), QueryParam()] = "",
                      tag: Annotated[list[Text(64)], QueryParam(max_length=100)] = [],  # noqa: B006 - FastAPI copies
                      sensitive: bool = False,
                      x_asset_metadata: Annotated[str | None, Header(alias="X-Asset-Metadata",
                                                                     max_length=MAX_METADATA_HEADER)] = None) -> dict:
        """Publish a new version from the streamed body; visible only once stored, hashed and signed."""
        ref_of(project, name)
        metadata, lineage = _parse_metadata_header(x_asset_metadata)
        _refuse_declared_oversize(request, center.max_upload_bytes)
        body = request.stream().__aiter__()

        async def next_chunk() -> bytes | None:
            try:
                return await body.__anext__()
            except StopAsyncIteration:
                return None

        def chunks():  # runs in the worker thread; each chunk is awaited on the event loop as the service asks
            while (chunk := anyio.from_thread.run(next_chunk)) is not None:
                if chunk:
                    yield chunk

        info = await anyio.to_thread.run_sync(partial(
            center.publish, _who(request), project=project, kind=kind, name=name, chunks=chunks(),
            description=description, tags=tag, metadata=metadata, sensitive=sensitive, lineage=lineage,
            remote=_remote(request), expected_sha256=x_content_sha256.lower()))
        return info.as_json()

    @route("GET", "/v1/assets/{project}/{name}/versions/{number}", Permission.ASSET_READ, response_model=VersionOut)
    def version(request: Request, project: Project, name: Name, number: Number) -> dict:
        return center.resolve(_who(request), ref_of(project, name, number)).as_json()

    @route("GET", "/v1/assets/{project}/{name}/versions/{number}/manifest", Permission.ASSET_READ,
           response_model=ManifestOut)
    def manifest(request: Request, project: Project, name: Name, number: Number) -> dict:
        doc, signature = center.manifest(_who(request), ref_of(project, name, number))
        return {"manifest": doc, "signature": signature}

    @route("GET", "/v1/assets/{project}/{name}/versions/{number}/content", Permission.ASSET_READ,
           response_class=OctetStream,
           responses={**_json_errors(), 200: {"content": _OCTETS,
                                              "description": "The version's bytes, checked as they stream",
                                              "headers": {"X-Content-SHA256": {"schema": {"type": "string"}}}}})
    def content(request: Request, project: Project, name: Name, number: Number) -> OctetStream:
        """The bytes, after the signature and row checks; damage found mid-stream aborts the response (the
        client's hash check catches the short body; the service audits it). Sensitive versions also need
        asset.read_sensitive (checked by the service)."""
        info, chunks = center.open(_who(request), ref_of(project, name, number), remote=_remote(request))
        return OctetStream(_hold_last(chunks), headers={"X-Content-SHA256": info.content_sha256,
                                            "Content-Length": str(info.size)})

    @route("POST", "/v1/assets/{project}/{name}/versions/{number}/tags", Permission.LABEL_WRITE,
           response_model=VersionOut)
    def tags(request: Request, project: Project, name: Name, number: Number, body: TagsIn) -> dict:
        return center.tag(_who(request), ref_of(project, name, number), add=body.add, remove=body.remove,
                          remote=_remote(request)).as_json()

    # Promotions need stage.approve; retiring needs stage.retire, which the service checks (every role that
    # approves also retires, so the gate's stage.approve is the weaker of the two for the roles defined).
    @route("POST", "/v1/assets/{project}/{name}/versions/{number}/stage", Permission.STAGE_APPROVE,
           response_model=VersionOut)
    def stage(request: Request, project: Project, name: Name, number: Number, body: StageIn) -> dict:
        return center.promote(_who(request), ref_of(project, name, number), body.to, body.comment,
                              remote=_remote(request)).as_json()

    @route("GET", "/v1/assets/{project}/{name}/history", Permission.ASSET_READ, response_model=list[StageEventOut])
    def history(request: Request, project: Project, name: Name) -> list[dict]:
        return center.history(_who(request), ref_of(project, name))

    @route("POST", "/v1/users", Permission.USER_ADMIN, response_model=IdOut)
    def create_user(request: Request, body: UserIn) -> dict:
        return {"id": center.create_user(_who(request), body.name, body.password, remote=_remote(request))}

    @route("POST", "/v1/users/{name}/roles", Permission.USER_ADMIN, response_model=EmptyOut)
    def roles(request: Request, name: Annotated[str, PathParam(max_length=128)], body: RoleIn) -> dict:
        storable(name)
        center.grant(_who(request), name, body.role, body.project, remote=_remote(request), revoke=body.revoke)
        return {}

    @route("POST", "/v1/tokens", Permission.TOKEN_SELF, response_model=TokenOut)
    def issue_token(request: Request, body: TokenIn) -> dict:
        """A token for oneself, or (admins) for `user`; the secret is in this response only."""
        days = timedelta(days=body.expires_in_days) if body.expires_in_days else None
        return {"token": center.issue_token(_who(request), body.user, label=body.label, expires_in=days,
                                            remote=_remote(request))}

    @route("DELETE", "/v1/tokens/{token_id}", Permission.TOKEN_SELF, response_model=EmptyOut)
    def revoke_token(request: Request, token_id: Annotated[str, PathParam(max_length=64)]) -> dict:
        center.revoke_token(_who(request), token_id, remote=_remote(request))
        return {}

    @route("POST", "/v1/projects/{project}/label-events", Permission.LABELING_RECORD, response_model=LabelEventsOut)
    def label_events(request: Request, project: Project, body: LabelEventsIn) -> dict:
        """Record a label store's events (oldest first) in the audit log; events already recorded are skipped, and
        an empty list just returns where the log stopped for this source."""
        return record_label_events(center, _who(request), project, body, remote=_remote(request))

    @route("GET", "/v1/audit", Permission.AUDIT_READ, response_model=list[AuditEntryOut])
    def audit(request: Request, after_seq: Annotated[int, QueryParam(ge=0, le=2**31 - 1)] = 0,
              limit: Annotated[int, QueryParam(ge=1, le=5000)] = 500) -> list[dict]:
        return center.audit_entries(_who(request), after_seq=after_seq, limit=limit)

    @route("POST", "/v1/verify", Permission.VERIFY, response_model=ProblemsOut)
    def verify(request: Request) -> dict:
        """Check the audit chain, its signed checkpoints, every signature and blob hash."""
        return {"problems": center.verify()}

    @route("POST", "/v1/keys/rotate", Permission.USER_ADMIN, response_model=RewrappedOut)
    def rotate_keys(request: Request) -> dict:
        return {"rewrapped": center.rotate_keys(_who(request), remote=_remote(request))}

    _install_error_handlers(app)
    app.add_middleware(_RequestGuard)
    route_table(app)  # fails here, at build time, if any route declares no permission
    return app


# ---- request helpers ---------------------------------------------------------------------------------------------
def _parse_metadata_header(raw: str | None) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """X-Asset-Metadata: {"metadata": {...}, "lineage": [[relation, target_kind, target], ...]}."""
    if not raw:
        return {}, []

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        doc = json.loads(raw, parse_constant=no_constants)
    except ValueError:
        raise AssetError(tr("The X-Asset-Metadata header is not valid JSON")) from None
    if not isinstance(doc, dict) or not set(doc) <= {"metadata", "lineage"}:
        raise AssetError(tr('X-Asset-Metadata must be an object with "metadata" and "lineage"'))
    metadata, lineage = doc.get("metadata") or {}, doc.get("lineage") or []
    if not isinstance(metadata, dict):
        raise AssetError(tr('X-Asset-Metadata: "metadata" must be an object'))
    if not isinstance(lineage, list) or not all(isinstance(link, list) and len(link) == 3
                                                and all(isinstance(x, str) and x for x in link)
                                                for link in lineage):
        raise AssetError(tr('X-Asset-Metadata: "lineage" must be a list of [relation, target_kind, target]'))
    try:
        _check_storable(doc)
    except ValueError as exc:
        raise AssetError(tr("X-Asset-Metadata: {problem}", problem=str(exc))) from None
    return metadata, [(r, k, t) for r, k, t in lineage]


def _hold_last(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass chunks through one step behind, so the last one is sent only after the service has checked the whole
    content: damaged bytes then always end in a body shorter than its Content-Length, which every HTTP client
    reports as an error, even one that never checks the hash."""
    held = None
    for chunk in chunks:
        if held is not None:
            yield held
        held = chunk
    if held is not None:
        yield held


def _check_storable(value: Any) -> None:
    if isinstance(value, str):
        storable(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            _check_storable(item)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item)


def _refuse_declared_oversize(request: Request, limit: int) -> None:
    """413 before a byte is read when the declared length is over the limit (a streamed body without a length
    is stopped by the service at the limit)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BlobTooLarge(tr("The upload is larger than the limit of {n:,} bytes", n=limit))


class _RequestGuard:
    """Pure ASGI (so streamed bodies pass through untouched): refuses a NUL in the path or query string (no
    backend can store one) and a declared body over 1 MiB on every route except the upload, before reading it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            problem = None
            if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
                problem = 400, tr("The request must not contain NUL characters")
            else:
                declared = dict(scope.get("headers") or []).get(b"content-length", b"").strip()
                upload = scope.get("method") == "POST" and _UPLOAD_PATH.match(scope.get("path", ""))
                if declared.isdigit() and int(declared) > _MAX_JSON_BODY and not upload:
                    problem = 413, tr("The request body is larger than {n:,} bytes", n=_MAX_JSON_BODY)
            if problem:
                await _error(*problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ---- errors ------------------------------------------------------------------------------------------------------
def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


_STATUS: list[tuple[type[BaseException], int]] = [
    (AuthError, 401), (Forbidden, 403), (AssetNotFound, 404), (AssetError, 400), (AccountError, 400),
    (InvalidDigest, 400), (BlobTooLarge, 413), (TamperedError, 409), (BlobHashMismatch, 409),
]


def _install_error_handlers(app: FastAPI) -> None:
    for cls, status in _STATUS:
        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return _error(status, str(exc), headers)
        app.add_exception_handler(cls, handler)

    async def client_gone(request: Request, exc: Exception) -> JSONResponse:
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return _error(400, tr("The client disconnected before the request was complete"))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The details stay in the server log; the caller learns only that it failed.
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, tr("Internal error; the server log has the details"))

    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(LedgerflowError, unexpected)
    app.add_exception_handler(Exception, unexpected)


# ---- serving -----------------------------------------------------------------------------------------------------
def serve(home: Path, host: str = "127.0.0.1", port: int = 8765, db_url: str | None = None,
          tls_cert: Path | None = None, tls_key: Path | None = None,
          max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
    """Run the API with uvicorn until stopped. HTTPS when both a certificate and its key are given."""
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise LedgerflowError(tr("TLS needs both a certificate (--tls-cert) and its private key (--tls-key)"))
    for path in (tls_cert, tls_key):
        if path is not None and not Path(path).is_file():
            raise LedgerflowError(tr("TLS file {path} not found", path=path))
    center = AssetCenter(AssetHome(Path(home)), db_url=db_url, max_upload_bytes=max_upload_bytes)
    removed = center.blobs.clean_tmp()  # uploads a killed server left behind: never visible, now gone
    if removed:
        log.warning("removed %d unfinished upload(s) left by an earlier run", removed)
    if tls_cert is None and host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("serving without TLS on %s: tokens and assets cross the network in clear text", host)
    app = create_app(center)
    try:
        uvicorn.run(app, host=host, port=port, ssl_certfile=str(tls_cert) if tls_cert else None,
                    ssl_keyfile=str(tls_key) if tls_key else None, proxy_headers=False, server_header=False,
                    log_level="info", timeout_graceful_shutdown=10)  # idle keep-alive clients cannot hold a stop
    finally:
        center.close()


__all__ = ["PERMISSION_KEY", "PUBLIC_ROUTES", "RouteSpec", "create_app", "route_table", "serve"]
