"""Who may do what in the asset center: roles map to permissions, bound to users per project; deny by default.

Why data and not code: `ROLE_PERMISSIONS` is the single source of truth that the service checks, the admin screens
show and the server's RBAC matrix test is generated from. Nothing is allowed unless a role binding grants it.

Scopes. Project permissions (reading, publishing, labels, stages) are checked against the asset's project; a binding
on `"*"` (db.ALL_PROJECTS) covers every project. Global permissions (user administration, the audit log, verify)
span all projects, so only a binding on `"*"` grants them, whatever project is asked about. `TOKEN_SELF` is granted
by a binding on any project: every user the center knows may manage their own tokens.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from assetcenter.db import ALL_PROJECTS
from engine.errors import LedgerflowError
from engine.i18n import N_, tr


class Permission(str, Enum):
    """An action the asset center guards. The value is stable: it is written in audit entries and API docs."""

    ASSET_READ = "asset.read"
    ASSET_READ_SENSITIVE = "asset.read_sensitive"
    ASSET_PUBLISH = "asset.publish"
    LABEL_WRITE = "label.write"
    LABELING_RECORD = "labeling.record"
    STAGE_PROPOSE = "stage.propose"
    STAGE_APPROVE = "stage.approve"
    STAGE_RETIRE = "stage.retire"
    USER_ADMIN = "user.admin"
    TOKEN_SELF = "token.self"
    AUDIT_READ = "audit.read"
    VERIFY = "verify"

    def __str__(self) -> str:  # "asset.read", not "Permission.ASSET_READ", in messages
        return self.value


# One line per permission: what it lets a user do (shown in the admin screens and the API docs).
PERMISSION_DOCS: dict[Permission, str] = {
    Permission.ASSET_READ: N_("List, search and view assets, versions, lineage and stage history; "
                              "download versions not marked sensitive."),
    Permission.ASSET_READ_SENSITIVE: N_("Download or load versions marked sensitive (decrypted); "
                                        "every such read is audited."),
    Permission.ASSET_PUBLISH: N_("Create assets and publish new immutable versions (the publisher is the author)."),
    Permission.LABEL_WRITE: N_("Add or remove tags (labels) on existing versions; content and signed manifest "
                               "never change."),
    Permission.LABELING_RECORD: N_("Record labeling work (who labeled, changed or reviewed which item, and when) "
                                   "in the audit log."),
    Permission.STAGE_PROPOSE: N_("Propose a model version for the next stage (candidate to validated to "
                                 "production), with a comment."),
    Permission.STAGE_APPROVE: N_("Approve a promotion to validated or production; never for a version one "
                                 "authored (maker-checker)."),
    Permission.STAGE_RETIRE: N_("Retire a model version so that it is no longer served as validated or "
                                "production."),
    Permission.USER_ADMIN: N_("Create and disable users, grant and revoke roles, issue and revoke any user's "
                              "tokens (global)."),
    Permission.TOKEN_SELF: N_("List, issue and revoke one's own API tokens, and redeem a one-time token."),
    Permission.AUDIT_READ: N_("Read the audit log (global, read-only)."),
    Permission.VERIFY: N_("Run verify: check the audit chain, its signed checkpoints, every blob hash and "
                          "signature (global)."),
}

# Permissions that span every project: only a binding on "*" grants them.
GLOBAL_PERMISSIONS: frozenset[Permission] = frozenset({Permission.USER_ADMIN, Permission.AUDIT_READ,
                                                       Permission.VERIFY})
# Permissions about the caller's own account: a binding on any project grants them.
SELF_PERMISSIONS: frozenset[Permission] = frozenset({Permission.TOKEN_SELF})

_VIEWER = frozenset({Permission.ASSET_READ, Permission.TOKEN_SELF})
_LABELER = _VIEWER | {Permission.LABEL_WRITE, Permission.LABELING_RECORD}
# Analysts train on and publish from sensitive data, so they read it; labelers and viewers do not (least privilege).
_ANALYST = _LABELER | {Permission.ASSET_READ_SENSITIVE, Permission.ASSET_PUBLISH, Permission.STAGE_PROPOSE}
# Approvers validate models, which needs their (possibly sensitive) evidence and the audit trail, read-only.
# They neither publish nor label: the checker does not make. Verify stays with admins (it reads every blob).
_APPROVER = _VIEWER | {Permission.ASSET_READ_SENSITIVE, Permission.STAGE_APPROVE, Permission.STAGE_RETIRE,
                       Permission.AUDIT_READ}
_ADMIN = frozenset(Permission)

# role -> the permissions it grants. viewer ⊂ labeler ⊂ analyst; approver = viewer + approval duties; admin = all.
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": _VIEWER,
    "labeler": _LABELER,
    "analyst": _ANALYST,
    "approver": _APPROVER,
    "admin": _ADMIN,
}
PERMISSIONS_BY_ROLE = ROLE_PERMISSIONS  # the name the server's RBAC matrix test reads


class Forbidden(LedgerflowError):
    """The caller is authenticated but no role binding grants the permission (or maker-checker refuses)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated user: id, name and role bindings (project -> roles). Holds no credential."""

    user_id: int
    name: str
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _bindings_granting(principal: Principal, permission: Permission) -> Iterable[str]:
    """The projects (or "*") on which the principal holds a role that grants `permission`."""
    for project, roles in principal.roles.items():
        if any(permission in ROLE_PERMISSIONS.get(role, ()) for role in roles):
            yield project


def allowed(principal: Principal, permission: Permission, project: str) -> bool:
    """True only when a role binding grants `permission` on `project` (see the module docstring for scopes)."""
    permission = Permission(permission)
    granted = set(_bindings_granting(principal, permission))
    if permission in SELF_PERMISSIONS:
        return bool(granted)
    if permission in GLOBAL_PERMISSIONS:
        return ALL_PROJECTS in granted
    return ALL_PROJECTS in granted or (project != ALL_PROJECTS and project in granted)


def require(principal: Principal, permission: Permission, project: str) -> None:
    """Raise Forbidden, naming the user, the permission and the project, unless `allowed`."""
    if not allowed(principal, permission, project):
        raise Forbidden(tr("User {user} lacks permission {permission} on project {project}.",
                           user=principal.name, permission=str(Permission(permission)), project=project))


def projects_allowed(principal: Principal, permission: Permission) -> frozenset[str]:
    """The projects on which `permission` is granted, for filtering searches; contains "*" when it is every one."""
    permission = Permission(permission)
    granted = frozenset(_bindings_granting(principal, permission))
    if permission in GLOBAL_PERMISSIONS:
        return granted & {ALL_PROJECTS}
    return frozenset({ALL_PROJECTS}) if ALL_PROJECTS in granted else granted


def check_maker_checker(author_id: int, approver_id: int) -> None:
    """Refuse when the approver of a promotion is its author: maker-checker needs two different people."""
    if author_id == approver_id:
        raise Forbidden(tr("Maker-checker: the author of a version cannot approve its promotion; "
                           "another approver must do it."))
