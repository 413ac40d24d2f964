"""Alerts to an HTTP endpoint: signed JSON POSTs from a background thread, with retries.

Each alert is POSTed as ``json.dumps(alert.to_dict(), sort_keys=True)`` (UTF-8) with::

    Content-Type: application/json
    X-Tradeguard-Timestamp: <unix seconds, decimal>
    X-Tradeguard-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Tradeguard-Delivery: <random hex id, the same on every retry of one alert>

The timestamp is part of the signed material so that a receiver can refuse replays: check it
is recent and compare signatures in constant time, as :func:`verify_signature` does. Each
attempt is signed afresh with the current time (from the injected clock).

``send`` never blocks: it enqueues on a bounded queue; when the queue is full the OLDEST queued
alert is dropped, counted in ``dropped`` and logged. Connection errors, timeouts, 429 and 5xx
are retried with exponential backoff (``backoff_base * 2**attempt`` capped at ``backoff_max``,
optionally full-jittered with an injected ``random.Random``; a ``Retry-After`` in seconds is
honoured up to the cap); any other status, including redirects, fails at once. Nothing is
lost silently: every give-up and every drop is logged and counted. Logs name the endpoint by
scheme, host and port only: the path and query of a webhook URL often carry a token, and
the secret is never logged.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable

from tradeguard.alerts.sinks import Alert
from tradeguard.alerts.transport import Result, SignedPoster
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import AlertConfigError

_log = logging.getLogger(__name__)


class WebhookSink:
    """POST alerts to ``url``, signed with ``secret``, from a background daemon thread.

    Counters: ``delivered``, ``failed`` (gave up), ``dropped`` (queue overflow or closed) and
    ``retried`` (attempts after the first). ``flush(timeout)`` waits until nothing is queued or
    in flight; ``close(timeout)`` drains, then stops the thread, interrupting backoff waits.
    Plain ``http`` is accepted only for loopback hosts unless ``allow_insecure=True``.
    """

    def __init__(
        self,
        url: str,
        secret: bytes | str,
        *,
        max_queue: int = 1000,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 5.0,
        sleep: Callable[[float], object] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        jitter: random.Random | None = None,
        allow_insecure: bool = False,
    ) -> None:
        if max_queue < 1 or max_retries < 0:
            raise AlertConfigError("webhook max_queue must be >= 1 and max_retries >= 0")
        if backoff_base < 0 or backoff_max < backoff_base:
            raise AlertConfigError("webhook backoff must satisfy 0 <= backoff_base <= backoff_max")
        self._poster = SignedPoster(
            url, secret, timeout=timeout, clock=clock, allow_insecure=allow_insecure
        )
        self._target = self._poster.target
        self._max_queue = max_queue
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._jitter = jitter
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = sleep or self._stop.wait
        self._queue: deque[tuple[bytes, str]] = deque()
        self._cond = threading.Condition()
        self._in_flight = False
        self._closing = False
        self._delivered = self._failed = self._dropped = self._retried = 0
        self._thread = threading.Thread(target=self._run, name="tradeguard-webhook", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"WebhookSink({self._target!r})"

    @property
    def delivered(self) -> int:
        """Alerts the endpoint accepted (2xx)."""
        return self._delivered

    @property
    def failed(self) -> int:
        """Alerts given up on: refused (4xx, 3xx), retries exhausted, or closed mid-retry."""
        return self._failed

    @property
    def dropped(self) -> int:
        """Alerts never attempted: pushed out of a full queue, or sent after close."""
        return self._dropped

    @property
    def retried(self) -> int:
        """Delivery attempts after the first, over all alerts."""
        return self._retried

    @property
    def pending(self) -> int:
        """Alerts queued and not yet picked up."""
        return len(self._queue)

    def send(self, alert: Alert) -> None:
        """Enqueue ``alert`` without blocking; a full queue drops its oldest entry (logged)."""
        body = json.dumps(alert.to_dict(), sort_keys=True).encode()
        label = f"{alert.rule}/{alert.key!r}"
        lost: str | None = None
        why = "queue is full"
        with self._cond:
            if self._closing:
                self._dropped += 1
                lost, why = label, "is closed"
            else:
                if len(self._queue) >= self._max_queue:
                    lost = self._queue.popleft()[1]
                    self._dropped += 1
                self._queue.append((body, label))
                self._cond.notify_all()
            dropped = self._dropped
        if lost is not None:
            _log.warning(
                "webhook %s %s: dropped alert %s (%d dropped so far)",
                self._target,
                why,
                lost,
                dropped,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty and nothing is in flight; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting alerts, deliver what is queued for up to ``timeout``, then stop.

        Alerts still queued after that are dropped and alerts mid-retry abandoned; both are
        counted and logged.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if not self.flush(timeout):
            _log.warning(
                "webhook %s: closing with %d alert(s) undelivered",
                self._target,
                len(self._queue) + self._in_flight,
            )
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(self._poster.timeout + 1.0)
        if self._thread.is_alive():
            _log.warning("webhook %s: delivery thread still busy after close", self._target)

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._stop.is_set() or not self._queue:
                    abandoned = len(self._queue)
                    self._queue.clear()
                    self._dropped += abandoned
                    self._cond.notify_all()
                    break
                body, label = self._queue.popleft()
                self._in_flight = True
            try:
                self._deliver(body, label)
            except Exception:
                with self._cond:
                    self._failed += 1
                _log.exception("webhook %s: delivering alert %s failed", self._target, label)
            finally:
                with self._cond:
                    self._in_flight = False
                    self._cond.notify_all()
        if abandoned:
            _log.warning("webhook %s closed: dropped %d queued alert(s)", self._target, abandoned)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self._backoff_max, self._backoff_base * 2.0 ** min(attempt, 64))
        if self._jitter is not None:
            delay = self._jitter.uniform(0.0, delay)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._backoff_max))
        return delay

    def _deliver(self, body: bytes, label: str) -> None:
        delivery = uuid.uuid4().hex
        attempt = 0
        while True:
            result: Result = self._poster.post(body, delivery)
            if result.outcome == "ok":
                with self._cond:
                    self._delivered += 1
                return
            if result.outcome == "fatal" or attempt >= self._max_retries:
                with self._cond:
                    self._failed += 1
                why = (
                    "not retrying"
                    if result.outcome == "fatal"
                    else f"gave up after {attempt + 1} tries"
                )
                _log.error(
                    "webhook %s: alert %s failed (%s); %s", self._target, label, result.detail, why
                )
                return
            delay = self._delay(attempt, result.retry_after)
            with self._cond:
                self._retried += 1
            _log.warning(
                "webhook %s: alert %s attempt %d failed (%s); retrying in %.2fs",
                self._target,
                label,
                attempt + 1,
                result.detail,
                delay,
            )
            self._sleep(delay)
            if self._stop.is_set():
                with self._cond:
                    self._failed += 1
                _log.error("webhook %s: alert %s abandoned mid-retry on close", self._target, label)
                return
            attempt += 1
