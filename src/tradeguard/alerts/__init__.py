"""Alerts over the security event stream: rules, a deduplicating engine, and sinks.

::

    from tradeguard.alerts import DEFAULT_RULES, AlertEngine, LogSink, WebhookSink

    webhook = WebhookSink("https://ops.example.com/hooks/tradeguard", secret)
    engine = AlertEngine(DEFAULT_RULES, [LogSink(), webhook], clock=clock)
    bus.subscribe(engine)
    ...
    engine.close()  # drains the webhook queue

Rules come from code (:class:`AlertRule`) or a TOML file (:func:`load_rules`).
"""

from tradeguard.alerts.engine import AlertEngine
from tradeguard.alerts.rules import (
    DEFAULT_RULES,
    AlertRule,
    load_rules,
    parse_rules,
    rules_from_mapping,
)
from tradeguard.alerts.sinks import Alert, AlertSink, CallbackSink, LogSink
from tradeguard.alerts.transport import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_signature,
)
from tradeguard.alerts.webhook import WebhookSink
from tradeguard.errors import AlertConfigError

__all__ = [
    "DEFAULT_RULES",
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertConfigError",
    "AlertEngine",
    "AlertRule",
    "AlertSink",
    "CallbackSink",
    "LogSink",
    "WebhookSink",
    "load_rules",
    "parse_rules",
    "rules_from_mapping",
    "sign",
    "verify_signature",
]
