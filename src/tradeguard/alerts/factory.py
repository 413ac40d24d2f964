"""Build the default AlertEngine from settings: rules from TOML or built in, log + webhook."""

from __future__ import annotations

from tradeguard.alerts.engine import AlertEngine
from tradeguard.alerts.rules import DEFAULT_RULES, load_rules
from tradeguard.alerts.sinks import AlertSink, LogSink
from tradeguard.alerts.webhook import WebhookSink
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import AlertConfigError
from tradeguard.settings import Settings


def build_alert_engine(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> AlertEngine:
    """Rules from ``TRADEGUARD_ALERT_RULES`` (else the defaults); alerts go to the log and,
    when ``TRADEGUARD_ALERT_WEBHOOK_URL`` is set, to that webhook signed with
    ``TRADEGUARD_ALERT_WEBHOOK_SECRET`` (required with the URL)."""
    rules = load_rules(settings.alert_rules) if settings.alert_rules else DEFAULT_RULES
    sinks: list[AlertSink] = [LogSink()]
    if settings.alert_webhook_url is not None:
        if settings.alert_webhook_secret is None:
            raise AlertConfigError(
                "TRADEGUARD_ALERT_WEBHOOK_URL needs TRADEGUARD_ALERT_WEBHOOK_SECRET to sign with"
            )
        sinks.append(
            WebhookSink(
                settings.alert_webhook_url.get_secret_value(),
                settings.alert_webhook_secret.get_secret_value(),
                clock=clock,
            )
        )
    return AlertEngine(rules, sinks, clock=clock)
