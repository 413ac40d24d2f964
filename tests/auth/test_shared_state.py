"""With Redis, revocations and invalidations reach every process at once (real redis-server)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tradeguard.auth import AuthHandler, Role, build_auth_handler
from tradeguard.auth.shared_state import RedisAuthState
from tradeguard.errors import ConfigurationError, TokenRevoked
from tradeguard.secrets import SecretsManager, build_secrets_manager
from tradeguard.settings import Settings
from tradeguard.storage.redis_client import create_redis_client

PASSWORD = "correct horse battery staple 42"


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition that a background thread makes true (pub/sub delivery)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


@pytest.fixture
def pair(
    settings_for: Callable[..., Settings], redis_url: str
) -> Iterator[tuple[AuthHandler, AuthHandler]]:
    """Two handlers, as two processes would have, sharing the database and Redis."""
    settings = settings_for(redis_url=redis_url, auth_state_ttl=3600.0)
    secrets: list[SecretsManager] = [build_secrets_manager(settings) for _ in range(2)]
    first, second = (build_auth_handler(settings, s) for s in secrets)
    first.create_user("alice", PASSWORD, role=Role.TRADER)
    yield first, second
    for handler in (first, second):
        handler.close()
    for manager in secrets:
        manager.close()


def rejected(handler: AuthHandler, token: str) -> bool:
    try:
        handler.validate_token(token)
    except TokenRevoked:
        return True
    return False


def test_revoke_in_one_process_when_cached_elsewhere_then_rejected_there(
    pair: tuple[AuthHandler, AuthHandler],
) -> None:
    first, second = pair
    token = first.authenticate("alice", PASSWORD).access_token
    claims = second.validate_token(token)  # now cached in "process" two for an hour
    first.revoke_token(claims.jti)
    assert eventually(lambda: rejected(second, token))


@pytest.mark.parametrize("change", ["disable", "role", "session"])
def test_change_in_one_process_when_cached_elsewhere_then_seen_there(
    pair: tuple[AuthHandler, AuthHandler], change: str
) -> None:
    first, second = pair
    login = first.authenticate("alice", PASSWORD)
    assert second.validate_token(login.access_token).role is Role.TRADER
    if change == "disable":
        first.disable_user("alice")
        assert eventually(lambda: rejected(second, login.access_token))
    elif change == "role":
        first.set_role("alice", Role.VIEWER)
        assert eventually(lambda: second.validate_token(login.access_token).role is Role.VIEWER)
    else:
        first.revoke_session(login.session_id)
        assert eventually(lambda: rejected(second, login.access_token))


def test_without_redis_when_cached_elsewhere_then_stale_until_ttl(
    settings_for: Callable[..., Settings],
) -> None:
    """The contrast that shows what Redis buys: without it, the other cache holds."""
    settings = settings_for(auth_state_ttl=3600.0)
    secrets = [build_secrets_manager(settings) for _ in range(2)]
    first, second = (build_auth_handler(settings, s) for s in secrets)
    first.create_user("alice", PASSWORD, role=Role.TRADER)
    token = first.authenticate("alice", PASSWORD).access_token
    second.validate_token(token)
    first.disable_user("alice")
    assert not rejected(second, token)  # stale for up to TRADEGUARD_AUTH_STATE_TTL
    assert rejected(first, token)
    for closable in (first, second, *secrets):
        closable.close()


def test_mfa_step_claim_when_replayed_then_refused(redis_url: str) -> None:
    state = RedisAuthState(create_redis_client(redis_url))
    assert state.claim_mfa_step("u1", 100) is True
    assert state.claim_mfa_step("u1", 100) is False
    assert state.claim_mfa_step("u1", 99) is False
    assert state.claim_mfa_step("u1", 101) is True
    assert state.claim_mfa_step("u2", 100) is True
    state.close()


@pytest.mark.parametrize("url", ["http://x", "memcached://h:1", "redis-sentinel://pw@h"])
def test_redis_url_when_unknown_scheme_then_error_without_url(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_redis_client(url)
    assert url not in str(info.value)
