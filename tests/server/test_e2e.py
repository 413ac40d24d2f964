"""End to end, over HTTP: the real ``tradeguard serve`` in a subprocess on a fresh home.

bootstrap admin → password change → MFA → a TRADER and a VIEWER → the trader logs in with
MFA and checks orders (approved; rejected with codes) → the viewer gets 403 → the admin
engages the kill switch → KILL_SWITCH → refresh-token reuse ends the session → the audit
chain verifies and holds every step. Every response carries the security headers and a
request id; no password ever appears in a response or in the service's output.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from server_support import SECURITY_HEADERS

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60.0
NEW_ADMIN_PASSWORD = "e2e admin passphrase: juniper comet 8812 gravel"
TRADER_PASSWORD = "e2e trader passphrase: walnut tide 3307 beacon"
VIEWER_PASSWORD = "e2e viewer passphrase: pewter finch 5546 canyon"
ACCOUNT = {"account_value": "100000", "prices": {"BTC-USD": "100", "DOGE-USD": "0.1"}}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """The service process, its output files, and a client that checks every response."""

    def __init__(self, home: Path, logs: Path) -> None:
        self.port = _free_port()
        self.stdout_path, self.stderr_path = logs / "stdout.txt", logs / "stderr.txt"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEGUARD_")}
        env["TRADEGUARD_HOME"] = str(home)
        command = [sys.executable, "-c", "from tradeguard.cli import main; main()",
                   "serve", "--port", str(self.port)]  # fmt: skip
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=logs)
        self.bodies: list[str] = []
        self.request_ids: list[tuple[int, str]] = []
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=30.0,
            event_hooks={"response": [self._check]},
        )  # fmt: skip

    def _check(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append(response.text)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
        request_id = response.headers.get("x-request-id", "")
        assert re.fullmatch(r"[0-9a-f]{16}", request_id), response.url
        self.request_ids.append((response.status_code, request_id))

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            try:  # the pause between probes doubles as the check that it did not die
                code = self.process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"tradeguard serve exited with {code}: {self.stderr_path.read_text()}")
        pytest.fail(f"tradeguard serve did not answer /healthz in {STARTUP_SECONDS} s")

    def stop(self) -> str:
        """Terminate the service; its stdout and stderr."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        return self.stdout_path.read_text() + self.stderr_path.read_text()


@pytest.fixture
def served(isolated_home: Path, tmp_path: Path) -> Iterator[Served]:
    logs = tmp_path / "logs"
    logs.mkdir()
    service = Served(isolated_home, logs)
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: httpx.Client, username: str, password: str, code: str | None = None) -> Any:
    body = {"username": username, "password": password, "mfa_code": code}
    response = client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _check(client: httpx.Client, token: str, symbol: str, qty: str, price: str) -> Any:
    order = {"symbol": symbol, "side": "buy", "quantity": qty, "order_type": "limit",
             "limit_price": price, "venue": "CRYPTO"}  # fmt: skip
    return client.post("/v1/orders/check", headers=_bearer(token),
                       json={"order": order, "account": ACCOUNT})  # fmt: skip


def _codes(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["approved"] is False
    return {v["code"] for v in body["violations"]}


def test_session_end_to_end(served: Served) -> None:
    http = served.client
    match = re.search(r"^Initial admin password: (\S+)$", served.stderr_path.read_text(), re.M)
    assert match, "the first run prints the generated admin password on stderr"
    initial = match.group(1)

    # the admin: the first login works, but everything else waits for a new password ...
    first = _login(http, "admin", initial)["access_token"]
    gated = http.get("/v1/users", headers=_bearer(first))
    assert (gated.status_code, gated.json()["code"]) == (403, "PASSWORD_CHANGE_REQUIRED")
    change = {"old_password": initial, "new_password": NEW_ADMIN_PASSWORD}
    assert http.post("/v1/auth/password", headers=_bearer(first), json=change).status_code == 204
    assert http.get("/v1/auth/sessions", headers=_bearer(first)).status_code == 401
    admin = _bearer(_login(http, "admin", NEW_ADMIN_PASSWORD)["access_token"])
    gated = http.get("/v1/users", headers=admin)
    assert (gated.status_code, gated.json()["code"]) == (403, "MFA_ENROLMENT_REQUIRED")
    # ... and for MFA
    secret = http.post("/v1/auth/mfa/enroll", headers=admin).json()["secret"]
    code = pyotp.TOTP(secret).now()
    assert http.post("/v1/auth/mfa/confirm", headers=admin, json={"code": code}).status_code == 204
    assert http.get("/v1/users", headers=admin).status_code == 200

    # a TRADER and a VIEWER; DOGE-USD restricted
    for name, role, password in (("tina", "TRADER", TRADER_PASSWORD),
                                 ("victor", "VIEWER", VIEWER_PASSWORD)):  # fmt: skip
        made = http.post("/v1/users", headers=admin,
                         json={"username": name, "role": role, "password": password})  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["role"] == role and made.json()["initial_password"] is None
    limits = {"restricted_symbols": ["DOGE-USD"], "max_order_quantity": 1000}
    assert http.put("/v1/risk/limits", headers=admin, json=limits).status_code == 200

    # the trader enrols MFA, then logs in with a TOTP code (the next step's: the current
    # one was spent on the confirmation, and the replay guard refuses it)
    enrol_token = _login(http, "tina", TRADER_PASSWORD)["access_token"]
    totp = pyotp.TOTP(
        http.post("/v1/auth/mfa/enroll", headers=_bearer(enrol_token)).json()["secret"]
    )
    confirm = http.post(
        "/v1/auth/mfa/confirm", headers=_bearer(enrol_token), json={"code": totp.now()}
    )
    assert confirm.status_code == 204
    no_code = http.post("/v1/auth/login", json={"username": "tina", "password": TRADER_PASSWORD})
    assert (no_code.status_code, no_code.json()["code"]) == (401, "MFA_REQUIRED")
    trader_pair = _login(http, "tina", TRADER_PASSWORD, totp.at(time.time() + 30))
    trader = trader_pair["access_token"]

    # orders: one approved, some rejected with their codes
    approved = _check(http, trader, "BTC-USD", "1", "100")
    assert approved.status_code == 200 and approved.json()["approved"] is True
    assert _codes(_check(http, trader, "BTC-USD", "5000", "150")) >= {
        "MAX_ORDER_QUANTITY", "MAX_ORDER_NOTIONAL", "PRICE_COLLAR"}  # fmt: skip
    assert "RESTRICTED_SYMBOL" in _codes(_check(http, trader, "DOGE-USD", "10", "0.1"))

    # the viewer may look, not trade
    viewer = _login(http, "victor", VIEWER_PASSWORD)["access_token"]
    denied = _check(http, viewer, "BTC-USD", "1", "100")
    assert (denied.status_code, denied.json()["code"]) == (403, "FORBIDDEN")
    assert http.get("/v1/risk/state", headers=_bearer(viewer)).status_code == 200

    # the kill switch
    halt = http.post("/v1/risk/kill-switch", headers=admin, json={"reason": "e2e drill"})
    assert halt.status_code == 200 and halt.json()["state"] == "HALTED"
    assert "KILL_SWITCH" in _codes(_check(http, trader, "BTC-USD", "1", "100"))

    # a refresh token used twice ends the session: its access tokens stop working
    refreshed = http.post("/v1/auth/refresh", json={"refresh_token": trader_pair["refresh_token"]})
    assert refreshed.status_code == 200
    reuse = http.post("/v1/auth/refresh", json={"refresh_token": trader_pair["refresh_token"]})
    assert (reuse.status_code, reuse.json()["code"]) == (401, "REFRESH_TOKEN_REUSED")
    assert reuse.headers["www-authenticate"].startswith("Bearer ")
    for token in (trader, refreshed.json()["access_token"]):
        assert http.get("/v1/risk/state", headers=_bearer(token)).status_code == 401

    # the audit chain verifies and holds every step
    records = http.get("/v1/audit", headers=admin, params={"limit": 10000}).json()["records"]
    verify = http.get("/v1/audit/verify", headers=admin).json()
    assert verify["ok"] is True and verify["first_bad"] is None, verify
    seen = {(r["type"], r.get("actor")) for r in records}
    types = {kind for kind, _ in seen}
    assert {
        "auth.login_succeeded", "auth.password_changed", "auth.mfa_enabled", "auth.user_created",
        "risk.limits_changed", "order.approved", "order.rejected", "killswitch.engaged",
        "auth.refresh_reuse",
    } <= types, sorted(types)  # fmt: skip
    assert {("killswitch.engaged", "admin"), ("auth.refresh_reuse", "tina"),
            ("auth.password_changed", "admin")} <= seen  # fmt: skip
    assert verify["checked"] >= len(records)

    # nothing secret leaked: not in any response, and in the output only that one line
    output = served.stop()
    secrets = (initial, NEW_ADMIN_PASSWORD, TRADER_PASSWORD, VIEWER_PASSWORD, secret,
               trader_pair["refresh_token"])  # fmt: skip
    for body in served.bodies:
        for value in secrets[:4]:
            assert value not in body
    assert output.count(initial) == 1
    assert f"Initial admin password: {initial}" in output
    for value in secrets[1:]:
        assert value not in output
    # each refusal is logged with the request id its response carried
    refused = [request_id for status, request_id in served.request_ids if status >= 400]
    assert len(refused) >= 5
    assert [i for i in refused if i not in output] == []
