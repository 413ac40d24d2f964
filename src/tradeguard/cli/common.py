"""Shared CLI helpers: one-line errors, masking, and KEY=VALUE input parsing.

Nothing here ever prints a secret value: error messages name keys, argument positions and
line numbers, never the text that may hold a value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from tradeguard.errors import TradeguardError

if TYPE_CHECKING:  # typer vendors click; its Context base is only named for the type checker
    from typer._click import Context as ClickContext

MASK = "********"
STDIN = "-"


class CliError(Exception):
    """A command failed for a reason the user can fix; shown as one ``error:`` line."""


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "unknown error"


def report_error(message: str) -> None:
    """Write ``error: <message>`` as exactly one line on stderr."""
    typer.echo(f"error: {_one_line(message)}", err=True)


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line error and exit code 1."""
    raise CliError(message)


class ErrorHandlingGroup(TyperGroup):
    """A command group that turns expected failures into one stderr line and exit code 1.

    :class:`~tradeguard.errors.TradeguardError`, :class:`CliError` and ``OSError`` (a file
    that cannot be read, a home that cannot be created) never show a traceback.
    """

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the subcommand, reporting expected failures without a traceback."""
        try:
            return super().invoke(ctx)
        except (TradeguardError, CliError) as exc:
            report_error(str(exc))
            raise typer.Exit(1) from None
        except BrokenPipeError:
            raise  # a closed pipe (`| head`) is handled by typer's main
        except OSError as exc:
            detail = exc.strerror or type(exc).__name__
            where = f": {exc.filename}" if exc.filename else ""
            report_error(f"{detail}{where}")
            raise typer.Exit(1) from None


def new_typer(help_text: str, *, no_args_is_help: bool = True) -> typer.Typer:
    """A Typer app with tradeguard's error handling and no local variables in tracebacks."""
    return typer.Typer(
        cls=ErrorHandlingGroup,
        help=help_text,
        no_args_is_help=no_args_is_help,
        add_completion=False,
        pretty_exceptions_show_locals=False,  # locals may hold secret values
    )


def masked(data: dict[str, str], *, reveal: bool) -> dict[str, str]:
    """``data`` as is with ``reveal``, else every value replaced by :data:`MASK`."""
    return dict(data) if reveal else dict.fromkeys(data, MASK)


def parse_pair(text: str, *, position: int) -> tuple[str, str]:
    """Split one ``KEY=VALUE`` argument; a malformed one is a usage error (exit 2).

    The message names the pair's position, never its text: a pair without ``=`` is often
    a value typed where a key was expected.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise typer.BadParameter(f"KEY=VALUE pair {position} has no '='")
    if not key or any(ch.isspace() for ch in key):
        raise typer.BadParameter(
            f"KEY=VALUE pair {position} has an empty key or a key with whitespace"
        )
    return key, value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        return value[1:-1]
    return value


def parse_env_lines(lines: Iterable[str], *, source: str) -> dict[str, str]:
    """Parse dotenv-style ``KEY=VALUE`` lines.

    Blank lines and ``#`` comments are skipped, an ``export `` prefix is allowed, and
    matching surrounding single or double quotes are stripped. Unquoted values are taken
    as they are (no inline comments, no escapes), so no character of a secret is lost.
    """
    data: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or any(ch.isspace() for ch in key):
            raise typer.BadParameter(f"{source} line {number} is not KEY=VALUE")
        data[key] = _unquote(value.strip())
    return data


def read_env_file(name: str) -> dict[str, str]:
    """KEY=VALUE lines from file ``name``, or from stdin when ``name`` is ``-``."""
    if name == STDIN:
        return parse_env_lines(sys.stdin.read().splitlines(), source="stdin")
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise typer.BadParameter(f"cannot read env file {name}: {detail}") from None
    return parse_env_lines(text.splitlines(), source=f"env file {name}")


def stdin_is_tty() -> bool:
    """Whether stdin is a terminal (values are then prompted for, hidden)."""
    return sys.stdin.isatty()


def read_stdin_values(keys: list[str]) -> dict[str, str]:
    """Values for ``KEY=-`` arguments.

    On a terminal each value is prompted for with hidden input. Otherwise a single key
    takes all of stdin (one trailing newline removed, so multi-line PEM keys work), and
    several keys take one line each, in order.
    """
    if not keys:
        return {}
    if stdin_is_tty():
        return {key: typer.prompt(f"value for {key}", hide_input=True) for key in keys}
    if len(keys) == 1:
        text = sys.stdin.read()
        if not text:
            raise typer.BadParameter(f"no value for {keys[0]} on stdin")
        return {keys[0]: text.removesuffix("\n").removesuffix("\r")}
    values: dict[str, str] = {}
    for key in keys:
        line = sys.stdin.readline()
        if not line:
            raise typer.BadParameter(f"no line for {key} on stdin ({len(keys)} keys read '-')")
        values[key] = line.removesuffix("\n").removesuffix("\r")
    return values


def when(moment: datetime | None) -> str:
    """A UTC time as ``YYYY-MM-DD HH:MM:SS``, or ``-``."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def print_rows(rows: Sequence[dict[str, object]], *, as_json: bool) -> None:
    """Rows as a JSON array, or as aligned columns headed by the keys (``-`` for None)."""
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=_json_value))
        return
    if not rows:
        return
    headers = list(rows[0])
    cells = [[_cell(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headers)]
    for line in [[h.upper() for h in headers], *cells]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    return str(value)
