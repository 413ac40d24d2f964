"""TokenService and the keyring: issuing, validating, expiry, rotation, JWKS, persistence, cache."""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tradeguard.auth.keys import (
    ALGORITHMS,
    KEYRING_PATH,
    Algorithm,
    KeyRing,
    KeyRingStore,
    generate_key,
)
from tradeguard.auth.tokens import REQUIRED_CLAIMS, TokenService
from tradeguard.clock import FixedClock
from tradeguard.errors import ConfigurationError, TokenExpired, TokenInvalid, VersionConflict
from tradeguard.secrets import SecretsManager, SqlSecretsBackend
from tradeguard.storage import create_database_engine

SECRET = b"s" * 16 + os.urandom(16)


@pytest.fixture
def make_secrets(tmp_path: Path) -> Iterator[Callable[[], SecretsManager]]:
    """SecretsManagers over one SQLite database and master key (like several processes)."""
    key = os.urandom(32)
    made: list[SecretsManager] = []

    def make() -> SecretsManager:
        engine = create_database_engine(f"sqlite:///{tmp_path}/db")
        made.append(SecretsManager(SqlSecretsBackend(engine, key)))
        return made[-1]

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def secrets_manager(make_secrets: Callable[[], SecretsManager]) -> SecretsManager:
    return make_secrets()


def store_for(
    secrets: SecretsManager, clock: FixedClock, algorithm: Algorithm = "EdDSA"
) -> KeyRingStore:
    return KeyRingStore(secrets, algorithm=algorithm, hs256_secret=SECRET, clock=clock)


@pytest.fixture
def service(secrets_manager: SecretsManager, clock: FixedClock) -> TokenService:
    return TokenService(store_for(secrets_manager, clock), clock=clock)


def access(service: TokenService, **extra: Any) -> str:
    return service.issue(subject="u1", token_type="access", session_id="sess", **extra).token


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_issue_when_validated_then_claims_round_trip_for_each_algorithm(
    secrets_manager: SecretsManager, clock: FixedClock, algorithm: Algorithm
) -> None:
    service = TokenService(store_for(secrets_manager, clock, algorithm), clock=clock)
    issued = service.issue(
        subject="user-1", token_type="access", session_id="sess-1", claims={"role": "trader"}
    )
    claims = service.validate(issued.token, expected_type="access")
    header = jwt.get_unverified_header(issued.token)
    now = int(clock.now().timestamp())
    assert header == {"alg": algorithm, "kid": service.ring.current.kid, "typ": "JWT"}
    assert set(claims) == {*REQUIRED_CLAIMS, "role"}
    assert claims["iss"] == "tradeguard" and claims["aud"] == "tradeguard"
    assert (claims["sub"], claims["sid"], claims["typ"]) == ("user-1", "sess-1", "access")
    assert claims["iat"] == claims["nbf"] == now and claims["exp"] == now + 900
    assert all(type(claims[name]) is int for name in ("iat", "nbf", "exp"))
    assert claims["jti"] == issued.jti and claims["role"] == "trader"
    assert issued.issued_at == clock.now() and issued.expires_at == clock.now() + timedelta(
        seconds=900
    )


def test_jti_when_issued_10000_times_then_unique_and_at_least_128_bits() -> None:
    clock = FixedClock()
    service = TokenService(KeyRing.create("HS256", now=clock.now(), secret=SECRET), clock=clock)
    jtis = {
        service.issue(subject="u", token_type="access", session_id="s").jti for _ in range(10_000)
    }
    assert len(jtis) == 10_000
    assert all(len(base64.urlsafe_b64decode(j + "=" * (-len(j) % 4))) * 8 >= 128 for j in jtis)


def test_typ_when_refresh_used_as_access_or_reverse_then_invalid(service: TokenService) -> None:
    refresh = service.issue(subject="u", token_type="refresh", session_id="s")
    token = access(service)
    assert refresh.expires_at - refresh.issued_at == timedelta(days=7)
    assert service.validate(refresh.token, expected_type="refresh")["typ"] == "refresh"
    with pytest.raises(TokenInvalid):
        service.validate(refresh.token, expected_type="access")
    with pytest.raises(TokenInvalid):
        service.validate(token, expected_type="refresh")
    assert service.validate(token, expected_type="access")["typ"] == "access"


def test_expiry_when_clock_moves_then_leeway_boundary_holds(
    service: TokenService, clock: FixedClock
) -> None:
    token = access(service)
    service.validate(token, expected_type="access")  # cached from here on
    clock.advance(900 + 30 - 1)
    assert service.validate(token, expected_type="access")["sub"] == "u1"
    clock.advance(1)
    with pytest.raises(TokenExpired):
        service.validate(token, expected_type="access")
    assert service.cache_hits == 2 and service.cache_misses == 1
    clock.advance(1)
    service.clear_cache()
    with pytest.raises(TokenExpired):  # uncached: the full path says the same
        service.validate(token, expected_type="access")


def test_nbf_when_in_the_future_then_invalid_until_leeway_reached(
    service: TokenService, clock: FixedClock
) -> None:
    token = access(service, now=clock.now() + timedelta(seconds=100))
    with pytest.raises(TokenInvalid):
        service.validate(token, expected_type="access")
    clock.advance(100 - 30)
    assert service.validate(token, expected_type="access")["sub"] == "u1"


def test_rotation_when_rotated_and_pruned_then_old_kid_verifies_until_pruned(
    service: TokenService, clock: FixedClock, secrets_manager: SecretsManager
) -> None:
    old_kid = service.ring.current.kid
    old = service.issue(subject="u", token_type="refresh", session_id="s").token
    new_kid = service.rotate_signing_key()
    assert new_kid != old_kid and service.ring.current.kid == new_kid
    assert jwt.get_unverified_header(access(service))["kid"] == new_kid
    assert service.validate(old, expected_type="refresh")["sub"] == "u"
    assert {k["kid"] for k in service.jwks()["keys"]} == {old_kid, new_kid}
    clock.advance(service.max_lifetime + 1)
    third = service.rotate_signing_key()
    assert service.ring.get(old_kid) is None and service.ring.get(new_kid) is not None
    with pytest.raises(TokenInvalid):  # not TokenExpired from the cache: pruned kids purge it
        service.validate(old, expected_type="refresh")
    stored = KeyRing.from_secret(secrets_manager.get_secret(KEYRING_PATH))
    assert [k.kid for k in stored.keys] == [third, new_kid]


def test_rotation_when_ring_without_store_then_rotates_in_memory() -> None:
    clock = FixedClock()
    service = TokenService(KeyRing.create("ES256", now=clock.now()), clock=clock)
    old = access(service)
    kid = service.rotate_signing_key()
    assert service.ring.current.kid == kid and service.ring.current.algorithm == "ES256"
    assert service.validate(old, expected_type="access")["sub"] == "u1"


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256"])
def test_jwks_when_published_then_public_only_and_verifies_with_pyjwk(
    algorithm: Algorithm,
) -> None:
    clock = FixedClock()
    ring = KeyRing.create(algorithm, now=clock.now())
    service = TokenService(ring, clock=clock)
    token = access(service, now=datetime.now(UTC))  # PyJWT checks exp on the wall clock
    kid = ring.current.kid
    ring.rotate(clock.now(), algorithm="HS256", secret=SECRET)  # HS256 is never published
    jwks = service.jwks()
    assert len(jwks["keys"]) == 1
    jwk = jwks["keys"][0]
    assert jwk["kid"] == kid and jwk["alg"] == algorithm
    assert jwk["use"] == "sig" and "d" not in jwk and not {"p", "q", "dp", "dq", "qi"} & set(jwk)
    assert SECRET.hex() not in str(jwks)
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=[algorithm], audience="tradeguard")
    assert claims["sub"] == "u1"


def test_store_when_two_load_or_create_race_then_both_get_one_ring(
    make_secrets: Callable[[], SecretsManager], clock: FixedClock
) -> None:
    managers = [make_secrets(), make_secrets()]
    barrier = threading.Barrier(2)
    kids: list[str] = []

    def start(manager: SecretsManager) -> None:
        barrier.wait()
        kids.append(store_for(manager, clock).load_or_create().current.kid)

    threads = [threading.Thread(target=start, args=(m,)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 2 and kids[0] == kids[1]
    assert managers[0].secret_metadata(KEYRING_PATH).current_version == 1
    again = store_for(managers[0], clock).load_or_create()
    assert again.current.kid == kids[0] and again.version == 1


def test_store_when_two_services_share_secrets_then_rotation_is_followed(
    make_secrets: Callable[[], SecretsManager], clock: FixedClock
) -> None:
    one = TokenService(store_for(make_secrets(), clock), clock=clock)
    two = TokenService(store_for(make_secrets(), clock), clock=clock)
    assert two.validate(access(one), expected_type="access")["sub"] == "u1"
    kid = one.rotate_signing_key()
    token = access(one)
    assert jwt.get_unverified_header(token)["kid"] == kid
    assert two.validate(token, expected_type="access")["sub"] == "u1"  # unknown kid: reload
    assert two.ring.current.kid == kid


def test_store_when_saved_with_stale_version_then_version_conflict(
    secrets_manager: SecretsManager, clock: FixedClock
) -> None:
    store = store_for(secrets_manager, clock)
    ring = store.load_or_create()
    store.rotate()
    ring.rotate(clock.now())
    with pytest.raises(VersionConflict):
        store.save(ring, 1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keyring_when_serialized_then_same_keys_come_back(algorithm: Algorithm) -> None:
    now = FixedClock().now()
    ring = KeyRing.create(algorithm, now=now, secret=SECRET if algorithm == "HS256" else None)
    ring.rotate(now + timedelta(hours=1))
    back = KeyRing.from_secret(ring.to_secret(), version=3)
    assert [k.kid for k in back.keys] == [k.kid for k in ring.keys] and back.version == 3
    assert back.keys[1].retired_at == now + timedelta(hours=1) and back.current.retired_at is None
    assert back.jwks() == ring.jwks()


@pytest.mark.parametrize(
    "data",
    [{}, {"format": "x"}, {"format": "tradeguard-keyring-v1", "keyring": "[]"},
     {"format": "tradeguard-keyring-v1", "keyring": '{"current": "a", "keys": [{"kid": 1}]}'}],
)  # fmt: skip
def test_keyring_when_stored_data_malformed_then_configuration_error(data: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing.from_secret(data)


def test_store_when_configured_algorithm_differs_then_next_rotation_switches(
    secrets_manager: SecretsManager, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    before = TokenService(store_for(secrets_manager, clock, "EdDSA"), clock=clock)
    old = access(before)
    with caplog.at_level(logging.WARNING, logger="tradeguard.auth.keys"):
        after = TokenService(store_for(secrets_manager, clock, "ES256"), clock=clock)
    assert after.ring.current.algorithm == "EdDSA" and "next rotation" in caplog.text
    kid = after.rotate_signing_key()
    assert after.ring.get(kid) is after.ring.current and after.ring.current.algorithm in {"ES256"}
    assert jwt.get_unverified_header(access(after))["alg"] == "ES256"
    assert after.validate(old, expected_type="access")["sub"] == "u1"


def test_store_when_hs256_then_configured_secret_seeds_first_key_only(
    secrets_manager: SecretsManager, clock: FixedClock
) -> None:
    store = store_for(secrets_manager, clock, "HS256")
    assert store.load_or_create().current.private_key == SECRET
    store.rotate()
    ring = store.load_or_create()
    assert isinstance(ring.current.private_key, bytes) and len(ring.current.private_key) == 32
    assert ring.current.private_key != SECRET
    assert ring.jwks() == {"keys": []}


@pytest.mark.parametrize("secret", [None, b"", b"x" * 31, "y" * 40])
def test_hs256_when_secret_short_or_missing_then_configuration_error(
    secret: Any, secrets_manager: SecretsManager
) -> None:
    with pytest.raises(ConfigurationError):
        generate_key("HS256", now=FixedClock().now(), secret=secret)
    with pytest.raises(ConfigurationError):
        KeyRingStore(secrets_manager, algorithm="HS256", hs256_secret=secret)


def test_config_when_unsafe_then_configuration_error(secrets_manager: SecretsManager) -> None:
    ring = KeyRing.create(now=FixedClock().now())
    with pytest.raises(ConfigurationError):
        TokenService(ring, leeway=31)
    with pytest.raises(ConfigurationError):
        generate_key("none", now=FixedClock().now())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        generate_key("EdDSA", now=FixedClock().now(), secret=SECRET)


def test_cache_when_same_token_again_then_signature_checked_once(service: TokenService) -> None:
    token = access(service, claims={"roles": ["a"], "meta": {"k": [1]}})
    first = service.validate(token, expected_type="access")
    second = service.validate(token, expected_type="access")
    assert (service.cache_misses, service.cache_hits) == (1, 1) and first == second
    second["sub"] = "admin"
    second["roles"].append("admin")
    second["meta"]["k"].append(2)
    third = service.validate(token, expected_type="access")
    assert third == first and third["roles"] == ["a"] and third["meta"] == {"k": [1]}
    with pytest.raises(TokenInvalid):  # the typ check runs on hits too
        service.validate(token, expected_type="refresh")
    assert service.cache_hits == 3


def test_cache_when_more_tokens_than_size_then_bounded_lru(clock: FixedClock) -> None:
    service = TokenService(KeyRing.create(now=clock.now()), clock=clock, cache_size=3)
    tokens = [access(service) for _ in range(5)]
    for token in tokens:
        service.validate(token, expected_type="access")
    assert service.cached_tokens == 3
    service.validate(tokens[2], expected_type="access")  # hit; now most recent
    service.validate(access(service), expected_type="access")  # evicts tokens[3]
    service.validate(tokens[2], expected_type="access")
    assert service.cache_hits == 2
    service.validate(tokens[3], expected_type="access")
    assert service.cache_misses == 7


def test_cache_hit_when_timed_then_10x_faster_than_pyjwt_decode(clock: FixedClock) -> None:
    service = TokenService(KeyRing.create(now=clock.now()), clock=clock)
    token = access(service, claims={"username": "ada", "role": "trader"})
    key = service.ring.current.public_key
    service.validate(token, expected_type="access")

    def best(call: Callable[[], object], n: int) -> float:
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(n):
                call()
            runs.append((time.perf_counter() - start) / n)
        return min(runs)

    hit = best(lambda: service.validate(token, expected_type="access"), 2000)
    options: Any = {"verify_exp": False}
    decode = best(
        lambda: jwt.decode(token, key, ["EdDSA"], options=options, audience="tradeguard"), 200
    )
    assert decode / hit >= 10, f"hit {hit * 1e6:.1f} µs vs decode {decode * 1e6:.1f} µs"


def test_issue_when_extra_claims_reserved_or_bad_then_value_error(service: TokenService) -> None:
    for name in REQUIRED_CLAIMS:
        with pytest.raises(ValueError, match=name):
            access(service, claims={name: "x"})
    with pytest.raises(ValueError):
        access(service, claims={"blob": "x" * 9000})
    with pytest.raises(ValueError):
        access(service, claims={"bad": float("nan")})
    with pytest.raises(ValueError):
        service.issue(subject="", token_type="access", session_id="s")
    with pytest.raises(ValueError):
        service.issue(subject="u", token_type="id", session_id="s")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        access(service, lifetime=timedelta(days=30))
    assert access(service, lifetime=60)


def test_repr_when_printed_then_no_key_material(clock: FixedClock) -> None:
    hs = generate_key("HS256", now=clock.now(), secret=SECRET)
    ed = generate_key("EdDSA", now=clock.now())
    pem = ed.private_key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    service = TokenService(KeyRing(ed), clock=clock)
    issued = service.issue(subject="u", token_type="access", session_id="s")
    texts = [repr(hs), str(hs), repr(ed), repr(KeyRing(hs)), repr(service), repr(issued)]
    for text in texts:
        assert "SigningKey" in text or "Ring" in text or "Service" in text or "Issued" in text
        for secret in (SECRET.hex(), str(SECRET), pem.splitlines()[1], issued.token):
            assert secret not in text
