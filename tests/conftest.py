"""Shared fixtures: an isolated home, and real PostgreSQL / OpenBao servers."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import tradeguard
from servers import (
    BaoServer,
    PostgresServer,
    RedisServer,
    start_bao,
    start_postgres,
    start_redis,
)
from tradeguard.clock import FixedClock
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.settings import Settings


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own TRADEGUARD_HOME, no inherited TRADEGUARD_* and fresh defaults."""
    for name in list(os.environ):
        if name.startswith("TRADEGUARD_") or name == "VAULT_TOKEN":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("TRADEGUARD_HOME", str(home))
    tradeguard.reset()
    yield home
    tradeguard.reset()


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def master_key_text(master_key: bytes) -> str:
    return base64.urlsafe_b64encode(master_key).decode().rstrip("=")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def events() -> tuple[EventBus, list[SecurityEvent]]:
    """A bus and the list of every event published on it."""
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    return bus, seen


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    name = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(postgres_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_server.url(name)


@pytest.fixture(scope="session")
def bao_server() -> Iterator[BaoServer]:
    server = start_bao()
    yield server
    server.stop()


@pytest.fixture
def vault_url(bao_server: BaoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh KV v2 mount on the shared dev server; the token is set in the environment."""
    mount = bao_server.new_mount("kv" + uuid.uuid4().hex[:12])
    monkeypatch.setenv("TRADEGUARD_VAULT_TOKEN", bao_server.token)
    return f"vault+http://127.0.0.1:{bao_server.port}/?mount={mount}"


@pytest.fixture
def settings_for(isolated_home: Path, master_key_text: str) -> Callable[..., Settings]:
    """Build Settings for the isolated home with a known master key, plus overrides."""

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {"home": isolated_home, "master_key": master_key_text}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The shared Redis server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
