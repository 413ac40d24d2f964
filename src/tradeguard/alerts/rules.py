"""Alert rules: which security events matter, how many of them, within what window, per what key.

A rule is configured in code (:class:`AlertRule`) or in a TOML file (:func:`load_rules`)::

    [[rule]]
    name = "auth.login_failures"
    event_type = "auth.login_failed"   # exact dotted type, or a glob such as "auth.*"
    threshold = 5                      # this many matching events ...
    window = "5m"                      # ... within this window (seconds, or "90s", "5m", "1h")
    group_by = "actor"                 # counted per actor; or subject, ip, outcome, details.<key>
    severity = "warning"               # of the alert: info, warning or critical
    min_severity = "info"              # optional: ignore events below this severity
    cooldown = "5m"                    # optional: quiet time after an alert (default: the window)
    description = "Password guessing?"

Every field is validated when the rule is built; a bad field raises :class:`AlertConfigError`
(a ``ValueError``) that names the rule and the field. Unknown fields in a file are refused, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from tradeguard.errors import AlertConfigError
from tradeguard.events import SecurityEvent, Severity

SEVERITY_RANK: Final[Mapping[str, int]] = {"info": 0, "warning": 1, "critical": 2}
GROUP_FIELDS: Final = ("actor", "subject", "ip", "outcome")
UNGROUPED_KEY: Final = "*"
"""The key of every alert from a rule without ``group_by``."""
MISSING_KEY: Final = "-"
"""The key of events whose ``group_by`` field is None or absent."""
MAX_KEY_LENGTH: Final = 200
DEFAULT_INSTANT_COOLDOWN: Final = timedelta(seconds=60)
"""Quiet time after an alert from a rule without a window, unless the rule sets ``cooldown``."""

_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")
_DETAILS_PATH = re.compile(r"^details(\.[A-Za-z0-9_-]+)+$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS: Final[Mapping[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _to_delta(value: object, what: str) -> timedelta:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise AlertConfigError(
            f"{what} must be seconds (a number) or a timedelta, got {type(value).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise AlertConfigError(f"{what} must be >= 0 seconds, got {value!r}")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRule:
    """Alert when ``threshold`` events matching ``event_type`` arrive within ``window``.

    Events are counted separately per value of ``group_by`` (``actor``, ``subject``, ``ip``,
    ``outcome`` or ``details.<key>``); events where that value is None count under ``"-"``.
    After an alert for a (rule, key), further alerts for it are suppressed for ``cooldown``
    (default: the window; 60 seconds for rules without a window). ``window`` and ``cooldown``
    accept seconds or a :class:`~datetime.timedelta` and are stored as timedeltas.
    """

    name: str
    event_type: str
    threshold: int = 1
    window: timedelta | float = 0.0
    group_by: str | None = None
    severity: Severity = "warning"
    min_severity: Severity | None = None
    cooldown: timedelta | float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise AlertConfigError("alert rule: field 'name' must be a non-empty string")
        where = f"alert rule {self.name!r}: field"
        if not isinstance(self.event_type, str) or not _EVENT_TYPE.match(self.event_type):
            raise AlertConfigError(
                f"{where} 'event_type' must be a dotted event type or a glob such as "
                f"'auth.*', got {self.event_type!r}"
            )
        if not isinstance(self.threshold, int) or isinstance(self.threshold, bool):
            raise AlertConfigError(
                f"{where} 'threshold' must be an integer, got {type(self.threshold).__name__}"
            )
        if self.threshold < 1:
            raise AlertConfigError(f"{where} 'threshold' must be >= 1, got {self.threshold}")
        window = _to_delta(self.window, f"{where} 'window'")
        object.__setattr__(self, "window", window)
        if self.threshold > 1 and window <= timedelta(0):
            raise AlertConfigError(
                f"{where} 'window' must be > 0 when threshold is {self.threshold}: "
                "a count needs a time span to count in"
            )
        if self.cooldown is not None:
            object.__setattr__(self, "cooldown", _to_delta(self.cooldown, f"{where} 'cooldown'"))
        if self.group_by is not None and (
            not isinstance(self.group_by, str)
            or (self.group_by not in GROUP_FIELDS and not _DETAILS_PATH.match(self.group_by))
        ):
            raise AlertConfigError(
                f"{where} 'group_by' must be one of {', '.join(GROUP_FIELDS)} or "
                f"'details.<key>', got {self.group_by!r}"
            )
        for name in ("severity", "min_severity"):
            value = getattr(self, name)
            if (value is not None or name == "severity") and value not in SEVERITY_RANK:
                raise AlertConfigError(
                    f"{where} {name!r} must be one of info, warning, critical, got {value!r}"
                )
        if not isinstance(self.description, str):
            raise AlertConfigError(f"{where} 'description' must be a string")

    @property
    def window_seconds(self) -> float:
        """The window in seconds (0 for rules that fire on every matching event)."""
        return _to_delta(self.window, "window").total_seconds()

    @property
    def cooldown_seconds(self) -> float:
        """The effective quiet time after an alert, in seconds."""
        if self.cooldown is not None:
            return _to_delta(self.cooldown, "cooldown").total_seconds()
        if self.window_seconds > 0:
            return self.window_seconds
        return DEFAULT_INSTANT_COOLDOWN.total_seconds()

    def matches(self, event: SecurityEvent) -> bool:
        """Whether ``event`` counts for this rule (type pattern and minimum severity)."""
        if self.min_severity is not None and (
            SEVERITY_RANK.get(event.severity, 0) < SEVERITY_RANK[self.min_severity]
        ):
            return False
        return fnmatch.fnmatchcase(event.type, self.event_type)

    def key_for(self, event: SecurityEvent) -> str:
        """The group an event counts in: the ``group_by`` value, ``"-"`` if None, ``"*"``."""
        if self.group_by is None:
            return UNGROUPED_KEY
        value: Any
        if self.group_by.startswith("details."):
            value = event.details
            for part in self.group_by.split(".")[1:]:
                value = value.get(part) if isinstance(value, Mapping) else None
        else:
            value = getattr(event, self.group_by)
        if value is None:
            return MISSING_KEY
        return str(value)[:MAX_KEY_LENGTH]


_RULE_FIELDS: Final = tuple(f.name for f in fields(AlertRule))
_STRING_FIELDS: Final = ("name", "event_type", "group_by", "severity", "min_severity")


def _duration_from_toml(value: object, name: str) -> float:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise AlertConfigError(
                f"field {name!r} must be seconds or a duration such as '90s', '5m', '1h', "
                f"'1d', got {value!r}"
            )
        return float(match.group(1)) * _UNITS[match.group(2)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise AlertConfigError(f"field {name!r} must be seconds or a duration string")


def _rule_from_table(table: object) -> AlertRule:
    if not isinstance(table, Mapping):
        raise AlertConfigError("must be a table with name, event_type, ...")
    unknown = sorted(set(table) - set(_RULE_FIELDS))
    if unknown:
        raise AlertConfigError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"the fields are {', '.join(_RULE_FIELDS)}"
        )
    for required in ("name", "event_type"):
        if required not in table:
            raise AlertConfigError(f"field {required!r} is missing")
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        if name in _STRING_FIELDS and not isinstance(value, str):
            raise AlertConfigError(f"field {name!r} must be a string, got {value!r}")
        if name in ("window", "cooldown"):
            value = _duration_from_toml(value, name)
        kwargs[name] = value
    return AlertRule(**kwargs)


def rules_from_mapping(
    data: Mapping[str, Any], *, source: str = "<rules>"
) -> tuple[AlertRule, ...]:
    """Build rules from parsed TOML (``{"rule": [{...}, ...]}``); errors name ``source``."""
    extra = sorted(set(data) - {"rule"})
    if extra:
        raise AlertConfigError(
            f"{source}: unexpected top-level key(s) {', '.join(map(repr, extra))}; "
            "rules go in [[rule]] tables"
        )
    tables = data.get("rule")
    if not isinstance(tables, list) or not tables:
        raise AlertConfigError(f"{source}: no [[rule]] tables; an empty rule set alerts on nothing")
    rules: list[AlertRule] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(tables, start=1):
        label = table.get("name") if isinstance(table, Mapping) else None
        where = f"{source}: [[rule]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        try:
            rule = _rule_from_table(table)
        except AlertConfigError as exc:
            raise AlertConfigError(f"{where}: {exc}") from None
        if rule.name in seen:
            raise AlertConfigError(
                f"{where}: field 'name' repeats the name of rule #{seen[rule.name]}; "
                "rule names must be unique"
            )
        seen[rule.name] = index
        rules.append(rule)
    return tuple(rules)


def parse_rules(text: str, *, source: str = "<string>") -> tuple[AlertRule, ...]:
    """Parse rules from TOML text (see the module docstring for the format)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AlertConfigError(f"{source}: not valid TOML: {exc}") from None
    return rules_from_mapping(data, source=source)


def load_rules(path: str | Path) -> tuple[AlertRule, ...]:
    """Read rules from a TOML file of ``[[rule]]`` tables; errors name the rule and field."""
    path = Path(path)
    return parse_rules(path.read_text(encoding="utf-8"), source=str(path))


DEFAULT_RULES: Final[tuple[AlertRule, ...]] = (
    AlertRule(
        name="auth.login_failures",
        event_type="auth.login_failed",
        threshold=5,
        window=timedelta(minutes=5),
        group_by="actor",
        severity="warning",
        description="5 or more failed logins for one account within 5 minutes: password guessing?",
    ),
    AlertRule(
        name="killswitch.engaged",
        event_type="killswitch.engaged",
        severity="critical",
        description="The kill switch was engaged: trading is halted until it is released.",
    ),
    AlertRule(
        name="secret.integrity_failure",
        event_type="secret.integrity_failure",
        group_by="subject",
        severity="critical",
        description="A stored secret failed its integrity check: tampering or a wrong key.",
    ),
    AlertRule(
        name="ratelimit.storm",
        event_type="ratelimit.exceeded",
        threshold=100,
        window=timedelta(minutes=1),
        group_by="ip",
        severity="warning",
        description="100 or more rate-limit refusals for one address within a minute.",
    ),
)
"""The stock rules: login failures, kill switch, secret integrity, rate-limit storms."""
