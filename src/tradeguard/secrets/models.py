"""Plain records describing secrets (never their values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of a secret."""

    version: int
    created_at: datetime
    deleted_at: datetime | None
    destroyed: bool

    @property
    def live(self) -> bool:
        """Readable: neither soft-deleted nor destroyed."""
        return self.deleted_at is None and not self.destroyed


@dataclass(frozen=True, slots=True)
class SecretMetadata:
    """What is known about a path: its versions and which is current."""

    path: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    versions: tuple[VersionInfo, ...]

    def version(self, number: int) -> VersionInfo | None:
        """The entry for ``number``, if that version exists."""
        for info in self.versions:
            if info.version == number:
                return info
        return None
