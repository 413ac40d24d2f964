"""The background writer: group commit, durable waits, backpressure, and nothing dropped.

Producers append to a bounded in-memory queue and return at once (or, with ``wait=True``,
block until the batch holding their event is committed). One thread drains the queue in
batches, each batch one transaction; once woken it lingers a few milliseconds to gather a
batch, unless something is urgent (a durable waiter, flush, close, a full queue). A full
queue blocks producers instead of dropping events. If the database fails, the batch is
kept and retried with backoff; durable waiters are told after ``max_attempts``.
"""

from __future__ import annotations

import logging
import queue as queues
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from tradeguard.errors import AuditWriteFailed
from tradeguard.events import SecurityEvent

_log = logging.getLogger(__name__)

T = TypeVar("T")
AppendFn = Callable[[Sequence[SecurityEvent]], Sequence[T]]
PrepareFn = Callable[[Sequence[SecurityEvent]], Sequence[SecurityEvent]]
AfterCommit = Callable[[Sequence[T]], None]


class _Ticket:
    """A queued event whose producer waits until it is committed."""

    __slots__ = ("done", "error", "event")

    def __init__(self, event: SecurityEvent) -> None:
        self.event = event
        self.done = threading.Event()
        self.error: BaseException | None = None


class BatchWriter(Generic[T]):
    """Drains queued events into ``append`` in batches on one daemon thread.

    The producer's path takes no lock: a deque append (atomic) and, only when the writer
    sleeps, setting an Event. Locks are taken only for backpressure, flush and close.
    ``after_commit`` gets what ``append`` returned for each committed batch.

    With ``prepare``, batches are pipelined: the writer thread hands each batch, as
    ``prepare`` returned it, to a second thread that calls ``append``, and prepares the next
    batch meanwhile (``prepare`` does the CPU work, ``append`` waits on the database with
    the GIL released). Batches are committed one at a time, in the order they were taken.
    """

    def __init__(
        self,
        append: AppendFn[T],
        *,
        prepare: PrepareFn | None = None,
        after_commit: AfterCommit[T] | None = None,
        max_queue: int = 100_000,
        max_batch: int = 8_192,
        retry_delay: float = 0.05,
        max_retry_delay: float = 5.0,
        max_attempts: int = 8,
        linger: float = 0.005,
    ) -> None:
        if max_queue < 1 or max_batch < 1 or linger < 0:
            raise ValueError("max_queue and max_batch must be positive, linger not negative")
        self._append = append
        self._prepare = prepare
        self._after_commit = after_commit
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._max_attempts = max_attempts
        self._linger = linger
        # a plain event, or a _Ticket around one that a producer waits on
        self._queue: deque[SecurityEvent | _Ticket] = deque()
        self._wakeup = threading.Event()
        self._sleeping = False  # set by the writer before it waits; producers then wake it
        self._urgent = False  # someone waits for a commit: no lingering
        self._changed = threading.Condition()  # room in the queue, or the writer went idle
        self._in_flight = 0
        # one drainer at a time (the writer thread, or a durable caller committing its own
        # batch), so batches are taken from the queue and committed in order
        self._drain_lock = threading.Lock()
        self._taken: list[SecurityEvent | _Ticket] = []
        self._closing = False
        self._finished = False
        self._stop = threading.Event()
        self.committed = 0
        self.failures = 0
        # prepared batches on their way to the committer thread (pipelined writing only)
        self._handoff: queues.Queue[tuple[Sequence[SecurityEvent], list[_Ticket]] | None] = (
            queues.Queue(maxsize=1)
        )
        self._committer: threading.Thread | None = None
        if prepare is not None:
            self._committer = threading.Thread(
                target=self._commit_loop, name="tradeguard-audit-commit", daemon=True
            )
            self._committer.start()
        self._thread = threading.Thread(target=self._run, name="tradeguard-audit", daemon=True)
        self._thread.start()

    def offer(self, event: SecurityEvent) -> None:
        """Queue ``event`` for the next batch and return (the hot path; blocks only when full)."""
        if self._closing:
            raise AuditWriteFailed("the audit writer is closed; the event was not recorded")
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._wait_for_room()
        queue.append(event)
        if self._sleeping:
            self._sleeping = False
            self._wakeup.set()
        if self._finished:  # raced with close(): write it here rather than lose it
            self._drain()

    def submit(
        self, event: SecurityEvent, *, wait: bool = False, timeout: float | None = None
    ) -> None:
        """Queue ``event``; with ``wait``, return only once it is committed."""
        if not wait:
            self.offer(event)
            return
        if self._closing:
            raise AuditWriteFailed("the audit writer is closed; the event was not recorded")
        if len(self._queue) >= self._max_queue:
            self._wait_for_room()
        ticket = _Ticket(event)
        self._queue.append(ticket)
        if not self._commit_here():
            self._hurry()
        if self._finished:
            self._drain()
        if not ticket.done.wait(timeout):
            raise AuditWriteFailed(f"the audit record was not durable within {timeout} s")
        if ticket.error is not None:
            raise AuditWriteFailed(
                f"the audit record could not be committed: {ticket.error}"
            ) from ticket.error

    def _commit_here(self) -> bool:
        """Commit what is queued on the caller's thread, if nobody else is writing.

        A durable waiter alone would otherwise wait for two thread switches (waking the
        writer, and being woken by it) around its commit. Only when the queue fits in one
        batch (the caller's event is in it) and the database answers at the first
        attempt: a failed batch goes back to the front of the queue, in order, for the
        writer thread to retry with backoff. Returns whether the batch was committed.
        """
        if len(self._queue) > self._max_batch or not self._drain_lock.acquire(blocking=False):
            return False
        try:
            events, tickets = self._take()
            if not events:
                return True  # another drainer committed it already
            try:
                written = self._append(events)
            except BaseException as exc:  # back to the front of the queue, never lost
                self._queue.extendleft(reversed(self._taken))
                if not isinstance(exc, Exception):
                    self._hurry()
                    raise
                self.failures += 1
                _log.warning("audit append of %d events failed on the caller's thread, "
                             "the writer retries it: %s", len(events), exc)  # fmt: skip
                return False
            self._committed(written, tickets)
            return True
        finally:
            self._settled(len(self._taken))
            self._taken = []
            self._drain_lock.release()

    def _hurry(self) -> None:
        """Wake the writer and have it commit at once."""
        self._urgent = True
        self._sleeping = False
        self._wakeup.set()

    def _wait_for_room(self) -> None:
        self._hurry()
        with self._changed:  # backpressure: wait for room, never drop
            while len(self._queue) >= self._max_queue and not self._closing:
                self._changed.wait(0.1)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is committed; False on timeout."""
        self._hurry()
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
        self._drain()  # anything a late producer queued (no pipeline from here on)
        if self._committer is not None:
            self._handoff.put(None)
            self._committer.join(timeout)

    def _run(self) -> None:
        queue = self._queue
        while True:
            self._sleeping = True  # before looking at the queue: a producer after this wakes us
            if not queue and not self._closing:
                self._wakeup.wait()
            self._sleeping = False
            self._wakeup.clear()
            if (
                self._linger
                and not (self._urgent or self._closing)
                and len(queue) < self._max_batch
            ):
                # Group commit: gather a batch for a moment (an urgent request cuts it short)
                # rather than taking the GIL from a burst of publishes every few events.
                self._wakeup.wait(self._linger)
                self._wakeup.clear()
            self._urgent = False
            self._drain()
            if self._closing and not queue:
                return

    def _take(self) -> tuple[list[SecurityEvent], list[_Ticket]]:
        """Up to one batch from the queue (drain lock held); kept in ``_taken`` as taken."""
        queue = self._queue
        take = queue.popleft
        count = min(len(queue), self._max_batch)
        with self._changed:
            self._in_flight += count
        taken: list[SecurityEvent | _Ticket] = []
        events: list[SecurityEvent] = []
        tickets: list[_Ticket] = []
        add = events.append
        try:
            for _ in range(count):
                item = take()
                taken.append(item)
                if type(item) is _Ticket:
                    tickets.append(item)
                    item = item.event
                add(item)  # type: ignore[arg-type]
        except IndexError:  # pragma: no cover - only drainers pop, under the drain lock
            with self._changed:
                self._in_flight -= count - len(taken)
        self._taken = taken
        return events, tickets

    def _settled(self, count: int) -> None:
        """``count`` taken events are committed (or, closing, given up): wake flush()."""
        with self._changed:
            self._in_flight -= count
            self._changed.notify_all()

    def _drain(self) -> None:
        queue = self._queue
        with self._drain_lock:
            prepare = self._prepare
            if self._committer is None or prepare is None or self._finished:
                while queue:
                    events, tickets = self._take()
                    self._taken = []
                    if events:
                        self._write(events, tickets)
                    self._settled(len(events))
                return
            while queue:
                events, tickets = self._take()
                self._taken = []
                batch: Sequence[SecurityEvent] = events
                try:
                    batch = prepare(events)
                except Exception:  # append does it all again on its own
                    _log.exception("audit: preparing a batch failed")
                self._handoff.put((batch, tickets))  # waits while the committer is busy
            self._handoff.join()  # everything handed over is committed: nothing in flight

    def _commit_loop(self) -> None:
        handoff = self._handoff
        while True:
            item = handoff.get()
            try:
                if item is None:
                    return
                batch, tickets = item
                self._write(batch, tickets)
                self._settled(len(batch))
            finally:
                handoff.task_done()

    def _write(self, events: Sequence[SecurityEvent], tickets: list[_Ticket]) -> None:
        delay = self._retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                written = self._append(events)
                break
            except Exception as exc:  # the database, not us: keep the events and retry
                self.failures += 1
                _log.error(
                    "audit append of %d events failed (attempt %d): %s", len(events), attempt, exc
                )
                if attempt >= self._max_attempts:
                    for ticket in tickets:
                        if not ticket.done.is_set():
                            ticket.error = exc
                            ticket.done.set()
                    if self._closing:
                        _log.critical(
                            "audit writer closing: %d events were NOT recorded", len(events)
                        )
                        return
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_retry_delay)
        self._committed(written, tickets)

    def _committed(self, written: Sequence[T], tickets: list[_Ticket]) -> None:
        self.committed += len(written)
        for ticket in tickets:
            ticket.done.set()
        if self._after_commit is not None:
            try:
                self._after_commit(written)
            except Exception:
                _log.exception("audit after-commit hook failed")
