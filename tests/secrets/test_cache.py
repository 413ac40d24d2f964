"""The cache: TTL on an injected clock, LRU bound, and invalidation by the manager's own writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from tradeguard.clock import FixedClock
from tradeguard.errors import SecretNotFound
from tradeguard.secrets import SecretsManager, SqlSecretsBackend
from tradeguard.secrets.cache import SecretCache
from tradeguard.secrets.sql_schema import secret_versions
from tradeguard.storage import create_database_engine


@pytest.fixture
def backend(tmp_path: Path, master_key: bytes, clock: FixedClock) -> Iterator[SqlSecretsBackend]:
    store = SqlSecretsBackend(
        create_database_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), master_key, clock=clock
    )
    yield store
    store.close()


class CountingBackend:
    """Wraps a real store and counts reads that reach it."""

    def __init__(self, inner: SqlSecretsBackend) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def get(self, path: str, version: int | None) -> tuple[int, dict[str, str]]:
        self.reads += 1
        return self.inner.get(path, version)


def manager_over(backend: SqlSecretsBackend, clock: FixedClock, **kwargs: object):  # type: ignore[no-untyped-def]
    counting = CountingBackend(backend)
    return SecretsManager(counting, clock=clock, **kwargs), counting  # type: ignore[arg-type]


def test_get_when_cached_then_backend_not_read_until_ttl(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    manager, counting = manager_over(backend, clock, cache_ttl=300)
    manager.store_secret("a/b", {"k": "v"})
    for _ in range(5):
        assert manager.get_secret("a/b") == {"k": "v"}
    assert counting.reads == 1
    clock.advance(299)
    manager.get_secret("a/b")
    assert counting.reads == 1
    clock.advance(2)
    manager.get_secret("a/b")
    assert counting.reads == 2


def test_cache_when_other_writer_changes_value_then_stale_until_refresh(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    manager, _ = manager_over(backend, clock)
    manager.store_secret("a/b", {"k": "v1"})
    assert manager.get_secret("a/b") == {"k": "v1"}
    backend.put("a/b", {"k": "v2"}, cas=None)  # another process, bypassing this cache
    assert manager.get_secret("a/b") == {"k": "v1"}
    assert manager.refresh("a/b") == {"k": "v2"}
    assert manager.get_secret("a/b") == {"k": "v2"}


@pytest.mark.parametrize("operation", ["store", "delete", "destroy", "rotate"])
def test_cache_when_own_mutation_then_invalidated_at_once(
    backend: SqlSecretsBackend, clock: FixedClock, operation: str
) -> None:
    manager, counting = manager_over(backend, clock)
    manager.store_secret("a/b", {"k": "v1"})
    manager.store_secret("a/b", {"k": "v2"})
    assert manager.get_secret("a/b") == {"k": "v2"}
    reads = counting.reads
    if operation == "store":
        manager.store_secret("a/b", {"k": "v3"})
        assert manager.get_secret("a/b") == {"k": "v3"}
    elif operation == "delete":
        manager.delete_secret("a/b")
        assert manager.get_secret("a/b") == {"k": "v1"}
    elif operation == "destroy":
        manager.destroy_secret("a/b")
        with pytest.raises(SecretNotFound):
            manager.get_secret("a/b")
    else:
        manager.rotate_key()
        assert manager.get_secret("a/b") == {"k": "v2"}
    assert counting.reads == reads + 1


def test_cache_when_versions_cached_then_each_keyed_separately(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    manager, counting = manager_over(backend, clock)
    manager.store_secret("a/b", {"k": "v1"})
    manager.store_secret("a/b", {"k": "v2"})
    assert manager.get_secret("a/b", version=1) == {"k": "v1"}
    assert manager.get_secret("a/b") == {"k": "v2"}
    assert manager.get_secret("a/b", version=2) == {"k": "v2"}  # filled by the latest read
    assert counting.reads == 2


def test_cache_when_full_then_least_recently_used_evicted() -> None:
    clock = FixedClock()
    cache = SecretCache(clock, ttl=60, max_entries=3)
    for name in "abc":
        cache.put(name, 1, 1, {"k": name})
    assert cache.get("a", 1) is not None  # a becomes most recent
    cache.put("d", 1, 1, {"k": "d"})
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) is not None and cache.get("d", 1) is not None
    assert len(cache) == 3


def test_cache_when_ttl_zero_then_disabled(backend: SqlSecretsBackend, clock: FixedClock) -> None:
    manager, counting = manager_over(backend, clock, cache_ttl=0)
    manager.store_secret("a/b", {"k": "v"})
    manager.get_secret("a/b")
    manager.get_secret("a/b")
    assert counting.reads == 2


def test_cache_when_jitter_then_expiry_spread_below_ttl() -> None:
    clock = FixedClock()
    cache = SecretCache(clock, ttl=100, max_entries=1000, jitter=0.2)
    for i in range(200):
        cache.put(f"p{i}", None, 1, {"k": "v"})
    clock.advance(79.9)
    assert all(cache.get(f"p{i}", None) is not None for i in range(200))
    clock.advance(20.2)
    assert all(cache.get(f"p{i}", None) is None for i in range(200))


def test_cache_when_tampered_after_caching_then_next_miss_detects(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    manager, _ = manager_over(backend, clock, cache_ttl=10)
    manager.store_secret("a/b", {"k": "v"})
    manager.get_secret("a/b")
    with backend._engine.begin() as conn:
        conn.execute(update(secret_versions).values(ciphertext=b"\x00" * 60))
    clock.advance(11)
    from tradeguard.errors import SecretIntegrityError

    with pytest.raises(SecretIntegrityError):
        manager.get_secret("a/b")


def test_cache_when_many_threads_read_and_write_then_no_error_and_final_value_wins(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    manager, _ = manager_over(backend, clock, cache_size=8)
    for i in range(16):
        manager.store_secret(f"t/{i}", {"k": "0"})
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for n in range(400):
                manager.get_secret(f"t/{n % 16}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(16):
        manager.store_secret(f"t/{i}", {"k": "1"})
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(manager.get_secret(f"t/{i}") == {"k": "1"} for i in range(16))


def test_cache_when_read_raced_by_own_write_then_stale_value_not_cached(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    """A read that began before this process's write must not re-cache the old value."""
    manager, counting = manager_over(backend, clock)
    manager.store_secret("race/p", {"k": "old"})
    original_get = counting.inner.get

    def slow_get(path: str, version: int | None) -> tuple[int, dict[str, str]]:
        result = original_get(path, version)  # reads the old value...
        backend.put(path, {"k": "new"}, cas=None)  # ...then a write lands
        manager._cache.invalidate(path)
        return result

    counting.inner = type("Slow", (), {"get": staticmethod(slow_get)})()  # type: ignore[assignment]
    assert manager.get_secret("race/p") == {"k": "old"}
    counting.inner = backend
    assert manager.get_secret("race/p") == {"k": "new"}


@pytest.mark.parametrize("version", [True, 1.0, 0, -1, "1"])
def test_get_when_version_not_positive_int_then_rejected_even_when_cached(
    backend: SqlSecretsBackend, clock: FixedClock, version: object
) -> None:
    manager, _ = manager_over(backend, clock)
    manager.store_secret("a/b", {"k": "v"})
    manager.get_secret("a/b", version=1)
    from tradeguard.errors import InvalidSecretValue

    with pytest.raises(InvalidSecretValue):
        manager.get_secret("a/b", version=version)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [["a", "b"], {"a": 1}, None, 7])
def test_get_when_path_not_a_string_then_invalid_path_not_type_error(
    backend: SqlSecretsBackend, clock: FixedClock, path: object
) -> None:
    from tradeguard.errors import InvalidSecretPath

    manager, _ = manager_over(backend, clock)
    with pytest.raises(InvalidSecretPath):
        manager.get_secret(path)  # type: ignore[arg-type]


def test_cache_hit_when_read_then_counted_not_published(
    backend: SqlSecretsBackend, clock: FixedClock
) -> None:
    from tradeguard.events import EventBus, SecurityEvent

    bus = EventBus(clock=clock)
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    manager = SecretsManager(backend, clock=clock, bus=bus)
    manager.store_secret("a/b", {"k": "v"})
    for _ in range(3):
        manager.get_secret("a/b")
    reads = [e for e in seen if e.type == "secret.read"]
    assert len(reads) == 1 and reads[0].details["version"] == 1
    assert manager.cache_hits == 2
