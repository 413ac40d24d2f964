"""The auth commands: users, users mfa, keys rotate-signing, tokens and apikeys (CliRunner)."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from cli_support import assert_ok, assert_one_line_error, run
from typer.testing import Result

import tradeguard
from tradeguard.auth import AuthHandler, Role, mfa
from tradeguard.errors import (
    AccountLocked,
    InvalidCredentials,
    MFARequired,
    TokenRevoked,
    UserNotFound,
)

PASSWORD = "Correct-Horse-Battery-9!"
NEW_PASSWORD = "Quiet-Lantern-Orbit-73?"
RECOVERY_LINE = re.compile(r"^\s+([0-9a-z]{5}-[0-9a-z]{5})$", re.MULTILINE)


def handler() -> AuthHandler:
    """The default handler, rebuilt as a separate process would see the state."""
    tradeguard.reset()
    return tradeguard.get_auth_handler()


def add_user(name: str = "alice", role: str = "trader", password: str = PASSWORD) -> Result:
    return run("users", "add", name, "--role", role, "--password-stdin", input=password + "\n")


def enroll_pending(name: str = "alice") -> tuple[str, list[str], Result]:
    """Start enrolment with --show-secret --no-confirm: the TOTP secret and recovery codes."""
    result = run("users", "mfa", "enroll", name, "--show-secret", "--no-confirm")
    assert_ok(result)
    uri = next(line for line in result.stdout.splitlines() if line.startswith("otpauth://"))
    return parse_qs(urlparse(uri).query)["secret"][0], RECOVERY_LINE.findall(result.stdout), result


def wrong_code(secret: str) -> str:
    """A six-digit code valid in none of the steps around now."""
    now = time.time()
    valid = {pyotp.TOTP(secret).at(now + delta) for delta in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(10)) if c not in valid)


# -- users add -----------------------------------------------------------------------------


def test_add_when_password_stdin_then_user_logs_in_and_password_not_printed() -> None:
    result = add_user()

    assert_ok(result)
    assert "added user alice (TRADER)" in result.stdout
    assert PASSWORD not in result.output
    auth = handler()
    assert auth.authenticate("alice", PASSWORD).access_token
    assert auth.get_user("alice").role is Role.TRADER


def test_add_when_prompted_twice_and_matching_then_added_without_echo() -> None:
    result = run("users", "add", "bob", "--role", "VIEWER", input=f"{PASSWORD}\n{PASSWORD}\n")

    assert_ok(result)
    assert PASSWORD not in result.output
    assert handler().authenticate("bob", PASSWORD).access_token


def test_add_when_prompted_passwords_differ_then_exit_1_and_no_user() -> None:
    result = run("users", "add", "bob", "--role", "viewer", input=f"{PASSWORD}\n{NEW_PASSWORD}\n")

    assert result.exit_code == 1
    assert result.stderr.endswith("error: the two passwords do not match\n")  # after the prompts
    assert PASSWORD not in result.output and NEW_PASSWORD not in result.output
    with pytest.raises(UserNotFound):
        handler().get_user("bob")


def test_add_when_password_weak_then_exit_1_with_policy_message_not_echoed() -> None:
    weak = "password1234"

    result = add_user(password=weak)

    assert_one_line_error(result, contains="password is too easy to guess")
    assert weak not in result.output
    with pytest.raises(UserNotFound):
        handler().get_user("alice")


def test_add_when_user_exists_then_exit_1_before_reading_a_password() -> None:
    assert_ok(add_user())

    result = run("users", "add", "ALICE", "--role", "viewer")  # no stdin: must not prompt

    assert_one_line_error(result, contains="already exists")
    assert handler().get_user("alice").role is Role.TRADER


def test_add_when_stdin_empty_then_usage_error() -> None:
    result = run("users", "add", "alice", "--role", "trader", "--password-stdin", input="")

    assert result.exit_code == 2
    assert "no password on stdin" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["users", "add", "alice", "--role", "wizard", "--password-stdin"],
        ["users", "add", "bad name!", "--role", "trader", "--password-stdin"],
        ["users", "set-role", "alice", "wizard"],
        ["users", "mfa", "enroll", "alice", "--code", "123456", "--no-confirm"],
        ["apikeys", "create", "svc", "--name", "bot", "--expires-in", "0"],
    ],
)
def test_usage_when_wrong_then_exit_2_and_nothing_changed(args: list[str]) -> None:
    result = run(*args, input=PASSWORD + "\n")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert PASSWORD not in result.output
    assert handler().list_users() == []


# -- users: listing and administration -----------------------------------------------------


def test_list_when_users_then_table_and_json() -> None:
    assert_ok(add_user("alice", "trader"))
    assert_ok(add_user("svc", "service"))

    table = run("users", "list")
    as_json = run("users", "list", "--json")

    assert_ok(table)
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "DISABLED", "MFA", "CREATED"]
    assert lines[1].split()[:4] == ["alice", "TRADER", "no", "no"]
    assert lines[2].split()[:4] == ["svc", "SERVICE", "no", "no"]
    assert_ok(as_json)
    rows = json.loads(as_json.stdout)
    assert [(r["name"], r["role"], r["disabled"], r["mfa"]) for r in rows] == [
        ("alice", "TRADER", False, False),
        ("svc", "SERVICE", False, False),
    ]
    assert all(r["created"].endswith("+00:00") for r in rows)


def test_set_role_then_role_changed() -> None:
    assert_ok(add_user())

    result = run("users", "set-role", "alice", "admin")

    assert_ok(result)
    assert handler().get_user("alice").role is Role.ADMIN


def test_disable_then_login_refused_and_enable_restores_it() -> None:
    assert_ok(add_user())

    assert_ok(run("users", "disable", "alice"))
    auth = handler()
    assert auth.get_user("alice").disabled
    with pytest.raises(InvalidCredentials):
        auth.authenticate("alice", PASSWORD)

    assert_ok(run("users", "enable", "alice"))
    assert handler().authenticate("alice", PASSWORD).access_token


def test_unlock_when_locked_by_failed_logins_then_login_works() -> None:
    assert_ok(add_user())
    auth = handler()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.authenticate("alice", "wrong-password")
    with pytest.raises(AccountLocked):
        auth.authenticate("alice", PASSWORD)

    result = run("users", "unlock", "alice")

    assert_ok(result)
    assert handler().authenticate("alice", PASSWORD).access_token


def test_reset_password_then_old_fails_new_works_and_sessions_end() -> None:
    assert_ok(add_user())
    auth = handler()
    old_token = auth.authenticate("alice", PASSWORD).access_token

    result = run(
        "users", "reset-password", "alice", "--password-stdin", "--must-change",
        input=NEW_PASSWORD + "\n",
    )  # fmt: skip

    assert_ok(result)
    assert NEW_PASSWORD not in result.output
    auth = handler()
    with pytest.raises(InvalidCredentials):
        auth.authenticate("alice", PASSWORD)
    assert auth.authenticate("alice", NEW_PASSWORD).access_token
    assert auth.get_user("alice").must_change_password
    with pytest.raises(TokenRevoked):
        auth.validate_token(old_token)


def test_delete_when_not_confirmed_then_kept_and_when_yes_then_gone() -> None:
    assert_ok(add_user())

    refused = run("users", "delete", "alice", input="n\n")
    assert refused.exit_code == 1
    assert handler().get_user("alice").username == "alice"

    assert_ok(run("users", "delete", "alice", "--yes"))
    with pytest.raises(UserNotFound):
        handler().get_user("alice")


@pytest.mark.parametrize(
    "args",
    [
        ["users", "disable", "ghost"],
        ["users", "unlock", "ghost"],
        ["users", "sessions", "ghost"],
        ["users", "delete", "ghost"],
        ["users", "reset-password", "ghost"],
        ["users", "mfa", "reset", "ghost"],
        ["apikeys", "list", "ghost"],
    ],
)
def test_command_when_user_unknown_then_exit_1_one_line(args: list[str]) -> None:
    assert_one_line_error(run(*args), contains="no user named 'ghost'")


def test_sessions_then_listed_and_revoke_sessions_ends_them() -> None:
    assert_ok(add_user())
    auth = handler()
    pair = auth.authenticate("alice", PASSWORD, ip="203.0.113.7", user_agent="bot/1.0")

    listed = run("users", "sessions", "alice")
    revoked = run("users", "revoke-sessions", "alice")

    assert_ok(listed)
    assert pair.session_id in listed.stdout
    assert "203.0.113.7" in listed.stdout and "bot/1.0" in listed.stdout
    assert pair.access_token not in listed.stdout
    assert_ok(revoked)
    assert "ended 1 session(s)" in revoked.stdout
    auth = handler()
    with pytest.raises(TokenRevoked):
        auth.validate_token(pair.access_token)
    assert json.loads(run("users", "sessions", "alice", "--json").stdout) == []


# -- users mfa -----------------------------------------------------------------------------


def test_mfa_enroll_when_show_secret_and_no_confirm_then_confirm_turns_it_on() -> None:
    assert_ok(add_user())

    secret, codes, result = enroll_pending()

    assert len(codes) == 10 and len(set(codes)) == 10
    assert "store the recovery codes" in result.stderr
    assert not handler().get_user("alice").mfa_enabled
    assert_ok(run("users", "mfa", "confirm", "alice", pyotp.TOTP(secret).now()))
    auth = handler()
    assert auth.get_user("alice").mfa_enabled
    with pytest.raises(MFARequired):
        auth.authenticate("alice", PASSWORD)


def test_mfa_enroll_when_code_given_then_qr_drawn_uri_hidden_and_mfa_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = pyotp.random_base32(32)
    monkeypatch.setattr(mfa, "generate_secret", lambda: secret)
    assert_ok(add_user())

    result = run("users", "mfa", "enroll", "alice", "--code", pyotp.TOTP(secret).now())

    assert_ok(result)
    assert "otpauth://" not in result.output
    assert secret not in result.output
    assert "█" in result.stdout or "▀" in result.stdout
    assert len(RECOVERY_LINE.findall(result.stdout)) == 10
    assert "MFA is on for alice" in result.stdout
    with pytest.raises(MFARequired):
        handler().authenticate("alice", PASSWORD)


def test_mfa_enroll_when_prompted_then_retries_after_a_wrong_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = pyotp.random_base32(32)
    monkeypatch.setattr(mfa, "generate_secret", lambda: secret)
    assert_ok(add_user())

    result = run(
        "users", "mfa", "enroll", "alice",
        input=f"{wrong_code(secret)}\n{pyotp.TOTP(secret).now()}\n",
    )  # fmt: skip

    assert_ok(result)
    assert "invalid code, try again" in result.stderr
    assert handler().get_user("alice").mfa_enabled


def test_mfa_enroll_when_code_wrong_then_exit_1_and_still_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = pyotp.random_base32(32)
    monkeypatch.setattr(mfa, "generate_secret", lambda: secret)
    assert_ok(add_user())

    result = run("users", "mfa", "enroll", "alice", "--code", wrong_code(secret))

    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: invalid MFA code")
    assert not handler().get_user("alice").mfa_enabled
    assert_ok(run("users", "mfa", "confirm", "alice", pyotp.TOTP(secret).now()))


def test_mfa_disable_when_code_right_then_off_and_wrong_code_refused() -> None:
    assert_ok(add_user())
    secret, _, _ = enroll_pending()
    totp = pyotp.TOTP(secret)
    assert_ok(run("users", "mfa", "confirm", "alice", totp.now()))

    refused = run("users", "mfa", "disable", "alice", wrong_code(secret))
    result = run("users", "mfa", "disable", "alice", totp.at(time.time() + 30))

    assert_one_line_error(refused, contains="invalid MFA code")
    assert_ok(result)
    auth = handler()
    assert not auth.get_user("alice").mfa_enabled
    assert auth.authenticate("alice", PASSWORD).access_token


def test_mfa_disable_when_recovery_code_then_off() -> None:
    assert_ok(add_user())
    secret, codes, _ = enroll_pending()
    assert_ok(run("users", "mfa", "confirm", "alice", pyotp.TOTP(secret).now()))

    assert_ok(run("users", "mfa", "disable", "alice", codes[3]))

    assert not handler().get_user("alice").mfa_enabled


def test_mfa_reset_when_device_lost_then_login_without_code() -> None:
    assert_ok(add_user())
    secret, _, _ = enroll_pending()
    assert_ok(run("users", "mfa", "confirm", "alice", pyotp.TOTP(secret).now()))

    assert_ok(run("users", "mfa", "reset", "alice"))

    assert handler().authenticate("alice", PASSWORD).access_token


# -- keys, tokens, apikeys -----------------------------------------------------------------


def test_keys_rotate_signing_then_kid_published_and_old_tokens_still_valid() -> None:
    assert_ok(add_user())
    old = handler().authenticate("alice", PASSWORD).access_token

    result = run("keys", "rotate-signing")

    assert_ok(result)
    kid = result.stdout.strip()
    auth = handler()
    assert kid in {key["kid"] for key in auth.jwks()["keys"]}
    assert auth.validate_token(old).username == "alice"
    new = auth.authenticate("alice", PASSWORD).access_token
    assert auth.validate_token(new).username == "alice"


def test_tokens_revoke_then_token_fails_validation() -> None:
    assert_ok(add_user())
    auth = handler()
    token = auth.authenticate("alice", PASSWORD).access_token
    jti = auth.validate_token(token).jti

    result = run("tokens", "revoke", jti)

    assert_ok(result)
    with pytest.raises(TokenRevoked):
        handler().validate_token(token)


def test_tokens_revoke_when_not_a_token_id_then_exit_1() -> None:
    assert_one_line_error(run("tokens", "revoke", "short"), contains="not a token id")


def test_apikeys_create_list_revoke_then_key_shown_once_and_refused_after_revoke() -> None:
    assert_ok(add_user("svc", "service"))

    created = run("apikeys", "create", "svc", "--name", "bot-eu", "--expires-in", "3600")

    assert_ok(created)
    key = created.stdout.strip()
    assert key.startswith("tg_") and created.stdout.count("\n") == 1
    assert "shown only now" in created.stderr and key not in created.stderr
    key_id = key.split("_")[1]
    assert handler().authenticate_api_key(key).username == "svc"

    listed = run("apikeys", "list", "svc")
    listed_json = run("apikeys", "list", "svc", "--json")
    assert_ok(listed)
    assert key_id in listed.stdout and "bot-eu" in listed.stdout
    assert key.split("_", 2)[2] not in listed.output + listed_json.output
    assert [(k["id"], k["revoked"]) for k in json.loads(listed_json.stdout)] == [(key_id, None)]

    assert_ok(run("apikeys", "revoke", key_id))
    with pytest.raises(TokenRevoked):
        handler().authenticate_api_key(key)
    assert json.loads(run("apikeys", "list", "svc", "--json").stdout)[0]["revoked"]
    assert_one_line_error(run("apikeys", "revoke", key_id), contains="no live API key")


def test_apikeys_create_when_not_a_service_account_then_exit_1() -> None:
    assert_ok(add_user())

    result = run("apikeys", "create", "alice", "--name", "bot")

    assert_one_line_error(result, contains="SERVICE accounts only")
    assert "tg_" not in result.stdout
