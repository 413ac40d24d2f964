"""The AuthHandler end to end, over SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pyotp
import pytest

from tradeguard.auth import AuthHandler, Permission, Role, build_auth_handler
from tradeguard.clock import FixedClock
from tradeguard.errors import (
    AccountLocked,
    InvalidCredentials,
    InvalidMFACode,
    MFARequired,
    PermissionDenied,
    TokenExpired,
    TokenInvalid,
    TokenReuseDetected,
    TokenRevoked,
    UserExists,
    UserNotFound,
    WeakPassword,
)
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import build_secrets_manager
from tradeguard.settings import Settings

PASSWORD = "correct horse battery staple 42"
OTHER = "a different but strong passphrase 77"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, settings_for: Callable[..., Settings]) -> Settings:
    if request.param == "sqlite":
        return settings_for(auth_state_ttl=60.0)
    return settings_for(database_url=request.getfixturevalue("postgres_url"), auth_state_ttl=60.0)


@pytest.fixture
def seen() -> list[SecurityEvent]:
    return []


@pytest.fixture
def auth(settings: Settings, clock: FixedClock, seen: list[SecurityEvent]) -> Iterator[AuthHandler]:
    bus = EventBus(clock=clock)
    bus.subscribe(seen.append)
    secrets = build_secrets_manager(settings, bus=bus, clock=clock)
    handler = build_auth_handler(settings, secrets, bus=bus, clock=clock)
    handler.create_user("alice", PASSWORD, role="TRADER")
    yield handler
    handler.close()
    secrets.close()


def test_login_when_right_password_then_tokens_and_claims(auth: AuthHandler) -> None:
    pair = auth.authenticate("alice", PASSWORD, ip="10.0.0.1", user_agent="bot/1.0")
    assert pair.token_type == "Bearer" and pair.expires_in == 900
    claims = auth.validate_token(pair.access_token)
    assert claims.username == "alice" and claims["role"] == "TRADER"
    assert claims.role is Role.TRADER and Permission.ORDERS_SUBMIT in claims.permissions
    assert claims.session_id == pair.session_id and len(claims.jti) >= 22
    assert claims.subject == auth.get_user("alice").id
    assert PASSWORD not in repr(pair) and pair.access_token not in repr(pair)


@pytest.mark.parametrize("name", ["ALICE", " alice ", "\uff41\uff4c\uff49\uff43\uff45"])
def test_username_when_case_or_width_differs_then_same_user(auth: AuthHandler, name: str) -> None:
    assert auth.validate_token(auth.authenticate(name, PASSWORD).access_token).username == "alice"
    with pytest.raises(UserExists):
        auth.create_user(name, OTHER, role="VIEWER")


def test_login_when_wrong_password_or_unknown_user_then_same_error(
    auth: AuthHandler, seen: list[SecurityEvent]
) -> None:
    with pytest.raises(InvalidCredentials) as wrong:
        auth.authenticate("alice", "not the password at all")
    with pytest.raises(InvalidCredentials) as unknown:
        auth.authenticate("mallory", PASSWORD)
    assert str(wrong.value) == str(unknown.value)
    reasons = [e.details["reason"] for e in seen if e.type == "auth.login_failed"]
    assert reasons == ["bad_password", "unknown_user"]
    assert all(PASSWORD not in repr(e) for e in seen)


def test_lockout_when_five_failures_then_locked_escalating_and_reset(
    auth: AuthHandler, clock: FixedClock
) -> None:
    expected = [60, 300, 900, 900]
    for duration in expected:
        for _ in range(5):
            with pytest.raises(InvalidCredentials):
                auth.authenticate("alice", "wrong password here")
        with pytest.raises(AccountLocked) as locked:
            auth.authenticate("alice", PASSWORD)  # even the right password
        assert locked.value.retry_after == pytest.approx(duration)
        clock.advance(duration - 1)
        with pytest.raises(AccountLocked):
            auth.authenticate("alice", PASSWORD)
        clock.advance(1)
    auth.authenticate("alice", PASSWORD)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.authenticate("alice", "wrong password here")
    with pytest.raises(AccountLocked) as after_success:
        auth.authenticate("alice", PASSWORD)
    assert after_success.value.retry_after == pytest.approx(60)  # escalation restarted


def test_lockout_when_unknown_user_then_locked_alike(auth: AuthHandler) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.authenticate("ghost", "whatever password")
    with pytest.raises(AccountLocked):
        auth.authenticate("ghost", "whatever password")


def test_unlock_when_admin_unlocks_then_login_works(auth: AuthHandler) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.authenticate("alice", "wrong password here")
    auth.unlock_user("alice")
    auth.authenticate("alice", PASSWORD)


def test_role_change_when_token_already_issued_then_new_role_applies(auth: AuthHandler) -> None:
    token = auth.authenticate("alice", PASSWORD).access_token
    assert auth.validate_token(token).role is Role.TRADER
    auth.set_role("alice", Role.VIEWER)
    claims = auth.validate_token(token)
    assert claims.role is Role.VIEWER and claims["role"] == "VIEWER"
    assert Permission.ORDERS_SUBMIT not in claims.permissions


def test_disable_when_token_issued_then_rejected_and_login_refused(auth: AuthHandler) -> None:
    token = auth.authenticate("alice", PASSWORD).access_token
    auth.disable_user("alice")
    with pytest.raises(TokenRevoked):
        auth.validate_token(token)
    with pytest.raises(InvalidCredentials):
        auth.authenticate("alice", PASSWORD)
    auth.enable_user("alice")
    auth.authenticate("alice", PASSWORD)


def test_refresh_when_used_once_then_new_pair_and_old_refresh_reuse_ends_session(
    auth: AuthHandler, seen: list[SecurityEvent]
) -> None:
    first = auth.authenticate("alice", PASSWORD)
    second = auth.refresh(first.refresh_token)
    assert second.session_id == first.session_id
    assert auth.validate_token(second.access_token).username == "alice"
    with pytest.raises(TokenReuseDetected):
        auth.refresh(first.refresh_token)
    for token in (first.access_token, second.access_token):
        with pytest.raises(TokenRevoked):
            auth.validate_token(token)
    with pytest.raises(TokenRevoked):
        auth.refresh(second.refresh_token)
    reuse = [e for e in seen if e.type == "auth.refresh_reuse"]
    assert len(reuse) == 1 and reuse[0].severity == "critical"


def test_token_types_when_swapped_then_rejected(auth: AuthHandler) -> None:
    pair = auth.authenticate("alice", PASSWORD)
    with pytest.raises(TokenInvalid):
        auth.validate_token(pair.refresh_token)
    with pytest.raises(TokenInvalid):
        auth.refresh(pair.access_token)


def test_access_token_when_expired_then_token_expired(auth: AuthHandler, clock: FixedClock) -> None:
    pair = auth.authenticate("alice", PASSWORD)
    clock.advance(900 + 31)
    with pytest.raises(TokenExpired):
        auth.validate_token(pair.access_token)
    assert auth.validate_token(auth.refresh(pair.refresh_token).access_token)


def test_session_when_older_than_absolute_max_then_refresh_refused(
    auth: AuthHandler, clock: FixedClock
) -> None:
    pair = auth.authenticate("alice", PASSWORD)
    for _ in range(4):  # keep refreshing within the refresh TTL...
        clock.advance(6 * 86_400)
        pair = auth.refresh(pair.refresh_token)
    clock.advance(6 * 86_400 - 1)
    pair = auth.refresh(pair.refresh_token)  # one second before the 30-day cap
    clock.advance(1)
    with pytest.raises(TokenExpired, match="maximum age"):  # ...but not past 30 days
        auth.refresh(pair.refresh_token)


def test_logout_and_revocations(auth: AuthHandler) -> None:
    one = auth.authenticate("alice", PASSWORD)
    two = auth.authenticate("alice", PASSWORD)
    three = auth.authenticate("alice", PASSWORD)
    assert {s.id for s in auth.list_sessions("alice")} == {
        one.session_id,
        two.session_id,
        three.session_id,
    }
    auth.logout(one.access_token)
    with pytest.raises(TokenRevoked):
        auth.validate_token(one.access_token)
    with pytest.raises(TokenRevoked):
        auth.refresh(one.refresh_token)
    auth.revoke_token(auth.validate_token(two.access_token).jti)
    with pytest.raises(TokenRevoked):
        auth.validate_token(two.access_token)
    assert auth.revoke_session(three.session_id) is True
    with pytest.raises(TokenRevoked):
        auth.validate_token(three.access_token)
    four = auth.authenticate("alice", PASSWORD)
    assert auth.revoke_all_sessions("alice") == 2  # revoking a token leaves its session (two)
    with pytest.raises(TokenRevoked):
        auth.validate_token(four.access_token)
    assert auth.list_sessions("alice") == []


def test_password_change_when_old_wrong_then_refused_else_sessions_end(auth: AuthHandler) -> None:
    pair = auth.authenticate("alice", PASSWORD)
    with pytest.raises(InvalidCredentials):
        auth.change_password("alice", "not my password!!", OTHER)
    with pytest.raises(WeakPassword):
        auth.change_password("alice", PASSWORD, "short")
    auth.change_password("alice", PASSWORD, OTHER)
    with pytest.raises(TokenRevoked):
        auth.validate_token(pair.access_token)
    with pytest.raises(InvalidCredentials):
        auth.authenticate("alice", PASSWORD)
    auth.authenticate("alice", OTHER)


def test_imported_bcrypt_hash_when_login_then_verified_and_upgraded(auth: AuthHandler) -> None:
    user = auth.get_user("alice")
    legacy = bcrypt.hashpw(OTHER.encode(), bcrypt.gensalt(rounds=4)).decode()
    auth.store.update_user(user.id, 0.0, password_hash=legacy)
    auth.authenticate("alice", OTHER)
    record = auth.store.user_by_id(user.id)
    assert record is not None and record.password_hash.startswith("$argon2id$")
    auth.authenticate("alice", OTHER)


def totp_now(secret: str, clock: FixedClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def test_mfa_when_enrolled_then_code_required_once_each(
    auth: AuthHandler, clock: FixedClock
) -> None:
    enrollment = auth.enroll_mfa("alice")
    assert enrollment.secret not in repr(enrollment)
    auth.authenticate("alice", PASSWORD)  # pending enrolment does not count yet
    with pytest.raises(InvalidMFACode):
        auth.confirm_mfa("alice", "000000")
    auth.confirm_mfa("alice", totp_now(enrollment.secret, clock))
    with pytest.raises(MFARequired):
        auth.authenticate("alice", PASSWORD)
    with pytest.raises(InvalidMFACode):
        auth.authenticate("alice", PASSWORD, "123456")
    clock.advance(30)
    code = totp_now(enrollment.secret, clock)
    auth.authenticate("alice", PASSWORD, code)
    with pytest.raises(InvalidMFACode):  # replay of the same code
        auth.authenticate("alice", PASSWORD, code)
    recovery = enrollment.recovery_codes[3]
    auth.authenticate("alice", PASSWORD, recovery)
    with pytest.raises(InvalidMFACode):
        auth.authenticate("alice", PASSWORD, recovery)
    with pytest.raises(PermissionDenied):
        auth.enroll_mfa("alice")
    clock.advance(30)
    auth.disable_mfa("alice", totp_now(enrollment.secret, clock))
    auth.authenticate("alice", PASSWORD)


def test_mfa_failures_when_repeated_then_count_toward_lockout(
    auth: AuthHandler, clock: FixedClock
) -> None:
    enrollment = auth.enroll_mfa("alice")
    auth.confirm_mfa("alice", totp_now(enrollment.secret, clock))
    for _ in range(5):
        with pytest.raises(InvalidMFACode):
            auth.authenticate("alice", PASSWORD, "999999")
    clock.advance(30)
    with pytest.raises(AccountLocked):
        auth.authenticate("alice", PASSWORD, totp_now(enrollment.secret, clock))


def test_api_keys_when_service_account_then_work_until_revoked(
    auth: AuthHandler, clock: FixedClock
) -> None:
    auth.create_user("svc-bot", OTHER, role=Role.SERVICE)
    with pytest.raises(PermissionDenied):
        auth.create_api_key("alice", name="nope")
    key = auth.create_api_key("svc-bot", name="prod", expires_in=3600)
    assert key.startswith("tg_")
    claims = auth.authenticate_api_key(key)
    assert claims.role is Role.SERVICE and claims.username == "svc-bot"
    assert [k["name"] for k in auth.list_api_keys("svc-bot")] == ["prod"]
    assert key.split("_", 2)[2] not in repr(auth.list_api_keys("svc-bot"))
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "tg_", "", "Bearer x", key + "x"):
        with pytest.raises(InvalidCredentials):
            auth.authenticate_api_key(bad)
    clock.advance(3601)
    with pytest.raises(TokenRevoked):
        auth.authenticate_api_key(key)
    other = auth.create_api_key("svc-bot", name="second")
    assert auth.revoke_api_key(other.split("_")[1]) is True
    with pytest.raises(TokenRevoked):
        auth.authenticate_api_key(other)


def test_signing_key_rotation_when_rotated_then_old_tokens_still_valid(auth: AuthHandler) -> None:
    old = auth.authenticate("alice", PASSWORD).access_token
    kid = auth.rotate_signing_key()
    new = auth.authenticate("alice", PASSWORD).access_token
    assert auth.validate_token(old).username == auth.validate_token(new).username
    assert kid in {key["kid"] for key in auth.jwks()["keys"]}


def test_admin_calls_when_user_missing_then_user_not_found(auth: AuthHandler) -> None:
    calls = [
        lambda: auth.set_role("nobody", "ADMIN"),
        lambda: auth.disable_user("nobody"),
        lambda: auth.delete_user("nobody"),
        lambda: auth.list_sessions("nobody"),
    ]
    for call in calls:
        with pytest.raises(UserNotFound):
            call()


def test_delete_user_when_deleted_then_tokens_die(auth: AuthHandler) -> None:
    token = auth.authenticate("alice", PASSWORD).access_token
    auth.delete_user("alice")
    with pytest.raises(TokenRevoked):
        auth.validate_token(token)
    assert [u.username for u in auth.list_users()] == []


def test_timing_when_unknown_user_vs_wrong_password_then_within_25_percent(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_for(database_url=f"sqlite:///{tmp_path / 't.db'}")
    secrets = build_secrets_manager(settings)
    auth = build_auth_handler(settings, secrets)
    auth.create_user("bob", PASSWORD, role="VIEWER")

    def timed(user: str) -> float:
        start = time.perf_counter()
        with pytest.raises(InvalidCredentials):
            auth.authenticate(user, "wrong password " + os.urandom(4).hex())
        return time.perf_counter() - start

    samples: dict[str, list[float]] = {"bob": [], "nobody": []}
    for i in range(8):
        for who in ("bob", "nobody") if i % 2 else ("nobody", "bob"):
            samples[who].append(timed(who))
            auth.unlock_user("bob")
            auth.store.clear_failures("nobody")
    known, unknown = (statistics.median(samples[w]) for w in ("bob", "nobody"))
    assert abs(known - unknown) / max(known, unknown) < 0.25, (known, unknown)
    auth.close()
    secrets.close()


def test_status_read_when_fast_connection_breaks_then_falls_back_and_reconnects(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_for(database_url=f"sqlite:///{tmp_path / 'fast.db'}", auth_state_ttl=0.0)
    secrets = build_secrets_manager(settings)
    auth = build_auth_handler(settings, secrets)
    auth.create_user("carol", PASSWORD, role="TRADER")
    token = auth.authenticate("carol", PASSWORD).access_token
    assert auth.validate_token(token).username == "carol"
    broken = auth.store._local.connection  # break the per-thread connection underneath
    broken.close()
    assert auth.validate_token(token).username == "carol"  # served by the engine instead
    assert auth.validate_token(token).username == "carol"  # and a new connection after
    assert auth.store._local.connection is not broken
    auth.disable_user("carol")
    with pytest.raises(TokenRevoked):
        auth.validate_token(token)
    auth.close()
    secrets.close()
