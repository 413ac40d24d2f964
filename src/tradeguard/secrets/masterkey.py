"""Where the master key comes from: env var, key file (0600), or the OS keyring.

Order: ``TRADEGUARD_MASTER_KEY`` (base64url, 32 bytes), then ``TRADEGUARD_MASTER_KEY_FILE``,
then ``$TRADEGUARD_HOME/master.key``, then the OS keyring when ``tradeguard init --keyring``
put it there. A key file readable by group or others is refused, as ssh refuses such keys.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from tradeguard.errors import ConfigurationError
from tradeguard.secrets.envelope import KEY_BYTES, new_key
from tradeguard.settings import MASTER_KEY_FILENAME, Settings

KEYRING_SERVICE = "tradeguard"


def encode_key(key: bytes) -> str:
    """base64url text of a key (no padding)."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def decode_key(text: str, *, source: str) -> bytes:
    """Parse base64url key text; the error names the source, never the text."""
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"master key from {source} is not valid base64url") from exc
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"master key from {source} must decode to {KEY_BYTES} bytes, got {len(key)}"
        )
    return key


def default_key_file(settings: Settings) -> Path:
    """``$TRADEGUARD_HOME/master.key``."""
    return settings.home / MASTER_KEY_FILENAME


def _keyring_account(settings: Settings) -> str:
    return f"master-key:{settings.home.resolve()}"


def read_key_file(path: Path) -> bytes:
    """Read a key file, refusing one that group or others may read or write."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise ConfigurationError(f"master key file {path} does not exist") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"master key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"master key file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run: chmod 600 {path}"
        )
    return decode_key(path.read_text(encoding="ascii"), source=f"file {path}")


def _read_keyring(settings: Settings) -> bytes | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        text = keyring.get_password(KEYRING_SERVICE, _keyring_account(settings))
    except KeyringError:
        return None
    return None if text is None else decode_key(text, source="the OS keyring")


def load_master_key(settings: Settings) -> bytes | None:
    """The configured master key, or ``None`` if none exists anywhere yet."""
    if settings.master_key is not None:
        return decode_key(settings.master_key.get_secret_value(), source="TRADEGUARD_MASTER_KEY")
    if settings.master_key_file is not None:
        return read_key_file(settings.master_key_file)
    path = default_key_file(settings)
    if path.exists():
        return read_key_file(path)
    return _read_keyring(settings)


def create_key_file(path: Path) -> bytes:
    """Create a new random master key file with mode 0600 (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigurationError(f"master key file {path} already exists; not overwriting") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encode_key(key) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def store_in_keyring(settings: Settings) -> bytes:
    """Create a master key in the OS keyring (``tradeguard init --keyring``)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as exc:
        raise ConfigurationError(
            "the OS keyring needs the keyring package: pip install 'tradeguard[keyring]'"
        ) from exc
    key = new_key()
    try:
        if keyring.get_password(KEYRING_SERVICE, _keyring_account(settings)) is not None:
            raise ConfigurationError("the OS keyring already holds a master key for this home")
        keyring.set_password(KEYRING_SERVICE, _keyring_account(settings), encode_key(key))
    except KeyringError as exc:
        raise ConfigurationError(
            f"no usable OS keyring ({type(exc).__name__}); use the key file instead"
        ) from exc
    return key
