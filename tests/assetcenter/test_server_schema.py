"""Hostile input against the real server (SQLite and PostgreSQL): schemathesis generates requests from the app's own
OpenAPI document (no 5xx, every response as documented), then explicit attacks: path traversal through project
and name, oversized uploads with and without a Content-Length, and an upload whose announced hash is wrong."""
from __future__ import annotations

import hashlib
import http.client
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from postgres_server import new_database
from assetcenter.auth import Accounts
from assetcenter.home import AssetHome
from assetcenter.keys import EnvKeyProvider
from assetcenter.server import create_app
from assetcenter.server_thread import ServerThread
from assetcenter.service import AssetCenter

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
LIMIT = 256 << 10  # the test server's upload limit
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Target:
    url: str
    port: int
    center: AssetCenter
    token: str
    outside: Path  # a folder beside the home: nothing may ever be written there

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def snapshot(self) -> tuple:
        """Everything an attack could leave behind: files outside the home, blobs, temp files, versions."""
        with self.center.engine.connect() as conn:
            from sqlalchemy import func, select

            from assetcenter import db
            versions = conn.execute(select(func.count()).select_from(db.versions)).scalar()
        return (sorted(p.relative_to(self.outside) for p in self.outside.rglob("*")),
                sorted(self.center.blobs.digests()), sorted(p.name for p in self.center.home.tmp.iterdir()), versions)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request, tmp_path_factory):
    url = None
    if request.param == "postgresql":
        url = new_database(request.getfixturevalue("pg"), "acx_")
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched")
    center = AssetCenter(AssetHome(root / "a" / "b" / "home"), db_url=url, keys=EnvKeyProvider("k1:" + "A" * 43 + "="),
                         max_upload_bytes=LIMIT)
    center.accounts = Accounts(center.engine, hasher=FAST)
    with center.engine.begin() as conn:
        uid = center.accounts.create_user(conn, "root")
        center.accounts.grant(conn, uid, "admin")
        token = center.accounts.issue_token(conn, uid, label="fuzz")
    admin = center.accounts.principal(uid)
    center.publish(admin, project="risk", kind="model_package", name="pd-model", chunks=[b"model" * 100])
    with ServerThread(create_app(center)) as server:
        yield Target(server.url, server.port, center, token, outside)
    center.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_generated_requests_get_no_5xx_and_conform_to_the_schema(target, mode):
    """Every operation of the served OpenAPI document, 15 generated requests each, authenticated as an admin:
    valid requests (positive) and requests that break the schema on purpose (negative)."""
    schema = schemathesis.openapi.from_url(f"{target.url}/openapi.json")
    failures, tried, calls = [], 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, phases=[Phase.explicit, Phase.generate], deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            calls.append(1)
            case.call_and_validate(base_url=target.url, headers=target.auth, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # negative mode: an operation without inputs has nothing to break
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - schemathesis raises a group; report all
            failures.append(f"{operation.label}: {exc}")
        tried += 1
    assert tried >= 19 and len(calls) >= 5 * tried  # every operation was really exercised
    assert not failures, "\n\n".join(failures)


def test_the_store_is_consistent_after_fuzzing(target):
    assert target.center.verify() == []


# ---- explicit attacks ------------------------------------------------------------------------------------------
def raw_request(target: Target, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> int:
    """Send the path exactly as written (no client-side normalisation of '..' or escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in {**target.auth, **(headers or {})}.items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


TRAVERSALS = ["..%2F..%2Foutside", "..", "%2E%2E", "%2Fetc%2Fpasswd", "..%5C..%5Coutside", "a%00b",
              "..%2F..%2F..%2F..%2Foutside%2Fevil", "%2F%2Foutside", "risk%2F..%2F..", "C:%5Cevil"]


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_path_traversal_in_project_or_name_is_refused_and_writes_nothing(target, evil):
    before = target.snapshot()
    body = b"payload"
    digest = hashlib.sha256(body).hexdigest()
    for path in (f"/v1/assets/{evil}/x/versions?kind=report", f"/v1/assets/risk/{evil}/versions?kind=report"):
        status = raw_request(target, "POST", path, body, {"X-Content-SHA256": digest})
        assert status in (400, 404, 422), (path, status)
    for path in (f"/v1/assets/risk/{evil}/versions/1/content", f"/v1/assets/{evil}/pd-model/versions/1",
                 f"/v1/users/{evil}/roles"):
        status = raw_request(target, "GET" if "users" not in path else "POST", path,
                             b'{"role": "viewer"}' if "users" in path else b"",
                             {"Content-Type": "application/json"})
        assert status in (400, 404, 405, 422), (path, status)
    assert target.snapshot() == before


def test_an_upload_over_the_declared_limit_is_refused_before_reading(target):
    before = target.snapshot()
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
    try:  # announce a body one byte over the limit and send none of it: the answer must not wait for it
        conn.putrequest("POST", "/v1/assets/risk/big/versions?kind=report")
        for key, value in {**target.auth, "X-Content-SHA256": "0" * 64, "Content-Length": str(LIMIT + 1)}.items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and "limit" in json.loads(response.read())["detail"]
    finally:
        conn.close()
    assert target.snapshot() == before


def test_a_streamed_upload_without_length_stops_at_the_limit(target):
    before = target.snapshot()
    chunk = b"z" * (64 << 10)
    body = chunk * (LIMIT // len(chunk) + 1)

    def stream():  # no Content-Length: chunked transfer encoding
        for i in range(0, len(body), len(chunk)):
            yield body[i:i + len(chunk)]

    with httpx.Client(timeout=30) as client:
        response = client.post(f"{target.url}/v1/assets/risk/big/versions", params={"kind": "report"},
                               content=stream(), headers={**target.auth,
                                                          "X-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert target.snapshot() == before


def test_a_wrong_content_hash_publishes_nothing(target):
    before = target.snapshot()
    body = b"the real bytes" * 1000
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{target.url}/v1/assets/risk/liar/versions", params={"kind": "report"},
                               content=body, headers={**target.auth,
                                                      "X-Content-SHA256": hashlib.sha256(b"other").hexdigest()})
        assert response.status_code == 409 and "nothing was published" in response.json()["detail"]
        assert client.get(f"{target.url}/v1/versions", params={"text": "liar"},
                          headers=target.auth).json()["total"] == 0
    assert target.snapshot() == before


@pytest.mark.parametrize("header", ['{"metadata": [1]}', "not json", '{"metadata": {"a": NaN}}',
                                    '{"metadata": {"a": "nul \\u0000 here"}}', '{"lineage": [["a", "b"]]}',
                                    '{"other": 1}'])
def test_bad_metadata_headers_are_refused(target, header):
    before = target.snapshot()
    body = b"bytes"
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{target.url}/v1/assets/risk/meta/versions", params={"kind": "report"},
                               content=body, headers={**target.auth, "X-Asset-Metadata": header,
                                                      "X-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert response.status_code == 400 and "X-Asset-Metadata" in response.json()["detail"]
    assert target.snapshot() == before
