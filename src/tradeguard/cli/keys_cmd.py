"""``tradeguard keys``: manage the key-encryption keys under the master key."""

from __future__ import annotations

import typer

from tradeguard.cli.common import new_typer
from tradeguard.facade import get_secrets_manager

keys_app = new_typer("Manage the key-encryption keys that wrap every data key.")


@keys_app.command("rotate")
def rotate() -> None:
    """Start a new key-encryption key version and re-wrap every data key under it."""
    version = get_secrets_manager().rotate_key()
    typer.echo(f"rotated: key version {version}")


__all__ = ["keys_app"]
