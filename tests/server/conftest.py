"""Fixtures for the service tests: an in-process app over the isolated home."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from server_support import (
    ADMIN_PASSWORD,
    INITIAL_ADMIN_PASSWORD,
    LOOPBACK,
    USER_PASSWORDS,
    Api,
    TestClient,
)

from tradeguard.facade import get_auth_handler
from tradeguard.server.app import create_app
from tradeguard.server.bootstrap import bootstrap


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Bootstrap the isolated home (admin password from the environment) and build the app."""

    def build(**env: str) -> Any:
        monkeypatch.setenv("TRADEGUARD_ADMIN_PASSWORD", INITIAL_ADMIN_PASSWORD)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        bootstrap()
        return create_app()

    return build


@pytest.fixture
def api(make_app: Callable[..., Any]) -> Iterator[Api]:
    """A loopback client over a freshly bootstrapped service."""
    with TestClient(make_app(), client=LOOPBACK) as client:
        yield Api(client)


@pytest.fixture
def admin(api: Api) -> dict[str, str]:
    """Headers of the first admin after the password change and MFA enrolment."""
    first = api.headers("admin", INITIAL_ADMIN_PASSWORD)
    changed = api.client.post(
        "/v1/auth/password",
        headers=first,
        json={"old_password": INITIAL_ADMIN_PASSWORD, "new_password": ADMIN_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    headers = api.headers("admin", ADMIN_PASSWORD)
    enrolment = api.client.post("/v1/auth/mfa/enroll", headers=headers)
    assert enrolment.status_code == 200, enrolment.text
    code = pyotp.TOTP(enrolment.json()["secret"]).now()
    confirmed = api.client.post("/v1/auth/mfa/confirm", headers=headers, json={"code": code})
    assert confirmed.status_code == 204, confirmed.text
    return headers


@pytest.fixture
def as_role(api: Api, admin: dict[str, str]) -> Callable[[str], dict[str, str]]:
    """Headers of a fresh user with the given role (created through the handler).

    An ADMIN made this way has no MFA, so the account gate answers 403 for it; ask for
    ``"ADMIN"`` only to test that, and use the ``admin`` fixture otherwise.
    """
    made: dict[str, dict[str, str]] = {}

    def headers(role: str) -> dict[str, str]:
        if role not in made:
            name = f"{role.lower()}1"
            get_auth_handler().create_user(name, USER_PASSWORDS[role], role=role)
            made[role] = api.headers(name, USER_PASSWORDS[role])
        return made[role]

    return headers
