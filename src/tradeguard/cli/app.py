"""The ``tradeguard`` command: ``init``, ``secrets``, ``keys``, ``audit`` and the auth commands.

Every expected failure prints one ``error: …`` line on stderr and exits 1; usage errors
exit 2. No command prints the master key, and no command prints a secret value unless
asked to with ``--reveal``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from tradeguard.cli.apikeys_cmd import apikeys_app
from tradeguard.cli.audit_cmd import audit_app
from tradeguard.cli.common import fail, new_typer
from tradeguard.cli.keys_cmd import keys_app
from tradeguard.cli.secrets_cmd import secrets_app
from tradeguard.cli.serve_cmd import serve
from tradeguard.cli.tokens_cmd import tokens_app
from tradeguard.cli.users_cmd import users_app
from tradeguard.errors import BackendUnavailable, ConfigurationError
from tradeguard.facade import get_settings
from tradeguard.secrets import build_secrets_manager
from tradeguard.secrets.factory import store_is_empty
from tradeguard.secrets.masterkey import (
    create_key_file,
    default_key_file,
    load_master_key,
    store_in_keyring,
)
from tradeguard.settings import Settings
from tradeguard.storage import create_database_engine

app = new_typer(
    "tradeguard: the security layer a Python trading bot runs behind.", no_args_is_help=True
)
app.add_typer(secrets_app, name="secrets")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(apikeys_app, name="apikeys")
app.command("serve")(serve)


def _version_callback(value: bool) -> None:
    if value:
        from tradeguard import __version__

        typer.echo(f"tradeguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """tradeguard: the security layer a Python trading bot runs behind."""


def _ensure_home(home: Path) -> None:
    """Create ``home`` with mode 0700; warn (never chmod) if it exists and others may enter."""
    if home.exists():
        if not home.is_dir():
            fail(f"TRADEGUARD_HOME {home} exists and is not a directory")
        mode = stat.S_IMODE(home.stat().st_mode)
        if mode & 0o077:
            typer.echo(
                f"warning: {home} is accessible by group or others (mode {mode:o}); "
                f"consider: chmod 700 {home}",
                err=True,
            )
        return
    home.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)  # mkdir's mode is filtered by the umask


def _existing_key_source(settings: Settings) -> str | None:
    """Where the configured master key comes from, or ``None`` if there is none yet."""
    if settings.master_key is None and settings.master_key_file is not None:
        if not settings.master_key_file.exists():
            fail(
                f"TRADEGUARD_MASTER_KEY_FILE points to {settings.master_key_file}, which does "
                "not exist; restore it, or unset the variable to create "
                f"{default_key_file(settings)}"
            )
    if load_master_key(settings) is None:  # also refuses a key file others may read
        return None
    if settings.master_key is not None:
        return "TRADEGUARD_MASTER_KEY"
    if settings.master_key_file is not None:
        return f"key file {settings.master_key_file}"
    path = default_key_file(settings)
    return f"key file {path}" if path.exists() else "the OS keyring"


def _require_empty_store(engine: Engine) -> None:
    """Refuse to make a new master key for a store whose keys an old one wraps."""
    try:
        empty = store_is_empty(engine)
    except OperationalError as exc:
        raise BackendUnavailable(
            f"the secrets database is unavailable ({type(exc.orig).__name__})"
        ) from None
    if not empty:
        raise ConfigurationError(
            "the store already holds encrypted keys but no master key was found; restore "
            "master.key or set TRADEGUARD_MASTER_KEY (a new master key would not open them)"
        )


def _create_master_key(settings: Settings, engine: Engine, keyring: bool) -> str:
    """Create the master key (file or keyring) for an empty store; says where it went."""
    _require_empty_store(engine)
    if keyring:
        store_in_keyring(settings)
        return "in the OS keyring"
    path = default_key_file(settings)
    create_key_file(path)
    return f"at {path} (mode 0600)"


@app.command("init")
def init(
    keyring: Annotated[
        bool,
        typer.Option("--keyring", help="Keep the master key in the OS keyring, not a file."),
    ] = False,
) -> None:
    """Create the home directory (0700), the master key (file 0600) and the database."""
    settings = get_settings()
    _ensure_home(settings.home)
    source = _existing_key_source(settings)
    engine = create_database_engine(settings.resolved_database_url())
    try:
        where = None if source is not None else _create_master_key(settings, engine, keyring)
        build_secrets_manager(settings, engine=engine, create_key=False)
    finally:
        engine.dispose()
    if where is None:
        typer.echo(f"already initialised: {settings.home} (master key from {source})")
        return
    typer.echo(f"initialised {settings.home}: master key created {where}")
    typer.echo("back up the master key: without it the stored secrets cannot be decrypted")


def main() -> None:
    """Console entry point of the ``tradeguard`` command."""
    app(prog_name="tradeguard")


__all__ = ["app", "main"]
