"""TOTP (RFC 6238 vectors, replay guard), provisioning, QR codes and recovery codes."""

from __future__ import annotations

import base64
import hashlib
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from tradeguard.auth.mfa import (
    RECOVERY_ALPHABET,
    MFAEnrollment,
    generate_recovery_codes,
    generate_secret,
    hash_recovery_code,
    match_recovery_code,
    provisioning_uri,
    qr_svg,
    qr_terminal,
    verify_totp,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits, fixed so the tests are deterministic
AT = datetime(2026, 1, 5, 14, 30, 7, tzinfo=UTC)
STEP = int(AT.timestamp()) // 30
RECOVERY_FORMAT = re.compile(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}")


def code_at(step: int, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode()


# --- the library itself, against the RFCs ----------------------------------------------------

RFC6238_SEEDS: dict[str, tuple[bytes, Any]] = {
    "SHA1": (b"12345678901234567890", hashlib.sha1),
    "SHA256": (b"12345678901234567890123456789012", hashlib.sha256),
    "SHA512": (b"1234567890" * 6 + b"1234", hashlib.sha512),
}
RFC6238_VECTORS = [  # RFC 6238 Appendix B: time, SHA-1, SHA-256, SHA-512
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("moment", "sha1", "sha256", "sha512"), RFC6238_VECTORS)
def test_pyotp_when_rfc6238_appendix_b_then_matches(
    moment: int, sha1: str, sha256: str, sha512: str
) -> None:
    for name, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        seed, digest = RFC6238_SEEDS[name]
        assert pyotp.TOTP(b32(seed), digits=8, digest=digest).at(moment) == expected, name


def test_pyotp_when_rfc4226_appendix_d_then_matches() -> None:
    expected = [
        "755224",
        "287082",
        "359152",
        "969429",
        "338314",
        "254676",
        "287922",
        "162583",
        "399871",
        "520489",
    ]
    hotp = pyotp.HOTP(b32(b"12345678901234567890"))
    assert [hotp.at(count) for count in range(10)] == expected


def test_verify_totp_when_rfc_time_59_then_step_1() -> None:
    seed = b32(b"12345678901234567890")
    at = datetime.fromtimestamp(59, UTC)
    assert verify_totp(seed, "287082", at=at, last_used_step=None) == 1  # 94287082 -> 6 digits


# --- verify_totp ----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_verify_totp_when_within_one_step_then_step_returned(offset: int) -> None:
    step = verify_totp(SECRET, code_at(STEP + offset), at=AT, last_used_step=None)
    assert step == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_verify_totp_when_two_steps_away_then_none(offset: int) -> None:
    code = code_at(STEP + offset)
    assert code not in {code_at(STEP + i) for i in (-1, 0, 1)}
    assert verify_totp(SECRET, code, at=AT, last_used_step=None) is None


def test_verify_totp_when_window_zero_then_only_current_step() -> None:
    assert verify_totp(SECRET, code_at(STEP), at=AT, last_used_step=None, window=0) == STEP
    assert verify_totp(SECRET, code_at(STEP - 1), at=AT, last_used_step=None, window=0) is None


def test_verify_totp_when_same_code_twice_then_second_refused() -> None:
    code = code_at(STEP)
    first = verify_totp(SECRET, code, at=AT, last_used_step=None)
    assert first == STEP
    assert verify_totp(SECRET, code, at=AT, last_used_step=first) is None
    later = AT + timedelta(seconds=25)  # still inside the window
    assert verify_totp(SECRET, code, at=later, last_used_step=first) is None


def test_verify_totp_when_earlier_step_after_later_used_then_refused() -> None:
    used = verify_totp(SECRET, code_at(STEP + 1), at=AT, last_used_step=None)
    assert used == STEP + 1
    assert verify_totp(SECRET, code_at(STEP), at=AT, last_used_step=used) is None
    assert verify_totp(SECRET, code_at(STEP - 1), at=AT, last_used_step=used) is None


def test_verify_totp_when_later_step_after_earlier_used_then_accepted() -> None:
    assert verify_totp(SECRET, code_at(STEP + 1), at=AT, last_used_step=STEP) == STEP + 1


@pytest.mark.parametrize("shape", ["{} {}", " {}{} ", "{}  {}", "\t{}{}\n"])
def test_verify_totp_when_spaces_around_or_inside_then_accepted(shape: str) -> None:
    code = code_at(STEP)
    assert verify_totp(SECRET, shape.format(code[:3], code[3:]), at=AT, last_used_step=None) == (
        STEP
    )


def test_verify_totp_when_secret_lowercase_then_accepted() -> None:
    assert verify_totp(SECRET.lower(), code_at(STEP), at=AT, last_used_step=None) == STEP


@pytest.mark.parametrize(
    "code",
    [
        None,
        123456,
        b"123456",
        "",
        "12345",
        "1234567",
        "abcdef",
        "12345a",
        "123-456",
        "123\n456",
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth digits
        "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
        "1" * 10_000,
    ],
)
def test_verify_totp_when_code_is_garbage_then_none(code: object) -> None:
    assert verify_totp(SECRET, code, at=AT, last_used_step=None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret",
    [None, "", "not base32!!", "JBSWY3DP", "JBSWY3DPEHPK3PX", "A" * 1000, b"JBSWY3DP", 42],
)
def test_verify_totp_when_secret_is_garbage_then_none(secret: object) -> None:
    assert verify_totp(secret, "123456", at=AT, last_used_step=None) is None  # type: ignore[arg-type]


def test_verify_totp_when_near_epoch_then_no_negative_steps() -> None:
    at = datetime(1970, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert verify_totp(SECRET, code_at(0), at=at, last_used_step=None) == 0
    assert verify_totp(SECRET, code_at(1), at=at, last_used_step=None) == 1


def test_verify_totp_when_at_is_naive_then_value_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_totp(SECRET, code_at(STEP), at=AT.replace(tzinfo=None), last_used_step=None)


@pytest.mark.parametrize("window", [-1, 11])
def test_verify_totp_when_window_out_of_range_then_value_error(window: int) -> None:
    with pytest.raises(ValueError, match="window"):
        verify_totp(SECRET, code_at(STEP), at=AT, last_used_step=None, window=window)


# --- secrets, URIs and QR codes -----------------------------------------------------------


def test_generate_secret_when_called_then_160_bit_base32_and_fresh() -> None:
    secret = generate_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert generate_secret() != secret


def test_provisioning_uri_when_parsed_then_totp_issuer_label_and_secret() -> None:
    uri = provisioning_uri(SECRET, "alice@example.com")
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/tradeguard:alice@example.com"
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["tradeguard"]
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.digits, parsed.interval) == (SECRET, 6, 30)


def test_provisioning_uri_when_custom_issuer_then_used() -> None:
    query = parse_qs(urlsplit(provisioning_uri(SECRET, "bob", issuer="Desk A")).query)
    assert query["issuer"] == ["Desk A"]


@pytest.mark.parametrize(("secret", "username"), [("bad secret", "bob"), (SECRET, "")])
def test_provisioning_uri_when_invalid_then_value_error(secret: str, username: str) -> None:
    with pytest.raises(ValueError):
        provisioning_uri(secret, username)


def test_qr_svg_when_rendered_then_inline_svg() -> None:
    svg = qr_svg(provisioning_uri(SECRET, "alice"))
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert svg.rstrip().endswith("</svg>")


def test_qr_terminal_when_compact_then_text_blocks_without_escapes() -> None:
    text = qr_terminal(provisioning_uri(SECRET, "alice"))
    lines = text.splitlines()
    assert len(lines) > 10
    assert "\x1b" not in text
    assert set(text) <= {" ", "\n", "\u2580", "\u2584", "\u2588"}


def test_qr_terminal_when_not_compact_then_ansi() -> None:
    assert "\x1b[" in qr_terminal(provisioning_uri(SECRET, "alice"), compact=False)


# --- recovery codes -----------------------------------------------------------------------


def test_recovery_codes_when_generated_then_ten_unique_formatted() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(RECOVERY_FORMAT.fullmatch(code) for code in codes)
    assert len(RECOVERY_ALPHABET) == 32
    assert not set("ilou") & set(RECOVERY_ALPHABET)


def test_recovery_codes_when_count_given_then_that_many() -> None:
    assert len(generate_recovery_codes(3)) == 3


@pytest.mark.parametrize("count", [0, -1, 101, True])
def test_recovery_codes_when_count_invalid_then_value_error(count: int) -> None:
    with pytest.raises(ValueError):
        generate_recovery_codes(count)


def test_hash_recovery_code_when_hashed_then_salted_argon2id() -> None:
    code = generate_recovery_codes(1)[0]
    first, second = hash_recovery_code(code), hash_recovery_code(code)
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second
    assert code not in first
    assert code.replace("-", "") not in first


@pytest.mark.parametrize("bad", ["", "abc", "abcde-fghij-k", "uuuuu-uuuuu", None])
def test_hash_recovery_code_when_not_a_code_then_value_error(bad: object) -> None:
    with pytest.raises(ValueError):
        hash_recovery_code(bad)  # type: ignore[arg-type]


def test_match_recovery_code_when_each_used_then_matches_once() -> None:
    codes = generate_recovery_codes()
    hashes = [hash_recovery_code(code) for code in codes]
    by_hash = dict(zip(hashes, codes, strict=True))
    for code in random.sample(codes, len(codes)):
        index = match_recovery_code(code, hashes)
        assert index is not None
        assert by_hash[hashes[index]] == code
        del hashes[index]  # the caller removes a used code
        assert match_recovery_code(code, hashes) is None
    assert hashes == []


def test_match_recovery_code_when_typed_loosely_then_matches() -> None:
    code = "0a1b2-c3d4e"
    hashes = [hash_recovery_code(generate_recovery_codes(1)[0]), hash_recovery_code(code)]
    for typed in ["0A1B2-C3D4E", "0a1b2c3d4e", " 0a1b2 c3d4e ", "oa1b2-c3d4e", "0aib2-c3d4e"]:
        assert match_recovery_code(typed, hashes) == 1, typed


@pytest.mark.parametrize(
    "code", [None, "", "123456", "zzzzz-zzzzz", "0a1b2-c3d4f", "0a1b2-c3d4e-x", 12345]
)
def test_match_recovery_code_when_unknown_or_garbage_then_none(code: object) -> None:
    hashes = [hash_recovery_code("0a1b2-c3d4e"), "", "not-a-hash"]
    assert match_recovery_code(code, hashes) is None  # type: ignore[arg-type]


def test_match_recovery_code_when_no_hashes_then_none() -> None:
    assert match_recovery_code("0a1b2-c3d4e", []) is None


# --- enrolment ------------------------------------------------------------------------------


def test_enrollment_when_created_then_consistent_and_usable() -> None:
    enrollment = MFAEnrollment.create("alice")
    assert f"secret={enrollment.secret}" in enrollment.provisioning_uri
    assert pyotp.parse_uri(enrollment.provisioning_uri).secret == enrollment.secret
    assert "<svg" in enrollment.qr_svg
    assert len(enrollment.recovery_codes) == 10
    now = datetime.now(UTC)
    code = pyotp.TOTP(enrollment.secret).at(now)
    assert verify_totp(enrollment.secret, code, at=now, last_used_step=None) is not None


def test_enrollment_when_printed_then_secret_uri_and_codes_hidden() -> None:
    codes = ["0a1b2-c3d4e", "fghjk-mnpqr"]
    uri = provisioning_uri(SECRET, "alice")
    enrollment = MFAEnrollment(SECRET, uri, qr_svg(uri), codes)
    for text in (repr(enrollment), str(enrollment), f"{enrollment!r}"):
        assert SECRET not in text
        assert SECRET.lower() not in text
        assert "alice" not in text
        assert all(code not in text for code in codes)
        assert "<svg" not in text
        assert text.startswith("MFAEnrollment(")
