"""The guard's shortcuts are exact: the pre-filter and the per-detector gates in
``validate_input`` never pass a value on which the ungated pipeline (decode, then every
detector) finds a threat, and they never change which threats are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.guard import cmdi, sqli, sqli_lexer, traversal, xss
from tradeguard.guard import inspect as guard_inspect
from tradeguard.guard.normalize import TOO_COMPLEX, decode
from tradeguard.guard.prefilter import FULL, SAFE, SQL_ONLY, alnum, classify, inert_marks

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"


def reference(value: str, path_field: bool = False) -> list[tuple[str, str]]:
    """Every detector on the decoded value, with no pre-filter and no gate."""
    if guard_inspect._too_many_marks(value):
        return [("size", TOO_COMPLEX)]
    text = decode(value)
    if text is None or guard_inspect._too_many_marks(text):
        return [("size", TOO_COMPLEX)]
    found: list[tuple[str, str]] = []
    control = guard_inspect._control_threat(value, text)
    if control is not None:
        found.append((control.kind, control.rule))
    for kind, rule in (
        ("sql_injection", sqli.detect_sqli(text)),
        ("xss", guard_inspect._xss_rule(value, text)),
        ("path_traversal", traversal.detect_traversal(text, path_field=path_field)),
        ("command_injection", cmdi.detect_cmdi(text)),
    ):
        if rule == TOO_COMPLEX:
            return [("size", TOO_COMPLEX)]
        if rule is not None:
            found.append((kind, rule))
    return found


def verdict(value: str, field: str | None = None) -> list[tuple[str, str]]:
    return [(t.kind, t.rule) for t in guard_inspect.validate_input(value, field=field).threats]


def _vocabulary() -> list[str]:
    words: set[str] = set()
    for module in (sqli_lexer, cmdi, xss, traversal):
        for item in vars(module).values():
            if isinstance(item, frozenset):
                words |= {w for w in item if isinstance(w, str) and w.isascii()}
    words |= set(
        """etc proc passwd shadow usr bin sbin boot root windows winnt system32 win ini
        htaccess htpasswd web config wp php ssh aws credentials ifs onload onerror
        onmouseover xp_cmdshell sp_oacreate delay time by null all 0x2e 0x2f 0x5c python3
        alert document cookie javascript by 1 0 9 127 0.0.1 ad adw""".split()
    )
    return sorted(words)


VOCABULARY = _vocabulary()
INERT_MARKS = list(" ,.@_?-/'\"+*!$]{}")
OTHER_MARKS = list("=<>();#|&%:\\`[~^\t\n\r\x00\x1b\xa0\uff0e\uff0f")
_PIECE = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(VOCABULARY).map(str.upper),
    st.sampled_from(INERT_MARKS),
    st.sampled_from(INERT_MARKS).map(lambda mark: mark * 2),
    st.sampled_from(OTHER_MARKS),
    st.integers(0, 300).map(str),
    st.just(" "),
)
SHAPED = st.lists(_PIECE, max_size=10).map("".join)
"""Values built from every word any detector knows and from the trigger characters."""
PLAIN = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(SHAPED, PLAIN, st.text(max_size=30)))
def test_validate_when_any_value_then_same_threats_as_ungated_pipeline(value: str) -> None:
    assert verdict(value) == reference(value)


@settings(max_examples=300, deadline=None)
@given(SHAPED)
def test_validate_when_path_field_then_same_threats_as_ungated_pipeline(value: str) -> None:
    assert verdict(value, field="file_path") == reference(value, path_field=True)


@settings(max_examples=1000, deadline=None)
@given(SHAPED)
def test_prefilter_when_it_passes_then_ungated_pipeline_finds_nothing(value: str) -> None:
    if value.isascii() and (alnum(value) if value.isalnum() else inert_marks(value)):
        assert reference(value) == []


QUOTE_PIECES = [
    "'",
    '"',
    "''",
    '""',
    "-",
    "+",
    "*",
    "/",
    "!",
    " ",
    "  ",
    ",",
    ".",
    "@",
    "$",
    "or",
    "OR",
    "and",
    "xor",
    "not",
    "in",
    "div",
    "mod",
    "like",
    "is",
    "null",
    "x",
    "a1",
    "_b",
    "1",
    "0",
    "1.5",
    ".5",
    "1e3",
    "(",
    ")",
    "917",
    "?",
    "{",
    "]",
]
QUOTED = st.lists(st.sampled_from(QUOTE_PIECES), max_size=12).map("".join)
"""Values around the quote-break and parenthesis refinements of :func:`classify`."""


@settings(max_examples=3000, deadline=None)
@given(st.one_of(SHAPED, QUOTED))
def test_classify_when_safe_or_sql_only_then_only_sql_can_fire(value: str) -> None:
    if not value.isascii() or value.isalnum():
        return
    shape = classify(value)
    found = reference(value)
    if shape == SAFE:
        assert found == []
    elif shape == SQL_ONLY:
        assert {kind for kind, _ in found} <= {"sql_injection", "size"}
    assert verdict(value) == found


@pytest.mark.parametrize(
    ("value", "shape", "flagged"),
    [
        ("a'-'b", SQL_ONLY, True),
        ("x' or 'y", SQL_ONLY, True),
        ('1/4"-1/2" WIDE RIBBON', SQL_ONLY, False),
        ("I'M AFRAID SO. YOU'RE ENTIRELY BONKERS", SAFE, False),
        ("KNICKIN' AND KNACKIN' SEE WHAT ONFIRE'S PACKIN' FOR", SQL_ONLY, False),
        ('\'-"8 TRACK" PLAYER', SAFE, False),
        ("o''neil' - 'x", SQL_ONLY, True),
        ("A IS FOR ADORABLE", SQL_ONLY, False),
        ("1 union select null", SQL_ONLY, True),
        ("1 or true", SAFE, False),
        ("x' or 1 is null or 'y", SQL_ONLY, True),
        (" 1 (917) 666-0987", SAFE, False),
        ("(1)", SAFE, False),
        ("1 (x)", FULL, False),
        ("$(/1)", FULL, True),
        ("'(1)'-'1'", FULL, False),
        ("ping -n 3 1.2.3.4", FULL, True),
        ("web .htaccess", FULL, True),
    ],
)
def test_classify_when_edge_values_then_shape_and_verdict(
    value: str, shape: int, flagged: bool
) -> None:
    assert classify(value) == shape
    assert verdict(value) == reference(value)
    assert bool(reference(value)) == flagged


@pytest.mark.parametrize("word", VOCABULARY)
def test_alnum_when_vocabulary_word_alone_or_after_number_then_sound(word: str) -> None:
    for value in (word, word.upper(), f"1{word}", f"1e5{word}", f"0b1{word}", f"{word}1"):
        if value.isascii() and value.isalnum() and alnum(value):
            assert reference(value) == [], value


@pytest.mark.parametrize("name", ["benign", "benign_apostrophe", "benign_naughty", "sqli", "xss"])
def test_corpus_when_inspected_then_same_threats_as_ungated_pipeline(name: str) -> None:
    path = CORPORA / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"labelled corpora not found at {CORPORA}")
    lines = path.read_text(encoding="utf-8").split("\n")
    rows = [json.loads(line)["text"] for line in lines if line]
    assert [v for v in rows if verdict(v) != reference(v)] == []


@pytest.mark.parametrize(
    "value",
    ["backup", "1backup", "x':'y", "0x1fselect 1", "pwsh -c x", "scp -r host:x", "onMouseOver"],
)
def test_validate_when_edge_of_a_shortcut_then_flagged_like_the_pipeline(value: str) -> None:
    assert verdict(value) == reference(value) != []


@settings(max_examples=150, deadline=None)
@given(st.one_of(SHAPED, QUOTED).filter(bool), st.integers(4097, 65_536))
def test_validate_when_long_value_then_same_threats_as_ungated_pipeline(
    piece: str, size: int
) -> None:
    value = (piece * (size // len(piece) + 1))[:size]
    assert verdict(value) == reference(value)


@pytest.mark.parametrize(
    ("unit", "too_complex"),
    [("union select ", True), ("1 ", True), ("abcdefghijklmnopqrstuvwxyz union ", False)],
)
def test_lexer_when_long_value_then_refused_past_token_budget(unit: str, too_complex: bool) -> None:
    value = (unit * (300_000 // len(unit) + 1))[:300_000]
    assert (sqli_lexer.tokenize(value) is None) == too_complex
    assert (sqli.detect_sqli(value) == TOO_COMPLEX) == too_complex


@settings(max_examples=40, deadline=None)
@given(st.one_of(SHAPED, QUOTED).filter(bool), st.integers(65_537, 300_000))
def test_validate_when_past_budgets_then_same_threats_as_ungated_pipeline(
    piece: str, size: int
) -> None:
    """Past the work budgets the ungated pipeline can give up where the gated scan has
    nothing to run: the shortcuts for long values must agree with the scan."""
    value = (piece * (size // len(piece) + 1))[:size]
    threats = guard_inspect.validate_input(value, max_chars=size).threats
    scanned = guard_inspect._scan(value, False)
    assert [(t.kind, t.rule) for t in threats] == [(t.kind, t.rule) for t in scanned]
