"""A remote backend (Vault) with a sealed local mirror to read from while it is down.

Every successful read or write is copied, sealed, into the local store. When the remote is
unreachable, reads are served from the mirror and a ``secret.backend_unavailable`` event is
published; writes, deletes and rotation fail with :class:`BackendUnavailable` — never a
local write that would silently diverge from the remote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tradeguard.errors import BackendUnavailable, SecretNotFound, SecretsError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets.backend import SecretsBackend
from tradeguard.secrets.models import SecretMetadata
from tradeguard.secrets.sql_mirror import SqlMirrorStore

_log = logging.getLogger(__name__)


class MirroredBackend:
    """``primary`` for everything; ``mirror`` only answers reads while ``primary`` is down."""

    def __init__(self, primary: SecretsBackend, mirror: SqlMirrorStore, bus: EventBus) -> None:
        self.primary = primary
        self.mirror = mirror
        self._bus = bus
        self.kind = primary.kind
        # A KV version never changes once written, so each (path, version) is copied once.
        self._mirrored: set[tuple[str, int]] = set()

    def __repr__(self) -> str:
        return f"MirroredBackend(primary={self.primary!r}, mirror={self.mirror!r})"

    def _copy(self, path: str, version: int, data: Mapping[str, str]) -> None:
        if (path, version) in self._mirrored:
            return
        try:
            self.mirror.put_exact(path, version, data)
            self._mirrored.add((path, version))
        except SecretsError:
            _log.warning("could not mirror %s version %d locally", path, version, exc_info=True)

    def put(self, path: str, data: Mapping[str, str], *, cas: int | None) -> int:
        """Write to the primary, then mirror."""
        version = self.primary.put(path, data, cas=cas)
        self._copy(path, version, data)
        return version

    def get(self, path: str, version: int | None) -> tuple[int, dict[str, str]]:
        """Read the primary; on an outage, the mirrored copy (or BackendUnavailable)."""
        try:
            number, data = self.primary.get(path, version)
        except BackendUnavailable as outage:
            try:
                number, data = self.mirror.get(path, version)
            except SecretNotFound:
                raise BackendUnavailable(f"{outage} and no local copy of {path} exists") from outage
            self._bus.publish(
                SecurityEvent(
                    "secret.backend_unavailable",
                    subject=path,
                    outcome="served_from_mirror",
                    severity="warning",
                    details={"path": path, "version": number, "backend": self.primary.kind},
                )
            )
            return number, data
        except SecretNotFound:
            self._forget(path, None if version is None else (version,))
            raise
        self._copy(path, number, data)
        return number, data

    def _forget(self, path: str, versions: tuple[int, ...] | None) -> None:
        self._mirrored = {
            key for key in self._mirrored
            if key[0] != path or (versions is not None and key[1] not in versions)
        }  # fmt: skip
        self.mirror.forget(path, versions)

    def list(self, prefix: str) -> list[str]:
        """Listing needs the primary."""
        return self.primary.list(prefix)

    def metadata(self, path: str) -> SecretMetadata:
        """Metadata needs the primary."""
        return self.primary.metadata(path)

    def delete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Delete on the primary; drop the mirrored copies so an outage cannot revive them."""
        done = self.primary.delete(path, versions)
        self._forget(path, done)
        return done

    def undelete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Undelete on the primary (the next read mirrors again)."""
        return self.primary.undelete(path, versions)

    def destroy(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Destroy on the primary and in the mirror."""
        done = self.primary.destroy(path, versions)
        self._forget(path, None if versions is None else done)
        return done

    def close(self) -> None:
        """Close both stores."""
        self.primary.close()
        self.mirror.close()

    def rotate_key(self) -> int:
        """Rotate the primary's key, then the mirror's KEK."""
        version = self.primary.rotate_key()
        self.mirror.rotate_key()
        return version
