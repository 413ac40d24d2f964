"""IP bans: threshold in a sliding window, escalation to the cap, decay, allow-list, IPv6 /64,
invalid input, manual bans, events, on the in-process store and on a real Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servers import free_port
from tradeguard.clock import FixedClock
from tradeguard.errors import BackendUnavailable, ConfigurationError, IPBlocked
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.guard.bans import BanDecision, BanList, BanStore, MemoryBanStore, ban_key
from tradeguard.guard.bans_redis import RedisBanStore
from tradeguard.storage.redis_client import create_redis_client

IP = "203.0.113.7"


@pytest.fixture(params=["memory", "redis"])
def make_bans(
    request: pytest.FixtureRequest, clock: FixedClock
) -> Iterator[Callable[..., BanList]]:
    """BanList factories sharing one fresh store (and the test's FixedClock)."""
    clients: list[Any] = []
    store: BanStore
    if request.param == "memory":
        store = MemoryBanStore()
    else:
        clients.append(create_redis_client(request.getfixturevalue("redis_url")))
        store = RedisBanStore(clients[0], f"b{uuid.uuid4().hex[:8]}:")

    def build(**kwargs: Any) -> BanList:
        return BanList(store=store, clock=clock, **kwargs)

    yield build
    for client in clients:
        client.close()


def violate(bans: BanList, ip: str, times: int, kind: str = "ratelimit") -> BanDecision | None:
    decisions = [bans.record_violation(ip, kind) for _ in range(times)]
    assert all(d is None for d in decisions[:-1])
    return decisions[-1]


def test_threshold_when_tenth_violation_in_window_then_banned_fifteen_minutes(
    make_bans: Callable[..., BanList],
    clock: FixedClock,
    events: tuple[EventBus, list[SecurityEvent]],
) -> None:
    bus, seen = events
    bans = make_bans(bus=bus)
    assert violate(bans, IP, 9) is None and bans.is_blocked(IP) is None
    clock.advance(30)
    decision = bans.record_violation(IP, "injection")
    assert decision == BanDecision(IP, 900.0, 1, ("ratelimit",) * 9 + ("injection",))
    assert bans.is_blocked(IP) == 900.0
    clock.advance(899.5)
    assert bans.is_blocked(IP) == 0.5
    with pytest.raises(IPBlocked, match=r"203\.0\.113\.7 is banned for another 0 s"):
        bans.enforce(IP)
    clock.advance(0.5)
    assert bans.is_blocked(IP) is None
    bans.enforce(IP)
    (event,) = seen
    assert (event.type, event.severity, event.ip, event.outcome) == (
        "ip.banned",
        "warning",
        IP,
        "banned",
    )
    assert event.details == {
        "duration": 900.0,
        "strikes": 1,
        "reason": "violations",
        "kinds": {"ratelimit": 9, "injection": 1},
    }


def test_escalation_when_banned_again_and_again_then_doubles_to_a_day_cap(
    make_bans: Callable[..., BanList], clock: FixedClock
) -> None:
    bans = make_bans()
    durations = []
    for _ in range(10):
        decision = violate(bans, IP, 10)
        assert decision is not None
        durations.append(decision.duration)
        clock.advance(decision.duration)
    assert durations == [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400, 86400]
    clock.advance(86_400)  # a full day after the last ban ended: strikes are forgotten
    decision = violate(bans, IP, 10)
    assert decision is not None and (decision.duration, decision.strikes) == (900.0, 1)


def test_decay_when_violations_spread_wider_than_window_then_no_ban(
    make_bans: Callable[..., BanList], clock: FixedClock
) -> None:
    bans = make_bans()
    for _ in range(50):  # one violation every 67 s: never 10 within 600 s
        assert bans.record_violation(IP, "login_failure") is None
        clock.advance(67.0)
    assert violate(bans, "198.51.100.1", 9) is None
    clock.advance(600)  # exactly the window: the first nine no longer count
    assert violate(bans, "198.51.100.1", 9) is None
    clock.advance(599.999)  # these nine are still inside
    assert violate(bans, "198.51.100.1", 1) is not None


def test_banned_when_violations_keep_coming_then_ignored_not_escalated(
    make_bans: Callable[..., BanList], clock: FixedClock
) -> None:
    bans = make_bans()
    assert violate(bans, IP, 10) is not None
    assert all(bans.record_violation(IP, "ratelimit") is None for _ in range(30))
    assert bans.is_blocked(IP) == 900.0
    clock.advance(900)
    assert violate(bans, IP, 9) is None  # nothing from the ban period counts


def test_allow_list_when_violating_then_never_banned(
    make_bans: Callable[..., BanList],
) -> None:
    bans = make_bans(allow=("127.0.0.1/32", "::1/128", "10.0.0.0/8"))
    for ip in ("127.0.0.1", "::1", "10.1.2.3", "::ffff:10.9.9.9"):
        assert violate(bans, ip, 50) is None
        assert bans.is_blocked(ip) is None
        with pytest.raises(ValueError, match="allow-list"):
            bans.ban(ip, 60)
    assert violate(bans, "11.0.0.1", 10) is not None  # the neighbour is not allowed


def test_ipv6_when_addresses_share_a_64_then_counted_and_banned_together(
    make_bans: Callable[..., BanList],
) -> None:
    bans = make_bans()
    for i in range(9):
        assert bans.record_violation(f"2001:db8:1:2::{i + 1:x}", "injection") is None
    decision = bans.record_violation("2001:db8:1:2:ffff:ffff:ffff:ffff", "injection")
    assert decision is not None and decision.ip == "2001:db8:1:2::/64"
    assert bans.is_blocked("2001:DB8:1:2:abcd::9") == 900.0
    assert bans.is_blocked("2001:db8:1:3::1") is None  # the next /64 is someone else
    assert ban_key("::ffff:192.0.2.1") == "192.0.2.1"  # IPv4-mapped counts as IPv4
    assert ban_key("fe80::1%eth0") == "fe80::/64"


@pytest.mark.parametrize(
    "ip", ["", "not-an-ip", "1.2.3.4.5", "999.1.1.1", "1.2.3.4/32", "2001:db8::g", "x" * 500]
)
def test_invalid_ip_when_used_then_value_error(ip: str) -> None:
    bans = BanList(clock=FixedClock())
    for call in (lambda: bans.record_violation(ip, "ratelimit"), lambda: bans.is_blocked(ip)):
        with pytest.raises(ValueError, match="invalid IP address"):
            call()
    with pytest.raises(ValueError):
        bans.ban(ip, 60)


def test_invalid_kind_or_settings_when_given_then_rejected() -> None:
    bans = BanList(clock=FixedClock())
    with pytest.raises(ValueError, match="violation kind"):
        bans.record_violation(IP, "")
    with pytest.raises(ValueError, match="at most 366 days"):
        bans.ban(IP, 0)
    with pytest.raises(ConfigurationError, match="threshold >= 1"):
        BanList(threshold=0)
    with pytest.raises(ConfigurationError, match="first_ban <= max_ban"):
        BanList(first_ban=7200, max_ban=3600)
    with pytest.raises(ConfigurationError, match=r"invalid CIDR '10\.0\.0\.0/33'"):
        BanList(allow=("10.0.0.0/33",))


def test_manual_ban_when_unbanned_then_events_and_strikes_kept(
    make_bans: Callable[..., BanList],
    clock: FixedClock,
    events: tuple[EventBus, list[SecurityEvent]],
) -> None:
    bus, seen = events
    bans = make_bans(bus=bus)
    assert bans.ban(IP, 120) == BanDecision(IP, 120.0, 0, ("manual",))
    assert bans.is_blocked(IP) == 120.0
    assert bans.unban(IP) is True and bans.is_blocked(IP) is None
    assert bans.unban(IP) is False
    assert [(e.type, e.severity, e.details.get("reason")) for e in seen] == [
        ("ip.banned", "warning", "manual"),
        ("ip.unbanned", "info", None),
        ("ip.unbanned", "info", None),
    ]
    first = violate(bans, IP, 10)
    assert first is not None and bans.unban(IP)
    second = violate(bans, IP, 10)  # unban lifts the ban, not the record
    assert second is not None and second.duration == 1800.0


def test_concurrent_violations_when_threshold_crossed_then_exactly_one_ban(
    make_bans: Callable[..., BanList],
) -> None:
    bans = make_bans()
    results: list[BanDecision | None] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(5):
            decision = bans.record_violation(IP, "ratelimit")
            with lock:
                results.append(decision)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 40 and [d.strikes for d in results if d] == [1]


def test_memory_store_when_many_addresses_then_bounded(clock: FixedClock) -> None:
    store = MemoryBanStore(max_keys=50)
    bans = BanList(store=store, clock=clock)
    for i in range(500):
        bans.record_violation(f"192.0.2.{i % 250}", "ratelimit")
        bans.record_violation(f"2001:db8:{i:x}::1", "ratelimit")
    assert len(store) == 50


def test_memory_store_when_entries_go_stale_then_swept(clock: FixedClock) -> None:
    store = MemoryBanStore()
    bans = BanList(store=store, clock=clock)
    for i in range(20):
        bans.record_violation(f"192.0.2.{i}", "ratelimit")
    clock.advance(601)
    for _ in range(5):
        bans.record_violation(IP, "ratelimit")
    assert len(store) == 20 + 1 - 10  # two stale entries dropped per call


def test_redis_down_when_recording_then_backend_unavailable(clock: FixedClock) -> None:
    client = create_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    bans = BanList(store=RedisBanStore(client), clock=clock)
    with pytest.raises(BackendUnavailable, match="Redis ban store unavailable"):
        bans.record_violation(IP, "ratelimit")
    with pytest.raises(BackendUnavailable):
        bans.is_blocked(IP)
