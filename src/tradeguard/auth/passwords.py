"""Password hashing (argon2id, legacy bcrypt) and the password strength policy.

Nothing here is hand-rolled: hashing is argon2-cffi (argon2id) with bcrypt accepted for
verification only, and strength is judged by zxcvbn. A password is used exactly as received:
no stripping, no Unicode normalisation, no case folding, no truncation.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import argon2
import bcrypt
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from tradeguard.errors import WeakPassword

__all__ = [
    "OWASP_MEMORY_COST",
    "OWASP_PARALLELISM",
    "OWASP_TIME_COST",
    "ZXCVBN_MAX_CHARS",
    "PasswordHasher",
    "PasswordPolicy",
]

#: OWASP Password Storage Cheat Sheet minimum for argon2id: m = 19 MiB (in KiB), t = 2, p = 1.
OWASP_MEMORY_COST = 19_456
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1

#: zxcvbn refuses longer input; only this many leading characters are scored.
ZXCVBN_MAX_CHARS = 72

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_BCRYPT_MAX_BYTES = 72
# zxcvbn swaps its module-global "user_inputs" dictionary on every call: serialise the calls.
_ZXCVBN_LOCK = threading.Lock()
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def _utf8(password: str) -> bytes:
    """The password's UTF-8 bytes; lone surrogates (possible from JSON) are kept, not refused."""
    return password.encode("utf-8", "surrogatepass")


class PasswordHasher:
    """Hash new passwords with argon2id; verify argon2 and legacy bcrypt hashes.

    Parameters below OWASP's argon2id minimum (m=19 MiB, t=2, p=1) are refused with
    :class:`ValueError`. Verification never raises on a malformed or unknown stored hash.
    """

    def __init__(
        self,
        *,
        time_cost: int = OWASP_TIME_COST,
        memory_cost: int = OWASP_MEMORY_COST,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        for name, value, minimum in (
            ("time_cost", time_cost, OWASP_TIME_COST),
            ("memory_cost", memory_cost, OWASP_MEMORY_COST),
            ("parallelism", parallelism, OWASP_PARALLELISM),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {type(value).__name__}")
            if value < minimum:
                raise ValueError(
                    f"{name}={value} is below the OWASP argon2id minimum of {minimum}; "
                    "use at least m=19456 KiB, t=2, p=1"
                )
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        # A hash of a random, never-disclosed password with the configured parameters, so
        # that dummy_verify costs exactly what verifying a real user's hash costs.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        self._parameters = argon2.extract_parameters(self._dummy_hash)

    @property
    def parameters(self) -> argon2.Parameters:
        """The argon2id parameters new hashes are made with."""
        return self._parameters

    def hash(self, password: str) -> str:
        """Hash ``password`` (its UTF-8 bytes, exactly as given) with argon2id and a fresh salt.

        Raises :class:`TypeError` when ``password`` is not a ``str``.
        """
        if not isinstance(password, str):
            raise TypeError(f"password must be a str, got {type(password).__name__}")
        return self._hasher.hash(_utf8(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash`` (argon2, or bcrypt ``$2a$/$2b$/$2y$``).

        Never raises: a malformed or unknown hash is ``False``. A non-``str`` password is
        ``False`` after the same argon2 work as a real check, so its timing says nothing.
        bcrypt only reads the first 72 bytes of a password and bcrypt >= 4.1 refuses longer
        input, so a password over 72 UTF-8 bytes never matches a bcrypt hash (``False``):
        accepting it would let every password sharing the first 72 bytes in.
        """
        if not isinstance(password, str):
            self.dummy_verify(password)
            return False
        if not isinstance(stored_hash, str):
            return False
        if stored_hash.startswith(_BCRYPT_PREFIXES):
            return self._verify_bcrypt(stored_hash, password)
        try:
            return self._hasher.verify(stored_hash, _utf8(password))
        except (VerificationError, InvalidHashError, ValueError, TypeError):
            return False

    def _verify_bcrypt(self, stored_hash: str, password: str) -> bool:
        secret = _utf8(password)
        if len(secret) > _BCRYPT_MAX_BYTES:
            self.dummy_verify(password)
            return False
        try:
            return bcrypt.checkpw(secret, stored_hash.encode("utf-8", "surrogatepass"))
        except (ValueError, TypeError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` should be replaced by :meth:`hash` after a successful login.

        True for bcrypt hashes, for argon2i/argon2d hashes, and for argon2id hashes weaker
        than configured (lower time cost, memory cost, hash or salt length, or an older
        version). Unlike argon2's ``check_needs_rehash``, a *stronger* hash is kept rather
        than downgraded; parallelism only spreads the same work over lanes and is ignored.
        Anything unparsable is True (it is not a hash this class would make).
        """
        if not isinstance(stored_hash, str) or stored_hash.startswith(_BCRYPT_PREFIXES):
            return True
        try:
            found = argon2.extract_parameters(stored_hash)
        except (InvalidHashError, ValueError, TypeError):
            return True
        wanted = self._parameters
        return (
            found.type is not Type.ID
            or found.version < wanted.version
            or found.time_cost < wanted.time_cost
            or found.memory_cost < wanted.memory_cost
            or found.hash_len < wanted.hash_len
            or found.salt_len < wanted.salt_len
        )

    def dummy_verify(self, password: object) -> None:
        """Spend one argon2id verification, for unknown users, so timing hides existence."""
        candidate = _utf8(password) if isinstance(password, str) else b""
        try:
            self._hasher.verify(self._dummy_hash, candidate)
        except (VerificationError, InvalidHashError, ValueError):
            pass


def _expand_user_inputs(user_inputs: Sequence[str]) -> list[str]:
    """User inputs plus their parts, so 'alice_trader' also catches 'AliceTrader!2024'."""
    words: list[str] = []
    for item in user_inputs:
        if not isinstance(item, str) or not item:
            continue
        lowered = item.lower()
        words.append(lowered)
        parts = [part for part in _SEPARATORS.split(lowered) if part]
        words.extend(part for part in parts if len(part) >= 3)
        joined = "".join(parts)
        if len(joined) >= 3:
            words.append(joined)
    return list(dict.fromkeys(words))


@dataclass(frozen=True, kw_only=True)
class PasswordPolicy:
    """What a new password must be: long enough, not too long, and hard enough to guess.

    Length is counted in Unicode code points of the password exactly as received. Strength is
    zxcvbn's score (0-4) of the first :data:`ZXCVBN_MAX_CHARS` characters (zxcvbn refuses longer
    input); a longer password is scored on that prefix, so a weak beginning is still refused.
    """

    min_length: int = 12
    max_length: int = 1024
    min_score: int = 3

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ValueError("min_length must be at least 8 (ASVS 5.0 6.2.1)")
        if self.max_length < max(64, self.min_length):
            raise ValueError("max_length must be at least 64 and at least min_length")
        if not 0 <= self.min_score <= 4:
            raise ValueError("min_score must be between 0 and 4 (zxcvbn's scale)")

    def check(self, password: str, *, user_inputs: Sequence[str] = ()) -> None:
        """Raise :class:`~tradeguard.errors.WeakPassword` if ``password`` breaks the policy.

        ``user_inputs`` (user name, e-mail, ...) are words the password must not lean on.
        The message says what is wrong and never contains the password.
        """
        if not isinstance(password, str):
            raise WeakPassword(f"password must be text, got {type(password).__name__}")
        length = len(password)
        if length < self.min_length:
            raise WeakPassword(
                f"password is too short: {length} characters, at least {self.min_length} needed"
            )
        if length > self.max_length:
            raise WeakPassword(
                f"password is too long: {length} characters, at most {self.max_length} allowed"
            )
        if self.min_score == 0:
            return
        words = _expand_user_inputs(user_inputs)
        with _ZXCVBN_LOCK:
            result: dict[str, Any] = zxcvbn(password[:ZXCVBN_MAX_CHARS], user_inputs=words)
        score = int(result["score"])
        if score >= self.min_score:
            return
        reasons: list[str] = []
        if any(m.get("dictionary_name") == "user_inputs" for m in result.get("sequence", ())):
            reasons.append("It is based on your user name or other personal details.")
        feedback = result.get("feedback") or {}
        if feedback.get("warning"):
            reasons.append(str(feedback["warning"]))
        reasons.extend(str(s) for s in feedback.get("suggestions") or ())
        detail = (" " + " ".join(reasons)) if reasons else ""
        raise WeakPassword(
            f"password is too easy to guess (strength {score} of 4, "
            f"at least {self.min_score} needed).{detail}"
        )
