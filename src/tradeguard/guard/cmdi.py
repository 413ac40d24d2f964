"""OS command injection detection: shell syntax that starts a command.

Flagged:

- a command after a shell separator (``;``, ``|``, ``||``, ``&``, ``&&``, a newline),
  optionally with its path (``; /usr/bin/id``);
- command substitution: ``$(...)``, ``${IFS}`` tricks, and a command in backticks, unless
  the backticks sit inside prose around an ordinary word (a Markdown code span);
- a binary addressed by its system path (``/bin/ls``, ``/usr/bin/id``);
- a network or shell tool started with arguments (``ping -n 30 127.0.0.1``,
  ``wget http://...``, ``nc -e /bin/sh``);
- server-side includes (``<!--#exec cmd=...``) and code-execution calls with a string
  argument (``system('id')``, ``passthru("ls")``, ``eval("...")``).

Command names are matched the way the shells do: Unix names case-sensitively (``ID`` is
not ``id``), Windows names (``dir``, ``ipconfig``, ``ping.exe``) in any case. Names that are
also ordinary words (``cat``, ``id``, ``more``, ``type``, ``sleep``) need more than a
separator before them: the separator glued to the word, or the word followed by the end of
the value, another separator, an option (``-x``) or a path. So ``fish & chips; cat food``
passes and ``a;id`` does not.
"""

from __future__ import annotations

import re
from typing import Final

from tradeguard.guard.normalize import TOO_COMPLEX, find_unjoined

__all__ = ["MAX_SEPARATORS", "RULES", "detect_cmdi", "names_binary", "tool_command"]

MAX_SEPARATORS: Final = 70_000
"""Separators examined per value at most (a 64 KiB value holds fewer); past it:
``too_complex``."""

RULES: Final[dict[str, str]] = {
    "chained_command": "a shell command after ; | & && || or a newline",
    "command_substitution": "$(...), backticks or ${IFS} around a command",
    "binary_path": "a program addressed by its system path (/bin/..., /usr/bin/...)",
    "command_line": "a network or shell tool started with arguments",
    "server_side_include": "a server-side include directive (<!--#exec ...)",
    "code_execution": "a code-execution call with a string argument (system('...'))",
}

_DISTINCTIVE_UNIX: Final = frozenset(
    """whoami uname ifconfig netstat nslookup wget curl bash zsh ksh csh tcsh ncat netcat
    socat telnet tftp nohup mkfifo mknod useradd chmod chown killall pkill crontab printenv
    base64 xxd python python2 python3 perl ruby php node lua nmap openssl sudo rm lsof
    systemctl uptime ls ps pwd sh nc""".split()
)
_AMBIGUOUS_UNIX: Final = frozenset(
    """id cat echo sleep touch kill env who last head tail more less find grep awk sed sort
    uniq cut tr tee od wc dd ssh scp ftp ping dig host su reboot shutdown halt exec eval
    source export true false""".split()
)
_DISTINCTIVE_WINDOWS: Final = frozenset(
    """ipconfig systeminfo tasklist taskkill powershell pwsh certutil bitsadmin wmic schtasks
    rundll32 regsvr32 mshta cscript wscript msiexec findstr icacls whoami netstat nslookup
    ping""".split()
)
_AMBIGUOUS_WINDOWS: Final = frozenset("dir type net cmd ver vol copy del start reg sc".split())
_NETWORK_TOOLS: Final = frozenset(
    """ping nc ncat netcat curl wget telnet nslookup dig ssh scp ftp tftp bash sh powershell
    pwsh cmd python python3 perl ruby php certutil bitsadmin socat""".split()
)
_CHAIN: Final = re.compile(
    r"[;|&\n\r]([\s+;|&]{0,8}+)(?:[\w.~-]{0,64}+[/\\]){0,8}+([A-Za-z][\w-]{0,30}+)"
    r"(?:\.exe)?(?![\w-])(?![\s+]*+=)"
)
_START_GLUED: Final = re.compile(
    r"^\s*+(?:[\w.~-]{0,64}+[/\\]){0,8}+([A-Za-z][\w-]{0,30}+)(?:\.exe)?[;|&`]"
)
_ARGUMENT: Final = re.compile(
    r"[\s+]*+(?:$|[;|&`)<>]|-{1,2}[A-Za-z]|[/\\~]|\.{1,2}/|[a-z]:|\$|\d{1,3}\.\d{1,3}\.|https?:)",
)
# The patterns below are lower-case and run on lower-cased text (faster than IGNORECASE);
# only the command *names* are compared in their original case (see _is_command).
_DOLLAR_SUBSTITUTION: Final = re.compile(r"\$\(\s*+[a-z_/.~]|\$\{?ifs\b|\$\{[a-z_]\w*+:\d")
_BACKTICKS: Final = re.compile(
    r"`\s*+((?:[\w.~-]{0,64}+/){0,8}+)([a-z][\w+-]{0,30}+)(?:\.exe)?(?:\s[^`]{0,200}+)?`",
)
_BINARY_PATH: Final = re.compile(
    r"/(?:usr/(?:local/)?)?s?bin/[a-z]|[a-z]:\\+windows\\+system32\\+[\w-]+\.exe",
)
_BINARY_AFTER: Final = ";|&`(=\"'"
_COMMAND_LINE: Final = re.compile(
    r"^[\s\"']*+([a-z][\w+-]{0,30}+)(?:\.exe)?\s++(?:-{1,2}[a-z]|https?://|\d{1,3}(?:\.\d{1,3}){3}|/)",
)
_SSI: Final = re.compile(r"<!--\s*+#\s*+(?:exec|include|echo|config|printenv|fsize|flastmod)\b")
_CODE_EXEC: Final = re.compile(
    r"(?:system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|eval|assert"
    r"|spawn|execfile|os\.system|os\.popen|subprocess\.\w+|runtime\.getruntime\(\)\.exec"
    r"|kernel\.exec|%x)\s*+\(\s*+[\"'`]",
)


def _is_command(word: str) -> tuple[bool, bool]:
    """(is a command, needs strong context) for a candidate command name."""
    lowered = word.lower()
    if word in _DISTINCTIVE_UNIX or lowered in _DISTINCTIVE_WINDOWS:
        return True, False
    if word in _AMBIGUOUS_UNIX or lowered in _AMBIGUOUS_WINDOWS:
        return True, True
    return False, False


def _shell_start(text: str, match: re.Match[str]) -> bool:
    """A backtick span at the start of the value or after shell syntax, not inside prose."""
    i = match.start() - 1
    while i >= 0 and text[i] in " \"'" and match.start() - i < 16:
        i -= 1
    return i < 0 or text[i] in ";|&$(=`"


def _chained(text: str) -> str | None:
    """A command name after a separator (or at the start, glued to a separator after it)."""
    start = _START_GLUED.match(text)
    if start is not None and _is_command(start.group(1))[0]:
        return "chained_command"
    for count, match in enumerate(_CHAIN.finditer(text)):
        if count >= MAX_SEPARATORS:
            return TOO_COMPLEX
        command, ambiguous = _is_command(match.group(2))
        if not command:
            continue
        glued = match.group(1) == "" and match.start(2) == match.end(1)
        if not ambiguous or glued or _ARGUMENT.match(text, match.end()):
            return "chained_command"
    return None


def names_binary(text: str) -> bool:
    """``text`` addresses a program by its system path (``/bin/sh``, ``/usr/bin/id``)."""
    text = text.lower()
    for match in _BINARY_PATH.finditer(text):
        start = match.start()
        if start == 0 or text[start - 1].isspace() or text[start - 1] in _BINARY_AFTER:
            return True
    return False


def tool_command(low: str) -> bool:
    """``low`` (lower-cased) starts with a network or shell tool given arguments."""
    tool = _COMMAND_LINE.match(low)
    return tool is not None and tool.group(1) in _NETWORK_TOOLS


def detect_cmdi(text: str) -> str | None:
    """The first command injection rule ``text`` triggers, or ``None``.

    ``text`` should already be decoded (see :func:`tradeguard.guard.normalize.decode`).
    """
    low = text.lower()
    if "<!--" in text and _SSI.search(low):
        return "server_side_include"
    if "$" in text and _DOLLAR_SUBSTITUTION.search(low):
        return "command_substitution"
    if "`" in text:
        for match in _BACKTICKS.finditer(low):
            command, ambiguous = _is_command(match.group(2))
            if match.group(1) or (command and (not ambiguous or _shell_start(low, match))):
                return "command_substitution"
    chained = _chained(text)
    if chained is not None:
        return chained
    if ("/" in text or "\\" in text) and names_binary(low):
        return "binary_path"
    if tool_command(low):
        return "command_line"
    if "(" in text and find_unjoined(_CODE_EXEC, low, "_$.") is not None:
        return "code_execution"
    return None
