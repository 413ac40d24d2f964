"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.responses import Response

from tradeguard.auth import Permission
from tradeguard.metrics import render
from tradeguard.server.context import ServiceDep
from tradeguard.server.dependencies import ProblemError, identity

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(svc: ServiceDep) -> JSONResponse:
    """The database, the secrets backend and Redis (when configured) answer."""
    checks: dict[str, Any] = {}
    checks["database"] = _probe(lambda: _select_one(svc))
    checks["secrets"] = _probe(lambda: svc.secrets.list_secrets("tradeguard/readyz/"))
    if svc.settings.redis_url is not None:
        checks["redis"] = _probe(lambda: _ping_redis(svc))
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics, for a scraper on loopback or an administrator's token."""
    who = identity(request)  # the client's address, through trusted proxies
    if not _loopback(who.ip) and (
        who.claims is None or Permission.USERS_MANAGE not in who.claims.permissions
    ):
        raise ProblemError(403, "FORBIDDEN", "metrics are for loopback scrapers and administrators")
    return Response(render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _select_one(svc: Any) -> None:
    with svc.auth.store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_redis(svc: Any) -> None:
    from tradeguard.storage.redis_client import create_redis_client

    client = create_redis_client(svc.settings.redis_url.get_secret_value(), timeout=1.0)
    try:
        client.ping()
    finally:
        client.close()


def _probe(check: Any) -> str:
    try:
        check()
    except Exception as exc:  # a readiness probe reports, it does not raise
        return f"unavailable ({type(exc).__name__})"
    return "ok"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
