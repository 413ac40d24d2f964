"""A deployed service for the hostile and Schemathesis tests, and what every answer must hold.

:func:`deploy` builds the real app in the test's ``TRADEGUARD_HOME`` (first-run bootstrap,
the admin's password change and MFA enrolment, all over HTTP), adds a second administrator,
a TRADER and a SERVICE account with an API key, and stores one secret. It collects every
credential and secret value so :func:`assert_clean` can prove no answer carries one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pyotp
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from fastapi import FastAPI

import tradeguard
from tradeguard.audit.key import AUDIT_KEY_PATH
from tradeguard.auth.keys import KEYRING_PATH, KeyRingStore
from tradeguard.server.app import create_app
from tradeguard.server.bootstrap import bootstrap
from tradeguard.server.context import Service
from tradeguard.server.middleware import SECURITY_HEADERS, GuardMiddleware

with warnings.catch_warnings():  # starlette prefers httpx2; only this one warning is hushed
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette.testclient` is deprecated"
    )
    from starlette.testclient import TestClient

LOOPBACK = ("127.0.0.1", 50000)
ADMIN_INITIAL = "first-run Admin pass 4829 quartz"
ADMIN_PASSWORD = "violet anchor 7391 drifting lantern"
FUZZ_ADMIN = "opsroot"
FUZZ_ADMIN_PASSWORD = "copper meadow 5518 silent harbor"
TRADER = "trader-ann"
TRADER_PASSWORD = "granite willow 2264 bright canyon"
SERVICE = "bot-svc"
SERVICE_PASSWORD = "saffron delta 9042 hollow river"
SECRET_PATH = "exchange/binance"
SECRET_VALUE = "sk-live-7Qz2xV9pL4mN8rT1wY6c"

# Generous enough that a fuzzing run is not throttled into meaninglessness, yet real limits:
# the same limiter, per identity and per IP, with every window enforced.
RATE_LIMITS = """
[limits]
api_requests = "2000/second;60000/minute"
order_submissions = "500/second;30000/minute"
login = "300/minute"
"""
SECURITY_HEADER_NAMES = tuple(name.decode() for name, _ in SECURITY_HEADERS)
PROBLEM_JSON = "application/problem+json"


@dataclass
class Deployment:
    """The app, an in-process loopback client, and the credentials made for the tests."""

    app: FastAPI
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    api_key: str = ""
    totp: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    """Strings no response may carry (passwords, tokens, key material, secret values)."""

    @property
    def service(self) -> Service:
        found = self.app.state.service
        assert isinstance(found, Service)
        return found

    def bearer(self, who: str) -> dict[str, str]:
        token = self.api_key if who == SERVICE else self.tokens[who]
        return {"Authorization": f"Bearer {token}"}

    def login(self, username: str, password: str, code: str | None = None) -> dict[str, Any]:
        body = {"username": username, "password": password, "mfa_code": code}
        answer = self.client.post("/v1/auth/login", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def write_rate_limits(directory: Path) -> Path:
    """The test's rate limit file."""
    path = directory / "rate-limits.toml"
    path.write_text(RATE_LIMITS)
    return path


def deploy(home: Path, setenv: Callable[[str, str], None]) -> Deployment:
    """Bootstrap the service in ``home`` and walk the admin through first run over HTTP."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    setenv("TRADEGUARD_ADMIN_PASSWORD", ADMIN_INITIAL)
    setenv("TRADEGUARD_RATE_LIMITS", str(write_rate_limits(home.parent)))
    tradeguard.reset()
    assert bootstrap()
    app = create_app()
    dep = Deployment(app, TestClient(app, client=LOOPBACK))
    first = dep.login("admin", ADMIN_INITIAL)["access_token"]
    answer = dep.client.post(
        "/v1/auth/password",
        headers={"Authorization": f"Bearer {first}"},
        json={"old_password": ADMIN_INITIAL, "new_password": ADMIN_PASSWORD},
    )
    assert answer.status_code == 204, answer.text
    _admin_session(dep, "admin", ADMIN_PASSWORD)
    for name, role, password in (
        (FUZZ_ADMIN, "ADMIN", FUZZ_ADMIN_PASSWORD),
        (TRADER, "TRADER", TRADER_PASSWORD),
        (SERVICE, "SERVICE", SERVICE_PASSWORD),
    ):
        body = {"username": name, "role": role, "password": password}
        answer = dep.client.post("/v1/users", headers=dep.bearer("admin"), json=body)
        assert answer.status_code == 201, answer.text
    _admin_session(dep, FUZZ_ADMIN, FUZZ_ADMIN_PASSWORD)
    trader = dep.login(TRADER, TRADER_PASSWORD)
    dep.tokens[TRADER] = trader["access_token"]
    dep.api_key = dep.service.auth.create_api_key(SERVICE, name="hostile-tests")
    answer = dep.client.put(
        f"/v1/secrets/{SECRET_PATH}", headers=dep.bearer("admin"),
        json={"data": {"api_secret": SECRET_VALUE}},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    dep.secrets = [
        ADMIN_INITIAL, ADMIN_PASSWORD, FUZZ_ADMIN_PASSWORD, TRADER_PASSWORD, SERVICE_PASSWORD,
        SECRET_VALUE, dep.api_key, trader["refresh_token"], *dep.tokens.values(),
        *dep.totp.values(), *_key_material(dep.service),
    ]  # fmt: skip
    return dep


def _admin_session(dep: Deployment, username: str, password: str) -> None:
    """Log in, enrol and confirm MFA; the session stays valid afterwards."""
    tokens = dep.login(username, password)
    dep.tokens[username] = tokens["access_token"]
    dep.secrets.append(tokens["refresh_token"])
    answer = dep.client.post("/v1/auth/mfa/enroll", headers=dep.bearer(username))
    assert answer.status_code == 200, answer.text
    secret = answer.json()["secret"]
    dep.totp[username] = secret
    answer = dep.client.post(
        "/v1/auth/mfa/confirm", headers=dep.bearer(username),
        json={"code": pyotp.TOTP(secret).now()},
    )  # fmt: skip
    assert answer.status_code == 204, answer.text
    assert dep.client.get("/v1/users", headers=dep.bearer(username)).status_code == 200


def _key_material(service: Service) -> list[str]:
    """The signing keys' and the audit HMAC key's stored text."""
    found: list[str] = []
    for path in (KEYRING_PATH, AUDIT_KEY_PATH):
        for value in service.secrets.get_secret(path).values():
            found.append(value)
    ring = KeyRingStore(service.secrets).load()
    assert ring is not None
    key = ring.current.private_key
    if isinstance(key, bytes):  # HS256: the secret itself
        found.append(base64.urlsafe_b64encode(key).decode().rstrip("="))
    else:
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        found.extend(line for line in pem.splitlines() if not line.startswith("-----"))
    return found


def assert_clean(
    status: int, headers: Mapping[str, str], body: bytes, secrets: list[str] | tuple[str, ...]
) -> None:
    """No 5xx, security headers and a request id, problem+json errors, no secret echoed."""
    assert status < 500, (status, body[:300])
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in (*SECURITY_HEADER_NAMES, "x-request-id"):
        assert name in lowered, (name, status)
    if status >= 400:
        assert lowered.get("content-type", "").startswith(PROBLEM_JSON), (status, lowered)
        document = json.loads(body)
        assert document["status"] == status
        assert isinstance(document["code"], str) and document["code"]
        assert "Traceback" not in document["detail"]
    text = body.decode("utf-8", "replace")
    for secret in secrets:
        assert secret not in text, f"a secret leaked into a {status} answer"


# -- a real server on a free port --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_body_timeout(app: FastAPI, seconds: float) -> FastAPI:
    """Set the guard's body timeout (before the app's middleware stack is first built)."""
    options = getattr(app, "guard_options", None)  # the service's GuardedAPI
    if options is not None:
        options["body_timeout"] = seconds
        return app
    for entry in app.user_middleware:
        if entry.cls is GuardMiddleware:
            entry.kwargs["body_timeout"] = seconds
            return app
    raise AssertionError("no GuardMiddleware on the app")


@contextmanager
def running(app: FastAPI) -> Iterator[int]:
    """Serve ``app`` with uvicorn in a thread (as ``tradeguard serve`` does); yields the port."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off",
        server_header=False, timeout_keep_alive=5, limit_concurrency=1024,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            thread.join(0.01)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class RawAnswer:
    """A response read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes


def read_answer(sock: socket.socket) -> RawAnswer:
    """Read one HTTP/1.1 response (with Content-Length) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    return RawAnswer(status, headers, body[:length])


def request_head(method: str, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Prefixed:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, sock: socket.socket, first: bytes) -> None:
        self.sock, self.first = sock, first

    def recv(self, size: int) -> bytes:
        if self.first:
            data, self.first = self.first, b""
            return data
        return self.sock.recv(size)


# -- forged tokens -------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def forged_tokens(dep: Deployment) -> dict[str, str]:
    """Bearer credentials that must all get 401: forged, tampered, expired, garbage."""
    real = dep.tokens[TRADER]
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    ring = KeyRingStore(dep.service.secrets).load()
    assert ring is not None
    key = ring.current
    public_pem = key.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[union-attr]
    jwks = dep.client.get("/.well-known/jwks.json").json()
    jwk_x = base64.urlsafe_b64decode(jwks["keys"][0]["x"] + "==")
    now = int(time.time())

    def signed(**changes: Any) -> str:
        headers = {"kid": key.kid}
        return jwt.encode({**claims, **changes}, key.private_key, "EdDSA", headers)  # type: ignore[arg-type]

    attacker = Ed25519PrivateKey.generate()
    head, body, signature = real.split(".")
    escalated = b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    return {
        "alg-none": compact({**header, "alg": "none"}, claims),
        "alg-None-admin": compact({**header, "alg": "None"}, {**claims, "role": "ADMIN"}),
        "hs256-with-public-pem": compact({**header, "alg": "HS256"}, claims, hs256(public_pem)),
        "hs256-with-jwk-x": compact({**header, "alg": "HS256"}, claims, hs256(jwk_x)),
        "expired": signed(iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "not-yet-valid": signed(iat=now + 3600, nbf=now + 3600, exp=now + 7200),
        "wrong-audience": signed(aud="someone-else"),
        "wrong-issuer": signed(iss="https://evil.example"),
        "refresh-type": signed(typ="refresh"),
        "escalated-role": f"{head}.{escalated}.{signature}",
        "unknown-kid": jwt.encode(claims, attacker, "EdDSA", {"kid": "nope"}),
        "attacker-jku": jwt.encode(
            claims, attacker, "EdDSA", {"kid": key.kid, "jku": "https://evil.example/k"}
        ),
        "kid-traversal": compact(
            {**header, "alg": "HS256", "kid": "../../../../dev/null"}, claims, hs256(b"")
        ),
        "truncated-signature": real[:-8],
        "garbage": "garbage-garbage-garbage",
        "dots": "a.b.c",
        "bad-base64": "eyJ!!!.eyJ???.sig%%%",
        "json-array-header": f"{b64(b'[1,2]')}.{body}.xx",
        "huge": "A" * 9000,
        "api-key-empty": "tg_",
        "api-key-short": "tg_x",
        "api-key-no-secret": "tg_" + "A" * 16 + "_",
        "api-key-shaped": "tg_" + "A" * 16 + "_" + "B" * 43,
        "api-key-long": "tg_" + "x" * 5000,
        "api-key-flipped": dep.api_key[:-1] + ("A" if dep.api_key[-1] != "A" else "B"),
        "api-key-traversal": "tg_../../etc_passwd",
    }
