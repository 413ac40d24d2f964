"""``create_app()``: the tradeguard service as a FastAPI app (``tradeguard serve`` runs it).

Versioned under ``/v1``, OpenAPI at ``/openapi.json``, errors as RFC 9457 problem+json.
Every request passes :class:`~tradeguard.server.middleware.GuardMiddleware` first.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from tradeguard import __version__
from tradeguard.auth import Claims
from tradeguard.clock import Clock
from tradeguard.facade import configure
from tradeguard.logs import configure_logging
from tradeguard.server import routes_admin, routes_auth, routes_ops, routes_risk
from tradeguard.server.context import Service
from tradeguard.server.dependencies import install_problem_handlers
from tradeguard.server.middleware import GuardMiddleware
from tradeguard.server.screen import Screen
from tradeguard.settings import Settings

PASSWORD_FIRST = (
    "PASSWORD_CHANGE_REQUIRED",
    "change your password first: POST /v1/auth/password, then log in again",
)
MFA_FIRST = (
    "MFA_ENROLMENT_REQUIRED",
    "administrators must enrol MFA first: POST /v1/auth/mfa/enroll, then /v1/auth/mfa/confirm",
)


LOG_LEVEL_VARIABLE = "TRADEGUARD_SERVE_LOG_LEVEL"
LOG_JSON_VARIABLE = "TRADEGUARD_SERVE_LOG_JSON"
GC_YOUNG_THRESHOLD = 7000  # CPython's default is 700


def serve_app() -> FastAPI:
    """The factory ``tradeguard serve`` gives uvicorn; every worker process calls it, so the
    logging chosen on the command line (passed in the environment) applies in each."""
    level = os.environ.get(LOG_LEVEL_VARIABLE)
    if level:
        as_json = {"1": True, "0": False}.get(os.environ.get(LOG_JSON_VARIABLE, ""))
        configure_logging(json=as_json, level=level)
    return create_app()


def serve_worker_app() -> FastAPI:
    """:func:`serve_app` in a process of its own (what ``tradeguard serve`` runs): what
    startup built (modules, the app, the facade's objects) lives for good, so it is moved
    out of the collector's sight, and the young generation may grow tenfold before a
    collection (a request allocates freely; the tracked orders that stay are what full
    collections then walk). Not for an app inside someone else's process."""
    app = serve_app()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    return app


class GuardedAPI(FastAPI):
    """FastAPI with :class:`GuardMiddleware` outside every layer of its own (the 500 handler,
    body limit and telemetry included): a request the guard refuses, or the hot route it
    answers itself, never enters them. The guard answers its own failures with a bare 500."""

    guard_options: dict[str, object]

    def build_middleware_stack(self) -> ASGIApp:
        return GuardMiddleware(super().build_middleware_stack(), **self.guard_options)  # type: ignore[arg-type]


def create_app(*, settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """The service over the facade's defaults (rebuilt from ``settings``/``clock`` if given)."""
    if settings is not None or clock is not None:
        configure(settings=settings, clock=clock)
    svc = Service()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if svc.audit is not None:
            svc.audit.flush()

    app = GuardedAPI(
        title="tradeguard", version=__version__, lifespan=lifespan,
        openapi_url="/openapi.json", docs_url=None, redoc_url=None,
        description="The security layer a trading bot runs behind: auth, secrets, "
        "pre-trade risk, audit. Errors are RFC 9457 problem documents.",
    )  # fmt: skip
    app.state.service = svc

    async def account_gate(claims: Claims) -> tuple[str, str] | None:
        gate = await svc.run(svc.gate, claims)
        if gate.must_change_password:
            return PASSWORD_FIRST
        if gate.must_enroll_mfa:
            return MFA_FIRST
        return None

    app.state.account_gate = account_gate
    install_problem_handlers(app)
    # the order check first: the router tries routes in order, and it is the hot one
    for module in (routes_risk, routes_auth, routes_admin, routes_ops):
        app.include_router(module.router)
    app.guard_options = {
        "screen": Screen(svc.validator, svc.auth), "inline": svc.inline,
        "hot_routes": {("POST", "/v1/orders/check"): routes_risk.check_order_fast},
    }  # fmt: skip
    return app
