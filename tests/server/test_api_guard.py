"""The guard in front of every route, in its order, and the ops endpoints.

Order: IP ban → body size (before the body is read) → rate limit per identity and per IP →
inspection of path, query and JSON → authentication → permission.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from server_support import (
    LOOPBACK,
    SECURITY_HEADERS,
    USER_PASSWORDS,
    Api,
    TestClient,
    assert_problem,
    bearer,
)

from tradeguard.facade import get_auth_handler, get_validator

OUTSIDE = ("203.0.113.5", 1)
INJECTION = "x' OR '1'='1' --"


def test_banned_address_is_refused_before_anything(make_app: Callable[..., Any]) -> None:
    app = make_app()
    get_validator().ban(OUTSIDE[0], 600)
    with TestClient(app, client=OUTSIDE) as client:
        for response in (
            client.get("/healthz"),
            client.get("/v1/users", params={"q": INJECTION}),  # would be 400, then 401
            client.post("/v1/auth/login", content=b"{" * 10, headers={"content-type": "text/x"}),
        ):
            assert_problem(response, 403, "IP_BANNED")
            assert int(response.headers["retry-after"]) >= 1
    with TestClient(app, client=LOOPBACK) as client:  # a spoofed X-Forwarded-For is ignored
        ok = client.get("/healthz", headers={"X-Forwarded-For": OUTSIDE[0]})
        assert ok.status_code == 200


def test_repeated_violations_ban_the_address(make_app: Callable[..., Any]) -> None:
    with TestClient(make_app(), client=("198.51.100.77", 1)) as client:
        statuses = [client.get("/v1/audit", params={"actor": INJECTION}).status_code
                    for _ in range(11)]  # fmt: skip
        assert statuses[0] == 400 and statuses[-1] == 403
        assert_problem(client.get("/healthz"), 403, "IP_BANNED")


def _call(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[Any, int]:
    """Send one raw ASGI request; the response status and how many body chunks were read."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/auth/login", "raw_path": b"/v1/auth/login",
        "query_string": b"", "root_path": "", "headers": headers, "client": LOOPBACK,
        "server": ("testserver", 80),
    }  # fmt: skip
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        if read <= len(chunks):
            return {"type": "http.request", "body": chunks[read - 1],
                    "more_body": read < len(chunks)}  # fmt: skip
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent[0], read


def test_oversized_body_is_refused_before_it_is_read(make_app: Callable[..., Any]) -> None:
    app = make_app()
    declared = [(b"content-type", b"application/json"), (b"content-length", b"2000000000")]
    start, read = _call(app, declared, [b"{}"])
    assert (start["status"], read) == (413, 0)
    headers = dict(start["headers"])
    assert headers[b"connection"] == b"close" and b"x-request-id" in headers
    undeclared = [(b"content-type", b"application/json")]  # chunked: counted while streaming
    start, read = _call(app, undeclared, [b" " * 512 * 1024] * 8)
    assert start["status"] == 413 and read < 8
    start, _ = _call(app, [(b"content-length", b"ten")], [b"{}"])
    assert start["status"] == 400


def test_rate_limit_per_address_and_per_identity(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text('[limits]\napi_requests = "3/minute"\n')
    app = make_app(TRADEGUARD_RATE_LIMITS=str(limits))
    handler = get_auth_handler()
    handler.create_user("trader1", USER_PASSWORDS["TRADER"], role="TRADER")
    token = bearer(handler.authenticate("trader1", USER_PASSWORDS["TRADER"]).access_token)
    with TestClient(app, client=LOOPBACK) as here, TestClient(app, client=OUTSIDE) as there:
        for _ in range(3):
            assert here.get("/v1/risk/state", headers=token).status_code == 200
        for response in (
            here.get("/healthz"),
            here.get("/v1/audit", params={"actor": INJECTION}),  # 429 comes before 400
            here.get("/v1/users"),  # ... and before 401
        ):
            assert_problem(response, 429, "RATE_LIMITED")
            assert int(response.headers["retry-after"]) >= 1
        # another address: its own bucket, but the user's bucket is spent too
        assert_problem(there.get("/v1/risk/state", headers=token), 429, "RATE_LIMITED")
        assert there.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("POST", "/v1/users", {"json": {"username": INJECTION, "role": "VIEWER"}}, "username"),
        ("POST", "/v1/risk/kill-switch", {"json": {"reason": "<script>alert(1)</script>"}},
         "reason"),
        ("GET", "/v1/audit", {"params": {"actor": "admin'; DROP TABLE users; --"}}, "actor"),
        ("POST", "/v1/orders/check",
         {"json": {"order": {"symbol": "BTC$(rm -rf /)"}, "account": {}}}, "order.symbol"),
    ],
)  # fmt: skip
def test_injection_is_refused_naming_the_field_before_authentication(
    api: Api, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    response = api.client.request(method, path, **kwargs)
    problem = assert_problem(response, 400, "THREAT_DETECTED")
    assert str(problem["field"]).endswith(field)
    assert problem["threats"]
    for fragment in ("OR '1'", "<script>", "DROP TABLE", "rm -rf"):
        assert fragment not in response.text


def test_credentials_and_secret_values_are_not_inspected(api: Api, admin: dict[str, str]) -> None:
    odd = "it's <b>'; DROP TABLE x; -- $(whoami)"
    login = api.login("admin", odd)
    assert_problem(login, 401, "INVALID_CREDENTIALS")  # judged as a password, not a threat
    stored = api.client.put("/v1/secrets/db/main", headers=admin, json={"data": {"dsn": odd}})
    assert stored.status_code == 200
    got = api.client.get("/v1/secrets/db/main", headers=admin).json()["data"]
    assert got == {"dsn": odd}
    # the key of a secret's data is no credential: it is inspected
    keyed = api.client.put("/v1/secrets/db/main", headers=admin, json={"data": {odd: "v"}})
    assert_problem(keyed, 400, "THREAT_DETECTED")


def test_malformed_and_non_json_bodies(api: Api) -> None:
    post = api.client.post
    as_json = {"content-type": "application/json"}
    bad = post("/v1/auth/login", content=b'{"username": ', headers=as_json)
    assert_problem(bad, 400, "MALFORMED_JSON")
    xml = post("/v1/auth/login", content=b"<a/>", headers={"content-type": "application/xml"})
    assert_problem(xml, 415, "UNSUPPORTED_CONTENT_TYPE")
    deep = post("/v1/auth/login", content=b"[" * 100 + b"]" * 100, headers=as_json)
    assert_problem(deep, 400, "JSON_TOO_DEEP")


def test_every_response_has_security_headers_and_a_request_id(
    api: Api, admin: dict[str, str]
) -> None:
    def boom() -> None:
        raise RuntimeError("internal detail 5ca1ab1e")

    api.client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    responses = [
        api.client.get("/healthz"), api.client.get("/v1/users", headers=admin),
        api.client.get("/v1/users"), api.client.get("/nowhere"),
        api.client.delete("/healthz"), api.client.get("/boom"),
    ]  # fmt: skip
    assert [r.status_code for r in responses] == [200, 200, 401, 404, 405, 500]
    ids = set()
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
        assert "strict-transport-security" not in response.headers  # plain HTTP
        ids.add(response.headers["x-request-id"])
    assert len(ids) == len(responses)
    assert_problem(responses[3], 404, "NOT_FOUND")
    assert_problem(responses[4], 405, "METHOD_NOT_ALLOWED")
    crash = assert_problem(responses[5], 500, "INTERNAL_ERROR")
    assert "5ca1ab1e" not in responses[5].text and "Traceback" not in str(crash)
    with TestClient(api.client.app, base_url="https://testserver", client=LOOPBACK) as tls:
        assert tls.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_metrics_for_loopback_or_administrators(
    api: Api, admin: dict[str, str], as_role: Callable[[str], dict[str, str]]
) -> None:
    local = api.client.get("/metrics")
    assert local.status_code == 200 and local.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in local.text
    with TestClient(api.client.app, client=OUTSIDE) as remote:
        assert_problem(remote.get("/metrics"), 403, "FORBIDDEN")
        assert_problem(remote.get("/metrics", headers=as_role("TRADER")), 403, "FORBIDDEN")
        assert remote.get("/metrics", headers=admin).status_code == 200


def test_metrics_through_a_trusted_proxy_judge_the_real_client(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(TRADEGUARD_TRUSTED_PROXIES='["127.0.0.1/32"]')
    with TestClient(app, client=LOOPBACK) as proxied:  # a reverse proxy on the same host
        assert proxied.get("/metrics").status_code == 200  # the proxy's own scraper
        forwarded = proxied.get("/metrics", headers={"X-Forwarded-For": OUTSIDE[0]})
        assert_problem(forwarded, 403, "FORBIDDEN")


def test_health_readiness_keys_and_schema(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "secrets": "ok"}}
    keys = api.client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["kid"] and "d" not in k for k in keys)
    schema = api.client.get("/openapi.json").json()
    assert schema["info"]["title"] == "tradeguard"
    assert {"/v1/orders/check", "/v1/auth/login", "/v1/audit/verify"} <= set(schema["paths"])
    assert api.client.get("/docs").status_code == 404
