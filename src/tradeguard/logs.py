"""Structured logging: JSON lines in production, readable text at a terminal, secrets never.

``configure_logging()`` sets up structlog and the standard ``logging`` root logger so that
structlog calls and plain library records come out through one processor chain::

    configure_logging(json=True, level="INFO")
    log = get_logger(__name__)
    log.info("login", user="ada", password="hunter2")  # password -> "[redacted]"

Every record passes two redactions before it is rendered: values under keys that look like
credentials (the rule of :func:`tradeguard.events.redact`, nested), and anything in a string
that looks like a JWT, a ``tg_`` API key or a ``Bearer`` credential.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from tradeguard.errors import ConfigurationError
from tradeguard.events import REDACTED, redact

# Each alternative starts at a fixed anchor and runs of its character classes are taken
# possessively, so a match attempt never backtracks: scanning stays linear in the input.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+"
    r"|(?<![A-Za-z0-9_])tg_[A-Za-z0-9_.-]{24,}+"
    r"|(?i:\bbearer)[ \t]++[A-Za-z0-9._~+/=-]++"
)
_INTERNAL = frozenset({"exc_info", "stack_info"})


def _internal(key: str) -> bool:
    """Keys structlog and logging use for their own objects; never rewritten."""
    return key in _INTERNAL or key.startswith("_")


def scrub_tokens(value: Any) -> Any:
    """``value`` with JWTs, ``tg_`` API keys and Bearer credentials in strings redacted.

    Mappings, lists and tuples are walked recursively; other objects are returned as is.
    """
    if isinstance(value, str):
        return _TOKEN.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {k: scrub_tokens(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_tokens(v) for v in value]
    return value


def redact_sensitive_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: replace values under credential-like keys, at any depth, by ``[redacted]``."""
    cleaned = redact({k: v for k, v in event_dict.items() if not _internal(k)})
    return {k: v if _internal(k) else cleaned[k] for k, v in event_dict.items()}


def redact_token_patterns(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: redact JWT-, ``tg_``- and Bearer-looking substrings in every string value."""
    return {k: v if _internal(k) else scrub_tokens(v) for k, v in event_dict.items()}


_COMMON: tuple[Processor, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
)
_REDACT: tuple[Processor, ...] = (redact_sensitive_keys, redact_token_patterns)
_CHAIN: list[Processor] = [
    structlog.stdlib.filter_by_level,
    *_COMMON,
    structlog.stdlib.PositionalArgumentsFormatter(),
    *_REDACT,
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]
_FOREIGN: list[Processor] = [*_COMMON, structlog.stdlib.ExtraAdder(), *_REDACT]


class _Handler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs; without a stream it follows ``sys.stderr``.

    Following ``sys.stderr`` at each record (as ``logging.lastResort`` does) keeps output
    going where the process's stderr is now, not where it was at configuration time.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._follow_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the fixed stream, or to the current ``sys.stderr``."""
        if self._follow_stderr:
            self.stream = sys.stderr
        super().emit(record)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _level(level: str | int) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        number = logging.getLevelNamesMapping().get(level.strip().upper())
        if number is not None:
            return number
    raise ConfigurationError(
        f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )


def configure_logging(
    *, json: bool | None = None, level: str | int = "INFO", stream: TextIO | None = None
) -> None:
    """Route structlog and standard ``logging`` through one redacting chain to one handler.

    ``json=True`` writes one JSON object per line (``timestamp`` ISO UTC, ``level``,
    ``logger``, ``event`` and the bound keys); ``json=False`` writes readable key=value text,
    coloured only on a terminal; ``json=None`` picks text on a terminal and JSON otherwise.
    ``stream`` defaults to the current ``sys.stderr``. The root logger gets ``level``.
    Calling it again replaces the previous configuration instead of adding to it.
    """
    number = _level(level)
    target = stream if stream is not None else sys.stderr
    tty = _isatty(target)
    as_json = not tty if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=tty, exception_formatter=structlog.dev.plain_traceback
        )
    )
    handler = _Handler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_FOREIGN,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_token_patterns,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    _remove_handlers(root)
    root.addHandler(handler)
    root.setLevel(number)
    structlog.configure(
        processors=_CHAIN,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Remove ``configure_logging``'s handler and restore structlog's defaults.

    The root logger's level is left as it is.
    """
    _remove_handlers(logging.getLogger())
    structlog.reset_defaults()


def _remove_handlers(root: logging.Logger) -> None:
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger over ``logging.getLogger(name)`` that always redacts.

    Its processors are fixed, so credentials are redacted even if ``configure_logging`` was
    never called; what happens to the record afterwards is up to the ``logging`` handlers.
    """
    return cast(
        structlog.stdlib.BoundLogger,
        structlog.wrap_logger(
            logging.getLogger(name),
            processors=_CHAIN,
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
        ),
    )
