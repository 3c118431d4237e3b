"""The request and response shapes of the asset center's HTTP API (v1), as pydantic models.

Why a module of its own: the models are the OpenAPI contract that clients, the schemathesis tests and the docs read;
keeping them apart from the routes keeps both short. Every free-text field refuses NUL characters and unpaired
surrogates here, at the boundary: neither can be stored (PostgreSQL rejects NUL, UTF-8 has no surrogates), and a
request the database would choke on must be a 4xx, never a 500.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from assetcenter import db
from engine.i18n import tr

NO_NUL = r"^[^\x00]*$"  # also tells schema-driven clients (and fuzzers) what is acceptable
MAX_METADATA_HEADER = 64 << 10


def storable(value: str) -> str:
    """Refuse text no backend can store: NUL characters and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError(tr("text must not contain NUL characters"))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(tr("text must be valid Unicode")) from None
    return value


def Text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=NO_NUL),
                     AfterValidator(storable)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    detail: Any = Field(description="A message (str) or, for 422, FastAPI's list of validation errors")


class HealthOut(BaseModel):
    status: Literal["ok"]


class VersionOut(BaseModel):
    """One published version (VersionInfo.as_json()); never the wrapped data key."""

    id: int
    ref: str
    project: str
    kind: str
    name: str
    version: int
    content_sha256: str
    size: int
    sensitive: bool
    stage: str | None
    description: str
    owner: str
    created_at: str
    metadata: dict[str, Any]
    tags: list[str]
    lineage: list[dict[str, str]]
    signature: dict[str, str]


class PageOut(BaseModel):
    items: list[VersionOut]
    total: int
    page: int
    per_page: int


class ManifestOut(BaseModel):
    manifest: dict[str, Any]
    signature: dict[str, Any]


class StageEventOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: str
    version: int
    from_: str | None = Field(alias="from")
    to: str
    by: str
    comment: str


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    asset: str | None
    version: int | None
    remote: str | None
    before_hash: str | None
    after_hash: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class WhoAmIOut(BaseModel):
    name: str
    roles: dict[str, list[str]] = Field(description="project (or *) -> role names")


class TokenOut(BaseModel):
    token: str = Field(description="<id>.<secret>; shown once, store it safely")


class IdOut(BaseModel):
    id: int


class EmptyOut(BaseModel):
    pass


class ProblemsOut(BaseModel):
    problems: list[str]


class RewrappedOut(BaseModel):
    rewrapped: int


class RedeemIn(_In):
    label: Text(255) = ""


class TagsIn(_In):
    add: list[Text(64)] = Field(default_factory=list, max_length=100)
    remove: list[Text(64)] = Field(default_factory=list, max_length=100)


class StageIn(_In):
    to: Literal[db.STAGES]  # type: ignore[valid-type]
    comment: Text(4000)


class UserIn(_In):
    name: Text(128, 1)
    password: Text(1024) | None = None


class RoleIn(_In):
    role: Literal[db.ROLES]  # type: ignore[valid-type]
    project: Text(128, 1) = db.ALL_PROJECTS
    revoke: bool = False


class TokenIn(_In):
    user: Text(128, 1) | None = None
    label: Text(255) = ""
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
