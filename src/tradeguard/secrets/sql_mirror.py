"""The local copy of a remote backend's versions (the Vault fallback), in the SQL store."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from tradeguard.errors import BackendUnavailable, SecretIntegrityError
from tradeguard.secrets.keks import KekUnopenable
from tradeguard.secrets.paths import encode_data
from tradeguard.secrets.sql_backend import WRITE_ATTEMPTS, SqlSecretsBackend
from tradeguard.secrets.sql_schema import secret_versions as versions_table
from tradeguard.secrets.sql_schema import secrets as secrets_table
from tradeguard.storage import begin_write


class SqlMirrorStore(SqlSecretsBackend):
    """A sealed SQL store that takes the remote's version numbers as they are."""

    def put_exact(self, path: str, version: int, data: Mapping[str, str]) -> None:
        """Store ``data`` as exactly ``version`` (mirroring another backend's numbering)."""
        plaintext = encode_data(data)

        def write() -> None:
            now = self._now()
            with begin_write(self._engine) as conn:
                conn.execute(
                    delete(versions_table).where(
                        self._key(path), versions_table.c.version == version
                    )
                )
                row = self._path_row(conn, path)
                if row is None:
                    conn.execute(
                        insert(secrets_table).values(
                            namespace=self._namespace,
                            path=path,
                            current_version=version,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                elif row.current_version < version:
                    conn.execute(
                        update(secrets_table)
                        .where(
                            secrets_table.c.namespace == self._namespace,
                            secrets_table.c.path == path,
                        )
                        .values(current_version=version, updated_at=now)
                    )
                try:
                    kek_version, kek = self._keks.current(conn, now)
                except KekUnopenable as exc:
                    raise SecretIntegrityError(path, version, str(exc)) from None
                self._insert_version(conn, path, version, plaintext, kek_version, kek, now)
            self._keks.remember(kek_version, kek)

        for _ in range(WRITE_ATTEMPTS):
            try:
                return self._guard(write)
            except IntegrityError:
                continue
        raise BackendUnavailable(f"could not mirror {path}: too much contention")

    def forget(self, path: str, versions: tuple[int, ...] | None) -> None:
        """Drop mirrored copies; a missing path or version is not an error here."""

        def write() -> None:
            with begin_write(self._engine) as conn:
                query = delete(versions_table).where(self._key(path))
                if versions is not None:
                    query = query.where(versions_table.c.version.in_(versions))
                conn.execute(query)

        self._guard(write)
        self._scrub()
