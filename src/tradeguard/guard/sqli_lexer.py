"""The SQL lexer and vocabulary behind :mod:`tradeguard.guard.sqli`.

:func:`tokenize` reads text the way a SQL lexer would: string literals in both quote styles,
with backslash escapes (MySQL) or without (standard SQL) and doubled quotes; ``--``, ``#``
and ``/* */`` comments; MySQL ``/*!...*/`` executable comments; numbers (``0x``, ``0b``,
decimals); ``@``/``@@`` variables; identifiers, keywords and function calls. The helpers
answer the questions the rules ask of a token stream: is this a literal, a comparison, a
comment that cuts the query off?
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = [
    "MAX_TOKENS",
    "Token",
    "at",
    "comparison",
    "literal",
    "literal_comparison",
    "terminates",
    "tokenize",
]

Token = tuple[str, str]
"""(kind, text): kinds are c comment, s string, u unterminated string, n number, v variable,
w word, f function name (a word directly followed by '('), o operator, p punctuation, x other."""

_TOKEN = re.compile(
    r"""
    [\s\x00]++|/\*!\d*+|\*/
    |/\*(?:[^*]|\*(?!/))*+(?:\*/)?|--(?=[\s+-]|$)[^\n]*+|\#[^\n]*+
    |'[^'\\]*+(?:(?:\\[\s\S]|'')[^'\\]*+)*+'?
    |"[^"\\]*+(?:(?:\\[\s\S]|"")[^"\\]*+)*+"?
    |`[^`]*+`?
    |0x[0-9a-f]++|0b[01]++|\d++(?:\.\d*+)?(?:e[+-]?\d++)?|\.\d++(?:e[+-]?\d++)?
    |@@?[\w$.]*+
    |[^\W\d][\w$]*+
    |<=>|<>|!=|<=|>=|\|\||&&|::|:=
    |[\s\S]
    """,
    re.VERBOSE,
)
# Without backslash escapes (standard SQL, PostgreSQL): "\'" ends the string.
_TOKEN_STD = re.compile(
    _TOKEN.pattern.replace(r"(?:\\[\s\S]|'')", "''")
    .replace(r'(?:\\[\s\S]|"")', '""')
    .replace(r"[^'\\]", "[^']")
    .replace(r'[^"\\]', '[^"]'),
    re.VERBOSE,
)
_OPERATORS: Final = frozenset("= < > ! | & ^ ~ + - * / % : <=> <> != <= >= || && :: :=".split())
_FIXED: Final[dict[str, tuple[str, str]]] = {char: ("p", char) for char in "(),;."} | {
    op: ("o", op) for op in _OPERATORS
}
"""The token of every punctuation mark and operator lexeme."""
_FIRST: Final[dict[str, str]] = (
    {char: "w" for char in "abcdefghijklmnopqrstuvwxyz_`"}
    | {char: "n" for char in "0123456789"}
    | {"@": "v", "'": "q", '"': "q", ".": ".", "/": "c", "-": "c", "#": "c", "*": "c"}
    | {char: " " for char in " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00"}
    | {char: "x" for char in "\\$[]{}?" + "".join(map(chr, [*range(1, 9), *range(14, 28), 127]))}
)
"""Token kind by a lexeme's first (lower-case ASCII) character, for lexemes not in
:data:`_FIXED`: w word, n number, v variable, q quoted, c comment (or its ``/*!``/``*/``
delimiters), ``.`` a number such as ``.5``, a space for whitespace and NUL (skipped), x
for other ASCII marks and controls; any other character is read by :func:`tokenize`."""

BOOL_OPS: Final = frozenset({"or", "and", "xor", "||", "&&"})
COMPARE_OPS: Final = frozenset({"=", "<", ">", "<=", ">=", "<>", "!=", "<=>"})
COMPARE_WORDS: Final = frozenset({"like", "rlike", "regexp", "is", "in", "between", "sounds"})
LITERAL_WORDS: Final = frozenset({"null", "true", "false", "unknown"})
INFO_FUNCS: Final = frozenset(
    """version database user current_user system_user session_user schema db_name
    current_database connection_id last_insert_id suser_name""".split()
)
ALWAYS_FUNCS: Final = frozenset(
    """sleep benchmark pg_sleep load_file extractvalue updatexml xp_cmdshell sp_executesql
    sp_oacreate xp_dirtree xp_regread randomblob pg_read_file openrowset opendatasource
    sys_eval sys_exec name_const json_keys gtid_subset geometrycollection multipoint
    multilinestring multipolygon sqlid_to_sqlhash drithsx receive_message utl_inaddr
    utl_http get_host_address httpuritype dbms_pipe dbms_lock user_lock lo_import
    lo_export dblink_connect regexp_substring current_setting information_schema""".split()
)
"""Functions that are evidence on their own wherever they are called with SQL arguments."""
SQL_WORDS: Final = (
    BOOL_OPS
    | LITERAL_WORDS
    | frozenset(
        """select from where union all distinct binary not as limit order group by having case
    when then else end div mod collate top dual exists like is in between""".split()
    )
)
KEYWORDS: Final = SQL_WORDS | frozenset(
    "values into on using join rlike regexp sounds procedure returning xor".split()
)
"""Words that stay keywords even when a '(' follows them (``union(select``, ``and(1=1)``)."""
NILADIC: Final = frozenset(
    """current_user session_user system_user current_date current_time current_timestamp
    localtime localtimestamp utc_date utc_time utc_timestamp""".split()
)
SQL_FUNCS: Final = (
    INFO_FUNCS
    | ALWAYS_FUNCS
    | frozenset(
        """ascii substring substr mid ord char chr length len lpad rpad left right concat
    concat_ws group_concat hex unhex cast convert count if iif elt make_set isnull ifnull
    coalesce nullif lower upper instr locate position strcmp conv pi floor rand md5 sha1 bin
    unicode datalength soundex reverse""".split()
    )
)
"""Built-in functions that blind injection wraps around data it extracts."""
_ARGUMENT_START: Final = frozenset("nsvfu")
PREFIX_OPS: Final = frozenset({"(", "-", "+", "~", "!", "binary", "not"})
STATEMENT_STARTS: Final = frozenset(
    """select exec execute declare waitfor insert delete update drop create truncate if
    backup""".split()
)
"""Statements recognised without a ';' before them (MSSQL runs them back to back)."""
MAX_TOKENS: Final = 70_000
"""Lexemes lexed per context at most: more than any value under the 64 KiB default cap can
produce. A longer value is not inspected further (``too_complex``): the guard refuses it."""
_PROBE_CHARS: Final = 4 * MAX_TOKENS
"""A longer text is first lexed this far, to refuse a lexeme flood without lexing it all."""
NONE: Final[Token] = ("$", "")
OBJECTS: Final = frozenset(
    "table database view user procedure function schema index trigger login".split()
)


def tokenize(text: str, *, backslash_escapes: bool = True) -> list[Token] | None:
    """Lex ``text`` (lower-cased) into SQL tokens; ``None`` past :data:`MAX_TOKENS`.

    Whitespace and comments are dropped (SQL reads a comment as a space), except a comment
    that ends the value: it is kept, since comment-terminated input matters.
    """
    pattern = _TOKEN if backslash_escapes else _TOKEN_STD
    lowered = text.lower()
    if len(lowered) > _PROBE_CHARS:
        # Lexing a prefix gives the whole text's lexemes up to a few characters before its
        # end (the pattern never looks behind, nor more than 3 characters ahead), so when
        # the prefix has more than MAX_TOKENS + 8, the whole text has more than MAX_TOKENS.
        if len(pattern.findall(lowered, 0, _PROBE_CHARS)) > MAX_TOKENS + 8:
            return None
    lexemes = pattern.findall(lowered)
    if len(lexemes) > MAX_TOKENS:
        return None
    tokens: list[Token] = []
    append = tokens.append
    trailing: Token | None = None
    for value in lexemes:
        fixed = _FIXED.get(value)
        if fixed is not None:  # punctuation or an operator
            trailing = None
            if value == "(" and tokens and tokens[-1][0] == "w" and tokens[-1][1] not in KEYWORDS:
                tokens[-1] = ("f", tokens[-1][1])
            append(fixed)
            continue
        kind = _FIRST.get(value[0])
        if kind is None:  # a non-ASCII first character, or ASCII other than the above
            first = value[0]
            if first.isspace():
                continue
            kind = "n" if first.isdigit() else "w" if first.isalpha() else "x"
        if kind == "w" or kind == "n" or kind == "v" or kind == "x":
            trailing = None
            append((kind, value))
        elif kind == "q":
            trailing = None
            closed = len(value) > 1 and value[-1] == value[0] and not _escaped_end(value)
            append(("s" if closed else "u", value))
        elif kind == "c":  # a comment, or a comment's executable opener or closer
            if value != "*/" and not value.startswith("/*!"):
                trailing = ("c", value)
        elif kind == " ":  # whitespace (and NUL): a separator
            continue
        else:  # "." followed by digits
            trailing = None
            append(("n", value))
    if trailing is not None:
        append(trailing)
    return tokens


def _escaped_end(literal: str) -> bool:
    """True when a literal's last quote is escaped by a backslash, i.e. still open."""
    body = literal[1:-1]
    return (len(body) - len(body.rstrip("\\"))) % 2 == 1


def at(tokens: Sequence[Token], i: int) -> Token:
    return tokens[i] if 0 <= i < len(tokens) else NONE


def literal(token: Token) -> bool:
    kind, text = token
    return kind in _ARGUMENT_START or (kind == "w" and (text in LITERAL_WORDS or text in NILADIC))


def comparison(tokens: Sequence[Token], j: int) -> bool:
    """``tokens[j]`` is a comparison operator with a plausible right-hand side."""
    kind, text = at(tokens, j)
    right = at(tokens, j + 1)
    if kind == "o":
        return text in COMPARE_OPS and right != NONE
    if text == "not" and right[1] in ("like", "rlike", "regexp", "between", "in"):
        return comparison(tokens, j + 1)
    if kind not in "wf" or text not in COMPARE_WORDS:
        return False
    if text == "in":
        return right[1] == "(" or kind == "f"
    if text == "is":
        return right[1] in ("not", "null", "true", "false", "unknown", "\\")
    if text == "sounds":
        return right[1] == "like"
    return right[0] in "nsuvf" or right[1] in PREFIX_OPS


def literal_comparison(tokens: Sequence[Token], j: int) -> bool:
    """A comparison whose both sides are literals (``1=1``, ``'a'='a'``, ``x is null``)."""
    left, right = at(tokens, j - 1), at(tokens, j + 1)
    text = at(tokens, j)[1]
    if text in COMPARE_OPS:  # the common case, checked without the full comparison() call
        return (literal(left) or left[1] == ")") and (literal(right) or right[1] in PREFIX_OPS)
    if not comparison(tokens, j):
        return False
    if text in ("is", "not"):
        return True
    if literal(right) and text in ("like", "rlike", "regexp"):
        return True
    return (literal(left) or left[1] == ")") and (literal(right) or right[1] in PREFIX_OPS)


def terminates(comment: str) -> bool:
    """A comment that cuts the query off: ``--``, ``/*``, or a bare ``#`` (``#2`` is prose)."""
    rest = comment[1:].lstrip(" \t")
    return not comment.startswith("#") or not rest or not (rest[0].isalnum() or comment[1] == " ")
