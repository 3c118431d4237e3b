"""The asset center's HTTP API on a real uvicorn server on 127.0.0.1, over SQLite and PostgreSQL: the RBAC matrix
generated from the route table, TLS with a certificate made here, streamed downloads that refuse damaged blobs,
and the issue's done-when scenario (analyst publishes, approver promotes, the author cannot, a viewer only reads)."""
from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from postgres_server import free_port, new_database
from tls_cert import self_signed
from assetcenter.auth import Accounts
from assetcenter.home import AssetHome
from assetcenter.keys import EnvKeyProvider
from assetcenter.rbac import (
    GLOBAL_PERMISSIONS,
    ROLE_PERMISSIONS,
    SELF_PERMISSIONS,
    Permission,
)
from assetcenter.server import PERMISSION_KEY, create_app, route_table, serve
from assetcenter.server_thread import ServerThread
from assetcenter.service import AssetCenter
from engine.errors import LedgerflowError

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
KEK = "k1:" + "A" * 43 + "="
PACKAGE = b"onnx-model-bytes " * 20000  # 340 kB: several chunks on the wire
ROLES = ("viewer", "labeler", "analyst", "approver", "admin")
# caller -> its role bindings (project -> role); None: no token at all
CALLERS: dict[str, dict[str, str] | None] = {
    "anonymous": None,
    **{role: {"risk": role} for role in ROLES},
    "analyst-elsewhere": {"other": "analyst"},
    "admin-elsewhere": {"other": "admin"},
    "root": {"*": "admin"},
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Site:
    url: str
    app: FastAPI
    center: AssetCenter
    tokens: dict[str, str]
    spare: dict[str, str]  # a second token per caller, for the revoke route
    client: httpx.Client = field(repr=False)

    def call(self, who: str | None, method: str, path: str, **kw) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if who is not None and who in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.request(method, path, headers=headers, **kw)


def pg_database(server) -> str:
    return new_database(server, "acs_")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    url = pg_database(request.getfixturevalue("pg")) if request.param == "postgresql" else None
    center = AssetCenter(AssetHome(tmp_path_factory.mktemp("home")), db_url=url, keys=EnvKeyProvider(KEK))
    center.accounts = Accounts(center.engine, hasher=FAST)
    tokens, spare = {}, {}
    with center.engine.begin() as conn:
        accounts = center.accounts
        for name, bindings in {**CALLERS, "author": {"risk": "analyst"}, "dummy": {}}.items():
            if bindings is None:
                continue
            uid = accounts.create_user(conn, name)
            for project, role in bindings.items():
                accounts.grant(conn, uid, role, project)
            tokens[name] = accounts.issue_token(conn, uid, label="test")
            spare[name] = accounts.issue_token(conn, uid, label="spare")
    author = center.accounts.principal(center.accounts.authenticate(tokens["author"]).user_id)
    center.publish(author, project="risk", kind="model_package", name="base", chunks=[PACKAGE])
    center.publish(author, project="risk", kind="dataset", name="applicants", chunks=[b"id,income\n1,2\n"],
                   sensitive=True)
    for caller in CALLERS:  # one candidate per caller, authored by someone else (maker-checker allows it)
        center.publish(author, project="risk", kind="model_package", name=f"stage-{caller}", chunks=[b"m" * 100])
    app = create_app(center)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield Site(server.url, app, center, tokens, spare, client)
    center.close()


# ---- the RBAC matrix -------------------------------------------------------------------------------------------
def _upload(caller: str) -> dict:
    body = f"report of {caller}".encode()
    return {"params": {"kind": "report"}, "content": body, "headers": {"X-Content-SHA256": sha(body)}}


# (method, route) -> (path for this caller, request keywords). One entry per route: the table test below fails
# when a route is added without a case here, so the matrix always covers the whole API.
CASES: dict[tuple[str, str], Callable[[str, Site], tuple[str, dict]]] = {
    ("GET", "/v1/keys"): lambda c, s: ("/v1/keys", {}),
    ("GET", "/v1/whoami"): lambda c, s: ("/v1/whoami", {}),
    ("POST", "/v1/auth/redeem"): lambda c, s: ("/v1/auth/redeem", {"json": {"label": "matrix"}}),
    ("GET", "/v1/versions"): lambda c, s: ("/v1/versions", {"params": {"text": "base"}}),
    ("GET", "/v1/assets/{project}/{name}/versions"): lambda c, s: ("/v1/assets/risk/base/versions", {}),
    ("POST", "/v1/assets/{project}/{name}/versions"): lambda c, s: (f"/v1/assets/risk/pub-{c}/versions", _upload(c)),
    ("GET", "/v1/assets/{project}/{name}/versions/{number}"): lambda c, s: ("/v1/assets/risk/base/versions/1", {}),
    ("GET", "/v1/assets/{project}/{name}/versions/{number}/manifest"):
        lambda c, s: ("/v1/assets/risk/base/versions/1/manifest", {}),
    ("GET", "/v1/assets/{project}/{name}/versions/{number}/content"):
        lambda c, s: ("/v1/assets/risk/base/versions/1/content", {}),
    ("POST", "/v1/assets/{project}/{name}/versions/{number}/tags"):
        lambda c, s: ("/v1/assets/risk/base/versions/1/tags", {"json": {"add": [f"seen-by-{c}"]}}),
    ("POST", "/v1/assets/{project}/{name}/versions/{number}/stage"):
        lambda c, s: (f"/v1/assets/risk/stage-{c}/versions/1/stage", {"json": {"to": "validated",
                                                                             "comment": "backtest ok"}}),
    ("GET", "/v1/assets/{project}/{name}/history"): lambda c, s: ("/v1/assets/risk/base/history", {}),
    ("POST", "/v1/users"): lambda c, s: ("/v1/users", {"json": {"name": f"new-{c}"}}),
    ("POST", "/v1/users/{name}/roles"): lambda c, s: ("/v1/users/dummy/roles", {"json": {"role": "viewer",
                                                                                       "project": "risk"}}),
    ("POST", "/v1/tokens"): lambda c, s: ("/v1/tokens", {"json": {"label": "matrix", "expires_in_days": 1}}),
    ("DELETE", "/v1/tokens/{token_id}"):
        lambda c, s: (f"/v1/tokens/{s.spare.get(c, s.spare['dummy']).split('.')[0]}", {}),
    ("POST", "/v1/projects/{project}/label-events"):
        lambda c, s: ("/v1/projects/risk/label-events", {"json": {"source": "0" * 32, "events": []}}),
    ("GET", "/v1/audit"): lambda c, s: ("/v1/audit", {"params": {"limit": 5}}),
    ("POST", "/v1/verify"): lambda c, s: ("/v1/verify", {}),
    ("POST", "/v1/keys/rotate"): lambda c, s: ("/v1/keys/rotate", {}),
}


def expected_allowed(bindings: dict[str, str] | None, permission: Permission, project: str | None) -> bool:
    """What ROLE_PERMISSIONS and the documented scopes (rbac's docstring) say, restated independently."""
    if bindings is None:
        return False
    holding = {p for p, role in bindings.items() if permission in ROLE_PERMISSIONS[role]}
    if permission in GLOBAL_PERMISSIONS:
        return "*" in holding
    if permission in SELF_PERMISSIONS or project is None:
        return bool(holding)
    return "*" in holding or project in holding


def test_the_matrix_covers_every_route_and_every_route_declares_a_permission(site):
    table = route_table(site.app)
    assert {(r.method, r.path) for r in table if r.permission is not None} == set(CASES)
    assert [(r.method, r.path) for r in table if r.permission is None] == [("GET", "/v1/health")]
    spec = site.client.get("/openapi.json").json()
    for r in table:
        assert spec["paths"][r.path][r.method.lower()][PERMISSION_KEY] == (r.permission.value if r.permission else "public")
    extra = create_app(site.center)

    def undeclared() -> dict:
        return {}

    extra.add_api_route("/v1/undeclared", undeclared, methods=["GET"])
    with pytest.raises(RuntimeError, match="declares no permission"):
        route_table(extra)


@pytest.mark.parametrize("route", list(CASES), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("caller", list(CALLERS))
def test_rbac_matrix(site, caller, route):
    permission = {(r.method, r.path): r.permission for r in route_table(site.app)}[route]
    project = "risk" if "{project}" in route[1] else None
    path, kw = CASES[route](caller, site)
    response = site.call(caller, route[0], path, **kw)
    if expected_allowed(CALLERS[caller], permission, project):
        assert 200 <= response.status_code < 300, (caller, route, response.text)
    else:
        assert response.status_code == (401 if CALLERS[caller] is None else 403), (caller, route, response.text)
        assert set(response.json()) == {"detail"}


# ---- behaviour over HTTP ---------------------------------------------------------------------------------------
def test_health_is_public_and_authentication_failures_look_alike(site):
    assert site.client.get("/v1/health").json() == {"status": "ok"}
    missing = site.client.get("/v1/keys")
    forged = site.client.get("/v1/keys", headers={"Authorization": "Bearer " + "0" * 16 + "." + "A" * 43})
    junk = site.client.get("/v1/keys", headers={"Authorization": "Bearer nonsense"})
    assert missing.status_code == forged.status_code == junk.status_code == 401
    assert missing.json() == forged.json() == junk.json()
    assert missing.headers["www-authenticate"] == "Bearer"
    revoked = site.spare["viewer"]
    assert site.call("root", "DELETE", f"/v1/tokens/{revoked.split('.')[0]}").status_code == 200
    again = site.client.get("/v1/keys", headers={"Authorization": f"Bearer {revoked}"})
    assert again.status_code == 401 and again.json() == missing.json()


def test_errors_map_to_status_codes(site):
    assert site.call("viewer", "GET", "/v1/assets/risk/missing/versions/3").status_code == 404
    assert site.call("viewer", "GET", "/v1/assets/risk/base/versions/0").status_code == 422
    bad_stage = site.call("approver", "POST", "/v1/assets/risk/base/versions/1/stage",
                          json={"to": "production", "comment": "skip a stage"})
    assert bad_stage.status_code == 400 and "cannot move to production" in bad_stage.json()["detail"]
    unknown_user = site.call("root", "POST", "/v1/users/nobody/roles", json={"role": "viewer"})
    assert unknown_user.status_code == 400 and "nobody" in unknown_user.json()["detail"]
    assert site.call("root", "POST", "/v1/tokens", json={"label": "x", "expires_in_days": 10 ** 9}).status_code == 422


def test_sensitive_downloads_need_the_sensitive_permission_and_are_audited(site):
    path = "/v1/assets/risk/applicants/versions/1/content"
    assert site.call("viewer", "GET", path).status_code == 403
    got = site.call("analyst", "GET", path)
    assert got.status_code == 200 and got.content == b"id,income\n1,2\n"
    assert got.headers["x-content-sha256"] == sha(got.content)
    entries = site.call("root", "GET", "/v1/audit", params={"limit": 5000}).json()
    assert any(e["action"] == "read_sensitive" and e["actor"] == "analyst" and e["remote"] == "127.0.0.1"
               for e in entries)


def test_a_damaged_blob_never_downloads_completely(site):
    body = os.urandom(3 << 20)  # several chunks
    made = site.call("analyst", "POST", "/v1/assets/risk/fragile/versions", params={"kind": "report"},
                     content=body, headers={"X-Content-SHA256": sha(body)})
    assert made.status_code == 201, made.text
    path = site.center.blobs.path(made.json()["content_sha256"])
    path.chmod(0o600)
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # the last byte: only the full hash sees it
        with pytest.raises(httpx.RemoteProtocolError):  # the body ends short of its Content-Length
            site.call("viewer", "GET", "/v1/assets/risk/fragile/versions/1/content")
    finally:
        path.write_bytes(original)
        path.chmod(0o400)
    assert site.call("viewer", "GET", "/v1/assets/risk/fragile/versions/1/content").content == body
    entries = site.call("root", "GET", "/v1/audit", params={"limit": 5000}).json()
    assert any(e["action"] == "blocked_read" and e["asset"] == "risk/fragile" for e in entries)


def test_done_when_scenario_over_http(site):
    """Analyst publishes a model package; the approver promotes it; the author cannot; a viewer reads only."""
    model = PACKAGE + b"v1"
    meta = {"metadata": {"auc": 0.81}, "lineage": [["trained_on", "fingerprint", "ab" * 32]]}
    made = site.call("analyst", "POST", "/v1/assets/risk/pd-model/versions",
                     params={"kind": "model_package", "description": "PD model", "tag": ["pd", "retail"]},
                     content=iter([model[:100_000], model[100_000:]]),
                     headers={"X-Content-SHA256": sha(model), "X-Asset-Metadata": json.dumps(meta)})
    assert made.status_code == 201, made.text
    info = made.json()
    assert (info["owner"], info["stage"], info["tags"], info["metadata"]) == ("analyst", "candidate",
                                                                             ["pd", "retail"], {"auc": 0.81})
    stage = "/v1/assets/risk/pd-model/versions/1/stage"
    own = site.call("analyst", "POST", stage, json={"to": "validated", "comment": "mine is fine"})
    assert own.status_code == 403
    assert site.call("approver", "POST", stage, json={"to": "validated", "comment": "backtest ok"}).json()["stage"] \
        == "validated"
    assert site.call("analyst", "POST", stage, json={"to": "production", "comment": "ship"}).status_code == 403
    assert site.call("approver", "POST", stage, json={"to": "production", "comment": "go live"}).json()["stage"] \
        == "production"
    listed = site.call("viewer", "GET", "/v1/versions", params={"text": "pd-model", "stage": "production"}).json()
    assert listed["total"] == 1 and listed["items"][0]["ref"] == "risk/pd-model@1"
    got = site.call("viewer", "GET", "/v1/assets/risk/pd-model/versions/1/content")
    assert got.content == model and got.headers["content-length"] == str(len(model))
    for method, path, kw in [("POST", stage, {"json": {"to": "retired", "comment": "no"}}),
                             ("POST", "/v1/assets/risk/pd-model/versions/1/tags", {"json": {"add": ["x"]}}),
                             ("POST", "/v1/assets/risk/pd-model/versions", _upload("viewer"))]:
        assert site.call("viewer", method, path, **kw).status_code == 403
    history = site.call("viewer", "GET", "/v1/assets/risk/pd-model/history").json()
    assert [(h["from"], h["to"], h["by"]) for h in history] == [(None, "candidate", "analyst"),
                                                               ("candidate", "validated", "approver"),
                                                               ("validated", "production", "approver")]
    assert site.call("root", "POST", "/v1/verify").json() == {"problems": []}


# ---- TLS -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_over_tls_with_a_self_signed_certificate(tmp_path, request, backend):
    """The shared deployment: HTTPS in front, PostgreSQL (or SQLite) behind; a client publishes and fetches."""
    db_url = pg_database(request.getfixturevalue("pg")) if backend == "postgresql" else ""
    center = AssetCenter(AssetHome(tmp_path / "home"), db_url=db_url or None)
    one_time = center.init()
    center.close()
    cert, key = self_signed(tmp_path)
    port = free_port()
    script = ("import sys; from pathlib import Path; from assetcenter.server import serve; "
              "serve(Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), tls_cert=Path(sys.argv[3]), "
              "tls_key=Path(sys.argv[4]), db_url=sys.argv[5] or None)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "home"), str(port), str(cert), str(key),
                             db_url],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": "."})
    trusting = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=cert),
                            timeout=30)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert trusting.get("/v1/health").json() == {"status": "ok"}
                break
            except httpx.ConnectError:
                assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
                assert time.monotonic() < deadline, "the TLS server did not start"
                time.sleep(0.1)
        redeemed = trusting.post("/v1/auth/redeem", json={"label": "tls"},
                                 headers={"Authorization": f"Bearer {one_time}"})
        assert redeemed.status_code == 200
        token = redeemed.json()["token"]
        assert trusting.get("/v1/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        from assetcenter.client import AssetClient

        with AssetClient(f"https://127.0.0.1:{port}", token, ca_file=cert,
                         trust_file=tmp_path / "trust.json") as client:
            client.publish(PACKAGE, project="risk", kind="model_package", name="over-tls")
            client.fetch("risk/over-tls@1", tmp_path / "fetched.bin")
        assert (tmp_path / "fetched.bin").read_bytes() == PACKAGE
        with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"):
            untrusting.get(f"https://127.0.0.1:{port}/v1/health")
        with httpx.Client(timeout=10) as plain, pytest.raises(httpx.TransportError):
            plain.get(f"http://127.0.0.1:{port}/v1/health")
    finally:
        trusting.close()
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert token not in out and one_time not in out  # tokens never reach the server log


def test_serve_refuses_half_a_tls_configuration(tmp_path):
    cert, _ = self_signed(tmp_path)
    with pytest.raises(LedgerflowError, match="both a certificate"):
        serve(tmp_path / "home", "127.0.0.1", free_port(), tls_cert=cert)


def test_whoami_names_the_token_user_and_bindings(site):
    me = site.call("author", "GET", "/v1/whoami")
    assert me.status_code == 200 and me.json() == {"name": "author", "roles": {"risk": ["analyst"]}}
    assert site.call(None, "GET", "/v1/whoami").status_code == 401
