"""The attack suite: every forged, confused, stripped or malformed token gets the exact error.

Tokens are built by hand (base64url of JSON text, then a real signature over the signing
input) so each case isolates one flaw; where PyJWT alone would accept the forgery, a control
assertion shows the attack is real.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from tradeguard.auth.keys import ALGORITHMS, KeyRing, SigningKey, generate_key
from tradeguard.auth.tokens import REQUIRED_CLAIMS, TokenService
from tradeguard.clock import FixedClock
from tradeguard.errors import TokenError, TokenExpired, TokenInvalid

NOW = FixedClock().now()
T = int(NOW.timestamp())
SECRET = os.urandom(32)
ASYMMETRIC = ("EdDSA", "ES256", "RS256")
DROP = object()
NOT_UTF8 = bytes([0xFF, 0xFE])


@pytest.fixture(scope="module")
def rings() -> dict[str, KeyRing]:
    return {
        alg: KeyRing.create(alg, now=NOW, secret=SECRET if alg == "HS256" else None)
        for alg in ALGORITHMS
    }


@pytest.fixture(scope="module")
def strangers() -> dict[str, SigningKey]:
    """Keys of every algorithm that are not in any ring (an attacker's)."""
    return {
        alg: generate_key(alg, now=NOW, secret=os.urandom(32) if alg == "HS256" else None)
        for alg in ALGORITHMS
    }


@pytest.fixture
def ring(rings: dict[str, KeyRing]) -> KeyRing:
    return rings["EdDSA"]


@pytest.fixture
def service(ring: KeyRing) -> TokenService:
    return TokenService(ring, clock=FixedClock(NOW))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(value: Any) -> str:
    if isinstance(value, bytes):
        return b64(value)
    return b64((value if isinstance(value, str) else json.dumps(value)).encode())


def header_of(key: SigningKey, **changes: Any) -> dict[str, Any]:
    header = {"alg": key.algorithm, "kid": key.kid, "typ": "JWT", **changes}
    return {name: value for name, value in header.items() if value is not DROP}


def claims(**changes: Any) -> dict[str, Any]:
    payload = {
        "iss": "tradeguard", "aud": "tradeguard", "sub": "alice", "jti": "j" * 32,
        "iat": T, "nbf": T, "exp": T + 900, "typ": "access", "sid": "session-1", **changes,
    }  # fmt: skip
    return {name: value for name, value in payload.items() if value is not DROP}


def forge(key: SigningKey, header: Any = None, payload: Any = None, *, alg: str = "") -> str:
    """Sign ``header.payload`` (dicts, JSON text or bytes) with ``key`` as algorithm ``alg``."""
    signing_input = f"{part(header or header_of(key))}.{part(payload or claims())}"
    algorithm = get_default_algorithms()[alg or key.algorithm]
    signature = algorithm.sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{b64(signature)}"


def rejected(service: TokenService, token: Any, expected_type: str = "access") -> TokenError:
    with pytest.raises(TokenError) as caught:
        service.validate(token, expected_type=expected_type)  # type: ignore[arg-type]
    return caught.value


def invalid(service: TokenService, token: Any, expected_type: str = "access") -> None:
    assert type(rejected(service, token, expected_type)) is TokenInvalid


def test_forge_when_unaltered_then_accepted(
    rings: dict[str, KeyRing], service: TokenService, ring: KeyRing
) -> None:
    """The control: the hand-built tokens below differ from a good one in one point only."""
    assert service.validate(forge(ring.current), expected_type="access")["sub"] == "alice"
    for alg, other in rings.items():
        good = forge(other.current)
        assert TokenService(other, clock=FixedClock(NOW)).validate(good, expected_type="access")
        assert alg == other.current.algorithm


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "real", "junk"])
def test_alg_none_when_any_casing_then_invalid(
    service: TokenService, ring: KeyRing, alg: str, signature: str
) -> None:
    real = forge(ring.current).rsplit(".", 1)[1]
    body = f"{part(header_of(ring.current, alg=alg))}.{part(claims())}"
    invalid(service, f"{body}.{ {'': '', 'real': real, 'junk': b64(b'x' * 64)}[signature] }")


@pytest.mark.parametrize("alg", ASYMMETRIC)
@pytest.mark.parametrize("form", ["pem", "der", "jwk"])
def test_alg_when_hs256_signed_with_public_key_then_invalid(
    rings: dict[str, KeyRing], alg: str, form: str
) -> None:
    key = rings[alg].current
    public: Any = key.public_key
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if form == "jwk":
        material = json.dumps(key.public_jwk()).encode()
    else:
        encoding = serialization.Encoding.PEM if form == "pem" else serialization.Encoding.DER
        material = public.public_bytes(encoding, spki)
    body = f"{part(header_of(key, alg='HS256'))}.{part(claims())}"
    mac = hmac.new(material, body.encode(), hashlib.sha256).digest()
    invalid(TokenService(rings[alg], clock=FixedClock(NOW)), f"{body}.{b64(mac)}")


@pytest.mark.parametrize(("kid_alg", "alg"), list(itertools.permutations(ALGORITHMS, 2)))
def test_alg_when_switched_to_another_algorithm_then_invalid(
    rings: dict[str, KeyRing], strangers: dict[str, SigningKey], kid_alg: str, alg: str
) -> None:
    target = rings[kid_alg].current
    token = forge(strangers[alg], header_of(target, alg=alg))
    invalid(TokenService(rings[kid_alg], clock=FixedClock(NOW)), token)


@pytest.mark.parametrize("alg", ["eddsa", "EDDSA", "ES256", "", None, ["EdDSA"], 1])
def test_alg_when_not_exactly_the_keys_then_invalid(
    service: TokenService, ring: KeyRing, alg: Any
) -> None:
    invalid(service, forge(ring.current, header_of(ring.current, alg=alg)))


@pytest.mark.parametrize("kid", ["unknown-kid", "", None, 1, ["k"], {"k": 1}, DROP, "../x"])
def test_kid_when_unknown_missing_or_not_a_string_then_invalid(
    service: TokenService, ring: KeyRing, kid: Any
) -> None:
    invalid(service, forge(ring.current, header_of(ring.current, kid=kid)))
    invalid(service, forge(ring.current, header_of(ring.current, kid=f"{ring.current.kid} ")))


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"])
def test_header_when_key_source_given_even_validly_signed_then_invalid(
    service: TokenService, ring: KeyRing, strangers: dict[str, SigningKey], name: str
) -> None:
    value = {
        "jwk": strangers["EdDSA"].public_jwk(), "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem", "x5c": ["MIIBszCCAVmgAwIBAgIU"],
        "x5t": b64(b"x" * 20), "x5t#S256": b64(b"x" * 32),
    }[name]  # fmt: skip
    key = ring.current
    headers = {"kid": key.kid, name: value}
    token = jwt.encode(claims(), key.private_key, algorithm=key.algorithm, headers=headers)
    invalid(service, token)


@pytest.mark.parametrize(
    "changes",
    [{"crit": ["exp"]}, {"crit": ["b64"], "b64": False}, {"b64": True}, {"cty": "JWT"},
     {"zip": "DEF"}, {"typ": "at+jwt"}, {"typ": "jwt"}, {"typ": DROP}, {"typ": None}],
)  # fmt: skip
def test_header_when_other_members_then_invalid(
    service: TokenService, ring: KeyRing, changes: dict[str, Any]
) -> None:
    invalid(service, forge(ring.current, header_of(ring.current, **changes)))


@pytest.mark.parametrize("name", REQUIRED_CLAIMS)
@pytest.mark.parametrize("value", [DROP, None])
def test_claims_when_a_required_one_is_missing_or_null_then_invalid(
    service: TokenService, ring: KeyRing, name: str, value: Any
) -> None:
    invalid(service, forge(ring.current, payload=claims(**{name: value})))


@pytest.mark.parametrize(
    ("name", "value"),
    [("sub", 1), ("sub", ""), ("sid", ["s"]), ("sid", ""), ("jti", "j" * 15), ("jti", 12**40),
     ("typ", "id"), ("typ", "ACCESS"), ("typ", ["access"]), ("exp", T + 900.5), ("exp", "9e9"),
     ("exp", True), ("iat", float(T)), ("nbf", {"t": T}), ("exp", 10**30), ("iat", -1),
     ("iss", "evil"), ("iss", "tradeguard "), ("iss", ["tradeguard"]), ("aud", "other"),
     ("aud", ["other", "another"]), ("aud", []), ("aud", ["tradeguard", 1]), ("aud", 1)],
)  # fmt: skip
def test_claims_when_wrong_value_or_type_then_invalid(
    service: TokenService, ring: KeyRing, name: str, value: Any
) -> None:
    invalid(service, forge(ring.current, payload=claims(**{name: value})))


def test_aud_when_list_holds_ours_then_accepted(service: TokenService, ring: KeyRing) -> None:
    token = forge(ring.current, payload=claims(aud=["billing", "tradeguard"]))
    assert service.validate(token, expected_type="access")["aud"] == ["billing", "tradeguard"]


def test_typ_when_refresh_and_access_swapped_then_invalid(service: TokenService) -> None:
    refresh = service.issue(subject="a", token_type="refresh", session_id="s").token
    access = service.issue(subject="a", token_type="access", session_id="s").token
    invalid(service, refresh, "access")
    invalid(service, access, "refresh")
    invalid(service, refresh, "access")  # also when served from the cache


def test_times_when_expired_future_or_early_then_exact_error(
    service: TokenService, ring: KeyRing, strangers: dict[str, SigningKey]
) -> None:
    key = ring.current
    expired = rejected(service, forge(key, payload=claims(iat=T - 2000, nbf=T - 2000, exp=T - 31)))
    assert type(expired) is TokenExpired
    assert service.validate(forge(key, payload=claims(exp=T - 29)), expected_type="access")
    invalid(service, forge(key, payload=claims(nbf=T + 31)))
    invalid(service, forge(key, payload=claims(iat=T + 31)))
    assert service.validate(
        forge(key, payload=claims(iat=T + 30, nbf=T + 30)), expected_type="access"
    )
    forged = forge(strangers["EdDSA"], header_of(key), claims(exp=T - 3600))
    invalid(service, forged)  # a forgery never learns that it is expired


def test_duplicates_when_in_header_or_payload_then_invalid(
    service: TokenService, ring: KeyRing
) -> None:
    key = ring.current
    good = json.dumps(claims())[1:-1]
    headers = [
        f'{{"alg":"EdDSA","kid":"unknown","typ":"JWT","kid":"{key.kid}"}}',
        f'{{"alg":"none","kid":"{key.kid}","typ":"JWT","alg":"EdDSA"}}',
    ]
    for header in headers:
        token = forge(key, header)
        options: Any = {"verify_exp": False}
        assert jwt.decode(token, key.public_key, ["EdDSA"], options=options, audience="tradeguard")
        invalid(service, token)
    for payload in [f'{{{good},"sub":"admin"}}', f'{{{good},"x":{{"a":1,"a":2}}}}']:
        invalid(service, forge(key, payload=payload))


def test_size_when_over_8_kib_then_invalid(service: TokenService, ring: KeyRing) -> None:
    token = forge(ring.current, payload=claims(pad="x" * 8000))
    assert len(token) > 8192
    invalid(service, token)
    invalid(service, "a" * 1_000_000)
    roomy = TokenService(ring, clock=FixedClock(NOW), max_token_bytes=16384)
    assert roomy.validate(token, expected_type="access")["pad"] == "x" * 8000


@pytest.mark.parametrize(
    "token",
    ["", ".", "..", "...", "a", "a.b", "a.b.c.d", "a.b.c", "!!.##.$$", "====.====.====",
     "eyJ.eyJ.c2ln", "ü.ü.ü", "\ud800.\udfff.x", "٣.٣.٣", "\uff41.\uff42.\uff43", "\x00.\x00.\x00",
     f"{part('not json')}.{part(claims())}.c2ln", f"{part('[1,2]')}.{part(claims())}.c2ln",
     f"{part('null')}.{part(claims())}.c2ln", f"{part(NOT_UTF8)}.{part(claims())}.c2ln"],
)  # fmt: skip
def test_malformed_when_strings_are_not_tokens_then_invalid(
    service: TokenService, token: str
) -> None:
    invalid(service, token)


@pytest.mark.parametrize(
    "payload",
    ["[1,2]", '"claims"', "1" * 5000, "[" * 3000 + "]" * 3000, "{" * 2000,
     json.dumps(claims())[:-1] + ',"exp":1e400}', json.dumps(claims()).replace(str(T + 900), "NaN"),
     json.dumps(claims()).replace(str(T + 900), "9" * 5000), json.dumps(claims())[:-1]],
)  # fmt: skip
def test_malformed_when_validly_signed_payload_is_odd_then_invalid(
    service: TokenService, ring: KeyRing, payload: str
) -> None:
    invalid(service, forge(ring.current, payload=payload))


def test_tamper_when_payload_or_signature_changed_then_invalid(
    service: TokenService, ring: KeyRing
) -> None:
    good = forge(ring.current)
    header, _, signature = good.split(".")
    invalid(service, f"{header}.{part(claims(sub='admin'))}.{signature}")
    invalid(service, f"{header}.{part(claims(exp=T + 10**6))}.{signature}")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for token in (f"{good[:-2]}", f"{header}.{part(claims())}.{flipped}", good + "=", good + "\n"):
        invalid(service, token)
    invalid(service, " " + good)
    invalid(service, good.replace(".", ". ", 1))


def test_tamper_when_signature_not_canonical_base64_then_invalid(
    service: TokenService, ring: KeyRing
) -> None:
    good = forge(ring.current)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(good[-1])
    twin = good[:-1] + alphabet[last | 1 if last % 2 == 0 else last & ~1]  # same bytes decoded
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "==") == base64.urlsafe_b64decode(
        good.split(".")[2] + "=="
    )
    assert service.validate(good, expected_type="access")
    invalid(service, twin)  # one signature, one token string (PyJWT 2.15 agrees; not relied on)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signature_when_from_another_key_with_same_kid_then_invalid(
    rings: dict[str, KeyRing], strangers: dict[str, SigningKey], alg: str
) -> None:
    token = forge(strangers[alg], header_of(rings[alg].current))
    invalid(TokenService(rings[alg], clock=FixedClock(NOW)), token)


class Sneaky(str):
    pass


def test_input_when_not_a_str_then_invalid(service: TokenService, ring: KeyRing) -> None:
    good = forge(ring.current)
    for token in (good.encode(), bytearray(good.encode()), memoryview(good.encode()), None, 1,
                  1.5, [good], {"t": good}, object(), Sneaky(good)):  # fmt: skip
        invalid(service, token)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400) | st.from_regex(r"[A-Za-z0-9_=+/.-]{0,200}", fullmatch=True))
def test_fuzz_when_arbitrary_text_then_only_token_errors(
    rings: dict[str, KeyRing], text: str
) -> None:
    service = TokenService(rings["EdDSA"], clock=FixedClock(NOW))
    with pytest.raises(TokenError):
        service.validate(text, expected_type="access")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(max_size=60), min_size=1, max_size=5),
    st.dictionaries(st.sampled_from([*REQUIRED_CLAIMS, "x", "alg", "kid"]), JSON, max_size=4),
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku", "x"]), JSON, max_size=2),
)
def test_fuzz_when_segments_or_signed_json_arbitrary_then_only_token_errors(
    rings: dict[str, KeyRing], segments: list[bytes], changes: dict[str, Any], head: dict[str, Any]
) -> None:
    ring = rings["EdDSA"]
    service = TokenService(ring, clock=FixedClock(NOW))
    with pytest.raises(TokenError):
        service.validate(".".join(b64(s) for s in segments), expected_type="access")
    token = forge(ring.current, header_of(ring.current, **head), claims(**changes))
    try:
        result = service.validate(token, expected_type="access")
    except TokenError:
        return
    assert not head and result["typ"] == "access" and result["iss"] == "tradeguard"
    assert isinstance(result["jti"], str) and len(result["jti"]) >= 16
    assert type(result["exp"]) is int and result["exp"] + 30 > T


def test_expired_when_cached_then_still_expired(ring: KeyRing, clock: FixedClock) -> None:
    service = TokenService(ring, clock=clock)
    token = service.issue(subject="a", token_type="access", session_id="s").token
    service.validate(token, expected_type="access")
    clock.advance(timedelta(seconds=930))
    assert type(rejected(service, token)) is TokenExpired
    assert service.cache_hits == 1
