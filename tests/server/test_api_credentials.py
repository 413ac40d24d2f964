"""How the guard treats credentials before the routes: cost and bans."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_support import TestClient, assert_problem, bearer

from tradeguard.errors import TokenExpired
from tradeguard.facade import get_auth_handler, get_validator

OUTSIDE = ("203.0.113.9", 1)


def test_forged_tokens_over_the_ip_limit_cost_no_validation(
    make_app: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text('[limits]\napi_requests = "3/minute"\n')
    app = make_app(TRADEGUARD_RATE_LIMITS=str(limits))
    handler = get_auth_handler()
    validated: list[str] = []
    real = handler.validate_token

    def counting(token: str) -> Any:
        validated.append(token)
        return real(token)

    monkeypatch.setattr(handler, "validate_token", counting)
    with TestClient(app, client=OUTSIDE) as client:
        answers = [client.get("/v1/risk/state", headers=bearer(f"forged.{i}.x")) for i in range(6)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429, 429]
    assert len(validated) == 3  # the refused requests never reached a signature check


def test_expired_tokens_do_not_count_toward_a_ban(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    handler = get_auth_handler()

    def expired(token: str) -> Any:
        raise TokenExpired("the token has expired")

    monkeypatch.setattr(handler, "validate_token", expired)
    with TestClient(app, client=OUTSIDE) as client:
        for _ in range(15):
            assert_problem(client.get("/v1/risk/state", headers=bearer("stale")), 401,
                           "INVALID_TOKEN")  # fmt: skip
    assert get_validator().is_blocked(OUTSIDE[0]) is None


def test_forged_tokens_count_toward_a_ban(make_app: Callable[..., Any]) -> None:
    with TestClient(make_app(), client=OUTSIDE) as client:
        statuses = [client.get("/v1/risk/state", headers=bearer(f"forged.{i}.x")).status_code
                    for i in range(11)]  # fmt: skip
    assert statuses[:10] == [401] * 10 and statuses[10] == 403
    assert get_validator().is_blocked(OUTSIDE[0]) is not None


def test_identity_when_printed_then_the_parsed_body_is_not_shown(
    make_app: Callable[..., Any],
) -> None:
    from tradeguard.server.screen import Screen

    make_app()
    screen = Screen(get_validator(), get_auth_handler())
    body = b'{"username": "ada", "password": "hunter2 is my passphrase 4411"}'
    json_type = {"content-type": "application/json"}
    who, refusal = screen.after_body("POST", "/v1/auth/login", "", json_type, body, "127.0.0.1")
    assert refusal is None and who.json["password"].startswith("hunter2")
    assert "hunter2" not in repr(who)
    forged, _ = screen.after_body("GET", "/v1/risk/state", "", {"authorization": "Bearer x.y.z"},
                                  b"", "127.0.0.1")  # fmt: skip
    assert forged.claims is None and forged.credential is not None
    assert "x.y.z" not in repr(forged)
