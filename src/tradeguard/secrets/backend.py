"""The small Protocol every secrets backend implements (plaintext in, plaintext out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from tradeguard.secrets.models import SecretMetadata


@runtime_checkable
class SecretsBackend(Protocol):
    """Versioned key/value secrets. Paths and data arrive already validated.

    ``versions=None`` means the current version for ``delete`` and ``undelete``, and every
    version (the whole path) for ``destroy``.
    """

    kind: str

    def put(self, path: str, data: Mapping[str, str], *, cas: int | None) -> int:
        """Write a new version and return its number."""
        ...

    def get(self, path: str, version: int | None) -> tuple[int, dict[str, str]]:
        """The asked version, or the highest live one; returns (version, data)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Paths starting with ``prefix``, sorted."""
        ...

    def metadata(self, path: str) -> SecretMetadata:
        """Versions and current version of ``path``."""
        ...

    def delete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Soft-delete; returns the versions affected."""
        ...

    def undelete(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Reverse a soft delete; returns the versions affected."""
        ...

    def destroy(self, path: str, versions: tuple[int, ...] | None) -> tuple[int, ...]:
        """Irreversibly remove ciphertext; returns the versions affected."""
        ...

    def rotate_key(self) -> int:
        """Start a new key version, re-protect stored data under it, return its number."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
