"""``/v1/auth``: login, refresh, logout, sessions, MFA enrolment, password change; JWKS.

Handlers that hash (argon2) or touch the database are plain ``def``: FastAPI runs them in
its thread pool, so they never stall the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tradeguard.auth import Claims, Permission, TokenPair
from tradeguard.errors import InvalidCredentials, InvalidMFACode
from tradeguard.server.context import ServiceDep
from tradeguard.server.dependencies import ProblemError, current_claims, identity
from tradeguard.server.problems import retry_after

router = APIRouter(tags=["auth"])
ClaimsDep = Annotated[Claims, Depends(current_claims)]


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)
    mfa_code: str | None = Field(default=None, max_length=64)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=8192)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    session_id: str


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MFAConfirm(BaseModel):
    code: str = Field(min_length=1, max_length=64)


class MFAEnrollmentResponse(BaseModel):
    secret: str
    provisioning_uri: str
    recovery_codes: list[str]


class SessionInfo(BaseModel):
    id: str
    created_at: str
    expires_at: str
    ip: str | None
    user_agent: str | None
    current: bool


def _require_session(claims: Claims) -> None:
    """Account self-service is for people logged in, not for API keys (a stolen key must
    not be able to enrol its own MFA or change the account's password)."""
    if claims.get("typ") == "api_key":
        raise ProblemError(403, "NOT_A_SESSION", "API keys cannot manage the account: log in")


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token, refresh_token=pair.refresh_token,
        token_type=pair.token_type, expires_in=pair.expires_in, session_id=pair.session_id,
    )  # fmt: skip


@router.post("/v1/auth/login", response_model=TokenResponse)
def login(body: LoginRequest, request: Request, svc: ServiceDep) -> TokenResponse:
    """Username and password (and the TOTP or a recovery code when MFA is on)."""
    ip = identity(request).ip
    decision = svc.validator.rate_limit(f"{ip}|{body.username.strip().casefold()[:256]}", "login")
    if not decision.allowed:
        svc.validator.record_violation(ip, "rate_limit")
        raise ProblemError(429, "RATE_LIMITED", "too many login attempts: slow down",
                           retry_after(decision.retry_after))  # fmt: skip
    try:
        pair = svc.auth.authenticate(
            body.username, body.password, body.mfa_code,
            ip=ip, user_agent=request.headers.get("user-agent"),
        )  # fmt: skip
    except (InvalidCredentials, InvalidMFACode):
        svc.validator.record_violation(ip, "login_failure")
        raise
    return _tokens(pair)


@router.post("/v1/auth/refresh", response_model=TokenResponse)
def refresh(body: RefreshRequest, svc: ServiceDep) -> TokenResponse:
    """A new token pair; a refresh token works once (reuse ends the session)."""
    return _tokens(svc.auth.refresh(body.refresh_token))


@router.post("/v1/auth/logout", status_code=204)
def logout(request: Request, claims: ClaimsDep, svc: ServiceDep) -> None:
    """End the caller's session."""
    _require_session(claims)
    token = request.headers["authorization"].partition(" ")[2].strip()
    svc.auth.logout(token)


@router.get("/v1/auth/sessions", response_model=list[SessionInfo])
def sessions(claims: ClaimsDep, svc: ServiceDep) -> list[SessionInfo]:
    """The caller's live sessions."""
    _require_session(claims)
    current = claims.get("sid")
    return [
        SessionInfo(id=s.id, created_at=s.created_at.isoformat(),
                    expires_at=s.expires_at.isoformat(), ip=s.ip, user_agent=s.user_agent,
                    current=s.id == current)
        for s in svc.auth.list_sessions(claims.username)
    ]  # fmt: skip


@router.delete("/v1/auth/sessions/{session_id}", status_code=204)
def end_session(session_id: str, claims: ClaimsDep, svc: ServiceDep) -> None:
    """End one of the caller's sessions (any session with users:manage)."""
    own = {s.id for s in svc.auth.list_sessions(claims.username)}
    if session_id not in own and (
        Permission.USERS_MANAGE not in claims.permissions or not svc.gate(claims).open
    ):  # another's session is an admin action: not before the password change and MFA
        raise ProblemError(404, "SESSION_NOT_FOUND", "no such live session of yours")
    if not svc.auth.revoke_session(session_id):
        raise ProblemError(404, "SESSION_NOT_FOUND", "no such live session")


@router.post("/v1/auth/mfa/enroll", response_model=MFAEnrollmentResponse)
def mfa_enroll(claims: ClaimsDep, svc: ServiceDep) -> MFAEnrollmentResponse:
    """Start TOTP enrolment; the secret and recovery codes are shown this once."""
    _require_session(claims)
    enrolment = svc.auth.enroll_mfa(claims.username)
    return MFAEnrollmentResponse(
        secret=enrolment.secret, provisioning_uri=enrolment.provisioning_uri,
        recovery_codes=list(enrolment.recovery_codes),
    )  # fmt: skip


@router.post("/v1/auth/mfa/confirm", status_code=204)
def mfa_confirm(body: MFAConfirm, claims: ClaimsDep, svc: ServiceDep) -> None:
    """Turn MFA on with a current code from the authenticator."""
    _require_session(claims)
    svc.auth.confirm_mfa(claims.username, body.code)
    svc.forget_gate(claims.subject)


@router.post("/v1/auth/password", status_code=204)
def change_password(body: PasswordChange, claims: ClaimsDep, svc: ServiceDep) -> None:
    """Change your own password; every session ends (log in again)."""
    _require_session(claims)
    svc.auth.change_password(claims.username, body.old_password, body.new_password)
    svc.forget_gate(claims.subject)


@router.get("/.well-known/jwks.json", tags=["ops"])
def jwks(svc: ServiceDep) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    return svc.auth.jwks()
