"""In-process tests of orders, risk, secrets and audit routes, and the RBAC table over all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from server_support import USER_PASSWORDS, Api, assert_problem, bearer

from tradeguard.auth.rbac import ROLE_PERMISSIONS, Role
from tradeguard.facade import get_auth_handler

ACCOUNT = {"account_value": "100000", "prices": {"BTC-USD": "100"}}


def order(quantity: str = "1", price: str = "100", **extra: Any) -> dict[str, Any]:
    """A CRYPTO limit order (that venue trades every day, so the calendar never interferes)."""
    return {
        "order": {"symbol": "BTC-USD", "side": "buy", "quantity": quantity, "order_type": "limit",
                  "limit_price": price, "venue": "CRYPTO", **extra},
        "account": ACCOUNT,
    }  # fmt: skip


# (method, path, permission, JSON body); every /v1 route outside /v1/auth
ROUTES: list[tuple[str, str, str, Any]] = [
    ("POST", "/v1/orders/check", "orders:submit", order()),
    ("POST", "/v1/orders/o-1/fill", "orders:submit", {"quantity": "1", "price": "100"}),
    ("POST", "/v1/orders/o-1/cancel", "orders:cancel", None),
    ("GET", "/v1/risk/state", "risk:view", None),
    ("PUT", "/v1/risk/limits", "risk:configure", {}),
    ("POST", "/v1/risk/kill-switch", "killswitch:engage", {"reason": "drill"}),
    ("DELETE", "/v1/risk/kill-switch", "killswitch:release", None),
    ("GET", "/v1/secrets", "secrets:read", None),
    ("GET", "/v1/secrets/app/db", "secrets:read", None),
    ("PUT", "/v1/secrets/app/db", "secrets:write", {"data": {"password": "pw-1"}}),
    ("DELETE", "/v1/secrets/app/db", "secrets:write", None),
    ("GET", "/v1/users", "users:manage", None),
    ("POST", "/v1/users", "users:manage", {"username": "zed", "role": "VIEWER"}),
    ("GET", "/v1/users/zed", "users:manage", None),
    ("PATCH", "/v1/users/zed", "users:manage", {"role": "TRADER"}),
    ("POST", "/v1/users/zed/unlock", "users:manage", None),
    ("POST", "/v1/users/zed/mfa/reset", "users:manage", None),
    ("POST", "/v1/users/zed/password", "users:manage", {}),
    ("DELETE", "/v1/users/zed", "users:manage", None),
    ("GET", "/v1/audit", "audit:read", None),
    ("GET", "/v1/audit/verify", "audit:read", None),
]


def _template(path: str) -> str:
    parts = path.split("/")  # "", "v1", group, ...
    if parts[2] == "secrets" and len(parts) > 3:
        return "/v1/secrets/{path}"
    if parts[2] == "users" and len(parts) > 3:
        parts[3] = "{username}"
    if parts[2] == "orders" and len(parts) > 4:
        parts[3] = "{client_order_id}"
    return "/".join(parts)


def test_the_table_names_every_route(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if path.startswith("/v1/") and not path.startswith("/v1/auth/")
    }
    assert served == {(method, _template(path)) for method, path, _, _ in ROUTES}


@pytest.mark.parametrize("role", ["ADMIN", "TRADER", "VIEWER", "SERVICE"])
def test_rbac_table(
    api: Api, admin: dict[str, str], as_role: Callable[[str], dict[str, str]], role: str
) -> None:
    if role == "ADMIN":
        headers = admin
    elif role == "SERVICE":  # a service account, through its API key
        get_auth_handler().create_user("svc", USER_PASSWORDS["SERVICE"], role="SERVICE")
        headers = bearer(get_auth_handler().create_api_key("svc", name="t"))
    else:
        headers = as_role(role)
    held = {p.value for p in ROLE_PERMISSIONS[Role(role)]}
    for method, path, permission, body in ROUTES:
        response = api.client.request(method, path, headers=headers, json=body)
        assert response.status_code < 500, (method, path, response.text)
        if permission in held:
            assert response.status_code not in (401, 403), (method, path, response.text)
        else:
            problem = assert_problem(response, 403, "FORBIDDEN")
            assert permission in str(problem["detail"])


@pytest.mark.parametrize(("method", "path", "body"), [(m, p, b) for m, p, _, b in ROUTES])
def test_every_route_needs_a_valid_token(api: Api, method: str, path: str, body: Any) -> None:
    bare = api.client.request(method, path, json=body)
    assert_problem(bare, 401, "AUTHENTICATION_REQUIRED")
    assert bare.headers["www-authenticate"] == 'Bearer realm="tradeguard", error="invalid_request"'
    for header in ("Bearer not-a-jwt", "Bearer tg_0123456789abcdef_nope", "Basic YWRtaW46eA==",
                   "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."):  # fmt: skip
        bad = api.client.request(method, path, json=body, headers={"Authorization": header})
        assert_problem(bad, 401, "INVALID_TOKEN")
        assert bad.headers["www-authenticate"].startswith('Bearer realm="tradeguard"')


def test_order_checks_fills_and_cancels(api: Api, as_role: Callable[[str], dict[str, str]]) -> None:
    trader = as_role("TRADER")
    post = api.client.post
    approved = post("/v1/orders/check", headers=trader, json=order(client_order_id="a-1"))
    assert approved.json() == {"approved": True, "client_order_id": "a-1", "violations": []}
    rejected = post("/v1/orders/check", headers=trader, json=order("20000", "150")).json()
    assert rejected["approved"] is False
    codes = {v["code"] for v in rejected["violations"]}
    assert {"MAX_ORDER_QUANTITY", "MAX_ORDER_NOTIONAL", "PRICE_COLLAR"} <= codes
    assert all(isinstance(v["message"], str) and v["detail"] for v in rejected["violations"])
    fill = post("/v1/orders/a-1/fill", headers=trader, json={"quantity": "0.5", "price": "100"})
    assert fill.status_code == 204
    bad_fill = post("/v1/orders/a-1/fill", headers=trader, json={"quantity": "-1", "price": "1"})
    assert_problem(bad_fill, 422, "INVALID_FILL")
    assert post("/v1/orders/a-1/cancel", headers=trader).status_code == 204
    assert_problem(post("/v1/orders/a-1/cancel", headers=trader), 404, "ORDER_NOT_FOUND")
    assert_problem(post("/v1/orders/zz/fill", headers=trader, json={"quantity": 1, "price": 1}),
                   404, "ORDER_NOT_FOUND")  # fmt: skip
    unusable = post(
        "/v1/orders/check",
        headers=trader,
        json={"order": order()["order"], "account": {"account_value": "-5"}},
    )
    assert unusable.status_code == 200  # fmt: skip
    assert "RISK_STATE_UNAVAILABLE" in {v["code"] for v in unusable.json()["violations"]}
    malformed = post("/v1/orders/check", headers=trader, json={"order": {"symbol": "BTC-USD"},
                                                             "account": ACCOUNT})  # fmt: skip
    assert malformed.json()["approved"] is False
    assert_problem(post("/v1/orders/check", headers=trader, json={"order": {}}),
                   422, "INVALID_REQUEST")  # fmt: skip
    keyed = post("/v1/orders/check", headers=trader, json={"order": {}, "account": {
        "account_value": "1", "positions": {"my api secret 9f8e7d": [1]}}})  # fmt: skip
    problem = assert_problem(keyed, 422, "INVALID_REQUEST")
    assert "9f8e7d" not in keyed.text  # a JSON key is the caller's text too
    assert ["body", "account", "positions", "*", "int"] in [e["loc"] for e in problem["errors"]]
    state = api.client.get("/v1/risk/state", headers=trader).json()
    assert state["trading"]["state"] == "ACTIVE"


@pytest.mark.parametrize(
    "account",
    [
        {"account_value": "1e99999999"},
        {"account_value": "100000", "realized_pnl_today": "1e99999999"},
        {"account_value": "100000", "unrealized_pnl": "-1e99999999"},
        {"account_value": "100000", "positions": {"BTC-USD": "1e99999999"}},
    ],
)
def test_an_account_beyond_decimal_range_is_refused_not_a_crash(
    api: Api, as_role: Callable[[str], dict[str, str]], account: dict[str, Any]
) -> None:
    checked = api.client.post("/v1/orders/check", headers=as_role("TRADER"),
                              json={"order": order()["order"], "account": account})  # fmt: skip
    assert checked.status_code == 200, checked.text
    assert [v["code"] for v in checked.json()["violations"]] == ["RISK_STATE_UNAVAILABLE"]


def test_limits_and_kill_switch(
    api: Api, admin: dict[str, str], as_role: Callable[[str], dict[str, str]]
) -> None:
    trader = as_role("TRADER")
    limits = {"restricted_symbols": ["BTC-USD"], "max_order_quantity": 5}
    assert api.client.put("/v1/risk/limits", headers=admin, json=limits).json() == {"applied": True}
    codes = {v["code"] for v in api.client.post("/v1/orders/check", headers=trader,
                                                 json=order("6")).json()["violations"]}  # fmt: skip
    assert {"RESTRICTED_SYMBOL", "MAX_ORDER_QUANTITY"} <= codes
    for bad in ({"no_such_limit": 1}, {"max_order_quantity": "lots"}, {"order_rate": "x"}):
        assert_problem(api.client.put("/v1/risk/limits", headers=admin, json=bad),
                       422, "INVALID_CONFIGURATION")  # fmt: skip
    assert api.client.put("/v1/risk/limits", headers=admin, json={}).status_code == 200
    engaged = api.client.post("/v1/risk/kill-switch", headers=trader, json={"reason": "drill"})
    assert engaged.json()["state"] == "HALTED" and engaged.json()["actor"] == "trader1"
    halted = api.client.post("/v1/orders/check", headers=trader, json=order()).json()
    assert "KILL_SWITCH" in {v["code"] for v in halted["violations"]}
    assert_problem(api.client.post("/v1/risk/kill-switch", headers=trader, json={"reason": ""}),
                   422, "INVALID_REQUEST")  # fmt: skip
    released = api.client.delete("/v1/risk/kill-switch", headers=admin)
    assert released.json()["state"] == "ACTIVE"
    assert api.client.post("/v1/orders/check", headers=trader, json=order()).json()["approved"]


def test_secrets_values_only_for_secrets_read(
    api: Api, admin: dict[str, str], as_role: Callable[[str], dict[str, str]]
) -> None:
    value = "sk-live-4c0ffee-very-secret"
    put = api.client.put("/v1/secrets/exchange/binance", headers=admin,
                         json={"data": {"api_secret": value}})  # fmt: skip
    assert put.json() == {"path": "exchange/binance", "version": 1}
    listed = api.client.get("/v1/secrets", params={"prefix": "exchange/"}, headers=admin)
    assert listed.json() == {"paths": ["exchange/binance"]} and value not in listed.text
    got = api.client.get("/v1/secrets/exchange/binance", headers=admin).json()
    assert got == {"path": "exchange/binance", "data": {"api_secret": value}, "version": 1}
    get_auth_handler().create_user("svc", USER_PASSWORDS["SERVICE"], role="SERVICE")
    service = bearer(get_auth_handler().create_api_key("svc", name="t"))
    assert api.client.get("/v1/secrets/exchange/binance", headers=service).json()["data"] == {
        "api_secret": value
    }
    for role in ("TRADER", "VIEWER"):
        denied = api.client.get("/v1/secrets/exchange/binance", headers=as_role(role))
        assert_problem(denied, 403, "FORBIDDEN")
        assert value not in denied.text
    assert_problem(api.client.put("/v1/secrets/exchange/binance", headers=service,
                                  json={"data": {"k": "v"}}), 403, "FORBIDDEN")  # fmt: skip
    conflict = api.client.put("/v1/secrets/exchange/binance", headers=admin,
                              json={"data": {"api_secret": "two"}, "cas": 0})  # fmt: skip
    assert_problem(conflict, 409, "VERSION_CONFLICT")
    second = api.client.put("/v1/secrets/exchange/binance", headers=admin,
                            json={"data": {"api_secret": "two"}, "cas": 1})  # fmt: skip
    assert second.json()["version"] == 2
    old = api.client.get("/v1/secrets/exchange/binance", params={"version": 1}, headers=admin)
    assert old.json()["data"] == {"api_secret": value}
    assert api.client.delete("/v1/secrets/exchange/binance", headers=admin).status_code == 204
    assert_problem(api.client.get("/v1/secrets/nothing/here", headers=admin),
                   404, "SECRET_NOT_FOUND")  # fmt: skip
    assert_problem(api.client.delete("/v1/secrets/nothing/here", headers=admin),
                   404, "SECRET_NOT_FOUND")  # fmt: skip
    assert_problem(api.client.put("/v1/secrets/a/b", headers=admin, json={"data": {}}),
                   422, "INVALID_REQUEST")  # fmt: skip


def test_audit_query_and_verify(
    api: Api, admin: dict[str, str], as_role: Callable[[str], dict[str, str]]
) -> None:
    as_role("TRADER")
    verify = api.client.get("/v1/audit/verify", headers=admin).json()
    assert verify["ok"] is True and verify["first_bad"] is None and verify["checked"] > 0
    records = api.client.get("/v1/audit", params={"limit": 10000}, headers=admin).json()["records"]
    types = {r["type"] for r in records}
    assert {"auth.user_created", "auth.password_changed", "auth.mfa_enabled",
            "auth.login_succeeded"} <= types  # fmt: skip
    logins = api.client.get("/v1/audit", params={"type": "auth.login*"}, headers=admin)
    assert {r["type"] for r in logins.json()["records"]} <= {
        "auth.login_succeeded",
        "auth.login_failed",
        "auth.login_mfa_required",
    }
    last = max(r["seq"] for r in records)
    after = api.client.get("/v1/audit", params={"after_seq": last}, headers=admin).json()
    assert after["records"] == []
    assert_problem(api.client.get("/v1/audit", params={"limit": 0}, headers=admin),
                   422, "INVALID_REQUEST")  # fmt: skip
    assert_problem(api.client.get("/v1/audit", params={"since": "yesterday"}, headers=admin),
                   422, "INVALID_REQUEST")  # fmt: skip
