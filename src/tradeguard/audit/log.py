"""AuditLog: every security event, chained, batched, verifiable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO

from tradeguard.audit.chain import AuditRecord, Row
from tradeguard.audit.jsonl import JsonLinesSink, write_jsonl
from tradeguard.audit.store import SqlAuditStore
from tradeguard.audit.verify import VerifyResult
from tradeguard.audit.writer import BatchWriter
from tradeguard.events import EventBus, SecurityEvent

# Events whose record must be durable before the action returns.
DURABLE_PREFIXES = (
    "secret.written", "secret.deleted", "secret.undeleted", "secret.destroyed", "key.rotated",
    "killswitch.", "auth.login", "auth.role", "auth.user", "auth.password", "auth.mfa",
    "auth.api_key", "risk.limits",
)  # fmt: skip


class AuditLog:
    """Records events through a :class:`BatchWriter` into a :class:`SqlAuditStore`.

    Call it with an event (so it can subscribe to an EventBus): events whose type starts
    with one of ``durable_prefixes``, and every critical event, are recorded with
    ``wait=True``; the rest are queued and committed in the next batch.
    """

    def __init__(
        self,
        store: SqlAuditStore,
        *,
        jsonl: JsonLinesSink | None = None,
        bus: EventBus | None = None,
        durable_prefixes: tuple[str, ...] = DURABLE_PREFIXES,
        max_queue: int = 100_000,
        max_batch: int = 8_192,
        durable_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._jsonl = jsonl
        self._bus = bus
        self._durable = durable_prefixes
        self._durable_types: dict[str, bool] = {}  # type -> starts with a durable prefix
        self._durable_timeout = durable_timeout
        self._writer: BatchWriter[Row] = BatchWriter(
            store.append_rows,
            prepare=store.prepare,
            after_commit=None if jsonl is None else self._ship,
            max_queue=max_queue,
            max_batch=max_batch,
        )
        self._offer = self._writer.offer
        self._closed = False

    def __repr__(self) -> str:
        return f"AuditLog(store={self._store!r}, pending={self._writer.pending})"

    @property
    def store(self) -> SqlAuditStore:
        """Where the chain lives."""
        return self._store

    def is_durable(self, event: SecurityEvent) -> bool:
        """Whether ``event`` is recorded with ``wait=True`` when it arrives from the bus."""
        return event.severity == "critical" or self._durable_type(event.type)

    def _durable_type(self, type_: str) -> bool:
        durable = self._durable_types.get(type_)
        if durable is None:
            if len(self._durable_types) > 4096:  # types are code-defined; bound it anyway
                self._durable_types.clear()
            durable = self._durable_types[type_] = type_.startswith(self._durable)
        return durable

    def __call__(self, event: SecurityEvent) -> None:
        """The bus subscriber: durable events wait for their commit, the rest are queued."""
        durable = self._durable_types.get(event.type)
        if durable is None:
            durable = self._durable_type(event.type)
        if durable or event.severity == "critical":
            self.record(event, wait=True)
        else:
            self._offer(event)

    def _ship(self, rows: Sequence[Row]) -> None:
        if self._jsonl is not None:
            self._jsonl([AuditRecord(*row) for row in rows])

    def record(self, event: SecurityEvent, *, wait: bool = False) -> None:
        """Queue ``event``; with ``wait=True`` return only once its record is committed."""
        self._writer.submit(event, wait=wait, timeout=self._durable_timeout if wait else None)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every queued event is committed; False on timeout."""
        return self._writer.flush(timeout)

    def verify(self) -> VerifyResult:
        """Flush, then verify the whole chain; publishes ``audit.verified``."""
        self.flush()
        result = self._store.verify()
        if self._bus is not None:
            self._bus.publish(SecurityEvent(
                "audit.verified", outcome="ok" if result.ok else "broken",
                severity="info" if result.ok else "critical",
                details={"ok": result.ok, "checked": result.checked,
                         "first_bad": result.first_bad, "reason": result.reason},
            ))  # fmt: skip
        return result

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        type: str | None = None,
        actor: str | None = None,
        limit: int | None = 1000,
        newest_first: bool = False,
        after_seq: int | None = None,
    ) -> list[AuditRecord]:
        """Committed records matching every filter (``type`` may end with ``*``)."""
        self.flush()
        return self._store.query(
            since=since, until=until, type=type, actor=actor, limit=limit,
            newest_first=newest_first, after_seq=after_seq,
        )  # fmt: skip

    def export(self, out: IO[str], **filters: object) -> int:
        """Write matching records as JSON lines; returns the count."""
        records = self.query(limit=None, **filters)  # type: ignore[arg-type]
        return write_jsonl(records, out)

    def prune(self, before: datetime) -> int:
        """Delete records older than ``before``; a signed anchor keeps the rest verifiable."""
        self.flush()
        return self._store.prune(before)

    def close(self) -> None:
        """Flush the queue, stop the writer, close the sink and the database."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        if self._jsonl is not None:
            self._jsonl.close()
        self._store.close()
