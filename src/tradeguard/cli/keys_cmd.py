"""``tradeguard keys``: rotate the key-encryption keys and the token signing key."""

from __future__ import annotations

import typer

from tradeguard.cli.common import new_typer
from tradeguard.facade import get_auth_handler, get_secrets_manager

keys_app = new_typer("Rotate the key-encryption keys and the token signing key.")


@keys_app.command("rotate")
def rotate() -> None:
    """Start a new key-encryption key version and re-wrap every data key under it."""
    version = get_secrets_manager().rotate_key()
    typer.echo(f"rotated: key version {version}")


@keys_app.command("rotate-signing")
def rotate_signing() -> None:
    """Sign new tokens with a new key and print its kid; tokens signed before keep working."""
    typer.echo(get_auth_handler().rotate_signing_key())


__all__ = ["keys_app"]
