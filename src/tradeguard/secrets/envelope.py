"""Envelope encryption, composed from pyca/cryptography's AES-256-GCM.

Each secret version gets a fresh 256-bit data key (DEK). The value is sealed under the DEK
with the namespace, path and version as associated data; the DEK is wrapped under a
key-encryption key (KEK) with the same binding plus the KEK version; each KEK is wrapped
under the master key with its version as associated data. A blob moved to another path,
version or KEK version therefore fails to open. Nonces are 96 random bits (os.urandom):
with one fresh DEK per version, each DEK encrypts exactly one message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_VALUE_CONTEXT = b"tradeguard/secret-value/v1"
_DEK_CONTEXT = b"tradeguard/data-key/v1"
_KEK_CONTEXT = b"tradeguard/kek/v1"


class OpenFailed(Exception):
    """A blob did not authenticate (internal; callers raise SecretIntegrityError)."""


@dataclass(frozen=True, slots=True)
class SealedValue:
    """What is stored for one secret version (all of it safe to write to disk)."""

    ciphertext: bytes
    wrapped_key: bytes
    kek_version: int


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def _aad(context: bytes, *parts: str | int) -> bytes:
    return b"\x00".join([context, *(str(p).encode("utf-8") for p in parts)])


def _encrypt(key: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + key.encrypt(nonce, plaintext, aad)


def _decrypt(key: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise OpenFailed("blob too short")
    try:
        return key.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise OpenFailed("authentication tag mismatch") from exc


def wrap_kek(master: AESGCM, kek: bytes, kek_version: int) -> bytes:
    """Wrap a KEK under the master key."""
    return _encrypt(master, kek, _aad(_KEK_CONTEXT, kek_version))


def unwrap_kek(master: AESGCM, wrapped: bytes, kek_version: int) -> bytes:
    """Unwrap a KEK; :class:`OpenFailed` if the master key or the blob is wrong."""
    return _decrypt(master, wrapped, _aad(_KEK_CONTEXT, kek_version))


def seal(
    plaintext: bytes, *, kek: AESGCM, kek_version: int, namespace: str, path: str, version: int
) -> SealedValue:
    """Encrypt one secret version under a fresh data key wrapped by ``kek``."""
    dek = new_key()
    ciphertext = _encrypt(AESGCM(dek), plaintext, _aad(_VALUE_CONTEXT, namespace, path, version))
    wrapped = _encrypt(kek, dek, _aad(_DEK_CONTEXT, namespace, path, version, kek_version))
    return SealedValue(ciphertext, wrapped, kek_version)


def unwrap_data_key(
    wrapped: bytes, *, kek: AESGCM, kek_version: int, namespace: str, path: str, version: int
) -> bytes:
    """Unwrap the data key of one version."""
    return _decrypt(kek, wrapped, _aad(_DEK_CONTEXT, namespace, path, version, kek_version))


def rewrap_data_key(
    wrapped: bytes,
    *,
    old_kek: AESGCM,
    old_version: int,
    new_kek: AESGCM,
    new_version: int,
    namespace: str,
    path: str,
    version: int,
) -> bytes:
    """Move a data key from one KEK to another without touching the value's ciphertext."""
    dek = unwrap_data_key(
        wrapped,
        kek=old_kek,
        kek_version=old_version,
        namespace=namespace,
        path=path,
        version=version,
    )
    return _encrypt(new_kek, dek, _aad(_DEK_CONTEXT, namespace, path, version, new_version))


def open_sealed(
    sealed: SealedValue, *, kek: AESGCM, namespace: str, path: str, version: int
) -> bytes:
    """Decrypt one secret version; :class:`OpenFailed` on any mismatch."""
    dek = unwrap_data_key(
        sealed.wrapped_key,
        kek=kek,
        kek_version=sealed.kek_version,
        namespace=namespace,
        path=path,
        version=version,
    )
    return _decrypt(AESGCM(dek), sealed.ciphertext, _aad(_VALUE_CONTEXT, namespace, path, version))
