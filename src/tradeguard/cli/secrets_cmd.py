"""``tradeguard secrets``: put, get, list, history, delete, undelete, destroy.

Values are masked unless ``--reveal`` is given, and ``put`` can read them from stdin or an
env file so they stay out of shell history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tradeguard.cli.common import (
    STDIN,
    fail,
    masked,
    new_typer,
    parse_pair,
    read_env_file,
    read_stdin_values,
)
from tradeguard.facade import get_secrets_manager
from tradeguard.secrets import validate_path

secrets_app = new_typer("Store, read and manage versioned secrets.")

PathArg = Annotated[str, typer.Argument(metavar="PATH", help="Secret path, e.g. brokers/alpaca.")]
VersionsOpt = Annotated[
    list[int] | None,
    typer.Option("--version", min=1, metavar="N", help="A version number; repeat for several."),
]


def _collect_put_data(pairs: list[str], from_env_file: str | None) -> dict[str, str]:
    """Env file first, then positional pairs on top; ``KEY=-`` values come from stdin."""
    data: dict[str, str] = {} if from_env_file is None else read_env_file(from_env_file)
    given: dict[str, str] = {}
    from_stdin: list[str] = []
    for position, text in enumerate(pairs, start=1):
        key, value = parse_pair(text, position=position)
        if key in given or key in from_stdin:
            raise typer.BadParameter(f"key {key!r} is given more than once")
        if value == STDIN:
            from_stdin.append(key)
        else:
            given[key] = value
    if from_stdin and from_env_file == STDIN:
        raise typer.BadParameter("stdin cannot feed both --from-env-file - and KEY=- values")
    given.update(read_stdin_values(from_stdin))
    data.update(given)
    if not data:
        raise typer.BadParameter("nothing to store: give KEY=VALUE pairs or --from-env-file")
    return data


@secrets_app.command("put")
def put(
    path: PathArg,
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Fields to store; KEY=- reads that value from stdin (hidden prompt on a TTY).",
        ),
    ] = None,
    from_env_file: Annotated[
        str | None,
        typer.Option(
            "--from-env-file",
            metavar="FILE",
            help="Read KEY=VALUE lines (dotenv style) from FILE, or from stdin with '-'.",
        ),
    ] = None,
    cas: Annotated[
        int | None,
        typer.Option(
            "--cas",
            min=0,
            metavar="N",
            help="Write only if the current version is N (0: only if absent).",
        ),
    ] = None,
) -> None:
    """Store KEY=VALUE fields as a new version of PATH (values are never printed)."""
    data = _collect_put_data(pairs or [], from_env_file)
    version = get_secrets_manager().store_secret(path, data, cas=cas)
    typer.echo(f"stored {path} version {version}")


@secrets_app.command("get")
def get(
    path: PathArg,
    version: Annotated[
        int | None, typer.Option("--version", min=1, metavar="N", help="Read this version.")
    ] = None,
    field: Annotated[
        str | None, typer.Option("--field", metavar="KEY", help="Show only this field.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Print the values instead of masking them.")
    ] = False,
) -> None:
    """Show the fields of PATH, values masked unless --reveal.

    ``--field KEY --reveal`` prints the bare value, for scripts.
    """
    data = get_secrets_manager().get_secret(path, version=version)
    if field is not None:
        if field not in data:
            fail(f"secret {path} has no field {field!r} (fields: {', '.join(sorted(data))})")
        data = {field: data[field]}
        if reveal and not as_json:
            typer.echo(data[field])
            return
    shown = masked(data, reveal=reveal)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))
        return
    for key in sorted(shown):
        typer.echo(f"{key} = {shown[key]}")


@secrets_app.command("list")
def list_(
    prefix: Annotated[
        str, typer.Argument(metavar="PREFIX", help="Only paths starting with this.")
    ] = "",
) -> None:
    """Print the stored paths (optionally under PREFIX), one per line."""
    for path in get_secrets_manager().list_secrets(prefix):
        typer.echo(path)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


@secrets_app.command("history")
def history(path: PathArg) -> None:
    """Show every version of PATH: created, deleted, destroyed, and which is current."""
    meta = get_secrets_manager().secret_metadata(path)
    table = Table(title=meta.path)
    table.add_column("version", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("deleted (UTC)", no_wrap=True)
    table.add_column("destroyed", no_wrap=True)
    for info in meta.versions:
        current = " (current)" if info.version == meta.current_version else ""
        table.add_row(
            f"{info.version}{current}",
            _when(info.created_at),
            _when(info.deleted_at),
            "yes" if info.destroyed else "no",
        )
    Console(highlight=False).print(table)


def _describe(path: str, versions: list[int] | None, default: str) -> str:
    if not versions:
        return f"{path} ({default})"
    numbers = sorted(set(versions))
    label = "version" if len(numbers) == 1 else "versions"
    return f"{path} {label} {', '.join(map(str, numbers))}"


@secrets_app.command("delete")
def delete(path: PathArg, version: VersionsOpt = None) -> None:
    """Soft-delete versions of PATH (default: the current one); undelete reverses it."""
    get_secrets_manager().delete_secret(path, versions=version or None)
    typer.echo(f"deleted {_describe(path, version, 'current version')}")


@secrets_app.command("undelete")
def undelete(path: PathArg, version: VersionsOpt = None) -> None:
    """Restore soft-deleted versions of PATH (default: the current one)."""
    get_secrets_manager().undelete_secret(path, versions=version or None)
    typer.echo(f"undeleted {_describe(path, version, 'current version')}")


@secrets_app.command("destroy")
def destroy(
    path: PathArg,
    version: VersionsOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Irreversibly erase versions of PATH (default: every version and the path itself)."""
    validate_path(path)
    manager = get_secrets_manager()
    if not yes:
        if version:
            what = _describe(path, version, "")
        else:
            count = len(manager.secret_metadata(path).versions)
            what = f"all {count} version(s) of {path}"
        typer.confirm(f"Destroy {what}? This cannot be undone", abort=True)
    manager.destroy_secret(path, versions=version or None)
    typer.echo(f"destroyed {_describe(path, version, 'all versions')}")


__all__ = ["secrets_app"]
