"""The webhook sink against a real HTTP server on loopback: signing, retries, queue, shutdown."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tradeguard.alerts import (
    DEFAULT_RULES,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Alert,
    AlertConfigError,
    AlertEngine,
    WebhookSink,
    verify_signature,
)
from tradeguard.clock import FixedClock
from tradeguard.events import EventBus, SecurityEvent

SECRET = b"whsec-0123456789abcdef-not-logged"
PATH_TOKEN = "T0KEN-in-the-path-4f9a"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def alert(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class HookServer:
    """A ThreadingHTTPServer on 127.0.0.1 that records POSTs and answers from a script."""

    listen: bool = True
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    gate: threading.Event | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.received.append(Received(dict(self.headers.items()), body))
                if owner.gate is not None:
                    owner.gate.wait(10)
                status, headers = owner.script.pop(0) if owner.script else (200, {})
                self.send_response(status)
                for name, value in {"Content-Length": "2", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        # Bound but not yet listening: connections are refused until start().
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.httpd.server_bind()
        self.port = self.httpd.server_address[1]
        self.thread: threading.Thread | None = None
        if self.listen:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{PATH_TOKEN}"

    def start(self) -> None:
        self.httpd.server_activate()
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def fail_with(self, *statuses: int, **headers: str) -> None:
        self.script.extend((status, dict(headers)) for status in statuses)

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join(10)
        self.httpd.server_close()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Bounded polling for something a background thread does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background thread"
        time.sleep(0.005)


@pytest.fixture
def server() -> Iterator[HookServer]:
    hook = HookServer()
    yield hook
    hook.stop()


@pytest.fixture
def delays() -> list[float]:
    """What the sinks asked to sleep for; the recording sleep returns at once."""
    return []


@pytest.fixture
def make_sink(
    server: HookServer, clock: FixedClock, delays: list[float]
) -> Iterator[Callable[..., WebhookSink]]:
    sinks: list[WebhookSink] = []

    def build(**kwargs: Any) -> WebhookSink:
        options: dict[str, Any] = {"clock": clock, "sleep": delays.append, "timeout": 5.0}
        options.update(kwargs)
        sink = WebhookSink(options.pop("url", server.url), options.pop("secret", SECRET), **options)
        sinks.append(sink)
        return sink

    yield build
    if server.gate is not None:
        server.gate.set()
    for sink in sinks:
        sink.close(timeout=2.0)


def make_alert(key: str = "k0") -> Alert:
    now = FixedClock().now()
    return Alert(
        rule="auth.login_failures",
        key=key,
        severity="warning",
        count=5,
        threshold=5,
        window_seconds=300.0,
        first_seen=now - timedelta(minutes=2),
        last_seen=now,
        description="password guessing?",
        group_by="actor",
        event_types=("auth.login_failed",),
        subjects=("login",),
    )


def test_webhook_when_server_accepts_then_body_is_signed_json(
    server: HookServer, make_sink: Callable[..., WebhookSink], clock: FixedClock
) -> None:
    sink = make_sink()
    alert = make_alert()
    sink.send(alert)
    assert sink.flush(10)
    assert (sink.delivered, sink.failed, sink.retried, sink.dropped) == (1, 0, 0, 0)
    [got] = server.received
    assert got.headers["Content-Type"] == "application/json"
    assert got.alert == alert.to_dict()
    assert got.body == json.dumps(alert.to_dict(), sort_keys=True).encode()
    timestamp = got.headers[TIMESTAMP_HEADER]
    assert timestamp == str(int(clock.now().timestamp()))
    expected = hmac.new(SECRET, timestamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest("sha256=" + expected, got.headers[SIGNATURE_HEADER])
    now = clock.now().timestamp()
    signature = got.headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, got.body, timestamp, signature, now=now)
    assert not verify_signature(SECRET, got.body + b" ", timestamp, signature, now=now)
    assert not verify_signature(b"other-secret", got.body, timestamp, signature, now=now)
    assert not verify_signature(SECRET, got.body, timestamp, signature, now=now + 301)
    assert not verify_signature(SECRET, got.body, "not-a-time", signature, now=now)
    assert len(got.headers[DELIVERY_HEADER]) == 32


def test_webhook_when_server_fails_then_recovers_then_delivered_after_retries(
    server: HookServer, make_sink: Callable[..., WebhookSink], delays: list[float]
) -> None:
    server.fail_with(500, 500, 503, 502, 500, 500)
    sink = make_sink(max_retries=8, backoff_base=0.5, backoff_max=4.0)
    sink.send(make_alert())
    assert sink.flush(10)
    assert (sink.delivered, sink.failed, sink.retried) == (1, 0, 6)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(server.received) == 7
    assert len({r.headers[DELIVERY_HEADER] for r in server.received}) == 1
    for request in server.received:
        assert request.body == server.received[0].body
        assert verify_signature(
            SECRET,
            request.body,
            request.headers[TIMESTAMP_HEADER],
            request.headers[SIGNATURE_HEADER],
            now=int(request.headers[TIMESTAMP_HEADER]),
        )


def test_webhook_when_429_with_retry_after_then_waits_that_long(
    server: HookServer, make_sink: Callable[..., WebhookSink], delays: list[float]
) -> None:
    server.fail_with(429, **{"Retry-After": "3"})
    sink = make_sink(backoff_base=0.5, backoff_max=10.0)
    sink.send(make_alert())
    assert sink.flush(10)
    assert delays == [3.0]
    assert (sink.delivered, sink.retried) == (1, 1)


@pytest.mark.parametrize("status", [400, 401, 404, 302])
def test_webhook_when_client_error_or_redirect_then_not_retried(
    server: HookServer,
    make_sink: Callable[..., WebhookSink],
    delays: list[float],
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    server.fail_with(status, Location="http://127.0.0.1:9/elsewhere")
    sink = make_sink()
    sink.send(make_alert())
    assert sink.flush(10)
    assert (sink.delivered, sink.failed, sink.retried) == (0, 1, 0)
    assert len(server.received) == 1
    assert delays == []
    assert f"HTTP {status}" in caplog.text and "not retrying" in caplog.text


def test_webhook_when_retries_exhausted_then_failed_and_logged(
    server: HookServer,
    make_sink: Callable[..., WebhookSink],
    delays: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.fail_with(503, 503, 503, 503)
    sink = make_sink(max_retries=2)
    sink.send(make_alert())
    assert sink.flush(10)
    assert (sink.delivered, sink.failed, sink.retried) == (0, 1, 2)
    assert delays == [0.5, 1.0]
    assert len(server.received) == 3
    assert "gave up after 3 tries" in caplog.text


def test_webhook_when_server_down_then_started_then_delivered(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    down = HookServer(listen=False)
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            down.start()

    try:
        with WebhookSink(down.url, SECRET, clock=clock, sleep=sleep) as sink:
            sink.send(make_alert())
            assert sink.flush(10)
            assert (sink.delivered, sink.failed, sink.retried) == (1, 0, 2)
    finally:
        down.stop()
    assert len(down.received) == 1
    assert "ConnectionRefusedError" in caplog.text


def test_webhook_when_jitter_seeded_then_delays_are_deterministic_and_capped(
    clock: FixedClock,
) -> None:
    down = HookServer(listen=False)
    delays: list[float] = []
    try:
        with WebhookSink(
            down.url,
            SECRET,
            clock=clock,
            sleep=delays.append,
            max_retries=4,
            backoff_max=1.5,
            jitter=random.Random(7),
        ) as sink:
            sink.send(make_alert())
            assert sink.flush(10)
            assert (sink.failed, sink.retried) == (1, 4)
    finally:
        down.stop()
    reference = random.Random(7)
    assert delays == [reference.uniform(0, cap) for cap in (0.5, 1.0, 1.5, 1.5)]


def test_webhook_when_queue_overflows_then_oldest_dropped_and_send_never_blocks(
    server: HookServer,
    make_sink: Callable[..., WebhookSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.gate = threading.Event()
    sink = make_sink(max_queue=3, timeout=30.0)
    sink.send(make_alert("k0"))
    wait_until(lambda: len(server.received) == 1)  # the worker is stuck in the first POST
    started = time.monotonic()
    for i in range(1, 11):
        sink.send(make_alert(f"k{i}"))
    assert time.monotonic() - started < 1.0
    assert (sink.dropped, sink.pending, sink.delivered) == (7, 3, 0)
    assert caplog.text.count("queue is full") == 7
    server.gate.set()
    assert sink.flush(10)
    assert sink.delivered == 4
    assert [r.alert["key"] for r in server.received] == ["k0", "k8", "k9", "k10"]


def test_webhook_when_closed_during_backoff_then_close_interrupts_the_wait(
    server: HookServer, make_sink: Callable[..., WebhookSink]
) -> None:
    server.fail_with(*[500] * 10)
    sink = make_sink(sleep=None, backoff_base=30.0, backoff_max=30.0)
    sink.send(make_alert())
    wait_until(lambda: sink.retried == 1)  # the worker now waits 30 s before retrying
    started = time.monotonic()
    sink.close(timeout=0.1)
    assert time.monotonic() - started < 5.0
    assert (sink.delivered, sink.failed) == (0, 1)
    assert len(server.received) == 1


def test_webhook_when_closed_then_queue_drained_and_later_sends_dropped_loudly(
    server: HookServer,
    make_sink: Callable[..., WebhookSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = make_sink()
    for i in range(3):
        sink.send(make_alert(f"k{i}"))
    sink.close(timeout=10)
    assert sink.delivered == 3
    sink.send(make_alert("late"))
    assert sink.dropped == 1
    assert "is closed" in caplog.text and "'late'" in caplog.text


def test_webhook_when_failing_then_logs_hold_neither_secret_nor_url_path(
    server: HookServer,
    make_sink: Callable[..., WebhookSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fail_with(500, 403)
    sink = make_sink()
    sink.send(make_alert())
    assert sink.flush(10)
    assert sink.failed == 1
    assert "HTTP 500" in caplog.text and "HTTP 403" in caplog.text
    for text in (caplog.text, repr(sink)):
        assert SECRET.decode() not in text
        assert PATH_TOKEN not in text
    assert f"127.0.0.1:{server.port}" in repr(sink)


def test_webhook_when_engine_alerts_then_endpoint_receives_it(
    server: HookServer, make_sink: Callable[..., WebhookSink], clock: FixedClock
) -> None:
    sink = make_sink()
    bus = EventBus(clock=clock)
    bus.subscribe(AlertEngine(DEFAULT_RULES, [sink], clock=clock))
    bus.publish(SecurityEvent("killswitch.engaged", actor="ops", details={"token": "t0p"}))
    assert sink.flush(10)
    [got] = server.received
    assert got.alert["rule"] == "killswitch.engaged"
    assert got.alert["severity"] == "critical"
    assert b"t0p" not in got.body


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"http://example.com/hooks/{PATH_TOKEN}", "must use https"),
        (f"http://10.0.0.5:8080/hooks/{PATH_TOKEN}", "must use https"),
        (f"ftp://127.0.0.1/hooks/{PATH_TOKEN}", "http"),
        (f"https:///hooks/{PATH_TOKEN}", "with a host"),
        (f"https://user:pw@example.com/hooks/{PATH_TOKEN}", "credentials"),
        (f"https://example.com:99999/hooks/{PATH_TOKEN}", "invalid port"),
        (f"/hooks/{PATH_TOKEN}", "http"),
    ],
)
def test_webhook_when_url_unsafe_then_refused_without_echoing_it(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        WebhookSink(url, SECRET)
    assert PATH_TOKEN not in str(caught.value)
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "insecure"),
    [
        ("https://example.com/hook", False),
        ("http://localhost:1/hook", False),
        ("http://127.0.0.2:1/hook", False),
        ("http://[::1]:1/hook", False),
        ("http://example.com/hook", True),
    ],
)
def test_webhook_when_url_acceptable_then_built(url: str, insecure: bool) -> None:
    sink = WebhookSink(url, "a str secret", allow_insecure=insecure)
    sink.close(timeout=1)
    assert (sink.delivered, sink.failed, sink.dropped) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": b""}, "secret"),
        ({"max_queue": 0}, "max_queue"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_base": 2.0, "backoff_max": 1.0}, "backoff"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_webhook_when_options_invalid_then_refused(kwargs: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {"secret": SECRET, **kwargs}
    with pytest.raises(AlertConfigError, match=message):
        WebhookSink("https://example.com/hook", options.pop("secret"), **options)
