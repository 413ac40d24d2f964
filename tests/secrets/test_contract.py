"""One contract, three backends: the local store on SQLite and PostgreSQL, and Vault (OpenBao)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tradeguard.clock import FixedClock
from tradeguard.errors import (
    InvalidSecretPath,
    InvalidSecretValue,
    SecretNotFound,
    VersionConflict,
)
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import SecretsManager, build_secrets_manager
from tradeguard.settings import Settings

BACKENDS = ["sqlite", "postgresql", "vault"]
CREDS = {"api_key": "AKIA-TEST-0001", "secret": "s3cr3t-value-that-must-not-leak"}


@pytest.fixture(params=BACKENDS)
def backend_settings(
    request: pytest.FixtureRequest, settings_for: Callable[..., Settings]
) -> Settings:
    if request.param == "sqlite":
        return settings_for()
    if request.param == "postgresql":
        return settings_for(database_url=request.getfixturevalue("postgres_url"))
    return settings_for(secrets_url=request.getfixturevalue("vault_url"))


@pytest.fixture
def bus_and_events() -> tuple[EventBus, list[SecurityEvent]]:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    return bus, seen


@pytest.fixture
def manager(
    backend_settings: Settings, bus_and_events: tuple[EventBus, list[SecurityEvent]]
) -> Iterator[SecretsManager]:
    with build_secrets_manager(
        backend_settings, bus=bus_and_events[0], clock=FixedClock()
    ) as built:
        yield built


def test_store_when_new_path_then_version_one_and_reads_back(manager: SecretsManager) -> None:
    assert manager.store_secret("brokers/alpaca", CREDS) == 1
    assert manager.get_secret("brokers/alpaca") == CREDS


def test_store_when_written_again_then_versions_count_up_and_old_stay_readable(
    manager: SecretsManager,
) -> None:
    versions = [manager.store_secret("brokers/ib", {"k": f"v{i}"}) for i in range(1, 4)]
    assert versions == [1, 2, 3]
    assert manager.get_secret("brokers/ib") == {"k": "v3"}
    assert manager.get_secret("brokers/ib", version=1) == {"k": "v1"}
    assert manager.get_secret("brokers/ib", version=2) == {"k": "v2"}


def test_get_when_caller_mutates_result_then_store_unchanged(manager: SecretsManager) -> None:
    manager.store_secret("a/b", CREDS)
    first = manager.get_secret("a/b")
    first["api_key"] = "tampered"
    assert manager.get_secret("a/b") == CREDS


def test_cas_when_zero_then_only_creates(manager: SecretsManager) -> None:
    assert manager.store_secret("cas/new", {"k": "1"}, cas=0) == 1
    with pytest.raises(VersionConflict) as info:
        manager.store_secret("cas/new", {"k": "2"}, cas=0)
    assert (info.value.expected, info.value.current) == (0, 1)
    assert manager.get_secret("cas/new") == {"k": "1"}


def test_cas_when_current_matches_then_writes_else_conflict(manager: SecretsManager) -> None:
    manager.store_secret("cas/x", {"k": "1"})
    assert manager.store_secret("cas/x", {"k": "2"}, cas=1) == 2
    with pytest.raises(VersionConflict) as info:
        manager.store_secret("cas/x", {"k": "3"}, cas=1)
    assert info.value.current == 2
    assert manager.get_secret("cas/x") == {"k": "2"}


def test_get_when_missing_path_or_version_then_not_found(manager: SecretsManager) -> None:
    with pytest.raises(SecretNotFound):
        manager.get_secret("nope/nothing")
    manager.store_secret("one/version", {"k": "v"})
    with pytest.raises(SecretNotFound) as info:
        manager.get_secret("one/version", version=7)
    assert info.value.version == 7


def test_list_when_prefix_then_only_matching_sorted(manager: SecretsManager) -> None:
    for path in ["brokers/alpaca", "brokers/ib", "brokers_x/y", "exchanges/binance/main", "z"]:
        manager.store_secret(path, {"k": "v"})
    assert manager.list_secrets("brokers/") == ["brokers/alpaca", "brokers/ib"]
    assert manager.list_secrets("brokers") == ["brokers/alpaca", "brokers/ib", "brokers_x/y"]
    assert manager.list_secrets("exchanges/bin") == ["exchanges/binance/main"]
    assert manager.list_secrets() == sorted(
        ["brokers/alpaca", "brokers/ib", "brokers_x/y", "exchanges/binance/main", "z"]
    )
    assert manager.list_secrets("nothing-here") == []


def test_metadata_lists_versions_and_current(manager: SecretsManager) -> None:
    for i in range(3):
        manager.store_secret("meta/p", {"k": str(i)})
    manager.delete_secret("meta/p", versions=[2])
    meta = manager.secret_metadata("meta/p")
    assert meta.current_version == 3
    assert [v.version for v in meta.versions] == [1, 2, 3]
    assert [v.live for v in meta.versions] == [True, False, True]
    v2 = meta.version(2)
    assert v2 is not None and v2.deleted_at is not None and not v2.destroyed
    with pytest.raises(SecretNotFound):
        manager.secret_metadata("meta/absent")


def test_delete_when_current_then_latest_live_is_served_and_undelete_restores(
    manager: SecretsManager,
) -> None:
    manager.store_secret("del/p", {"k": "1"})
    manager.store_secret("del/p", {"k": "2"})
    manager.delete_secret("del/p")
    assert manager.get_secret("del/p") == {"k": "1"}
    with pytest.raises(SecretNotFound):
        manager.get_secret("del/p", version=2)
    manager.undelete_secret("del/p")
    assert manager.get_secret("del/p") == {"k": "2"}
    assert manager.get_secret("del/p", version=2) == {"k": "2"}


def test_delete_when_every_version_deleted_then_not_found(manager: SecretsManager) -> None:
    manager.store_secret("gone/p", {"k": "1"})
    manager.delete_secret("gone/p")
    with pytest.raises(SecretNotFound):
        manager.get_secret("gone/p")
    assert manager.list_secrets("gone/") == ["gone/p"]  # metadata survives a soft delete


def test_delete_when_unknown_version_then_not_found(manager: SecretsManager) -> None:
    manager.store_secret("del/q", {"k": "1"})
    with pytest.raises(SecretNotFound):
        manager.delete_secret("del/q", versions=[5])
    with pytest.raises(SecretNotFound):
        manager.delete_secret("del/absent")
    assert manager.get_secret("del/q") == {"k": "1"}


def test_destroy_when_versions_then_irreversible(manager: SecretsManager) -> None:
    manager.store_secret("d/p", {"k": "1"})
    manager.store_secret("d/p", {"k": "2"})
    manager.destroy_secret("d/p", versions=[1])
    with pytest.raises(SecretNotFound):
        manager.get_secret("d/p", version=1)
    with pytest.raises(SecretNotFound, match="destroyed"):
        manager.undelete_secret("d/p", versions=[1])
    with pytest.raises(SecretNotFound):
        manager.get_secret("d/p", version=1)
    info = manager.secret_metadata("d/p").version(1)
    assert info is not None and info.destroyed
    assert manager.get_secret("d/p") == {"k": "2"}


def test_destroy_when_no_versions_then_whole_path_gone(manager: SecretsManager) -> None:
    manager.store_secret("d/all", {"k": "1"})
    manager.store_secret("d/all", {"k": "2"})
    manager.destroy_secret("d/all")
    with pytest.raises(SecretNotFound):
        manager.get_secret("d/all")
    with pytest.raises(SecretNotFound):
        manager.secret_metadata("d/all")
    assert manager.list_secrets("d/") == []
    assert manager.store_secret("d/all", {"k": "new"}) == 1


def test_rotate_when_called_then_every_version_still_reads(manager: SecretsManager) -> None:
    for i in range(5):
        manager.store_secret(f"rot/s{i}", {"k": f"v{i}"})
    manager.store_secret("rot/s0", {"k": "v0-2"})
    first = manager.rotate_key()
    second = manager.rotate_key()
    assert second > first >= 1
    manager.clear_cache()
    assert manager.get_secret("rot/s0") == {"k": "v0-2"}
    assert manager.get_secret("rot/s0", version=1) == {"k": "v0"}
    for i in range(1, 5):
        assert manager.get_secret(f"rot/s{i}") == {"k": f"v{i}"}


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/lead",
        "trail/",
        "a//b",
        "a/./b",
        "../x",
        "a/..",
        "sp ace",
        "nul\x00",
        "é/x",
        "a" * 129,
        "/".join(["s"] * 17),
        "semi;colon",
        "back\\slash",
    ],
)
def test_paths_when_invalid_then_rejected_before_backend(
    manager: SecretsManager, path: str
) -> None:
    with pytest.raises(InvalidSecretPath) as info:
        manager.store_secret(path, {"k": "v"})
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidSecretPath):
        manager.get_secret(path)


def test_paths_at_the_limits_are_accepted(manager: SecretsManager) -> None:
    deep = "/".join(["s"] * 16)
    long_segment = "a" * 128
    for path in (deep, long_segment, "A.b_c-D/0.9"):
        manager.store_secret(path, {"k": "v"})
        assert manager.get_secret(path) == {"k": "v"}


@pytest.mark.parametrize(
    "data",
    [{}, {"k": 1}, {1: "v"}, {"": "v"}, [("k", "v")], "k=v", {"k": "x" * (64 * 1024)}],
)
def test_values_when_invalid_then_rejected(manager: SecretsManager, data: object) -> None:
    with pytest.raises(InvalidSecretValue):
        manager.store_secret("bad/value", data)  # type: ignore[arg-type]
    with pytest.raises(SecretNotFound):
        manager.get_secret("bad/value")


def test_values_when_unicode_and_near_limit_then_roundtrip(manager: SecretsManager) -> None:
    data = {"pässwörd": "ключ-密钥-🔑", "big": "y" * (60 * 1024)}
    manager.store_secret("uni/code", data)
    manager.clear_cache()
    assert manager.get_secret("uni/code") == data


def test_events_when_operations_then_published_without_values(
    manager: SecretsManager, bus_and_events: tuple[EventBus, list[SecurityEvent]]
) -> None:
    _, seen = bus_and_events
    manager.store_secret("ev/p", CREDS)
    manager.get_secret("ev/p")
    manager.delete_secret("ev/p")
    manager.undelete_secret("ev/p")
    manager.rotate_key()
    manager.destroy_secret("ev/p")
    types = [e.type for e in seen]
    for expected in (
        "secret.written",
        "secret.read",
        "secret.deleted",
        "key.rotated",
        "secret.destroyed",
    ):
        assert expected in types
    written = next(e for e in seen if e.type == "secret.written")
    assert written.subject == "ev/p" and written.details["version"] == 1
    assert written.actor == "local" and written.time is not None
    dump = repr(seen)
    for value in CREDS.values():
        assert value not in dump
