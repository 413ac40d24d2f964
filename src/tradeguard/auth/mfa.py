"""Second factor: TOTP (RFC 6238) with a replay guard, QR enrolment, and recovery codes.

TOTP is pyotp's: HMAC-SHA-1, 6 digits, 30-second steps, accepted one step either side of
now by default. pyotp keeps no state, so :func:`verify_totp` returns the matched time step;
the caller stores it and passes it back as ``last_used_step``, which makes every code usable
once (ASVS 5.0 6.5.1).

Recovery codes are lookup secrets of 50 bits (10 characters of Crockford base32). ASVS 5.0
6.5.2 asks for a salted password-hashing algorithm for lookup secrets under 112 bits, so
they are stored as argon2id hashes (OWASP minimum parameters), not as a fast hash; matching
one code therefore costs one argon2id verification per stored hash.
"""

from __future__ import annotations

import hmac
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import pyotp
import segno

from tradeguard.auth.passwords import PasswordHasher

__all__ = [
    "RECOVERY_ALPHABET",
    "TOTP_DIGITS",
    "TOTP_INTERVAL",
    "MFAEnrollment",
    "generate_recovery_codes",
    "generate_secret",
    "hash_recovery_code",
    "match_recovery_code",
    "provisioning_uri",
    "qr_svg",
    "qr_terminal",
    "verify_totp",
]

TOTP_DIGITS = 6
TOTP_INTERVAL = 30
#: RFC 4226 R6: a shared secret has at least 128 bits (generate_secret makes 160).
_MIN_SECRET_BYTES = 16
_MAX_SECRET_CHARS = 256
_MAX_WINDOW = 10

#: Crockford's base32: digits and lowercase letters without i, l, o and u.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_CHARS = 10  # 10 x 5 bits = 50 bits
_RECOVERY_DOMAIN = "tradeguard/mfa-recovery/v1:"
_CROCKFORD_ALIASES = str.maketrans({"o": "0", "i": "1", "l": "1", "-": None, " ": None})


def generate_secret() -> str:
    """A new TOTP secret: 32 base32 characters (160 bits) from the OS CSPRNG."""
    return pyotp.random_base32(32)


def _totp(secret: object) -> pyotp.TOTP | None:
    """A TOTP for a valid base32 secret of at least 128 bits, else None."""
    if not isinstance(secret, str) or not secret or len(secret) > _MAX_SECRET_CHARS:
        return None
    try:
        totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
        if len(totp.byte_secret()) < _MIN_SECRET_BYTES:
            return None
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return None
    return totp


def provisioning_uri(secret: str, username: str, issuer: str = "tradeguard") -> str:
    """The ``otpauth://totp/...`` URI an authenticator app enrols from (it holds the secret).

    Raises :class:`ValueError` for an invalid secret or an empty user name or issuer.
    """
    totp = _totp(secret)
    if totp is None:
        raise ValueError("the TOTP secret is not valid base32 of at least 128 bits")
    if not username or not issuer:
        raise ValueError("provisioning_uri needs a non-empty username and issuer")
    return totp.provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no XML declaration). It encodes the secret."""
    return segno.make_qr(uri, error="m").svg_inline(scale=4)


def qr_terminal(uri: str, *, compact: bool = True) -> str:
    """The URI as a QR code for a terminal, returned as text.

    ``compact`` (the default) draws with Unicode half blocks and no escape codes, sized for
    a dark background; ``compact=False`` draws with ANSI reverse-video escape sequences.
    """
    out = io.StringIO()
    segno.make_qr(uri, error="m").terminal(out=out, compact=compact)
    return out.getvalue()


def _normalise_totp_code(code: object) -> str | None:
    """Six ASCII digits, after removing spaces ("123 456" -> "123456"), else None."""
    if not isinstance(code, str) or len(code) > 32:
        return None
    compact = code.strip().replace(" ", "")
    if len(compact) != TOTP_DIGITS or not all("0" <= c <= "9" for c in compact):
        return None
    return compact


def verify_totp(
    secret: str,
    code: str,
    *,
    at: datetime,
    last_used_step: int | None,
    window: int = 1,
) -> int | None:
    """The time step ``code`` belongs to, if it is valid at ``at`` and not used before.

    Steps ``int(at.timestamp()) // 30 - window`` .. ``+ window`` are checked, each with
    :func:`hmac.compare_digest` and all of them every time. A step at or below
    ``last_used_step`` is refused (replay guard). If the code matches several steps, the
    latest is returned. Garbage (non-str or malformed code, invalid or short secret) is
    None, never an exception. A naive ``at`` or a ``window`` outside 0..10 is a caller bug
    and raises :class:`ValueError`.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verify_totp needs a timezone-aware 'at' (use the Clock)")
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= _MAX_WINDOW:
        raise ValueError(f"window must be an int between 0 and {_MAX_WINDOW}")
    given = _normalise_totp_code(code)
    totp = _totp(secret)
    if given is None or totp is None:
        return None
    current = int(at.timestamp()) // TOTP_INTERVAL
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if step < 0:
            continue
        expected = totp.generate_otp(step)
        same = hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))
        if same and (last_used_step is None or step > last_used_step):
            matched = step
    return matched


def generate_recovery_codes(count: int = 10) -> list[str]:
    """``count`` distinct one-time recovery codes like ``7k2qm-x9d4p`` (50 bits each)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise ValueError("count must be an int between 1 and 100")
    codes: dict[str, None] = {}
    while len(codes) < count:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(_RECOVERY_CHARS))
        codes[f"{raw[:5]}-{raw[5:]}"] = None
    return list(codes)


def _normalise_recovery_code(code: object) -> str | None:
    """Lowercase, no dashes or spaces, Crockford aliases (o->0, i/l->1); None if malformed."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    compact = code.strip().lower().translate(_CROCKFORD_ALIASES)
    if len(compact) != _RECOVERY_CHARS or not all(c in RECOVERY_ALPHABET for c in compact):
        return None
    return compact


@lru_cache(maxsize=1)
def _default_hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_recovery_code(code: str, *, hasher: PasswordHasher | None = None) -> str:
    """The argon2id hash to store for one recovery code (normalised first).

    Raises :class:`ValueError` if ``code`` is not a recovery code.
    """
    normalised = _normalise_recovery_code(code)
    if normalised is None:
        raise ValueError("not a recovery code (expected 10 base32 characters, xxxxx-xxxxx)")
    return (hasher or _default_hasher()).hash(_RECOVERY_DOMAIN + normalised)


def match_recovery_code(
    code: str, hashes: Sequence[str], *, hasher: PasswordHasher | None = None
) -> int | None:
    """The index in ``hashes`` of the hash ``code`` matches, else None.

    Every entry is checked, whatever matches, so the time taken does not depend on which
    one matched. The caller removes the matched hash: a code is usable once. Case, dashes,
    spaces and the Crockford look-alikes o/i/l are forgiven.
    """
    normalised = _normalise_recovery_code(code)
    if normalised is None:
        return None
    verifier = hasher or _default_hasher()
    candidate = _RECOVERY_DOMAIN + normalised
    found: int | None = None
    for index, stored in enumerate(hashes):
        if verifier.verify(stored, candidate) and found is None:
            found = index
    return found


@dataclass(frozen=True, repr=False)
class MFAEnrollment:
    """Everything shown to a user once while enrolling TOTP; all of it is secret."""

    secret: str
    provisioning_uri: str
    qr_svg: str
    recovery_codes: list[str]

    @classmethod
    def create(
        cls, username: str, *, issuer: str = "tradeguard", recovery_codes: int = 10
    ) -> MFAEnrollment:
        """A new secret, its URI and QR code, and fresh recovery codes for ``username``."""
        secret = generate_secret()
        uri = provisioning_uri(secret, username, issuer)
        return cls(
            secret=secret,
            provisioning_uri=uri,
            qr_svg=qr_svg(uri),
            recovery_codes=generate_recovery_codes(recovery_codes),
        )

    def __repr__(self) -> str:
        return (
            "MFAEnrollment(secret='***', provisioning_uri='otpauth://***', "
            f"qr_svg=<{len(self.qr_svg)} chars>, "
            f"recovery_codes=<{len(self.recovery_codes)} hidden>)"
        )
