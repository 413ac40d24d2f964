"""The house: public surface, error tree, events, storage URLs, clocks."""

from __future__ import annotations

import inspect
import logging
import os
import sqlite3
from pathlib import Path

import pytest

import tradeguard
from tradeguard import errors
from tradeguard.clock import FixedClock
from tradeguard.errors import ConfigurationError, TradeguardError
from tradeguard.events import REDACTED, EventBus, SecurityEvent, redact
from tradeguard.storage import create_database_engine


def test_all_when_compared_with_module_then_every_public_name_exported() -> None:
    public = {
        name
        for name, value in vars(tradeguard).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(tradeguard.__all__) - {"__version__"}
    assert len(tradeguard.__all__) == len(set(tradeguard.__all__))


def test_errors_when_listed_then_all_under_one_root_with_docstrings() -> None:
    classes = [v for v in vars(errors).values() if inspect.isclass(v) and issubclass(v, Exception)]
    ours = [c for c in classes if c.__module__ == errors.__name__]
    assert len(ours) >= 20
    for cls in ours:
        assert issubclass(cls, TradeguardError), cls
        assert cls.__doc__ and cls.__doc__.strip(), cls
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} missing from the tree"


def test_seed_usage_when_called_then_roundtrip() -> None:
    version = tradeguard.store_secret("brokers/alpaca", {"api_key": "key", "secret": "secret"})
    creds = tradeguard.get_secret("brokers/alpaca")
    assert version == 1 and creds == {"api_key": "key", "secret": "secret"}
    assert tradeguard.get_secrets_manager() is tradeguard.get_secrets_manager()


def test_reset_when_called_then_defaults_rebuilt_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tradeguard.store_secret("a/b", {"k": "v"})
    first = tradeguard.get_secrets_manager()
    monkeypatch.setenv("TRADEGUARD_HOME", str(tmp_path / "elsewhere"))
    tradeguard.reset()
    assert tradeguard.get_secrets_manager() is not first
    with pytest.raises(tradeguard.SecretNotFound):
        tradeguard.get_secret("a/b")
    assert (tmp_path / "elsewhere" / "tradeguard.db").exists()


def test_redact_when_nested_sensitive_keys_then_values_removed() -> None:
    details = {
        "path": "brokers/alpaca",
        "Password": "p1",
        "nested": {"API_KEY": "k1", "list": [{"refresh_token": "t1"}, {"ok": 1}]},
        "headers": {"Authorization": "Bearer x"},
        "mfa_code": "123456",
        "client_secret": "c1",
    }
    cleaned = redact(details)
    flat = repr(cleaned)
    for leaked in ("p1", "k1", "t1", "Bearer x", "123456", "c1"):
        assert leaked not in flat
    assert cleaned["path"] == "brokers/alpaca"
    assert cleaned["nested"]["list"][1] == {"ok": 1}
    assert cleaned["Password"] == REDACTED


def test_bus_when_the_same_keys_repeat_or_change_then_every_event_is_redacted() -> None:
    from tradeguard.events import EventBus, SecurityEvent

    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    plain = {"symbol": "X", "codes": ["A"], "n": 1}
    for _ in range(2):  # the key set is judged once, then remembered
        bus.publish(SecurityEvent("t.x", details=plain))
    bus.publish(SecurityEvent("t.x", details={"symbol": "X", "codes": [], "token": "t0p"}))
    bus.publish(SecurityEvent("t.x", details={"symbol": "X", "codes": [{"secret": "s3"}]}))
    bus.publish(SecurityEvent("t.x", details={"symbol": "X", "codes": ["A"], "n": {"pass": "p"}}))
    assert [dict(e.details) for e in seen[:2]] == [plain, plain]
    assert seen[0].details["codes"] is not plain["codes"]  # a copy: the publisher's list
    for leaked in ("t0p", "s3", "'p'"):
        assert leaked not in repr([dict(e.details) for e in seen])
    assert seen[2].details["token"] == REDACTED


def test_bus_when_subscriber_fails_then_others_still_receive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FixedClock()
    bus = EventBus(clock=clock)
    seen: list[SecurityEvent] = []

    def broken(_: SecurityEvent) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    unsubscribe = bus.subscribe(seen.append)
    with caplog.at_level(logging.ERROR):
        delivered = bus.publish(SecurityEvent("secret.read", details={"token": "t0k"}))
    assert [e.type for e in seen] == ["secret.read"]
    assert delivered.time == clock.now()
    assert seen[0].details["token"] == REDACTED
    assert "subscriber bug" in caplog.text
    unsubscribe()
    bus.publish(SecurityEvent("secret.read"))
    assert len(seen) == 1


@pytest.mark.parametrize("kind", ["", None])
def test_event_when_type_missing_then_rejected(kind: object) -> None:
    with pytest.raises(ValueError):
        SecurityEvent(kind)  # type: ignore[arg-type]


def test_event_when_severity_unknown_then_rejected() -> None:
    with pytest.raises(ValueError):
        SecurityEvent("x.y", severity="fatal")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["mysql://root:pw-in-url@db/x", "redis://:pw-in-url@h/0", "no-scheme-pw-in-url"]
)
def test_database_url_when_unsupported_then_names_scheme_only(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_database_engine(url)
    assert "pw-in-url" not in str(info.value)


def test_sqlite_engine_when_created_then_wal_foreign_keys_and_private_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.db"
    engine = create_database_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    engine.dispose()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_fixed_clock_when_advanced_then_moves_and_never_backwards() -> None:
    clock = FixedClock()
    start, mono = clock.now(), clock.monotonic()
    clock.advance(1.5)
    assert (clock.now() - start).total_seconds() == 1.5
    assert clock.monotonic() - mono == 1.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_environment_when_home_set_then_settings_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEGUARD_SECRETS_CACHE_TTL", "12.5")
    tradeguard.reset()
    settings = tradeguard.get_settings()
    assert settings.secrets_cache_ttl == 12.5
    assert str(settings.home) == os.environ["TRADEGUARD_HOME"]
