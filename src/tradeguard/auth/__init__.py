"""Authentication and access control: users, passwords, JWTs, sessions, MFA, RBAC, API keys."""

from tradeguard.auth.claims import Claims
from tradeguard.auth.core import Session, TokenPair, User
from tradeguard.auth.factory import build_auth_handler
from tradeguard.auth.handler import AuthHandler
from tradeguard.auth.lockout import LockoutPolicy
from tradeguard.auth.rbac import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    has_permission,
    permissions_for,
    require_permission,
    requires,
)

__all__ = [
    "ROLE_PERMISSIONS",
    "AuthHandler",
    "Claims",
    "LockoutPolicy",
    "Permission",
    "Role",
    "Session",
    "TokenPair",
    "User",
    "build_auth_handler",
    "has_permission",
    "permissions_for",
    "require_permission",
    "requires",
]
