"""Inspect untrusted text: the request guard's one entry point for field values.

:func:`validate_input` decodes a value the way a web stack would (see
:mod:`tradeguard.guard.normalize`) and asks four detectors whether what is left would
change the meaning of a SQL query, an HTML page, a file path or a shell command; it also
refuses control characters that can do harm (NUL, terminal escape sequences, a backspace or
DEL that erases what came before it: :mod:`tradeguard.guard.controls`), not their mere
presence. It never raises on a ``str``, fails closed on anything else,
and says why in :class:`Threat` records: a kind, a stable rule name and a sentence.

This is defence in depth. It catches the common and the encoded payloads and it will still
miss some, and flag a few odd harmless values. It is never a substitute for parameterised
queries, context-aware output encoding (see :func:`escape_html`), path canonicalisation
against an allow-listed root, and passing argument lists (not strings) to subprocesses.

Cost: an exact pre-filter (:mod:`tradeguard.guard.prefilter`) answers most ordinary values
(names, numbers, e-mail addresses) without decoding, and sends those only SQL could act on
straight to the SQL detector; everything else is decoded and scanned in linear time, each
detector only when the value holds something it could act on. A value
longer than ``max_chars`` (64 KiB by default) is refused unread with a ``size`` threat.
"""

from __future__ import annotations

import html
import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Final

from tradeguard.guard import cmdi, controls, sqli, traversal, xss
from tradeguard.guard.controls import harmful_control
from tradeguard.guard.normalize import TOO_COMPLEX, decode
from tradeguard.guard.prefilter import FULL, SAFE, SQL_ONLY, alnum, classify

__all__ = [
    "COMMAND_INJECTION",
    "CONTROL_CHARACTERS",
    "DEFAULT_MAX_CHARS",
    "INVALID_TYPE",
    "MAX_MARKS",
    "PATH_TRAVERSAL",
    "SIZE",
    "SQL_INJECTION",
    "XSS",
    "InputVerdict",
    "Threat",
    "escape_html",
    "sanitize_text",
    "validate_input",
]

# The values of Threat.kind.
SQL_INJECTION: Final = "sql_injection"
XSS: Final = "xss"
PATH_TRAVERSAL: Final = "path_traversal"
COMMAND_INJECTION: Final = "command_injection"
CONTROL_CHARACTERS: Final = "control_characters"
SIZE: Final = "size"
INVALID_TYPE: Final = "invalid_type"

DEFAULT_MAX_CHARS: Final = 64 * 1024
"""Longest value inspected, in characters; longer values are refused unread."""
MAX_MARKS: Final = 70_000
"""Most ASCII punctuation marks in one (decoded) value: more than a value under the
default cap can hold. Past it the value is refused as ``too_complex``: every detector
walks punctuation, so this bounds the work a long value can cause."""


@dataclass(frozen=True, slots=True)
class Threat:
    """One reason a value was refused: ``kind`` (e.g. ``sql_injection``), ``rule``, ``detail``.

    ``rule`` is a stable name (``union_select``, ``event_handler``, ``dot_segment`` ...);
    ``detail`` explains it in words. Neither ever repeats the value itself.
    """

    kind: str
    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class InputVerdict:
    """The outcome of :func:`validate_input`: ``safe`` is True only when ``threats`` is empty."""

    safe: bool
    threats: tuple[Threat, ...] = ()

    def __post_init__(self) -> None:
        if self.safe == bool(self.threats):
            raise ValueError("a verdict is safe exactly when it has no threats")

    @property
    def kinds(self) -> frozenset[str]:
        """The threat kinds found (empty when safe)."""
        return frozenset(threat.kind for threat in self.threats)


_SAFE: Final = InputVerdict(safe=True)
_FAST_PATH_CHARS: Final = 4096
"""Longest value the pre-filter answers (far below every detector's work budget)."""
_LETTERS: Final = bytes(byte if 0x61 <= byte <= 0x7A else 0x20 for byte in range(256))
"""Keeps the lower-case ASCII letters of UTF-8 text, every other byte becomes a space."""
_SQL_WORDS: Final = frozenset(
    b"""union select order group having where procedure into limit waitfor exec execute
    declare drop insert delete update truncate create backup exists like rlike regexp between
    is sounds case""".split()
)
"""Words a SQL rule can start from without any SQL punctuation (see :func:`_sql_possible`)."""
_BOOL_WORDS: Final = frozenset({b"or", b"and", b"xor"})
_CONTROL_KEEP_TAB_LF: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]++")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_LOGIC_WORDS: Final = _BOOL_WORDS | {b"if"}
_SQL_STRUCTURE: Final = re.compile(r"[;(#\\]")  # and the substrings in _sql_possible
_PUNCTUATION: Final = string.punctuation.encode()
_SQL_LOGIC: Final = re.compile(r"[=<>|&)]")
_SQL_OPERATOR: Final = re.compile(r"[-+*/%^~!:=<>|&]")
_CMDI_HINT: Final = re.compile(r"[;|&`\n\r(/\\$]")
"""With ``<!--``: the characters a command injection rule needs (one character class, so
``re`` skips ahead on it: an alternation would be tried at every position)."""


def _control_threat(raw: str, decoded: str) -> Threat | None:
    """A control character that can do harm (see :mod:`tradeguard.guard.controls`)."""
    rule = harmful_control(raw)
    if rule is not None:
        return Threat(CONTROL_CHARACTERS, rule, controls.RULES[rule])
    if decoded is not raw:
        rule = harmful_control(decoded)
        if rule is not None:
            return Threat(CONTROL_CHARACTERS, rule, controls.RULES[rule] + ", behind an encoding")
    return None


_TOO_COMPLEX_THREAT: Final = Threat(
    SIZE, TOO_COMPLEX, "too many escapes, tokens or tags to inspect within the work budget"
)


def _too_many_marks(text: str) -> bool:
    if len(text) <= MAX_MARKS:
        return False
    data = text.encode("utf-8", "surrogatepass")  # ASCII marks stay one byte each
    return len(data) - len(data.translate(None, _PUNCTUATION)) > MAX_MARKS


def _sql_possible(text: str, lowered: str) -> bool:
    """Some SQL rule could fire on ``text``. It needs one of: ``; ( # \\``, a comment,
    ``@@``, a hex literal or ``xp_``/``sp_``; a statement, clause
    or comparison word (:data:`_SQL_WORDS`); a quote with an operator or a boolean word (a
    break-out); or a comparison/logic mark (``= < > | & )``) with a boolean word or ``IF``
    to join it to. Without any of these the lexer yields plain words, numbers and
    arithmetic, on which no rule fires, so :func:`sqli.detect_sqli` is skipped (exactly:
    tests/guard/test_prefilter.py compares with the ungated pipeline)."""
    if (
        _SQL_STRUCTURE.search(lowered) is not None
        or "--" in lowered
        or "/*" in lowered
        or "@@" in lowered
        or "0x" in lowered
        or "xp_" in lowered
        or "sp_" in lowered
    ):
        return True
    # The runs of a-z (as bytes): one C pass, where a regex findall builds a str per word.
    words = lowered.encode("utf-8", "surrogatepass").translate(_LETTERS).split()
    if not _SQL_WORDS.isdisjoint(words):
        return True
    quoted = "'" in text or '"' in text
    if quoted and _SQL_OPERATOR.search(text) is not None:
        return True
    if _SQL_LOGIC.search(text) is None:
        return quoted and not _BOOL_WORDS.isdisjoint(words)
    return not _LOGIC_WORDS.isdisjoint(words) or "||" in text or "&&" in text


def _scan(value: str, path_field: bool) -> list[Threat]:
    """Decode ``value`` and run every detector that could fire on it."""
    if _too_many_marks(value):
        return [_TOO_COMPLEX_THREAT]
    threats: list[Threat] = []
    if value.isascii() and "%" not in value and "&" not in value:
        text = value  # what decode() would return: nothing to peel or fold
        control = _control_threat(value, value)
        if control is not None:
            threats.append(control)
    else:
        decoded = decode(value)
        if decoded is None or _too_many_marks(decoded):
            return [_TOO_COMPLEX_THREAT]
        text = decoded
        control = _control_threat(value, text)
        if control is not None:
            threats.append(control)
    lowered = text.lower()
    findings = (
        (
            SQL_INJECTION,
            sqli.RULES,
            sqli.detect_sqli(text) if _sql_possible(text, lowered) else None,
        ),
        (XSS, xss.RULES, _xss_rule(value, text)),
        (PATH_TRAVERSAL, traversal.RULES, traversal.detect_traversal(text, path_field=path_field)),
        (
            COMMAND_INJECTION,
            cmdi.RULES,
            cmdi.detect_cmdi(text)
            if _CMDI_HINT.search(text) or "<!--" in text or cmdi.tool_command(lowered)
            else None,
        ),
    )
    for kind, rules, rule in findings:
        if rule == TOO_COMPLEX:
            return [_TOO_COMPLEX_THREAT]
        if rule is not None:
            threats.append(Threat(kind, rule, rules[rule]))
    return threats


def _xss_rule(raw: str, text: str) -> str | None:
    rule = xss.detect_xss(text)
    if rule is None and ("%" in raw or "&" in raw or "\\" in raw or "+" in raw):
        rule = "encoded_markup" if xss.encoded_markup(raw) else None
    return rule


def validate_input(
    value: str, *, field: str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> InputVerdict:
    """Inspect one untrusted field value; never raises on a ``str``.

    ``field`` (the field's name) only makes the path checks stricter: a name containing
    ``path``, ``file``, ``dir``, ``name`` ... also refuses absolute paths, ``~``, a bare
    ``..`` and device names (see :mod:`tradeguard.guard.traversal`). A value that is not a
    ``str`` is refused with an ``invalid_type`` threat; one longer than ``max_chars`` with a
    ``size`` threat, without being inspected.
    """
    if type(value) is not str:
        if not isinstance(value, str):
            return InputVerdict(
                safe=False,
                threats=(
                    Threat(INVALID_TYPE, "not_text", f"expected str, got {type(value).__name__}"),
                ),
            )
        value = str.__str__(value)  # a plain copy: a subclass's own methods are not trusted
    size = len(value)
    if size > max_chars:
        return InputVerdict(
            safe=False,
            threats=(Threat(SIZE, "too_long", f"{size} characters; the limit is {max_chars}"),),
        )
    if size <= _FAST_PATH_CHARS and value.isascii():
        if field is None or not traversal.is_path_field(field):
            if value.isalnum():
                if value.isdigit():
                    return _SAFE
                low = value.lower()
                if ("0x" not in low and "backup" not in low and low[:2] != "on") or alnum(value):
                    return _SAFE
            else:
                shape = classify(value)
                if shape == SAFE:
                    return _SAFE
                if shape == SQL_ONLY:
                    return _sql_only(value)
            return _verdict(_scan(value, False))
        return _verdict(_scan(value, True))
    path_field = field is not None and traversal.is_path_field(field)
    if not path_field and value.isascii():
        shape = _long_value_shape(value)
        if shape == SAFE:
            return _SAFE
        if shape == SQL_ONLY:
            return _sql_only(value) if _sql_possible(value, value.lower()) else _SAFE
    return _verdict(_scan(value, path_field))


def _long_value_shape(value: str) -> int:
    """The pre-filter's answer for a long ASCII value, where it agrees with the pipeline's
    work budgets: without quotes and with few enough marks, no detector but SQL's can give
    up on the value (``too_complex``), and SQL's runs exactly when the scan would run it."""
    if "'" in value or '"' in value or _too_many_marks(value):
        return FULL
    if value.isalnum():
        return SAFE if alnum(value) else FULL
    return classify(value)


def _verdict(threats: list[Threat]) -> InputVerdict:
    return InputVerdict(safe=False, threats=tuple(threats)) if threats else _SAFE


def _sql_only(value: str) -> InputVerdict:
    """The verdict on a value the pre-filter proved inert to every detector but SQL's."""
    rule = sqli.detect_sqli(value)
    if rule is None:
        return _SAFE
    if rule == TOO_COMPLEX:
        return InputVerdict(safe=False, threats=(_TOO_COMPLEX_THREAT,))
    return InputVerdict(safe=False, threats=(Threat(SQL_INJECTION, rule, sqli.RULES[rule]),))


def sanitize_text(value: str, *, max_length: int = 4096) -> str:
    """Normalise free text for storage: NFKC, no control characters but tab and LF, capped.

    CRLF and lone CR become LF; lone surrogates become U+FFFD; the result is cut to
    ``max_length`` characters. This makes text safe to *store*, not to *render*: escape it
    on output (:func:`escape_html`).
    """
    if not isinstance(value, str):
        raise TypeError(f"sanitize_text expects str, got {type(value).__name__}")
    if max_length < 0:
        raise ValueError("max_length must be >= 0")
    text = unicodedata.normalize("NFKC", _SURROGATE.sub("\ufffd", value))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_KEEP_TAB_LF.sub("", text)[:max_length]


def escape_html(value: str) -> str:
    """Escape ``& < > " '`` for HTML text and quoted attribute values."""
    return html.escape(value, quote=True)
