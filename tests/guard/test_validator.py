"""The SecurityValidator and the seed's module-level calls, wired to bus, limiter and bans."""

from __future__ import annotations

import json

import pytest

import tradeguard
from tradeguard.clock import FixedClock
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.guard.bans import BanList
from tradeguard.guard.ratelimit import RateLimiter
from tradeguard.guard.validator import SecurityValidator


@pytest.fixture
def validator(clock: FixedClock) -> tuple[SecurityValidator, list[SecurityEvent]]:
    bus = EventBus(clock=clock)
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    limiter = RateLimiter({"order_submissions": "2/second;3/minute"}, clock=clock, bus=bus)
    bans = BanList(clock=clock, bus=bus, threshold=3)
    return SecurityValidator(limiter, bans, bus=bus, trusted_proxies=["10.0.0.0/8"]), seen


def test_seed_calls_when_used_as_documented_then_work() -> None:
    allowed, message = tradeguard.check_rate_limit("user123", "order_submissions")
    assert allowed is True and isinstance(message, str)
    verdict = tradeguard.get_validator().validate_input("O'Brien")
    assert verdict.safe


def test_injection_when_client_known_then_event_and_violation_toward_ban(
    validator: tuple[SecurityValidator, list[SecurityEvent]],
) -> None:
    guard, seen = validator
    for _ in range(3):
        assert not guard.validate_input("1' OR '1'='1", field="q", ip="203.0.113.9").safe
    assert guard.is_blocked("203.0.113.9") is not None
    types = [e.type for e in seen]
    assert types.count("guard.threat_detected") == 3 and "ip.banned" in types
    assert all("1'='1" not in repr(e) for e in seen)


def test_request_when_hostile_then_rejected_counted_and_banned(
    validator: tuple[SecurityValidator, list[SecurityEvent]],
) -> None:
    guard, seen = validator
    body = json.dumps({"symbol": "<script>alert(1)</script>"}).encode()
    for _ in range(3):
        verdict = guard.inspect_request("POST", "/v1/orders/check", "",
                                        {"content-type": "application/json"}, body,
                                        client_ip="198.51.100.7")  # fmt: skip
        assert verdict.reason == "THREAT_DETECTED" and verdict.field == "symbol"
    assert guard.is_blocked("198.51.100.7") is not None
    assert any(e.type == "guard.request_rejected" for e in seen)


def test_rate_limit_when_windows_exhausted_then_denied_with_retry(
    validator: tuple[SecurityValidator, list[SecurityEvent]], clock: FixedClock
) -> None:
    guard, _ = validator
    assert guard.rate_limit("alice", "order_submissions").allowed
    assert guard.rate_limit("alice", "order_submissions").allowed
    denied = guard.rate_limit("alice", "order_submissions")
    assert not denied.allowed and denied.retry_after > 0
    assert guard.check_rate_limit("bob", "order_submissions")[0]
    guard.configure_rate_limit("order_submissions", "100/second")
    assert guard.rate_limit("alice", "order_submissions").allowed


def test_client_ip_when_proxy_trusted_then_forwarded_else_peer(
    validator: tuple[SecurityValidator, list[SecurityEvent]],
) -> None:
    guard, _ = validator
    assert guard.client_ip("10.1.2.3", "203.0.113.5, 10.9.9.9") == "203.0.113.5"
    assert guard.client_ip("198.51.100.1", "203.0.113.5") == "198.51.100.1"  # spoofed


def test_ban_and_unban_when_called_then_effective(
    validator: tuple[SecurityValidator, list[SecurityEvent]],
) -> None:
    guard, _ = validator
    guard.ban("192.0.2.1", 60)
    assert guard.is_blocked("192.0.2.1") == pytest.approx(60)
    assert guard.unban("192.0.2.1") is True
    assert guard.is_blocked("192.0.2.1") is None
