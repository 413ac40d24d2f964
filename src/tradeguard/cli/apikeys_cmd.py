"""``tradeguard apikeys``: create, list and revoke API keys of SERVICE accounts.

A new key is printed once, alone on stdout (so ``KEY=$(tradeguard apikeys create ...)``
works); only its hash is stored, and no other command ever prints it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tradeguard.auth.admin import API_KEY_PREFIX
from tradeguard.cli.common import fail, new_typer, print_rows
from tradeguard.facade import get_auth_handler

apikeys_app = new_typer("Create, list and revoke API keys of SERVICE accounts.")

ServiceArg = Annotated[
    str, typer.Argument(metavar="SERVICE_USER", help="A user with the SERVICE role.")
]


@apikeys_app.command("create")
def create(
    service_user: ServiceArg,
    name: Annotated[
        str, typer.Option("--name", metavar="NAME", help="What the key is for, e.g. 'bot-eu'.")
    ],
    expires_in: Annotated[
        int | None,
        typer.Option("--expires-in", min=1, metavar="SECONDS", help="Expire after SECONDS."),
    ] = None,
) -> None:
    """Create an API key for SERVICE_USER and print it once (store it right away)."""
    key = get_auth_handler().create_api_key(service_user, name=name, expires_in=expires_in)
    typer.echo(key)
    typer.echo(
        "warning: this API key is shown only now; store it in a secret store (only its "
        "hash is kept)",
        err=True,
    )


@apikeys_app.command("list")
def list_(
    service_user: ServiceArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Show SERVICE_USER's keys: id, name, created, expires, revoked (UTC; never the key)."""
    rows: list[dict[str, object]] = [
        {"id": k["id"], "name": k["name"], "created": k["created_at"],
         "expires": k["expires_at"], "revoked": k["revoked_at"]}
        for k in get_auth_handler().list_api_keys(service_user)
    ]  # fmt: skip
    print_rows(rows, as_json=as_json)


@apikeys_app.command("revoke")
def revoke(
    key_id: Annotated[
        str,
        typer.Argument(metavar="KEY_ID", help=f"The key's id (after '{API_KEY_PREFIX}')."),
    ],
) -> None:
    """Revoke an API key by its id; requests with it are refused from now on."""
    if key_id.startswith(API_KEY_PREFIX):  # a whole key was pasted: keep only its id
        key_id = key_id.split("_", 2)[1] if key_id.count("_") >= 2 else key_id
    if not get_auth_handler().revoke_api_key(key_id):
        fail(f"no live API key with id {key_id!r} (unknown or already revoked)")
    typer.echo(f"revoked API key {key_id}")


__all__ = ["apikeys_app"]
