"""Path traversal and file-inclusion detection.

Always flagged, whatever the field (the value is decoded first, so ``%2e%2e%2f``,
``..%c0%af``, ``%252e``, ``%u002e`` and fullwidth dots all arrive here as ``../``):

- a dot-dot segment next to a separator: ``../``, ``..\\``, ``/..`` at the end, ``....//``,
  Tomcat's ``..;/``; control characters inside (``.%00./``) are ignored, the literal hex
  spellings ``0x2e``/``0x2f``/``0x5c`` are read as ``.``, ``/`` and ``\\``, and a ``..``
  followed by an escape the decoder could not read (``..%c0%qf``) fails closed;
- an absolute path into a system location: ``/etc/...``, ``/proc/...``, ``c:\\windows\\...``,
  ``\\\\server\\share`` (and a few well-known targets anywhere: ``/etc/passwd``,
  ``boot.ini``, ``win.ini``, ``/proc/self/``);
- a stream wrapper: ``file:``, ``php://``, ``phar://``, ``zip://``, ``expect://`` ...

``field`` makes it stricter, never looser: when the field name says it holds a path or a
name (``path``, ``file``, ``dir``, ``folder``, ``name``, ``template``, ``include``,
``attachment``, ``upload``, ``download``, ``document``, ``page``), any absolute path, a
home-relative path (``~/``), a bare ``..`` and Windows device names (``CON``, ``NUL``,
``COM1``) are refused as well. Ordinary relative paths (``docs/readme.txt``) and URLs
(``https://example.com/a/b``) pass everywhere.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from tradeguard.guard.normalize import find_unjoined

__all__ = ["PATH_FIELD_HINTS", "RULES", "detect_traversal", "is_path_field", "names_system_file"]

RULES: Final[dict[str, str]] = {
    "dot_segment": "a '..' path segment next to a separator",
    "system_path": "an absolute path into a system location",
    "sensitive_file": "a well-known sensitive file (/etc/passwd, win.ini, /proc/self ...)",
    "stream_wrapper": "a file:// or PHP-style stream wrapper",
    "unc_path": "a Windows UNC path (\\\\host\\share)",
    "absolute_path": "an absolute or home-relative path in a path field",
    "device_name": "a Windows device name in a path field",
}

PATH_FIELD_HINTS: Final = tuple(
    "path file dir folder name template include attach upload download document page".split()
)
"""Substrings of a field name that mark it as holding a path or a file name."""

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]++")
# Every pattern below is lower-case: the text is lower-cased once (``re.IGNORECASE`` costs
# more than the copy on every search).
_HINT: Final = re.compile(r"[./\\:]")  # or 0x: one class, so re skips ahead on it
_UNDECODED_SEPARATOR: Final = re.compile(r"\.\.[\x00-\x1f\x7f%\ufffd\xc0\xc1]")
_HEX_SPELLING: Final = re.compile(r"0x(?:2e|2f|5c)")
_HEX_CHARS: Final = {"0x2e": ".", "0x2f": "/", "0x5c": "\\"}
_DOT_RUN: Final = re.compile(r"\.{2,}+(?:[/\\]|;[/\\])")
_SLASH_DOTS: Final = re.compile(r"[/\\]\.\.(?![\w.-])")
_UNIX_ROOTS: Final = r"etc|proc|sys|var|usr|bin|sbin|boot|root"
_WINDOWS_ROOTS: Final = (
    r"windows|winnt|inetpub|program\s?files(?:\s?\(x86\))?|xampp|wamp|system32|boot\.ini"
)
_SYSTEM_PATH: Final = re.compile(
    rf"^[\s\"'`(=]*+(?:/++(?:{_UNIX_ROOTS})(?:/|$)"
    rf"|(?:[a-z]:[\\/]*+|\\++)(?:{_WINDOWS_ROOTS})(?:[/\\]|$)"
    rf"|[a-z]:[/\\]*+(?:{_UNIX_ROOTS})(?:[/\\]|$))",
)
_SENSITIVE: Final = re.compile(
    r"(?:etc[/\\](?:passwd|shadow|group|hosts|issue|sudoers|crontab|fstab|hostname|motd"
    r"|resolv\.conf|master\.passwd|security[/\\])|proc[/\\](?:self|\d++)[/\\]"
    r"|windows[/\\](?:system32|win\.ini|system\.ini|repair|panther|debug)|winnt[/\\]"
    r"|\.ssh[/\\]|\.aws[/\\]credentials)",
)
"""Sensitive locations, valid after a separator (checked by :func:`_after_separator`)."""
_SENSITIVE_NAME: Final = re.compile(
    r"(?:boot\.ini|win\.ini|system\.ini|\.htpasswd|\.htaccess|web\.config|wp-config\.php)"
    r"(?![\w.-])",
)
_WRAPPER: Final = re.compile(
    r"(?:file:(?:[/\\]|%2f)|(?:php|phar|zip|zlib|glob|expect|jar|netdoc|rar|ogg"
    r"|ssh2(?:\.\w+)?|compress\.(?:zlib|bzip2))://)",
)
_UNC: Final = re.compile(r"^[\s\"'`]*+\\\\[\w.$-]++\\[\w.$ -]")
_ABSOLUTE: Final = re.compile(r"^\s*+(?:[/\\]|~[\w.-]*+(?:[/\\]|$)|[a-z]:)")
_DEVICE: Final = re.compile(r"(?:con|prn|aux|nul|clock\$|com[0-9]|lpt[0-9])(?:\.[^/\\]*+)?\s*+")


@functools.lru_cache(maxsize=4096)  # field names repeat request after request
def is_path_field(field: str | None) -> bool:
    """The field name suggests a path or file name (see :data:`PATH_FIELD_HINTS`)."""
    if not field:
        return False
    lowered = field.lower()
    return any(hint in lowered for hint in PATH_FIELD_HINTS)


def _after_separator(text: str) -> bool:
    return any(
        match.start() > 0 and text[match.start() - 1] in "/\\"
        for match in _SENSITIVE.finditer(text)
    )


def _sensitive(text: str) -> bool:
    return _after_separator(text) or find_unjoined(_SENSITIVE_NAME, text, ".-") is not None


def names_system_file(text: str) -> bool:
    """``text`` starts with a system path or names a well-known sensitive file."""
    lowered = text.lower()
    return _SYSTEM_PATH.search(lowered) is not None or _sensitive(lowered)


def detect_traversal(text: str, *, path_field: bool = False) -> str | None:
    """The first path traversal rule ``text`` triggers, or ``None``.

    ``text`` should already be decoded (see :func:`tradeguard.guard.normalize.decode`);
    ``path_field`` turns on the stricter checks for fields that hold a path or a name.
    """
    if not path_field and not _HINT.search(text) and "0x" not in text and "0X" not in text:
        return None
    plain = _CONTROL.sub("", text).lower()
    if "0x" in plain:
        plain = _HEX_SPELLING.sub(lambda match: _HEX_CHARS[match.group()], plain)
    if ".." in plain and (
        find_unjoined(_DOT_RUN, plain, ".~-") is not None
        or _SLASH_DOTS.search(plain) is not None
        or find_unjoined(_UNDECODED_SEPARATOR, text, ".") is not None
    ):
        return "dot_segment"
    if ":" in plain and find_unjoined(_WRAPPER, plain, "+.-") is not None:
        return "stream_wrapper"
    if "/" in plain or "\\" in plain:
        if _SYSTEM_PATH.search(plain):
            return "system_path"
        if _sensitive(plain):
            return "sensitive_file"
        if _UNC.search(plain):
            return "unc_path"
    elif "." in plain and find_unjoined(_SENSITIVE_NAME, plain, ".-") is not None:
        return "sensitive_file"
    if path_field:
        stripped = plain.strip()
        if stripped in ("..", ".") or _ABSOLUTE.search(stripped):
            return "absolute_path" if stripped not in ("..", ".") else "dot_segment"
        if _DEVICE.fullmatch(re.split(r"[/\\]", stripped)[-1]):
            return "device_name"
    return None
