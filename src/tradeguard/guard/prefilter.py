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
  :data:`_SQL_WORDS` (``UNION SELECT``, ``ORDER BY 1``, ``x IS NULL``, ``BACKUP`` ...). A
  quote opens the break-out contexts; among inert marks the only rule that needs no such
  word there is the operator break (``a'-'b``, ``x' OR 'y``), and it needs the context's
  first string to close, an operator (``- + * / !``) or ``OR``/``AND``/``XOR``/``NOT``/
  ``DIV``/``MOD``/``IN`` right after it, and another quote of the same kind later
  (:func:`_quote_break`; a doubled quote stays inside the string, and without ``\\``
  both escape styles lex alike). A boolean word elsewhere needs a comparison, a call, a
  sub-select or a comment to join, none of which exists here.

Parentheses are inert too in a value with no letters, no quote and no ``$`` (``1 (917)
666-0987``): with no word there is no function call, keyword, tag, scheme, sink or
command, a ``(`` can only open a group of numbers (SQL's conditional rule wants a
comparison inside), and no ``$(`` substitution exists.

:func:`classify` also says when *only* the SQL detector could fire (``SQL_ONLY``: the
obstacle is a SQL word or a quote break, everything else is proven inert); the caller
then runs :func:`~tradeguard.guard.sqli.detect_sqli` alone on the value, which decoding
leaves as it is.

A value that is one run of ASCII letters and digits (:func:`alnum`) is a single SQL word
(after an optional number), so only a hex spelling (``0x2e``), an event-handler name and
the one statement that needs no argument (``BACKUP``) matter there.
"""

from __future__ import annotations

import re
from typing import Final

from tradeguard.guard.xss import handler_name

__all__ = ["FULL", "SAFE", "SQL_ONLY", "alnum", "classify", "inert_marks"]

SAFE: Final = 0
"""No detector can fire."""
SQL_ONLY: Final = 1
"""Only the SQL detector can fire (on the value itself: decoding leaves it unchanged)."""
FULL: Final = 2
"""Not proven: decode and run every detector."""

_INERT: Final = " ,.@_?-/'\"+*!$]{}0123456789"
_FOLD: Final = bytes(
    (byte | 0x20)
    if chr(byte).isascii() and chr(byte).isalpha()
    else (0x20 if chr(byte) in _INERT else 0x0B if chr(byte) in "()" else 0)
    for byte in range(256)
)
"""Lower-case ASCII letters; digits, spaces and inert marks become spaces, parentheses a
vertical tab (a separator too, told apart by its code); anything else 0."""

_SQL_WORDS: Final = frozenset(
    word.encode()
    for word in """union select order group having where procedure into limit waitfor exec
    execute declare drop insert delete update truncate create backup exists like rlike
    regexp between is sounds case xp sp""".split()
)
"""Letter runs that can complete a SQL rule among inert marks: statements, clauses and
comparison words (``xp``/``sp`` for ``xp_cmdshell``/``sp_oacreate``)."""
_OTHER_WORDS: Final = frozenset(b"ifs ini htaccess htpasswd config".split())
"""... and those of the other detectors: ``$IFS`` and the sensitive file names."""
_WORDS: Final = _SQL_WORDS | _OTHER_WORDS
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
_OPENERS: Final = frozenset("or and xor not div mod in".split())
"""Words that can open an operator break right after a closing quote (besides the
comparison words, which are in :data:`_SQL_WORDS`)."""
_LEXEME: Final = re.compile(r"[a-z_][\w$]*+", re.IGNORECASE)


def alnum(value: str) -> bool:
    """``value`` (ASCII letters and digits only, non-empty) cannot trigger any detector."""
    if value.isdigit():
        return True
    low = value.lower()
    return "0x" not in low and "backup" not in low and (low[:2] != "on" or not handler_name(low))


def inert_marks(value: str) -> bool:
    """``value`` (ASCII) has only letters, digits and inert marks, in no shape a rule uses."""
    return classify(value) == SAFE


def classify(value: str) -> int:
    """:data:`SAFE`, :data:`SQL_ONLY` or :data:`FULL` for an ASCII ``value``."""
    folded = value.encode().translate(_FOLD)
    if 0 in folded:
        return FULL
    words = folded.split()
    if 11 in folded and (words or "'" in value or '"' in value or "$" in value):
        return FULL  # parentheses, with a word, a quote or a $ (see the module docstring)
    sql = False
    if not _WORDS.isdisjoint(words):
        if not _OTHER_WORDS.isdisjoint(words):
            return FULL
        sql = True
    if words:
        head = words[0]
        if head in _TOOL_HEADS or (head[:2] == b"on" and handler_name(value)):
            return FULL
    if (
        "--" in value
        or ".." in value
        or "@@" in value
        or ("*" in value and ("/*" in value or "*/" in value))
        or "0x" in value
        or "0X" in value
        or ("+" in value and "+ad" in value.lower())
    ):
        return FULL
    if "/" in value and not _PATH_WORDS.isdisjoint(words):
        return FULL
    if not sql and (
        ("'" in value and _quote_break(value, "'")) or ('"' in value and _quote_break(value, '"'))
    ):
        sql = True
    return SQL_ONLY if sql else SAFE


def _quote_break(value: str, quote: str) -> bool:
    """The ``quote`` context of an inert ``value`` could end in an operator break: its
    first string closes (a doubled quote stays inside it), an operator or an opener word
    follows, and another ``quote`` comes later."""
    close = value.find(quote)
    while close >= 0 and value.startswith(quote, close + 1):
        close = value.find(quote, close + 2)
    if close < 0:
        return False  # the string never closes: nothing is injected
    rest = value[close + 1 :].lstrip(" ")
    if not rest or quote not in rest:
        return False
    if rest[0] in "-+*/!":
        return True
    word = _LEXEME.match(rest)
    return word is not None and word.group().lower() in _OPENERS
