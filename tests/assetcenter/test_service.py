"""The asset center's operations end to end on the embedded store (SQLite) and on PostgreSQL: publish, search,
download with verification, encryption at rest, maker-checker promotion, least privilege, audit and verify."""
from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from assetcenter.auth import Accounts
from assetcenter.home import AssetHome
from assetcenter.keys import EnvKeyProvider
from assetcenter.rbac import Forbidden
from assetcenter.service import AssetCenter, AssetError, Query, TamperedError

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PACKAGE = b"onnx-model-bytes " * 5000  # ~85 kB, several chunks' worth for small chunk sizes
PEOPLE = {"alice": ("analyst", "risk"), "bob": ("approver", "risk"), "vera": ("viewer", "risk"),
          "lena": ("labeler", "risk"), "olga": ("analyst", "other")}


@pytest.fixture(params=["sqlite", "postgresql"])
def center(request, tmp_path):
    url = request.getfixturevalue("fresh_pg_url") if request.param == "postgresql" else None
    c = AssetCenter(AssetHome(tmp_path / "home"), db_url=url, keys=EnvKeyProvider("k1:" + "A" * 43 + "="))
    c.accounts = Accounts(c.engine, hasher=FAST)
    people = {}
    with c.engine.begin() as conn:
        admin = c.accounts.create_user(conn, "root")
        c.accounts.grant(conn, admin, "admin")
        people["root"] = admin
        for name, (role, project) in PEOPLE.items():
            uid = c.accounts.create_user(conn, name)
            c.accounts.grant(conn, uid, role, project)
            people[name] = uid
    c.people = {name: c.accounts.principal(uid) for name, uid in people.items()}
    yield c
    c.close()


def publish(c, who="alice", name="pd-model", data=PACKAGE, **kw):
    kw.setdefault("kind", "model_package")
    return c.publish(c.people[who], project="risk", name=name, chunks=[data[:1000], data[1000:]], **kw)


def read(c, who, ref):
    info, chunks = c.open(c.people[who], ref)
    return info, b"".join(chunks)


def test_publish_read_search_and_versions(center):
    one = publish(center, tags=["pd", "retail"], description="PD model", lineage=[("trained_on", "fingerprint",
                                                                                    "ab" * 32)])
    two = publish(center, data=PACKAGE + b"v2")
    assert (one.number, two.number) == (1, 2) and one.stage == "candidate" and one.owner == "alice"
    info, body = read(center, "vera", "risk/pd-model@1")
    assert body == PACKAGE and info.tags == ["pd", "retail"]
    assert info.lineage == [{"relation": "trained_on", "kind": "fingerprint", "target": "ab" * 32}]
    assert read(center, "vera", "risk/pd-model")[0].number == 2  # no number: the latest
    page = center.search(center.people["vera"], Query(text="PD-", per_page=1))
    assert page.total == 2 and [v.number for v in page.items] == [2]
    assert center.search(center.people["vera"], Query(tag="retail")).total == 1
    assert center.search(center.people["vera"], Query(latest_only=True)).total == 1
    assert center.search(center.people["olga"], Query()).total == 0  # another project's analyst sees nothing
    assert [v.number for v in center.versions(center.people["vera"], "risk", "pd-model")] == [1, 2]
    assert center.verify() == []


def test_maker_checker_and_least_privilege(center):
    publish(center)
    people = center.people
    with pytest.raises(Forbidden):  # the author cannot approve her own model, even with a comment
        center.promote(people["alice"], "risk/pd-model@1", "validated", "looks good")
    with pytest.raises(Forbidden):
        center.promote(people["vera"], "risk/pd-model@1", "validated", "ok")
    with pytest.raises(AssetError, match="comment"):
        center.promote(people["bob"], "risk/pd-model@1", "validated", "  ")
    with pytest.raises(AssetError, match="cannot move to production"):
        center.promote(people["bob"], "risk/pd-model@1", "production", "skip a stage")
    assert center.promote(people["bob"], "risk/pd-model@1", "validated", "backtest ok").stage == "validated"
    assert center.promote(people["bob"], "risk/pd-model@1", "production", "go live").stage == "production"
    publish(center, data=PACKAGE + b"v2")
    center.promote(people["bob"], "risk/pd-model@2", "validated", "ok")
    center.promote(people["bob"], "risk/pd-model@2", "production", "replaces v1")
    assert center.resolve(people["vera"], "risk/pd-model@1").stage == "retired"  # superseded
    history = center.history(people["vera"], "risk/pd-model")
    assert [(h["version"], h["to"], h["by"]) for h in history][-2:] == [(2, "production", "bob"), (1, "retired", "bob")]
    for who, action in [("vera", lambda: publish(center, who="vera")),
                        ("vera", lambda: center.tag(people["vera"], "risk/pd-model@1", add=["x"])),
                        ("lena", lambda: publish(center, who="lena")),
                        ("olga", lambda: center.resolve(people["olga"], "risk/pd-model@1")),
                        ("alice", lambda: center.rotate_keys(people["alice"]))]:
        with pytest.raises(Forbidden):
            action()
    assert center.tag(people["lena"], "risk/pd-model@1", add=["backtested"]).tags == ["backtested"]
    assert center.verify() == []


def test_sensitive_data_is_encrypted_at_rest_and_reads_are_audited(center):
    secret = b"id_card,income\n110101199003074258,52000\n" * 200
    info = publish(center, name="applicants", kind="dataset", data=secret,
                   metadata={"sensitivity": {"id_card": "C3"}})
    assert info.sensitive
    blob = center.blobs.path(center._version_row(info.id).stored_sha256).read_bytes()
    assert b"110101199003074258" not in blob
    with pytest.raises(Forbidden):
        read(center, "vera", "risk/applicants@1")  # viewers do not read personal data
    assert read(center, "alice", "risk/applicants@1")[1] == secret
    actions = [e.action for e in center.audit.entries()]
    assert actions.count("read_sensitive") == 1
    assert center.rotate_keys(center.people["root"]) == 0  # the env provider's current key already wraps it
    assert read(center, "bob", "risk/applicants@1")[1] == secret
    assert center.verify() == []


def test_tampering_is_detected_blocked_and_audited(center):
    publish(center)
    publish(center, data=PACKAGE + b"v2")
    assert center.verify() == []
    row = center._version_row(2)
    path = center.blobs.path(row.stored_sha256)
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    problems = center.verify()
    assert problems and "risk/pd-model@2" in problems[0] and "blob" in problems[0]
    with pytest.raises(TamperedError):
        read(center, "vera", "risk/pd-model@2")
    path.write_bytes(bytes(data[:10]) + bytes([data[10] ^ 1]) + bytes(data[11:]))  # restored
    assert center.verify() == []
    # a row edited behind the center's back (rolled back to version 1's blob): blocked before any byte, audited
    with center.engine.begin() as conn:
        v1 = center._version_row(1)
        conn.execute(text("UPDATE versions SET stored_sha256 = :s, content_sha256 = :c, size = :n WHERE id = 2"),
                     {"s": v1.stored_sha256, "c": v1.content_sha256, "n": v1.size})
    with pytest.raises(TamperedError, match="differs from the signed manifest"):
        read(center, "vera", "risk/pd-model@2")
    assert center.audit.entries()[-1].action == "blocked_read"
    problems = center.verify()
    assert any("risk/pd-model@2" in p and "content_sha256" in p for p in problems)


def test_deleted_version_and_swapped_signature_are_found(center):
    publish(center)
    publish(center, data=PACKAGE + b"v2")
    with center.engine.begin() as conn:
        sig1 = conn.execute(text("SELECT signature_json FROM versions WHERE id = 1")).scalar()
        conn.execute(text("UPDATE versions SET signature_json = :s WHERE id = 2"), {"s": sig1})
    assert any("pd-model@2" in p and "signature" in p for p in center.verify())
    with center.engine.begin() as conn:
        conn.execute(text("DELETE FROM stage_events WHERE version_id = 2"))
        conn.execute(text("DELETE FROM versions WHERE id = 2"))
    assert any("risk/pd-model@2" in p and "gone" in p for p in center.verify())


def test_bad_input_is_refused_with_a_clear_message(center):
    with pytest.raises(AssetError, match="Invalid asset name"):
        publish(center, name="../../etc/passwd")
    with pytest.raises(AssetError, match="Unknown asset kind"):
        publish(center, kind="virus")
    with pytest.raises(AssetError, match="project/name"):
        center.resolve(center.people["vera"], "no-slash")
    with pytest.raises(AssetError, match="No asset version"):
        center.resolve(center.people["vera"], "risk/missing@3")
    publish(center)
    with pytest.raises(AssetError, match="is a model_package"):
        publish(center, kind="dataset")
    with pytest.raises(TamperedError, match="announced"):
        publish(center, expected_sha256="0" * 64)
    small = AssetCenter(center.home, db_url=str(center.engine.url.render_as_string(hide_password=False)),
                        max_upload_bytes=100)
    try:
        small.accounts = center.accounts
        with pytest.raises(Exception, match="limit"):
            small.publish(center.people["alice"], project="risk", kind="report", name="big", chunks=[b"x" * 101])
    finally:
        small.close()
    assert center.search(center.people["vera"], Query(kind="report")).total == 0
    assert center.verify() == []


def test_fetch_writes_atomically(center, tmp_path):
    publish(center)
    target = tmp_path / "out.onnx"
    center.fetch(center.people["vera"], "risk/pd-model@1", target)
    assert target.read_bytes() == PACKAGE
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_accounts_are_admin_only_and_audited(center):
    people = center.people
    with pytest.raises(Forbidden):
        center.create_user(people["alice"], "mallory")
    uid = center.create_user(people["root"], "carol")
    center.grant(people["root"], "carol", "approver", "risk")
    token = center.issue_token(people["root"], "carol", label="laptop")
    carol = center.authenticate(token)
    assert carol.user_id == uid and "approver" in carol.roles["risk"]
    own = center.issue_token(people["vera"], label="cli")  # everyone manages their own tokens
    with pytest.raises(Forbidden):
        center.issue_token(people["vera"], "carol")
    center.revoke_token(people["vera"], own.split(".")[0])
    with pytest.raises(Exception):
        center.authenticate(own)
    entries = center.audit_entries(people["root"])  # the trail is global: an admin (or approver on "*") reads it
    actions = [e["action"] for e in entries]
    assert {"create_user", "grant_role", "issue_token", "revoke_token"} <= set(actions)
    assert token.split(".")[1] not in json.dumps(entries)  # the secret never reaches the trail
    with pytest.raises(Forbidden):
        center.audit_entries(people["vera"])
    assert center.verify() == []


def test_text_no_backend_can_store_is_refused_before_storing(center):
    from assetcenter.service import Query

    for bad in ({"description": "a\x00b"}, {"metadata": {"note": "x\ud800"}}, {"lineage": [("r", "run", "a\x00")]}):
        with pytest.raises(AssetError, match="Invalid"):
            publish(center, **bad)
    publish(center)
    with pytest.raises(AssetError, match="Invalid comment"):
        center.promote(center.people["bob"], "risk/pd-model@1", "validated", "ok\x00")
    with pytest.raises(AssetError, match="Invalid search filter"):
        center.search(center.people["vera"], Query(text="\x00"))
    assert [v.number for v in center.versions(center.people["vera"], "risk", "pd-model")] == [1]


def test_the_gm_profile_signs_with_sm2_and_encrypts_with_sm4(tmp_path):
    from assetcenter.service import crypto_profile, set_crypto_profile

    home = AssetHome(tmp_path / "gm")
    set_crypto_profile(home, "gm")
    c = AssetCenter(home, keys=EnvKeyProvider("k1:" + "A" * 43 + "="))
    try:
        c.accounts = Accounts(c.engine, hasher=FAST)
        with c.engine.begin() as conn:
            uid = c.accounts.create_user(conn, "ana")
            c.accounts.grant(conn, uid, "analyst", "risk")
        ana = c.accounts.principal(uid)
        secret = b"card,amount\n6222020200112233445,100\n" * 50
        info = c.publish(ana, project="risk", kind="dataset", name="cards", chunks=[secret], sensitive=True)
        assert info.signature["alg"] == "sm2" and crypto_profile(home)["encryption"] == "SM4-CBC-HMAC-SM3"
        assert json.loads(c._version_row(info.id).encryption_json)["alg"] == "SM4-CBC-HMAC-SM3"
        assert b"".join(c.open(ana, "risk/cards@1")[1]) == secret
        assert c.verify() == []
    finally:
        c.close()
    with pytest.raises(Exception, match="already uses the gm crypto profile"):
        set_crypto_profile(home, "standard")
