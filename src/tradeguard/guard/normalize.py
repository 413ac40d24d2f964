"""Canonical decoding of untrusted text, applied before any detector looks at it.

Attackers hide payloads behind layers of encoding that a web server, framework or browser
peels off later. :func:`decode` peels them here first, so the detectors see what the
application will eventually act on:

- percent-encoding, repeated (``%252e`` -> ``%2e`` -> ``.``), at most ``rounds`` times;
- IIS-style ``%uXXXX`` (UTF-16 code units, ``%u002e`` -> ``.``);
- overlong and otherwise invalid UTF-8 (``%c0%ae``, ``%e0%80%ae``, ``%f8%80%80%80%ae`` ->
  ``.``; ``%c0%af`` -> ``/``; ``%c1%9c`` -> ``\\``), as lax decoders once accepted them;
- HTML character references, named and numeric, with or without the ``;``;
- Unicode NFKC (fullwidth dots and solidus -> ``../``) plus the slash and backslash
  look-alikes NFKC leaves alone (U+2215 division slash, U+2216 set minus, U+2044 fraction
  slash, and IIS's private-use ``%uEFC8``/``%uF025``).

Every step is a single linear pass (simple regexes, no nested quantifiers), and the number
of rounds is bounded, so decoding costs O(rounds * len(text)).
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = [
    "DEFAULT_ROUNDS",
    "MAX_ESCAPES",
    "TOO_COMPLEX",
    "decode",
    "find_unjoined",
    "fold_confusables",
    "html_decode",
    "percent_decode",
]

DEFAULT_ROUNDS = 3
"""Percent/HTML decoding rounds: enough for triple encoding, bounded against decode bombs."""
MAX_ESCAPES = 70_000
"""Most ``%`` or ``&`` escapes decoded per value: more than a value under the 64 KiB default
cap can hold. :func:`decode` returns ``None`` past it, and the value must be refused."""
TOO_COMPLEX = "too_complex"
"""Rule name the detectors return when a value exceeds their work budget (fail closed)."""

_PCT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}|%[uU][0-9A-Fa-f]{4})+")
_CONTINUATION = range(0x80, 0xC0)
_CONFUSABLES = str.maketrans(
    {
        "\u2215": "/",  # division slash
        "\u2044": "/",  # fraction slash
        "\u29f8": "/",  # big solidus
        "\u2216": "\\",  # set minus
        "\u29f5": "\\",  # reverse solidus operator
        "\u29f9": "\\",  # big reverse solidus
        "\uefc8": "/",  # private use: IIS best-fit slash (dotdotpwn's %uEFC8)
        "\uf025": "/",  # private use: IIS best-fit slash (dotdotpwn's %uF025)
    }
)


def _lax_utf8(data: bytes) -> str:
    """Decode UTF-8 the way lax decoders did: overlong forms count, junk stays Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        lead = data[i]
        if lead < 0x80:
            out.append(chr(lead))
            i += 1
            continue
        if lead in (0xC0, 0xC1) and i + 1 < n:
            # Never valid UTF-8: old IIS masked the next byte regardless of its top bits.
            out.append(chr(((lead & 0x1F) << 6) | (data[i + 1] & 0x3F)))
            i += 2
            continue
        extra = _extra_bytes(lead)
        tail = data[i + 1 : i + 1 + extra]
        if extra and len(tail) == extra and all(b in _CONTINUATION for b in tail):
            code = lead & (0x3F >> extra)
            for b in tail:
                code = (code << 6) | (b & 0x3F)
            out.append(chr(code) if code < 0xD800 or 0xDFFF < code <= 0x10FFFF else "\ufffd")
            i += 1 + extra
            continue
        out.append(chr(lead))
        i += 1
    return "".join(out)


def _extra_bytes(lead: int) -> int:
    """Continuation bytes announced by a UTF-8 lead byte (0 for a stray byte)."""
    if 0xC0 <= lead < 0xE0:
        return 1
    if 0xE0 <= lead < 0xF0:
        return 2
    if 0xF0 <= lead < 0xF8:
        return 3
    if 0xF8 <= lead < 0xFC:
        return 4
    if 0xFC <= lead < 0xFE:
        return 5
    return 0


def _decode_run(match: re.Match[str]) -> str:
    run = match.group()
    if "u" not in run and "U" not in run:
        return _lax_utf8(bytes.fromhex(run.replace("%", "")))
    out: list[str] = []
    pending = bytearray()
    i = 0
    while i < len(run):
        if run[i + 1] in "uU":
            if pending:
                out.append(_lax_utf8(bytes(pending)))
                pending.clear()
            unit = int(run[i + 2 : i + 6], 16)
            out.append("\ufffd" if 0xD800 <= unit <= 0xDFFF else chr(unit))
            i += 6
        else:
            pending.append(int(run[i + 1 : i + 3], 16))
            i += 3
    if pending:
        out.append(_lax_utf8(bytes(pending)))
    return "".join(out)


def percent_decode(text: str) -> str:
    """One round of percent-decoding, including ``%uXXXX`` and overlong UTF-8 sequences.

    A ``%`` not followed by two hex digits is left as it is (``100%`` stays ``100%``).
    ``+`` is not turned into a space: form values arrive already decoded by the framework.
    """
    if "%" not in text:
        return text
    return _PCT_RUN.sub(_decode_run, text)


def html_decode(text: str) -> str:
    """One round of HTML character-reference decoding (``&lt;``, ``&#60``, ``&#x3c;``)."""
    if "&" not in text:
        return text
    return html.unescape(text)


def fold_confusables(text: str) -> str:
    """NFKC-normalise and map the slash/backslash look-alikes NFKC keeps."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)


def decode(text: str, *, rounds: int = DEFAULT_ROUNDS) -> str | None:
    """Peel percent, ``%u``, overlong UTF-8 and HTML encodings (bounded), then NFKC-fold.

    Fullwidth forms are folded between rounds too, so ``%uff05%uff12%uff45`` style layers
    (fullwidth ``%`` signs) are decoded as well. Returns ``None`` when the value holds more
    than :data:`MAX_ESCAPES` escapes (a decoding bomb, or simply too much to inspect).
    """
    if text.count("%") > MAX_ESCAPES or text.count("&") > MAX_ESCAPES:
        return None
    current = text
    for _ in range(max(rounds, 1)):
        decoded = fold_confusables(html_decode(percent_decode(current)))
        if decoded == current:
            break
        current = decoded
    return current


def find_unjoined(pattern: re.Pattern[str], text: str, joiners: str = "_") -> re.Match[str] | None:
    """First match of ``pattern`` not glued to a preceding letter, digit or ``joiners`` char.

    A lookbehind at the start of a pattern stops ``re`` from skipping ahead to candidate
    positions; checking the preceding character here keeps long inputs cheap.
    """
    for match in pattern.finditer(text):
        start = match.start()
        if start == 0:
            return match
        before = text[start - 1]
        if not (before.isalnum() or before in joiners):
            return match
    return None
