"""SecretsManager: the safe API over a backend, with a cache and an event for every operation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import InvalidSecretValue, SecretIntegrityError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets.backend import SecretsBackend
from tradeguard.secrets.cache import SecretCache
from tradeguard.secrets.models import SecretMetadata
from tradeguard.secrets.paths import (
    encode_data,
    validate_path,
    validate_prefix,
    validate_versions,
)


class SecretsManager:
    """Versioned secrets: store, read (cached), list, delete, undelete, destroy, rotate.

    Every call publishes a ``secret.*`` event carrying path, version and actor — never a
    value. Writes, deletes and rotation invalidate the cache at once.
    """

    def __init__(
        self,
        backend: SecretsBackend,
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        cache_ttl: float = 300.0,
        cache_size: int = 1024,
        cache_jitter: float = 0.0,
        actor: str = "local",
    ) -> None:
        self._backend = backend
        self._bus = bus if bus is not None else EventBus(clock=clock)
        self._cache = SecretCache(clock, ttl=cache_ttl, max_entries=cache_size, jitter=cache_jitter)
        self._actor = actor
        self.cache_hits = 0

    def __repr__(self) -> str:
        return f"SecretsManager(backend={self._backend.kind!r}, cache={self._cache!r})"

    @property
    def backend(self) -> SecretsBackend:
        """The backend in use."""
        return self._backend

    def _publish(
        self,
        kind: str,
        path: str | None,
        *,
        severity: Any = "info",
        outcome: str = "success",
        **details: Any,
    ) -> None:
        if not self._bus.has_subscribers:
            return
        if path is not None:
            details["path"] = path
        self._bus.publish(
            SecurityEvent(
                kind,
                actor=self._actor,
                subject=path,
                outcome=outcome,
                severity=severity,
                details=details,
            )
        )

    def store_secret(self, path: str, data: Mapping[str, str], *, cas: int | None = None) -> int:
        """Write ``data`` as a new version of ``path`` and return its number.

        ``cas=N`` succeeds only if the current version is N (``cas=0``: only if absent);
        otherwise :class:`~tradeguard.errors.VersionConflict`.
        """
        validate_path(path)
        encode_data(data)
        if cas is not None and (type(cas) is not int or cas < 0):
            raise InvalidSecretValue("cas must be a non-negative integer")
        try:
            version = self._backend.put(path, dict(data), cas=cas)
        finally:
            self._cache.invalidate(path)
        self._publish("secret.written", path, version=version, cas=cas)
        return version

    def get_secret(self, path: str, *, version: int | None = None) -> dict[str, str]:
        """The latest live version of ``path`` (or ``version``), as a new dict.

        A read from the backend publishes ``secret.read``; a cache hit does not (the
        process already holds the value; hits are counted in ``cache_hits``).
        """
        if version is not None and (type(version) is not int or version <= 0):
            raise InvalidSecretValue("a version must be a positive integer")
        try:
            hit = self._cache.get(path, version)
        except TypeError:  # unhashable: certainly not a valid path
            hit = None
        if hit is not None:
            self.cache_hits += 1
            return dict(hit[1])
        validate_path(path)
        epoch = self._cache.epoch
        try:
            number, data = self._backend.get(path, version)
        except SecretIntegrityError as exc:
            self._publish(
                "secret.integrity_failure", path, severity="critical", outcome="failure",
                version=exc.version, reason=exc.reason,
            )  # fmt: skip
            raise
        self._cache.put(path, version, number, data, epoch)
        self._publish("secret.read", path, version=number)
        return dict(data)

    def refresh(self, path: str) -> dict[str, str]:
        """Drop ``path`` from the cache and read it again from the backend."""
        validate_path(path)
        self._cache.invalidate(path)
        return self.get_secret(path)

    def list_secrets(self, prefix: str = "") -> list[str]:
        """Paths that start with ``prefix``, sorted."""
        paths = self._backend.list(validate_prefix(prefix))
        self._publish("secret.listed", None, prefix=prefix, count=len(paths))
        return paths

    def secret_metadata(self, path: str) -> SecretMetadata:
        """Versions of ``path`` with created/deleted/destroyed, and the current version."""
        return self._backend.metadata(validate_path(path))

    def delete_secret(self, path: str, *, versions: Iterable[int] | None = None) -> None:
        """Soft-delete versions (default: the current one); ``undelete_secret`` reverses it."""
        chosen = validate_versions(versions)
        try:
            done = self._backend.delete(validate_path(path), chosen)
        finally:
            self._cache.invalidate(path)
        self._publish("secret.deleted", path, versions=list(done))

    def undelete_secret(self, path: str, *, versions: Iterable[int] | None = None) -> None:
        """Restore soft-deleted versions (default: the current one)."""
        chosen = validate_versions(versions)
        try:
            done = self._backend.undelete(validate_path(path), chosen)
        finally:
            self._cache.invalidate(path)
        self._publish("secret.undeleted", path, versions=list(done))

    def destroy_secret(self, path: str, *, versions: Iterable[int] | None = None) -> None:
        """Irreversibly erase versions (default: every version, and the path itself)."""
        chosen = validate_versions(versions)
        try:
            done = self._backend.destroy(validate_path(path), chosen)
        finally:
            self._cache.invalidate(path)
        self._publish(
            "secret.destroyed",
            path,
            severity="warning",
            versions=list(done),
            whole_path=chosen is None,
        )

    def rotate_key(self) -> int:
        """Start a new key-encryption key version and re-wrap every data key under it."""
        try:
            version = self._backend.rotate_key()
        finally:
            self._cache.clear()
        self._publish("key.rotated", None, key_version=version)
        return version

    def close(self) -> None:
        """Forget cached values and release the backend's connections."""
        self._cache.clear()
        self._backend.close()

    def __enter__(self) -> SecretsManager:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def clear_cache(self) -> None:
        """Forget every cached value."""
        self._cache.clear()
