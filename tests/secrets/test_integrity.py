"""Tamper evidence of the local (SQLite) secrets store.

Every stored blob is authenticated and bound to its namespace, path, version and KEK version:
flipping a byte, moving a row or opening with the wrong master key must raise
SecretIntegrityError naming the secret, publish a critical event, and leak no value.
"""

from __future__ import annotations

import base64
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, and_, create_engine, insert, select, update

from tradeguard.errors import SecretIntegrityError, SecretNotFound, SecretsError, VersionConflict
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import SecretsManager, SqlSecretsBackend, build_secrets_manager
from tradeguard.secrets.keks import KeyEncryptionKeys
from tradeguard.secrets.sql_schema import key_encryption_keys as kek_table
from tradeguard.secrets.sql_schema import secret_versions as versions_table
from tradeguard.settings import Settings
from tradeguard.storage import begin_write, create_database_engine

A, B = "brokers/alpaca", "brokers/ib"
EXPECTED_EVENTS = {"secret.written", "secret.read", "secret.integrity_failure", "key.rotated"}


def _row(namespace: str, path: str, version: int) -> Any:
    c = versions_table.c
    return and_(c.namespace == namespace, c.path == path, c.version == version)


def _value(tag: str) -> dict[str, str]:
    return {"api_key": f"{tag}-key-{os.urandom(16).hex()}", "secret": os.urandom(24).hex()}


@dataclass
class Store:
    """A populated SQLite store: A v1, A v2, B v1; a bus recording every event."""

    db: Path
    key: bytes
    engine: Engine
    raw: Engine  # a plain engine (no foreign keys) for tampering
    bus: EventBus
    events: list[SecurityEvent]
    manager: SecretsManager
    values: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)

    def fresh(self, key: bytes | None = None, namespace: str = "local") -> SecretsManager:
        """A new manager over the same database (empty KEK cache)."""
        backend = SqlSecretsBackend(
            self.engine, key or self.key, namespace=namespace, create_schema=False
        )
        return SecretsManager(backend, bus=self.bus, cache_ttl=0)

    def cell(self, path: str, version: int, column: str, namespace: str = "local") -> Any:
        query = select(versions_table.c[column]).where(_row(namespace, path, version))
        with self.raw.connect() as conn:
            return conn.execute(query).scalar_one()

    def blob(self, path: str, version: int, column: str) -> bytes:
        return bytes(self.cell(path, version, column))

    def set_row(
        self, path: str, version: int, values: dict[str, Any], namespace: str = "local"
    ) -> None:
        with self.raw.begin() as conn:
            query = update(versions_table).where(_row(namespace, path, version))
            assert conn.execute(query.values(**values)).rowcount == 1

    def kek_blob(self) -> bytes:
        with self.raw.connect() as conn:
            return bytes(conn.execute(select(kek_table.c.wrapped_key)).scalar_one())

    def set_kek(self, blob: bytes) -> None:
        with self.raw.begin() as conn:
            conn.execute(update(kek_table).values(wrapped_key=blob))

    def all_values(self) -> list[str]:
        return [v for data in self.values.values() for v in data.values()]


@pytest.fixture
def store(tmp_path: Path, master_key: bytes) -> Iterator[Store]:
    db = tmp_path / "db"
    engine = create_database_engine(f"sqlite:///{db}")
    raw = create_engine(f"sqlite:///{db}")
    bus = EventBus()
    events: list[SecurityEvent] = []
    bus.subscribe(events.append)
    manager = SecretsManager(SqlSecretsBackend(engine, master_key), bus=bus, cache_ttl=0)
    s = Store(db, master_key, engine, raw, bus, events, manager)
    for path, tag in ((A, "a1"), (A, "a2"), (B, "b1")):
        data = _value(tag)
        s.values[(path, manager.store_secret(path, data))] = data
    assert sorted(s.values) == [(A, 1), (A, 2), (B, 1)]
    yield s
    raw.dispose()
    engine.dispose()


def flip(blob: bytes, index: int, mask: int = 0x01) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= mask
    return bytes(changed)


POSITIONS = ["first", "nonce_end", "middle", "tag_start", "last"]


def position(name: str, size: int) -> int:
    """A byte of the nonce (start, end), of the body, or of the GCM tag (start, end)."""
    return {"first": 0, "nonce_end": 11, "middle": size // 2, "tag_start": size - 16}.get(
        name, size - 1
    )


@dataclass
class Witness:
    """What must never leak (values, master keys) and where events land."""

    events: list[SecurityEvent]
    values: list[str]
    keys: list[bytes]

    def clean(self, text: str) -> None:
        """``text`` carries no secret value, and no master key in base64url or hex."""
        for key in self.keys:
            assert base64.urlsafe_b64encode(key).decode().rstrip("=") not in text
            assert key.hex() not in text
        for value in self.values:
            assert value not in text

    def fails(self, manager: SecretsManager, path: str, version: int, ask: int | None) -> None:
        """Reading ``path`` (``ask``) raises an integrity error naming path and version and
        publishes one critical ``secret.integrity_failure`` event; neither leaks anything."""
        self.events.clear()
        with pytest.raises(SecretIntegrityError) as info:
            manager.get_secret(path, version=ask)
        exc = info.value
        assert (exc.path, exc.version) == (path, version)
        self.clean("".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args))
        failures = [e for e in self.events if e.type == "secret.integrity_failure"]
        assert len(failures) == 1
        event = failures[0]
        assert (event.severity, event.outcome, event.subject) == ("critical", "failure", path)
        assert event.details["version"] == version
        self.clean(repr(event))


def fails(
    store: Store, manager: SecretsManager, path: str, version: int, ask: int | None = None
) -> None:
    Witness(store.events, store.all_values(), [store.key]).fails(manager, path, version, ask)


def assert_others_intact(store: Store, *, skip: tuple[str, int]) -> None:
    manager = store.fresh()
    for (path, version), data in store.values.items():
        if (path, version) != skip:
            assert manager.get_secret(path, version=version) == data


@pytest.mark.parametrize("where", POSITIONS)
@pytest.mark.parametrize("column", ["ciphertext", "wrapped_key"])
def test_flipped_byte_in_version_row_is_detected(store: Store, column: str, where: str) -> None:
    blob = store.blob(A, 2, column)
    store.set_row(A, 2, {column: flip(blob, position(where, len(blob)))})
    fails(store, store.manager, A, 2, 2)
    fails(store, store.fresh(), A, 2)  # the latest version is the tampered one
    assert_others_intact(store, skip=(A, 2))


@pytest.mark.parametrize("where", POSITIONS)
def test_flipped_byte_in_kek_row_is_detected(store: Store, where: str) -> None:
    blob = store.kek_blob()
    store.set_kek(flip(blob, position(where, len(blob))))
    manager = store.fresh()  # a process that has not unwrapped the KEK yet
    fails(store, manager, B, 1)
    fails(store, manager, A, 1, 1)
    store.set_kek(blob)
    assert_others_intact(store, skip=("", 0))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=st.sampled_from(["ciphertext", "wrapped_key", "kek"]),
    index=st.integers(0, 10_000),
    mask=st.integers(1, 255),
)
def test_any_flipped_byte_is_detected(store: Store, target: str, index: int, mask: int) -> None:
    original = store.kek_blob() if target == "kek" else store.blob(B, 1, target)
    put = store.set_kek if target == "kek" else lambda b: store.set_row(B, 1, {target: b})
    try:
        put(flip(original, index % len(original), mask))
        fails(store, store.fresh(), B, 1)
    finally:
        put(original)
    assert store.fresh().get_secret(B) == store.values[(B, 1)]


@pytest.mark.parametrize("source", ["other_path", "other_version", "other_namespace"])
def test_row_copied_onto_another_secret_is_detected(store: Store, source: str) -> None:
    namespace = "local"
    if source == "other_namespace":  # same path and version, another store in the database
        namespace = "mirror"
        store.fresh(namespace=namespace).store_secret(A, _value("m1"))
        store.fresh(namespace=namespace).store_secret(A, _value("m2"))
    src = {"other_path": (B, 1), "other_version": (A, 1), "other_namespace": (A, 2)}[source]
    columns = {c: store.blob(*src, c) for c in ("ciphertext", "wrapped_key")}
    kek_version = store.cell(*src, "kek_version")
    store.set_row(A, 2, {"kek_version": kek_version, **columns}, namespace)
    fails(store, store.fresh(namespace=namespace), A, 2)
    fails(store, store.fresh(namespace=namespace), A, 2, 2)
    assert store.manager.get_secret(src[0], version=src[1]) == store.values[src]


@pytest.mark.parametrize("kind", ["other_valid_kek", "copied_kek_row", "missing_kek"])
def test_changed_kek_version_is_detected(store: Store, kind: str) -> None:
    if kind == "other_valid_kek":  # a genuine KEK v2 wrapped by the right master key
        with begin_write(store.engine) as conn:
            KeyEncryptionKeys(store.engine, store.key).create(conn, 2, 0.0)
    elif kind == "copied_kek_row":  # v1's wrapped KEK relabelled as v2
        with store.raw.begin() as conn:
            conn.execute(
                insert(kek_table).values(version=2, wrapped_key=store.kek_blob(), created_at=0.0)
            )
    store.set_row(A, 2, {"kek_version": 2 if kind != "missing_kek" else 99})
    fails(store, store.fresh(), A, 2, 2)
    assert_others_intact(store, skip=(A, 2))


def test_missing_kek_error_names_the_version_read_as_latest(store: Store) -> None:
    store.set_row(A, 2, {"kek_version": 99})
    # asked for the latest, the error (and the event) must still name the broken version
    fails(store, store.fresh(), A, 2)


def test_wrong_master_key_is_detected_and_leaks_nothing(tmp_path: Path) -> None:
    home = tmp_path / "wk"
    right, wrong = os.urandom(32), os.urandom(32)
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)

    def manager(key: bytes) -> SecretsManager:
        text = base64.urlsafe_b64encode(key).decode().rstrip("=")
        return build_secrets_manager(
            Settings(home=home, master_key=SecretStr(text), secrets_cache_ttl=0), bus=bus
        )

    owner = manager(right)
    old, data = _value("old"), _value("owner")
    owner.store_secret("ex/kraken", old)
    assert owner.store_secret("ex/kraken", data) == 2
    witness = Witness(seen, [*old.values(), *data.values()], [right, wrong])
    intruder = manager(wrong)  # a second manager over the same database file
    for version, ask in ((2, None), (2, 2), (1, 1)):
        witness.fails(intruder, "ex/kraken", version, ask)
    with pytest.raises(SecretIntegrityError) as info:
        intruder.get_secret("ex/kraken")
    witness.clean(f"{info.value}|{info.value!r}|{intruder!r}|{intruder.backend!r}")
    assert owner.get_secret("ex/kraken") == data


def test_write_with_wrong_master_key_raises_a_secrets_error(store: Store) -> None:
    intruder = store.fresh(key=os.urandom(32))
    with pytest.raises(SecretsError):
        intruder.store_secret("intruder/x", {"k": "v"})
    assert store.manager.list_secrets("intruder") == []


def test_rotation_with_wrong_master_key_does_not_lock_out_the_owner(store: Store) -> None:
    intruder = store.fresh(key=os.urandom(32))
    with pytest.raises(SecretsError):
        intruder.rotate_key()
    # the failed rotation must not leave a KEK behind that only the intruder's key opens
    owner = store.fresh()
    assert owner.store_secret(A, {"k": "after"}) == 3
    assert owner.get_secret(A) == {"k": "after"}
    assert_others_intact(store, skip=("", 0))


def test_no_error_repr_or_event_leaks_a_value(store: Store) -> None:
    messages: list[str] = [repr(store.manager), repr(store.manager.backend), str(store.manager)]
    assert store.manager.get_secret(A, version=1) == store.values[(A, 1)]
    with pytest.raises(VersionConflict) as conflict:
        store.manager.store_secret(A, _value("late"), cas=1)
    store.manager.delete_secret(A, versions=[2])
    with pytest.raises(SecretNotFound) as missing:
        store.manager.get_secret(A, version=2)
    store.set_row(B, 1, {"ciphertext": flip(store.blob(B, 1, "ciphertext"), 20)})
    with pytest.raises(SecretIntegrityError) as broken:
        store.manager.get_secret(B)
    for exc in (conflict.value, missing.value, broken.value):
        messages += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    store.manager.rotate_key()
    messages += [repr(e) for e in store.events]
    assert {e.type for e in store.events} >= EXPECTED_EVENTS
    Witness(store.events, store.all_values(), [store.key]).clean("\n".join(messages))


def _files(db: Path) -> dict[str, bytes]:
    paths = (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
    return {p.name: p.read_bytes() for p in paths if p.exists()}


def _chunks(blobs: list[bytes], size: int = 24) -> list[bytes]:
    """Pieces of random blobs (a blob in overflow pages is not contiguous on disk)."""
    return [b[i : i + size] for b in blobs for i in range(0, len(b) - size + 1, size)]


def test_destroy_nulls_the_row_and_leaves_no_bytes_on_disk(store: Store) -> None:
    big = {"pem": "BEGIN-" + os.urandom(3000).hex(), "note": "✓ café " + os.urandom(8).hex()}
    assert store.manager.store_secret(A, big) == 3  # ~6 KB: spills into overflow pages
    store.values[(A, 3)] = big
    gone = [(A, 1), (A, 3), (B, 1)]
    chunks = _chunks([store.blob(p, v, c) for p, v in gone for c in ("ciphertext", "wrapped_key")])
    before = b"".join(_files(store.db).values())
    found = sum(chunk in before for chunk in chunks)
    assert found >= len(chunks) * 0.9  # the scan does see the blobs while they exist

    store.manager.destroy_secret(A, versions=[1, 3])
    store.manager.destroy_secret(B)
    with store.raw.connect() as conn:
        rows = conn.execute(
            select(versions_table).order_by(versions_table.c.path, versions_table.c.version)
        ).all()
    assert [(r.path, r.version, r.destroyed) for r in rows] == [
        (A, 1, True),
        (A, 2, False),
        (A, 3, True),
    ]
    for row in rows:
        nulls = (row.ciphertext, row.wrapped_key, row.kek_version)
        assert (nulls == (None, None, None)) == row.destroyed
    with pytest.raises(SecretNotFound):
        store.manager.get_secret(A, version=3)
    assert store.manager.get_secret(A) == store.values[(A, 2)]

    for name, content in _files(store.db).items():
        left = sum(chunk in content for chunk in chunks)
        assert left == 0, f"{left} pieces of destroyed blobs survive in {name}"
        for path_version in gone:
            for text in store.values[path_version].values():
                assert text.encode() not in content and text.encode("utf-16-le") not in content
