"""Token signing keys, and the keyring that keeps them in the SecretsManager.

A :class:`KeyRing` holds the *current* signing key and the retired keys whose tokens may
still be alive (verification only). :class:`KeyRingStore` persists the ring as one secret at
``tradeguard/auth/signing-keys`` — private keys as unencrypted PKCS#8 PEM (HS256: base64url),
because the SecretsManager encrypts every value at rest — and writes only with check-and-set,
so processes that start or rotate at the same time end up agreeing on one ring.

Switching algorithms: the configured algorithm applies to keys *created* by the store. When
the stored current key uses another one, it keeps signing (a warning is logged) and the next
:meth:`KeyRingStore.rotate` switches; tokens never get a key of a silently mixed algorithm,
and each kid is verified only with its own key's algorithm. The configured HS256 secret seeds
the first HS256 key of a ring; later HS256 rotations draw fresh random 256-bit secrets.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets as _random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError, SecretNotFound, VersionConflict
from tradeguard.secrets.manager import SecretsManager

Algorithm = Literal["EdDSA", "ES256", "RS256", "HS256"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
DEFAULT_ALGORITHM: Algorithm = "EdDSA"
KEYRING_PATH = "tradeguard/auth/signing-keys"
MIN_HMAC_SECRET_BYTES = 32
RSA_KEY_BITS = 3072
DEFAULT_MAX_TOKEN_LIFETIME = 604_800 + 30 + 60  # refresh TTL + leeway + key refresh interval
_FORMAT = "tradeguard-keyring-v1"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | bytes
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey | bytes

_ASYMMETRIC = (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SigningKey:
    """One signing key. ``public_key`` is the secret itself for HS256 (never published)."""

    kid: str
    algorithm: Algorithm
    private_key: PrivateKey
    public_key: PublicKey
    created_at: datetime
    retired_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r}, "
            f"created_at={self.created_at.isoformat()}, retired_at="
            f"{self.retired_at.isoformat() if self.retired_at else None})"
        )

    def public_jwk(self) -> dict[str, Any] | None:
        """The RFC 7517 JWK of the public key (with kid, alg, use); ``None`` for HS256."""
        key = self.public_key
        if isinstance(key, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(key, as_dict=True)
        elif isinstance(key, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
        else:
            return None
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _check_algorithm(algorithm: object) -> Algorithm:
    for known in ALGORITHMS:
        if algorithm == known:
            return known
    raise ConfigurationError(f"unsupported token algorithm: choose one of {', '.join(ALGORITHMS)}")


def _check_secret(secret: object) -> bytes:
    if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_SECRET_BYTES:
        raise ConfigurationError(
            f"HS256 needs a secret of at least {MIN_HMAC_SECRET_BYTES} random bytes"
        )
    return secret


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("key timestamps must be timezone-aware")
    return when


def _make_key(
    kid: str, algorithm: Algorithm, private: object, created: datetime, retired: datetime | None
) -> SigningKey:
    """Check that ``private`` fits ``algorithm`` and derive the public half."""
    _aware(created)
    if algorithm == "HS256":
        secret = _check_secret(private)
        return SigningKey(kid, algorithm, secret, secret, created, retired)
    fits = {
        "EdDSA": isinstance(private, ed25519.Ed25519PrivateKey),
        "ES256": isinstance(private, ec.EllipticCurvePrivateKey)
        and isinstance(private.curve, ec.SECP256R1),
        "RS256": isinstance(private, rsa.RSAPrivateKey) and private.key_size >= RSA_KEY_BITS,
    }
    if not fits[algorithm] or not isinstance(private, _ASYMMETRIC):
        raise ValueError(f"key material does not fit {algorithm}")
    return SigningKey(kid, algorithm, private, private.public_key(), created, retired)


def generate_key(
    algorithm: Algorithm = DEFAULT_ALGORITHM, *, now: datetime, secret: bytes | None = None
) -> SigningKey:
    """A new key with a random kid: Ed25519, P-256, RSA-3072, or HS256 over ``secret``.

    HS256 requires ``secret`` (at least 32 bytes) and the others refuse one; either mistake
    raises :class:`ConfigurationError`.
    """
    algorithm = _check_algorithm(algorithm)
    private: object
    if algorithm == "HS256":
        private = _check_secret(secret)
    elif secret is not None:
        raise ConfigurationError(f"a secret is only used by HS256, not {algorithm}")
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return _make_key(_random.token_urlsafe(16), algorithm, private, now, None)


def _dump_key(key: SigningKey) -> dict[str, Any]:
    if isinstance(key.private_key, bytes):
        material = base64.urlsafe_b64encode(key.private_key).decode("ascii")
    else:
        material = key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
    retired = key.retired_at.isoformat() if key.retired_at else None
    return {"kid": key.kid, "alg": key.algorithm, "key": material,
            "created_at": key.created_at.isoformat(), "retired_at": retired}  # fmt: skip


def _load_key(entry: Mapping[str, Any]) -> SigningKey:
    algorithm = _check_algorithm(entry["alg"])
    kid, material, retired = entry["kid"], entry["key"], entry["retired_at"]
    if not isinstance(kid, str) or not kid or not isinstance(material, str):
        raise ValueError("kid and key must be non-empty strings")
    private: object
    if algorithm == "HS256":
        private = base64.urlsafe_b64decode(material.encode("ascii"))
    else:
        private = serialization.load_pem_private_key(material.encode("ascii"), password=None)
    created = datetime.fromisoformat(entry["created_at"])
    retired_at = None if retired is None else _aware(datetime.fromisoformat(retired))
    return _make_key(kid, algorithm, private, created, retired_at)


class KeyRing:
    """The current signing key plus retired keys that still verify; not thread-safe to mutate.

    ``version`` is the SecretsManager version the ring was read from (0: never saved).
    """

    def __init__(
        self, current: SigningKey, previous: Iterable[SigningKey] = (), *, version: int = 0
    ) -> None:
        keys = {current.kid: current}
        for key in previous:
            if key.kid in keys:
                raise ValueError("duplicate kid in keyring")
            keys[key.kid] = key
        self._current = current
        self._keys = keys
        self.version = version

    @classmethod
    def create(
        cls, algorithm: Algorithm = DEFAULT_ALGORITHM, *, now: datetime, secret: bytes | None = None
    ) -> KeyRing:
        """A ring holding one fresh key."""
        return cls(generate_key(algorithm, now=now, secret=secret))

    def __repr__(self) -> str:
        return f"KeyRing(current={self._current!r}, keys={len(self._keys)}, v={self.version})"

    @property
    def current(self) -> SigningKey:
        """The key that signs new tokens."""
        return self._current

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every key, current first."""
        return tuple(self._keys.values())

    def get(self, kid: str) -> SigningKey | None:
        """The key with this kid, if the ring still holds it."""
        return self._keys.get(kid)

    def rotate(
        self, now: datetime, *, algorithm: Algorithm | None = None, secret: bytes | None = None
    ) -> SigningKey:
        """Make a new current key (same algorithm unless given); the old one retires at ``now``.

        A new HS256 key uses ``secret`` when given, else a fresh random 32-byte secret.
        """
        algorithm = algorithm or self._current.algorithm
        if algorithm == "HS256" and secret is None:
            secret = _random.token_bytes(MIN_HMAC_SECRET_BYTES)
        new = generate_key(algorithm, now=now, secret=secret)
        retired = replace(self._current, retired_at=_aware(now))
        self._keys = {new.kid: new, **self._keys, retired.kid: retired}
        self._current = new
        return new

    def prune(self, now: datetime, max_token_lifetime: float | timedelta) -> list[str]:
        """Drop retired keys retired longer ago than ``max_token_lifetime``; return their kids."""
        if not isinstance(max_token_lifetime, timedelta):
            max_token_lifetime = timedelta(seconds=max_token_lifetime)
        cutoff = now - max_token_lifetime
        gone = [k.kid for k in self._keys.values() if k.retired_at and k.retired_at < cutoff]
        for kid in gone:
            del self._keys[kid]
        return gone

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The RFC 7517 JWK Set of the asymmetric public keys; HS256 keys never appear."""
        return {"keys": [jwk for key in self._keys.values() if (jwk := key.public_jwk())]}

    def to_secret(self) -> dict[str, str]:
        """The ring as SecretsManager data (one JSON field; holds private key material)."""
        body = {"current": self._current.kid, "keys": [_dump_key(k) for k in self._keys.values()]}
        return {"format": _FORMAT, "keyring": json.dumps(body, separators=(",", ":"))}

    @classmethod
    def from_secret(cls, data: Mapping[str, str], *, version: int = 0) -> KeyRing:
        """Rebuild a ring from :meth:`to_secret` data; a malformed ring is a ConfigurationError."""
        try:
            if data.get("format") != _FORMAT:
                raise ValueError("unknown format")
            body = json.loads(data["keyring"])
            keys = [_load_key(entry) for entry in body["keys"]]
            current = [k for k in keys if k.kid == body["current"]]
            if len(current) != 1 or current[0].retired_at is not None:
                raise ValueError("no single live current key")
            return cls(current[0], [k for k in keys if k is not current[0]], version=version)
        except (ValueError, KeyError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(
                f"the stored signing keyring is malformed ({type(exc).__name__}): "
                "restore an earlier version of the secret or destroy it to start anew"
            ) from None


class KeyRingStore:
    """Loads, creates, saves (check-and-set) and rotates the keyring in a SecretsManager."""

    def __init__(
        self,
        secrets: SecretsManager,
        *,
        algorithm: Algorithm = DEFAULT_ALGORITHM,
        hs256_secret: bytes | None = None,
        clock: Clock = SYSTEM_CLOCK,
        path: str = KEYRING_PATH,
        max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME,
        attempts: int = 5,
    ) -> None:
        self._secrets = secrets
        self.algorithm = _check_algorithm(algorithm)
        # Checked (and kept) only when HS256 is configured: other algorithms never use it.
        self._hs256_secret = _check_secret(hs256_secret) if self.algorithm == "HS256" else None
        self._clock = clock
        self.path = path
        self.max_token_lifetime = max_token_lifetime
        self._attempts = max(1, attempts)

    def __repr__(self) -> str:
        return f"KeyRingStore(path={self.path!r}, algorithm={self.algorithm!r})"

    def current_version(self) -> int:
        """The stored ring's current version; 0 when there is none yet."""
        try:
            return self._secrets.secret_metadata(self.path).current_version
        except SecretNotFound:
            return 0

    def load(self) -> KeyRing | None:
        """The stored ring (its ``version`` set), or ``None`` if none exists."""
        version = self.current_version()
        if version == 0:
            return None
        try:
            data = self._secrets.get_secret(self.path, version=version)
        except SecretNotFound:
            raise ConfigurationError(
                f"the current version of {self.path} is deleted: undelete it, or destroy the "
                "path to start a new keyring (every issued token then stops validating)"
            ) from None
        ring = KeyRing.from_secret(data, version=version)
        if (stored := ring.current.algorithm) != self.algorithm:
            why = "signing key %s uses %s but %s is configured: the next rotation switches"
            _log.warning(why, ring.current.kid, stored, self.algorithm)
        return ring

    def load_or_create(self) -> KeyRing:
        """The stored ring, or a new one saved with ``cas=0`` (a racing creator wins: re-read)."""
        for _ in range(self._attempts):
            ring = self.load()
            if ring is not None:
                return ring
            secret = self._hs256_secret if self.algorithm == "HS256" else None
            ring = KeyRing.create(self.algorithm, now=self._clock.now(), secret=secret)
            try:
                self.save(ring, 0)
            except VersionConflict:
                continue
            return ring
        raise ConfigurationError(f"could not load or create the keyring at {self.path}")

    def save(self, ring: KeyRing, expected_version: int) -> int:
        """Write ``ring`` if ``expected_version`` is still current (else VersionConflict).

        Returns the new version, also set on ``ring``.
        """
        version = self._secrets.store_secret(self.path, ring.to_secret(), cas=expected_version)
        ring.version = version
        return version

    def rotate(self, *, max_token_lifetime: float | None = None) -> str:
        """Load, rotate to the configured algorithm, prune, save (CAS); return the new kid.

        Retired keys older than ``max_token_lifetime`` (default: the store's) are dropped.
        On a concurrent write the whole step is retried against the newer ring.
        """
        lifetime = self.max_token_lifetime if max_token_lifetime is None else max_token_lifetime
        for attempt in range(1, self._attempts + 1):
            ring = self.load_or_create()
            now = self._clock.now()
            switching = ring.current.algorithm != "HS256"
            secret = self._hs256_secret if self.algorithm == "HS256" and switching else None
            new = ring.rotate(now, algorithm=self.algorithm, secret=secret)
            ring.prune(now, lifetime)
            try:
                self.save(ring, ring.version)
            except VersionConflict:
                if attempt < self._attempts:
                    continue
                raise
            _log.info("signing key rotated: new kid %s (%s)", new.kid, new.algorithm)
            break
        return new.kid
