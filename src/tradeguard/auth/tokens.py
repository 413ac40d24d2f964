"""Access and refresh tokens: signed JWTs issued and validated against the keyring.

Validation is strict and runs in this order, so a forgery never learns more than
"invalid": ASCII string within ``max_token_bytes``; three canonical base64url segments;
header and payload JSON objects without duplicate keys (PyJWT would take the last one);
a header of exactly ``alg``, ``kid`` and ``typ: JWT`` (``jwk``, ``jku``, ``x5u``, ``x5c``,
``x5t``, ``crit``, ``b64``... are refused, never fetched); a known ``kid`` whose key's
algorithm equals ``alg``; the signature, ``iss``, ``aud`` and presence of every claim via
PyJWT (key object, ``algorithms=[key.algorithm]``); then claim types, ``jti`` length, and
``iat``/``nbf``/``exp`` against the injected clock with ``leeway``. Only
:class:`~tradeguard.errors.TokenExpired` (signature good, ``exp + leeway`` reached) and
:class:`~tradeguard.errors.TokenInvalid` (everything else) leave :meth:`TokenService.validate`.

Verified claims are cached (LRU, keyed by SHA-256 of the token), so a repeated token costs a
hash and a dict lookup; the ``typ`` and expiry checks still run on every hit. A hit returns a
new dict whose lists and objects are copies too (scalars are immutable),
so callers can never change the cache. Revocation, session and user checks are the caller's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

import jwt
from jwt.algorithms import get_default_algorithms

from tradeguard.auth.keys import KeyRing, KeyRingStore, SigningKey
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError, TokenError, TokenExpired, TokenInvalid

TokenType = Literal["access", "refresh"]
TOKEN_TYPES: frozenset[str] = frozenset({"access", "refresh"})
REQUIRED_CLAIMS = ("iss", "aud", "sub", "jti", "iat", "nbf", "exp", "typ", "sid")
RESERVED_CLAIMS: frozenset[str] = frozenset(REQUIRED_CLAIMS)
MAX_LEEWAY = 30
MIN_JTI_LENGTH = 16
MAX_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z: callers can make a datetime
_HEADER_KEYS = frozenset({"alg", "kid", "typ"})
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_Entry = tuple[dict[str, Any], int, str, tuple[str, ...]]  # claims, exp, typ, nested names
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, repr=False)
class IssuedToken:
    """A newly issued token and its identifiers."""

    token: str
    jti: str
    expires_at: datetime
    issued_at: datetime

    def __repr__(self) -> str:
        return f"IssuedToken(jti={self.jti!r}, expires_at={self.expires_at.isoformat()})"


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise TokenInvalid("token JSON has a duplicate key")
        result[name] = value
    return result


def _no_constant(_: str) -> None:
    raise TokenInvalid("token JSON holds NaN or Infinity")


def _segment(text: str) -> bytes:
    """Decode one base64url segment, refusing padding, stray bytes and non-canonical forms."""
    if not _SEGMENT.fullmatch(text):
        raise TokenInvalid("token segment is not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise TokenInvalid("token segment is not canonical base64url")
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw, object_pairs_hook=_unique_object, parse_constant=_no_constant)
    if not isinstance(value, dict):
        raise TokenInvalid("token header or payload is not a JSON object")
    return value


def _thaw(value: Any) -> Any:
    """A deep copy of a JSON value (lists and objects rebuilt, scalars shared)."""
    if isinstance(value, dict):
        return {name: _thaw(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_thaw(item) for item in value]
    return value


class TokenService:
    """Issues and validates tokens; give it a :class:`KeyRingStore` (or a bare :class:`KeyRing`).

    With a store, keys are reloaded when a token names an unknown kid (at most once per
    ``kid_miss_interval`` seconds) and every ``key_refresh_interval`` seconds, so processes
    sharing a SecretsManager follow each other's rotations.
    """

    def __init__(
        self,
        store_or_ring: KeyRingStore | KeyRing,
        *,
        issuer: str = "tradeguard",
        audience: str = "tradeguard",
        access_ttl: int = 900,
        refresh_ttl: int = 604_800,
        leeway: int = 30,
        clock: Clock = SYSTEM_CLOCK,
        cache_size: int = 10_000,
        max_token_bytes: int = 8192,
        key_refresh_interval: float = 60.0,
        kid_miss_interval: float = 1.0,
    ) -> None:
        if not (isinstance(issuer, str) and issuer and isinstance(audience, str) and audience):
            raise ConfigurationError("token issuer and audience must be non-empty strings")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ConfigurationError(f"token leeway must be 0..{MAX_LEEWAY} seconds")
        if min(access_ttl, refresh_ttl) <= 0 or cache_size < 0 or max_token_bytes < 512:
            raise ConfigurationError("token TTLs must be positive, cache_size >= 0, size >= 512")
        self.issuer, self.audience, self.leeway = issuer, audience, leeway
        self._ttl: dict[str, int] = {"access": int(access_ttl), "refresh": int(refresh_ttl)}
        self._clock = clock
        self._cache: OrderedDict[bytes, _Entry]
        self._cache = OrderedDict()
        self._verifiers: dict[str, tuple[Any, Any]] = {}
        self._cache_size = cache_size
        self._max_bytes = max_token_bytes
        self._lock = threading.Lock()
        self._refresh_every = key_refresh_interval
        self._miss_every = kid_miss_interval
        self._last_miss_reload = float("-inf")
        self.cache_hits = 0
        self.cache_misses = 0
        self.max_lifetime = max(self._ttl.values()) + leeway + int(key_refresh_interval)
        if isinstance(store_or_ring, KeyRing):
            self._store: KeyRingStore | None = None
            self._ring = store_or_ring
        else:
            self._store = store_or_ring
            self._ring = store_or_ring.load_or_create()
        self._loaded_at = clock.monotonic()

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.issuer!r}, current kid={self._ring.current.kid!r})"

    @property
    def ring(self) -> KeyRing:
        """The keyring in use (do not mutate; rotate through the service)."""
        return self._ring

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens the cache holds."""
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget every verified token (each is verified again on its next use)."""
        with self._lock:
            self._cache.clear()

    # -- keys ---------------------------------------------------------------------------

    def _swap(self, ring: KeyRing) -> None:
        removed = {k.kid for k in self._ring.keys} - {k.kid for k in ring.keys}
        self._ring = ring
        if removed:
            for kid in removed:
                self._verifiers.pop(kid, None)
            self.clear_cache()

    def refresh_keys(self) -> bool:
        """Re-read the keyring from the store if it changed; True if it did."""
        self._loaded_at = self._clock.monotonic()
        if self._store is None or self._store.current_version() == self._ring.version:
            return False
        ring = self._store.load()
        if ring is None:
            return False
        self._swap(ring)
        return True

    def _maybe_refresh(self, *, kid_miss: bool = False) -> None:
        now = self._clock.monotonic()
        if self._store is None:
            return
        if kid_miss:  # a flood of made-up kids costs one store read per kid_miss_interval
            if now - self._last_miss_reload < self._miss_every:
                return
            self._last_miss_reload = now
        elif now - self._loaded_at < self._refresh_every:
            return
        try:
            self.refresh_keys()
        except Exception:  # keep the keys we have; the store may be back soon
            _log.warning("could not re-read the signing keyring", exc_info=True)

    def rotate_signing_key(self) -> str:
        """Start signing with a new key; older kids keep verifying until pruned. Returns kid."""
        if self._store is not None:
            kid = self._store.rotate(max_token_lifetime=self.max_lifetime)
            self.refresh_keys()
            return kid
        now = self._clock.now()
        new = self._ring.rotate(now)
        if self._ring.prune(now, self.max_lifetime):
            self.clear_cache()
        return new.kid

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set of the asymmetric public keys (for other services to verify with)."""
        self._maybe_refresh()
        return self._ring.jwks()

    # -- issue --------------------------------------------------------------------------

    def issue(
        self,
        *,
        subject: str,
        token_type: TokenType,
        session_id: str,
        claims: Mapping[str, Any] = MappingProxyType({}),
        now: datetime | None = None,
        lifetime: float | timedelta | None = None,
    ) -> IssuedToken:
        """Sign a new token. Extra ``claims`` may not use a reserved name (ValueError)."""
        if token_type not in TOKEN_TYPES or not all(isinstance(n, str) for n in claims):
            raise ValueError("token_type must be 'access' or 'refresh', claim names strings")
        if not all(isinstance(text, str) and text for text in (subject, session_id)):
            raise ValueError("subject and session_id must be non-empty strings")
        if taken := RESERVED_CLAIMS.intersection(claims):
            raise ValueError(f"claims may not set reserved names: {', '.join(sorted(taken))}")
        if isinstance(lifetime, timedelta):
            lifetime = lifetime.total_seconds()
        seconds = self._ttl[token_type] if lifetime is None else int(lifetime)
        if not 0 < seconds <= max(self._ttl.values()):
            raise ValueError("token lifetime must be positive and within the longest TTL")
        when = self._clock.now() if now is None else now
        if when.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self._maybe_refresh()
        iat = int(when.timestamp())
        jti = secrets.token_urlsafe(24)
        payload = {**claims, "iss": self.issuer, "aud": self.audience, "sub": subject,
                   "jti": jti, "iat": iat, "nbf": iat, "exp": iat + seconds, "typ": token_type,
                   "sid": session_id}  # fmt: skip
        json.dumps(payload, allow_nan=False)  # ValueError/TypeError before signing
        key = self._ring.current
        headers = {"kid": key.kid, "typ": "JWT"}
        token = jwt.encode(payload, key.private_key, algorithm=key.algorithm, headers=headers)
        if len(token) > self._max_bytes:
            raise ValueError(f"the token would exceed {self._max_bytes} bytes: fewer claims")
        return IssuedToken(
            token, jti, datetime.fromtimestamp(iat + seconds, UTC), datetime.fromtimestamp(iat, UTC)
        )

    # -- validate -----------------------------------------------------------------------

    def validate(self, token: str, *, expected_type: TokenType) -> dict[str, Any]:
        """The verified claims of ``token``; raises only TokenExpired or TokenInvalid.

        ``expected_type`` other than 'access'/'refresh' is a programming error (ValueError).
        """
        if expected_type not in TOKEN_TYPES:
            raise ValueError("expected_type must be 'access' or 'refresh'")
        if type(token) is not str or len(token) > self._max_bytes or not token.isascii():
            raise TokenInvalid("a token must be an ASCII string within the size limit")
        digest = hashlib.sha256(token.encode("ascii")).digest()
        entry = self._cache.get(digest)
        if entry is None:
            self.cache_misses += 1
            entry = self._verify(token)
            if self._cache_size:
                with self._lock:
                    self._cache[digest] = entry
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        else:
            self.cache_hits += 1
            try:
                self._cache.move_to_end(digest)
            except KeyError:  # evicted by another thread meanwhile
                pass
        claims, exp, typ, nested = entry
        if self._clock.now().timestamp() >= exp + self.leeway:  # as on a miss: expiry first
            raise TokenExpired("the token has expired: sign in or refresh")
        if typ != expected_type:
            raise TokenInvalid(f"a {typ} token was presented where an {expected_type} is needed")
        result = dict(claims)
        for name in nested:  # copy lists and objects too: the cache stays untouchable
            result[name] = _thaw(result[name])
        return result

    def _verify(self, token: str) -> _Entry:
        """Full check of an uncached token; returns the cache entry."""
        try:
            return self._verify_unsafe(token)
        except TokenError:
            raise
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"token rejected ({type(exc).__name__})") from None
        except Exception as exc:  # anything odd in the input is an invalid token
            raise TokenInvalid(f"token could not be read ({type(exc).__name__})") from None

    def _verify_unsafe(self, token: str) -> _Entry:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("a token has exactly three dot-separated segments")
        header = _json_object(_segment(parts[0]))
        claims = _json_object(_segment(parts[1]))
        _segment(parts[2])
        if not _HEADER_KEYS.issuperset(header) or header.get("typ") != "JWT":
            raise TokenInvalid("token header must hold exactly alg, kid and typ JWT")
        key = self._key_for(header.get("kid"))
        if header.get("alg") != key.algorithm:
            raise TokenInvalid("token alg does not match its key")
        algorithm, prepared = self._verifier(key)
        signature = _segment(parts[2])
        if not algorithm.verify(f"{parts[0]}.{parts[1]}".encode("ascii"), prepared, signature):
            raise TokenInvalid("token signature does not verify")
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise TokenInvalid(f"token lacks required claims: {', '.join(missing)}")
        audience = claims["aud"]
        if audience != self.audience and not (
            isinstance(audience, list)
            and all(isinstance(item, str) for item in audience)
            and self.audience in audience
        ):
            raise TokenInvalid("token audience is wrong")
        exp, typ = self._check_claims(claims)
        nested = tuple(name for name, value in claims.items() if isinstance(value, list | dict))
        return claims, exp, typ, nested

    def _verifier(self, key: SigningKey) -> tuple[Any, Any]:
        """PyJWT's algorithm object for the key's own algorithm, and the prepared key.

        The segments were already parsed strictly above, so the signature is checked with
        PyJWT's primitive directly instead of having ``jwt.decode`` parse the token again.
        """
        cached = self._verifiers.get(key.kid)
        if cached is None:
            algorithm = get_default_algorithms()[key.algorithm]
            cached = (algorithm, algorithm.prepare_key(key.public_key))
            self._verifiers[key.kid] = cached
        return cached

    def _key_for(self, kid: object) -> SigningKey:
        if not isinstance(kid, str) or not kid:
            raise TokenInvalid("token header has no kid")
        key = self._ring.get(kid)
        if key is None:
            self._maybe_refresh(kid_miss=True)
            key = self._ring.get(kid)
        if key is None:
            raise TokenInvalid("token kid is unknown (or its key was retired and pruned)")
        self._maybe_refresh()
        return key

    def _check_claims(self, claims: dict[str, Any]) -> tuple[int, str]:
        for name in ("iat", "nbf", "exp"):
            if type(claims[name]) is not int or not 0 <= claims[name] <= MAX_NUMERIC_DATE:
                raise TokenInvalid(f"token claim {name} must be an integer NumericDate")
        for name in ("sub", "sid", "jti", "typ"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise TokenInvalid(f"token claim {name} must be a non-empty string")
        if len(claims["jti"]) < MIN_JTI_LENGTH or claims["typ"] not in TOKEN_TYPES:
            raise TokenInvalid("token jti is too short or its typ unknown")
        if claims["iss"] != self.issuer:  # PyJWT checked too; never trust one layer
            raise TokenInvalid("token issuer is wrong")
        now = self._clock.now().timestamp()
        if claims["iat"] > now + self.leeway:
            raise TokenInvalid("token was issued in the future")
        if claims["nbf"] > now + self.leeway:
            raise TokenInvalid("token is not valid yet")
        if now >= claims["exp"] + self.leeway:
            raise TokenExpired("the token has expired: sign in or refresh")
        return claims["exp"], claims["typ"]
