"""What the hostile tests send: injections placed in each field, malformed bodies, the
names of the forged tokens (built in hostile_support.forged_tokens)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

MIB = 1024 * 1024
INJECTIONS = {
    "sqli": "x' OR '1'='1' --",
    "xss": "<script>alert(document.cookie)</script>",
    "traversal": "../../../../etc/passwd",
    "cmdi": "AAPL; cat /etc/shadow",
}
ORDER = {"symbol": "AAPL", "side": "buy", "quantity": 10, "order_type": "limit",
         "limit_price": "101.5", "venue": "XNYS", "client_order_id": "c-1",
         "account_id": "acct-1", "strategy_id": "momo", "time_in_force": "day"}  # fmt: skip
ACCOUNT = {"account_value": 100000, "cash": 50000, "prices": {"AAPL": 101}}


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


J = "application/json"
MALFORMED = {  # name: (body, content type, status, code)
    "truncated": (b'{"order": {"symbol": "AAPL"', J, 400, "MALFORMED_JSON"),
    "not-json": (b"order=AAPL&side=buy&&&", J, 400, "MALFORMED_JSON"),
    "trailing": (b'{"order": {}} {"order": {}}', J, 400, "MALFORMED_JSON"),
    "deep-33-arrays": (b"[" * 33 + b"]" * 33, J, 400, "JSON_TOO_DEEP"),
    "deep-40-objects": (nested(40), J, 400, "JSON_TOO_DEEP"),
    "deep-100000": (b"[" * 100_000, J, 400, "JSON_TOO_DEEP"),
    "many-keys": (json.dumps({f"k{i}": i for i in range(1001)}).encode(), J, 400,
                  "JSON_TOO_MANY_KEYS"),
    "duplicate-key": (b'{"order": {}, "account": {}, "order": {}}', J, 400,
                      "JSON_DUPLICATE_KEY"),
    "nan": (b'{"order": {"quantity": NaN}, "account": {}}', J, 400, "MALFORMED_JSON"),
    "infinity": (b'{"order": {}, "account": {"cash": -Infinity}}', J, 400, "MALFORMED_JSON"),
    "huge-int": (b'{"order": {"quantity": ' + b"9" * 5000 + b"}}", J, 400, "MALFORMED_JSON"),
    "latin-1": ('{"order": {"symbol": "ÄPFEL"}}'.encode("latin-1"), J, 400,
                "INVALID_ENCODING"),
    "lone-surrogate": (b'{"order": {"symbol": "\xed\xa0\x80"}}', J, 400, "INVALID_ENCODING"),
    "text-plain": (json.dumps({"order": ORDER}).encode(), "text/plain", 415,
                   "UNSUPPORTED_CONTENT_TYPE"),
    "xml": (b"<order/>", "application/xml", 415, "UNSUPPORTED_CONTENT_TYPE"),
    "no-type": (json.dumps({"order": ORDER}).encode(), None, 415, "UNSUPPORTED_CONTENT_TYPE"),
}  # fmt: skip


def placed(where: str, payload: str) -> tuple[str, str, dict[str, Any] | None, str]:
    """(method, url, json, the field the refusal must name) with ``payload`` at ``where``."""
    order_check = {"order": dict(ORDER), "account": dict(ACCOUNT)}
    if where == "account.prices (key)":
        order_check["account"]["prices"] = {payload: 100}
        return "POST", "/v1/orders/check", order_check, "account.prices.* (key)"
    if where.startswith(("order.", "account.")):
        part, name = where.split(".", 1)
        order_check[part][name] = payload
        return "POST", "/v1/orders/check", order_check, where
    table: dict[str, tuple[str, str, dict[str, Any] | None, str]] = {
        "login.username": ("POST", "/v1/auth/login",
                           {"username": payload, "password": "whatever-it-is"}, "username"),
        "users.username": ("POST", "/v1/users", {"username": payload, "role": "VIEWER"},
                           "username"),
        "users.role": ("POST", "/v1/users", {"username": "newbie", "role": payload}, "role"),
        "users.display_name": ("POST", "/v1/users", {"username": "newbie", "role": "VIEWER",
                               "display_name": payload}, "display_name"),
        "kill_switch.reason": ("POST", "/v1/risk/kill-switch", {"reason": payload}, "reason"),
        "secret.key": ("PUT", "/v1/secrets/app/one", {"data": {payload: "v"}}, "data.* (key)"),
        "url.secret_path": ("GET", "/v1/secrets/" + quote(payload, safe="/"), None, "path"),
        "url.username": ("GET", "/v1/users/" + quote(payload, safe=""), None, "path"),
        "url.client_order_id": ("POST", f"/v1/orders/{quote(payload, safe='')}/cancel", None,
                                "path"),
        "query.actor": ("GET", "/v1/audit?" + urlencode({"actor": payload}), None,
                        "query.actor"),
        "query.prefix": ("GET", "/v1/secrets?" + urlencode({"prefix": payload}), None,
                         "query.prefix"),
        "query.name": ("GET", "/v1/audit?" + urlencode({payload: payload}), None, "query.*"),
    }  # fmt: skip
    return table[where]


FIELDS = [
    *(f"order.{name}" for name in ORDER if name not in ("quantity",)),
    "account.account_value", "account.prices (key)", "login.username", "users.username",
    "users.role", "users.display_name", "kill_switch.reason", "secret.key",
    "url.secret_path", "url.username", "url.client_order_id", "query.actor",
    "query.prefix", "query.name",
]  # fmt: skip


TOKEN_CASES = [
    "alg-none", "alg-None-admin", "hs256-with-public-pem", "hs256-with-jwk-x", "expired",
    "not-yet-valid", "wrong-audience", "wrong-issuer", "refresh-type", "escalated-role",
    "unknown-kid", "attacker-jku", "kid-traversal", "truncated-signature", "garbage", "dots",
    "bad-base64", "json-array-header", "huge", "api-key-empty", "api-key-short",
    "api-key-no-secret", "api-key-shaped", "api-key-long", "api-key-flipped",
    "api-key-traversal",
]  # fmt: skip
