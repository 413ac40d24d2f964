"""The rules for secret paths and values, checked before anything touches a backend."""

from __future__ import annotations

import json
from collections.abc import Mapping

from tradeguard.errors import InvalidSecretPath, InvalidSecretValue

MAX_SEGMENT_LENGTH = 128
MAX_DEPTH = 16
MAX_SECRET_BYTES = 64 * 1024
MAX_KEY_LENGTH = 256
_SEGMENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def validate_path(path: object) -> str:
    """Return ``path`` if it is a valid secret path, else raise :class:`InvalidSecretPath`.

    A path is 1 to 16 segments of ``[A-Za-z0-9._-]`` (1-128 characters each) joined by ``/``;
    no empty, ``.`` or ``..`` segment, no leading or trailing ``/``.
    """
    if not isinstance(path, str):
        raise InvalidSecretPath(f"a secret path must be a string, not {type(path).__name__}")
    if not path:
        raise InvalidSecretPath("a secret path cannot be empty")
    segments = path.split("/")
    if len(segments) > MAX_DEPTH:
        raise InvalidSecretPath(f"secret path is deeper than {MAX_DEPTH} segments")
    for index, segment in enumerate(segments):
        if not segment:
            raise InvalidSecretPath(f"secret path has an empty segment at position {index + 1}")
        if segment in (".", ".."):
            raise InvalidSecretPath("secret path segments cannot be '.' or '..'")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidSecretPath(
                f"secret path segment {index + 1} is longer than {MAX_SEGMENT_LENGTH} characters"
            )
        if not _SEGMENT_CHARS.issuperset(segment):
            raise InvalidSecretPath(
                f"secret path segment {index + 1} may only contain letters, digits, '.', '_', '-'"
            )
    return path


def validate_prefix(prefix: object) -> str:
    """A listing prefix: empty, or characters a path may hold (a partial segment is fine)."""
    if not isinstance(prefix, str):
        raise InvalidSecretPath("a prefix must be a string")
    if prefix and (prefix.startswith("/") or not _SEGMENT_CHARS.union("/").issuperset(prefix)):
        raise InvalidSecretPath("a prefix may only contain path characters and '/'")
    if len(prefix) > MAX_DEPTH * (MAX_SEGMENT_LENGTH + 1):
        raise InvalidSecretPath("prefix is too long")
    return prefix


def validate_versions(versions: object) -> tuple[int, ...] | None:
    """``None`` or a non-empty collection of positive version numbers."""
    if versions is None:
        return None
    if isinstance(versions, int | str | bytes):
        raise InvalidSecretValue("versions must be a list of version numbers")
    try:
        result = tuple(sorted(set(versions)))  # type: ignore[call-overload]
    except TypeError as exc:
        raise InvalidSecretValue("versions must be a list of version numbers") from exc
    if not result or not all(type(v) is int and v > 0 for v in result):
        raise InvalidSecretValue("versions must be positive integers")
    return result


def encode_data(data: object) -> bytes:
    """Check secret data and serialise it canonically (sorted-key JSON, UTF-8).

    Data is a non-empty mapping of non-empty string keys to string values whose encoding
    is at most 64 KiB. The error message names keys' positions, never values.
    """
    if not isinstance(data, Mapping):
        raise InvalidSecretValue(f"secret data must be a mapping, not {type(data).__name__}")
    if not data:
        raise InvalidSecretValue("secret data cannot be empty")
    for key, value in data.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise InvalidSecretValue(
                f"secret keys must be non-empty strings of at most {MAX_KEY_LENGTH} characters"
            )
        if not isinstance(value, str):
            raise InvalidSecretValue(
                f"the value under key {key!r} must be a string, not {type(value).__name__}"
            )
    try:
        encoded = json.dumps(dict(data), sort_keys=True, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidSecretValue("secret data holds text that is not valid Unicode") from exc
    if len(encoded) > MAX_SECRET_BYTES:
        raise InvalidSecretValue(
            f"secret data is {len(encoded)} bytes encoded; the limit is {MAX_SECRET_BYTES}"
        )
    return encoded


def decode_data(plaintext: bytes) -> dict[str, str]:
    """Inverse of :func:`encode_data`."""
    value = json.loads(plaintext)
    if not isinstance(value, dict):
        raise ValueError("decrypted payload is not a mapping")
    return {str(k): str(v) for k, v in value.items()}
