"""Hostile HTTP against the service: oversized, malformed, deep and injected requests, forged
tokens, slow and concurrent clients. Never a 5xx, always problem+json with the security
headers, and nothing secret (passwords, tokens, key material, secret values) or injected in
any answer.

One service serves the whole module (bootstrapped once: argon2 and first run are not what is
under test here); wire-level behaviour runs against the same service under uvicorn on a free
port, with the guard's body timeout shortened to one second for the slow-client test.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hostile_payloads import (
    ACCOUNT,
    FIELDS,
    INJECTIONS,
    MALFORMED,
    MIB,
    ORDER,
    TOKEN_CASES,
    J,
    nested,
    placed,
)
from hostile_support import (
    SECRET_PATH,
    SECRET_VALUE,
    SERVICE,
    TRADER,
    Deployment,
    Prefixed,
    RawAnswer,
    TestClient,
    assert_clean,
    connect,
    deploy,
    forged_tokens,
    read_answer,
    request_head,
    running,
    with_body_timeout,
)

import tradeguard
from tradeguard.audit.key import AUDIT_KEY_PATH
from tradeguard.auth.keys import KEYRING_PATH
from tradeguard.server.app import create_app


@pytest.fixture(scope="module")
def module_env() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("TRADEGUARD_") or name == "VAULT_TOKEN":
                env.delenv(name)
        yield env


@pytest.fixture(scope="module")
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, module_env: pytest.MonkeyPatch
) -> Iterator[Path]:
    """One home for the module (overrides the per-test home of tests/conftest.py)."""
    home = tmp_path_factory.mktemp("hostile") / "home"
    module_env.setenv("TRADEGUARD_HOME", str(home))
    tradeguard.reset()
    yield home
    tradeguard.reset()


@pytest.fixture(scope="module")
def dep(isolated_home: Path, module_env: pytest.MonkeyPatch) -> Deployment:
    return deploy(isolated_home, module_env.setenv)


@pytest.fixture(scope="module")
def port(dep: Deployment) -> Iterator[int]:
    """The same service under uvicorn (body timeout: one second)."""
    with running(with_body_timeout(create_app(), 1.0)) as bound:
        yield bound


def clean(dep: Deployment, answer: Any, *also: str) -> Any:
    """Assert the answer is clean (see hostile_support.assert_clean); return it."""
    if isinstance(answer, RawAnswer):
        assert_clean(answer.status, answer.headers, answer.body, [*dep.secrets, *also])
    else:
        assert_clean(answer.status_code, answer.headers, answer.content, [*dep.secrets, *also])
    return answer


def refused(dep: Deployment, answer: Any, status: int, code: str, *also: str) -> dict[str, Any]:
    clean(dep, answer, *also)
    document = json.loads(answer.body if isinstance(answer, RawAnswer) else answer.content)
    assert (document["status"], document["code"]) == (status, code), document
    return dict(document)


# -- size --------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [b"", b"{"], ids=["no-body", "one-byte"])
def test_declared_oversized_body_is_refused_before_it_is_read(
    dep: Deployment, port: int, sent: bytes
) -> None:
    """Content-Length: 10 MiB and (almost) nothing sent: 413 comes back at once, and the
    connection closes. Had the server waited for the body, recv would time out instead."""
    head = {"Content-Type": "application/json", "Content-Length": str(10 * MIB),
            **dep.bearer(TRADER)}  # fmt: skip
    with connect(port) as sock:
        sock.sendall(request_head("POST", "/v1/orders/check", head) + sent)
        answer = read_answer(sock)
        refused(dep, answer, 413, "BODY_TOO_LARGE")
        assert answer.headers["connection"] == "close"
        assert sock.recv(1) == b""  # closed: nothing more is read or answered


def test_chunked_body_beyond_the_limit_is_refused(dep: Deployment, port: int) -> None:
    """No Content-Length: the guard counts while streaming and stops just past 1 MiB."""
    head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
            **dep.bearer(TRADER)}  # fmt: skip
    piece = b"0," * (32 * 1024)  # 64 KiB; never completed, never parsed
    with connect(port) as sock:
        sock.sendall(request_head("POST", "/v1/orders/check", head))
        for _ in range(16):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"1\r\n0\r\n")  # one byte past the limit; the body never ends
        refused(dep, read_answer(sock), 413, "BODY_TOO_LARGE")


def test_streamed_body_beyond_the_limit_in_process(dep: Deployment) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    refused(dep, post_order(dep, body()), 413, "BODY_TOO_LARGE")


# -- malformed bodies ----------------------------------------------------------------------


def post_order(dep: Deployment, body: Any, content_type: str | None = J) -> Any:
    headers = dep.bearer(TRADER) | ({"Content-Type": content_type} if content_type else {})
    return dep.client.post("/v1/orders/check", content=body, headers=headers)


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_bodies_are_refused(dep: Deployment, name: str) -> None:
    body, content_type, status, code = MALFORMED[name]
    refused(dep, post_order(dep, body, content_type), status, code)


def test_depth_32_is_still_accepted_as_json(dep: Deployment) -> None:
    """The depth limit is exact: 32 levels reach the route (which rejects the shape)."""
    refused(dep, post_order(dep, nested(32)), 422, "INVALID_REQUEST")


def test_non_finite_and_absurd_numbers_are_answered_not_crashed(dep: Deployment) -> None:
    """1e999 parses to infinity; strings like 'nan' reach the engine: refused, never a 500."""
    for order, account in (
        ({**ORDER, "limit_price": 1e999}, ACCOUNT),
        ({**ORDER, "quantity": "nan"}, ACCOUNT),
        (ORDER, {**ACCOUNT, "account_value": "1e999", "prices": {"AAPL": "-0"}}),
        ({**ORDER, "quantity": -(10**30)}, {**ACCOUNT, "positions": {"AAPL": 10**30}}),
    ):
        raw = json.dumps({"order": order, "account": account}, allow_nan=True).replace(
            "Infinity", "1e999"
        )
        answer = clean(dep, post_order(dep, raw))
        assert answer.status_code == 422 or answer.json()["approved"] is False


# -- injection -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(INJECTIONS))
@pytest.mark.parametrize("where", FIELDS)
def test_injection_in_every_field_is_refused_by_name(
    dep: Deployment, where: str, kind: str
) -> None:
    """400 THREAT_DETECTED naming the field (or ``*`` for a key), never the payload."""
    payload = INJECTIONS[kind]
    method, url, body, field = placed(where, payload)
    who = TRADER if url.startswith("/v1/orders") or "kill" in url else "admin"
    answer = dep.client.request(method, url, json=body, headers=dep.bearer(who))
    document = refused(dep, answer, 400, "THREAT_DETECTED", payload, quote(payload))
    assert document["field"] == field
    assert document["threats"]


def test_credentials_are_opaque_not_inspected(dep: Deployment) -> None:
    """A password is hashed, never interpolated: injection-shaped ones are just wrong."""
    body = {"username": TRADER, "password": INJECTIONS["sqli"]}
    refused(dep, dep.client.post("/v1/auth/login", json=body), 401, "INVALID_CREDENTIALS",
            INJECTIONS["sqli"])  # fmt: skip


def test_a_non_loopback_attacker_is_banned_and_forwarding_headers_do_not_help(
    dep: Deployment,
) -> None:
    attacker = TestClient(dep.app, client=("203.0.113.7", 40000))
    spoof = {"X-Forwarded-For": "127.0.0.1"}  # no trusted proxy: ignored
    statuses = []
    for _ in range(12):
        answer = attacker.get("/v1/audit", params={"actor": INJECTIONS["sqli"]}, headers=spoof)
        clean(dep, answer, INJECTIONS["sqli"])
        statuses.append(answer.status_code)
    assert statuses[0] == 400 and statuses[-1] == 403, statuses
    try:
        answer = attacker.get("/v1/risk/state", headers={**dep.bearer(TRADER), **spoof})
        refused(dep, answer, 403, "IP_BANNED")
        assert int(answer.headers["retry-after"]) > 0
    finally:
        dep.service.validator.unban("203.0.113.7")
    assert clean(dep, attacker.get("/v1/risk/state", headers=dep.bearer(TRADER))).status_code == 200


# -- bad and forged tokens -----------------------------------------------------------------


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_bad_and_forged_tokens_get_401_and_nothing_else(dep: Deployment, case: str) -> None:
    forged = forged_tokens(dep)
    assert sorted(forged) == sorted(TOKEN_CASES)
    token = forged[case]
    answer = dep.client.get("/v1/risk/state", headers={"Authorization": f"Bearer {token}"})
    document = refused(dep, answer, 401, "INVALID_TOKEN", token)
    assert answer.headers["www-authenticate"].startswith('Bearer realm="tradeguard"')
    assert document["detail"] == "the bearer token is missing, malformed, expired or revoked"
    assert set(document) == {"type", "title", "status", "code", "detail", "request_id"}


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", "Token abc.def.ghi", "Bearer a b c"],
)
def test_malformed_authorization_headers_get_401(dep: Deployment, authorization: str) -> None:
    answer = dep.client.get("/v1/risk/state", headers={"Authorization": authorization})
    refused(dep, answer, 401, "INVALID_TOKEN")
    assert "www-authenticate" in answer.headers


def test_a_header_beyond_the_header_limit_is_431_not_a_crash(dep: Deployment) -> None:
    token = "A" * 20_000
    answer = dep.client.get("/v1/risk/state", headers={"Authorization": f"Bearer {token}"})
    refused(dep, answer, 431, "HEADERS_TOO_LARGE", token)


def test_no_token_at_all_is_401_with_a_challenge(dep: Deployment) -> None:
    answer = dep.client.post("/v1/orders/check", json={"order": ORDER, "account": ACCOUNT})
    refused(dep, answer, 401, "AUTHENTICATION_REQUIRED")
    assert 'error="invalid_request"' in answer.headers["www-authenticate"]


# -- what the API never serves -------------------------------------------------------------


def test_the_service_own_keys_are_not_served(dep: Deployment) -> None:
    """Signing keys, the audit HMAC key and MFA seeds live under tradeguard/ in the same
    store; neither an administrator nor a SERVICE key with secrets:read gets them."""
    admin_id = dep.service.auth.get_user("admin").id
    internal = [KEYRING_PATH, AUDIT_KEY_PATH, f"tradeguard/auth/mfa/{admin_id}"]
    for who in ("admin", SERVICE):
        for path in internal:
            refused(dep, dep.client.get(f"/v1/secrets/{path}", headers=dep.bearer(who)), 403,
                    "RESERVED_SECRET_PATH")  # fmt: skip
        for prefix in ("", "tradeguard", "tradeguard/auth/"):
            answer = clean(dep, dep.client.get("/v1/secrets", params={"prefix": prefix},
                                               headers=dep.bearer(who)))  # fmt: skip
            assert not [p for p in answer.json()["paths"] if p.startswith("tradeguard")]
    for path in internal:
        body = {"data": {"k": "attacker-chosen"}}
        refused(dep, dep.client.put(f"/v1/secrets/{path}", json=body, headers=dep.bearer("admin")),
                403, "RESERVED_SECRET_PATH")  # fmt: skip
        refused(dep, dep.client.delete(f"/v1/secrets/{path}", headers=dep.bearer("admin")), 403,
                "RESERVED_SECRET_PATH")  # fmt: skip
    answer = dep.client.get(f"/v1/secrets/{SECRET_PATH}", headers=dep.bearer(SERVICE))
    others = [s for s in dep.secrets if s != SECRET_VALUE]  # a reader's own secret: served
    assert_clean(answer.status_code, answer.headers, answer.content, others)
    assert answer.status_code == 200 and answer.json()["data"]["api_secret"] == SECRET_VALUE
    assert (
        clean(dep, dep.client.get("/v1/risk/state", headers=dep.bearer(TRADER))).status_code == 200
    )


@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("GET", "/v1/nope", 404, "NOT_FOUND"),
        ("BREW", "/healthz", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/v1/orders/check", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/v1/secrets/" + "a/" * 5000 + "b", 414, "URL_TOO_LONG"),
        ("GET", "/v1/secrets/..%2F..%2F..%2Fetc%2Fpasswd", 400, "THREAT_DETECTED"),
        ("GET", "/v1/users/%ff%fe", 400, "INVALID_ENCODING"),
        ("GET", "/v1/audit?since=0001-01-01T00:00:00%2B23:59", 422, "INVALID_REQUEST"),
        ("GET", "/v1/audit?until=9999-12-31T23:59:59-23:59", 422, "INVALID_REQUEST"),
        ("GET", f"/v1/audit?after_seq={10**30}", 422, "INVALID_REQUEST"),
        ("GET", f"/v1/secrets/{SECRET_PATH}?version={2**31}", 422, "INVALID_REQUEST"),
    ],
)
def test_odd_requests_get_problem_documents(
    dep: Deployment, method: str, url: str, status: int, code: str
) -> None:
    refused(dep, dep.client.request(method, url, headers=dep.bearer("admin")), status, code)


def test_too_many_headers_and_a_bad_content_length(dep: Deployment) -> None:
    many = {f"x-filler-{i}": "1" for i in range(101)} | dep.bearer(TRADER)
    refused(dep, dep.client.get("/v1/risk/state", headers=many), 431, "TOO_MANY_HEADERS")
    headers = {**dep.bearer(TRADER), "Content-Type": "application/json", "Content-Length": "12abc"}
    answer = dep.client.post("/v1/orders/check", content=b"{}", headers=headers)
    refused(dep, answer, 400, "INVALID_CONTENT_LENGTH")


# -- slow and concurrent clients -------------------------------------------------------------


def test_a_slow_body_gets_408(dep: Deployment, port: int) -> None:
    """Headers at once, then the body one byte at a time, slower than the 1 s body timeout."""
    head = {"Content-Type": "application/json", "Content-Length": "64", **dep.bearer(TRADER)}
    with connect(port) as sock:
        sock.sendall(request_head("POST", "/v1/orders/check", head))
        sock.settimeout(0.25)  # the pace of the dribble: one byte per quiet quarter second
        for _ in range(40):
            sock.sendall(b" ")
            try:
                first = sock.recv(65536)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("no answer while the body dribbled in for 10 s")
        assert first, "the server hung up without an answer"
        sock.settimeout(10)
        answer = read_answer(Prefixed(sock, first))
    refused(dep, answer, 408, "REQUEST_TIMEOUT")


def test_fifty_concurrent_clients_get_no_server_error(dep: Deployment, port: int) -> None:
    forged = forged_tokens(dep)["alg-none"]
    start = threading.Barrier(50)

    def client(index: int) -> list[httpx.Response]:
        order = {**ORDER, "client_order_id": f"conc-{index}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            start.wait()
            return [
                http.post("/v1/orders/check", json={"order": order, "account": ACCOUNT},
                          headers=dep.bearer(TRADER)),
                http.get("/v1/risk/state", headers={"Authorization": f"Bearer {forged}"}),
                http.get("/v1/audit", params={"actor": INJECTIONS["xss"]},
                         headers=dep.bearer("admin")),
                http.post("/v1/orders/check", content=b'{"order": [', headers={
                    "Content-Type": "application/json", **dep.bearer(TRADER)}),
                http.get(f"/v1/secrets/{KEYRING_PATH}", headers=dep.bearer(SERVICE)),
            ]  # fmt: skip

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = [a for batch in pool.map(client, range(50)) for a in batch]
    for answer in answers:
        clean(dep, answer, forged, INJECTIONS["xss"])
    statuses = sorted({a.status_code for a in answers})
    assert statuses == [200, 400, 401, 403], statuses
