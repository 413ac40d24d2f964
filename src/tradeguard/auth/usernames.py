"""Usernames: NFKC-normalised, case-insensitive, from a small safe alphabet."""

from __future__ import annotations

import re
import unicodedata

from tradeguard.errors import InvalidUsername

MAX_USERNAME = 64
_VALID = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


def normalize_username(raw: object) -> str | None:
    """The canonical form of ``raw`` (NFKC, casefolded, stripped), or None if not valid."""
    if not isinstance(raw, str) or len(raw) > 4 * MAX_USERNAME:
        return None
    name = unicodedata.normalize("NFKC", raw).strip().casefold()
    return name if _VALID.fullmatch(name) else None


def require_username(raw: object) -> str:
    """:func:`normalize_username` or :class:`InvalidUsername` saying what one may hold."""
    name = normalize_username(raw)
    if name is None:
        raise InvalidUsername(
            "a username is 1-64 characters: letters, digits, '.', '_', '@', '-', starting "
            "with a letter or digit"
        )
    return name
