"""Schemathesis against the service's own OpenAPI schema (/openapi.json), authenticated.

Every generated request goes through the whole guard and the route. Whatever the input,
the service never answers 5xx, every answer carries the security headers and a request id,
errors are problem+json, and no password, token, key or secret value is in any body.

The runs are meaningful, not just green: each request is checked not to have been
throttled (429 RATE_LIMITED), banned (403 IP_BANNED) or refused because the caller's own
session ended (401 INVALID_TOKEN, the first-run 403 gates). Rate limits are the real
limiter, per identity and per IP, with generous windows (``hostile_support.RATE_LIMITS``).
Requests come from loopback, which the real ban policy never bans (its allow list): the
fuzzer deliberately sends injection-like strings that would ban any other address within
ten requests. Bans themselves are covered in test_hostile.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hostile_support import (
    FUZZ_ADMIN,
    LOOPBACK,
    SECRET_VALUE,
    TRADER,
    TRADER_PASSWORD,
    Deployment,
    assert_clean,
    deploy,
)
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi

pytestmark = pytest.mark.slow

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# What a refusal may never be in these runs (see the module docstring).
MEANINGLESS = {"RATE_LIMITED", "IP_BANNED", "PASSWORD_CHANGE_REQUIRED", "MFA_ENROLMENT_REQUIRED"}


@pytest.fixture
def deployment(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    yield deploy(isolated_home, monkeypatch.setenv)
    schemathesis_asgi.shutdown_lifespans()  # the runner keeps the app's lifespan open


@pytest.fixture
def api_schema(deployment: Deployment) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", deployment.app)


@pytest.fixture
def from_loopback(deployment: Deployment) -> Callable[..., Any]:
    """The app as a loopback peer reaches it (Schemathesis's own client has no address)."""
    app = deployment.app

    async def peer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": LOOPBACK}
        await app(scope, receive, send)

    return peer


def exchange(case: Any, dep: Deployment, app: Any, headers: dict[str, str]) -> None:
    """Send ``case``; assert no 5xx, a clean answer, and a run that still means something."""
    response = case.call_and_validate(headers=headers, checks=[not_a_server_error], app=app)
    served = case.operation.method.upper() == "GET" and case.operation.path.startswith(
        "/v1/secrets/"
    )  # a reader is served a secret's value: that is the route's job
    secrets = [s for s in dep.secrets if not (served and s == SECRET_VALUE)]
    heads = {name: values[0] for name, values in response.headers.items() if values}
    assert_clean(response.status_code, heads, response.content, secrets)
    if response.status_code >= 400:
        code = response.json()["code"]
        assert code not in MEANINGLESS, (case.operation.label, code)
        if code == "INVALID_TOKEN":  # a refresh token the fuzzer made up is fine
            assert case.operation.path == "/v1/auth/refresh", case.operation.label


schema = schemathesis.pytest.from_fixture("api_schema")
# Logging out and changing one's own password end the caller's session (the password change
# ends every session of the user), after which the rest of the run would only measure 401s.
# They run in test_session_ending_operations instead, each case with a session of its own.
SESSION_ENDING = "^/v1/auth/(logout|password)$"


@BOUNDED
@schema.exclude(path_regex=SESSION_ENDING).parametrize()
def test_admin_gets_no_server_error(
    case: Any, deployment: Deployment, from_loopback: Callable[..., Any]
) -> None:
    """An administrator past first run (password changed, MFA on): every route is reachable.

    The administrator is a second one (``opsroot``), so that the fuzzer, which also tries
    constants found in the app such as the bootstrap name ``admin``, may reset, disable or
    delete ``admin`` without ending the session it runs under.
    """
    exchange(case, deployment, from_loopback, deployment.bearer(FUZZ_ADMIN))


@BOUNDED
@schema.exclude(path_regex=SESSION_ENDING).parametrize()
def test_trader_gets_no_server_error(
    case: Any, deployment: Deployment, from_loopback: Callable[..., Any]
) -> None:
    """A TRADER: orders and risk routes answer, administrative ones refuse with 403."""
    exchange(case, deployment, from_loopback, deployment.bearer(TRADER))


@BOUNDED
@schema.include(path_regex=SESSION_ENDING).parametrize()
def test_session_ending_operations(
    case: Any, deployment: Deployment, from_loopback: Callable[..., Any]
) -> None:
    """Logout and password change, each generated case under a fresh TRADER session."""
    token = deployment.login(TRADER, TRADER_PASSWORD)["access_token"]
    exchange(case, deployment, from_loopback, {"Authorization": f"Bearer {token}"})
