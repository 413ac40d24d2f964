"""Exact shortcuts for :func:`tradeguard.guard.inspect.validate_input`.

Most form values (names, numbers, e-mail addresses, street addresses) contain nothing any
detector can act on. The functions here prove that cheaply, and each proof is *exact*: it
only ever answers "no detector can fire" when running every detector on the decoded value
would find nothing (tests/guard/test_prefilter.py checks this against the ungated pipeline
under hypothesis). Anything they cannot prove goes to the full scan.

The proof for an ASCII value made only of letters, digits and the inert marks
``space , . @ _ ? - / ' " + * ! $ ] { }`` (:func:`inert_marks`):

- decoding is the identity (no ``%``, no ``&``, nothing to NFKC-fold), and there is no
  control character;
- XSS: the detector's hint characters (``< : = ( ` \\ [``, ``+ADw``-style UTF-7) are
  absent, so only :func:`~tradeguard.guard.xss.handler_name` can fire (the value *is* an
  ``on<event>`` name), and the value's first word is checked for it;
- path traversal: without ``..``, ``0x``, ``:`` and ``\\`` only a sensitive file name
  (``boot.ini``, ``.htaccess``, ``web.config``) or, with ``/``, a system root (``/etc``,
  ``/proc``, ``/usr/bin`` ...) can fire: their words are in :data:`_WORDS` and
  :data:`_PATH_WORDS`;
- command injection: without ``; | & ` ( \\n`` and with ``$`` only before a word other
  than ``IFS``, only a network tool at the start (``ping -n 3 ...``) can fire: the first
  word is checked against :data:`_TOOL_HEADS`;
- SQL injection: with no ``( ; = < > # |``, no comment (``--``, ``/*``), no ``@@`` and no
  hex literal (``0x``), an unquoted value yields only words, numbers, ``,``/``.`` and the
  arithmetic operators ``- / + * !``; no rule fires on those without one of the words in
  :data:`_WORDS` (``UNION SELECT``, ``ORDER BY 1``, ``x IS NULL``, ``BACKUP`` ...). A
  quote opens the break-out contexts, where an operator after the quote (``a'-'b``) or a
  boolean word (``x' AND 'y``) is enough: those need the full scan too.

A value that is one run of ASCII letters and digits (:func:`alnum`) is a single SQL word
(after an optional number), so only a hex spelling (``0x2e``), an event-handler name and
the one statement that needs no argument (``BACKUP``) matter there.
"""

from __future__ import annotations

import re
from typing import Final

from tradeguard.guard.xss import handler_name

__all__ = ["alnum", "inert_marks"]

_INERT: Final = " ,.@_?-/'\"+*!$]{}0123456789"
_FOLD: Final = bytes(
    (byte | 0x20)
    if chr(byte).isascii() and chr(byte).isalpha()
    else (0x20 if chr(byte) in _INERT else 0)
    for byte in range(256)
)
"""Lower-case ASCII letters; digits, spaces and inert marks become spaces; anything else 0."""

_WORDS: Final = frozenset(
    word.encode()
    for word in """union select order group having where procedure into limit waitfor exec
    execute declare drop insert delete update truncate create backup exists like rlike
    regexp between is sounds case xp sp ifs ini htaccess htpasswd config""".split()
)
"""Letter runs that can complete a rule among inert marks: SQL statements, clauses and
comparison words (``xp``/``sp`` for ``xp_cmdshell``/``sp_oacreate``), ``$IFS``, and the
sensitive file names."""
_QUOTE_WORDS: Final = _WORDS | {b"or", b"and", b"xor"}
"""After a quote, a boolean word alone can break out (``x' OR 'y``)."""
_PATH_WORDS: Final = _WORDS | frozenset(
    b"etc proc sys var usr bin sbin boot root windows winnt ssh aws".split()
)
"""With ``/``: system roots, ``/usr/bin/...`` binaries and sensitive directories."""
_TOOL_HEADS: Final = frozenset(
    b"""ping nc ncat netcat curl wget telnet nslookup dig ssh scp ftp tftp bash sh powershell
    pwsh cmd python perl php ruby certutil bitsadmin socat""".split()
)
"""First letter run of every tool :mod:`~tradeguard.guard.cmdi` flags when it starts the
value with arguments (``python3`` starts with ``python``)."""
_QUOTE_OPERATORS: Final = re.compile(r"[-/+*!]")


def alnum(value: str) -> bool:
    """``value`` (ASCII letters and digits only, non-empty) cannot trigger any detector."""
    if value.isdigit():
        return True
    low = value.lower()
    return "0x" not in low and "backup" not in low and (low[:2] != "on" or not handler_name(low))


def inert_marks(value: str) -> bool:
    """``value`` (ASCII) has only letters, digits and inert marks, in no shape a rule uses."""
    folded = value.encode().translate(_FOLD)
    if 0 in folded:
        return False
    words = folded.split()
    if not _WORDS.isdisjoint(words):
        return False
    if words:
        head = words[0]
        if head in _TOOL_HEADS or (head[:2] == b"on" and handler_name(value)):
            return False
    if (
        "--" in value
        or ".." in value
        or "@@" in value
        or ("*" in value and ("/*" in value or "*/" in value))
        or "0x" in value
        or "0X" in value
        or ("+" in value and "+ad" in value.lower())
    ):
        return False
    if ("'" in value or '"' in value) and (
        _QUOTE_OPERATORS.search(value) is not None or not _QUOTE_WORDS.isdisjoint(words)
    ):
        return False
    return "/" not in value or _PATH_WORDS.isdisjoint(words)
