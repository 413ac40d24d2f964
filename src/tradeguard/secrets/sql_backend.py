"""The local secrets store: envelope-encrypted versions in a SQL database.

Writes are transactions (``BEGIN IMMEDIATE`` on SQLite), so check-and-set holds across
threads and processes, and a process killed mid-write leaves every committed version intact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import (
    BackendUnavailable,
    SecretIntegrityError,
    SecretNotFound,
    VersionConflict,
)
from tradeguard.secrets import envelope
from tradeguard.secrets.keks import KekMissing, KekUnopenable, KeyEncryptionKeys
from tradeguard.secrets.models import SecretMetadata, VersionInfo
from tradeguard.secrets.paths import decode_data, encode_data
from tradeguard.secrets.sql_schema import metadata as schema
from tradeguard.secrets.sql_schema import secret_versions as versions_table
from tradeguard.secrets.sql_schema import secrets as secrets_table
from tradeguard.storage import begin_read, begin_write, is_sqlite

T = TypeVar("T")

_V = versions_table
_READ_COLUMNS = (
    _V.c.version, _V.c.deleted_at, _V.c.destroyed, _V.c.kek_version, _V.c.wrapped_key,
    _V.c.ciphertext,
)  # fmt: skip
_OF_PATH = and_(_V.c.namespace == bindparam("ns"), _V.c.path == bindparam("path"))
# Built once: composing a select() costs more than running it on SQLite.
_READ_LATEST_LIVE = (
    select(*_READ_COLUMNS)
    .where(_OF_PATH, _V.c.deleted_at.is_(None), _V.c.destroyed.is_(False))
    .order_by(_V.c.version.desc())
    .limit(1)
)
_READ_VERSION = select(*_READ_COLUMNS).where(_OF_PATH, _V.c.version == bindparam("version"))
_CURRENT_VERSION = select(secrets_table.c.current_version).where(
    secrets_table.c.namespace == bindparam("ns"), secrets_table.c.path == bindparam("path")
)
WRITE_ATTEMPTS = 8
_READ_ATTEMPTS = 4
_DESTROYED = "destroyed; it cannot be restored"


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class SqlSecretsBackend:
    """Secrets sealed with AES-256-GCM data keys under versioned KEKs, stored via SQLAlchemy.

    ``namespace`` separates independent stores sharing one database (the Vault mirror uses
    its own). Every blob is bound to its namespace, path and version.
    """

    kind = "local"

    def __init__(
        self,
        engine: Engine,
        master_key: bytes,
        *,
        namespace: str = "local",
        clock: Clock = SYSTEM_CLOCK,
        create_schema: bool = True,
    ) -> None:
        self._engine = engine
        self._keks = KeyEncryptionKeys(engine, master_key)
        self._namespace = namespace
        self._clock = clock
        if create_schema:
            self._guard(lambda: schema.create_all(engine, checkfirst=True))

    def __repr__(self) -> str:
        dialect = self._engine.dialect.name
        return f"SqlSecretsBackend(dialect={dialect!r}, namespace={self._namespace!r})"

    def close(self) -> None:
        """Close pooled database connections."""
        self._engine.dispose()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _guard(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except OperationalError as exc:
            raise BackendUnavailable(
                f"the secrets database is unavailable ({type(exc.orig).__name__})"
            ) from exc

    def _key(self, path: str) -> Any:
        return and_(versions_table.c.namespace == self._namespace, versions_table.c.path == path)

    def _path_row(self, conn: Connection, path: str) -> Any:
        return conn.execute(_CURRENT_VERSION, {"ns": self._namespace, "path": path}).first()

    def _open(self, path: str, row: Any, conn: Connection | None = None) -> dict[str, str]:
        sealed = envelope.SealedValue(row.ciphertext, row.wrapped_key, row.kek_version)
        try:
            kek = self._keks.get(row.kek_version, conn)
            plaintext = envelope.open_sealed(
                sealed, kek=kek, namespace=self._namespace, path=path, version=row.version
            )
            return decode_data(plaintext)
        except KekUnopenable as exc:
            raise SecretIntegrityError(
                path, row.version, f"{exc} (wrong master key, or the key table was altered)"
            ) from None
        except envelope.OpenFailed:
            raise SecretIntegrityError(
                path, row.version, "ciphertext or wrapped key does not authenticate"
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise SecretIntegrityError(path, row.version, "payload is not valid data") from None

    # -- writes ------------------------------------------------------------------------

    def put(self, path: str, data: Mapping[str, str], *, cas: int | None) -> int:
        """Write the next version; ``cas`` must equal the current version (0: absent)."""
        plaintext = encode_data(data)
        for _ in range(WRITE_ATTEMPTS):
            try:
                return self._guard(lambda: self._put_once(path, plaintext, cas))
            except IntegrityError:
                if cas is not None:
                    current = self._guard(lambda: self._current_version(path))
                    raise VersionConflict(path, cas, current) from None
        raise BackendUnavailable(f"could not write {path}: too much contention, try again")

    def _current_version(self, path: str) -> int:
        with self._engine.connect() as conn:
            row = self._path_row(conn, path)
        return 0 if row is None else int(row.current_version)

    def _put_once(self, path: str, plaintext: bytes, cas: int | None) -> int:
        now = self._now()
        with begin_write(self._engine) as conn:
            row = self._path_row(conn, path)
            current = 0 if row is None else int(row.current_version)
            if cas is not None and cas != current:
                raise VersionConflict(path, cas, current)
            new_version = current + 1
            if row is None:
                conn.execute(
                    insert(secrets_table).values(
                        namespace=self._namespace,
                        path=path,
                        current_version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                moved = conn.execute(
                    update(secrets_table)
                    .where(
                        secrets_table.c.namespace == self._namespace,
                        secrets_table.c.path == path,
                        secrets_table.c.current_version == current,
                    )
                    .values(current_version=new_version, updated_at=now)
                ).rowcount
                if moved != 1:  # another writer got there first (PostgreSQL read committed)
                    raise IntegrityError("current_version moved", None, Exception("race"))
            try:
                kek_version, kek = self._keks.current(conn, now)
            except KekUnopenable as exc:
                raise SecretIntegrityError(
                    path, new_version, f"{exc} (wrong master key?); nothing was written"
                ) from None
            self._insert_version(conn, path, new_version, plaintext, kek_version, kek, now)
        self._keks.remember(kek_version, kek)
        return new_version

    def _insert_version(
        self,
        conn: Connection,
        path: str,
        version: int,
        plaintext: bytes,
        kek_version: int,
        kek: Any,
        now: float,
    ) -> None:
        sealed = envelope.seal(
            plaintext,
            kek=kek,
            kek_version=kek_version,
            namespace=self._namespace,
            path=path,
            version=version,
        )
        conn.execute(
            insert(versions_table).values(
                namespace=self._namespace,
                path=path,
                version=version,
                created_at=now,
                deleted_at=None,
                destroyed=False,
                kek_version=sealed.kek_version,
                wrapped_key=sealed.wrapped_key,
                ciphertext=sealed.ciphertext,
            )
        )

    # -- reads -------------------------------------------------------------------------

    def get(self, path: str, version: int | None) -> tuple[int, dict[str, str]]:
        """The asked version, or the highest live version of ``path``."""
        params: dict[str, object] = {"ns": self._namespace, "path": path}
        query = _READ_LATEST_LIVE
        if version is not None:
            query, params["version"] = _READ_VERSION, version
        row_version = version
        for _ in range(_READ_ATTEMPTS):
            try:
                with self._engine.connect() as conn:
                    row = conn.execute(query, params).first()
                    if row is None or row.deleted_at is not None or row.destroyed:
                        raise SecretNotFound(path, version)
                    row_version = int(row.version)
                    return row_version, self._open(path, row, conn)
            except KekMissing:
                continue  # a rotation retired that KEK after we read the row: read again
            except OperationalError as exc:
                raise BackendUnavailable(
                    f"the secrets database is unavailable ({type(exc.orig).__name__})"
                ) from exc
        raise SecretIntegrityError(path, row_version, "its key-encryption key is missing")

    def list(self, prefix: str) -> list[str]:
        """Paths in this namespace that start with ``prefix``."""
        query = (
            select(secrets_table.c.path)
            .where(secrets_table.c.namespace == self._namespace)
            .order_by(secrets_table.c.path)
        )
        if prefix:
            query = query.where(secrets_table.c.path.startswith(prefix, autoescape=True))
        with self._engine.connect() as conn:
            return [str(p) for p in self._guard(lambda: conn.execute(query).scalars().all())]

    def metadata(self, path: str) -> SecretMetadata:
        """Every version of ``path`` with its state."""
        with begin_read(self._engine) as conn:
            head = self._guard(
                lambda: conn.execute(
                    select(secrets_table).where(
                        secrets_table.c.namespace == self._namespace, secrets_table.c.path == path
                    )
                ).first()
            )
            if head is None:
                raise SecretNotFound(path)
            rows = conn.execute(
                select(
                    versions_table.c.version,
                    versions_table.c.created_at,
                    versions_table.c.deleted_at,
                    versions_table.c.destroyed,
                )
                .where(self._key(path))
                .order_by(versions_table.c.version)
            ).all()
        return SecretMetadata(
            path=path,
            current_version=int(head.current_version),
            created_at=datetime.fromtimestamp(head.created_at, UTC),
            updated_at=datetime.fromtimestamp(head.updated_at, UTC),
            versions=tuple(
                VersionInfo(
                    int(r.version),
                    datetime.fromtimestamp(r.created_at, UTC),
                    _when(r.deleted_at),
                    bool(r.destroyed),
                )
                for r in rows
            ),
        )

    # -- lifecycle ---------------------------------------------------------------------

    def _targets(
        self, conn: Connection, path: str, versions: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        head = self._path_row(conn, path)
        if head is None:
            raise SecretNotFound(path)
        if versions is None:
            return (int(head.current_version),)
        existing = set(
            conn.execute(
                select(versions_table.c.version).where(
                    self._key(path), versions_table.c.version.in_(versions)
                )
            ).scalars()
        )
        for number in versions:
            if number not in existing:
                raise SecretNotFound(path, number)
        return versions

    def delete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Soft-delete versions (default: the current one); reversible."""
        return self._mark(path, versions, deleted=True)

    def undelete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Undo a soft delete (default: the current version); destroyed stays destroyed."""
        return self._mark(path, versions, deleted=False)

    def _mark(
        self, path: str, versions: tuple[int, ...] | None, *, deleted: bool
    ) -> tuple[int, ...]:
        def write() -> tuple[int, ...]:
            with begin_write(self._engine) as conn:
                targets = self._targets(conn, path, versions)
                if not deleted:
                    destroyed = conn.execute(
                        select(versions_table.c.version).where(
                            self._key(path),
                            versions_table.c.version.in_(targets),
                            versions_table.c.destroyed.is_(True),
                        )
                    ).first()
                    if destroyed is not None:
                        raise SecretNotFound(path, destroyed.version, why=_DESTROYED)
                conn.execute(
                    update(versions_table)
                    .where(
                        self._key(path),
                        versions_table.c.version.in_(targets),
                        versions_table.c.destroyed.is_(False),
                    )
                    .values(deleted_at=self._now() if deleted else None)
                )
                return targets

        return self._guard(write)

    def destroy(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Erase ciphertext and data keys (default: every version and the path itself)."""

        def write() -> tuple[int, ...]:
            with begin_write(self._engine) as conn:
                if versions is None:
                    if self._path_row(conn, path) is None:
                        raise SecretNotFound(path)
                    targets = tuple(
                        conn.execute(
                            select(versions_table.c.version).where(self._key(path))
                        ).scalars()
                    )
                    conn.execute(delete(versions_table).where(self._key(path)))
                    conn.execute(
                        delete(secrets_table).where(
                            secrets_table.c.namespace == self._namespace,
                            secrets_table.c.path == path,
                        )
                    )
                    return targets
                targets = self._targets(conn, path, versions)
                conn.execute(
                    update(versions_table)
                    .where(self._key(path), versions_table.c.version.in_(targets))
                    .values(destroyed=True, ciphertext=None, wrapped_key=None, kek_version=None)
                )
                return targets

        targets = self._guard(write)
        self._scrub()
        return targets

    def _scrub(self) -> None:
        """Push freed pages out of the SQLite WAL so destroyed bytes do not linger there."""
        if is_sqlite(self._engine):
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- rotation ----------------------------------------------------------------------

    def rotate_key(self) -> int:
        """Add a KEK version, re-wrap every data key under it, retire unused old KEKs."""
        from tradeguard.secrets.rotation import rotate_keks

        return self._guard(lambda: rotate_keks(self._engine, self._keks, self._now()))
