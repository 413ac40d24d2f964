"""``tradeguard users``: add and administer users, their sessions and their second factor.

Passwords are read with a hidden prompt (asked twice) or, with ``--password-stdin``, as one
line from stdin; they are never printed. MFA enrolment shows the TOTP secret (as a QR code,
or as the otpauth URI with ``--show-secret``) and the recovery codes exactly once.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tradeguard.auth import AuthHandler, Role, User
from tradeguard.auth.mfa import qr_terminal
from tradeguard.auth.usernames import normalize_username
from tradeguard.cli.common import fail, new_typer, print_rows, when
from tradeguard.errors import InvalidMFACode, UserNotFound
from tradeguard.facade import get_auth_handler

users_app = new_typer("Add and administer users, their sessions and their MFA.")
mfa_app = new_typer("Enrol, confirm, disable or reset a user's TOTP second factor.")
users_app.add_typer(mfa_app, name="mfa")

CONFIRM_ATTEMPTS = 3

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The user name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON array.")]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password as one line from stdin instead of prompting.",
    ),
]
CodeArg = Annotated[
    str, typer.Argument(metavar="CODE", help="A current TOTP code (or an unused recovery code).")
]


def read_password(from_stdin: bool) -> str:
    """One stdin line (newline removed) with ``--password-stdin``, else a hidden prompt twice."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise typer.BadParameter("no password on stdin", param_hint="--password-stdin")
        return line.removesuffix("\n").removesuffix("\r")
    first: str = typer.prompt("Password", hide_input=True, err=True)
    second: str = typer.prompt("Repeat the password", hide_input=True, err=True)
    if first != second:
        fail("the two passwords do not match")
    return first


def _user_row(user: User) -> dict[str, object]:
    return {"name": user.username, "role": user.role.value, "disabled": user.disabled,
            "mfa": user.mfa_enabled, "created": user.created_at}  # fmt: skip


@users_app.command("add")
def add(
    name: NameArg,
    role: Annotated[Role, typer.Option("--role", case_sensitive=False, help="The user's role.")],
    password_stdin: PasswordStdinOpt = False,
    must_change: Annotated[
        bool, typer.Option("--must-change", help="Make the user change it at first login.")
    ] = False,
) -> None:
    """Add a user with ROLE; the password must pass the password policy."""
    if normalize_username(name) is None:
        raise typer.BadParameter(
            "a user name is 1-64 characters: letters, digits, '.', '_', '@', '-', starting "
            "with a letter or digit",
            param_hint="NAME",
        )
    handler = get_auth_handler()
    try:
        taken = handler.get_user(name)
    except UserNotFound:
        pass
    else:
        fail(f"user {taken.username!r} already exists")  # before asking for a password
    password = read_password(password_stdin)
    user = handler.create_user(name, password, role=role, must_change_password=must_change)
    typer.echo(f"added user {user.username} ({user.role.value})")


@users_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Show every user: name, role, disabled, MFA on, created (UTC)."""
    print_rows([_user_row(u) for u in get_auth_handler().list_users()], as_json=as_json)


@users_app.command("set-role")
def set_role(
    name: NameArg,
    role: Annotated[Role, typer.Argument(metavar="ROLE", case_sensitive=False, help="New role.")],
) -> None:
    """Change a user's role; tokens already issued carry the new role at once."""
    user = get_auth_handler().set_role(name, role)
    typer.echo(f"{user.username}: role {user.role.value}")


@users_app.command("disable")
def disable(name: NameArg) -> None:
    """Refuse the user's logins and tokens, and end their sessions."""
    user = get_auth_handler().disable_user(name)
    typer.echo(f"disabled {user.username}")


@users_app.command("enable")
def enable(name: NameArg) -> None:
    """Allow a disabled user to log in again."""
    user = get_auth_handler().enable_user(name)
    typer.echo(f"enabled {user.username}")


@users_app.command("unlock")
def unlock(name: NameArg) -> None:
    """Clear the user's failed-login count and any lockout."""
    handler = get_auth_handler()
    handler.unlock_user(name)
    typer.echo(f"unlocked {handler.get_user(name).username}")


@users_app.command("reset-password")
def reset_password(
    name: NameArg,
    password_stdin: PasswordStdinOpt = False,
    must_change: Annotated[
        bool, typer.Option("--must-change", help="Make the user change it at next login.")
    ] = False,
) -> None:
    """Set a new password for NAME (an administrator's reset); their sessions end."""
    handler = get_auth_handler()
    user = handler.get_user(name)  # fail before asking for a password
    handler.reset_password(name, read_password(password_stdin), must_change=must_change)
    typer.echo(f"password reset for {user.username}; their sessions were ended")


@users_app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user with their sessions, API keys and MFA secret (cannot be undone)."""
    handler = get_auth_handler()
    user = handler.get_user(name)
    if not yes:
        typer.confirm(f"Delete user {user.username}? This cannot be undone", abort=True)
    handler.delete_user(name)
    typer.echo(f"deleted {user.username}")


@users_app.command("sessions")
def sessions(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show the user's live sessions: id, created, expires (UTC), IP and user agent."""
    rows: list[dict[str, object]] = [
        {"id": s.id, "created": s.created_at, "expires": s.expires_at, "ip": s.ip,
         "user_agent": s.user_agent}
        for s in get_auth_handler().list_sessions(name)
    ]  # fmt: skip
    print_rows(rows, as_json=as_json)


@users_app.command("revoke-sessions")
def revoke_sessions(name: NameArg) -> None:
    """End every live session of the user (their tokens stop validating)."""
    ended = get_auth_handler().revoke_all_sessions(name)
    typer.echo(f"ended {ended} session(s) of {name}")


# -- MFA -----------------------------------------------------------------------------------


def _confirm(handler: AuthHandler, name: str, code: str | None) -> None:
    """Confirm with ``code``, or prompt up to :data:`CONFIRM_ATTEMPTS` times."""
    attempts = 1 if code is not None else CONFIRM_ATTEMPTS
    for attempt in range(1, attempts + 1):
        given: str = code if code is not None else typer.prompt("Code from the app", err=True)
        try:
            handler.confirm_mfa(name, given)
        except InvalidMFACode:
            if attempt < attempts:
                typer.echo("invalid code, try again", err=True)
            continue
        typer.echo(f"MFA is on for {name}")
        return
    fail(
        f"invalid MFA code; the enrolment is still pending: run "
        f"'tradeguard users mfa confirm {name} CODE' or enrol again"
    )


@mfa_app.command("enroll")
def mfa_enroll(
    name: NameArg,
    show_secret: Annotated[
        bool,
        typer.Option("--show-secret", help="Print the otpauth URI instead of drawing a QR code."),
    ] = False,
    code: Annotated[
        str | None,
        typer.Option("--code", metavar="CODE", help="Confirm with this code, without asking."),
    ] = None,
    no_confirm: Annotated[
        bool,
        typer.Option("--no-confirm", help="Only start enrolment; confirm later with 'confirm'."),
    ] = False,
) -> None:
    """Start TOTP enrolment, show the QR code and recovery codes once, then confirm a code."""
    if code is not None and no_confirm:
        raise typer.BadParameter("--code and --no-confirm cannot be used together")
    handler = get_auth_handler()
    enrolment = handler.enroll_mfa(name)
    if show_secret:
        typer.echo(enrolment.provisioning_uri)
    else:
        typer.echo(qr_terminal(enrolment.provisioning_uri), nl=False)
        typer.echo("scan the QR code with an authenticator app", err=True)
    typer.echo("recovery codes (each works once):")
    for recovery_code in enrolment.recovery_codes:
        typer.echo(f"  {recovery_code}")
    typer.echo(
        "warning: store the recovery codes somewhere safe now: they are not shown again",
        err=True,
    )
    if no_confirm:
        typer.echo(f"enrolment pending: run 'tradeguard users mfa confirm {name} CODE'", err=True)
        return
    _confirm(handler, name, code)


@mfa_app.command("confirm")
def mfa_confirm(name: NameArg, code: CodeArg) -> None:
    """Turn MFA on for a pending enrolment with a current code from the app."""
    get_auth_handler().confirm_mfa(name, code)
    typer.echo(f"MFA is on for {name}")


@mfa_app.command("disable")
def mfa_disable(name: NameArg, code: CodeArg) -> None:
    """Turn MFA off; needs a current TOTP code or an unused recovery code."""
    get_auth_handler().disable_mfa(name, code)
    typer.echo(f"MFA is off for {name}")


@mfa_app.command("reset")
def mfa_reset(name: NameArg) -> None:
    """Turn MFA off without a code (lost device) and end the user's sessions."""
    get_auth_handler().reset_mfa(name)
    typer.echo(f"MFA reset for {name}: it is off and their sessions were ended")


__all__ = ["mfa_app", "print_rows", "read_password", "users_app", "when"]
