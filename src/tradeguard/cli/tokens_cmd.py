"""``tradeguard tokens``: revoke an access or refresh token by its id."""

from __future__ import annotations

from typing import Annotated

import typer

from tradeguard.cli.common import new_typer
from tradeguard.facade import get_auth_handler

tokens_app = new_typer("Revoke issued tokens by their id (jti).")


@tokens_app.command("revoke")
def revoke(
    jti: Annotated[str, typer.Argument(metavar="JTI", help="The token's id (its 'jti' claim).")],
) -> None:
    """Put a token id on the revocation list: that token stops validating."""
    get_auth_handler().revoke_token(jti)
    typer.echo(f"revoked token {jti}")


__all__ = ["tokens_app"]
