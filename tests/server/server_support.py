"""Helpers for the service tests: the TestClient import, passwords, an API wrapper.

``fastapi.testclient`` warns at import time that starlette prefers ``httpx2``; the import
happens here once, under a filter for exactly that warning, so ``filterwarnings = error``
stays in force for everything else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette.testclient` is deprecated"
    )
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]

INITIAL_ADMIN_PASSWORD = "initial admin passphrase: violet orbit 7731 kettle"
ADMIN_PASSWORD = "renewed admin passphrase: amber glacier 9044 lantern"
USER_PASSWORDS = {
    "ADMIN": "second admin passphrase: cobalt meadow 5120 ferry",
    "TRADER": "trader passphrase: quiet harbour 2281 saffron",
    "VIEWER": "viewer passphrase: marble sparrow 6630 tundra",
    "SERVICE": "service passphrase: copper thistle 4419 orchard",
}
LOOPBACK = ("127.0.0.1", 50000)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """A TestClient over a bootstrapped service, with shortcuts for common steps."""

    client: TestClient

    def login(self, username: str, password: str, mfa_code: str | None = None) -> Any:
        body = {"username": username, "password": password}
        if mfa_code is not None:
            body["mfa_code"] = mfa_code
        return self.client.post("/v1/auth/login", json=body)

    def token(self, username: str, password: str, mfa_code: str | None = None) -> str:
        response = self.login(username, password, mfa_code)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def headers(self, username: str, password: str, mfa_code: str | None = None) -> dict[str, str]:
        return bearer(self.token(username, password, mfa_code))


PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    """``response`` is an RFC 9457 problem with this status and code."""
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    return body


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
"""Headers every response carries (a subset of the middleware's list, pinned by value)."""
