"""Service benchmark: authenticated ``POST /v1/orders/check`` against a bare FastAPI endpoint.

Run: ``python bench/service_bench.py [--requests 20000] [--connections 16] [--quick]``.

Both servers run as subprocesses under the same uvicorn settings (one worker, httptools,
no access log, loopback). Ours is ``tradeguard serve`` on a fresh home: the guard
(ban, size, rate limit per user and per IP, inspection of path, query and every JSON leaf),
bearer-token validation, the ``orders:submit`` permission, the account-gate check, the
risk engine with every check on and its event on the bus (audit, metrics, alerts,
surveillance), and a structured log line per request. The rate limits and risk limits are
raised (a TOML each) so a bench-sized flood stays within them: every one of those decisions
still runs. The bare app is FastAPI with one ``async`` endpoint returning a constant.

The load: ``--connections`` keep-alive HTTP/1.1 connections from one asyncio client
process, each sending its share of the requests back to back; every order distinct (no
DUPLICATE_ORDER), on venue CRYPTO (always open). Latency per request from write to parsed
response. A warm-up of 500 requests per server is discarded. Any non-2xx, or any
order not approved, counts as an error. Prints throughput, p50, p99, errors and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyotp

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import machine_lines, median, percentile, verdict

ADMIN_PASSWORD = "bench admin passphrase: quiet orchid 7712"
TRADER_PASSWORD = "bench trader passphrase: amber falcon 9041"
BARE_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.post("/v1/orders/check")
async def check() -> dict:
    return {"approved": True, "client_order_id": "", "violations": []}
"""
UVICORN = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not start")


def start_tradeguard(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    limits = workdir / "limits.toml"
    limits.write_text('[limits]\napi_requests = "100000/second"\n'
                      'order_submissions = "100000/second"\n')  # fmt: skip
    risk = workdir / "risk.toml"
    risk.write_text('order_rate = "100000/second"\nsymbol_order_rate = "100000/second"\n'
                    'max_open_orders = 1000000\n'
                    'max_order_quantity = 1000\nmax_position_quantity = 100000000\n'
                    'max_concentration = "1"\nmax_gross_exposure = "100"\n')  # fmt: skip
    port = free_port()
    env = {**os.environ, "TRADEGUARD_HOME": str(workdir / "home"),
           "TRADEGUARD_ADMIN_PASSWORD": ADMIN_PASSWORD, "TRADEGUARD_RATE_LIMITS": str(limits),
           "TRADEGUARD_RISK_CONFIG": str(risk)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeguard", "serve", "--port", str(port), "--log-json"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / "serve.log", "wb"),
    )  # fmt: skip
    wait_ready(port, proc)
    return proc, port


def start_bare(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    (workdir / "bare_app.py").write_text(BARE_APP + '\n@app.get("/healthz")\n'
                                         'async def ok() -> dict:\n    return {}\n')  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), *UVICORN],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_ready(port, proc)
    return proc, port


def trader_token(port: int) -> str:
    """Admin: log in, change password, enrol MFA, create a trader; the trader's token."""
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        login = client.post("/v1/auth/login", json={"username": "admin",
                                                     "password": ADMIN_PASSWORD})  # fmt: skip
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        new_admin = ADMIN_PASSWORD + " rotated"
        change = {"old_password": ADMIN_PASSWORD, "new_password": new_admin}
        client.post("/v1/auth/password", headers=auth, json=change).raise_for_status()
        login = client.post("/v1/auth/login", json={"username": "admin", "password": new_admin})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        secret = client.post("/v1/auth/mfa/enroll", headers=auth).json()["secret"]
        client.post("/v1/auth/mfa/confirm", headers=auth,
                    json={"code": pyotp.TOTP(secret).now()}).raise_for_status()  # fmt: skip
        client.post("/v1/users", headers=auth, json={"username": "trader", "role": "TRADER",
                    "password": TRADER_PASSWORD}).raise_for_status()  # fmt: skip
        login = client.post("/v1/auth/login", json={"username": "trader",
                                                     "password": TRADER_PASSWORD})  # fmt: skip
        login.raise_for_status()
        return str(login.json()["access_token"])


_SERIAL = itertools.count()


def order_requests(port: int, token: str, count: int, tag: str) -> list[bytes]:
    """Pre-built raw HTTP/1.1 requests, each a distinct order (no two alike within 40,000)."""
    out = []
    for _ in range(count):
        i = next(_SERIAL)
        body = json.dumps({
            "order": {"symbol": "BTC-USD", "side": "buy" if i % 2 else "sell",
                      "quantity": str(1 + i % 7), "order_type": "limit",
                      "limit_price": f"{100 + (i % 40_000) / 10_000:.4f}", "venue": "CRYPTO",
                      "client_order_id": f"{tag}-{i}", "account_id": "bench"},
            "account": {"account_value": "1000000000", "prices": {"BTC-USD": "100.00"}},
        }, separators=(",", ":")).encode()  # fmt: skip
        head = (f"POST /v1/orders/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        out.append(head.encode() + body)
    return out


async def _connection(port: int, requests: list[bytes], latencies: list[float],
                      errors: list[str]) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        for raw in requests:
            start = clock()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(clock() - start)
            if status != 200 or b'"approved":true' not in body:
                errors.append(f"{status} {body[:160]!r}")
    finally:
        writer.close()


async def load(port: int, requests: list[bytes], connections: int) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    shares = [requests[i::connections] for i in range(connections)]
    start = time.perf_counter()
    await asyncio.gather(*(_connection(port, s, latencies, errors) for s in shares))
    elapsed = time.perf_counter() - start
    if errors:
        print(f"    first error: {errors[0]}")
    return {"requests": len(latencies), "errors": len(errors), "rps": len(latencies) / elapsed,
            "p50": median(latencies) * 1e3, "p99": percentile(latencies, 0.99) * 1e3}  # fmt: skip


def run(
    name: str, round_no: int, port: int, token: str, count: int, connections: int
) -> dict[str, float]:
    tag = f"{name}-{round_no}"
    asyncio.run(load(port, order_requests(port, token, 500, f"warm-{tag}"), connections))
    result = asyncio.run(load(port, order_requests(port, token, count, tag), connections))
    print(f"  {name:<10} {result['requests']:>7,.0f} requests  {result['rps']:>8,.0f} req/s  "
          f"p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  "
          f"errors {result['errors']:.0f}")  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="2,000 requests (not judged)")
    args = parser.parse_args()
    count = 2_000 if args.quick else args.requests
    for line in machine_lines(["fastapi", "uvicorn", "starlette"]):
        print(line)
    print(f"{count:,} POST /v1/orders/check over {args.connections} keep-alive connections")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ours, our_port = start_tradeguard(workdir)
        bare, bare_port = start_bare(workdir)
        try:
            token = trader_token(our_port)
            results = {}
            for round_no in (1, 2):
                for name, port in (("bare", bare_port), ("tradeguard", our_port)):
                    results.setdefault(name, []).append(
                        run(name, round_no, port, token, count, args.connections)
                    )
        finally:
            for proc in (ours, bare):
                proc.terminate()
                proc.wait(timeout=30)
    best = {name: max(rounds, key=lambda r: r["rps"]) for name, rounds in results.items()}
    errors = sum(r["errors"] for rounds in results.values() for r in rounds)
    ratio = best["bare"]["rps"] / best["tradeguard"]["rps"]
    p50_ratio = best["tradeguard"]["p50"] / best["bare"]["p50"]
    print(f"throughput bare/tradeguard (best of 2 rounds each): {ratio:.2f}x; "
          f"p50 ratio {p50_ratio:.2f}x; errors {errors}")  # fmt: skip
    print(f"target: tradeguard costs at most 2x the bare endpoint, zero errors: "
          f"{verdict(ratio <= 2.0 and errors == 0)}")  # fmt: skip


if __name__ == "__main__":
    main()
