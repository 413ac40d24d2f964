"""The background writer: group commit, durable waits, backpressure, and nothing dropped.

Producers append to a bounded in-memory queue and return at once (or, with ``wait=True``,
block until the batch holding their event is committed). One thread drains the queue in
batches, each batch one transaction. A full queue blocks producers instead of dropping
events. If the database fails, the batch stays at the front of the queue and is retried
with backoff; durable waiters are told after ``max_attempts``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from tradeguard.audit.chain import AuditRecord
from tradeguard.errors import AuditWriteFailed
from tradeguard.events import SecurityEvent

_log = logging.getLogger(__name__)

AppendFn = Callable[[Sequence[SecurityEvent]], list[AuditRecord]]
AfterCommit = Callable[[list[AuditRecord]], None]


class _Ticket:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class BatchWriter:
    """Drains queued events into ``append`` in batches on one daemon thread.

    The producer's path takes no lock: a deque append (atomic) and, when the writer sleeps,
    setting an Event. Locks are taken only for backpressure, flush and close.
    """

    def __init__(
        self,
        append: AppendFn,
        *,
        after_commit: AfterCommit | None = None,
        max_queue: int = 100_000,
        max_batch: int = 2_000,
        retry_delay: float = 0.05,
        max_retry_delay: float = 5.0,
        max_attempts: int = 8,
    ) -> None:
        if max_queue < 1 or max_batch < 1:
            raise ValueError("max_queue and max_batch must be positive")
        self._append = append
        self._after_commit = after_commit
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._max_attempts = max_attempts
        self._queue: deque[tuple[SecurityEvent, _Ticket | None]] = deque()
        self._wakeup = threading.Event()
        self._changed = threading.Condition()  # room in the queue, or the writer went idle
        self._in_flight = 0
        self._closing = False
        self._finished = False
        self._stop = threading.Event()
        self.committed = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="tradeguard-audit", daemon=True)
        self._thread.start()

    def submit(
        self, event: SecurityEvent, *, wait: bool = False, timeout: float | None = None
    ) -> None:
        """Queue ``event``; with ``wait``, return only once it is committed."""
        if self._closing:
            raise AuditWriteFailed("the audit writer is closed; the event was not recorded")
        if len(self._queue) >= self._max_queue:
            with self._changed:  # backpressure: wait for room, never drop
                while len(self._queue) >= self._max_queue and not self._closing:
                    self._changed.wait(0.1)
        ticket = _Ticket() if wait else None
        self._queue.append((event, ticket))
        if not self._wakeup.is_set():
            self._wakeup.set()
        if self._finished:  # raced with close(): write it here rather than lose it
            self._drain()
        if ticket is not None:
            if not ticket.done.wait(timeout):
                raise AuditWriteFailed(f"the audit record was not durable within {timeout} s")
            if ticket.error is not None:
                raise AuditWriteFailed(
                    f"the audit record could not be committed: {ticket.error}"
                ) from ticket.error

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is committed; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    @property
    def pending(self) -> int:
        """Events queued or being written."""
        return len(self._queue) + self._in_flight

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting events, write what is queued, stop the thread."""
        self._closing = True
        self._wakeup.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.critical("audit writer did not finish within %s s; %d events pending",
                          timeout, self.pending)  # fmt: skip
            return
        self._finished = True
        self._drain()

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            self._drain()
            if self._closing and not self._queue:
                return

    def _drain(self) -> None:
        while self._queue:
            count = min(len(self._queue), self._max_batch)
            self._in_flight = count
            batch = []
            for _ in range(count):
                try:
                    batch.append(self._queue.popleft())
                except IndexError:  # another drainer (close racing a late submit) took it
                    break
            if batch:
                self._write(batch)
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()

    def _write(self, batch: list[tuple[SecurityEvent, _Ticket | None]]) -> None:
        events = [event for event, _ in batch]
        delay = self._retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                records = self._append(events)
                break
            except Exception as exc:  # the database, not us: keep the events and retry
                self.failures += 1
                _log.error(
                    "audit append of %d events failed (attempt %d): %s", len(events), attempt, exc
                )
                if attempt >= self._max_attempts:
                    for _, ticket in batch:
                        if ticket is not None and not ticket.done.is_set():
                            ticket.error = exc
                            ticket.done.set()
                    if self._closing:
                        _log.critical(
                            "audit writer closing: %d events were NOT recorded", len(events)
                        )
                        return
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_retry_delay)
        self.committed += len(records)
        for _, ticket in batch:
            if ticket is not None:
                ticket.done.set()
        if self._after_commit is not None:
            try:
                self._after_commit(records)
            except Exception:
                _log.exception("audit after-commit hook failed")
