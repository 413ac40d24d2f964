"""First run of the service on an empty home: home, master key, schema, keys, an admin.

The admin's password is ``TRADEGUARD_ADMIN_PASSWORD`` when set, otherwise generated and
printed once on stderr; either way the admin must change it and enrol MFA before any other
administrative action (the API answers 403 until then).
"""

from __future__ import annotations

import secrets as random_source
import sys
from typing import TextIO

from tradeguard.auth import Role
from tradeguard.errors import ConfigurationError
from tradeguard.facade import get_audit_log, get_auth_handler, get_settings
from tradeguard.settings import Settings

ADMIN_USERNAME = "admin"


def prepare_home(settings: Settings) -> None:
    """Create ``TRADEGUARD_HOME`` with mode 0700 (never loosening an existing one)."""
    home = settings.home
    if home.exists():
        if not home.is_dir():
            raise ConfigurationError(f"TRADEGUARD_HOME {home} exists and is not a directory")
        return
    home.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)  # mkdir's mode is filtered by the umask


def bootstrap(*, err: TextIO | None = None) -> bool:
    """Prepare the embedded state; create the first admin if there are no users.

    Returns True when an admin was created. Building the defaults creates the master key
    (0600), the database schema and the signing keys.
    """
    settings = get_settings()
    prepare_home(settings)
    auth = get_auth_handler()
    auth.jwks()  # creates the first signing key
    if settings.audit_enabled:
        get_audit_log()
    if auth.list_users():
        return False
    configured = settings.admin_password
    password = (
        configured.get_secret_value() if configured is not None
        else random_source.token_urlsafe(18)
    )  # fmt: skip
    auth.create_user(ADMIN_USERNAME, password, role=Role.ADMIN, display_name="Administrator",
                     must_change_password=True)  # fmt: skip
    if configured is None:
        out = err or sys.stderr
        out.write(f"Initial admin password: {password}\n")
        out.write("Log in as 'admin', change the password and enrol MFA before anything else.\n")
        out.flush()
    return True
