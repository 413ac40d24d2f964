"""Claims: what a validated token says, with the role as it is now (not as it was issued)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from tradeguard.auth.rbac import Permission, Role, permissions_for


class Claims(Mapping[str, Any]):
    """A read-only mapping of a token's claims plus typed accessors.

    ``role`` and ``permissions`` reflect the user's current role, so a role change applies
    to tokens already issued.
    """

    __slots__ = ("_data", "role")

    def __init__(self, data: Mapping[str, Any], *, role: Role) -> None:
        self._data = dict(data)
        self._data["role"] = role.value
        self.role = role

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Claims(subject={self.subject!r}, username={self.username!r}, role={self.role})"

    @property
    def subject(self) -> str:
        """The stable user id."""
        return str(self._data["sub"])

    @property
    def username(self) -> str:
        """The username at issue time."""
        return str(self._data.get("username", ""))

    @property
    def permissions(self) -> frozenset[Permission]:
        """What the current role allows."""
        return permissions_for(self.role)

    @property
    def jti(self) -> str:
        """The token's unique id."""
        return str(self._data["jti"])

    @property
    def session_id(self) -> str:
        """The session the token belongs to."""
        return str(self._data["sid"])

    @property
    def expires_at(self) -> datetime:
        """When the token expires."""
        return datetime.fromtimestamp(int(self._data["exp"]), UTC)
