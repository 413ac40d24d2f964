"""The permission table of the issue, exactly, and the checks built on it."""

from __future__ import annotations

import pytest

from tradeguard.auth import Permission, Role, has_permission, require_permission, requires
from tradeguard.auth.claims import Claims
from tradeguard.auth.rbac import parse_role
from tradeguard.errors import PermissionDenied

A, T, V, S = Role.ADMIN, Role.TRADER, Role.VIEWER, Role.SERVICE
TABLE = {
    "orders:submit": {A, T, S},
    "orders:cancel": {A, T, S},
    "orders:view": {A, T, V, S},
    "positions:view": {A, T, V, S},
    "risk:view": {A, T, V, S},
    "secrets:read": {A, S},
    "secrets:write": {A},
    "users:manage": {A},
    "risk:configure": {A},
    "audit:read": {A},
    "killswitch:engage": {A, T},
    "killswitch:release": {A},
}


@pytest.mark.parametrize("permission", sorted(TABLE))
@pytest.mark.parametrize("role", list(Role))
def test_table_when_checked_then_matches_issue(permission: str, role: Role) -> None:
    assert has_permission(role, permission) is (role in TABLE[permission])


def test_table_covers_every_permission() -> None:
    assert {p.value for p in Permission} == set(TABLE)


def claims(role: Role) -> Claims:
    return Claims({"sub": "u1", "jti": "j" * 22, "sid": "s", "exp": 2_000_000_000}, role=role)


def test_require_when_missing_then_permission_denied_naming_it() -> None:
    require_permission(claims(T), "orders:submit")
    with pytest.raises(PermissionDenied, match="killswitch:release"):
        require_permission(claims(T), Permission.KILLSWITCH_RELEASE)


def test_requires_decorator_when_claims_lack_permission_then_denied() -> None:
    @requires("secrets:read")
    def read_secret(claims: Claims, path: str) -> str:
        return path

    assert read_secret(claims(S), "brokers/x") == "brokers/x"
    assert read_secret(claims=claims(A), path="p") == "p"
    with pytest.raises(PermissionDenied):
        read_secret(claims(V), "brokers/x")
    with pytest.raises(PermissionDenied):
        read_secret(None, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["ROOT", "", "admin ", None, 3])
def test_parse_role_when_unknown_then_value_error(bad: object) -> None:
    if bad == "admin ":
        assert parse_role(bad) is Role.ADMIN  # type: ignore[arg-type]
        return
    with pytest.raises(ValueError):
        parse_role(bad)  # type: ignore[arg-type]


def test_unknown_permission_when_checked_then_value_error() -> None:
    with pytest.raises(ValueError):
        has_permission(A, "orders:launch_missiles")
