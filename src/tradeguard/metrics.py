"""Prometheus metrics fed by the event bus: subscribe a :class:`Metrics` and render it.

A :class:`Metrics` owns its own ``CollectorRegistry`` (the process-wide registry of
prometheus-client is never touched) and is a bus subscriber::

    metrics = Metrics()
    bus.subscribe(metrics)
    body = metrics.render()  # serve with Content-Type: metrics.content_type

Labels carry only code-defined values (event types, outcomes, decisions, violation codes),
sanitised and length-capped, with at most a fixed number of distinct values per label;
actors, subjects, IPs and paths never become labels.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tradeguard.events import SecurityEvent

_MAX_CHILDREN = 4096  # remembered labelled children (label values are bounded anyway)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :func:`render`'s output (Prometheus text exposition 0.0.4)."""

MAX_LABEL_LENGTH = 64
"""Label values are cut to this many characters."""

MAX_LABEL_VALUES = 256
"""Distinct values one label may take; later newcomers are counted under ``other``."""

_NOT_NAME = re.compile(r"[^a-z0-9_.]")
_NOT_CODE = re.compile(r"[^A-Z0-9_]")
_LOGIN = "auth.login"
_SIMPLE: Mapping[str, tuple[str, str]] = {
    "auth.token_validated": ("tokens", "validated"),
    "auth.token_rejected": ("tokens", "rejected"),
    "ratelimit.allowed": ("ratelimit", "allowed"),
    "ratelimit.exceeded": ("ratelimit", "exceeded"),
    "order.approved": ("orders", "approved"),
    "order.rejected": ("orders", "rejected"),
}


def label_value(value: object) -> str:
    """``value`` as a safe label: lower case, only ``[a-z0-9_.]``, at most 64 characters."""
    text = "" if value is None else str(value)[:MAX_LABEL_LENGTH]
    text = _NOT_NAME.sub("_", text.lower())[:MAX_LABEL_LENGTH]
    return text or "unknown"


def code_value(value: object) -> str:
    """``value`` as a safe violation code: upper case, only ``[A-Z0-9_]``, at most 64 chars."""
    text = "" if value is None else str(value)[:MAX_LABEL_LENGTH]
    text = _NOT_CODE.sub("_", text.upper())[:MAX_LABEL_LENGTH]
    return text or "UNKNOWN"


class _Bounded:
    """Admits up to ``limit`` distinct values for one label, then answers ``overflow``."""

    def __init__(self, overflow: str, limit: int = MAX_LABEL_VALUES) -> None:
        self._seen: set[str] = set()
        self._overflow = overflow
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value not in self._seen and len(self._seen) >= self._limit:
                return self._overflow
            self._seen.add(value)
        return value


class Metrics:
    """tradeguard's Prometheus metrics in an instance-owned registry; call it with events."""

    content_type = CONTENT_TYPE

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.security_events = Counter(
            "tradeguard_security_events",
            "Security events published, by type and severity.",
            ("type", "severity"),
            registry=reg,
        )
        self.logins = Counter(
            "tradeguard_logins", "Login attempts, by outcome.", ("outcome",), registry=reg
        )
        self.tokens = Counter(
            "tradeguard_tokens", "Tokens checked, by result.", ("result",), registry=reg
        )
        self.ratelimit = Counter(
            "tradeguard_ratelimit_decisions",
            "Rate-limit decisions, by decision.",
            ("decision",),
            registry=reg,
        )
        self.orders = Counter(
            "tradeguard_orders_checked",
            "Orders through the pre-trade checks, by decision.",
            ("decision",),
            registry=reg,
        )
        self.violations = Counter(
            "tradeguard_order_violations",
            "Pre-trade violations on rejected orders, by code.",
            ("code",),
            registry=reg,
        )
        self.secret_operations = Counter(
            "tradeguard_secret_operations",
            "Secrets-manager operations, by operation and outcome.",
            ("operation", "outcome"),
            registry=reg,
        )
        self.audit_chain_ok = Gauge(
            "tradeguard_audit_chain_ok",
            "1 if the last audit-chain verification passed, 0 if not; NaN before the first.",
            registry=reg,
        )
        self.audit_records_verified = Gauge(
            "tradeguard_audit_records_verified",
            "Records checked by the last audit-chain verification.",
            registry=reg,
        )
        self.audit_chain_ok.set(math.nan)
        self._types = _Bounded("other")
        self._operations = _Bounded("other")
        self._outcomes = _Bounded("other")
        self._codes = _Bounded("OTHER")
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # (type, severity) of the simple events -> their two counters; at most
        # len(_SIMPLE) x 3 severities entries
        self._fixed: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._by_kind: Mapping[str, Counter] = {
            "tokens": self.tokens,
            "ratelimit": self.ratelimit,
            "orders": self.orders,
        }

    def _child(self, metric: Counter, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (label values here are already bounded)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._children) < _MAX_CHILDREN:
                self._children[key] = child
        return child

    def __call__(self, event: SecurityEvent) -> None:
        """Count ``event``: the generic counter always, a specific metric when one applies."""
        kind = event.type
        fixed = self._fixed.get((kind, event.severity))
        if fixed is not None:  # a simple event seen before: its two counters, remembered
            fixed[0].inc()
            fixed[1].inc()
            if kind == "order.rejected":
                self._count_violations(event.details)
            return
        generic = self._child(self.security_events, self._types(label_value(kind)),
                              event.severity)  # fmt: skip
        generic.inc()
        simple = _SIMPLE.get(kind)
        if simple is not None:
            specific = self._child(self._by_kind[simple[0]], simple[1])
            specific.inc()
            self._fixed[kind, event.severity] = (generic, specific)
            if kind == "order.rejected":
                self._count_violations(event.details)
        elif kind.startswith(_LOGIN):
            outcome = event.outcome or kind[len(_LOGIN) :].lstrip("._")
            self.logins.labels(self._outcome(outcome)).inc()
        elif kind.startswith("secret.") or kind == "key.rotated":
            operation = kind.removeprefix("secret.").replace(".", "_")
            self.secret_operations.labels(
                self._operations(label_value(operation)), self._outcome(event.outcome)
            ).inc()
        elif kind == "audit.verified":
            self._audit_from(event.details)

    def set_audit_status(self, ok: bool, checked: int) -> None:
        """Record the result of an audit-chain verification: passed or not, records checked."""
        if not isinstance(ok, bool):
            raise TypeError("ok must be a bool")
        if isinstance(checked, bool) or not isinstance(checked, int) or checked < 0:
            raise ValueError("checked must be a non-negative int")
        self.audit_chain_ok.set(1 if ok else 0)
        self.audit_records_verified.set(checked)

    def render(self) -> bytes:
        """This registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def _outcome(self, value: object) -> str:
        return self._outcomes(label_value(value))

    def _count_violations(self, details: Mapping[str, Any]) -> None:
        found = details.get("violations", details.get("codes"))
        for code in _codes(found):
            self.violations.labels(self._codes(code_value(code))).inc()

    def _audit_from(self, details: Mapping[str, Any]) -> None:
        ok, checked = details.get("ok"), details.get("checked")
        if isinstance(ok, bool):
            self.audit_chain_ok.set(1 if ok else 0)
        if isinstance(checked, int) and not isinstance(checked, bool) and checked >= 0:
            self.audit_records_verified.set(checked)


def _codes(found: object) -> Iterable[object]:
    """Codes from a list of strings, of mappings with ``code``, or of objects with ``.code``."""
    if found is None:
        return ()
    if isinstance(found, str):
        return (found,)
    if not isinstance(found, Iterable) or isinstance(found, Mapping | bytes):
        return ()
    codes: list[object] = []
    for item in found:
        if isinstance(item, str):
            codes.append(item)
        elif isinstance(item, Mapping):
            codes.append(item.get("code"))
        else:
            codes.append(getattr(item, "code", None))
    return codes


class _Default:
    """The lazily built default :class:`Metrics`; ``reset_default_metrics`` drops it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: Metrics | None = None

    def get(self, build: Callable[[], Metrics]) -> Metrics:
        metrics = self.metrics
        if metrics is not None:
            return metrics
        with self.lock:
            if self.metrics is None:
                self.metrics = build()
            return self.metrics


_default = _Default()


def default_metrics() -> Metrics:
    """The process's default :class:`Metrics`, built on first use."""
    return _default.get(Metrics)


def reset_default_metrics() -> None:
    """Forget the default :class:`Metrics`; the next call builds a fresh, empty one."""
    with _default.lock:
        _default.metrics = None


def render() -> bytes:
    """The default metrics in the Prometheus text exposition format."""
    return default_metrics().render()
