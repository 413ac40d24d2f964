"""SQL injection detection by tokenising, not by keyword lists.

A value is dangerous when, pasted into a query, it escapes the place it was meant for and
adds SQL structure. The detector therefore imagines the three places a value usually lands:

- inside a single-quoted string literal (``WHERE name = '<value>'``),
- inside a double-quoted string literal (MySQL's ``"<value>"``),
- bare, as a number or identifier (``WHERE id = <value>``),

prefixes the value with the token that opens that context, tokenises the result like a SQL
lexer would (string literals with both quote styles and both escape styles, ``--``, ``#`` and
``/* */`` comments, MySQL ``/*!...*/`` executable comments, operators, numbers, variables,
identifiers, keywords and function calls), and looks at the tokens that follow the break-out.
It flags structure, never a word on its own: ``O'Brien`` leaves a string literal and then
offers only a name, and "please select a union representative" has no ``UNION SELECT``.

The lexer lives in :mod:`tradeguard.guard.sqli_lexer`. Each finding names its rule (see
:data:`RULES`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from tradeguard.guard.normalize import TOO_COMPLEX
from tradeguard.guard.sqli_lexer import (
    ALWAYS_FUNCS,
    BOOL_OPS,
    COMPARE_OPS,
    COMPARE_WORDS,
    INFO_FUNCS,
    LITERAL_WORDS,
    NONE,
    OBJECTS,
    PREFIX_OPS,
    SQL_FUNCS,
    SQL_WORDS,
    STATEMENT_STARTS,
    Token,
    at,
    comparison,
    literal,
    literal_comparison,
    terminates,
    tokenize,
)

__all__ = ["RULES", "detect_sqli"]

RULES: Final[dict[str, str]] = {
    "union_select": "UNION [ALL] SELECT appended to the value",
    "stacked_query": "a new SQL statement after ';' (or the value is one)",
    "dangerous_function": "a time-delay, file, error-based or server-information SQL function",
    "boolean_injection": "a boolean operator joined to a comparison (tautology or blind test)",
    "comment_after_break": "string literal closed and the rest of the query commented out",
    "operator_break": "string literal closed, compared, and reopened to balance the quotes",
    "subquery": "a sub-SELECT inside the value",
    "clause_injection": "ORDER BY/GROUP BY/HAVING/WHERE/PROCEDURE/INTO/LIMIT clause",
    "conditional": "CASE WHEN or IF()-style condition on literals (blind injection)",
    "commented_expression": "a pure SQL expression terminated by a comment",
}


def _boolean(tokens: Sequence[Token], start: int, strict: bool) -> bool:
    """The boolean operator at ``start`` joins a comparison, a call or a sub-select.

    ``strict`` (bare context, mid-value) wants a comparison between literals; after a quote
    break, or at the very start of the value, any comparison or a literal operand followed
    by a comment counts.
    """
    i = start + 1
    depth = 0
    while tokens[i : i + 1] and tokens[i][1] in PREFIX_OPS:
        depth += tokens[i][1] == "("
        i += 1
    first = at(tokens, i)
    if first[0] == "f" and not strict:
        return True
    if first[0] == "f" and first[1] in SQL_FUNCS:
        strict = False
    if (
        (
            first[1] == "select"
            and (_statement(tokens, i, False) or ("w", "from") in tokens[i : i + 40])
        )
        or (first[1] == "exists" and at(tokens, i + 1)[1] == "(")
        or (first[1] == "case" and _conditional(tokens, i))
        or (first[0] == "v" and first[1][:2] == "@@")
    ):
        return True
    for j in range(i, min(len(tokens), start + 32)):
        kind, text = tokens[j]
        if kind == "c":
            return not strict and literal(first) and j == i + 1 and terminates(text)
        depth += (text == "(") - (text == ")")
        if depth < 0 or (depth == 0 and ((text in BOOL_OPS and kind in "wo") or text in ";,")):
            break
        if literal_comparison(tokens, j) if strict else comparison(tokens, j):
            return True
    return False


def _statement(tokens: Sequence[Token], i: int, strict: bool) -> bool:
    """``tokens[i]`` starts a SQL statement, not prose (``strict``: no ';' before it)."""
    word = tokens[i][1]
    nxt, after = at(tokens, i + 1), at(tokens, i + 2)
    if word == "select":
        if nxt[1] in ("distinct", "all", "top"):
            nxt = after
        if nxt[0] in "nfv" or nxt[1] in ("*", "(", "null", "case", "if", "-", "+", "~", "!"):
            return True
        if nxt[1] in INFO_FUNCS:
            return after in (NONE, ("p", ";")) or after[0] == "c" or after[1] == "from"
        if not strict and nxt[0] == "s":
            return True
        window = tokens[i + 1 : i + 40]
        return ("w", "from") in window and any(
            k in "nfsv" for k, _ in window[: window.index(("w", "from"))]
        )
    if word in ("exec", "execute", "call"):
        return nxt[0] in "fsv" or nxt[1] == "(" or nxt[1].startswith(("xp_", "sp_", "master"))
    if word in ("declare", "set"):
        return nxt[0] == "v"
    if word == "waitfor":
        return nxt[1] in ("delay", "time")
    if word in ("insert", "replace"):
        return nxt[1] == "into"
    if word == "delete":
        return nxt[1] == "from" and (not strict or at(tokens, i + 3)[1] == "where")
    if word == "update":
        return after[1] == "set"
    if word in ("if", "while"):
        return any(literal_comparison(tokens, j) for j in range(i + 1, min(i + 6, len(tokens))))
    if word in ("shutdown", "begin", "backup"):
        return nxt[0] in ("$", "c") or nxt[1] in (";", "declare", "database", "shutdown")
    if word in ("drop", "create", "alter", "truncate"):
        if nxt[1] not in OBJECTS:
            return False
        end = at(tokens, i + 3)
        closing = end[1] in ("", ";", "(", "identified") or end[0] == "c"
        return not strict or (after[0] in "wv" and closing)
    if word in ("load", "copy", "use"):
        return not strict and (nxt[1] in ("data", "xml") or nxt[0] == "w")
    return False


def _clause(tokens: Sequence[Token], i: int) -> bool:
    """ORDER BY 1, GROUP BY 1, HAVING 1=1, WHERE 1=1, PROCEDURE ANALYSE(), INTO OUTFILE, LIMIT."""
    word = tokens[i][1]
    nxt, after = at(tokens, i + 1), at(tokens, i + 2)
    if word in ("order", "group"):
        return nxt[1] == "by" and (after[0] in "nfv" or after[1] == "(")
    if word == "procedure":
        return nxt[0] == "f"
    if word == "into":
        return nxt[1] in ("outfile", "dumpfile")
    if word in ("where", "having"):
        j = i + 1
        while at(tokens, j)[1] in ("(", "not"):
            j += 1
        if at(tokens, j)[0] in "wnsvf" and at(tokens, j + 1)[1] == ".":
            j += 2
        return (comparison(tokens, j + 1) and at(tokens, j)[0] != "u") or (
            literal(at(tokens, j)) and at(tokens, j + 1)[1] in BOOL_OPS
        )
    if word == "limit":
        return nxt[0] == "n" and (after[1] in (",", "offset") or after[0] == "c")
    return False


def _conditional(tokens: Sequence[Token], i: int) -> bool:
    """CASE [x] WHEN <literal> ... THEN, or a call whose first argument compares literals."""
    kind, word = tokens[i]
    if word == "case":
        window = tokens[i + 1 : i + 24]
        if ("w", "then") not in window:
            return False
        when = window.index(("w", "when")) if ("w", "when") in window else -1
        return when >= 0 and (literal(at(window, when + 1)) or at(window, when + 1)[1] == "(")
    if kind == "f" and at(tokens, i + 1)[1] == "(":
        return at(tokens, i + 5)[1] == "," and literal_comparison(tokens, i + 3)
    return word == "(" and at(tokens, i + 4)[1] == ")" and literal_comparison(tokens, i + 2)


def _subquery(tokens: Sequence[Token], j: int, start: int, broke: bool) -> bool:
    """``(select <something SQL>`` in a place where an expression is injected."""
    if at(tokens, j - 1)[1] != "(" or not _statement(tokens, j, strict=False):
        return False
    k = j - 1
    while k > start and tokens[k - 1][1] == "(":
        k -= 1
    before = at(tokens, k - 1)
    return (
        broke
        or k == start
        or before[0] == "o"
        or before[1]
        in (",", "in", "exists", "div", "mod", "and", "or", "xor", "not", "like", "union", "from")
    )


def _operator_break(tokens: Sequence[Token], i: int, quote: str) -> bool:
    """After a quote break: operators and literals only, then a new string the query closes.

    ``x' OR col^'1``, ``a'!='b`` and ``' or ''='`` keep the quotes balanced so the query
    still parses. Only operators (``a' & 'b``) count in the single-quote context alone, and
    the double-quote context wants a comparison of literals: a double-quoted "string" is an
    identifier outside MySQL, and ``1/4"-1/2"`` is how people write inches.
    """
    n = len(tokens)
    last = tokens[-1]
    if i >= n - 1 or not (
        (last[0] == "u" and last[1][0] == quote) or (last[0] == "c" and terminates(last[1]))
    ):
        return False
    opener = tokens[i]
    if opener[0] != "o" and opener[1] not in COMPARE_WORDS | BOOL_OPS | {"div", "mod", "not"}:
        return False
    words = 0
    logic = False
    for j in range(i, n - 1):
        kind, text = tokens[j]
        logic = logic or (text in BOOL_OPS and kind in "wo") or comparison(tokens, j)
        if kind == "w" and text not in SQL_WORDS:
            words += 1
        elif kind in "xc" or text == ";":
            return False
    empty_break = tokens[0][1] in ("''", '""')
    if quote == '"':
        return (
            not empty_break
            and 1 < len(last[1]) <= 8
            and any(literal_comparison(tokens, j) for j in range(i, n - 1))
        )
    if logic:
        operands = any(literal(t) for t in tokens[i : n - 1])
        return words <= 1 and (len(last[1]) > 1 or operands or empty_break)
    return not empty_break and len(last[1]) > 1 and all(k == "o" for k, _ in tokens[i : n - 1])


def _commented_expression(tokens: Sequence[Token]) -> bool:
    """Bare value: nothing but SQL vocabulary, with some SQL syntax, then a comment."""
    if len(tokens) < 3 or tokens[-1][0] != "c" or not terminates(tokens[-1][1]):
        return False
    syntax = operand = False
    for kind, text in tokens[:-1]:
        if (kind == "w" and text not in SQL_WORDS) or kind in "xc":
            return False
        syntax = syntax or kind in "osvf" or (kind == "w" and text not in LITERAL_WORDS)
        operand = operand or (literal((kind, text)) and text != "@")
    return syntax and operand


def _analyse(tokens: Sequence[Token], start: int, quote: str) -> str | None:
    """The first rule the injected part ``tokens[start:]`` triggers, if any."""
    n = len(tokens)
    broke = bool(quote)
    if broke:
        i = _skip_closing(tokens, start)
        if at(tokens, i)[0] == "c" and terminates(tokens[i][1]):
            return "comment_after_break"
    elif _commented_expression(tokens):
        return "commented_expression"
    has_bool = False
    literal_compare = False
    for j in range(start, n):
        kind, text = tokens[j]
        # Skip, cheaply, the tokens no rule starts from: plain words, literals, other marks.
        if kind == "w":
            if text not in _RULE_WORDS:
                if "_" in text and text.startswith(("xp_", "sp_oa")):
                    return "dangerous_function"
                continue
        elif kind == "p":
            if text != ";" and text != "(":
                continue
        elif kind == "o":
            if text not in _RULE_OPERATORS:
                continue
        elif kind in "nsuxc":
            continue
        first = j == start or (j == start + 1 and tokens[start][1] == "(")
        if kind in "wo" and text in BOOL_OPS:
            has_bool = True
            if _boolean(tokens, j, strict=not (broke or first)):
                return "boolean_injection"
        elif kind == "o" and not broke and _tautology(tokens, j):
            literal_compare = True
        if kind == "f":
            if text in ALWAYS_FUNCS and _sql_argument(tokens, j + 2):
                return "dangerous_function"
            if text in INFO_FUNCS and at(tokens, j + 2)[1] == ")":
                return "dangerous_function"
            if _conditional(tokens, j):
                return "conditional"
        elif kind == "v" and text.startswith("@@") and len(text) > 2:
            return "dangerous_function"
        elif kind == "w":
            if text == "union":
                k = j + 1
                while at(tokens, k)[1] in ("all", "distinct", "("):
                    k += 1
                if at(tokens, k)[1] == "select":
                    return "union_select"
            elif text.startswith(("xp_", "sp_oa")):
                return "dangerous_function"
            elif text == "waitfor" and at(tokens, j + 1)[1] in ("delay", "time"):
                return "dangerous_function"
            elif text == "select" and _subquery(tokens, j, start, broke):
                return "subquery"
            elif text in ("order", "group", "having", "where", "procedure", "into", "limit") and (
                _clause(tokens, j)
            ):
                return "clause_injection"
            elif text == "case" and _conditional(tokens, j):
                return "conditional"
            elif (
                text in STATEMENT_STARTS
                and (first or at(tokens, j - 1)[0] in "ns" or at(tokens, j - 1)[1] == ")")
                and _statement(tokens, j, strict=True)
            ):
                return "stacked_query"
        elif text == ";" and at(tokens, j + 1)[0] in "wf" and _statement(tokens, j + 1, False):
            return "stacked_query"
        elif text == "(" and at(tokens, j + 4)[1] == ")" and _conditional(tokens, j):
            return "conditional"
    if has_bool and literal_compare:
        return "boolean_injection"
    if broke and _operator_break(tokens, _skip_closing(tokens, start), quote):
        return "operator_break"
    return None


_RULE_WORDS: Final = (
    BOOL_OPS
    | STATEMENT_STARTS
    | {"union", "waitfor", "select", "case"}
    | {"order", "group", "having", "where", "procedure", "into", "limit"}
)
"""The words :func:`_analyse` starts a rule from (besides ``xp_``/``sp_oa`` names)."""
_RULE_OPERATORS: Final = BOOL_OPS | COMPARE_OPS
"""The operators it starts one from (a boolean joint, a comparison of literals)."""


def _sql_argument(tokens: Sequence[Token], i: int) -> bool:
    """``tokens[i]`` opens a SQL argument list: a whole literal, a call or a sub-select."""
    argument, after = at(tokens, i), at(tokens, i + 1)
    if argument[0] == "f" or argument[1] in ("(", ")", "select", "null"):
        return True
    return literal(argument) and (
        after[1] in (")", ",") or (after[0] == "o" and literal(at(tokens, i + 2)))
    )


def _tautology(tokens: Sequence[Token], j: int) -> bool:
    """``1=1``, ``'a'='a'``: a comparison between two plain literals (no ``f(x) < 3``)."""
    left, right = at(tokens, j - 1), at(tokens, j + 1)
    return left[0] in "nsv" and literal_comparison(tokens, j) and right[1] != "("


def _skip_closing(tokens: Sequence[Token], i: int) -> int:
    """Index of the first token after the ``)`` run at ``i``."""
    while i < len(tokens) and tokens[i][1] == ")":
        i += 1
    return i


def _contexts(text: str) -> Iterator[tuple[list[Token], int, str] | None]:
    """Token streams for each injection context, with where the injected part starts;
    ``None`` for a context past the lexer's budget. Lazily: the first finding ends it."""
    bare = tokenize(text)
    yield None if bare is None else (bare, 0, "")
    for quote in ("'", '"'):
        if quote not in text:
            continue
        # Backslash escapes (MySQL) and none (standard SQL) only differ around a \ quote.
        for backslash in (True, False) if "\\" + quote in text else (True,):
            tokens = tokenize(quote + text, backslash_escapes=backslash)
            if tokens is None:
                yield None
            elif tokens and tokens[0][0] == "s":
                yield tokens, 1, quote


def detect_sqli(text: str) -> str | None:
    """The first SQL injection rule ``text`` triggers, or ``None``.

    ``text`` should already be decoded (see :func:`tradeguard.guard.normalize.decode`).
    Returns :data:`~tradeguard.guard.normalize.TOO_COMPLEX` when the value has more
    lexemes than :data:`MAX_TOKENS`: it is then not inspected, and must be refused.
    """
    for stream in _contexts(text):
        if stream is None:
            return TOO_COMPLEX
        rule = _analyse(*stream)
        if rule is not None:
            return rule
    return None
