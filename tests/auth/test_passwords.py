"""Password hashing (argon2id, legacy bcrypt) and the zxcvbn-based password policy."""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
import unicodedata
from collections.abc import Callable

import argon2
import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeguard.auth.passwords import ZXCVBN_MAX_CHARS, PasswordHasher, PasswordPolicy
from tradeguard.errors import AuthError, WeakPassword

STRONG = "Correct-Horse-Battery-Ställe"
OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="module")
def stored(hasher: PasswordHasher) -> str:
    return hasher.hash(STRONG)


def legacy_argon2(
    *, time_cost: int = 2, memory_cost: int = 19_456, parallelism: int = 1
) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=argon2.Type.ID
    )


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


# --- hashing ----------------------------------------------------------------------------


def test_hash_when_made_then_argon2id_with_owasp_minimum_parameters(stored: str) -> None:
    assert stored.startswith(OWASP_PREFIX)
    params = argon2.extract_parameters(stored)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (
        argon2.Type.ID,
        19_456,
        2,
        1,
    )


def test_hash_when_made_twice_then_salted_differently(hasher: PasswordHasher) -> None:
    assert hasher.hash(STRONG) != hasher.hash(STRONG)


def test_hash_when_not_text_then_type_error(hasher: PasswordHasher) -> None:
    with pytest.raises(TypeError):
        hasher.hash(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [{"time_cost": 1}, {"memory_cost": 19_455}, {"parallelism": 0}, {"time_cost": True}],
)
def test_hasher_when_weaker_than_owasp_then_refused(params: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"must be|OWASP"):
        PasswordHasher(**params)


def test_hasher_when_stronger_than_owasp_then_used() -> None:
    assert PasswordHasher(time_cost=3).hash("x").startswith("$argon2id$v=19$m=19456,t=3,p=1$")


def test_verify_when_right_password_then_true(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(stored, STRONG) is True


def test_verify_when_wrong_password_then_false(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(stored, "Correct-Horse-Battery-Stalle") is False


@pytest.mark.parametrize(
    "variant",
    [
        STRONG + " ",
        " " + STRONG,
        STRONG.upper(),
        STRONG.lower(),
        unicodedata.normalize("NFD", STRONG),
        STRONG[:-1],
    ],
)
def test_verify_when_variant_of_password_then_false(
    hasher: PasswordHasher, stored: str, variant: str
) -> None:
    assert variant != STRONG
    assert hasher.verify(stored, variant) is False


def test_verify_when_nfkc_equivalent_then_false(hasher: PasswordHasher) -> None:
    ligature = "ﬁnance-walrus-orbit-Ställe"  # starts with U+FB01, NFKC turns it into "fi"
    folded = unicodedata.normalize("NFKC", ligature)
    assert folded != ligature
    assert hasher.verify(hasher.hash(ligature), folded) is False
    assert hasher.verify(hasher.hash(folded), ligature) is False


def test_verify_when_lone_surrogate_then_hashed_as_received(hasher: PasswordHasher) -> None:
    odd = "quartz-lantern-\ud800-fjord"
    assert hasher.verify(hasher.hash(odd), odd) is True
    assert hasher.verify(hasher.hash(odd), "quartz-lantern--fjord") is False


@pytest.mark.parametrize("password", [None, 42, b"Correct-Horse-Battery-St\xc3\xa4lle", [STRONG]])
def test_verify_when_password_not_text_then_false(
    hasher: PasswordHasher, stored: str, password: object
) -> None:
    assert hasher.verify(stored, password) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain",
        "$argon2id$garbage",
        "$argon2id$v=19$m=19456,t=2,p=1$é$é",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        "$2b$",
        "$2b$12$" + "x" * 53,
        "$2y$04$é",
        "\x00",
        None,
        42,
        b"$argon2id$",
    ],
)
def test_verify_when_hash_malformed_then_false_never_raises(
    hasher: PasswordHasher, bad: object
) -> None:
    assert hasher.verify(bad, STRONG) is False  # type: ignore[arg-type]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored_hash=st.text()
    | st.text().map(lambda s: OWASP_PREFIX + s)
    | st.text().map(lambda s: "$2b$04$" + s),
    password=st.text(max_size=100),
)
def test_verify_when_fuzzed_then_never_raises(
    hasher: PasswordHasher, stored_hash: str, password: str
) -> None:
    assert hasher.verify(stored_hash, password) is False
    assert isinstance(hasher.needs_rehash(stored_hash), bool)


# --- legacy bcrypt ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$", "$2y$"])
def test_verify_when_bcrypt_hash_then_checked_and_rehash_needed(
    hasher: PasswordHasher, prefix: str
) -> None:
    legacy = prefix + bcrypt_hash("legacy-password-42")[4:]
    assert hasher.verify(legacy, "legacy-password-42") is True
    assert hasher.verify(legacy, "legacy-password-43") is False
    assert hasher.needs_rehash(legacy) is True


def test_verify_when_bcrypt_and_password_over_72_bytes_then_false(
    hasher: PasswordHasher,
) -> None:
    exactly = "x" * 72
    legacy = bcrypt_hash(exactly)
    assert hasher.verify(legacy, exactly) is True
    # bcrypt would only read the first 72 bytes: anything longer is refused, not truncated.
    assert hasher.verify(legacy, exactly + "y") is False
    assert hasher.verify(bcrypt_hash("é" * 36), "é" * 37) is False  # 74 bytes, 37 chars


# --- needs_rehash ---------------------------------------------------------------------------


def test_needs_rehash_when_own_hash_then_false(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.needs_rehash(stored) is False


@pytest.mark.parametrize(
    "make",
    [
        lambda: legacy_argon2(time_cost=1).hash(STRONG),
        lambda: legacy_argon2(memory_cost=8_192).hash(STRONG),
        lambda: argon2.PasswordHasher(
            time_cost=2, memory_cost=19_456, parallelism=1, type=argon2.Type.I
        ).hash(STRONG),
    ],
    ids=["t=1", "m=8MiB", "argon2i"],
)
def test_needs_rehash_when_argon2_weaker_than_configured_then_true(
    hasher: PasswordHasher, make: Callable[[], str]
) -> None:
    weaker = make()
    assert hasher.verify(weaker, STRONG) is True
    assert hasher.needs_rehash(weaker) is True


def test_needs_rehash_when_argon2_stronger_than_configured_then_kept(
    hasher: PasswordHasher,
) -> None:
    stronger = legacy_argon2(time_cost=3, memory_cost=32_768, parallelism=2).hash(STRONG)
    assert hasher.verify(stronger, STRONG) is True
    assert hasher.needs_rehash(stronger) is False


@pytest.mark.parametrize("bad", ["", "plain", "$argon2id$garbage", None])
def test_needs_rehash_when_unparsable_then_true(hasher: PasswordHasher, bad: object) -> None:
    assert hasher.needs_rehash(bad) is True  # type: ignore[arg-type]


# --- dummy_verify ---------------------------------------------------------------------------


def median_seconds(action: Callable[[], object], runs: int = 7) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def test_dummy_verify_when_timed_then_costs_like_a_real_verify(
    hasher: PasswordHasher, stored: str
) -> None:
    hasher.verify(stored, "warm-up")
    real = median_seconds(lambda: hasher.verify(stored, "wrong-password"))
    dummy = median_seconds(lambda: hasher.dummy_verify("wrong-password"))
    assert 0.5 < dummy / real < 2.0


def test_dummy_verify_when_password_not_text_then_no_error(hasher: PasswordHasher) -> None:
    hasher.dummy_verify(None)
    hasher.dummy_verify(b"bytes")


# --- policy -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy()


def refusal(policy: PasswordPolicy, password: str, *user_inputs: str) -> str:
    with pytest.raises(WeakPassword) as caught:
        policy.check(password, user_inputs=user_inputs)
    message = str(caught.value)
    assert password not in message
    return message


def test_policy_when_defaults_then_owasp_lengths_and_score(policy: PasswordPolicy) -> None:
    assert (policy.min_length, policy.max_length, policy.min_score) == (12, 1024, 3)


def test_policy_when_eleven_characters_then_too_short(policy: PasswordPolicy) -> None:
    assert "too short" in refusal(policy, "Zq8#vLm2@pR")


def test_policy_when_twelve_strong_characters_then_accepted(policy: PasswordPolicy) -> None:
    policy.check("Zq8#vLm2@pRw")


def test_policy_when_length_counted_then_code_points_as_received(policy: PasswordPolicy) -> None:
    policy.check("  Zq8#vLm2@p")  # leading spaces count: 12, not stripped to 10
    decomposed = "Zq8#vLm2@pe\u0301"  # 12 code points; NFC would make it 11
    assert len(unicodedata.normalize("NFC", decomposed)) == 11
    policy.check(decomposed)


def test_policy_when_1025_characters_then_too_long(policy: PasswordPolicy) -> None:
    assert "too long" in refusal(policy, ("margin walrus quietly orbit " * 40)[:1025])


def test_policy_when_1024_strong_characters_then_accepted(policy: PasswordPolicy) -> None:
    long = ("margin walrus quietly orbit " * 40)[:1024]
    assert len(long) == 1024 > ZXCVBN_MAX_CHARS
    policy.check(long)


def test_policy_when_long_but_weak_start_then_refused(policy: PasswordPolicy) -> None:
    assert "too easy to guess" in refusal(policy, "a" * 200)


@pytest.mark.parametrize(
    "common",
    ["password1234", "P@ssw0rd1234", "Password123!", "qwerty123456", "iloveyou2024"],
)
def test_policy_when_common_password_then_refused_with_feedback(
    policy: PasswordPolicy, common: str
) -> None:
    message = refusal(policy, common)
    assert "too easy to guess" in message
    assert "common" in message


@pytest.mark.parametrize("password", ["alice_trader2024", "AliceTrader!2024", "alicetrader123"])
def test_policy_when_derived_from_username_then_refused(
    policy: PasswordPolicy, password: str
) -> None:
    message = refusal(policy, password, "alice_trader")
    assert "user name" in message
    assert "alice_trader" not in message


def test_policy_when_username_not_given_then_same_password_passes(policy: PasswordPolicy) -> None:
    policy.check("alice_trader2024")


@pytest.mark.parametrize(
    "strong", ["margin-walrus-quietly-orbit-77", "quartz-lantern-99-fjord", STRONG]
)
def test_policy_when_strong_passphrase_then_accepted(policy: PasswordPolicy, strong: str) -> None:
    policy.check(strong, user_inputs=["alice_trader"])


@pytest.mark.parametrize("bad", [None, 123456789012, b"margin-walrus-quietly-orbit"])
def test_policy_when_not_text_then_weak_password(policy: PasswordPolicy, bad: object) -> None:
    with pytest.raises(WeakPassword, match="must be text"):
        policy.check(bad)  # type: ignore[arg-type]


def test_weak_password_when_raised_then_auth_error_and_value_error() -> None:
    assert issubclass(WeakPassword, AuthError)
    assert issubclass(WeakPassword, ValueError)


@pytest.mark.parametrize(
    "params", [{"min_length": 7}, {"max_length": 63}, {"min_score": 5}, {"min_score": -1}]
)
def test_policy_when_configured_below_asvs_then_refused(params: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        PasswordPolicy(**params)


def test_policy_when_built_then_frozen_and_keyword_only(policy: PasswordPolicy) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.min_length = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        PasswordPolicy(12)  # type: ignore[call-arg]


def test_policy_when_min_score_zero_then_only_length_counts() -> None:
    PasswordPolicy(min_score=0).check("a" * 12)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(password=st.text(min_size=12, max_size=120), name=st.text(max_size=20))
def test_policy_when_fuzzed_then_only_weak_password_and_never_echoes(
    policy: PasswordPolicy, password: str, name: str
) -> None:
    try:
        policy.check(password, user_inputs=[name])
    except WeakPassword as error:
        assert password not in str(error)


def test_policy_when_checked_from_threads_then_user_inputs_do_not_leak(
    policy: PasswordPolicy,
) -> None:
    failures: list[str] = []

    def alice() -> None:
        for _ in range(40):
            try:
                policy.check("alice_trader2024", user_inputs=["alice_trader"])
                failures.append("alice accepted")
            except WeakPassword:
                pass

    def bob() -> None:
        for _ in range(40):
            try:
                policy.check("alice_trader2024", user_inputs=["bob"])
            except WeakPassword:
                failures.append("bob refused")

    threads = [threading.Thread(target=f) for f in (alice, bob, alice, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
