"""AuthHandler: users, logins, tokens, sessions, MFA, API keys and signing keys in one place."""

from __future__ import annotations

from typing import Any

from tradeguard.auth.admin import AdminMixin
from tradeguard.auth.sessions import SessionsMixin


class AuthHandler(SessionsMixin, AdminMixin):
    """The authentication and access-control API (see ``tradeguard.get_auth_handler()``).

    Build one with :func:`tradeguard.auth.build_auth_handler` (or the facade), which wires the
    SQL store, the token service with signing keys kept in the SecretsManager, the password
    hasher and policy, the lockout policy, the event bus and the clock.
    """

    def jwks(self) -> dict[str, Any]:
        """The public signing keys as a JWK Set (for verifiers elsewhere)."""
        return self._tokens.jwks()

    def rotate_signing_key(self) -> str:
        """Sign with a new key from now on (returns its kid); old kids keep verifying."""
        kid = self._tokens.rotate_signing_key()
        self._publish("auth.signing_key_rotated", subject=kid, severity="warning")
        return kid
