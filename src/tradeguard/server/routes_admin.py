"""``/v1/secrets``, ``/v1/users`` and ``/v1/audit``: the administrative API."""

from __future__ import annotations

import secrets as random_source
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from tradeguard.auth import Claims, User
from tradeguard.server.context import ServiceDep
from tradeguard.server.dependencies import ProblemError, require

router = APIRouter()
Reader = Annotated[Claims, Depends(require("secrets:read"))]
Writer = Annotated[Claims, Depends(require("secrets:write"))]
Manager = Annotated[Claims, Depends(require("users:manage"))]
Auditor = Annotated[Claims, Depends(require("audit:read"))]
SecretPath = Annotated[str, Field(min_length=1, max_length=512)]
MAX_VERSION = 2**31 - 1  # secret versions are INTEGER columns
MAX_SEQ = 2**63 - 1  # audit sequence numbers are BIGINT


# -- secrets -----------------------------------------------------------------------------


class SecretIn(BaseModel):
    data: dict[str, str] = Field(min_length=1, max_length=100)
    cas: int | None = Field(default=None, ge=0, le=MAX_VERSION)


@router.get("/v1/secrets", tags=["secrets"])
def list_secrets(
    claims: Reader, svc: ServiceDep, prefix: Annotated[str, Query(max_length=512)] = ""
) -> dict[str, list[str]]:
    """Paths of live secrets under ``prefix`` (the service's own ``tradeguard/`` left out)."""
    return {"paths": [p for p in svc.secrets.list_secrets(prefix) if not _internal(p)]}


@router.get("/v1/secrets/{path:path}", tags=["secrets"])
def get_secret(
    path: str, claims: Reader, svc: ServiceDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> dict[str, Any]:  # fmt: skip
    """The secret's data (latest live version unless ``version``) and its metadata."""
    _refuse_internal(path)
    data = svc.secrets.get_secret(path, version=version)
    meta = svc.secrets.secret_metadata(path)
    return {"path": path, "data": data, "version": version or meta.current_version}


@router.put("/v1/secrets/{path:path}", tags=["secrets"])
def put_secret(path: str, body: SecretIn, claims: Writer, svc: ServiceDep) -> dict[str, Any]:
    """Store a new version (``cas``: only if the current version is this one)."""
    _refuse_internal(path)
    version = svc.secrets.store_secret(path, body.data, cas=body.cas)
    return {"path": path, "version": version}


@router.delete("/v1/secrets/{path:path}", status_code=204, tags=["secrets"])
def delete_secret(path: str, claims: Writer, svc: ServiceDep) -> None:
    """Soft-delete the latest version (``tradeguard secrets undelete`` brings it back)."""
    _refuse_internal(path)
    svc.secrets.secret_metadata(path)  # 404 for an unknown path
    svc.secrets.delete_secret(path)


INTERNAL_PREFIX = "tradeguard"
"""The service's own secrets (signing keys, the audit HMAC key, MFA seeds) live under
``tradeguard/``; the API never reads, writes or lists them."""


def _internal(path: str) -> bool:
    return path == INTERNAL_PREFIX or path.startswith(INTERNAL_PREFIX + "/")


def _refuse_internal(path: str) -> None:
    if _internal(path):
        raise ProblemError(
            403, "RESERVED_SECRET_PATH", "tradeguard/ holds the service's own keys, not served"
        )


# -- users -------------------------------------------------------------------------------


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=16)
    password: str | None = Field(default=None, max_length=1024)
    display_name: str | None = Field(default=None, max_length=256)


class UserPatch(BaseModel):
    role: str | None = Field(default=None, max_length=16)
    disabled: bool | None = None


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    role: str
    disabled: bool
    mfa_enabled: bool
    must_change_password: bool
    created_at: str
    initial_password: str | None = None


class PasswordReset(BaseModel):
    password: str | None = Field(default=None, max_length=1024)


def _user(user: User, initial_password: str | None = None) -> UserOut:
    return UserOut(
        id=user.id, username=user.username, display_name=user.display_name,
        role=user.role.value, disabled=user.disabled, mfa_enabled=user.mfa_enabled,
        must_change_password=user.must_change_password, created_at=user.created_at.isoformat(),
        initial_password=initial_password,
    )  # fmt: skip


@router.get("/v1/users", response_model=list[UserOut], tags=["users"])
def list_users(claims: Manager, svc: ServiceDep) -> list[UserOut]:
    """Every user."""
    return [_user(u) for u in svc.auth.list_users()]


@router.post("/v1/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(body: UserIn, claims: Manager, svc: ServiceDep) -> UserOut:
    """Add a user; without a password one is generated, returned once, to be changed."""
    generated = body.password is None
    password = random_source.token_urlsafe(18) if body.password is None else body.password
    user = svc.auth.create_user(body.username, password, role=body.role,
                                display_name=body.display_name,
                                must_change_password=generated)  # fmt: skip
    return _user(user, password if generated else None)


@router.get("/v1/users/{username}", response_model=UserOut, tags=["users"])
def get_user(username: str, claims: Manager, svc: ServiceDep) -> UserOut:
    """One user."""
    return _user(svc.auth.get_user(username))


@router.patch("/v1/users/{username}", response_model=UserOut, tags=["users"])
def update_user(username: str, body: UserPatch, claims: Manager, svc: ServiceDep) -> UserOut:
    """Change the role, or disable / enable the account."""
    if body.role is not None:
        svc.auth.set_role(username, body.role)
    if body.disabled is True:
        svc.auth.disable_user(username)
    elif body.disabled is False:
        svc.auth.enable_user(username)
    return _user(svc.auth.get_user(username))


@router.delete("/v1/users/{username}", status_code=204, tags=["users"])
def delete_user(username: str, claims: Manager, svc: ServiceDep) -> None:
    """Remove a user with their sessions, API keys and MFA secret (not yourself)."""
    if svc.auth.get_user(username).id == claims.subject:
        raise ProblemError(409, "CANNOT_DELETE_SELF", "an administrator cannot delete themself")
    svc.auth.delete_user(username)


@router.post("/v1/users/{username}/unlock", status_code=204, tags=["users"])
def unlock_user(username: str, claims: Manager, svc: ServiceDep) -> None:
    """Clear the failed-login lock."""
    svc.auth.unlock_user(username)


@router.post("/v1/users/{username}/mfa/reset", status_code=204, tags=["users"])
def reset_mfa(username: str, claims: Manager, svc: ServiceDep) -> None:
    """Turn MFA off after a lost device (the user's sessions end)."""
    svc.auth.reset_mfa(username)
    svc.forget_gate(svc.auth.get_user(username).id)


@router.post("/v1/users/{username}/password", response_model=UserOut, tags=["users"])
def reset_password(username: str, body: PasswordReset, claims: Manager, svc: ServiceDep) -> UserOut:
    """Set a new password the user must change at next login (generated when omitted)."""
    generated = body.password is None  # an empty password is weak, not "generate one"
    password = random_source.token_urlsafe(18) if body.password is None else body.password
    svc.auth.reset_password(username, password, must_change=True)
    user = svc.auth.get_user(username)
    svc.forget_gate(user.id)
    return _user(user, password if generated else None)


# -- audit -------------------------------------------------------------------------------


@router.get("/v1/audit", tags=["audit"])
def audit_records(
    claims: Auditor, svc: ServiceDep,
    since: datetime | None = None, until: datetime | None = None,
    type: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """Committed audit records matching every filter (``type`` may end with ``*``)."""
    audit = _audit(svc)
    try:
        records = audit.query(since=since, until=until, type=type, actor=actor, limit=limit,
                              after_seq=after_seq)  # fmt: skip
    except OverflowError:  # a time whose offset takes it outside years 1-9999 in UTC
        raise ProblemError(422, "INVALID_REQUEST", "since/until is out of range") from None
    return {"records": [r.to_dict() for r in records]}


@router.get("/v1/audit/verify", tags=["audit"])
def audit_verify(claims: Auditor, svc: ServiceDep) -> dict[str, Any]:
    """Check the whole chain; names the first bad sequence number and why."""
    result = _audit(svc).verify()
    return {"ok": result.ok, "checked": result.checked, "first_bad": result.first_bad,
            "reason": result.reason}  # fmt: skip


def _audit(svc: Any) -> Any:
    if svc.audit is None:
        raise ProblemError(404, "AUDIT_DISABLED", "auditing is off (TRADEGUARD_AUDIT_ENABLED)")
    return svc.audit
