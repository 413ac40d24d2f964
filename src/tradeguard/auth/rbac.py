"""Roles, permissions and the checks that use them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, ParamSpec, Protocol, TypeVar

from tradeguard.errors import PermissionDenied, UnknownRole


class Role(StrEnum):
    """Who someone is to tradeguard."""

    ADMIN = "ADMIN"
    TRADER = "TRADER"
    VIEWER = "VIEWER"
    SERVICE = "SERVICE"


class Permission(StrEnum):
    """What an action needs."""

    ORDERS_SUBMIT = "orders:submit"
    ORDERS_CANCEL = "orders:cancel"
    ORDERS_VIEW = "orders:view"
    POSITIONS_VIEW = "positions:view"
    RISK_VIEW = "risk:view"
    SECRETS_READ = "secrets:read"
    SECRETS_WRITE = "secrets:write"
    USERS_MANAGE = "users:manage"
    RISK_CONFIGURE = "risk:configure"
    AUDIT_READ = "audit:read"
    KILLSWITCH_ENGAGE = "killswitch:engage"
    KILLSWITCH_RELEASE = "killswitch:release"


_P = Permission
_VIEW = frozenset({_P.ORDERS_VIEW, _P.POSITIONS_VIEW, _P.RISK_VIEW})
_TRADE = frozenset({_P.ORDERS_SUBMIT, _P.ORDERS_CANCEL})

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.TRADER: _VIEW | _TRADE | {_P.KILLSWITCH_ENGAGE},
    Role.VIEWER: _VIEW,
    Role.SERVICE: _VIEW | _TRADE | {_P.SECRETS_READ},
}


def parse_role(value: Role | str) -> Role:
    """A Role from itself or its name (case-insensitive); :class:`UnknownRole` otherwise."""
    if isinstance(value, Role):
        return value
    if isinstance(value, str):
        try:
            return Role(value.strip().upper())
        except ValueError:
            pass
    raise UnknownRole(f"unknown role {value!r}: choose one of {', '.join(r.value for r in Role)}")


def parse_permission(value: Permission | str) -> Permission:
    """A Permission from itself or its text, e.g. ``"orders:submit"``."""
    try:
        return value if isinstance(value, Permission) else Permission(value)
    except ValueError:
        raise ValueError(f"unknown permission {value!r}") from None


def permissions_for(role: Role | str) -> frozenset[Permission]:
    """Every permission ``role`` holds."""
    return ROLE_PERMISSIONS[parse_role(role)]


class HasRole(Protocol):
    """Anything with a role (Claims do)."""

    @property
    def role(self) -> Role: ...


def has_permission(subject: HasRole | Role | str, permission: Permission | str) -> bool:
    """Whether ``subject`` (claims or a role) holds ``permission``."""
    role = subject if isinstance(subject, Role | str) else subject.role
    return parse_permission(permission) in permissions_for(role)


def require_permission(subject: HasRole | Role | str, permission: Permission | str) -> None:
    """Raise :class:`PermissionDenied` unless ``subject`` holds ``permission``."""
    if not has_permission(subject, permission):
        raise PermissionDenied(f"permission {parse_permission(permission).value} is required")


P = ParamSpec("P")
R = TypeVar("R")


def requires(permission: Permission | str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function whose ``claims`` argument (first positional or keyword) is checked."""
    needed = parse_permission(permission)

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            claims: Any = kwargs.get("claims", args[0] if args else None)
            if claims is None:
                raise PermissionDenied(f"permission {needed.value} is required (no claims given)")
            require_permission(claims, needed)
            return function(*args, **kwargs)

        return wrapper

    return decorate
