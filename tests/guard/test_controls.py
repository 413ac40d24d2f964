"""Control characters: refused when they can do harm (NUL, terminal escape sequences, a
backspace or DEL erasing a printable character), not for being there."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.guard import sanitize_text, validate_input
from tradeguard.guard.controls import RULES, harmful_control

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"

BLNS_C0 = "".join(map(chr, [*range(0x01, 0x09), *range(0x0E, 0x1C)]))
"""BLNS's C0 line (benign_naughty.jsonl): \\x01..\\x08, \\x0e..\\x1b."""
BLNS_DEL = "\x1f\x7f"
BLNS_C1 = "".join(chr(c) for c in range(0x80, 0xA0) if c != 0x85)
"""BLNS's C1 line: \\x80..\\x9f without NEL."""


MIX = "ab [1;\x00\x01\x07\x08\x1b\x7f\x85\x9b\x9d\t\n"


def control_rules(value: str) -> list[str]:
    return [t.rule for t in validate_input(value).threats if t.kind == "control_characters"]


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("a\x00b", "nul_byte"),
        ("\x00", "nul_byte"),
        ("evil.php\x00.png", "nul_byte"),
        ("%00", "nul_byte"),
        ("x%2500", "nul_byte"),
        ("Roses are \x1b[0;31mred\x1b[0m", "terminal_escape"),
        ("But now...\x1b[20Cfor my greatest trick...\x1b[8m", "terminal_escape"),
        ("\x1b]0;pwned\x07", "terminal_escape"),  # OSC: window title
        ("\x1bP+q\x1b\\", "terminal_escape"),  # DCS
        ("\x1b(0", "terminal_escape"),  # charset designation
        ("\x1b)B", "terminal_escape"),
        ("\x1b#8", "terminal_escape"),  # screen fill with E
        ("\x1b%G", "terminal_escape"),
        ("\x1bc", "terminal_escape"),  # full reset
        ("\x1b7text\x1b8", "terminal_escape"),  # save / restore cursor
        ("\x9b2J", "terminal_escape"),  # 8-bit CSI
        ("\x9d0;title\x9c", "terminal_escape"),  # 8-bit OSC
        ("\x90qdata\x9c", "terminal_escape"),  # 8-bit DCS
        ("%1b%5b2J", "terminal_escape"),
        ("%c2%9b31m", "terminal_escape"),
        ("\x1b\uff3b2J", "terminal_escape"),  # fullwidth [ folds to [
        ("The quic\b\b\b\b\b\bk brown fo\x07\x07x... [Beeeep]", "erasing_control"),
        ("paid\b\b\b\bunpaid", "erasing_control"),
        ("ok\x7f\x7f", "erasing_control"),
        ("a\x01\x02\b", "erasing_control"),  # non-moving controls in between
        ("total 100%08", "erasing_control"),  # %08 decodes to a backspace
    ],
)
def test_control_when_harmful_then_flagged_with_rule(value: str, rule: str) -> None:
    assert control_rules(value) == [rule]
    assert not validate_input(value).safe


@pytest.mark.parametrize(
    "value",
    [
        BLNS_C0,
        BLNS_DEL,
        BLNS_C1,
        "\x7f",
        "\b",
        "\b\bab",  # nothing printable before the backspaces
        "line\n\b",  # the look-back stops at a line end
        "tab\t\x7f",
        "bell\x07",
        "c1\x85next line",
        "lone escape at the end \x1b",
        "escape then control \x1b\x01",
        "\x9b\x9c",  # CSI introducer with no parameter or final byte
        "\x90",
        "x\x01y\x02z",
        "form\x0cfeed and vertical\x0btab",
        "line one\r\nline\ttwo\n",
    ],
)
def test_control_when_harmless_then_safe(value: str) -> None:
    assert control_rules(value) == []
    assert validate_input(value).safe


@pytest.mark.parametrize("value", [BLNS_C0, BLNS_DEL, BLNS_C1])
def test_sanitize_text_when_blns_controls_then_removed(value: str) -> None:
    assert sanitize_text(value) == ""


def _rows(name: str) -> list[str]:
    path = CORPORA / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"labelled corpora not found at {CORPORA}")
    lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line)["text"] for line in lines if line]


def _has_control(text: str) -> bool:
    return any((ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F for c in text)


def test_corpus_when_blns_control_rows_then_safe() -> None:
    rows = [text for text in _rows("benign_naughty") if _has_control(text)]
    assert set(rows) >= {BLNS_C0, BLNS_DEL, BLNS_C1}
    assert [text for text in rows if not validate_input(text).safe] == []


def test_corpus_when_terminal_rows_of_other_attack_then_flagged() -> None:
    rows = [text for text in _rows("other_attack") if _has_control(text)]
    assert len(rows) == 3
    assert sorted(rule for text in rows for rule in control_rules(text)) == [
        "erasing_control",
        "terminal_escape",
        "terminal_escape",
    ]


def test_rules_when_listed_then_described() -> None:
    assert set(RULES) == {"nul_byte", "terminal_escape", "erasing_control"}


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(MIX), max_size=30))
def test_harmful_control_when_any_mix_then_matches_a_plain_model(value: str) -> None:
    assert harmful_control(value) == _model(value)


def _model(text: str) -> str | None:
    """The policy, spelled out character by character."""
    if "\x00" in text:
        return "nul_byte"
    for i, char in enumerate(text[:-1]):
        nxt = ord(text[i + 1])
        if char in "\x1b\x90\x98\x9b\x9d\x9e\x9f" and 0x20 <= nxt <= 0x7E:
            return "terminal_escape"
    for i, char in enumerate(text):
        if char in "\x08\x7f":
            j = i - 1
            while j >= 0 and _still(text[j]):
                j -= 1
            if j >= 0 and not _control(text[j]):
                return "erasing_control"
    return None


def _control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def _still(char: str) -> bool:
    return _control(char) and char not in "\x08\x7f\t\n\x0b\x0c\r\x85"


@pytest.mark.parametrize(
    "value",
    ["a\b" * (1 << 19), "\n\b" * (1 << 19), "\x01" * (1 << 20), "x" * (1 << 20) + "\x7f"],
)
def test_harmful_control_when_mebibyte_then_fast(value: str) -> None:
    started = time.process_time()
    harmful_control(value)
    assert time.process_time() - started < 0.5
