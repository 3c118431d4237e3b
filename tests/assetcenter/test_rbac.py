"""Roles -> permissions, per project, deny by default: the full role x permission matrix against a table written
out here (not derived from assetcenter.rbac), project scoping and "*", global and self permissions, maker-checker,
and role bindings read back from a real database (SQLite and PostgreSQL)."""
from __future__ import annotations


import pytest
from argon2 import PasswordHasher

from postgres_server import new_database
from assetcenter import db
from assetcenter.auth import AccountError, Accounts
from assetcenter.rbac import (
    PERMISSION_DOCS,
    PERMISSIONS_BY_ROLE,
    ROLE_PERMISSIONS,
    Forbidden,
    Permission,
    Principal,
    allowed,
    check_maker_checker,
    projects_allowed,
    require,
)

PERMISSION_NAMES = ["asset.read", "asset.read_sensitive", "asset.publish", "label.write", "labeling.record",
                    "stage.propose", "stage.approve", "stage.retire", "user.admin", "token.self", "audit.read", "verify"]
# The policy, written by hand: a change to assetcenter.rbac that is not also made here fails the matrix test.
# Columns follow PERMISSION_NAMES.
EXPECTED = {
    #            read sens publ labl lrec prop appr reti usra toks audr veri
    "viewer":   [1,   0,   0,   0,   0,   0,   0,   0,   0,   1,   0,   0],
    "labeler":  [1,   0,   0,   1,   1,   0,   0,   0,   0,   1,   0,   0],
    "analyst":  [1,   1,   1,   1,   1,   1,   0,   0,   0,   1,   0,   0],
    "approver": [1,   1,   0,   0,   0,   0,   1,   1,   0,   1,   1,   0],
    "admin":    [1,   1,   1,   1,   1,   1,   1,   1,   1,   1,   1,   1],
}
GLOBAL = {"user.admin", "audit.read", "verify"}  # only a "*" binding grants these
MATRIX = [(role, name, bool(flag)) for role, flags in EXPECTED.items() for name, flag in zip(PERMISSION_NAMES, flags)]


def test_the_permission_set_and_roles_are_the_expected_ones():
    assert [p.value for p in Permission] == PERMISSION_NAMES
    assert sorted(ROLE_PERMISSIONS) == sorted(db.ROLES) == sorted(EXPECTED)
    assert PERMISSIONS_BY_ROLE is ROLE_PERMISSIONS
    for permission in Permission:
        doc = PERMISSION_DOCS[permission]
        assert doc and "\n" not in doc and len(doc) < 140, permission


@pytest.mark.parametrize(("role", "name", "expected"), MATRIX)
def test_matrix_with_a_binding_on_every_project(role, name, expected):
    who = Principal(1, "u", {"*": frozenset({role})})
    permission = Permission(name)
    assert (permission in ROLE_PERMISSIONS[role]) is expected
    for project in ("risk", "retail", "*"):
        assert allowed(who, permission, project) is expected, (role, name, project)


@pytest.mark.parametrize(("role", "name", "expected"), MATRIX)
def test_matrix_with_a_binding_on_one_project(role, name, expected):
    who = Principal(1, "u", {"risk": frozenset({role})})
    permission = Permission(name)
    if name in GLOBAL:  # a project binding never grants a global permission, whatever project is asked about
        assert not allowed(who, permission, "risk") and not allowed(who, permission, "*")
    elif name == "token.self":  # every user with any binding manages their own tokens
        assert allowed(who, permission, "retail") is expected
    else:
        assert allowed(who, permission, "risk") is expected
        assert not allowed(who, permission, "retail")  # nothing on another project
        assert not allowed(who, permission, "*")  # and not "every project"


def test_deny_by_default():
    nobody = Principal(7, "nobody", {})
    unknown_role = Principal(8, "odd", {"*": frozenset({"superuser", "root"})})
    for who in (nobody, unknown_role):
        for permission in Permission:
            for project in ("risk", "*"):
                assert not allowed(who, permission, project)
                with pytest.raises(Forbidden):
                    require(who, permission, project)
        assert all(projects_allowed(who, p) == frozenset() for p in Permission)


def test_roles_combine_across_projects():
    who = Principal(3, "mixed", {"risk": frozenset({"viewer", "labeler"}), "retail": frozenset({"analyst"}),
                                 "*": frozenset({"viewer"})})
    assert allowed(who, Permission.ASSET_READ, "anything-else")  # via "*"
    assert allowed(who, Permission.LABEL_WRITE, "risk") and not allowed(who, Permission.LABEL_WRITE, "cards")
    assert allowed(who, Permission.ASSET_PUBLISH, "retail") and not allowed(who, Permission.ASSET_PUBLISH, "risk")
    assert projects_allowed(who, Permission.ASSET_PUBLISH) == {"retail"}
    assert projects_allowed(who, Permission.LABEL_WRITE) == {"risk", "retail"}
    assert projects_allowed(who, Permission.ASSET_READ) == {"*"}
    assert projects_allowed(Principal(4, "a", {"risk": frozenset({"admin"})}), Permission.AUDIT_READ) == frozenset()
    assert projects_allowed(Principal(4, "a", {"*": frozenset({"admin"})}), Permission.VERIFY) == {"*"}


def test_require_names_user_permission_and_project():
    who = Principal(5, "carol", {"risk": frozenset({"viewer"})})
    require(who, Permission.ASSET_READ, "risk")
    with pytest.raises(Forbidden) as err:
        require(who, Permission.ASSET_PUBLISH, "risk")
    assert "carol" in str(err.value) and "asset.publish" in str(err.value) and "risk" in str(err.value)
    with pytest.raises(Forbidden, match="retail"):
        require(who, "asset.read", "retail")  # the string value is accepted too
    with pytest.raises(ValueError):
        allowed(who, "asset.destroy", "risk")  # a typo in a permission name is an error, not a silent deny


def test_maker_checker():
    check_maker_checker(author_id=1, approver_id=2)
    with pytest.raises(Forbidden, match="author"):
        check_maker_checker(author_id=3, approver_id=3)


# --- the same rules through role bindings stored in a real database --------------------------------------------

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only: real parameters are the default


@pytest.fixture(scope="module")
def pg_server(pg):
    """The session's PostgreSQL server (tests/conftest.py)."""
    return pg


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = db.make_engine(db.sqlite_url(tmp_path))
    else:
        engine = db.make_engine(new_database(request.getfixturevalue("pg_server"), "ac_"))
    yield engine
    engine.dispose()


def test_stored_bindings_matrix(engine):
    accounts = Accounts(engine, hasher=FAST)
    with engine.begin() as conn:
        ids = {role: accounts.create_user(conn, f"u-{role}") for role in EXPECTED}
        for role, user_id in ids.items():
            accounts.grant(conn, user_id, role)  # "*" by default
    for role, name, expected in MATRIX:
        assert allowed(accounts.principal(ids[role]), Permission(name), "risk") is expected, (role, name)


def test_stored_project_bindings_do_not_leak(engine):
    accounts = Accounts(engine, hasher=FAST)
    with engine.begin() as conn:
        alice = accounts.create_user(conn, "alice")
        accounts.grant(conn, alice, "analyst", "project-a")
        accounts.grant(conn, alice, "analyst", "project-a")  # granting twice is harmless
        bob = accounts.create_user(conn, "bob")
        accounts.grant(conn, bob, "viewer", "*")
    a = accounts.principal(alice)
    assert a.roles == {"project-a": frozenset({"analyst"})}
    assert all(allowed(a, p, "project-a") for p in ROLE_PERMISSIONS["analyst"] if p.value not in GLOBAL)
    assert not any(allowed(a, p, "project-b") for p in Permission if p is not Permission.TOKEN_SELF)
    b = accounts.principal(bob)
    assert allowed(b, Permission.ASSET_READ, "project-a") and allowed(b, Permission.ASSET_READ, "project-b")
    assert not allowed(b, Permission.ASSET_PUBLISH, "project-a")

    with engine.begin() as conn:
        accounts.revoke_role(conn, alice, "analyst", "project-a")
        with pytest.raises(AccountError, match="Unknown role"):
            accounts.grant(conn, alice, "superuser", "project-a")
        with pytest.raises(AccountError, match="project"):
            accounts.grant(conn, alice, "viewer", "../etc")
        with pytest.raises(AccountError, match="No user"):
            accounts.grant(conn, 9999, "viewer", "project-a")
    a = accounts.principal(alice)
    assert a.roles == {} and not any(allowed(a, p, "project-a") for p in Permission)
