"""Control characters that can do harm, as opposed to control characters that are merely there.

A C0 or C1 control character in a form value is odd, but most of them do nothing a reader
or a program would notice: a lone ``\\x01`` or ``\\x85`` is dropped by
:func:`~tradeguard.guard.inspect.sanitize_text` before storage and shown as a box or not
at all. The request guard refuses a value (threat kind ``control_characters``) only for
the ones that change what is stored or what an operator sees:

- ``nul_byte``: NUL anywhere. C strings, many drivers and file APIs stop at it, so what
  is checked and what is used differ (``evil.php\\x00.png``).
- ``terminal_escape``: an escape sequence a terminal or log viewer acts on: ESC followed
  by any intermediate or final byte (``0x20``-``0x7e``: CSI ``ESC [``, OSC ``ESC ]``, DCS
  ``ESC P``, charset designations ``ESC (`` / ``ESC )``, ``ESC #8`` screen fill, ``ESC %``,
  ``ESC c`` full reset ...), and the 8-bit introducers DCS U+0090, SOS U+0098, CSI U+009B,
  OSC U+009D, PM U+009E and APC U+009F followed by a parameter, intermediate or final byte
  (``0x20``-``0x7e``). These recolour, hide (``ESC[8m``), move the cursor over earlier
  output, set window titles or, in some terminals, answer back.
- ``erasing_control``: a backspace (U+0008) or DEL (U+007F) that would step back over a
  printable character written before it (``The quic\\b\\b\\b\\b\\b\\bk``), so a log line or
  a rendered value reads differently from what was stored. Other controls that do not move
  the cursor may sit in between; tab, LF, VT, FF, CR and NEL end the look-back.

Everything else (a lone ESC, BEL, NEL, a C1 character not followed by a sequence byte, a
run of backspaces with nothing printable before it, tab, LF and CR) is no threat.

Every check is a fixed literal or character-class search (linear, no backtracking); the
common case, a value without any control character, costs one character-class scan.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["RULES", "harmful_control"]

RULES: Final[dict[str, str]] = {
    "nul_byte": "a NUL character (truncates the value in C strings, drivers and file APIs)",
    "terminal_escape": "a terminal escape sequence (ESC or an 8-bit CSI/OSC/DCS introducer)",
    "erasing_control": "a backspace or DEL that steps back over a printable character",
}

_ANY: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Any C0/C1 control but tab, LF and CR: without one, nothing below can match."""
_ESCAPE: Final = re.compile(r"\x1b[\x20-\x7e]")
_C1_SEQUENCE: Final = re.compile(r"[\x90\x98\x9b\x9d\x9e\x9f][\x20-\x7e]")
_STILL: Final = re.compile(r"[\x00-\x07\x0e-\x1f\x80-\x84\x86-\x9f]++")
"""Controls that leave the cursor where it is (all but BS, DEL, tab/LF/VT/FF/CR and NEL)."""
_ERASE_REVERSED: Final = re.compile(r"[\x08\x7f][^\x00-\x1f\x7f-\x9f]")
"""A BS or DEL right after a printable character, in the reversed text (so the search can
skip ahead on its first character)."""


def harmful_control(text: str) -> str | None:
    """The rule (see :data:`RULES`) of the first harmful control character, or ``None``."""
    if _ANY.search(text) is None:
        return None
    if "\x00" in text:
        return "nul_byte"
    if "\x1b" in text and _ESCAPE.search(text) is not None:
        return "terminal_escape"
    if not text.isascii() and _C1_SEQUENCE.search(text) is not None:
        return "terminal_escape"
    if ("\x08" in text or "\x7f" in text) and (
        _ERASE_REVERSED.search(_STILL.sub("", text)[::-1]) is not None
    ):
        return "erasing_control"
    return None
