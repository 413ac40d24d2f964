"""Rate limiting: spec parsing, exact GCRA against a rational reference model, multi-window
atomicity, bounded memory, Redis parity, 4 processes on one Redis key, and Redis outages."""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import RedisServer, free_port
from tradeguard.clock import FixedClock
from tradeguard.errors import ConfigurationError, RateLimitExceeded
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.guard.ratelimit import (
    BackendUnavailableDecision,
    MemoryStore,
    RateLimitDecision,
    RateLimiter,
    RateLimitSpec,
    RateLimitStore,
    RedisStore,
    Window,
    load_config,
    parse_rate_limit,
)
from tradeguard.storage.redis_client import create_redis_client

S = 1_000_000  # microseconds

# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "windows"),
    [
        ("10/second;300/minute", [(10, S), (300, 60 * S)]),
        ("5/minute", [(5, 60 * S)]),
        ("100/1s", [(100, S)]),
        ("10/2s", [(10, 2 * S)]),
        ("300/1m", [(300, 60 * S)]),
        ("20/5 minutes", [(20, 300 * S)]),
        ("1/day", [(1, 86_400 * S)]),
        ("3/2 hours", [(3, 7200 * S)]),
        (" 300 / minute ; 10 / SECOND ", [(10, S), (300, 60 * S)]),
        ("7/90s", [(7, 90 * S)]),
    ],
)
def test_parse_when_spec_is_valid_then_exact_windows(
    text: str, windows: list[tuple[int, int]]
) -> None:
    spec = parse_rate_limit(text)
    assert [(w.limit, w.period_us) for w in spec.windows] == windows
    assert parse_rate_limit(spec.signature) == spec  # the signature reads back


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "10/",
        "/second",
        "ten/second",
        "10/fortnight",
        "0/second",
        "10/0s",
        "-1/second",
        "1.5/second",
        "10/second;",
        ";10/second",
        "10/second;20/1s",
        "10/second,300/minute",
        "10/367d",
        "2000000000/second",
        "10 per second",
        "10/second extra",
        "10/2.5s",
    ],
)
def test_parse_when_spec_is_malformed_then_configuration_error_naming_it(text: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed rate limit") as caught:
        parse_rate_limit(text)
    assert repr(text) in str(caught.value)


def test_parse_when_not_a_string_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        parse_rate_limit(10)  # type: ignore[arg-type]


def test_load_config_when_toml_sets_limits_then_merged_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "guard.toml"
    path.write_text(
        '[limits]\norder_submissions = "5/second;100/minute"\nquotes = "50/1s"\n'
        '[fail_mode]\nquotes = "fail_open"\nlogin = "fail_closed"\n[other]\nx = 1\n'
    )
    config = load_config(path)
    assert str(config.limits["order_submissions"]) == "5/second;100/minute"
    assert str(config.limits["login"]) == "5/minute"  # default kept
    assert config.fail_modes["quotes"] == "fail_open"
    limiter = RateLimiter.from_config(config, clock=FixedClock())
    assert limiter.fail_mode("order_submissions") == "fail_closed"
    assert limiter.fail_mode("quotes") == "fail_open"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[limits]\norders = "10/sec0nd"\n', "malformed rate limit '10/sec0nd'"),
        ('[fail_mode]\nlogin = "fail_sometimes"\n', "invalid fail mode 'fail_sometimes'"),
        ('[fail_mode]\nlogn = "fail_open"\n', "'logn', which has no limit"),
        ('[limits]\n"bad action" = "1/second"\n', "invalid rate limit action"),
        ('limits = "1/second"\n', r"\[limits\] must be a table"),
        ("[limits\n", "not valid TOML"),
    ],
)
def test_load_config_when_toml_is_wrong_then_configuration_error_says_what(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "guard.toml"
    path.write_text(body)
    with pytest.raises(ConfigurationError, match=message):
        load_config(path)


def test_load_config_when_file_missing_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read rate limit file"):
        load_config(tmp_path / "absent.toml")


# --- the reference model: textbook GCRA (virtual scheduling) in exact rationals ------------


class Model:
    """Per window: emission interval T = period / limit, tolerance tau = period - T. A cell
    conforms when it arrives no earlier than TAT - tau; a cost-c request is c cells at once,
    all or none."""

    def __init__(self, windows: list[tuple[int, Fraction]]) -> None:
        self.windows = windows
        self.tat: list[Fraction | None] = [None] * len(windows)

    def hit(self, now: Fraction, cost: int) -> tuple[bool, int, Fraction, Fraction]:
        trial: list[Fraction] = []
        retry = Fraction(0)
        for (limit, period), tat in zip(self.windows, self.tat, strict=True):
            t, tau = period / limit, period - period / limit
            tat = now if tat is None else max(tat, now)
            for _ in range(cost - 1):
                tat = max(tat, now) + t
            retry = max(retry, tat - tau - now)  # the last cell's earliest arrival
            trial.append(max(tat, now) + t)
        allowed = retry <= 0
        if allowed:
            self.tat = list(trial)
            retry = Fraction(0)
        remaining, reset = None, Fraction(0)
        for (limit, period), tat in zip(self.windows, self.tat, strict=True):
            t, tau = period / limit, period - period / limit
            ahead = Fraction(0) if tat is None else max(tat - now, Fraction(0))
            left = max(math.floor((tau - ahead) / t) + 1, 0)
            remaining = left if remaining is None else min(remaining, left)
            reset = max(reset, ahead)
        return allowed, remaining or 0, retry, reset


SPECS = [
    "1/second",
    "3/second",
    "10/second;300/minute",
    "7/3s",
    "3/second;4/minute",
    "5/minute",
    "13/7s;40/1m",
]


def steps(spec: RateLimitSpec) -> st.SearchStrategy[list[tuple[int, int]]]:
    """Sequences of (advance in µs, cost): many bursts, some pauses, odd microseconds."""
    longest = max(w.period_us for w in spec.windows)
    advance = st.one_of(
        st.just(0),
        st.integers(0, 2_000),
        st.integers(0, longest // 4),
        st.integers(0, 2 * longest),
    )
    return st.lists(st.tuples(advance, st.integers(1, spec.burst)), max_size=60)


def run_against_model(limiter: RateLimiter, clock: FixedClock, seq: list[tuple[int, int]]) -> None:
    spec = limiter.limits["x"]
    model = Model([(w.limit, Fraction(w.period_us, S)) for w in spec.windows])
    start = clock.now()
    for advance, cost in seq:
        clock.advance(timedelta(microseconds=advance))
        decision = limiter.rate_limit("id", "x", cost)
        now = Fraction((clock.now() - start) // timedelta(microseconds=1), S)
        allowed, remaining, retry, reset = model.hit(now, cost)
        assert decision == RateLimitDecision(allowed, remaining, float(retry), float(reset))
        assert decision.reason == ("ok" if allowed else "rate_limited")


@settings(max_examples=150, deadline=None)
@given(data=st.data(), text=st.sampled_from(SPECS))
def test_gcra_when_random_sequences_then_identical_to_rational_model(
    data: st.DataObject, text: str
) -> None:
    clock = FixedClock()
    limiter = RateLimiter({"x": text}, clock=clock)
    run_against_model(limiter, clock, data.draw(steps(parse_rate_limit(text))))


# --- behaviour on both stores ----------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], RateLimitStore]]:
    """A factory of empty stores: in-process, or on the test Redis (long expiry grace, since
    the FixedClock stands still while real time passes)."""
    if request.param == "memory":
        yield MemoryStore
        return
    url = request.getfixturevalue("redis_url")
    clients: list[Any] = []

    def redis_store() -> RateLimitStore:
        clients.append(create_redis_client(url))
        return RedisStore(clients[-1], f"t{uuid.uuid4().hex[:8]}:", expiry_grace=3600)

    yield redis_store
    for client in clients:
        client.close()


def test_burst_then_steady_rate_when_hammered_then_limit_then_one_per_interval(
    make_store: Callable[[], RateLimitStore], clock: FixedClock
) -> None:
    limiter = RateLimiter({"orders": "10/second"}, store=make_store(), clock=clock)
    burst = [limiter.rate_limit("alice", "orders") for _ in range(12)]
    assert [d.allowed for d in burst] == [True] * 10 + [False] * 2
    assert [d.remaining for d in burst[:10]] == list(range(9, -1, -1))
    assert burst[10] == RateLimitDecision(False, 0, 0.1, 1.0)
    admitted = 0
    for _ in range(5000):  # 5 s in 1 ms steps, trying every millisecond
        clock.advance(0.001)
        admitted += limiter.rate_limit("alice", "orders").allowed
    assert admitted == 50  # one per 100 ms, no more
    assert limiter.rate_limit("bob", "orders").remaining == 9  # identities are separate


def test_multi_window_when_denied_by_one_then_no_window_changes(
    make_store: Callable[[], RateLimitStore], clock: FixedClock
) -> None:
    limiter = RateLimiter({"orders": "10/second;15/minute"}, store=make_store(), clock=clock)
    assert limiter.rate_limit("a", "orders", cost=10).allowed  # minute: 10 of 15
    clock.advance(1)  # the second window is full again
    denied = limiter.rate_limit("a", "orders", cost=10)  # second: yes; minute: no
    assert denied == RateLimitDecision(False, 5, 19.0, 39.0)
    # had the denial touched the second window, this would fail there
    after = limiter.rate_limit("a", "orders", cost=5)
    assert after == RateLimitDecision(True, 0, 0.0, 59.0)
    assert not limiter.rate_limit("a", "orders").allowed
    clock.advance(2.9)  # one minute cell every 4 s; the minute TAT is 60 s, now is 1 s
    assert not limiter.rate_limit("a", "orders").allowed
    clock.advance(0.1)
    assert limiter.rate_limit("a", "orders").allowed


def test_values_when_login_limit_then_retry_remaining_reset_exact(
    make_store: Callable[[], RateLimitStore], clock: FixedClock
) -> None:
    limiter = RateLimiter(store=make_store(), clock=clock)  # defaults: login 5/minute
    first = limiter.rate_limit("carol", "login")
    assert first == RateLimitDecision(True, 4, 0.0, 12.0)
    for _ in range(4):
        limiter.rate_limit("carol", "login")
    clock.advance(2.5)
    assert limiter.rate_limit("carol", "login") == RateLimitDecision(False, 0, 9.5, 57.5)
    assert limiter.check_rate_limit("carol", "login") == (
        False,
        "rate limit exceeded for login: retry in 9.5 s",
    )
    clock.advance(9.5)
    assert limiter.rate_limit("carol", "login") == RateLimitDecision(True, 0, 0.0, 60.0)
    clock.advance(60)
    assert limiter.rate_limit("carol", "login") == RateLimitDecision(True, 4, 0.0, 12.0)


def test_identity_when_long_or_not_a_string_then_hashed_or_refused(
    make_store: Callable[[], RateLimitStore], clock: FixedClock
) -> None:
    limiter = RateLimiter({"x": "1/minute"}, store=make_store(), clock=clock)
    long = "u" * 500  # stored under its SHA-256: keys stay bounded
    assert limiter.rate_limit(long, "x").allowed
    assert not limiter.rate_limit(long, "x").allowed
    assert limiter.rate_limit(long + "v", "x").allowed
    for wrong in (b"bytes", None, 42):
        with pytest.raises(TypeError, match="identity must be a str"):
            limiter.rate_limit(wrong, "x")  # type: ignore[arg-type]


def test_reconfigure_when_spec_changes_then_state_starts_afresh(
    make_store: Callable[[], RateLimitStore], clock: FixedClock
) -> None:
    limiter = RateLimiter({"x": "1/minute"}, store=make_store(), clock=clock)
    assert limiter.rate_limit("a", "x").allowed and not limiter.rate_limit("a", "x").allowed
    limiter.configure_rate_limit("x", "2/minute")
    assert limiter.rate_limit("a", "x") == RateLimitDecision(True, 1, 0.0, 30.0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), text=st.sampled_from(SPECS))
def test_redis_store_when_random_sequences_then_same_as_model_and_memory(
    redis_server: RedisServer, data: st.DataObject, text: str
) -> None:
    seq = data.draw(steps(parse_rate_limit(text)))
    client = create_redis_client(redis_server.url)
    try:
        store = RedisStore(client, f"h{uuid.uuid4().hex[:8]}:", expiry_grace=3600)
        clock = FixedClock()
        run_against_model(RateLimiter({"x": text}, store=store, clock=clock), clock, seq)
    finally:
        client.close()


def test_redis_store_when_deciding_then_one_evalsha_round_trip_each(
    redis_url: str, clock: FixedClock
) -> None:
    client = create_redis_client(redis_url)
    limiter = RateLimiter(store=RedisStore(client), clock=clock)
    limiter.rate_limit("warm", "order_submissions")  # loads the script once
    client_commands: list[str] = []
    watcher = create_redis_client(redis_url)  # its own connection: no handshakes below
    with watcher.monitor() as monitor:  # MONITOR tells client commands from a script's own
        for i in range(100):
            limiter.rate_limit(f"u{i % 7}", "order_submissions")  # two windows, one script
        client.echo("done")
        while (entry := monitor.next_command())["command"] != "ECHO done":
            if entry["client_type"] != "lua":
                client_commands.append(entry["command"].split()[0])
    assert client_commands == ["EVALSHA"] * 100
    watcher.close()
    spec = limiter.limits["order_submissions"]
    for key in RedisStore(client).keys_for("order_submissions", "u0", spec):
        assert 0 < client.pttl(key) <= 60_000 + 1_000  # keys expire by themselves
    client.close()


# --- memory store bounds ----------------------------------------------------------------------


def test_memory_store_when_many_identities_then_bounded_by_lru(clock: FixedClock) -> None:
    store = MemoryStore(max_keys=100)
    limiter = RateLimiter({"x": "5/second"}, store=store, clock=clock)
    for i in range(1000):
        limiter.rate_limit(f"user{i}", "x")
    assert len(store) == 100 and store.evictions == 900
    assert limiter.rate_limit("user999", "x").remaining == 3  # the recent ones are kept


def test_memory_store_when_entries_expire_then_swept_and_purged(clock: FixedClock) -> None:
    store = MemoryStore()
    limiter = RateLimiter({"x": "5/second"}, store=store, clock=clock)
    for i in range(50):
        limiter.rate_limit(f"user{i}", "x")
    clock.advance(0.2)  # every TAT was start + 0.2 s: all fifty are now the same as fresh
    for i in range(13):
        limiter.rate_limit(f"late{i}", "x")
    assert len(store) == 63  # no sweep yet: it runs on every 32nd locked call
    limiter.rate_limit("late13", "x")  # the 64th
    assert len(store) == 14
    assert store.purge(10**18) == 14 and len(store) == 0


def test_memory_store_when_hammered_from_threads_then_exact_count(clock: FixedClock) -> None:
    limiter = RateLimiter({"x": "1000/second;5000/minute"}, clock=clock)
    admitted: list[int] = []

    def hammer() -> None:
        admitted.append(sum(limiter.rate_limit("shared", "x").allowed for _ in range(500)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 1000 and limiter.allowed == 1000 and limiter.denied == 3000


class Interloper:
    """A lock that lets another caller commit between a store's read and its commit."""

    def __init__(self, before_acquire: Callable[[], object]) -> None:
        self._lock = threading.Lock()
        self._hook: Callable[[], object] | None = before_acquire

    def acquire(self) -> bool:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.mark.parametrize(("text", "reset"), [("3/second", 1.0), ("3/second;10/minute", 18.0)])
def test_memory_store_when_another_commit_wins_the_race_then_decided_again(
    text: str, reset: float, clock: FixedClock
) -> None:
    store = MemoryStore()
    limiter = RateLimiter({"x": text}, store=store, clock=clock)
    assert limiter.rate_limit("a", "x").allowed and limiter.rate_limit("a", "x").allowed
    rival: list[RateLimitDecision] = []
    store._lock = Interloper(lambda: rival.append(limiter.rate_limit("a", "x")))  # type: ignore[assignment]
    late = limiter.rate_limit("a", "x")  # read two used, saw room for a third: the rival took it
    assert rival == [RateLimitDecision(True, 0, 0.0, reset)]
    assert late == RateLimitDecision(False, 0, 1 / 3, reset)


# --- limiter API --------------------------------------------------------------------------------


def test_unknown_action_when_limited_then_configuration_error_naming_it(clock: FixedClock) -> None:
    limiter = RateLimiter(clock=clock)
    with pytest.raises(ConfigurationError, match="'withdrawals'"):
        limiter.rate_limit("a", "withdrawals")
    limiter.configure_rate_limit("withdrawals", "1/day", fail_mode="fail_closed")
    assert limiter.rate_limit("a", "withdrawals").allowed
    assert not limiter.rate_limit("a", "withdrawals").allowed


@pytest.mark.parametrize("cost", [0, -1, 1.0, True, 11])
def test_cost_when_invalid_or_above_burst_then_value_error(cost: Any, clock: FixedClock) -> None:
    limiter = RateLimiter(clock=clock)
    with pytest.raises(ValueError, match="cost"):
        limiter.rate_limit("a", "order_submissions", cost)


def test_events_when_denied_then_warning_throttled_and_counted(
    events: tuple[EventBus, list[SecurityEvent]], clock: FixedClock
) -> None:
    bus, seen = events
    limiter = RateLimiter({"login": "2/minute"}, clock=clock, bus=bus)
    for _ in range(5):
        limiter.rate_limit("mallory", "login")
    assert len(seen) == 1  # allowed decisions publish nothing; denials once per second
    event = seen[0]
    assert (event.type, event.severity, event.actor, event.subject) == (
        "ratelimit.exceeded",
        "warning",
        "mallory",
        "login",
    )
    assert event.details["retry_after"] == 30.0 and event.details["limit"] == "2/minute"
    clock.advance(1)
    limiter.rate_limit("mallory", "login")
    assert len(seen) == 2 and seen[1].details["suppressed"] == 2
    assert limiter.stats["allowed"] == 2 and limiter.denied == 4
    with pytest.raises(RateLimitExceeded, match=r"retry in 29\.0 s") as caught:
        limiter.enforce("mallory", "login")
    assert caught.value.retry_after == 29.0


# --- Redis down -----------------------------------------------------------------------------


def dead_redis_store() -> RedisStore:
    return RedisStore(create_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5))


def test_redis_down_when_fail_closed_then_denied_with_critical_event(
    events: tuple[EventBus, list[SecurityEvent]], clock: FixedClock
) -> None:
    bus, seen = events
    limiter = RateLimiter(store=dead_redis_store(), clock=clock, bus=bus, backoff=2.0)
    decision = limiter.rate_limit("alice", "order_submissions")
    assert decision == BackendUnavailableDecision(False, 0, 2.0, 2.0)
    assert [(e.type, e.severity, e.outcome) for e in seen] == [
        ("ratelimit.backend_unavailable", "critical", "denied")
    ]
    assert "ConnectionError" in seen[0].details["error"]
    clock.advance(0.5)  # within the backoff: Redis is not tried again, no new event
    assert limiter.check_rate_limit("alice", "login") == (
        False,
        "rate limiting unavailable for login (fails closed): retry in 1.5 s",
    )
    assert len(seen) == 1 and limiter.stats["backend_errors"] == 1
    clock.advance(1.5)  # tried again: a second event
    assert not limiter.rate_limit("alice", "order_submissions").allowed
    assert len(seen) == 2 and limiter.stats["failed_closed"] == 3


def test_redis_down_when_fail_open_then_local_limits_with_warning_event(
    events: tuple[EventBus, list[SecurityEvent]], clock: FixedClock
) -> None:
    bus, seen = events
    limiter = RateLimiter(
        {"api_requests": "3/second"}, store=dead_redis_store(), clock=clock, bus=bus
    )
    assert limiter.fail_mode("api_requests") == "fail_open"  # the default for api_requests
    decisions = [limiter.rate_limit("bot", "api_requests") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]  # still limited
    assert [(e.type, e.severity) for e in seen if e.type.endswith("unavailable")] == [
        ("ratelimit.backend_unavailable", "warning")
    ]
    assert limiter.stats["failed_open"] == 4


def test_redis_back_when_store_answers_again_then_recovered_event(
    redis_url: str, events: tuple[EventBus, list[SecurityEvent]], clock: FixedClock
) -> None:
    bus, seen = events

    class Flaky:
        def __init__(self) -> None:
            self.dead, self.live = dead_redis_store(), RedisStore(create_redis_client(redis_url))
            self.down = True

        def acquire(self, *args: Any) -> RateLimitDecision:
            return (self.dead if self.down else self.live).acquire(*args)

    store = Flaky()
    limiter = RateLimiter(store=store, clock=clock, bus=bus)
    assert not limiter.rate_limit("a", "login").allowed
    store.down = False
    clock.advance(1)
    assert limiter.rate_limit("a", "login").allowed
    assert [e.type for e in seen] == [
        "ratelimit.backend_unavailable",
        "ratelimit.backend_recovered",
    ]


# --- four processes, one key, real time --------------------------------------------------------


def _hammer(url: str, prefix: str, ready: Any, attempts: int, out: Any) -> None:
    client = create_redis_client(url)
    # one frozen instant in every process: no cell refills however slow the machine is
    frozen = FixedClock(datetime(2026, 1, 5, 14, 30, tzinfo=UTC))
    limiter = RateLimiter({"orders": "50/minute"}, store=RedisStore(client, prefix), clock=frozen)
    limiter.rate_limit("warm-up", "orders")  # connect and load the script before the start
    ready.wait(60)  # all four start together, after their imports
    began = time.time()
    admitted = sum(limiter.rate_limit("shared", "orders").allowed for _ in range(attempts))
    out.put((admitted, began, time.time()))
    client.close()


@pytest.mark.slow
def test_four_processes_when_hammering_one_key_then_exactly_fifty_admitted(
    redis_url: str,
) -> None:
    context = multiprocessing.get_context("spawn")
    out, ready = context.Queue(), context.Barrier(4)
    prefix = f"mp{uuid.uuid4().hex[:6]}:"
    workers = [
        context.Process(target=_hammer, args=(redis_url, prefix, ready, 150, out)) for _ in range(4)
    ]
    for process in workers:
        process.start()
    results = [out.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(30)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    assert sum(admitted for admitted, _, _ in results) == 50  # 600 attempts, one burst of 50


def test_window_str_when_odd_period_then_seconds() -> None:
    assert str(Window(7, 90 * S)) == "7/90s" and str(Window(1, 7200 * S)) == "1/2h"
