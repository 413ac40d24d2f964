"""Cross-site scripting detection: markup and URLs that execute, not every ``<``.

``a < b``, ``<3``, ``I <3 it`` and ``x<y>z`` (``y`` is no element) are harmless. Flagged:

- tags that execute or load active content: ``<script``, ``<iframe``, ``<frame``,
  ``<object``, ``<embed``, ``<applet``, ``<base``, ``<link``, ``<style``,
  ``<meta http-equiv``, ``<form ... action``, ``<?import``;
- event-handler attributes (``on<event>=``) inside any tag, after a quote that breaks out
  of an attribute value (``" autofocus onfocus=alert(1) x="``), or bare with a call
  (`` onerror=alert(1)``);
- script URLs (``javascript:``, ``vbscript:``, ``data:text/html`` ...) where a URL goes:
  at the start of the value, after ``=``, a quote, ``(`` or ``url(``, or inside a tag;
- CSS that runs code: ``expression(``, ``-moz-binding``, ``behavior:``;
- script sinks (``alert(``, ``eval(``, ``document.cookie``, ``String.fromCharCode``) and
  a quote breaking out of a JavaScript string into a call (``';alert(1)//``);
- probes: markup hidden behind an encoding that survived a filter (``%3C``, ``&lt;``,
  ``\\x3c``, UTF-7 ``+ADw-``; :func:`encoded_markup`, run on the raw value), and a value
  that is only an event-handler name (``onMouseOver``, recognised from the words DOM event
  names are made of);
- any other HTML, SVG or MathML element, comment or declaration (``<a href=...>``,
  ``<b>``, ``<!--``): markup injection, rule ``html_markup``. It does not run script by
  itself but restructures the page (phishing forms, dangling markup); callers that accept
  harmless markup can tell it apart by its rule.

Matching is tolerant of the usual tricks: case, whitespace, ``/`` instead of a space,
control characters inside keywords (``java\\tscript:``), CSS comments and escapes, and
encoded payloads (entities and percent-escapes are decoded before this module sees the
value; JavaScript escapes, UTF-7 and 7-bit-stripped text are read here as variants). Every
scan is linear: tag spans are walked once, and all patterns are simple with bounded or
possessive repeats.
"""

from __future__ import annotations

import re
from typing import Final

from tradeguard.guard.normalize import TOO_COMPLEX, find_unjoined

__all__ = ["MAX_TAGS", "RULES", "detect_xss", "encoded_markup", "handler_name"]

MAX_TAGS: Final = 40_000
"""Tags read per value at most (a 64 KiB value holds fewer); past it: ``too_complex``."""

RULES: Final[dict[str, str]] = {
    "script_tag": "a <script> tag",
    "active_tag": "a tag that loads or runs active content (iframe, object, embed, base ...)",
    "event_handler": "an on<event>= handler attribute",
    "script_url": "a javascript:/vbscript:/data:text/html URL",
    "css_expression": "CSS that executes script (expression(), -moz-binding, behavior)",
    "js_breakout": "a quote that escapes a JavaScript string into a function call",
    "script_call": "a call to a script sink (alert, eval, document.cookie, String.fromCharCode)",
    "html_markup": "an HTML/SVG/MathML element, comment or declaration (markup injection)",
    "encoded_markup": "an angle bracket hidden behind an encoding (filter-evasion probe)",
    "handler_name": "the value is an event-handler attribute name (attribute injection probe)",
}

_HINT: Final = re.compile(r"[<:=(`\\\[\xbc]")  # or +AD (UTF-7): one class, so re skips ahead
_UTF7_HINT: Final = re.compile(r"\+[aA][dD]")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]++")
_CONTROL_WS: Final = re.compile(r"[\x00-\x1f\x7f]++|\\0(?![0-9a-f])")
_FORMFEED: Final = str.maketrans("\x0b\x0c", "  ")
_CSS_JUNK: Final = re.compile(r"/\*(?:[^*]|\*(?!/))*+(?:\*/)?|\\")
_TAG: Final = re.compile(r"<[\s/]{0,8}+([a-z?!][a-z0-9:_-]{0,40}+)")
_SCRIPT_TAG: Final = re.compile(r"<[\s/]{0,8}+script(?![a-z0-9_-])")
_ACTIVE: Final = frozenset(
    """iframe frame frameset object embed applet base link style ?import import isindex xml
    portal fencedframe layer ilayer ?xml-stylesheet handler listener""".split()
)
_ACTIVE_ATTRIBUTE: Final = re.compile(
    r"dataformatas\s*+=\s*+[\"']?html|attributename\s*+=\s*+[\"']?on|(?:java|vb)script:"
)
_HANDLER: Final = re.compile(r"(on[a-z]{3,40}+)[^\s=>]{0,40}+\s*+=")
_HANDLER_AFTER: Final = "/\"'`;,]"
_NOT_HANDLERS: Final = frozenset("once only online onto onset onion onward".split())
_QUOTED_HANDLER: Final = re.compile(r"[\"'`][\s/]*+(on[a-z]{3,40}+)\s*+=\s*+[^\s>]")
_BARE_HANDLER: Final = re.compile(
    r"(on[a-z]{3,40}+)\s*+=\s*+[\"'`]?\(*+[a-z_$][\w$.\[\]'\"]{0,60}+\s*+[(`]"
)
_SCHEME: Final = re.compile(r"(?:(?:java|vb|live|ecma)script|mocha|x-javascript):")
_URL_OPENERS: Final = "=\"'`(,:[?"
_DATA_URL: Final = re.compile(
    r"data:\s*+(?:text/(?:html|javascript|xml)|image/svg|"
    r"application/(?:x-)?(?:javascript|xhtml|ecmascript))"
)
_CSS_EXEC: Final = re.compile(r"expression\s*+\(|-moz-binding|(?:behaviou?r|binding)\s*+:\s*+url")
_JS_BREAKOUT: Final = re.compile(
    r"[\"'`][\s)\]}]{0,8}+[;+\-*/|&^,]{1,3}+\s*+"
    r"(?:alert|confirm|prompt|eval|print|settimeout|setinterval|fetch|import|function|"
    r"document\.|window\.|top\[|self\[|this\[|location|constructor)"
)
_ELEMENTS: Final = frozenset(
    """a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound
    big blink blockquote body br button canvas caption center cite code col colgroup data
    datalist dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure font
    footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe image img
    input ins isindex kbd keygen label layer legend li link listing main map mark marquee math
    menu menuitem meta meter multicol nav nextid nobr noembed noframes noscript object ol
    optgroup option output p param picture plaintext portal pre progress q rb rp rt rtc ruby s
    samp script search section select slot small source spacer span strike strong style sub
    summary sup svg table tbody td template textarea tfoot th thead time title tr track tt u ul
    var video wbr xmp animate animatemotion animatetransform circle clippath defs desc ellipse
    feimage filter foreignobject g line lineargradient marker mask path pattern polygon
    polyline radialgradient rect set stop switch symbol text textpath tspan use view maction
    mglyph mi mn mo ms mtext mrow mfrac msqrt semantics annotation annotation-xml !-- !doctype
    !entity !element !attlist ?xml""".split()
)
"""Element names of HTML (current and obsolete), SVG and MathML, plus comment/declaration
openers: a tag made of one of these is markup; ``x<y>z`` is not."""
_ENCODED_BRACKET: Final = re.compile(
    r"%(?:25)*+(?:3c|3e|u003c|u003e|c0%bc|c0%be)|&(?:amp;)*+(?:lt|gt)(?![a-z])"
    r"|&(?:amp;)*+#(?:0*+(?:60|62)|x0*+(?:3c|3e))(?![0-9])|\\(?:x3c|x3e|u003c|u003e|74|76)"
    r"|\+ad[wz]-"
)
_EVENT_WORDS: Final = frozenset(
    """abort activate deactivate after before animation transition aux click dbl blur focus
    in out change close copy cut paste context menu drag drop end ended start enter leave over
    exit error input invalid key down up press load loaded unload message mouse move wheel
    pointer raw touch page show hide pop state progress resize scroll search select selection
    submit reset toggle play playing pause seek seeked seeking time update volume rate duration
    can through cue data meta print script execute hash storage online offline fullscreen
    iteration cancel run begin repeat finish bounce help ready property filter layout complete
    media row rows cell inserted delete set sync restored undo redo resume reverse track capture
    lose form edit control webkit moz url flip unhandled rejection available dataset
    changed""".split()
)
"""Words DOM event names are made of (mouse+over, before+unload, pointer+raw+update)."""
_META_ACTIVE: Final = re.compile(r"http-equiv|url\s*+=|charset")
_SINK_CALL: Final = re.compile(
    r"(?:alert|confirm|prompt|eval|settimeout|setinterval|execscript|fromcharcode)\s{0,2}+[(`]"
    r"|(?:top|self|parent|frames|window|globalthis)\s*+\[\s*+[\"'`]"
)
_SINK_MEMBER: Final = re.compile(
    r"document\s*+\.\s*+(?:cookie|domain|write)|\.innerhtml\s*+=|constructor\.constructor"
)
_JS_ESCAPE: Final = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|u\{([0-9a-f]{1,6})\})")
_HIGH_BIT: Final = str.maketrans({chr(c | 0x80): chr(c) for c in range(0x20, 0x7F)})


def _after(text: str, start: int, allowed: str) -> bool:
    """``text[start]`` begins the value or follows whitespace or a char in ``allowed``."""
    return start == 0 or text[start - 1].isspace() or text[start - 1] in allowed


def _script_url(compact: str) -> bool:
    """A script scheme where a URL starts: value start, after ``=``, a quote, ``(`` ..."""
    for match in _SCHEME.finditer(compact):
        i = match.start() - 1
        while i >= 0 and compact[i].isspace() and match.start() - i < 64:
            i -= 1
        if i < 0 or compact[i] in _URL_OPENERS or compact[max(0, i - 3) : i + 1] == "url(":
            return True
    return find_unjoined(_DATA_URL, compact, "+.-") is not None


def _compact(text: str) -> str:
    """Drop the control characters browsers ignore inside keywords and URLs."""
    return _CONTROL_WS.sub("", text)


def _tag_rule(name: str, span: str, closed: bool) -> str | None:
    """Rule for one tag ``<name ...`` whose attribute text (up to ``>``) is ``span``."""
    if name == "script":
        return "script_tag"
    if name in _ACTIVE:
        return "active_tag"
    if name == "meta" and _META_ACTIVE.search(span):
        return "active_tag"
    if name == "form" and "action" in span:
        return "active_tag"
    for match in _HANDLER.finditer(span):
        if match.group(1) not in _NOT_HANDLERS and _after(span, match.start(), _HANDLER_AFTER):
            return "event_handler"
    if _ACTIVE_ATTRIBUTE.search(_compact(span)):
        return "active_tag"
    if "style" in span and find_unjoined(_CSS_EXEC, _CSS_JUNK.sub("", span), "_$"):
        return "css_expression"
    local = name.rpartition(":")[2] if ":" in name[1:] else name
    if local in _ELEMENTS and (closed or "=" in span or name[0] in "!?"):
        return "html_markup"
    return None


def _scan_tags(text: str) -> str | None:
    """Walk the tags once; each span runs to the next ``>`` (or the end) and is read once."""
    pos = 0
    for _ in range(MAX_TAGS):
        match = _TAG.search(text, pos)
        if match is None:
            return None
        end = text.find(">", match.end())
        closed = end >= 0
        end = end if closed else len(text)
        rule = _tag_rule(match.group(1), text[match.end() : end], closed)
        if rule is not None:
            return rule
        pos = max(end, match.end())
    return TOO_COMPLEX


def _event_name(word: str) -> bool:
    """``word`` splits into DOM event words (``mousemove`` = mouse + move)."""
    reachable = [True] + [False] * len(word)
    for end in range(1, len(word) + 1):
        reachable[end] = any(
            reachable[start] and word[start:end] in _EVENT_WORDS
            for start in range(max(0, end - 12), end)
        )
    return reachable[-1]


def handler_name(text: str) -> bool:
    """The whole value is an event-handler attribute name such as ``onMouseOver``."""
    word = text.strip().lower()
    return (
        5 <= len(word) <= 48
        and word.startswith("on")
        and word.isalpha()
        and (_event_name(word[2:]))
    )


def encoded_markup(raw: str) -> bool:
    """``raw`` (before decoding) hides ``<`` or ``>`` behind percent, entity or JS escapes."""
    return _ENCODED_BRACKET.search(raw.lower()) is not None


def _js_unescape(match: re.Match[str]) -> str:
    code = int(match.group(1) or match.group(2) or match.group(3), 16)
    return chr(code) if code <= 0x10FFFF else ""


def _variants(text: str) -> list[str]:
    """The decoded text, plus the readings a browser might also take of it.

    JavaScript escapes (``\\x3c``, ``\\u003c``) matter once the value lands in a script;
    UTF-7 (``+ADw-script+AD4-``) when a page's charset can be confused; US-ASCII with the
    high bit set (``¼script¾``) in old 7-bit-stripping paths.
    """
    low = text.lower()
    variants = [low]
    if "\\x" in low or "\\u" in low:
        variants.append(_JS_ESCAPE.sub(_js_unescape, low))
    if "+ad" in low:
        try:
            variants.append(text.encode("ascii", "ignore").decode("utf-7").lower())
        except UnicodeDecodeError:
            pass
    if "\xbc" in low:
        variants.append(low.translate(_HIGH_BIT))
    return variants


def _detect_one(text: str) -> str | None:
    low = _CONTROL.sub("", text).translate(_FORMFEED)
    if "<" in low:
        if _SCRIPT_TAG.search(low):
            return "script_tag"
        rule = _scan_tags(low)
        if rule is not None:
            return rule
    compact = _compact(text)
    if ":" in compact and _script_url(compact):
        return "script_url"
    if "=" in low and _handler_outside_tag(low):
        return "event_handler"
    if "(" in low and "style" in low and find_unjoined(_CSS_EXEC, _CSS_JUNK.sub("", compact), "_$"):
        return "css_expression"
    if _JS_BREAKOUT.search(low):
        return "js_breakout"
    if find_unjoined(_SINK_CALL, compact, "_$") or _SINK_MEMBER.search(compact):
        return "script_call"
    return None


def _handler_outside_tag(low: str) -> bool:
    """``" onfocus=x`` after a quote, or ``onerror=alert(1)`` after a space."""
    for match in _QUOTED_HANDLER.finditer(low):
        if match.group(1) not in _NOT_HANDLERS:
            return True
    return any(
        match.group(1) not in _NOT_HANDLERS and _after(low, match.start(), "")
        for match in _BARE_HANDLER.finditer(low)
    )


def detect_xss(text: str) -> str | None:
    """The first XSS rule ``text`` triggers, or ``None``.

    ``text`` should already be decoded (see :func:`tradeguard.guard.normalize.decode`).
    """
    if not _HINT.search(text) and ("+" not in text or _UTF7_HINT.search(text) is None):
        return "handler_name" if handler_name(text) else None
    for variant in _variants(text):
        rule = _detect_one(variant)
        if rule is not None:
            return rule
    return None
