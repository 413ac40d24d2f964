"""Key-encryption keys: versioned, wrapped by the master key, cached unwrapped in memory."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, func, insert, select

from tradeguard.secrets import envelope
from tradeguard.secrets.sql_schema import key_encryption_keys as kek_table


class KekMissing(Exception):
    """The KEK version is not (or no longer) in the table (internal)."""


class KekUnopenable(Exception):
    """The KEK exists but the master key does not open it (internal)."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"key-encryption key v{version} does not open with this master key")


class KeyEncryptionKeys:
    """Loads, creates and caches KEKs; the master key never leaves this object."""

    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self._engine = engine
        self._master = AESGCM(master_key)
        self._cache: dict[int, AESGCM] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyEncryptionKeys(cached_versions={sorted(self._cache)})"

    def get(self, version: int, connection: Connection | None = None) -> AESGCM:
        """The unwrapped KEK ``version``."""
        cached = self._cache.get(version)
        if cached is not None:
            return cached
        query = select(kek_table.c.wrapped_key).where(kek_table.c.version == version)
        if connection is None:
            with self._engine.connect() as conn:
                wrapped = conn.execute(query).scalar_one_or_none()
        else:
            wrapped = connection.execute(query).scalar_one_or_none()
        if wrapped is None:
            raise KekMissing(version)
        try:
            key = AESGCM(envelope.unwrap_kek(self._master, wrapped, version))
        except envelope.OpenFailed as exc:
            raise KekUnopenable(version) from exc
        with self._lock:
            self._cache[version] = key
        return key

    def current(self, connection: Connection, now: float) -> tuple[int, AESGCM]:
        """The newest KEK, created as version 1 if none exists (inside the caller's txn)."""
        version = connection.execute(select(func.max(kek_table.c.version))).scalar_one_or_none()
        if version is None:
            return 1, self.create(connection, 1, now)
        return version, self.get(version, connection)

    def newest_version(self, connection: Connection) -> int | None:
        """The highest KEK version stored, if any."""
        return connection.execute(select(func.max(kek_table.c.version))).scalar_one_or_none()

    def create(self, connection: Connection, version: int, now: float) -> AESGCM:
        """Insert a new random KEK as ``version`` (the caller's transaction commits it)."""
        raw = envelope.new_key()
        connection.execute(
            insert(kek_table).values(
                version=version,
                wrapped_key=envelope.wrap_kek(self._master, raw, version),
                created_at=now,
            )
        )
        return AESGCM(raw)

    def remember(self, version: int, key: AESGCM) -> None:
        """Cache a KEK once its creating transaction committed."""
        with self._lock:
            self._cache[version] = key

    def forget(self, versions: list[int]) -> None:
        """Drop retired KEKs from memory."""
        with self._lock:
            for version in versions:
                self._cache.pop(version, None)
