"""KEK rotation: add a version, re-wrap every data key in batches, retire what is unused.

Readers never fail: a row always holds a matching (kek_version, wrapped_key) pair, and an
old KEK is deleted only when no row references it (a foreign key enforces that even
against a writer that sealed under the old KEK while the rotation ran).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from tradeguard.errors import SecretIntegrityError
from tradeguard.secrets import envelope
from tradeguard.secrets.keks import KekMissing, KekUnopenable, KeyEncryptionKeys
from tradeguard.secrets.sql_schema import key_encryption_keys as kek_table
from tradeguard.secrets.sql_schema import secret_versions as versions_table
from tradeguard.storage import begin_write

BATCH = 500
KEY_STORE = "(key-encryption keys)"
_PASSES = 3


def rotate_keks(engine: Engine, keks: KeyEncryptionKeys, now: float) -> int:
    """Rotate and return the new KEK version; raise after the sweep if any blob was bad."""
    with begin_write(engine) as conn:
        newest = keks.newest_version(conn)
        if newest is not None:
            try:
                keks.get(newest, conn)  # a wrong master key must not add a KEK it alone can open
            except KekUnopenable as exc:
                raise SecretIntegrityError(
                    KEY_STORE, None, f"{exc} (wrong master key?); nothing was rotated"
                ) from None
        new_version = (newest or 0) + 1
        new_kek = keks.create(conn, new_version, now)
    keks.remember(new_version, new_kek)

    failures: list[tuple[str, str, int]] = []
    failed_keys: set[tuple[str, str, int]] = set()
    for _ in range(_PASSES):
        with engine.connect() as conn:
            pending = [
                row
                for row in conn.execute(
                    select(
                        versions_table.c.namespace, versions_table.c.path, versions_table.c.version
                    ).where(versions_table.c.kek_version < new_version)
                ).all()
                if (row.namespace, row.path, row.version) not in failed_keys
            ]
        if not pending:
            break
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            _rewrap_batch(engine, keks, batch, new_version, new_kek, failures, failed_keys)

    with engine.connect() as conn:
        old_versions = list(
            conn.execute(
                select(kek_table.c.version).where(kek_table.c.version < new_version)
            ).scalars()
        )
    retired = []
    for version in old_versions:
        try:
            with begin_write(engine) as conn:
                conn.execute(delete(kek_table).where(kek_table.c.version == version))
            retired.append(version)
        except IntegrityError:
            pass  # still referenced (a blob that failed to re-wrap): kept for the next rotation
    keks.forget(retired)
    if failures:
        namespace, path, version = failures[0]
        raise SecretIntegrityError(
            path,
            version,
            f"could not be re-wrapped during rotation to key version {new_version} "
            f"({len(failures)} blob(s) failed; namespace {namespace!r}); the rest rotated",
        )
    return new_version


def _rewrap_batch(
    engine: Engine,
    keks: KeyEncryptionKeys,
    batch: Sequence[Any],
    new_version: int,
    new_kek: AESGCM,
    failures: list[tuple[str, str, int]],
    failed_keys: set[tuple[str, str, int]],
) -> None:
    keys = [(r.namespace, r.path, r.version) for r in batch]
    with begin_write(engine) as conn:
        rows = conn.execute(
            select(
                versions_table.c.namespace,
                versions_table.c.path,
                versions_table.c.version,
                versions_table.c.kek_version,
                versions_table.c.wrapped_key,
            )
            .where(versions_table.c.kek_version < new_version)
            .where(
                versions_table.c.path.in_({k[1] for k in keys}),
            )
        ).all()
        wanted = set(keys)
        updates = []
        for row in rows:
            key = (row.namespace, row.path, row.version)
            if key not in wanted:
                continue
            try:
                old = keks.get(row.kek_version, conn)
                rewrapped = envelope.rewrap_data_key(
                    row.wrapped_key,
                    old_kek=old,
                    old_version=row.kek_version,
                    new_kek=new_kek,
                    new_version=new_version,
                    namespace=row.namespace,
                    path=row.path,
                    version=row.version,
                )
            except KekMissing:
                continue  # a concurrent rotation moved it; the next pass sees it again
            except (envelope.OpenFailed, KekUnopenable):
                failures.append((row.namespace, row.path, row.version))
                failed_keys.add(key)
                continue
            updates.append(
                {
                    "b_ns": row.namespace,
                    "b_path": row.path,
                    "b_version": row.version,
                    "b_old": row.kek_version,
                    "wrapped_key": rewrapped,
                    "kek_version": new_version,
                }
            )
        if updates:
            conn.execute(
                update(versions_table).where(
                    versions_table.c.namespace == bindparam("b_ns"),
                    versions_table.c.path == bindparam("b_path"),
                    versions_table.c.version == bindparam("b_version"),
                    versions_table.c.kek_version == bindparam("b_old"),
                ),
                updates,
            )
